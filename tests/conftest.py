import os

import numpy as np
import pytest

# The settings rnncourse.repro.setup_tensorflow() pins, set before any test module imports
# TensorFlow, so tests that call setup_tensorflow() pass in any order.
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# Several random shapes (N, T, D, H): batch 1 and T = 1 edge cases, non-square D != H so a
# transposed weight cannot go unnoticed, and longer sequences so BPTT really crosses steps.
SHAPES = [(1, 1, 3, 4), (2, 5, 3, 4), (3, 7, 5, 2), (4, 12, 2, 6)]


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
