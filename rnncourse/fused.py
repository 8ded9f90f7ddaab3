"""The LSTM's fast path with each step's element-wise work fused into compiled loops (Numba).

`rnncourse.fast` leaves an LSTM training step's matrix products near what the BLAS can do; what
separates it from the floor of the Benchmarks appendix is the element-wise work between the
products. NumPy does that work one operation at a time: each call reads its operands from
memory and writes a whole array back, and the backward pass of one step makes 17 such calls.
A *fused kernel* is one loop that does a step's whole element-wise arithmetic number by number,
so each number is read once and the intermediate results never leave the registers.

Here the fused loops are compiled with Numba (`@njit`), and everything else is the fast path's:
the same layout, the same halved weights, the same cache (`fast.LSTMCache`), the same matrix
products. Two things stay NumPy on purpose:

* the products (BLAS);
* the `tanh` calls of the forward pass. NumPy's `tanh` uses SIMD instructions; a compiled
  loop calls the C library's `tanh` once per number, which is many times slower (the
  Benchmarks appendix prints the ratio).
  The backward pass has no transcendental function at all: it is one fused loop per step.

So the forward pass fuses the middle of a step (turning the sigmoid gates' tanh(a/2) into
sigmoid(a) = 0.5 tanh(a/2) + 0.5, and the cell update: five NumPy calls), and the backward
pass fuses all of it (17 calls without a mask). The loops compute the same operations as the
fast path's NumPy calls, associated the same way, so the results agree with the fast path's
to round-off, and bit for bit where the compiler keeps the operations' order
(`tests/test_fused.py`).

The functions take and return exactly what `lstm.lstm_forward` and `lstm.lstm_backward` do.
The first call compiles the loops for its dtypes; Numba caches the compiled code on disk, next
to this file when it can write there, so later runs skip the compilation. Nothing in the chapters depends on this
module; the Benchmarks appendix measures it. Import it explicitly: `import rnncourse` does not
load Numba.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .fast import LSTMCache, _buffer, _lstm_backward_finish, _lstm_backward_start, _lstm_forward_setup, \
    _read_only_view


# ------------------------------------------------------------------ the fused loops
@njit(cache=True, nogil=True, boundscheck=False)
def _cell_update(a, c_prev, c_out, keep, half):  # pragma: no cover - compiled
    """One forward step's middle, in place. a (4H, N): the gates after tanh, internal order
    [o | i | f | g], the sigmoid gates' tanh(a/2); they become 0.5 t + 0.5 here. Then
    c = f c_prev + i g, or c_prev where the example is padded (keep[k] = 0)."""
    H, N = c_prev.shape
    for j in range(H):
        for k in range(N):
            o = half * a[j, k] + half
            i = half * a[H + j, k] + half
            f = half * a[2 * H + j, k] + half
            a[j, k] = o
            a[H + j, k] = i
            a[2 * H + j, k] = f
            c = f * c_prev[j, k] + i * a[3 * H + j, k]
            c_out[j, k] = c if keep[k] else c_prev[j, k]


@njit(cache=True, nogil=True, boundscheck=False)
def _step_backward(t, dh_arriving, dh_next, dc, gates, tanh_c, c_prev, da, dh_t, keep, one):  # pragma: no cover
    """One backward step's element-wise work. In: the gradient arriving at h_t from the loss
    (dh_arriving) and from step t + 1 (dh_next), dc = dL/dc_t from step t + 1. Out: da[:, t],
    the pre-activation gradients, internal order; dh_t, the total gradient at h_t; dc becomes
    dL/dc_{t-1} = dc_t f_t. At a padded example (keep[k] = 0) da is 0 and dc passes back
    unchanged; the caller passes dh_t back after its product, as the fast path does.

    Written so that the compiler can use SIMD instructions (the Benchmarks appendix measures
    what each choice is worth):
    * da is the whole (4H, T, N) array and t an index, not the slice da[:, t]. Numba compiles
      one version of a function per argument type, and an array's type records whether it is
      known to be contiguous; a slice with gaps between its rows is not, and the loop compiled
      for "any layout" cannot use SIMD instructions;
    * keep is a contiguous row of 0s and 1s that multiplies the gradients (a padded example
      keeps its old dc by a select), instead of a branch around the arithmetic."""
    H, N = dh_next.shape
    for j in range(H):
        for k in range(N):
            dh = dh_arriving[j, k] + dh_next[j, k]
            dh_t[j, k] = dh
            o = gates[j, k]
            i = gates[H + j, k]
            f = gates[2 * H + j, k]
            g = gates[3 * H + j, k]
            tc = tanh_c[j, k]
            w = keep[k]
            # The products are associated as the fast path's NumPy calls associate them (the
            # bounded local factors first, the incoming gradient last), so the two agree bit for
            # bit wherever the compiler keeps IEEE order. keep (0 or 1) multiplies the first,
            # bounded factor: times 1 it changes nothing, times 0 it gives 0 unless a later
            # factor has overflowed to inf.
            dc_t = dc[j, k] + (one - tc * tc) * o * dh
            da[j, t, k] = (one - o) * o * w * tc * dh
            da[H + j, t, k] = (one - i) * i * w * g * dc_t
            da[2 * H + j, t, k] = (one - f) * f * w * c_prev[j, k] * dc_t
            da[3 * H + j, t, k] = (one - g * g) * w * i * dc_t
            dc[j, k] = dc_t * f if w else dc[j, k]


# -------------------------------------------------------------------------- the LSTM
def _keep_rows(mask, T: int, N: int, dtype) -> np.ndarray:
    """(T, N) rows of 1s (a real step) and 0s (padding), contiguous per step, in the loops' dtype."""
    return np.ones((T, N), dtype=dtype) if mask is None else np.ascontiguousarray(mask.T, dtype=dtype)


def lstm_forward_fused(x, h0, c0, kernel, recurrent_kernel, bias, mask=None, workspace=None):
    """`rnncourse.lstm.lstm_forward`: x (N, T, D), h0, c0 (N, H) -> h, c (N, T, H), cache.

    `workspace` (optional, one per layer): a `fast.Workspace` whose buffers this call reuses.
    """
    mask, x_ones, kernel_int, recurrent_int, gates, recurrent_t, states, cells, tanh_c = _lstm_forward_setup(
        x, h0, c0, kernel, recurrent_kernel, bias, mask, workspace)
    T, H, N = tanh_c.shape
    dtype = gates.dtype
    half = dtype.type(0.5)
    keep = _keep_rows(mask, T, N, dtype)
    recurrent = np.empty((4 * H, N), dtype=dtype)
    for t in range(T):
        a = gates[t]
        np.matmul(recurrent_t, states[:, t], out=recurrent)
        a += recurrent
        np.tanh(a, out=a)
        _cell_update(a, cells[t], cells[t + 1], keep[t], half)
        np.tanh(cells[t + 1], out=tanh_c[t])
        h_t = states[:, t + 1]
        np.multiply(a[:H], tanh_c[t], out=h_t)
        if mask is not None:
            np.copyto(h_t, states[:, t], where=~mask[:, t])
    cache = LSTMCache(x_ones, kernel_int, recurrent_int, gates, states, cells, tanh_c, mask, workspace)
    return _read_only_view(states[:, 1:], (2, 1, 0)), _read_only_view(cells[1:], (2, 0, 1)), cache


def lstm_backward_fused(dh, cache, dc_last=None, input_gradient=True):
    """`rnncourse.lstm.lstm_backward`: (dx, dh0, dc0, dkernel, drecurrent_kernel, dbias).

    Takes the cache of `lstm_forward_fused` or of `fast.lstm_forward_fast` (the same).
    With input_gradient=False, dx is not computed (None).
    """
    cache, T, N, H, dtype, dh_fm, dc = _lstm_backward_start(dh, cache, dc_last,
                                                            "lstm_forward_fused or fast.lstm_forward_fast")
    x_ones, kernel_int, recurrent_int, gates, states, cells, tanh_c, mask, workspace = cache
    keep = _keep_rows(mask, T, N, dtype)
    da_columns = _buffer(workspace, "lstm/da", (4 * H, T, N), dtype)
    dh_next = np.zeros((H, N), dtype=dtype)
    dh_t = np.empty((H, N), dtype=dtype)
    one = dtype.type(1)
    for t in range(T - 1, -1, -1):
        _step_backward(t, dh_fm[t], dh_next, dc, gates[t], tanh_c[t], cells[t], da_columns, dh_t, keep[t], one)
        np.matmul(recurrent_int, da_columns[:, t], out=dh_next)
        if mask is not None:
            np.copyto(dh_next, dh_t, where=~mask[:, t])
    return _lstm_backward_finish(da_columns, x_ones, states, kernel_int, dh_next, dc, input_gradient)

