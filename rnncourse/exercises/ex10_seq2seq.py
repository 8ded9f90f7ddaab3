"""Exercise set ex10, after chapter 10 (sequence to sequence, beam search and attention):
references, inputs, known mistakes.

Sequences of symbols are given as padded integer arrays with their lengths, the way a
batch leaves a model: ids 1.. are symbols, 0 is padding.
"""

from __future__ import annotations

import numpy as np

from .core import Mistake, Question


# ------------------------------------------------------------- Q1: phoneme error rate of a batch


def _lev(a, b, sub=1):
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, y in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (sub if x != y else 0))
        prev = cur
    return prev[-1]


def _hamming(a, b):
    m = min(len(a), len(b))
    return int(sum(x != y for x, y in zip(a[:m], b[:m]))) + abs(len(a) - len(b))


def per_inputs(rng):
    """Rows built to separate the mistakes: a pure substitution, a deletion at the front, an
    insertion, then random edits; the two arrays have different padded widths."""
    n = int(rng.integers(4, 7))
    v = 9
    refs_list, hyps_list = [], []
    for i in range(n):
        L = int(rng.integers(3, 8))
        r = rng.integers(1, v, size=L)
        h = r.copy()
        if i == 0:  # one substitution
            k = int(rng.integers(0, L))
            h[k] = 1 + (h[k] % (v - 1))
        elif i == 1:  # first symbol deleted: every later position shifts
            h = r[1:]
        elif i == 2:  # a symbol inserted near the front, and one substituted at the end
            h = np.concatenate([r[:1], [1 + (r[0] % (v - 1))], r[1:]])
            h[-1] = 1 + (h[-1] % (v - 1))
        else:
            for _ in range(int(rng.integers(0, 3))):
                op, k = int(rng.integers(0, 3)), int(rng.integers(0, len(h)))
                if op == 0 and len(h) > 1:
                    h = np.delete(h, k)
                elif op == 1:
                    h = np.insert(h, k, int(rng.integers(1, v)))
                else:
                    h[k] = int(rng.integers(1, v))
        refs_list.append(r)
        hyps_list.append(h)
    if sum(map(len, hyps_list)) == sum(map(len, refs_list)):  # so that dividing by either total differs
        hyps_list[-1] = np.append(hyps_list[-1], int(rng.integers(1, v)))
    tr = max(len(r) for r in refs_list)
    th = max(len(h) for h in hyps_list) + 2  # padded wider than the references
    refs = np.zeros((n, tr), dtype=np.int64)
    hyps = np.zeros((n, th), dtype=np.int64)
    for i, (r, h) in enumerate(zip(refs_list, hyps_list)):
        refs[i, :len(r)], hyps[i, :len(h)] = r, h
    return dict(refs=refs, ref_lengths=np.array([len(r) for r in refs_list], dtype=np.int64),
                hyps=hyps, hyp_lengths=np.array([len(h) for h in hyps_list], dtype=np.int64))


def _per(refs, ref_lengths, hyps, hyp_lengths, *, dist="lev", divide="ref", padded=False, macro=False):
    d = []
    for r, lr, h, lh in zip(refs, ref_lengths, hyps, hyp_lengths):
        a, b = (list(r), list(h)) if padded else (list(r[:lr]), list(h[:lh]))
        d.append(_hamming(a, b) if dist == "hamming" else _lev(a, b, sub=2 if dist == "sub2" else 1))
    d = np.array(d, dtype=np.float64)
    if macro:
        return d, float(np.mean(d / ref_lengths))
    return d, float(d.sum() / (hyp_lengths.sum() if divide == "hyp" else ref_lengths.sum()))


def phoneme_error_rate(refs, ref_lengths, hyps, hyp_lengths):
    """(edit distance of each word (N,), total distance / total reference length)."""
    return _per(refs, ref_lengths, hyps, hyp_lengths)


PER_MISTAKES = (
    Mistake("positions are compared one to one (a Hamming distance plus the difference in length); after an "
            "inserted or deleted phoneme every later position is shifted, and the edit distance lets the "
            "alignment shift with it",
            lambda **kw: _per(**kw, dist="hamming")),
    Mistake("a substitution costs 2 (a deletion plus an insertion); in the edit distance behind the phoneme "
            "error rate each insertion, deletion and substitution costs 1",
            lambda **kw: _per(**kw, dist="sub2")),
    Mistake("the padding (zeros) is compared too; cut each row to its length first",
            lambda **kw: _per(**kw, padded=True)),
    Mistake("the total distance is divided by the number of PREDICTED phonemes; the rate is per reference "
            "phoneme, so divide by ref_lengths.sum()",
            lambda **kw: _per(**kw, divide="hyp")),
    Mistake("the rate is the mean of each word's own rate, so short words weigh as much as long ones; "
            "divide the total distance by the total reference length",
            lambda **kw: _per(**kw, macro=True)),
)


# ------------------------------------------------------------------------- Q2: one beam-search step


def beam_inputs(rng):
    n = int(rng.integers(2, 5))
    k = int(rng.integers(2, 5))
    v = int(rng.integers(k + 3, k + 8))
    # sorted, best beam first; the best beam far ahead, so it supplies several of the next beams
    scores = -np.sort(np.concatenate([rng.uniform(0.2, 1.0, size=(n, 1)), rng.uniform(5.0, 9.0, size=(n, k - 1))],
                                     axis=1), axis=1)
    logits = 2.0 * rng.standard_normal((n, k, v))
    log_probs = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    return dict(scores=scores, log_probs=log_probs)


def _beam(scores, log_probs, *, add=True, per_beam=False, split_by=None, ascending=False, multiply=False):
    n, k, v = log_probs.shape
    if multiply:
        total = scores[:, :, None] * log_probs
    else:
        total = (scores[:, :, None] if add else 0.0) + log_probs
    if per_beam:  # each beam's best token only, then ranked
        tok = total.argmax(axis=-1)
        best = np.take_along_axis(total, tok[..., None], axis=-1)[..., 0]
        order = np.argsort(-best, axis=1, kind="stable")
        return (np.take_along_axis(best, order, 1), order.astype(np.float64),
                np.take_along_axis(tok, order, 1).astype(np.float64))
    flat = total.reshape(n, k * v)
    order = np.argsort(flat if ascending else -flat, axis=1, kind="stable")[:, :k]
    new = np.take_along_axis(flat, order, axis=1)
    d = split_by or v
    return new, (order // d).astype(np.float64), (order % d).astype(np.float64)


def beam_step(scores, log_probs):
    """(new scores (N, K), parent beam (N, K), token (N, K)), best first."""
    return _beam(scores, log_probs)


BEAM_MISTAKES = (
    Mistake("the beams' scores are not added: the extensions are ranked by this step's log-probability alone, "
            "so the search forgets how probable each prefix was",
            lambda **kw: _beam(**kw, add=False)),
    Mistake("each beam keeps only its own best token; the K x V extensions must compete together, so one "
            "strong beam can supply several of the next beams and a weak one none",
            lambda **kw: _beam(**kw, per_beam=True)),
    Mistake("the flat index over K x V extensions is split by K; its parent beam is index // V and its token "
            "index % V (V, the vocabulary size, is the length of each beam's block)",
            lambda scores, log_probs: _beam(scores, log_probs, split_by=scores.shape[1])),
    Mistake("the K LEAST probable extensions are kept: sort the scores in descending order",
            lambda **kw: _beam(**kw, ascending=True)),
    Mistake("the log-probabilities are multiplied; probabilities multiply, so their logarithms add",
            lambda **kw: _beam(**kw, multiply=True)),
)


# ------------------------------------------------------------------------ Q3: dot-product attention


def attention_inputs(rng):
    n = int(rng.integers(2, 5))
    s = int(rng.integers(3, 7))
    while s == n:
        s = int(rng.integers(3, 7))
    h = int(rng.integers(4, 9))
    lengths = rng.integers(1, s + 1, size=n)
    lengths[0] = s  # one full row,
    lengths[1] = int(rng.integers(2, s))  # and one with padding (two real positions or more)
    mask = (np.arange(s)[None, :] < lengths[:, None]).astype(np.int64)
    return dict(query=rng.standard_normal((n, h)), keys=rng.standard_normal((n, s, h)), mask=mask)


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _attention(query, keys, mask, *, axis=1, use_mask=True, renormalise=True, scale=False, uniform=False):
    scores = np.einsum("nh,nsh->ns", query, keys)
    if scale:
        scores = scores / np.sqrt(query.shape[1])
    real = mask.astype(bool)
    if uniform:
        weights = real / real.sum(axis=1, keepdims=True)
    elif not use_mask:
        weights = _softmax(scores, axis)
    elif renormalise:
        weights = _softmax(np.where(real, scores, -np.inf), axis)
    else:
        weights = _softmax(scores, axis) * real
    return np.einsum("ns,nsh->nh", weights, keys), weights


def dot_attention(query, keys, mask):
    """(context (N, H), weights (N, S)): softmax of query . key over the real positions."""
    return _attention(query, keys, mask)


ATTENTION_MISTAKES = (
    Mistake("the softmax runs over the batch (axis 0); each query's weights are a distribution over its own "
            "source positions (axis 1)",
            lambda **kw: _attention(**kw, axis=0, use_mask=False)),
    Mistake("the mask is ignored, so padding positions get weight",
            lambda **kw: _attention(**kw, use_mask=False)),
    Mistake("the padding weights are set to zero AFTER the softmax, so the weights no longer sum to 1; "
            "put -inf (or a large negative number) in the scores before it",
            lambda **kw: _attention(**kw, renormalise=False)),
    Mistake("the scores are divided by sqrt(H): that is the Transformer's scaled dot product; Luong's dot "
            "score here is the plain dot product",
            lambda **kw: _attention(**kw, scale=True)),
    Mistake("the context is the plain mean of the real keys: the weights must come from the query's scores",
            lambda **kw: _attention(**kw, uniform=True)),
)


# ------------------------------------------------------------------------------- value questions


def per_by_hand() -> float:
    """K AE T S -> K AH T (one substitution, one deletion); D AO G -> D AO G Z (one insertion)."""
    return (2 + 1) / (4 + 3)


QUESTIONS = (
    Question("phoneme_error_rate", "phoneme_error_rate", 3, phoneme_error_rate, per_inputs, PER_MISTAKES,
             output_names=("distances", "per")),
    Question("beam_step", "beam_step", 3, beam_step, beam_inputs, BEAM_MISTAKES,
             output_names=("new_scores", "parents", "tokens")),
    Question("dot_attention", "dot_attention", 3, dot_attention, attention_inputs, ATTENTION_MISTAKES,
             output_names=("context", "weights")),
    Question("per_by_hand", "answer_per_by_hand", 1, per_by_hand, kind="value", atol=1e-3),
    Question("exposure_bias", "answer_exposure_bias", 1, lambda: "b", kind="value", choices=("a", "b", "c")),
)
