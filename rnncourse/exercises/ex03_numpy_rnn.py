"""Exercise set ex03, after chapter 3 (an RNN in NumPy): references, inputs and known mistakes."""

from __future__ import annotations

import math

import numpy as np

from ..losses import softmax
from .core import FLOAT32_TOLERANCE, Mistake, Question, RaiseHint, Stress, random_sizes

BPTT = 'chapter 2, section "Backpropagation through time, derived"'


# ----------------------------------------------------------------- Q1: the step backward pass
def step_backward_inputs(rng):
    n, d, h = random_sizes(rng)
    x_t, h_prev = rng.standard_normal((n, d)), rng.standard_normal((n, h))
    kernel, recurrent_kernel = 0.5 * rng.standard_normal((d, h)), 0.5 * rng.standard_normal((h, h))
    bias = 0.1 * rng.standard_normal(h)
    h_next = np.tanh(x_t @ kernel + h_prev @ recurrent_kernel + bias)
    return dict(dh_next=rng.standard_normal((n, h)), x_t=x_t, h_prev=h_prev, h_next=h_next,
                kernel=kernel, recurrent_kernel=recurrent_kernel)


def _step_backward_given_dz(dz, x_t, h_prev, kernel, recurrent_kernel):
    return dz @ kernel.T, dz @ recurrent_kernel.T, x_t.T @ dz, h_prev.T @ dz, dz.sum(axis=0)


def rnn_step_backward(dh_next, x_t, h_prev, h_next, kernel, recurrent_kernel):
    dz = dh_next * (1.0 - h_next**2)
    return _step_backward_given_dz(dz, x_t, h_prev, kernel, recurrent_kernel)


STEP_BACKWARD_MISTAKES = (
    Mistake("the tanh derivative is missing: dz = dh_next * (1 - h_next**2), not dh_next "
            f"({BPTT}: g_t = delta_t * f'(z_t))",
            lambda dh_next, x_t, h_prev, h_next, kernel, recurrent_kernel:
            _step_backward_given_dz(dh_next, x_t, h_prev, kernel, recurrent_kernel)),
    Mistake("the tanh derivative is taken at the wrong step: use h_next (this step's output), not h_prev",
            lambda dh_next, x_t, h_prev, h_next, kernel, recurrent_kernel:
            _step_backward_given_dz(dh_next * (1 - h_prev**2), x_t, h_prev, kernel, recurrent_kernel)),
    Mistake("the derivative used is sigmoid's, y(1-y), as in seed article 001; for tanh it is 1 - y**2",
            lambda dh_next, x_t, h_prev, h_next, kernel, recurrent_kernel:
            _step_backward_given_dz(dh_next * h_next * (1 - h_next), x_t, h_prev, kernel, recurrent_kernel)),
    Mistake("tanh is applied to h_next again: h_next is already tanh(z), so tanh'(z) = 1 - h_next**2",
            lambda dh_next, x_t, h_prev, h_next, kernel, recurrent_kernel:
            _step_backward_given_dz(dh_next * (1 - np.tanh(h_next) ** 2), x_t, h_prev, kernel, recurrent_kernel)),
    Mistake("sign error: every gradient has the opposite sign (the update rule subtracts; the gradient itself "
            f"does not; {BPTT} has no minus sign)",
            lambda **kw: tuple(-g for g in rnn_step_backward(**kw))),
    Mistake("the weight gradients are averaged over the batch; they should be summed (the loss already did any averaging)",
            lambda dh_next, **kw: (lambda g: (g[0], g[1], g[2] / len(dh_next), g[3] / len(dh_next), g[4] / len(dh_next)))(
                rnn_step_backward(dh_next, **kw))),
    Mistake("dh_prev uses U where U transposed belongs: with row vectors z = x W + h_prev U + b, so "
            f"dh_prev = dz U^T, i.e. dz @ recurrent_kernel.T ({BPTT}: the g_(t+1) U^T term)",
            lambda dh_next, x_t, h_prev, h_next, kernel, recurrent_kernel: (
                lambda dz: (dz @ kernel.T, dz @ recurrent_kernel, x_t.T @ dz, h_prev.T @ dz, dz.sum(axis=0)))(
                dh_next * (1.0 - h_next**2))),
)

# ----------------------------------------------- Q2: backpropagation through time over a sequence
def sequence_backward_inputs(rng):
    """A forward pass of a tanh RNN over T = 3 to 6 steps (h0 not zero, so that using h0 or
    another state as step 0's previous state makes a difference), and an upstream gradient on
    every state."""
    n, d, h = random_sizes(rng)
    t = int(rng.integers(3, 7))
    x, h0 = rng.standard_normal((n, t, d)), rng.standard_normal((n, h))
    kernel, recurrent_kernel = 0.5 * rng.standard_normal((d, h)), 0.5 * rng.standard_normal((h, h))
    bias = 0.1 * rng.standard_normal(h)
    states, h_prev = np.empty((n, t, h)), h0
    for step in range(t):
        h_prev = states[:, step] = np.tanh(x[:, step] @ kernel + h_prev @ recurrent_kernel + bias)
    return dict(dh=rng.standard_normal((n, t, h)), x=x, h0=h0, h=states, kernel=kernel,
                recurrent_kernel=recurrent_kernel)


def _bptt(dh, x, h0, h, kernel, recurrent_kernel, step=rnn_step_backward, carry=True, order="backward",
          previous="h[t-1]", accumulate=True, first=0, dh_at="every step"):
    """Backpropagation through time around a one-step backward pass, with switches that turn it
    into the known mistakes below (the defaults give the reference)."""
    T = h.shape[1]
    dx = np.zeros_like(x)
    grads = [np.zeros_like(kernel), np.zeros_like(recurrent_kernel), np.zeros(h.shape[2])]
    dh_next = np.zeros_like(h0)
    steps = range(T - 1, first - 1, -1) if order == "backward" else range(T)
    for t in steps:
        from_loss = dh[:, t] if dh_at == "every step" or t == T - 1 else 0.0
        arrived = from_loss + dh_next if carry else from_loss
        h_prev = {"h[t-1]": h[:, t - 1] if t > 0 else h0, "wraps": h[:, t - 1], "h[t]": h[:, t]}[previous]
        dx[:, t], dh_next, *step_grads = step(arrived, x[:, t], h_prev, h[:, t], kernel, recurrent_kernel)
        grads = [g + s for g, s in zip(grads, step_grads)] if accumulate else step_grads
    return (dx, dh_next, *grads)


def rnn_backward(dh, x, h0, h, kernel, recurrent_kernel):
    return _bptt(dh, x, h0, h, kernel, recurrent_kernel)


SEQUENCE_BACKWARD_MISTAKES = (
    Mistake("the gradient from later steps is dropped: the gradient at h[:, t] is dh[:, t] plus what step t + 1 "
            "passed back, the carry that makes it backpropagation *through time* (chapter 3, section \"Check "
            "the whole sequence, not just one step\", shows this bug)",
            lambda **kw: _bptt(**kw, carry=False)),
    Mistake("at t = 0, h[:, t - 1] is h[:, -1], the *last* state (Python counts negative indices from the end); "
            "step 0's previous state is h0",
            lambda **kw: _bptt(**kw, previous="wraps")),
    Mistake("h_prev is the step's own output h[:, t]; step t was computed from h[:, t - 1] (h0 at t = 0)",
            lambda **kw: _bptt(**kw, previous="h[t]")),
    Mistake("the loop runs forward in time: step t needs what step t + 1 passes back, so go from the last "
            "step to the first (for t in reversed(range(T)))",
            lambda **kw: _bptt(**kw, order="forward")),
    Mistake("the loop stops before step 0 (range(T - 1, 0, -1) ends at 1): step 0 must be taken too, and what "
            "it passes back is dh0",
            lambda **kw: _bptt(**kw, first=1)),
    Mistake("the loss's gradient is added at the last step only, as for a model that reads only the final "
            "state; here the loss reads every state, so add dh[:, t] at every step",
            lambda **kw: _bptt(**kw, dh_at="last step")),
    Mistake("the weight gradients keep one step's contribution (= instead of +=): the same weights act at "
            "every step, so their gradients sum over the steps",
            lambda **kw: _bptt(**kw, accumulate=False)),
    Mistake("the loop is right, but the step inside it has no tanh derivative: fix question 1's "
            "rnn_step_backward first (or the same step written inside the loop)",
            lambda **kw: _bptt(**kw, step=lambda dh_next, x_t, h_prev, h_next, kernel, recurrent_kernel:
                               _step_backward_given_dz(dh_next, x_t, h_prev, kernel, recurrent_kernel))),
)

# -------------------------------------------------------- Q2: the last real state of a padded batch
def last_state_inputs(rng):
    n, _, h = random_sizes(rng)
    t = int(rng.integers(3, 8))
    lengths = rng.integers(1, t + 1, size=n)
    lengths[0] = t                             # a full-length row: indexing with `lengths` overflows
    lengths[1] = int(rng.integers(1, t - 1))   # a row padded by 2 or more: h[:, -1] and L vs L-1 differ
    return dict(h=rng.standard_normal((n, t, h)), lengths=lengths.astype(np.int64))


def last_hidden_state(h, lengths):
    return h[np.arange(h.shape[0]), lengths - 1]


LAST_STATE_HINTS = (
    RaiseHint("IndexError", "an index ran past the end of the time axis: a sequence of length L ends at index "
                            "L - 1 (indices start at 0), and the longest rows have length T"),
)

LAST_STATE_MISTAKES = (
    Mistake("h[:, -1] is the state after the padding too; each row must stop at its own length",
            lambda h, lengths: h[:, -1]),
    Mistake("off by one in time: a sequence of length L ends at index L - 1, not L - 2",
            lambda h, lengths: h[np.arange(h.shape[0]), np.maximum(lengths - 2, 0)]),
    Mistake("off by one in time: a sequence of length L ends at index L - 1 (indices start at 0), not L",
            lambda h, lengths: h[np.arange(h.shape[0]), np.minimum(lengths, h.shape[1] - 1)]),
)

# ------------------------------------------------------------- Q3: softmax with a temperature
def temperature_inputs(rng):
    n, v = int(rng.integers(1, 5)), int(rng.integers(3, 9))
    return dict(logits=3.0 * rng.standard_normal((n, v)), temperature=float(rng.choice([0.3, 0.7, 1.6, 2.5])))


def temperature_softmax(logits, temperature):
    return softmax(logits / temperature)


def temperature_stress_inputs(rng):
    """Logits in the hundreds: exp overflows to inf unless the row maximum is subtracted first."""
    n, v = int(rng.integers(2, 5)), int(rng.integers(3, 9))
    logits = 400.0 * rng.standard_normal((n, v))
    logits[0, 0] = 1000.0
    return dict(logits=logits, temperature=0.7)


TEMPERATURE_STRESS = (
    Stress(temperature_stress_inputs,
           "the softmax is not numerically stable: for logits in the hundreds exp(logits / T) overflows to inf "
           "and the result is NaN; subtract each row's maximum before exp (softmax(z) = softmax(z - max z), "
           "chapter 3's softmax does it)"),
)

TEMPERATURE_MISTAKES = (
    Mistake("the logits are multiplied by the temperature; divide them: softmax(logits / T)",
            lambda logits, temperature: softmax(logits * temperature)),
    Mistake("the temperature is ignored", lambda logits, temperature: softmax(logits)),
    Mistake("the probabilities are divided by T after the softmax; divide the logits before it",
            lambda logits, temperature: softmax(logits) / temperature),
    Mistake("softmax is normalised over the wrong axis: each row (one distribution per example) must sum to 1",
            lambda logits, temperature: np.exp(logits / temperature) / np.exp(logits / temperature).sum(axis=0)),
    Mistake("the exponentials are not normalised: divide by their sum",
            lambda logits, temperature: np.exp(logits / temperature)),
)


QUESTIONS = (
    Question("rnn_step_backward", "rnn_step_backward", 4, rnn_step_backward, step_backward_inputs,
             STEP_BACKWARD_MISTAKES, output_names=("dx_t", "dh_prev", "dkernel", "drecurrent_kernel", "dbias")),
    # float32's tolerance even for float64 answers: a learner's step that works in float32 (accepted
    # in question 1) leaves float32 rounding in sums that this function keeps in float64 arrays.
    Question("rnn_backward", "rnn_backward", 4, rnn_backward, sequence_backward_inputs, SEQUENCE_BACKWARD_MISTAKES,
             rtol=FLOAT32_TOLERANCE[0], atol=FLOAT32_TOLERANCE[1],
             output_names=("dx", "dh0", "dkernel", "drecurrent_kernel", "dbias"),
             calls="question 1's rnn_step_backward",
             raise_hints=(RaiseHint("IndexError", "an index ran past the time axis: array position t holds step t's "
                                                  "output h[:, t], for t = 0 .. T - 1; step 0's previous state is h0"),
                          RaiseHint("ValueError", "shapes did not fit inside the loop: each gradient question 1's "
                                                  "rnn_step_backward returns must have the shape of what it is the "
                                                  "gradient of (its check names a transposed one), and h_prev must "
                                                  "be (N, H): h0 or h[:, t - 1]"))),
    Question("last_hidden_state", "last_hidden_state", 2, last_hidden_state, last_state_inputs, LAST_STATE_MISTAKES,
             raise_hints=LAST_STATE_HINTS),
    Question("temperature_softmax", "temperature_softmax", 2, temperature_softmax, temperature_inputs,
             TEMPERATURE_MISTAKES, stress=TEMPERATURE_STRESS),
    Question("initial_loss", "answer_initial_loss", 1, lambda: math.log(65), kind="value", atol=0.01),
    Question("carried_state", "answer_carried_state", 1, lambda: "a", kind="value", choices=("a", "b", "c")),
)
