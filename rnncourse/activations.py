"""Element-wise activations, each with its derivative written in terms of its *output*.

Writing f'(z) as a function of y = f(z) lets a backward pass use only what the forward pass
already stored: tanh' = 1 - y**2, sigmoid' = y (1 - y), relu' = [y > 0], linear' = 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .validation import check_float_array


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic sigmoid, computed without overflow for large negative z.

    z must be a float32 or float64 array or NumPy scalar (an integer array would make an
    integer output, all zeros, so it is refused).
    """
    if not isinstance(z, (np.ndarray, np.floating)) or z.dtype.char not in "fd":  # cheap: called every step
        check_float_array("z", np.asarray(z) if isinstance(z, np.generic) else z)
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


@dataclass(frozen=True)
class Activation:
    name: str
    forward: Callable[[np.ndarray], np.ndarray]
    derivative_from_output: Callable[[np.ndarray], np.ndarray]


ACTIVATIONS = {
    "tanh": Activation("tanh", np.tanh, lambda y: 1.0 - y * y),
    "sigmoid": Activation("sigmoid", sigmoid, lambda y: y * (1.0 - y)),
    "relu": Activation("relu", lambda z: np.maximum(z, 0.0), lambda y: (y > 0).astype(y.dtype)),
    "linear": Activation("linear", lambda z: z, lambda y: np.ones_like(y)),
}


def get_activation(name: str) -> Activation:
    if not isinstance(name, str):
        raise TypeError(f"activation must be a name, one of {sorted(ACTIVATIONS)}, got {type(name).__name__} {name!r}")
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}") from None
