"""Non-recurrent pieces a sequence model needs around its RNN: one-hot input and a dense readout."""

from __future__ import annotations

import numpy as np

from .validation import check, check_finite, check_float_array, check_float_dtype, check_gradient, check_int


def one_hot(ids, depth: int, dtype=np.float64) -> np.ndarray:
    """Integer ids of any shape -> one-hot vectors with a trailing axis of size `depth`."""
    check_int("depth", depth)
    check_float_dtype("dtype", dtype)
    if not isinstance(ids, np.ndarray) or not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"ids must be a NumPy array of integers, got {getattr(ids, 'dtype', type(ids).__name__)}")
    if ids.size and (ids.min() < 0 or ids.max() >= depth):
        raise ValueError(f"ids must lie in [0, {depth}), found values from {ids.min()} to {ids.max()}")
    return np.eye(depth, dtype=dtype)[ids]


def dense_forward(h, kernel, bias):
    """An affine readout applied at every position: h (..., H) -> h @ kernel + bias, (..., V)."""
    check_float_array("h", h)
    check("h", h, h.shape[:-1] + ("H",), {})
    sizes = check("kernel", kernel, ("H", "V"), {"H": h.shape[-1]})
    check("bias", bias, ("V",), sizes)
    check_finite(h=h, kernel=kernel, bias=bias)
    return h @ kernel + bias, (h, kernel)


def dense_backward(dout, cache):
    """dout (..., V) -> (dh, dkernel, dbias)."""
    if not (isinstance(cache, tuple) and len(cache) == 2):
        raise TypeError(f"cache must be the cache that dense_forward returned, (h, kernel), got {type(cache).__name__}")
    h, kernel = cache
    check_gradient("dout", dout, h.shape[:-1] + (kernel.shape[1],))
    dh = dout @ kernel.T
    dkernel = h.reshape(-1, h.shape[-1]).T @ dout.reshape(-1, dout.shape[-1])
    dbias = dout.reshape(-1, dout.shape[-1]).sum(axis=0)
    return dh, dkernel, dbias
