"""Input checks shared by every layer function.

Each public function in the package checks its arrays before computing anything, so that a
learner who passes the wrong thing gets a message naming the expected shape, not a NumPy
broadcasting error three calls deeper (or, worse, a silently wrong answer: with square
weights a transposed matrix raises nothing).
"""

from __future__ import annotations

import numpy as np


def _describe(spec: tuple, sizes: dict) -> str:
    """Render a shape spec such as ("N", "T", "D") as "(N, T, D) = (?, ?, 5)"."""
    comma = "," if len(spec) == 1 else ""  # (H,) like a Python 1-tuple
    names = ", ".join(str(s) for s in spec) + comma
    known = ", ".join(str(sizes.get(s, "?")) if isinstance(s, str) else str(s) for s in spec) + comma
    if names == known or all(isinstance(s, str) and s not in sizes for s in spec):
        return f"({names})"
    return f"({names}) = ({known})"


def check_float_array(name: str, value) -> np.ndarray:
    """Return `value` as an ndarray, or raise TypeError if it is not floating point.

    Integer arrays are refused rather than converted: an integer weight matrix is almost
    always a mistake (for example token ids passed where one-hot vectors were expected).
    """
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(value).__name__}")
    if not np.issubdtype(value.dtype, np.floating):
        raise TypeError(
            f"{name} must be a floating-point array (float32 or float64), got dtype {value.dtype}"
        )
    return value


def check_shape(name: str, value: np.ndarray, spec: tuple, sizes: dict) -> dict:
    """Check `value.shape` against `spec`, binding named dimensions in `sizes`.

    `spec` holds integers (fixed sizes) or strings (named sizes). A name already in `sizes`
    must match; a new name is bound to the size found. Returns the updated `sizes`, so
    several arrays can be checked against one another in turn.

    >>> sizes = check_shape("x", np.zeros((2, 3, 4)), ("N", "T", "D"), {})
    >>> sizes == {"N": 2, "T": 3, "D": 4}
    True
    """
    if value.ndim != len(spec):
        raise ValueError(
            f"{name} must have shape {_describe(spec, sizes)} ({len(spec)} dimension{'s' * (len(spec) != 1)}), "
            f"got shape {value.shape} ({value.ndim} dimension{'s' * (value.ndim != 1)})"
        )
    bound = dict(sizes)
    for dim, (want, got) in enumerate(zip(spec, value.shape)):
        if isinstance(want, str):
            if want in bound and bound[want] != got:
                raise ValueError(
                    f"{name} must have shape {_describe(spec, bound)}, got shape {value.shape} "
                    f"(dimension {dim}, {want}, should be {bound[want]})"
                )
            bound[want] = got
        elif want != got:
            raise ValueError(f"{name} must have shape {_describe(spec, bound)}, got shape {value.shape}")
    return bound


def check(name: str, value, spec: tuple, sizes: dict) -> dict:
    """check_float_array followed by check_shape."""
    check_float_array(name, value)
    return check_shape(name, value, spec, sizes)


def check_mask(mask, sizes: dict) -> np.ndarray | None:
    """Validate an optional (N, T) boolean mask; True marks a real (not padded) step."""
    if mask is None:
        return None
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"mask must be a NumPy array of booleans, got {type(mask).__name__}")
    if mask.dtype != np.bool_:
        raise TypeError(f"mask must have dtype bool (True = real step, False = padding), got {mask.dtype}")
    check_shape("mask", mask, ("N", "T"), sizes)
    return mask
