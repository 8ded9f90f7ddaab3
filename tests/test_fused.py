"""The fused LSTM (`rnncourse.fused`: Numba loops for the element-wise work) against the fast path
and the clear code, and against central differences: outputs and every gradient, with and
without padding masks, in float64 and float32; and `import rnncourse` stays free of Numba."""

import subprocess
import sys

import numpy as np
import pytest

from test_fast import CLEAR, FAST, SHAPES, TOL32, TOL64, make, max_rel, random_mask, run

from rnncourse import fast, fused
from rnncourse.gradcheck import gradient_check

FUSED = (fused.lstm_forward_fused, fused.lstm_backward_fused)


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype,tol", [(np.float64, TOL64), (np.float32, TOL32)])
def test_fused_equals_fast_and_clear(masked, shape, dtype, tol):
    rng = np.random.default_rng(sum(shape) + 3 * masked)
    N, T, D, H = shape
    args = make("lstm", rng, N, T, D, H, dtype)
    mask = random_mask(rng, N, T) if masked else None
    dh = rng.standard_normal((N, T, H)).astype(dtype)
    dc_last = rng.standard_normal((N, H)).astype(dtype)
    fused_states, fused_grads = run(FUSED, "lstm", args, mask, dh, dc_last)
    for reference in (FAST["lstm"], CLEAR["lstm"]):
        states, grads = run(reference, "lstm", args, mask, dh, dc_last)
        for r, f in zip(states, fused_states):
            assert f.shape == r.shape and f.dtype == r.dtype
            assert max_rel(f, r) < tol
        assert len(fused_grads) == len(grads)
        for r, f in zip(grads, fused_grads):
            assert f.shape == r.shape and f.dtype == r.dtype
            assert max_rel(f, r) < tol


@pytest.mark.parametrize("masked", [False, True])
def test_fused_gradients_match_central_differences(masked):
    rng = np.random.default_rng(21)
    N, T, D, H = 2, 6, 3, 4
    args = make("lstm", rng, N, T, D, H)
    mask = random_mask(rng, N, T) if masked else None
    upstream = rng.standard_normal((N, T, H))

    def loss():
        return float(np.sum(fused.lstm_forward_fused(**args, mask=mask)[0] * upstream))

    grads = fused.lstm_backward_fused(upstream, fused.lstm_forward_fused(**args, mask=mask)[-1])
    names = ["x", "h0", "c0", "kernel", "recurrent_kernel", "bias"]
    errors = gradient_check(loss, args, dict(zip(names, grads)))
    assert max(errors.values()) < 1e-7, errors


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fused_equals_fast_bit_for_bit(masked, dtype):
    """The backward loop computes the fast path's operations, associated the same way; the
    compiler keeps IEEE order (no fast-math), so from the same cache the results are identical,
    and so are the whole float64 passes. The float32 forward pass computes tanh differently
    (`fused._tanh32`): see the next test. Large enough that every transpose is done in several
    blocks of rows."""
    rng = np.random.default_rng(26 + masked)
    N, T, D, H = 37, 9, 5, 18
    args = make("lstm", rng, N, T, D, H, dtype)
    mask = random_mask(rng, N, T) if masked else None
    dh = rng.standard_normal((N, T, H)).astype(dtype)
    dc_last = rng.standard_normal((N, H)).astype(dtype)
    fast_out = fast.lstm_forward_fast(**args, mask=mask)
    fast_grads = fast.lstm_backward_fast(dh, fast_out[-1], dc_last)
    for a, b in zip(fast_grads, fused.lstm_backward_fused(dh, fast_out[-1], dc_last)):
        np.testing.assert_array_equal(a, b)
    if dtype == np.float64:
        fused_states, fused_grads = run(FUSED, "lstm", args, mask, dh, dc_last)
        for a, b in zip(list(fast_out[:-1]) + list(fast_grads), fused_states + fused_grads):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("masked", [False, True])
def test_fused_float32_forward_agrees_with_the_fast_path_to_round_off(masked):
    """In float32 the fused forward pass takes tanh from a rational function, within 5e-7 of
    the exact tanh (NumPy's is within about 6e-8); over 9 steps the states, and what the cache
    keeps for the backward pass, move by a few float32 units in the last place."""
    rng = np.random.default_rng(29 + masked)
    N, T, D, H = 37, 9, 5, 18
    args = make("lstm", rng, N, T, D, H, np.float32)
    mask = random_mask(rng, N, T) if masked else None
    if mask is not None:
        mask[0, :3] = False   # one example padded at the start
    fast_out = fast.lstm_forward_fast(**args, mask=mask)
    fused_out = fused.lstm_forward_fused(**args, mask=mask)
    for a, b in zip(fast_out[:-1], fused_out[:-1]):
        assert b.dtype == np.float32
        assert np.max(np.abs(a - b)) < 3e-6
    fast_cache, fused_cache = fast_out[-1], fused_out[-1]
    for name in ("gates", "states", "cells", "tanh_c"):
        assert np.max(np.abs(getattr(fast_cache, name) - getattr(fused_cache, name))) < 3e-6, name
    if mask is not None:   # padded steps still copy the state exactly
        h, c = fused_out[0], fused_out[1]
        for n, t in zip(*np.nonzero(~mask[:, 1:])):
            assert h[n, t + 1].tolist() == h[n, t].tolist() and c[n, t + 1].tolist() == c[n, t].tolist()


def test_the_rational_tanh_is_within_5e_7_of_tanh_and_keeps_nan():
    """5e-7 bounds it with or without fused multiply-adds (measured 2.6e-7 with, 4.0e-7 without)."""
    x = np.concatenate([np.linspace(-10, 10, 400_001, dtype=np.float32),
                        np.float32([0.0, -0.0, 1e-30, -1e-30, 1e30, -1e30, np.inf, -np.inf, np.nan])])
    y = np.empty_like(x)
    fused.tanh32(x, y)
    exact = np.tanh(x.astype(np.float64))
    finite = ~np.isnan(x)
    assert np.max(np.abs(y[finite] - exact[finite])) < 5e-7
    assert np.all(np.abs(y[finite]) <= 1)
    y_negated = np.empty_like(x)
    fused.tanh32(-x, y_negated)
    assert np.array_equal(y_negated[finite], -y[finite])  # odd, as tanh is
    assert np.isnan(y[-1])
    assert np.all(y[x == 0] == 0)


def test_fused_takes_a_float32_cache_with_a_float64_gradient():
    rng = np.random.default_rng(27)
    args = make("lstm", rng, 6, 5, 3, 4, np.float32)
    mask = random_mask(rng, 6, 5)
    dh = rng.standard_normal((6, 5, 4))                     # float64
    fast_grads = fast.lstm_backward_fast(dh, fast.lstm_forward_fast(**args, mask=mask)[-1])
    fused_grads = fused.lstm_backward_fused(dh, fused.lstm_forward_fused(**args, mask=mask)[-1])
    for a, b in zip(fast_grads, fused_grads):
        assert b.dtype == a.dtype == np.float64
        # not bit for bit: the float32 forward passes compute tanh differently (fused._tanh32),
        # and NumPy rounds some products of two float32 arrays to float32 before writing them
        # into a float64 array, where the loop keeps them in float64
        assert max_rel(b, a) < 1e-6


def test_the_fused_step_split_over_threads_equals_the_whole_batch():
    from rnncourse.processes import fast_layer_gradients

    rng = np.random.default_rng(28)
    args = make("lstm", rng, 8, 6, 3, 5)
    dh = rng.standard_normal((8, 6, 5))
    weights = ("lstm", args["kernel"], args["recurrent_kernel"], args["bias"])
    whole = fast_layer_gradients(args["x"], args["h0"], dh, *weights, workspace=fast.Workspace(), fused=True)
    spaces = [fast.Workspace(), fast.Workspace()]
    parts = fast.map_batch_slices(
        lambda i, x, h0, g: fast_layer_gradients(x, h0, g, *weights, workspace=spaces[i], fused=True),
        (args["x"], args["h0"], dh), 2)
    for total, pieces in zip(whole, zip(*parts)):
        assert max_rel(sum(pieces), total) < TOL64


def test_the_fused_and_fast_passes_share_their_cache():
    """Either backward pass takes either forward pass's cache, with the same results."""
    rng = np.random.default_rng(22)
    args = make("lstm", rng, 3, 5, 4, 6)
    mask = random_mask(rng, 3, 5)
    dh = rng.standard_normal((3, 5, 6))
    fast_cache = fast.lstm_forward_fast(**args, mask=mask)[-1]
    fused_cache = fused.lstm_forward_fused(**args, mask=mask)[-1]
    reference = fast.lstm_backward_fast(dh, fast_cache)
    for result in (fused.lstm_backward_fused(dh, fast_cache), fast.lstm_backward_fast(dh, fused_cache),
                   fused.lstm_backward_fused(dh, fused_cache)):
        for r, f in zip(reference, result):
            assert max_rel(f, r) < TOL64


def test_fused_mixed_precision_workspace_and_skipped_input_gradient():
    rng = np.random.default_rng(23)
    args = make("lstm", rng, 2, 4, 3, 5)
    args["x"] = args["x"].astype(np.float32)               # float32 data, float64 weights
    dh = rng.standard_normal((2, 4, 5))
    clear_states, clear_grads = run(CLEAR["lstm"], "lstm", args, None, dh)
    ws = fast.Workspace()
    for _ in range(2):                                      # the second call reuses the buffers
        out = fused.lstm_forward_fused(**args, workspace=ws)
        for c, f in zip(clear_states, out[:-1]):
            assert f.dtype == c.dtype == np.float64
            assert max_rel(f, c) < TOL64
        full = fused.lstm_backward_fused(dh, out[-1])
        for c, f in zip(clear_grads, full):
            assert max_rel(f, c) < TOL64
        short = fused.lstm_backward_fused(dh, out[-1], input_gradient=False)
        assert short[0] is None
        for a, b in zip(full[1:], short[1:]):
            np.testing.assert_array_equal(a, b)


def test_fused_checks_its_inputs_like_the_fast_path():
    rng = np.random.default_rng(24)
    args = make("lstm", rng, 2, 3, 4, 5)
    with pytest.raises(ValueError, match="kernel"):
        fused.lstm_forward_fused(**{**args, "kernel": args["kernel"].T.copy()})
    with pytest.raises(TypeError, match="lstm_forward_fused"):
        fused.lstm_backward_fused(np.zeros((2, 3, 5)), ("not", "a", "cache"))
    cache = fused.lstm_forward_fused(**args)[-1]
    with pytest.raises(ValueError, match="dh"):
        fused.lstm_backward_fused(np.zeros((2, 3, 4)), cache)
    with pytest.raises(ValueError, match="dc_last"):
        fused.lstm_backward_fused(np.zeros((2, 3, 5)), cache, dc_last=np.zeros((3, 5)))
    with pytest.raises(ValueError, match="NaN"):
        bad = args["x"].copy()
        bad[0, 1, 2] = np.nan
        fused.lstm_forward_fused(**{**args, "x": bad})
    h = fused.lstm_forward_fused(**args)[0]
    with pytest.raises(ValueError, match="read-only"):
        h[0, 0, 0] = 1.0


def test_importing_rnncourse_does_not_load_numba():
    code = "import sys, rnncourse, rnncourse.fast, rnncourse.processes; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_one_slice_of_a_training_step_can_run_fused():
    from rnncourse.processes import fast_layer_gradients

    rng = np.random.default_rng(25)
    args = make("lstm", rng, 3, 4, 2, 5)
    dh = rng.standard_normal((3, 4, 5))
    weights = (args["kernel"], args["recurrent_kernel"], args["bias"])
    plain = fast_layer_gradients(args["x"], args["h0"], dh, "lstm", *weights, workspace=fast.Workspace())
    fused_grads = fast_layer_gradients(args["x"], args["h0"], dh, "lstm", *weights, workspace=fast.Workspace(),
                                       fused=True)
    for a, b in zip(plain, fused_grads):
        assert max_rel(b, a) < TOL64
    with pytest.raises(ValueError, match="LSTM only"):
        fast_layer_gradients(args["x"], args["h0"], dh, "gru", *weights, fused=True)
