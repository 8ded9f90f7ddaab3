"""Synthetic sequence tasks that probe long-range memory, generated on the fly (no data files).

The adding problem (Hochreiter & Schmidhuber 1997; in the form used by Le, Jaitly & Hinton
2015 and Arjovsky et al. 2016): each time step carries two numbers, a value drawn uniformly
from [0, 1) and a marker that is 1 at exactly two steps and 0 elsewhere. One marker falls in
the first half of the sequence, the other in the second half. The target is the sum of the
two marked values. The two values are independent U(0, 1), so the target has mean 1 and
variance 2/12 = 1/6: always predicting 1.0 scores a mean squared error of 1/6 ~ 0.167, the
baseline any model has to beat. To beat it, a model must carry the first marked value across
at least the distance between the markers, which is up to T - 1 steps.

The delayed echo: a stream of random signs in which the target at step t is the input at
step t - delay (zero for the first `delay` steps). Predicting 0 scores a mean squared error
of 1 on the steps that have a target; the task needs a memory of exactly `delay` steps.
"""

from __future__ import annotations

import numpy as np

ADDING_BASELINE_MSE = 1.0 / 6.0


def adding_problem(n: int, length: int, rng: np.random.Generator, dtype=np.float32):
    """n sequences of the adding problem. Returns x (n, length, 2) and y (n, 1).

    x[..., 0] holds the values, x[..., 1] the two markers: one at a step drawn uniformly from
    the first half (steps 0 .. length//2 - 1), one from the second half.
    """
    if length < 2:
        raise ValueError(f"the adding problem needs length >= 2, got {length}")
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    half = length // 2
    values = rng.uniform(0.0, 1.0, size=(n, length))
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, length, size=n)
    markers = np.zeros((n, length))
    rows = np.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = np.stack([values, markers], axis=-1).astype(dtype)
    y = (values[rows, first] + values[rows, second])[:, None].astype(dtype)
    return x, y


def delayed_echo(n: int, length: int, delay: int, rng: np.random.Generator, dtype=np.float64):
    """n streams of random signs; the target at step t is the input at step t - delay.

    Returns x (n, length, 1), y (n, length, 1) and a boolean mask (n, length) that is False
    for the first `delay` steps, which have nothing to echo.
    """
    if not 0 < delay < length:
        raise ValueError(f"delay must lie in [1, length), got delay={delay}, length={length}")
    x = rng.choice(np.array([-1.0, 1.0]), size=(n, length, 1)).astype(dtype)
    y = np.zeros_like(x)
    y[:, delay:] = x[:, :-delay]
    mask = np.zeros((n, length), dtype=bool)
    mask[:, delay:] = True
    return x, y, mask
