import numpy as np
import pytest

# Several random shapes (N, T, D, H): batch 1 and T = 1 edge cases, non-square D != H so a
# transposed weight cannot go unnoticed, and longer sequences so BPTT really crosses steps.
SHAPES = [(1, 1, 3, 4), (2, 5, 3, 4), (3, 7, 5, 2), (4, 12, 2, 6)]


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
