"""Exercise set ex05, after chapter 5 (LSTM and GRU from scratch): references, inputs, known mistakes.

Weights in the Keras layout: LSTM columns [i | f | g | o], GRU columns [z | r | h].
"""

from __future__ import annotations

import math

import numpy as np

from ..activations import sigmoid
from .core import Mistake, Question, random_sizes


# ------------------------------------------------------------ Q1: a peephole LSTM cell, forward
def peephole_inputs(rng):
    n, d, h = random_sizes(rng)
    return dict(x_t=rng.standard_normal((n, d)), h_prev=rng.standard_normal((n, h)),
                c_prev=1.5 * rng.standard_normal((n, h)),
                kernel=rng.standard_normal((d, 4 * h)) / np.sqrt(d),
                recurrent_kernel=rng.standard_normal((h, 4 * h)) / np.sqrt(h),
                bias=0.3 * rng.standard_normal(4 * h),
                peephole_i=rng.standard_normal(h), peephole_f=rng.standard_normal(h),
                peephole_o=rng.standard_normal(h))


def _peephole(x_t, h_prev, c_prev, kernel, recurrent_kernel, bias, peephole_i, peephole_f, peephole_o, *,
              order="ifgo", peepholes=True, output_sees="new", tanh_out=True):
    H = h_prev.shape[1]
    a = x_t @ kernel + h_prev @ recurrent_kernel + bias
    block = {name: a[:, k * H:(k + 1) * H] for k, name in enumerate(order)}
    p = 1.0 if peepholes else 0.0
    i = sigmoid(block["i"] + p * c_prev * peephole_i)
    f = sigmoid(block["f"] + p * c_prev * peephole_f)
    g = np.tanh(block["g"])
    c_next = f * c_prev + i * g
    o = sigmoid(block["o"] + p * (c_next if output_sees == "new" else c_prev) * peephole_o)
    h_next = o * (np.tanh(c_next) if tanh_out else c_next)
    return h_next, c_next


def peephole_lstm_step(x_t, h_prev, c_prev, kernel, recurrent_kernel, bias, peephole_i, peephole_f, peephole_o):
    """One step of an LSTM with peepholes (Gers & Schmidhuber 2000): returns (h_next, c_next)."""
    return _peephole(x_t, h_prev, c_prev, kernel, recurrent_kernel, bias, peephole_i, peephole_f, peephole_o)


PEEPHOLE_MISTAKES = (
    Mistake("the output gate peeks at c_prev; it peeks at the new cell state c_next, which exists before "
            "the output gate is computed",
            lambda **kw: _peephole(**kw, output_sees="old")),
    Mistake("the peepholes are missing: this is a plain LSTM step; add c * peephole to the pre-activations "
            "of the i, f and o gates",
            lambda **kw: _peephole(**kw, peepholes=False)),
    Mistake("wrong gate order: the columns are read as i, f, o, g; Keras's order is i, f, g, o (the "
            "candidate is the third block)",
            lambda **kw: _peephole(**kw, order="ifog")),
    Mistake("wrong gate order: the columns are read as i, g, f, o (the old TensorFlow LSTMCell order); "
            "Keras's order is i, f, g, o",
            lambda **kw: _peephole(**kw, order="igfo")),
    Mistake("h_next = o * c_next: the cell state goes through tanh before the output gate scales it",
            lambda **kw: _peephole(**kw, tanh_out=False)),
)


# -------------------------------------------- Q2: a GRU step backward, z weighting the candidate
def gru_inputs(rng):
    n, d, h = random_sizes(rng)
    return dict(dh_next=rng.standard_normal((n, h)), x_t=rng.standard_normal((n, d)),
                h_prev=rng.standard_normal((n, h)),
                kernel=rng.standard_normal((d, 3 * h)) / np.sqrt(d),
                recurrent_kernel=rng.standard_normal((h, 3 * h)) / np.sqrt(h),
                bias=0.3 * rng.standard_normal(3 * h))


def _gru_backward(dh_next, x_t, h_prev, kernel, recurrent_kernel, bias, *, z_writes=True, dz_sign=1.0,
                  direct=True, reset_state_in_du=True, reset_after=False, mean=False):
    H = h_prev.shape[1]
    ax = x_t @ kernel + bias
    ah = h_prev @ recurrent_kernel[:, :2 * H]
    z = sigmoid(ax[:, :H] + ah[:, :H])
    r = sigmoid(ax[:, H:2 * H] + ah[:, H:])
    u_h = recurrent_kernel[:, 2 * H:]
    if reset_after:
        product = h_prev @ u_h
        cand = np.tanh(ax[:, 2 * H:] + r * product)
    else:
        reset_state = r * h_prev
        cand = np.tanh(ax[:, 2 * H:] + reset_state @ u_h)
    # z_writes: h = (1 - z) h_prev + z cand; otherwise Keras's h = z h_prev + (1 - z) cand
    keep, write = (1.0 - z, z) if z_writes else (z, 1.0 - z)
    dz = dh_next * (cand - h_prev) if z_writes else dh_next * (h_prev - cand)
    dz = dz_sign * dz
    dh_prev = dh_next * keep if direct else np.zeros_like(h_prev)
    da_h = dh_next * write * (1.0 - cand**2)
    da_z = dz * z * (1.0 - z)
    if reset_after:
        da_r = da_h * product * r * (1.0 - r)
        dh_prev = dh_prev + (da_h * r) @ u_h.T
        du_h = h_prev.T @ (da_h * r)
    else:
        dreset_state = da_h @ u_h.T
        da_r = dreset_state * h_prev * r * (1.0 - r)
        dh_prev = dh_prev + dreset_state * r
        du_h = (reset_state if reset_state_in_du else h_prev).T @ da_h
    da_zr = np.concatenate([da_z, da_r], axis=1)
    dh_prev = dh_prev + da_zr @ recurrent_kernel[:, :2 * H].T
    da = np.concatenate([da_z, da_r, da_h], axis=1)
    grads = [da @ kernel.T, dh_prev, x_t.T @ da, np.concatenate([h_prev.T @ da_zr, du_h], axis=1),
             da.sum(axis=0)]
    if mean:
        grads[2:] = [g / len(x_t) for g in grads[2:]]
    return tuple(grads)


def gru_step_backward_cz(dh_next, x_t, h_prev, kernel, recurrent_kernel, bias):
    """Gradients of one GRU step with h_next = (1 - z) h_prev + z candidate, reset_after=False.

    Returns (dx_t, dh_prev, dkernel, drecurrent_kernel, dbias).
    """
    return _gru_backward(dh_next, x_t, h_prev, kernel, recurrent_kernel, bias)


GRU_MISTAKES = (
    Mistake("these are the gradients of the Keras convention h = z * h_prev + (1 - z) * candidate; here z "
            "is the share of the candidate: h = (1 - z) * h_prev + z * candidate",
            lambda **kw: _gru_backward(**kw, z_writes=False)),
    Mistake("sign error in the update gate: d h_next / d z = candidate - h_prev, not h_prev - candidate",
            lambda **kw: _gru_backward(**kw, dz_sign=-1.0)),
    Mistake("the direct path is missing from dh_prev: h_prev also reaches h_next through (1 - z) * h_prev, "
            "which adds dh_next * (1 - z)",
            lambda **kw: _gru_backward(**kw, direct=False)),
    Mistake("the candidate block of drecurrent_kernel uses h_prev; U_h multiplies the reset state "
            "r * h_prev, so its gradient is (r * h_prev)^T da_h",
            lambda **kw: _gru_backward(**kw, reset_state_in_du=False)),
    Mistake("this is the reset_after=True form (r scales h_prev U_h); here the reset gate acts first: "
            "candidate = tanh(x W_h + (r * h_prev) U_h + b_h)",
            lambda **kw: _gru_backward(**kw, reset_after=True)),
    Mistake("the weight and bias gradients are averaged over the batch; sum them (the loss already did "
            "any averaging)",
            lambda **kw: _gru_backward(**kw, mean=True)),
)


def forget_answer() -> float:
    """Forget gate sigmoid(1) at every step (bias 1, negligible inputs), 10 steps."""
    return float((1.0 / (1.0 + math.exp(-1.0))) ** 10)


QUESTIONS = (
    Question("peephole_lstm_step", "peephole_lstm_step", 3, peephole_lstm_step, peephole_inputs,
             PEEPHOLE_MISTAKES, output_names=("h_next", "c_next")),
    Question("gru_step_backward_cz", "gru_step_backward_cz", 4, gru_step_backward_cz, gru_inputs, GRU_MISTAKES,
             output_names=("dx_t", "dh_prev", "dkernel", "drecurrent_kernel", "dbias")),
    Question("forget_after_ten", "answer_forget_after_ten", 1, forget_answer, kind="value", atol=1e-3),
    Question("keras_lstm_block", "answer_keras_lstm_block", 1, lambda: "b", kind="value",
             choices=("a", "b", "c", "d")),
    Question("gru_update_one", "answer_gru_update_one", 1, lambda: "a", kind="value", choices=("a", "b", "c")),
)
