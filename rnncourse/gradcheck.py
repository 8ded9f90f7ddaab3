"""Numerical gradients by central differences, to test every hand-written backward pass.

For a scalar function f of an array x, the centred difference
    (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)
has error O(eps**2); in float64 with eps = 1e-6 an exact backward pass agrees to a relative
error around 1e-9 or better, while a wrong one is typically off by 1e-2 or more.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .validation import check_positive


def rel_error(a, b) -> float:
    """||a - b|| / (||a|| + ||b||), the scale-free distance between two gradients.

    Norms over the whole array rather than a maximum over elements: an element whose true
    gradient is ~1e-10 is all finite-difference noise, and would make an exact backward pass
    look wrong. A real bug moves the norm: a transposed weight or a missing term gives 1e-2 to 1.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"cannot compare shapes {a.shape} and {b.shape}")
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if denom == 0 else float(np.linalg.norm(a - b) / denom)


def numerical_gradient(f: Callable[[], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Gradient of the scalar f() with respect to the array x, which f reads (in place).

    `x` is perturbed one entry at a time and restored afterwards; f takes no arguments so it
    can close over a whole model and a whole sequence.
    """
    if not callable(f):
        raise TypeError(f"f must be a function of no arguments returning the loss, got {type(f).__name__}")
    if not isinstance(x, np.ndarray):
        raise TypeError(f"x must be the float64 NumPy array that f reads (perturbed in place), got {type(x).__name__}")
    check_positive("eps", eps)
    if x.dtype != np.float64:
        raise TypeError(f"gradient checks need float64 (float32 round-off swamps eps), got {x.dtype}")
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        saved = x[i]
        x[i] = saved + eps
        f_plus = f()
        x[i] = saved - eps
        f_minus = f()
        x[i] = saved
        grad[i] = (f_plus - f_minus) / (2 * eps)
    return grad


def gradient_check(f: Callable[[], float], arrays: dict, analytic: dict, eps: float = 1e-6) -> dict:
    """Relative error of each analytic gradient against its numerical estimate.

    `arrays` maps names to the float64 arrays f reads; `analytic` maps the same names to the
    gradients a backward pass produced. Returns {name: relative error}.
    """
    for name, value in (("arrays", arrays), ("analytic", analytic)):
        if not isinstance(value, dict):
            raise TypeError(f"{name} must be a dict {{name: array}}, got {type(value).__name__}")
    missing = set(arrays) - set(analytic)
    if missing:
        raise ValueError(f"no analytic gradient given for {sorted(missing)}")
    return {name: rel_error(analytic[name], numerical_gradient(f, x, eps)) for name, x in arrays.items()}
