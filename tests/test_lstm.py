"""The LSTM: every backward pass against numerical gradients, the forward pass against its equations."""

import numpy as np
import pytest

from conftest import SHAPES
from rnncourse.activations import sigmoid
from rnncourse.gradcheck import gradient_check, numerical_gradient, rel_error
from rnncourse.lstm import (
    init_lstm_params,
    lstm_backward,
    lstm_forward,
    lstm_gates,
    lstm_step_backward,
    lstm_step_forward,
)

TOL = 1e-6
WEIGHTS = ("kernel", "recurrent_kernel", "bias")


def random_lstm(rng, N, T, D, H):
    return dict(
        x=rng.standard_normal((N, T, D)),
        h0=rng.standard_normal((N, H)),
        c0=rng.standard_normal((N, H)),
        kernel=rng.standard_normal((D, 4 * H)) * 0.5,
        recurrent_kernel=rng.standard_normal((H, 4 * H)) * 0.5,
        bias=rng.standard_normal(4 * H) * 0.1,
    )


def run(a, mask=None):
    return lstm_forward(a["x"], a["h0"], a["c0"], a["kernel"], a["recurrent_kernel"], a["bias"], mask=mask)


def random_mask(rng, N, T):
    """Any pattern of padding, not only at the end: the carry-over rule must hold anywhere."""
    mask = rng.random((N, T)) < 0.6
    mask[:, 0] |= ~mask.any(axis=1)  # keep at least one real step in each sequence
    return mask


@pytest.mark.parametrize("N,T,D,H", SHAPES)
def test_step_backward_matches_numerical(rng, N, T, D, H):
    a = random_lstm(rng, N, T, D, H)
    x_t = a["x"][:, 0]
    dh, dc = rng.standard_normal((N, H)), rng.standard_normal((N, H))

    def f():
        h, c, _ = lstm_step_forward(x_t, a["h0"], a["c0"], a["kernel"], a["recurrent_kernel"], a["bias"])
        return float(np.sum(h * dh) + np.sum(c * dc))

    _, _, cache = lstm_step_forward(x_t, a["h0"], a["c0"], a["kernel"], a["recurrent_kernel"], a["bias"])
    dx, dh0, dc0, dk, drk, db = lstm_step_backward(dh, dc, cache)
    arrays = {"x_t": x_t, "h0": a["h0"], "c0": a["c0"], **{w: a[w] for w in WEIGHTS}}
    analytic = {"x_t": dx, "h0": dh0, "c0": dc0, "kernel": dk, "recurrent_kernel": drk, "bias": db}
    errors = gradient_check(f, arrays, analytic)
    assert max(errors.values()) < TOL, errors


@pytest.mark.parametrize("use_dc_last", [False, True])
@pytest.mark.parametrize("N,T,D,H", SHAPES)
def test_sequence_backward_matches_numerical(rng, N, T, D, H, use_dc_last):
    """A loss that reads every hidden state (and, optionally, the final cell state)."""
    a = random_lstm(rng, N, T, D, H)
    dh = rng.standard_normal((N, T, H))
    dc_last = rng.standard_normal((N, H)) if use_dc_last else None

    def f():
        h, c, _ = run(a)
        return float(np.sum(h * dh) + (np.sum(c[:, -1] * dc_last) if use_dc_last else 0.0))

    _, _, cache = run(a)
    dx, dh0, dc0, dk, drk, db = lstm_backward(dh, cache, dc_last=dc_last)
    analytic = {"x": dx, "h0": dh0, "c0": dc0, "kernel": dk, "recurrent_kernel": drk, "bias": db}
    errors = gradient_check(f, a, analytic)
    assert max(errors.values()) < TOL, errors


@pytest.mark.parametrize("N,T,D,H", SHAPES[1:])
def test_final_cell_state_gradient_alone_reaches_first_step(rng, N, T, D, H):
    """Only c_T is used (dh = 0): the gradient must travel back through the cell state alone."""
    a = random_lstm(rng, N, T, D, H)
    dc_last = rng.standard_normal((N, H))

    def f():
        _, c, _ = run(a)
        return float(np.sum(c[:, -1] * dc_last))

    _, _, cache = run(a)
    dx, dh0, dc0, _, _, _ = lstm_backward(np.zeros((N, T, H)), cache, dc_last=dc_last)
    assert np.abs(dx[:, 0]).max() > 0
    for name, grad in (("x", dx), ("h0", dh0), ("c0", dc0)):
        assert rel_error(grad, numerical_gradient(f, a[name])) < TOL, name


@pytest.mark.parametrize("N,T,D,H", SHAPES[1:])
def test_masked_sequence(rng, N, T, D, H):
    a = random_lstm(rng, N, T, D, H)
    mask = random_mask(rng, N, T)
    dh = rng.standard_normal((N, T, H))
    dc_last = rng.standard_normal((N, H))

    def f():
        h, c, _ = run(a, mask)
        return float(np.sum(h * dh) + np.sum(c[:, -1] * dc_last))

    h, c, cache = run(a, mask)
    # At a padded step both states are copies of the previous ones.
    h_before = np.concatenate([a["h0"][:, None], h[:, :-1]], axis=1)
    c_before = np.concatenate([a["c0"][:, None], c[:, :-1]], axis=1)
    assert np.array_equal(h[~mask], h_before[~mask])
    assert np.array_equal(c[~mask], c_before[~mask])
    dx, dh0, dc0, dk, drk, db = lstm_backward(dh, cache, dc_last=dc_last)
    analytic = {"x": dx, "h0": dh0, "c0": dc0, "kernel": dk, "recurrent_kernel": drk, "bias": db}
    errors = gradient_check(f, a, analytic)
    assert max(errors.values()) < TOL, errors
    assert np.all(dx[~mask] == 0)


def test_forward_is_the_equations(rng):
    N, T, D, H = 2, 4, 3, 5
    a = random_lstm(rng, N, T, D, H)
    h, c, _ = run(a)
    W, U, b = a["kernel"], a["recurrent_kernel"], a["bias"]
    h_prev, c_prev = a["h0"], a["c0"]
    for t in range(T):
        x_t = a["x"][:, t]

        def gate(k):  # block k of the Keras layout, columns k*H .. (k+1)*H
            cols = slice(k * H, (k + 1) * H)
            return x_t @ W[:, cols] + h_prev @ U[:, cols] + b[cols]

        i, f, g, o = sigmoid(gate(0)), sigmoid(gate(1)), np.tanh(gate(2)), sigmoid(gate(3))
        c_prev = f * c_prev + i * g
        h_prev = o * np.tanh(c_prev)
        np.testing.assert_allclose(c[:, t], c_prev, rtol=1e-12)
        np.testing.assert_allclose(h[:, t], h_prev, rtol=1e-12)


def test_gates_for_plotting(rng):
    N, T, D, H = 3, 6, 2, 4
    a = random_lstm(rng, N, T, D, H)
    h, c, cache = run(a)
    gates = lstm_gates(cache)
    assert set(gates) == {"i", "f", "g", "o", "c"}
    assert all(v.shape == (N, T, H) for v in gates.values())
    for name in "ifo":
        assert np.all((gates[name] > 0) & (gates[name] < 1)), name
    assert np.all(np.abs(gates["g"]) < 1)
    # The gates are the ones the states were built from.
    c_prev = np.concatenate([a["c0"][:, None], c[:, :-1]], axis=1)
    np.testing.assert_allclose(gates["c"], gates["f"] * c_prev + gates["i"] * gates["g"], rtol=1e-12)
    np.testing.assert_allclose(h, gates["o"] * np.tanh(gates["c"]), rtol=1e-12)


def test_init_matches_keras_defaults(rng):
    D, H = 5, 3
    p = init_lstm_params(D, H, rng)
    assert p["kernel"].shape == (D, 4 * H) and p["recurrent_kernel"].shape == (H, 4 * H)
    assert np.abs(p["kernel"]).max() <= np.sqrt(6 / (D + 4 * H))
    np.testing.assert_allclose(p["recurrent_kernel"] @ p["recurrent_kernel"].T, np.eye(H), atol=1e-12)
    np.testing.assert_array_equal(p["bias"], np.r_[np.zeros(H), np.ones(H), np.zeros(2 * H)])
    assert init_lstm_params(D, H, rng, np.float32)["kernel"].dtype == np.float32


def test_float32_stays_float32(rng):
    a = {k: v.astype(np.float32) for k, v in random_lstm(rng, 2, 3, 4, 5).items()}
    h, c, cache = run(a)
    assert h.dtype == c.dtype == np.float32
    grads = lstm_backward(np.ones_like(h), cache, dc_last=np.ones_like(c[:, -1]))
    assert all(g.dtype == np.float32 for g in grads)


# ---------------------------------------------------------------- bad input, clear errors
def test_transposed_kernel_is_caught(rng):
    a = random_lstm(rng, 2, 3, 5, 3)
    with pytest.raises(ValueError, match=r"kernel must have shape \(D, 4H\) = \(5, 12\), got shape \(12, 5\)"):
        lstm_forward(a["x"], a["h0"], a["c0"], a["kernel"].T, a["recurrent_kernel"], a["bias"])


def test_wrong_weight_shapes(rng):
    a = random_lstm(rng, 2, 3, 5, 3)
    args = [a["x"], a["h0"], a["c0"], a["kernel"], a["recurrent_kernel"], a["bias"]]
    with pytest.raises(ValueError, match=r"recurrent_kernel must have shape \(H, 4H\) = \(3, 12\), got shape \(3, 9\)"):
        lstm_forward(*args[:4], a["recurrent_kernel"][:, :9], a["bias"])
    with pytest.raises(ValueError, match=r"bias must have shape \(4H,\) = \(12,\) \(1 dimension\), got shape \(1, 12\)"):
        lstm_forward(*args[:5], a["bias"][None])
    with pytest.raises(ValueError, match=r"c0 must have shape \(N, H\) = \(2, 3\), got shape \(2, 4\)"):
        lstm_forward(a["x"], a["h0"], np.zeros((2, 4)), *args[3:])
    with pytest.raises(ValueError, match=r"c_prev must have shape \(N, H\) = \(2, 3\)"):
        lstm_step_forward(a["x"][:, 0], a["h0"], np.zeros((1, 3)), *args[3:])


def test_wrong_gradient_shapes(rng):
    a = random_lstm(rng, 2, 3, 5, 3)
    h, c, cache = run(a)
    with pytest.raises(ValueError, match=r"dh must have shape \(2, 3, 3\)"):
        lstm_backward(np.zeros((2, 3, 12)), cache)
    with pytest.raises(ValueError, match=r"dc_last must have shape \(2, 3\) \(2 dimensions\), got shape \(2, 3, 3\)"):
        lstm_backward(np.zeros_like(h), cache, dc_last=np.zeros_like(c))


def test_bad_dtypes_and_mask(rng):
    a = random_lstm(rng, 2, 3, 5, 3)
    args = (a["x"], a["h0"], a["c0"], a["kernel"], a["recurrent_kernel"], a["bias"])
    with pytest.raises(TypeError, match="c0 must be a floating-point array"):
        lstm_forward(a["x"], a["h0"], np.zeros((2, 3), dtype=int), *args[3:])
    with pytest.raises(TypeError, match="kernel must be a NumPy array"):
        lstm_forward(*args[:3], a["kernel"].tolist(), *args[4:])
    with pytest.raises(TypeError, match="mask must have dtype bool"):
        lstm_forward(*args, mask=np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"mask must have shape \(N, T\) = \(2, 3\)"):
        lstm_forward(*args, mask=np.ones((3, 2), bool))
