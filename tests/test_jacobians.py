import numpy as np
import pytest

from rnncourse import rnn
from rnncourse.activations import get_activation
from rnncourse.jacobians import (backprop_norms, numerical_jacobian, scaled_orthogonal, state_jacobian,
                                 step_jacobians, truncated_rnn_backward)


def make(rng, N=3, T=9, D=2, H=4, activation="tanh"):
    x = rng.standard_normal((N, T, D))
    h0 = 0.5 * rng.standard_normal((N, H))
    params = dict(kernel=0.7 * rng.standard_normal((D, H)), recurrent_kernel=0.7 * rng.standard_normal((H, H)),
                  bias=0.1 * rng.standard_normal(H))
    return x, h0, params


def run_from(x, h_start, start, params, activation):
    """h at the last step when the state after step `start` is replaced by h_start (one example)."""
    h, _ = rnn.rnn_forward(x[None, start + 1:], h_start[None], **params, activation=activation)
    return h[0, -1]


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "linear"])
@pytest.mark.parametrize("start", [-1, 2, 7])
def test_jacobian_product_matches_finite_differences(activation, start):
    rng = np.random.default_rng(5)
    x, h0, params = make(rng, activation=activation)
    h, cache = rnn.rnn_forward(x, h0, **params, activation=activation)
    T = x.shape[1]
    analytic = state_jacobian(cache, T - 1, start)
    for n in range(x.shape[0]):
        h_start = h0[n] if start == -1 else h[n, start]
        numeric = numerical_jacobian(lambda v: run_from(x[n], v, start, params, activation), h_start)
        np.testing.assert_allclose(analytic[n], numeric, rtol=1e-6, atol=1e-8)


def test_step_jacobian_is_diag_slope_times_U_transposed():
    rng = np.random.default_rng(0)
    x, h0, params = make(rng, T=2)
    h, cache = rnn.rnn_forward(x, h0, **params)
    J = step_jacobians(cache)
    slope = get_activation("tanh").derivative_from_output(h[0, 1])
    np.testing.assert_allclose(J[0, 1], np.diag(slope) @ params["recurrent_kernel"].T)
    # the wrong orientation (U instead of U^T) is not the Jacobian for a generic U
    assert not np.allclose(J[0, 1], np.diag(slope) @ params["recurrent_kernel"])


def test_backprop_norms_are_the_norms_of_jacobian_products():
    rng = np.random.default_rng(1)
    x, h0, params = make(rng)
    _, cache = rnn.rnn_forward(x, h0, **params)
    g = rng.standard_normal((3, 4))
    norms = backprop_norms(cache, g)
    T = x.shape[1]
    for t in [0, 4, T - 1]:
        expected = np.linalg.norm(np.einsum("nh,nhk->nk", g, state_jacobian(cache, T - 1, t)), axis=1)
        np.testing.assert_allclose(norms[:, t], expected)


def test_linear_rnn_with_scaled_orthogonal_weights_scales_gradients_exactly():
    rng = np.random.default_rng(2)
    H, T = 6, 20
    U = scaled_orthogonal(rng, H, 0.8)
    np.testing.assert_allclose(np.abs(np.linalg.eigvals(U)), 0.8)
    np.testing.assert_allclose(np.linalg.svd(U, compute_uv=False), 0.8)
    x = rng.standard_normal((2, T, 3))
    _, cache = rnn.rnn_forward(x, np.zeros((2, H)), rng.standard_normal((3, H)), U, np.zeros(H), activation="linear")
    g = rng.standard_normal((2, H))
    norms = backprop_norms(cache, g)
    np.testing.assert_allclose(norms / norms[:, -1:], 0.8 ** np.arange(T - 1, -1, -1)[None].repeat(2, 0))


@pytest.mark.parametrize("T, k", [(12, 12), (12, 4), (12, 5), (7, 1)])
def test_truncated_bptt_equals_windows_with_a_stopped_gradient(T, k):
    rng = np.random.default_rng(3)
    x, h0, params = make(rng, T=T)
    dh = rng.standard_normal((3, T, 4))
    _, cache = rnn.rnn_forward(x, h0, **params)
    updates = truncated_rnn_backward(dh, cache, k)
    assert len(updates) == -(-T // k)
    h_start = h0
    for u, first in zip(updates, range(0, T, k)):
        window = slice(first, min(first + k, T))
        h, wcache = rnn.rnn_forward(x[:, window], h_start, **params)
        dx, _, dk, drk, db = rnn.rnn_backward(dh[:, window], wcache)
        np.testing.assert_allclose(u["kernel"], dk, atol=1e-12)
        np.testing.assert_allclose(u["recurrent_kernel"], drk, atol=1e-12)
        np.testing.assert_allclose(u["bias"], db, atol=1e-12)
        np.testing.assert_allclose(u["x"][:, window], dx, atol=1e-12)
        h_start = h[:, -1]


def test_truncated_bptt_with_k_equal_T_is_full_bptt_and_k2_reaches_further():
    rng = np.random.default_rng(4)
    T = 10
    x, h0, params = make(rng, T=T)
    dh = rng.standard_normal((3, T, 4))
    _, cache = rnn.rnn_forward(x, h0, **params)
    dx, _, dk, drk, db = rnn.rnn_backward(dh, cache)
    (full,) = truncated_rnn_backward(dh, cache, T)
    np.testing.assert_allclose(full["recurrent_kernel"], drk, atol=1e-12)
    np.testing.assert_allclose(full["x"], dx, atol=1e-12)
    # a loss only at the last step: with k1 = 2, k2 = 5 it reaches back exactly 5 steps
    dh_last = np.zeros_like(dh)
    dh_last[:, -1] = dh[:, -1]
    last = truncated_rnn_backward(dh_last, cache, 2, 5)[-1]
    reached = np.abs(last["x"]).sum(axis=(0, 2)) > 0
    np.testing.assert_array_equal(reached, np.arange(T) >= T - 5)
    with pytest.raises(ValueError):
        truncated_rnn_backward(dh, cache, 4, 2)
