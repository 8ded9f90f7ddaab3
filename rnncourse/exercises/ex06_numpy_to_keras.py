"""Exercise set ex06, after chapter 6 (from NumPy to Keras): references, inputs, known mistakes.

The PyTorch layouts the conversion questions start from (as documented for torch.nn.LSTM and
torch.nn.GRU): weight_ih (G*H, D), weight_hh (G*H, H), bias_ih and bias_hh (G*H,), gate blocks
stacked in the rows, i, f, g, o for the LSTM and r, z, n for the GRU.
"""

from __future__ import annotations

import numpy as np

from ..losses import log_softmax
from .core import Mistake, Question, Stress, random_sizes


def _torch_weights(rng, gates):
    _, d, h = random_sizes(rng)
    return dict(weight_ih=rng.standard_normal((gates * h, d)), weight_hh=rng.standard_normal((gates * h, h)),
                bias_ih=rng.standard_normal(gates * h), bias_hh=rng.standard_normal(gates * h))


def _blocks(a, order, axis=0):
    """Reorder the gate blocks of `a` along `axis`: order[k] is the old index of new block k."""
    parts = np.split(a, len(order), axis=axis)
    return np.concatenate([parts[k] for k in order], axis=axis)


# --------------------------------------------------------------- Q1: PyTorch LSTM -> Keras LSTM
def lstm_inputs(rng):
    return _torch_weights(rng, 4)


def torch_lstm_to_keras(weight_ih, weight_hh, bias_ih, bias_hh):
    """PyTorch LSTM weights -> Keras (kernel (D, 4H), recurrent_kernel (H, 4H), bias (4H,))."""
    return weight_ih.T, weight_hh.T, bias_ih + bias_hh


LSTM_MISTAKES = (
    Mistake("the matrices are not transposed: PyTorch keeps (4H, D) and (4H, H), Keras (D, 4H) and (H, 4H)",
            lambda weight_ih, weight_hh, bias_ih, bias_hh: (weight_ih, weight_hh, bias_ih + bias_hh)),
    Mistake("reshape is not a transpose: .reshape(D, 4H) keeps the order of the entries in memory and "
            "scrambles the matrix; use .T",
            lambda weight_ih, weight_hh, bias_ih, bias_hh: (weight_ih.reshape(weight_ih.shape[::-1]),
                                                            weight_hh.reshape(weight_hh.shape[::-1]),
                                                            bias_ih + bias_hh)),
    Mistake("only one of PyTorch's two biases is used; both are added to every gate's pre-activation, so "
            "Keras's single bias is bias_ih + bias_hh",
            lambda weight_ih, weight_hh, bias_ih, bias_hh: (weight_ih.T, weight_hh.T, bias_ih)),
    Mistake("the two biases are concatenated; Keras's LSTM bias is their sum, of shape (4H,)",
            lambda weight_ih, weight_hh, bias_ih, bias_hh: (weight_ih.T, weight_hh.T,
                                                            np.concatenate([bias_ih, bias_hh]))),
    Mistake("the gate blocks were reordered; PyTorch's LSTM already uses Keras's order i, f, g, o, so "
            "only the transpose is needed",
            lambda weight_ih, weight_hh, bias_ih, bias_hh: (_blocks(weight_ih.T, (0, 1, 3, 2), 1),
                                                            _blocks(weight_hh.T, (0, 1, 3, 2), 1),
                                                            _blocks(bias_ih + bias_hh, (0, 1, 3, 2)))),
)


# ------------------------------------------------------------------ Q2: PyTorch GRU -> Keras GRU
def gru_inputs(rng):
    return _torch_weights(rng, 3)


ZRH = (1, 0, 2)  # Keras block k is PyTorch block ZRH[k]: z, r, h from r, z, n


def torch_gru_to_keras(weight_ih, weight_hh, bias_ih, bias_hh):
    """PyTorch GRU weights -> Keras GRU(reset_after=True): (kernel (D, 3H), recurrent_kernel (H, 3H), bias (2, 3H))."""
    return (_blocks(weight_ih, ZRH).T, _blocks(weight_hh, ZRH).T,
            np.stack([_blocks(bias_ih, ZRH), _blocks(bias_hh, ZRH)]))


GRU_MISTAKES = (
    Mistake("the gate blocks are left in PyTorch's order r, z, n; Keras's GRU wants z, r, h: swap the first "
            "two blocks (in the weights and in both biases)",
            lambda weight_ih, weight_hh, bias_ih, bias_hh: (weight_ih.T, weight_hh.T, np.stack([bias_ih, bias_hh]))),
    Mistake("the matrices are not transposed: PyTorch keeps (3H, D) and (3H, H), Keras (D, 3H) and (H, 3H)",
            lambda weight_ih, weight_hh, bias_ih, bias_hh: (_blocks(weight_ih, ZRH), _blocks(weight_hh, ZRH),
                                                            torch_gru_to_keras(weight_ih, weight_hh, bias_ih, bias_hh)[2])),
    Mistake("reshape is not a transpose: .reshape(D, 3H) keeps the order of the entries in memory and "
            "scrambles the matrix; use .T",
            lambda weight_ih, weight_hh, bias_ih, bias_hh: (
                _blocks(weight_ih, ZRH).reshape(weight_ih.shape[::-1]),
                _blocks(weight_hh, ZRH).reshape(weight_hh.shape[::-1]),
                torch_gru_to_keras(weight_ih, weight_hh, bias_ih, bias_hh)[2])),
    Mistake("the biases are summed into one (3H,) vector: that is right for z and r only; the candidate's "
            "recurrent bias sits inside r * (h U_h + b_hn), so Keras (reset_after=True) keeps both, shape (2, 3H)",
            lambda weight_ih, weight_hh, bias_ih, bias_hh: (
                *torch_gru_to_keras(weight_ih, weight_hh, bias_ih, bias_hh)[:2], _blocks(bias_ih + bias_hh, ZRH))),
    Mistake("the bias rows are swapped: row 0 is the input bias (bias_ih), row 1 the recurrent bias (bias_hh)",
            lambda weight_ih, weight_hh, bias_ih, bias_hh: (
                *torch_gru_to_keras(weight_ih, weight_hh, bias_ih, bias_hh)[:2],
                np.stack([_blocks(bias_hh, ZRH), _blocks(bias_ih, ZRH)]))),
)


# ------------------------------------------------------- Q3: a masked loss over pre-padded sequences
def loss_inputs(rng):
    n = int(rng.integers(2, 5))
    t, v = int(rng.integers(3, 8)), int(rng.integers(3, 7))
    lengths = rng.integers(1, t + 1, size=n)
    lengths[0] = int(rng.integers(1, t))  # at least one padded sequence,
    lengths[1] = t  # and at least two different lengths
    return dict(logits=2.0 * rng.standard_normal((n, t, v)), targets=rng.integers(0, v, size=(n, t)),
                lengths=lengths.astype(np.int64))


def _masked_loss(logits, targets, lengths, *, padding="pre", weights="token", divide_by="real",
                 mask_grad=True, grad_sign=1.0):
    n, t, v = logits.shape
    steps = np.arange(t)[None, :]
    if padding == "pre":
        mask = steps >= (t - lengths)[:, None]
    elif padding == "post":
        mask = steps < lengths[:, None]
    else:
        mask = np.ones((n, t), dtype=bool)
    logp = log_softmax(logits)
    nll = -np.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
    if weights == "sequence":  # each sequence's mean, then the mean over sequences
        w = mask / mask.sum(axis=1, keepdims=True) / n
    else:
        w = mask / (mask.sum() if divide_by == "real" else n * t)
    loss = float((nll * w).sum())
    dlogits = np.exp(logp)
    dlogits[np.arange(n)[:, None], np.arange(t)[None, :], targets] -= 1.0
    dlogits = dlogits * (w[..., None] if mask_grad else 1.0 / mask.sum())
    return loss, grad_sign * dlogits


def masked_sequence_loss(logits, targets, lengths):
    """Mean cross-entropy over the real steps of pre-padded sequences, and its gradient."""
    return _masked_loss(logits, targets, lengths)


LOSS_MISTAKES = (
    Mistake("the mask assumes padding at the end; these sequences are padded at the front (pre-padding, "
            "keras.utils.pad_sequences's default), so the real steps are the last `length` ones",
            lambda **kw: _masked_loss(**kw, padding="post")),
    Mistake("the padded positions are included; average over the real positions only",
            lambda **kw: _masked_loss(**kw, padding=None)),
    Mistake("the sum over real positions is divided by N*T; divide by the number of real positions, "
            "lengths.sum()",
            lambda **kw: _masked_loss(**kw, divide_by="all")),
    Mistake("each sequence's mean is averaged, so every sequence weighs the same; the mean is over all real "
            "positions, so a longer sequence counts more",
            lambda **kw: _masked_loss(**kw, weights="sequence")),
    Mistake("the gradient is not masked: padded positions take no part in the loss, so their gradient is zero",
            lambda **kw: _masked_loss(**kw, mask_grad=False)),
    Mistake("sign error in the gradient: d loss / d logits = (softmax(logits) - one_hot(targets)) / count",
            lambda **kw: _masked_loss(**kw, grad_sign=-1.0)),
)


def loss_stress_inputs(rng):
    """Logits in the hundreds: log(softmax) and exp overflow unless the row maximum is subtracted."""
    inputs = loss_inputs(rng)
    inputs["logits"] = 300.0 * inputs["logits"]
    inputs["logits"][0, -1, 0] = 1000.0
    return inputs


LOSS_STRESS = (
    Stress(loss_stress_inputs,
           "the loss is not numerically stable: for logits in the hundreds exp overflows (inf, NaN) or "
           "log(softmax) takes log(0); use the log-softmax shifted by each row's maximum, "
           "z - max(z) - log(sum(exp(z - max(z)))), as chapter 3's losses do"),
)


def bidirectional_lstm_params() -> int:
    """Bidirectional(LSTM(32)) on 10 features: two LSTMs, each 4 (D H + H H + H)."""
    d, h = 10, 32
    return 2 * 4 * (d * h + h * h + h)


def gru_params() -> int:
    """GRU(32), reset_after=True (Keras's default), on 10 features: 3 (D H + H H + 2 H)."""
    d, h = 10, 32
    return 3 * (d * h + h * h + 2 * h)


QUESTIONS = (
    Question("torch_lstm_to_keras", "torch_lstm_to_keras", 2, torch_lstm_to_keras, lstm_inputs, LSTM_MISTAKES,
             output_names=("kernel", "recurrent_kernel", "bias")),
    Question("torch_gru_to_keras", "torch_gru_to_keras", 2, torch_gru_to_keras, gru_inputs, GRU_MISTAKES,
             output_names=("kernel", "recurrent_kernel", "bias")),
    Question("masked_sequence_loss", "masked_sequence_loss", 3, masked_sequence_loss, loss_inputs, LOSS_MISTAKES,
             output_names=("loss", "dlogits"), stress=LOSS_STRESS),
    Question("bidirectional_params", "answer_bidirectional_params", 1, bidirectional_lstm_params, kind="value",
             atol=0.5),
    Question("gru_params", "answer_gru_params", 1, gru_params, kind="value", atol=0.5),
    Question("stateful_rows", "answer_stateful_rows", 1, lambda: "a", kind="value", choices=("a", "b", "c")),
)
