"""The LSTM's fast path with each step's element-wise work fused into compiled loops (Numba).

`rnncourse.fast` leaves an LSTM training step's matrix products near what the BLAS can do; what
separates it from the floor of the Benchmarks appendix is the element-wise work between the
products. NumPy does that work one operation at a time: each call reads its operands from
memory and writes a whole array back, and the backward pass of one step makes 17 such calls.
A *fused kernel* is one loop that does a step's whole element-wise arithmetic number by number,
so each number is read once and the intermediate results never leave the registers.

Here the fused loops are compiled with Numba (`@njit`), and everything else is the fast path's:
the same layout, the same halved weights, the same cache (`fast.LSTMCache`), the same matrix
products, which stay BLAS calls.

The forward pass has two transcendental functions per number, the gates' and the cell's tanh
(the sigmoid gates are computed as sigmoid(a) = 0.5 tanh(a/2) + 0.5). A compiled loop that
calls the C library's `tanh` number by number is many times slower than NumPy's `tanh`, which
uses SIMD instructions; but how fast NumPy's is depends on the CPU: its AVX2 version is many
times slower than its AVX-512 one (the Benchmarks appendix measures both). So:

* in float32, one loop per step does a step's work after its product (five activations and
  the cell update; h = o tanh(c) stays one NumPy call), with tanh as a rational function of
  pure arithmetic (`_tanh32`), which the compiler vectorises. It is within 5e-7 of the exact
  tanh (2.6e-7 on CPUs with fused multiply-add; NumPy's float32 tanh is within about 6e-8),
  so the fused forward pass agrees with the fast path's to float32 round-off, not bit for bit;
* in float64, NumPy keeps the two tanh calls, and one loop does the middle of a step (the
  sigmoid from tanh(a/2) and the cell update: five NumPy calls).

The backward pass has no transcendental function at all: it is one fused loop per step (17
NumPy calls without a mask). It computes the same operations as the fast path's NumPy calls,
associated the same way, so from the same cache the two backward passes agree bit for bit
where the compiler keeps the operations' order, and so do the float64 forward passes
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


# ------------------------------------------------------------ tanh as a rational function
# float32's tanh as the ratio of two polynomials, an odd one of degree 13 over an even one of
# degree 6, on the input clamped to +-7.9053 (beyond which tanh is within 3e-7 of +-1).
# The coefficients are a published minimax fit, the one the Eigen library uses for its fast
# float tanh. It is pure arithmetic, so the compiler can turn a loop of it into SIMD
# instructions, as wide as the CPU has; NumPy's float32 tanh is much faster on some CPUs than
# on others (the Benchmarks appendix measures both). Accurate to float32's precision only:
# float64 keeps NumPy's tanh.
_CLAMP = np.float32(7.90531110763549805)
_P = tuple(np.float32(c) for c in (-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11,
                                   5.12229709037114e-08, 1.48572235717979e-05, 6.37261928875436e-04,
                                   4.89352455891786e-03))
_Q = tuple(np.float32(c) for c in (1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03,
                                   4.89352518554385e-03))
_P13, _P11, _P9, _P7, _P5, _P3, _P1 = _P
_Q6, _Q4, _Q2, _Q0 = _Q
_HALF32 = np.float32(0.5)


@njit(inline="always")
def _tanh32(x):  # pragma: no cover - compiled
    """tanh(x) for a float32 x, within 5e-7 of the exact value (tests/test_fused.py; 2.6e-7 where
    the compiler uses fused multiply-adds, as on any CPU with FMA); NaN stays NaN."""
    # Selects, not min/max, so that the loop vectorises; written so that NaN fails both
    # comparisons and passes through.
    v = _CLAMP if x > _CLAMP else x
    v = -_CLAMP if v < -_CLAMP else v
    v2 = v * v
    p = ((((((_P13 * v2 + _P11) * v2 + _P9) * v2 + _P7) * v2 + _P5) * v2 + _P3) * v2 + _P1) * v
    q = ((_Q6 * v2 + _Q4) * v2 + _Q2) * v2 + _Q0
    return p / q


@njit(nogil=True, boundscheck=False, error_model="numpy", fastmath={"contract"})
def tanh32(x, out):  # pragma: no cover - compiled
    """`_tanh32` over a 1-D float32 array, into out: for the tests and the Benchmarks appendix."""
    for i in range(x.shape[0]):
        out[i] = _tanh32(x[i])


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


@njit(inline="always", error_model="numpy", fastmath={"contract"})
def _forward_row32(t, j, recurrent, gates, cells, tanh_c, keep):  # pragma: no cover - compiled
    """`_step_forward32` for hidden unit j alone (all examples): one row of each gate block. Also
    the body of `rnncourse.parallel`'s forward loop, whose threads each take a block of units."""
    H, N = cells.shape[1], cells.shape[2]
    for k in range(N):
        o = _HALF32 * _tanh32(gates[t, j, k] + recurrent[j, k]) + _HALF32
        i = _HALF32 * _tanh32(gates[t, H + j, k] + recurrent[H + j, k]) + _HALF32
        f = _HALF32 * _tanh32(gates[t, 2 * H + j, k] + recurrent[2 * H + j, k]) + _HALF32
        g = _tanh32(gates[t, 3 * H + j, k] + recurrent[3 * H + j, k])
        gates[t, j, k] = o
        gates[t, H + j, k] = i
        gates[t, 2 * H + j, k] = f
        gates[t, 3 * H + j, k] = g
        c_prev = cells[t, j, k]
        c = f * c_prev + i * g
        c = c if keep[k] else c_prev
        cells[t + 1, j, k] = c
        tanh_c[t, j, k] = _tanh32(c)


@njit(cache=True, nogil=True, boundscheck=False, error_model="numpy", fastmath={"contract"})
def _step_forward32(t, recurrent, gates, cells, tanh_c, keep):  # pragma: no cover - compiled
    """One float32 forward step after its product, all in one loop: a = gates[t] + recurrent,
    its four activations (tanh32, the sigmoid gates as 0.5 tanh(a/2) + 0.5 with their weights
    already halved), the cell update c = f c_prev + i g (c_prev where the example is padded,
    keep[k] = 0) and tanh(c). gates[t] and cells[t + 1] and tanh_c[t] are written in place;
    the caller forms h = o tanh(c). The whole arrays and t are passed, not slices, as in
    `_step_backward`. error_model="numpy" lets p / q divide without Python's zero check,
    which would stop the loop from vectorising; fastmath={"contract"} allows fused
    multiply-adds, so the products are not associated as the fast path's are."""
    for j in range(cells.shape[1]):
        _forward_row32(t, j, recurrent, gates, cells, tanh_c, keep)


@njit(inline="always")
def _backward_row(t, j, dh_arriving, dh_next, dc, gates, tanh_c, c_prev, da, dh_t, keep, one):  # pragma: no cover
    """`_step_backward` for hidden unit j alone (all examples). Also the body of
    `rnncourse.parallel`'s backward loop, whose threads each take a block of units."""
    H, N = dh_next.shape
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
    for j in range(dh_next.shape[0]):
        _backward_row(t, j, dh_arriving, dh_next, dc, gates, tanh_c, c_prev, da, dh_t, keep, one)


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
        if dtype == np.float32:
            _step_forward32(t, recurrent, gates, cells, tanh_c, keep[t])
        else:
            a += recurrent
            np.tanh(a, out=a)
            _cell_update(a, cells[t], cells[t + 1], keep[t], half)
            np.tanh(cells[t + 1], out=tanh_c[t])
        h_t = states[:, t + 1]
        # Here, not in the loop: h_t and the states it falls back to where the example is
        # padded lie in one array, and the compiler, unable to rule out that they overlap,
        # would not vectorise the loop.
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

