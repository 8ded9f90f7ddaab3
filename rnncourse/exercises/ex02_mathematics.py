"""Exercise set ex02, after chapter 2 (the mathematics of RNNs): references, inputs, known mistakes.

Notation as in the chapters: row vectors, h_t = tanh(x_t W + h_{t-1} U + b), x (N, T, D),
states (N, T, H) with h[:, t] the state after step t (array index t = 0..T-1), h0 (N, H).
"""

from __future__ import annotations

import numpy as np

from .core import Mistake, Question, RaiseHint, random_sizes

BPTT = 'chapter 2, section "Backpropagation through time, derived"'
TRUNCATED = 'chapter 2, section "Truncated BPTT"'


def _tanh_rnn(rng, n, t, d, h, scale=1.0):
    """A real forward pass of a tanh RNN: x, h0, all states, the recurrent kernel."""
    x = rng.standard_normal((n, t, d))
    h0 = 0.5 * rng.standard_normal((n, h))
    kernel = rng.standard_normal((d, h)) / np.sqrt(d)
    recurrent_kernel = scale * rng.standard_normal((h, h)) / np.sqrt(h)
    bias = 0.1 * rng.standard_normal(h)
    states = np.empty((n, t, h))
    prev = h0
    for step in range(t):
        prev = np.tanh(x[:, step] @ kernel + prev @ recurrent_kernel + bias)
        states[:, step] = prev
    return x, h0, states, recurrent_kernel


# --------------------------------------------------- Q1: the Jacobian from the first state to the last
def jacobian_inputs(rng):
    n, _, h = random_sizes(rng)
    t = int(rng.integers(2, 6))
    _, h0, states, recurrent_kernel = _tanh_rnn(rng, n, t, 3, h, scale=1.5)
    return dict(h0=h0, h=states, recurrent_kernel=recurrent_kernel)


def _jacobian(h0, h, recurrent_kernel, *, transpose_u=True, later_on_left=True, derivative=True,
              derivative_at_previous=False):
    n, t, size = h.shape
    u = recurrent_kernel.T if transpose_u else recurrent_kernel
    jac = np.broadcast_to(np.eye(size), (n, size, size)).copy()
    for step in range(t):
        at = (h0 if step == 0 else h[:, step - 1]) if derivative_at_previous else h[:, step]
        d = 1.0 - at**2 if derivative else np.ones_like(at)
        step_jac = d[:, :, None] * u[None]  # diag(1 - h_t^2) U^T, one per example
        jac = step_jac @ jac if later_on_left else jac @ step_jac
    return jac


def jacobian_product(h0, h, recurrent_kernel):
    """J[n, a, b] = d h_T[n, a] / d h_0[n, b], the product of the T one-step Jacobians."""
    return _jacobian(h0, h, recurrent_kernel)


JACOBIAN_MISTAKES = (
    Mistake("U is used where U transposed belongs: with row vectors, h_t = tanh(... + h_{t-1} U) gives "
            "d h_t / d h_{t-1} = diag(1 - h_t**2) U^T",
            lambda **kw: _jacobian(**kw, transpose_u=False)),
    Mistake("the product is taken in the wrong order: the latest step's Jacobian multiplies on the left, "
            "J_T ... J_2 J_1",
            lambda **kw: _jacobian(**kw, later_on_left=False)),
    Mistake("the tanh derivative is missing: each step contributes diag(1 - h_t**2) U^T, not U^T alone",
            lambda **kw: _jacobian(**kw, derivative=False)),
    Mistake("off by one in time: step t's tanh derivative is 1 - h_t**2, at the state the step outputs, "
            f"not 1 - h_{{t-1}}**2 at the state it receives ({BPTT}: g_t = delta_t * f'(z_t), z_t gives h_t)",
            lambda **kw: _jacobian(**kw, derivative_at_previous=True)),
    Mistake("the result is transposed: J[n, a, b] is the derivative of h_T[a] (rows) with respect to h_0[b] "
            "(columns)",
            lambda **kw: np.swapaxes(_jacobian(**kw), 1, 2)),
)


# ------------------------------------------------------------ Q2: truncated BPTT for W and U
def truncated_inputs(rng):
    n, d, h = random_sizes(rng)
    t = int(rng.integers(4, 9))
    x, h0, states, recurrent_kernel = _tanh_rnn(rng, n, t, d, h, scale=1.2)
    k = int(rng.integers(2, t - 1))  # 2 <= k <= T - 2, so k - 1, k + 1 and T all differ from k
    return dict(x=x, h0=h0, h=states, dh_last=rng.standard_normal((n, h)),
                recurrent_kernel=recurrent_kernel, k=k)


def _truncated(x, h0, h, dh_last, recurrent_kernel, k, *, steps=None, pair_with_current=False,
               derivative=True, transpose_u=True, carry=True, sign=1.0):
    t = h.shape[1]
    steps = k if steps is None else steps
    dkernel = np.zeros((x.shape[2], h.shape[2]))
    drecurrent_kernel = np.zeros((h.shape[2], h.shape[2]))
    u = recurrent_kernel.T if transpose_u else recurrent_kernel
    dh_t = dh_last
    for step in range(t - 1, t - 1 - steps, -1):
        dz = dh_t * (1.0 - h[:, step] ** 2) if derivative else dh_t
        h_prev = h0 if step == 0 else h[:, step - 1]
        dkernel += x[:, step].T @ dz
        drecurrent_kernel += (h[:, step] if pair_with_current else h_prev).T @ dz
        dh_t = dz @ u if carry else dh_last
    return sign * dkernel, sign * drecurrent_kernel


def truncated_bptt(x, h0, h, dh_last, recurrent_kernel, k):
    """Gradients for W and U of a loss of h_T alone, back-propagated through the last k steps."""
    return _truncated(x, h0, h, dh_last, recurrent_kernel, k)


TRUNCATED_MISTAKES = (
    Mistake("the truncation is ignored: only the last k steps contribute, not all T",
            lambda **kw: _truncated(**kw, steps=kw["h"].shape[1])),
    Mistake("off by one: k + 1 steps are used; the last k steps are t = T-k+1, ..., T (k terms)",
            lambda **kw: _truncated(**kw, steps=kw["k"] + 1)),
    Mistake("off by one: k - 1 steps are used; the last k steps are t = T-k+1, ..., T (k terms)",
            lambda **kw: _truncated(**kw, steps=kw["k"] - 1)),
    Mistake("off by one in time: U's gradient pairs step t's dz with h_{t-1}, the state U multiplied "
            "(the previous one), not with h_t",
            lambda **kw: _truncated(**kw, pair_with_current=True)),
    Mistake("the tanh derivative is missing: dz_t = dh_t * (1 - h_t**2)",
            lambda **kw: _truncated(**kw, derivative=False)),
    Mistake("the gradient is carried back with U instead of U transposed: dh_{t-1} = dz_t U^T "
            f"({BPTT}: the g_(t+1) U^T term)",
            lambda **kw: _truncated(**kw, transpose_u=False)),
    Mistake("the next step's gradient is not carried back: every step reuses dh_last, but dL/dh_(t-1) = "
            f"dz_t U^T must feed the step before ({BPTT}: delta_t gets g_(t+1) U^T from all later steps)",
            lambda **kw: _truncated(**kw, carry=False)),
    Mistake("sign error: both gradients have the opposite sign (the chain rule has no minus sign; only the "
            "update w -= lr * grad subtracts)",
            lambda **kw: _truncated(**kw, sign=-1.0)),
)

TRUNCATED_HINTS = (
    RaiseHint("IndexError", "off by one in the time loop: the states are h[:, 0] .. h[:, T-1], so the last k "
                            f"steps are the array indices T-1 down to T-k, and h_(t-1) of index 0 is h0 ({TRUNCATED})"),
)

JACOBIAN_HINTS = (
    RaiseHint("IndexError", "off by one in the time loop: the states are h[:, 0] .. h[:, T-1] (array index t is "
                            "the state after step t + 1), so loop over range(T)"),
)


# ------------------------------------------------------------------- Q3: the readout's backward pass
def readout_inputs(rng):
    n, _, h = random_sizes(rng)
    t = int(rng.integers(2, 6))
    k = int(rng.choice([v for v in range(2, 9) if v != h]))
    return dict(dlogits=rng.standard_normal((n, t, k)), h=rng.standard_normal((n, t, h)),
                readout_kernel=rng.standard_normal((h, k)))


def readout_backward(dlogits, h, readout_kernel):
    """logits[:, t] = h[:, t] V + c at every step: returns (dh, dreadout_kernel, dreadout_bias)."""
    dh = dlogits @ readout_kernel.T
    return dh, np.einsum("nth,ntk->hk", h, dlogits), dlogits.sum(axis=(0, 1))


READOUT_MISTAKES = (
    Mistake("only the last time step is used for the readout's gradients; the readout is shared by every "
            "step, so its gradients sum over time as well as over the batch",
            lambda dlogits, h, readout_kernel: (dlogits @ readout_kernel.T, h[:, -1].T @ dlogits[:, -1],
                                                dlogits[:, -1].sum(axis=0))),
    Mistake("the readout's gradients are averaged over the N*T positions; sum them (the loss already did "
            "any averaging, inside dlogits)",
            lambda dlogits, h, readout_kernel: (lambda g, m: (g[0], g[1] / m, g[2] / m))(
                readout_backward(dlogits, h, readout_kernel), dlogits.shape[0] * dlogits.shape[1])),
    Mistake("dreadout_bias sums over the batch only; the bias is added at every step too, so sum over "
            "axes 0 and 1",
            lambda dlogits, h, readout_kernel: (*readout_backward(dlogits, h, readout_kernel)[:2],
                                                dlogits.sum(axis=0))),
    Mistake("dh is summed over time; every step has its own state, so dh keeps the shape (N, T, H) of h",
            lambda dlogits, h, readout_kernel: ((dlogits @ readout_kernel.T).sum(axis=1),
                                                *readout_backward(dlogits, h, readout_kernel)[1:])),
)


def scalar_jacobian_answer() -> float:
    """Scalar RNN, u = 0.8, every state 0.5: (u (1 - 0.5**2))**10."""
    return float((0.8 * (1.0 - 0.5**2)) ** 10)


QUESTIONS = (
    Question("jacobian_product", "jacobian_product", 3, jacobian_product, jacobian_inputs, JACOBIAN_MISTAKES,
             raise_hints=JACOBIAN_HINTS),
    Question("truncated_bptt", "truncated_bptt", 3, truncated_bptt, truncated_inputs, TRUNCATED_MISTAKES,
             output_names=("dkernel", "drecurrent_kernel"), raise_hints=TRUNCATED_HINTS),
    Question("readout_backward", "readout_backward", 2, readout_backward, readout_inputs, READOUT_MISTAKES,
             output_names=("dh", "dreadout_kernel", "dreadout_bias")),
    Question("scalar_jacobian", "answer_scalar_jacobian", 1, scalar_jacobian_answer, kind="value", atol=1e-4),
    Question("shared_weights", "answer_shared_weights", 1, lambda: "b", kind="value", choices=("a", "b", "c")),
)
