"""Exercise set ex03, after chapter 3 (an RNN in NumPy): references, inputs and known mistakes."""

from __future__ import annotations

import math

import numpy as np

from ..losses import softmax
from .core import Mistake, Question, RaiseHint, Stress, random_sizes

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
    Question("last_hidden_state", "last_hidden_state", 2, last_hidden_state, last_state_inputs, LAST_STATE_MISTAKES,
             raise_hints=LAST_STATE_HINTS),
    Question("temperature_softmax", "temperature_softmax", 2, temperature_softmax, temperature_inputs,
             TEMPERATURE_MISTAKES, stress=TEMPERATURE_STRESS),
    Question("initial_loss", "answer_initial_loss", 1, lambda: math.log(65), kind="value", atol=0.01),
    Question("carried_state", "answer_carried_state", 1, lambda: "a", kind="value", choices=("a", "b", "c")),
)
