"""The vanilla RNN: every backward pass against numerical gradients, over whole sequences."""

import numpy as np
import pytest

from conftest import SHAPES
from rnncourse.gradcheck import gradient_check, numerical_gradient, rel_error
from rnncourse.rnn import rnn_backward, rnn_forward, rnn_step_backward, rnn_step_forward

TOL = 1e-6


def random_rnn(rng, N, T, D, H):
    return dict(
        x=rng.standard_normal((N, T, D)),
        h0=rng.standard_normal((N, H)),
        kernel=rng.standard_normal((D, H)) * 0.5,
        recurrent_kernel=rng.standard_normal((H, H)) * 0.5,
        bias=rng.standard_normal(H) * 0.1,
    )


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu", "linear"])
@pytest.mark.parametrize("N,T,D,H", SHAPES)
def test_step_backward_matches_numerical(rng, N, T, D, H, activation):
    a = random_rnn(rng, N, T, D, H)
    x_t = a["x"][:, 0]
    dh = rng.standard_normal((N, H))

    def f():
        h, _ = rnn_step_forward(x_t, a["h0"], a["kernel"], a["recurrent_kernel"], a["bias"], activation)
        return float(np.sum(h * dh))

    _, cache = rnn_step_forward(x_t, a["h0"], a["kernel"], a["recurrent_kernel"], a["bias"], activation)
    dx, dh0, dk, drk, db = rnn_step_backward(dh, cache)
    arrays = {"x_t": x_t, "h0": a["h0"], "kernel": a["kernel"], "recurrent_kernel": a["recurrent_kernel"], "bias": a["bias"]}
    errors = gradient_check(f, arrays, {"x_t": dx, "h0": dh0, "kernel": dk, "recurrent_kernel": drk, "bias": db})
    assert max(errors.values()) < TOL, errors


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("N,T,D,H", SHAPES)
def test_sequence_backward_matches_numerical(rng, N, T, D, H, activation):
    """A loss that reads every hidden state, so gradients cross every step of the sequence."""
    a = random_rnn(rng, N, T, D, H)
    dh = rng.standard_normal((N, T, H))

    def f():
        h, _ = rnn_forward(a["x"], a["h0"], a["kernel"], a["recurrent_kernel"], a["bias"], activation)
        return float(np.sum(h * dh))

    _, cache = rnn_forward(a["x"], a["h0"], a["kernel"], a["recurrent_kernel"], a["bias"], activation)
    dx, dh0, dk, drk, db = rnn_backward(dh, cache)
    errors = gradient_check(f, a, {"x": dx, "h0": dh0, "kernel": dk, "recurrent_kernel": drk, "bias": db})
    assert max(errors.values()) < TOL, errors


@pytest.mark.parametrize("N,T,D,H", SHAPES[1:])
def test_loss_on_last_state_only_reaches_first_step(rng, N, T, D, H):
    """Only h_T is used: the whole gradient must travel back through T steps of recurrence."""
    a = random_rnn(rng, N, T, D, H)
    dh = np.zeros((N, T, H))
    dh[:, -1] = rng.standard_normal((N, H))

    def f():
        h, _ = rnn_forward(a["x"], a["h0"], a["kernel"], a["recurrent_kernel"], a["bias"])
        return float(np.sum(h[:, -1] * dh[:, -1]))

    _, cache = rnn_forward(a["x"], a["h0"], a["kernel"], a["recurrent_kernel"], a["bias"])
    dx, dh0, _, _, _ = rnn_backward(dh, cache)
    assert np.abs(dx[:, 0]).max() > 0
    assert rel_error(dx, numerical_gradient(f, a["x"])) < TOL
    assert rel_error(dh0, numerical_gradient(f, a["h0"])) < TOL


@pytest.mark.parametrize("N,T,D,H", SHAPES[1:])
def test_masked_sequence(rng, N, T, D, H):
    a = random_rnn(rng, N, T, D, H)
    lengths = rng.integers(1, T + 1, size=N)
    mask = np.arange(T)[None, :] < lengths[:, None]
    dh = rng.standard_normal((N, T, H))

    def f():
        h, _ = rnn_forward(a["x"], a["h0"], a["kernel"], a["recurrent_kernel"], a["bias"], mask=mask)
        return float(np.sum(h * dh))

    h, cache = rnn_forward(a["x"], a["h0"], a["kernel"], a["recurrent_kernel"], a["bias"], mask=mask)
    # After its last real step, each sequence's state is frozen.
    for n in range(N):
        assert np.array_equal(h[n, lengths[n]:], np.repeat(h[n, lengths[n] - 1][None], T - lengths[n], 0))
    dx, dh0, dk, drk, db = rnn_backward(dh, cache)
    errors = gradient_check(f, a, {"x": dx, "h0": dh0, "kernel": dk, "recurrent_kernel": drk, "bias": db})
    assert max(errors.values()) < TOL, errors
    assert np.all(dx[~mask] == 0)


def test_forward_is_the_recurrence(rng):
    a = random_rnn(rng, 2, 3, 4, 5)
    h, _ = rnn_forward(a["x"], a["h0"], a["kernel"], a["recurrent_kernel"], a["bias"])
    h_prev = a["h0"]
    for t in range(3):
        h_prev = np.tanh(a["x"][:, t] @ a["kernel"] + h_prev @ a["recurrent_kernel"] + a["bias"])
        np.testing.assert_allclose(h[:, t], h_prev, rtol=1e-12)


def test_float32_stays_float32(rng):
    a = {k: v.astype(np.float32) for k, v in random_rnn(rng, 2, 3, 4, 5).items()}
    h, cache = rnn_forward(a["x"], a["h0"], a["kernel"], a["recurrent_kernel"], a["bias"])
    assert h.dtype == np.float32
    grads = rnn_backward(np.ones_like(h), cache)
    assert all(g.dtype == np.float32 for g in grads)


# ---------------------------------------------------------------- bad input, clear errors
def test_wrong_input_rank_names_expected_shape(rng):
    a = random_rnn(rng, 2, 3, 4, 5)
    with pytest.raises(ValueError, match=r"x must have shape \(N, T, D\).*got shape \(3, 4\)"):
        rnn_forward(a["x"][0], a["h0"], a["kernel"], a["recurrent_kernel"], a["bias"])


def test_transposed_kernel_is_caught(rng):
    a = random_rnn(rng, 2, 3, 4, 5)
    with pytest.raises(ValueError, match=r"kernel must have shape \(D, H\) = \(4, 5\), got shape \(5, 4\)"):
        rnn_forward(a["x"], a["h0"], a["kernel"].T, a["recurrent_kernel"], a["bias"])


def test_batch_mismatch_between_x_and_h0(rng):
    a = random_rnn(rng, 2, 3, 4, 5)
    with pytest.raises(ValueError, match=r"h0 must have shape \(N, H\) = \(2, \?\), got shape \(3, 5\)"):
        rnn_forward(a["x"], np.zeros((3, 5)), a["kernel"], a["recurrent_kernel"], a["bias"])


def test_wrong_bias_and_step_shapes(rng):
    a = random_rnn(rng, 2, 3, 4, 5)
    with pytest.raises(ValueError, match=r"bias must have shape \(H,\) = \(5,\) \(1 dimension\), got shape \(1, 5\) \(2 dimensions\)"):
        rnn_step_forward(a["x"][:, 0], a["h0"], a["kernel"], a["recurrent_kernel"], a["bias"][None])
    _, cache = rnn_forward(a["x"], a["h0"], a["kernel"], a["recurrent_kernel"], a["bias"])
    with pytest.raises(ValueError, match=r"dh must have shape"):
        rnn_backward(np.zeros((2, 3, 4)), cache)


def test_integer_input_is_refused(rng):
    a = random_rnn(rng, 2, 3, 4, 5)
    with pytest.raises(TypeError, match="x must be a floating-point array"):
        rnn_forward(a["x"].astype(int), a["h0"], a["kernel"], a["recurrent_kernel"], a["bias"])
    with pytest.raises(TypeError, match="must be a NumPy array"):
        rnn_forward(a["x"].tolist(), a["h0"], a["kernel"], a["recurrent_kernel"], a["bias"])


def test_bad_mask_and_activation(rng):
    a = random_rnn(rng, 2, 3, 4, 5)
    args = (a["x"], a["h0"], a["kernel"], a["recurrent_kernel"], a["bias"])
    with pytest.raises(TypeError, match="mask must have dtype bool"):
        rnn_forward(*args, mask=np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"mask must have shape \(N, T\) = \(2, 3\)"):
        rnn_forward(*args, mask=np.ones((2, 4), bool))
    with pytest.raises(ValueError, match="unknown activation 'softplus'"):
        rnn_forward(*args, activation="softplus")
