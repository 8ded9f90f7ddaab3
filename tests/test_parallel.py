"""`rnncourse.parallel` (the fused LSTM on Numba's thread pool, calling the BLAS itself) against
the fused and the clear code: outputs and every gradient, with and without padding masks, on one
thread and on two, block sizes that do not divide evenly included; its checks; and that it
leaves Numba's and the BLAS's thread counts as it found them."""

import numba
import numpy as np
import pytest
from threadpoolctl import threadpool_info

from test_fast import CLEAR, SHAPES, TOL32, make, max_rel, random_mask, run

from rnncourse import fast, fused, lstm, parallel

PARALLEL = (parallel.lstm_forward_parallel, parallel.lstm_backward_parallel)
FUSED = (fused.lstm_forward_fused, fused.lstm_backward_fused)
THREADS = [1, 2] if numba.config.NUMBA_NUM_THREADS >= 2 else [1]


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("shape", SHAPES + [(4, 6, 3, 1)])   # H = 1: one thread's block of units is empty
def test_parallel_equals_fused_and_clear(threads, masked, shape):
    rng = np.random.default_rng(sum(shape) + 5 * masked)
    N, T, D, H = shape
    args = make("lstm", rng, N, T, D, H, np.float32)
    mask = random_mask(rng, N, T) if masked else None
    dh = rng.standard_normal((N, T, H)).astype(np.float32)
    dc_last = rng.standard_normal((N, H)).astype(np.float32)
    states, grads = run(PARALLEL, "lstm", args, mask, dh, dc_last, threads=threads)
    for reference in (FUSED, CLEAR["lstm"]):
        ref_states, ref_grads = run(reference, "lstm", args, mask, dh, dc_last)
        for r, p in zip(ref_states + ref_grads, states + grads):
            assert p.shape == r.shape and p.dtype == r.dtype == np.float32
            assert max_rel(p, r) < TOL32


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("masked", [False, True])
def test_parallel_agrees_with_fused_to_float32_round_off(threads, masked):
    """The same arithmetic as the fused step, step for step; only the products (the BLAS called
    on blocks of rows) and the compiler's fused multiply-adds may round differently. Keras's
    initial weights, so that 30 steps do not amplify round-off (a chaotic network would). The
    backward passes, from the same cache, agree more closely still."""
    rng = np.random.default_rng(40 + masked)
    N, T, D, H = 24, 30, 16, 37                                # 37 units: blocks of 18 and 19
    params = lstm.init_lstm_params(D, H, rng, np.float32)
    x = rng.standard_normal((N, T, D)).astype(np.float32)
    h0, c0 = (0.5 * rng.standard_normal((2, N, H))).astype(np.float32)
    mask = random_mask(rng, N, T) if masked else None
    dh = rng.standard_normal((N, T, H)).astype(np.float32)
    out_p = parallel.lstm_forward_parallel(x, h0, c0, **params, mask=mask, threads=threads)
    out_f = fused.lstm_forward_fused(x, h0, c0, **params, mask=mask)
    for a, b in zip(out_p[:2], out_f[:2]):
        assert np.max(np.abs(a - b)) < 2e-6
    for name in ("gates", "states", "cells", "tanh_c"):
        assert np.max(np.abs(getattr(out_p[-1], name) - getattr(out_f[-1], name))) < 2e-6, name
    grads_p = parallel.lstm_backward_parallel(dh, out_f[-1], threads=threads)
    grads_f = fused.lstm_backward_fused(dh, out_f[-1])
    for a, b in zip(grads_p, grads_f):
        assert max_rel(a, b) < 1e-6


def test_parallel_cache_is_the_fast_paths_and_options_work():
    """Either backward pass takes the other's cache; a workspace is reused from call to call; the
    input gradient can be skipped."""
    rng = np.random.default_rng(41)
    args = make("lstm", rng, 5, 4, 3, 6, np.float32)
    dh = rng.standard_normal((5, 4, 6)).astype(np.float32)
    ws = fast.Workspace()
    reference = fused.lstm_backward_fused(dh, fused.lstm_forward_fused(**args)[-1])
    for _ in range(2):                                         # the second call reuses the buffers
        cache = parallel.lstm_forward_parallel(**args, workspace=ws)[-1]
        assert isinstance(cache, fast.LSTMCache)
        for result in (fused.lstm_backward_fused(dh, cache), parallel.lstm_backward_parallel(dh, cache)):
            for r, p in zip(reference, result):
                assert max_rel(p, r) < TOL32
    short = parallel.lstm_backward_parallel(dh, cache, input_gradient=False)
    assert short[0] is None
    full = parallel.lstm_backward_parallel(dh, cache)
    for a, b in zip(full[1:], short[1:]):
        np.testing.assert_array_equal(a, b)


def test_parallel_checks_its_inputs():
    rng = np.random.default_rng(42)
    args = make("lstm", rng, 2, 3, 4, 5, np.float32)
    with pytest.raises(TypeError, match="float32 only"):
        parallel.lstm_forward_parallel(**make("lstm", rng, 2, 3, 4, 5))
    with pytest.raises(ValueError, match="kernel"):
        parallel.lstm_forward_parallel(**{**args, "kernel": args["kernel"].T.copy()})
    for threads in (0, 1.5, True, numba.config.NUMBA_NUM_THREADS + 1):
        with pytest.raises(ValueError, match="threads"):
            parallel.lstm_forward_parallel(**args, threads=threads)
    with pytest.raises(TypeError, match="lstm_forward_parallel"):
        parallel.lstm_backward_parallel(np.zeros((2, 3, 5), np.float32), ("not", "a", "cache"))
    cache = parallel.lstm_forward_parallel(**args)[-1]
    with pytest.raises(ValueError, match="dh"):
        parallel.lstm_backward_parallel(np.zeros((2, 3, 4), np.float32), cache)
    with pytest.raises(TypeError, match="float32 only"):                 # a float64 gradient
        parallel.lstm_backward_parallel(np.zeros((2, 3, 5)), cache)
    mixed = fast.lstm_forward_fast(**{**args, "recurrent_kernel": args["recurrent_kernel"].astype(np.float64)})[-1]
    with pytest.raises(TypeError, match="recurrent_kernel is a float64"):   # float32 data, a float64 weight
        parallel.lstm_backward_parallel(np.zeros((2, 3, 5), np.float32), mixed)
    bad = args["x"].copy()
    bad[0, 1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        parallel.lstm_forward_parallel(**{**args, "x": bad})


def test_parallel_restores_numbas_and_the_blass_thread_counts():
    def blas_threads():
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    rng = np.random.default_rng(43)
    args = make("lstm", rng, 3, 4, 2, 5, np.float32)
    before_numba, before_blas = numba.get_num_threads(), blas_threads()
    cache = parallel.lstm_forward_parallel(**args, threads=1)[-1]
    parallel.lstm_backward_parallel(np.ones((3, 4, 5), np.float32), cache, threads=1)
    assert numba.get_num_threads() == before_numba
    assert blas_threads() == before_blas
