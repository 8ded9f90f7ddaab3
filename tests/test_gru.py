"""The GRU, both forms (reset_after True and False): backward passes against numerical gradients,
the forward pass against its equations."""

import numpy as np
import pytest

from conftest import SHAPES
from rnncourse.activations import sigmoid
from rnncourse.gradcheck import gradient_check, numerical_gradient, rel_error
from rnncourse.gru import (
    gru_backward,
    gru_forward,
    gru_gates,
    gru_step_backward,
    gru_step_forward,
    init_gru_params,
)

TOL = 1e-6
BOTH_FORMS = pytest.mark.parametrize("reset_after", [True, False], ids=["reset_after", "reset_before"])


def random_gru(rng, N, T, D, H, reset_after):
    return dict(
        x=rng.standard_normal((N, T, D)),
        h0=rng.standard_normal((N, H)),
        kernel=rng.standard_normal((D, 3 * H)) * 0.5,
        recurrent_kernel=rng.standard_normal((H, 3 * H)) * 0.5,
        bias=rng.standard_normal((2, 3 * H) if reset_after else 3 * H) * 0.1,
    )


def run(a, reset_after, mask=None):
    return gru_forward(a["x"], a["h0"], a["kernel"], a["recurrent_kernel"], a["bias"], reset_after, mask=mask)


def grads(dx, dh0, dk, drk, db):
    return {"x": dx, "h0": dh0, "kernel": dk, "recurrent_kernel": drk, "bias": db}


@BOTH_FORMS
@pytest.mark.parametrize("N,T,D,H", SHAPES)
def test_step_backward_matches_numerical(rng, N, T, D, H, reset_after):
    a = random_gru(rng, N, T, D, H, reset_after)
    x_t = a["x"][:, 0]
    dh = rng.standard_normal((N, H))

    def f():
        h, _ = gru_step_forward(x_t, a["h0"], a["kernel"], a["recurrent_kernel"], a["bias"], reset_after)
        return float(np.sum(h * dh))

    _, cache = gru_step_forward(x_t, a["h0"], a["kernel"], a["recurrent_kernel"], a["bias"], reset_after)
    dx, dh0, dk, drk, db = gru_step_backward(dh, cache)
    arrays = {"x_t": x_t, "h0": a["h0"], "kernel": a["kernel"], "recurrent_kernel": a["recurrent_kernel"], "bias": a["bias"]}
    errors = gradient_check(f, arrays, {"x_t": dx, "h0": dh0, "kernel": dk, "recurrent_kernel": drk, "bias": db})
    assert max(errors.values()) < TOL, errors


@BOTH_FORMS
@pytest.mark.parametrize("N,T,D,H", SHAPES)
def test_sequence_backward_matches_numerical(rng, N, T, D, H, reset_after):
    """A loss that reads every hidden state, so gradients cross every step of the sequence."""
    a = random_gru(rng, N, T, D, H, reset_after)
    dh = rng.standard_normal((N, T, H))

    def f():
        h, _ = run(a, reset_after)
        return float(np.sum(h * dh))

    _, cache = run(a, reset_after)
    errors = gradient_check(f, a, grads(*gru_backward(dh, cache)))
    assert max(errors.values()) < TOL, errors


@BOTH_FORMS
@pytest.mark.parametrize("N,T,D,H", SHAPES[1:])
def test_loss_on_last_state_only_reaches_first_step(rng, N, T, D, H, reset_after):
    a = random_gru(rng, N, T, D, H, reset_after)
    dh = np.zeros((N, T, H))
    dh[:, -1] = rng.standard_normal((N, H))

    def f():
        h, _ = run(a, reset_after)
        return float(np.sum(h[:, -1] * dh[:, -1]))

    _, cache = run(a, reset_after)
    dx, dh0, _, _, _ = gru_backward(dh, cache)
    assert np.abs(dx[:, 0]).max() > 0
    assert rel_error(dx, numerical_gradient(f, a["x"])) < TOL
    assert rel_error(dh0, numerical_gradient(f, a["h0"])) < TOL


@BOTH_FORMS
@pytest.mark.parametrize("N,T,D,H", SHAPES[1:])
def test_masked_sequence(rng, N, T, D, H, reset_after):
    a = random_gru(rng, N, T, D, H, reset_after)
    # Any pattern of padding, not only at the end; at least one real step per sequence.
    mask = rng.random((N, T)) < 0.6
    mask[:, 0] |= ~mask.any(axis=1)
    dh = rng.standard_normal((N, T, H))

    def f():
        h, _ = run(a, reset_after, mask)
        return float(np.sum(h * dh))

    h, cache = run(a, reset_after, mask)
    h_before = np.concatenate([a["h0"][:, None], h[:, :-1]], axis=1)
    assert np.array_equal(h[~mask], h_before[~mask])
    dx, *rest = gru_backward(dh, cache)
    errors = gradient_check(f, a, grads(dx, *rest))
    assert max(errors.values()) < TOL, errors
    assert np.all(dx[~mask] == 0)


@BOTH_FORMS
def test_forward_is_the_equations(rng, reset_after):
    N, T, D, H = 2, 4, 3, 5
    a = random_gru(rng, N, T, D, H, reset_after)
    h, _ = run(a, reset_after)
    W, U, b = a["kernel"], a["recurrent_kernel"], a["bias"]
    W_z, W_r, W_h = W[:, :H], W[:, H:2 * H], W[:, 2 * H:]
    U_z, U_r, U_h = U[:, :H], U[:, H:2 * H], U[:, 2 * H:]
    if reset_after:
        (bi_z, bi_r, bi_h), (br_z, br_r, br_h) = b[0].reshape(3, H), b[1].reshape(3, H)
    else:
        (bi_z, bi_r, bi_h), (br_z, br_r, br_h) = b.reshape(3, H), np.zeros((3, H))
    h_prev = a["h0"]
    for t in range(T):
        x_t = a["x"][:, t]
        z = sigmoid(x_t @ W_z + bi_z + h_prev @ U_z + br_z)
        r = sigmoid(x_t @ W_r + bi_r + h_prev @ U_r + br_r)
        if reset_after:
            candidate = np.tanh(x_t @ W_h + bi_h + r * (h_prev @ U_h + br_h))
        else:
            candidate = np.tanh(x_t @ W_h + bi_h + (r * h_prev) @ U_h)
        h_prev = z * h_prev + (1 - z) * candidate
        np.testing.assert_allclose(h[:, t], h_prev, rtol=1e-12)


def test_the_two_forms_differ(rng):
    """Same weights (bias rows summed), different candidate: they agree only when r = 1 everywhere."""
    a = random_gru(rng, 2, 5, 3, 4, reset_after=True)
    h_after, _ = run(a, True)
    h_before, _ = run({**a, "bias": a["bias"].sum(axis=0)}, False)
    assert np.abs(h_after - h_before).max() > 1e-3


@BOTH_FORMS
def test_gates_for_plotting(rng, reset_after):
    N, T, D, H = 3, 6, 2, 4
    a = random_gru(rng, N, T, D, H, reset_after)
    h, cache = run(a, reset_after)
    gates = gru_gates(cache)
    assert set(gates) == {"z", "r", "candidate"}
    assert all(v.shape == (N, T, H) for v in gates.values())
    assert np.all((gates["z"] > 0) & (gates["z"] < 1)) and np.all((gates["r"] > 0) & (gates["r"] < 1))
    h_prev = np.concatenate([a["h0"][:, None], h[:, :-1]], axis=1)
    np.testing.assert_allclose(h, gates["z"] * h_prev + (1 - gates["z"]) * gates["candidate"], rtol=1e-12)


@BOTH_FORMS
def test_init_matches_keras_defaults(rng, reset_after):
    D, H = 5, 3
    p = init_gru_params(D, H, rng, reset_after=reset_after)
    assert p["kernel"].shape == (D, 3 * H) and p["recurrent_kernel"].shape == (H, 3 * H)
    assert np.abs(p["kernel"]).max() <= np.sqrt(6 / (D + 3 * H))
    np.testing.assert_allclose(p["recurrent_kernel"] @ p["recurrent_kernel"].T, np.eye(H), atol=1e-12)
    assert p["bias"].shape == ((2, 3 * H) if reset_after else (3 * H,))
    assert not p["bias"].any()


@BOTH_FORMS
def test_float32_stays_float32(rng, reset_after):
    a = {k: v.astype(np.float32) for k, v in random_gru(rng, 2, 3, 4, 5, reset_after).items()}
    h, cache = run(a, reset_after)
    assert h.dtype == np.float32
    out = gru_backward(np.ones_like(h), cache)
    assert all(g.dtype == np.float32 for g in out)
    assert out[-1].shape == a["bias"].shape


# ---------------------------------------------------------------- bad input, clear errors
def test_transposed_kernel_is_caught(rng):
    a = random_gru(rng, 2, 3, 5, 3, True)
    with pytest.raises(ValueError, match=r"kernel must have shape \(D, 3H\) = \(5, 9\), got shape \(9, 5\)"):
        gru_forward(a["x"], a["h0"], a["kernel"].T, a["recurrent_kernel"], a["bias"])


def test_bias_of_the_other_form_is_named(rng):
    a = random_gru(rng, 2, 3, 5, 3, True)
    args = (a["x"], a["h0"], a["kernel"], a["recurrent_kernel"])
    with pytest.raises(ValueError, match=r"bias must have shape \(2, 3H\) = \(2, 9\).*got shape \(9,\).*"
                                         r"belongs to a GRU with reset_after=False"):
        gru_forward(*args, a["bias"][0], reset_after=True)
    with pytest.raises(ValueError, match=r"bias must have shape \(3H,\) = \(9,\).*got shape \(2, 9\).*"
                                         r"belongs to a GRU with reset_after=True"):
        gru_forward(*args, a["bias"], reset_after=False)
    with pytest.raises(ValueError, match=r"bias must have shape \(2, 3H\) = \(2, 9\), got shape \(2, 8\) \(dimension 1, 3H, should be 9\)$"):
        gru_forward(*args, a["bias"][:, :8], reset_after=True)


def test_wrong_shapes_and_dtypes(rng):
    a = random_gru(rng, 2, 3, 5, 3, True)
    args = (a["x"], a["h0"], a["kernel"], a["recurrent_kernel"], a["bias"])
    with pytest.raises(ValueError, match=r"recurrent_kernel must have shape \(H, 3H\) = \(3, 9\), got shape \(3, 12\)"):
        gru_forward(*args[:3], np.zeros((3, 12)), a["bias"])
    with pytest.raises(ValueError, match=r"h_prev must have shape \(N, H\) = \(2, \?\), got shape \(1, 3\)"):
        gru_step_forward(a["x"][:, 0], a["h0"][:1], *args[2:])
    with pytest.raises(TypeError, match="x must be a floating-point array"):
        gru_forward(a["x"].astype(np.int64), *args[1:])
    with pytest.raises(TypeError, match="reset_after must be True or False"):
        gru_forward(*args, reset_after="yes")
    with pytest.raises(TypeError, match="mask must have dtype bool"):
        gru_forward(*args, mask=np.ones((2, 3), dtype=np.int8))
    h, cache = gru_forward(*args)
    with pytest.raises(ValueError, match=r"dh must have shape \(2, 3, 3\)"):
        gru_backward(h[:, :2], cache)
