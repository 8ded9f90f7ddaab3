"""The fused LSTM with both cores working inside every step: one thread pool for everything.

With a multi-threaded BLAS, `rnncourse.fused` uses the second core only inside the matrix
products; between them, a step's element-wise work runs on one core while the other waits
(Amdahl's law, the Benchmarks appendix's ninth round). Handing that work to a second thread
pays off only if the hand-off is cheap, and it is not when two thread pools take turns. A
thread that sleeps until it is woken through the operating system (a Python thread, or the
pool of Numba's own "workqueue" layer) costs about 100 microseconds a hand-off on the
appendix's virtual machine, more than half a step's element-wise work (about 40); a pool whose
idle threads spin, as OpenBLAS's and Numba's OpenMP pool do, answers in about 2, but two such
pools each keep a core the other needs whenever they alternate (the tenth round).

Here one pool does all the work: Numba's (`prange`). Each time step is one parallel region.
Thread c owns a block of hidden units, and in it does both the products and the element-wise
work for those units, calling the BLAS itself, one BLAS thread per call:

* forward, step t: the rows of U^T h_{t-1} that belong to its units (one product per gate
  block), then the gates, the cell update and h_t for its units;
* backward, step t: the rows of dh_t = U da_{t+1} that belong to its units, then the gate
  derivatives for its units;

and the threads wait for each other only at the end of the step (every thread's next product
reads the whole h_t, or the whole da_t). The input projection and the weight-gradient
products, hoisted out of the time loop as in the fast path, are shared out in the same pool:
by time steps, and by gate columns.

The arithmetic of a step is `rnncourse.fused`'s float32 one (the rational tanh, the same
associations), so the two agree to float32 round-off (`tests/test_parallel.py`). float32
only: the module exists to be timed against the others. It needs NumPy's bundled OpenBLAS
(it calls its `cblas_sgemm` directly), and a Numba threading layer whose idle threads spin
(OpenMP or TBB; Numba's own "workqueue" layer works, but puts every thread to sleep after each
step, which costs more than it saves). Like `rnncourse.fused`, nothing in the chapters depends
on it, and `import rnncourse` does not load it.
"""

from __future__ import annotations

import ctypes
from contextlib import contextmanager

import numba
import numpy as np
from numba import njit, prange

from .fast import LSTMCache, _buffer, _lstm_backward_start, _lstm_forward_setup, _lstm_to_keras, _read_only_view
from .fused import _backward_row, _forward_row32, _keep_rows


# ------------------------------------------------------------- the BLAS, called directly
def _find_sgemm():
    """NumPy's OpenBLAS `cblas_sgemm` as a ctypes function, and a controller for its threads."""
    from threadpoolctl import ThreadpoolController

    controller = ThreadpoolController()
    for lib in controller.select(user_api="blas").lib_controllers:
        if lib.internal_api != "openblas":
            continue
        prefix, suffix = getattr(lib, "_symbol_prefix", ""), getattr(lib, "_symbol_suffix", "")
        dll = ctypes.CDLL(lib.filepath)
        function = getattr(dll, f"{prefix}cblas_sgemm{suffix}", None)
        if function is None:
            continue
        index = ctypes.c_int64 if "64" in suffix else ctypes.c_int   # ILP64 builds take 64-bit sizes
        i32, f32, ptr = ctypes.c_int, ctypes.c_float, ctypes.c_void_p
        function.argtypes = [i32, i32, i32, index, index, index, f32, ptr, index, ptr, index, f32, ptr, index]
        function.restype = None
        return function, controller
    found = [lib.internal_api for lib in controller.select(user_api="blas").lib_controllers]
    raise ImportError("rnncourse.parallel calls the BLAS that NumPy bundles, OpenBLAS, directly; this NumPy "
                      f"uses {', '.join(found) or 'no BLAS threadpoolctl can see'}. Use rnncourse.fused instead.")


_SGEMM, _CONTROLLER = _find_sgemm()
_ROW_MAJOR, _PLAIN, _TRANSPOSED = 101, 111, 112   # CBLAS's constants


@njit(inline="always")
def _gemm(trans_a, trans_b, M, N, K, a, lda, b, ldb, c, ldc):  # pragma: no cover - compiled
    """c[:M, :N] = op(a) @ op(b) for row-major blocks given by address and row stride."""
    _SGEMM(_ROW_MAJOR, trans_a, trans_b, M, N, K, np.float32(1.0), a, lda, b, ldb, np.float32(0.0), c, ldc)


@njit(inline="always")
def _block(c, threads, size):  # pragma: no cover - compiled
    """Thread c's share of range(size): [lo, hi)."""
    return c * size // threads, (c + 1) * size // threads


# ------------------------------------------------------------------------ the kernels
@njit(parallel=True, nogil=True, boundscheck=False)
def _project(weights_t, x_ones, gates, threads):  # pragma: no cover - compiled
    """gates[t] = weights_t (4H, D + 1) @ x_ones[t]^T for every step; thread c takes a block of steps."""
    T, N, D1 = x_ones.shape
    G = weights_t.shape[0]
    for c in prange(threads):
        lo, hi = _block(c, threads, T)
        for t in range(lo, hi):
            _gemm(_PLAIN, _TRANSPOSED, G, N, D1, weights_t.ctypes.data, D1, x_ones[t].ctypes.data, D1,
                  gates[t].ctypes.data, N)


@njit(parallel=True, nogil=True, boundscheck=False, error_model="numpy", fastmath={"contract"})
def _forward_loop(recurrent_t, gates, states, cells, tanh_c, keep, recurrent, threads):  # pragma: no cover
    """The forward time loop (float32). recurrent_t (4H, H), the recurrent kernel halved and
    transposed; gates (T, 4H, N) holding the input side of every pre-activation, overwritten with
    the activations; states (H, T + 1, N), cells (T + 1, H, N) with h0, c0 written; tanh_c
    (T, H, N); keep (T, N), 1 at a real step, 0 at padding; recurrent (4H, N), scratch. The
    element-wise work is `fused._step_forward32`'s, row by row (`fused._forward_row32`)."""
    T, G, N = gates.shape
    H = G // 4
    state_stride = states.shape[1] * N
    for t in range(T):
        for c in prange(threads):
            lo, hi = _block(c, threads, H)
            if hi > lo:
                for q in range(4):               # this thread's rows of U^T h_{t-1}, gate block by block
                    row = q * H + lo
                    _gemm(_PLAIN, _PLAIN, hi - lo, N, H, recurrent_t[row].ctypes.data, H,
                          states[0, t].ctypes.data, state_stride, recurrent[row].ctypes.data, N)
            for j in range(lo, hi):
                _forward_row32(t, j, recurrent, gates, cells, tanh_c, keep[t])
                for k in range(N):                   # h = o tanh(c), or h_{t-1} where padded
                    states[j, t + 1, k] = gates[t, j, k] * tanh_c[t, j, k] if keep[t, k] != 0 else states[j, t, k]


@njit(parallel=True, nogil=True, boundscheck=False)
def _backward_loop(recurrent_int, dh_fm, gates, tanh_c, cells, keep, da, dh_next, dh_t, dc, threads):  # pragma: no cover
    """The backward time loop. recurrent_int (H, 4H); dh_fm (T, H, N), the gradient arriving
    from the loss; da (4H, T, N), written; dc (H, N), dL/dc_T on entry, dL/dc_0 on return;
    dh_next (H, N), dL/dh_0 on return; dh_t (H, N), scratch. The element-wise work is
    `fused._step_backward`'s, row by row (`fused._backward_row`)."""
    T, H, N = dh_fm.shape
    da_stride = T * N
    one = np.float32(1.0)
    for t in range(T, -1, -1):
        for c in prange(threads):
            lo, hi = _block(c, threads, H)
            if t < T and hi > lo:
                # The gradient into the state that step t read, from step t: this thread's rows
                # of U da_t; a padded example passes its gradient straight back.
                _gemm(_PLAIN, _PLAIN, hi - lo, N, 4 * H, recurrent_int[lo].ctypes.data, 4 * H,
                      da[0, t].ctypes.data, da_stride, dh_next[lo].ctypes.data, N)
                for j in range(lo, hi):
                    for k in range(N):
                        if keep[t, k] == 0:
                            dh_next[j, k] = dh_t[j, k]
            if t > 0:                                # the gate derivatives of step t - 1
                s = t - 1
                dh_arriving, gates_s, tanh_c_s, c_prev, keep_s = dh_fm[s], gates[s], tanh_c[s], cells[s], keep[s]
                for j in range(lo, hi):
                    _backward_row(s, j, dh_arriving, dh_next, dc, gates_s, tanh_c_s, c_prev, da, dh_t, keep_s, one)


@njit(parallel=True, nogil=True, boundscheck=False)
def _weight_gradients(x_ones, states, da, dweights, drecurrent, threads):  # pragma: no cover - compiled
    """dweights (D + 1, 4H) = [x, 1]^T dA and drecurrent (H, 4H) = H_{t-1}^T dA, the sums over all
    steps and examples as two products; thread c takes a block of gate columns."""
    T, N, D1 = x_ones.shape
    G = da.shape[0]
    H = states.shape[0]
    columns = T * N
    for c in prange(threads):
        lo, hi = _block(c, threads, G)
        if hi > lo:
            _gemm(_TRANSPOSED, _TRANSPOSED, D1, hi - lo, columns, x_ones.ctypes.data, D1, da[lo].ctypes.data,
                  columns, dweights[0, lo:].ctypes.data, G)
            _gemm(_PLAIN, _TRANSPOSED, H, hi - lo, columns, states.ctypes.data, states.shape[1] * N,
                  da[lo].ctypes.data, columns, drecurrent[0, lo:].ctypes.data, G)


@njit(parallel=True, nogil=True, boundscheck=False)
def _input_gradient(kernel_int, da, dx_rows, threads):  # pragma: no cover - compiled
    """dx_rows (D, T N) = kernel (D, 4H) @ dA (4H, T N); thread c takes a block of input features."""
    D, G = kernel_int.shape
    columns = dx_rows.shape[1]
    for c in prange(threads):
        lo, hi = _block(c, threads, D)
        if hi > lo:
            _gemm(_PLAIN, _PLAIN, hi - lo, columns, G, kernel_int[lo].ctypes.data, G, da.ctypes.data, columns,
                  dx_rows[lo].ctypes.data, columns)


# ------------------------------------------------------------------------- the LSTM
def _check_threads(threads) -> int:
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    if threads > numba.config.NUMBA_NUM_THREADS:
        raise ValueError(f"threads={threads} is more than Numba's pool has "
                         f"(NUMBA_NUM_THREADS={numba.config.NUMBA_NUM_THREADS})")
    return threads


@contextmanager
def _one_pool(threads: int):
    """Numba's pool at `threads` threads, the BLAS at one thread per call, both restored after."""
    before = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        with _CONTROLLER.limit(limits=1, user_api="blas"):
            yield
    finally:
        numba.set_num_threads(before)


def _check_float32(dtype) -> None:
    if dtype != np.float32:
        raise TypeError(f"rnncourse.parallel computes in float32 only, got {dtype}; "
                        "rnncourse.fused and rnncourse.fast take float64 too")


def lstm_forward_parallel(x, h0, c0, kernel, recurrent_kernel, bias, mask=None, workspace=None, threads=2):
    """`rnncourse.lstm.lstm_forward` in float32: x (N, T, D), h0, c0 (N, H) -> h, c (N, T, H), cache,
    on `threads` threads of Numba's pool. The cache is `fast.LSTMCache`, the fast path's.

    `workspace` (optional, one per layer): a `fast.Workspace` whose buffers this call reuses.
    """
    threads = _check_threads(threads)

    def project(weights_t, x_ones, gates):      # called once the inputs are checked
        _check_float32(gates.dtype)
        _project(weights_t, x_ones, gates, threads)

    with _one_pool(threads):
        mask, x_ones, kernel_int, recurrent_int, gates, recurrent_t, states, cells, tanh_c = _lstm_forward_setup(
            x, h0, c0, kernel, recurrent_kernel, bias, mask, workspace, project)
        T, H, N = tanh_c.shape
        keep = _keep_rows(mask, T, N, np.float32)
        _forward_loop(recurrent_t, gates, states, cells, tanh_c, keep, np.empty((4 * H, N), np.float32), threads)
    cache = LSTMCache(x_ones, kernel_int, recurrent_int, gates, states, cells, tanh_c, mask, workspace)
    return _read_only_view(states[:, 1:], (2, 1, 0)), _read_only_view(cells[1:], (2, 0, 1)), cache


def lstm_backward_parallel(dh, cache, dc_last=None, input_gradient=True, threads=2):
    """`rnncourse.lstm.lstm_backward` in float32: (dx, dh0, dc0, dkernel, drecurrent_kernel, dbias).

    Takes the cache of any of the fast forward passes (`lstm_forward_parallel`,
    `fused.lstm_forward_fused`, `fast.lstm_forward_fast`). With input_gradient=False, dx is not
    computed (None).
    """
    threads = _check_threads(threads)
    cache, T, N, H, dtype, dh_fm, dc = _lstm_backward_start(
        dh, cache, dc_last, "lstm_forward_parallel, fused.lstm_forward_fused or fast.lstm_forward_fast")
    _check_float32(dtype)
    x_ones, kernel_int, recurrent_int, gates, states, cells, tanh_c, mask, workspace = cache
    # The kernels hand these to the BLAS by address, as contiguous float32: anything else would be
    # read wrongly, not rejected (a cache of the fast path can hold float64 weights beside float32 data).
    for name in ("x", "kernel", "recurrent_kernel", "gates", "states", "cells", "tanh_c"):
        array = getattr(cache, name)
        if array.dtype != np.float32 or not array.flags.c_contiguous:
            raise TypeError(f"rnncourse.parallel needs a cache of contiguous float32 arrays; its {name} is a "
                            f"{'' if array.flags.c_contiguous else 'non-contiguous '}{array.dtype} array. "
                            "rnncourse.fused.lstm_backward_fused takes any cache of the fast paths")
    D = x_ones.shape[2] - 1
    da = _buffer(workspace, "lstm/da", (4 * H, T, N), dtype)
    dh_next, dh_t = np.zeros((H, N), dtype), np.zeros((H, N), dtype)
    dweights, drecurrent = np.empty((D + 1, 4 * H), dtype), np.empty((H, 4 * H), dtype)
    dx = None
    with _one_pool(threads):
        _backward_loop(recurrent_int, dh_fm, gates, tanh_c, cells, _keep_rows(mask, T, N, dtype), da, dh_next,
                       dh_t, dc, threads)
        _weight_gradients(x_ones, states, da, dweights, drecurrent, threads)
        if input_gradient:
            dx_rows = np.empty((D, T * N), dtype)
            _input_gradient(np.ascontiguousarray(kernel_int), da, dx_rows, threads)
            dx = np.ascontiguousarray(dx_rows.reshape(D, T, N).transpose(2, 1, 0))
    return (dx, np.ascontiguousarray(dh_next.T), np.ascontiguousarray(dc.T), _lstm_to_keras(dweights[:D], H),
            _lstm_to_keras(drecurrent, H), _lstm_to_keras(dweights[D], H))
