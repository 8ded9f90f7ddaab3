"""Exercise set ex08, after chapter 8 (a character-level language model in Keras): a count
baseline in bits per character, the entropy of a tempered distribution, and reading results.
References, input generators and known mistakes."""

from __future__ import annotations

import math

import numpy as np

from .core import Mistake, Question

LN2 = math.log(2.0)


# --------------------------------------------------------- Q1: an add-alpha bigram baseline, in bits
def bigram_inputs(rng):
    v = int(rng.integers(3, 7))
    s, length = int(rng.integers(3, 6)), int(rng.integers(8, 16))
    e, elength = int(rng.integers(2, 5)), int(rng.integers(6, 13))
    return dict(train_rows=rng.integers(0, v, size=(s, length)), eval_rows=rng.integers(0, v, size=(e, elength)),
                vocab_size=v, alpha=float(rng.choice([0.1, 0.5, 2.0])))


def _bigram(train_rows, eval_rows, vocab_size, alpha, *, across_rows=False, context="successors",
            denominator="alpha V", log=np.log2, transpose=False):
    if across_rows:
        train_rows, eval_rows = train_rows.reshape(1, -1), eval_rows.reshape(1, -1)
    counts = np.zeros((vocab_size, vocab_size))
    np.add.at(counts, (train_rows[:, :-1].ravel(), train_rows[:, 1:].ravel()), 1.0)
    if context == "successors":
        totals = counts.sum(axis=1, keepdims=True)
    else:  # every occurrence of the character, also at the end of a row where nothing follows
        totals = np.bincount(train_rows.ravel(), minlength=vocab_size).astype(float)[:, None]
    table = (counts + alpha) / (totals + (alpha * vocab_size if denominator == "alpha V" else alpha))
    bits = float(-np.mean(log(table[eval_rows[:, :-1], eval_rows[:, 1:]])))
    return (table.T if transpose else table), bits


def bigram_model(train_rows, eval_rows, vocab_size, alpha):
    """Add-alpha bigram within rows: table[a, b] = p(b | a), and held-out bits per character."""
    return _bigram(train_rows, eval_rows, vocab_size, alpha)


BIGRAM_MISTAKES = (
    Mistake("the cross-entropy is in nats (natural log); bits per character use log base 2, i.e. nats / ln 2",
            lambda **kw: _bigram(**kw, log=np.log)),
    Mistake("log10 gives digits (bans) per character, not bits: use np.log2",
            lambda **kw: _bigram(**kw, log=np.log10)),
    Mistake("the table is indexed [next, previous]; row a must be the distribution of what follows a, "
            "table[a, b] = p(b | a), so each row sums to 1",
            lambda **kw: _bigram(**kw, transpose=True)),
    Mistake("the smoothing is incomplete: adding alpha to each of the V counts adds alpha * V to their total, "
            "so the denominator is count(a) + alpha * V (otherwise the rows do not sum to 1)",
            lambda **kw: _bigram(**kw, denominator="alpha")),
    Mistake("count(a) counts every occurrence of a, also at the end of a row where no character follows; "
            "the context count is the number of bigrams that start with a (the row sum of the counts)",
            lambda **kw: _bigram(**kw, context="occurrences")),
    Mistake("the rows were joined before counting: a bigram must not span the end of one row and the start "
            "of the next (they are separate texts)",
            lambda **kw: _bigram(**kw, across_rows=True)),
)


# ------------------------------------------------------- Q2: the entropy of a tempered distribution
def entropy_inputs(rng):
    n = int(rng.integers(2, 5))
    v = int(rng.choice([k for k in range(3, 9) if k != n]))  # N != V: a sum over the wrong axis shows
    return dict(logits=2.5 * rng.standard_normal((n, v)), temperature=float(rng.choice([0.3, 0.5, 2.0, 2.5])))


def _entropy(logits, temperature, *, scale="divide", log=np.log2, sign=-1.0, axis=-1):
    z = logits / temperature if scale == "divide" else logits * temperature if scale == "multiply" else logits
    z = z - z.max(axis=axis, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=axis, keepdims=True)
    return sign * np.sum(p * log(p), axis=axis)


def tempered_entropy_bits(logits, temperature):
    """Entropy in bits of softmax(logits / temperature), one value per row."""
    return _entropy(logits, temperature)


ENTROPY_MISTAKES = (
    Mistake("the logits are multiplied by the temperature; divide them, softmax(logits / T), so that T < 1 "
            "sharpens the distribution", lambda **kw: _entropy(**kw, scale="multiply")),
    Mistake("the temperature is ignored: the entropy must be that of softmax(logits / T)",
            lambda **kw: _entropy(**kw, scale="none")),
    Mistake("the entropy is in nats (natural log); in bits it is -sum p log2 p", lambda **kw: _entropy(**kw, log=np.log)),
    Mistake("the minus sign is missing: -sum p log p is never negative", lambda **kw: _entropy(**kw, sign=1.0)),
    Mistake("the softmax and the sum run over the batch axis; each row is one distribution over the V characters",
            lambda **kw: _entropy(**kw, axis=0)),
)


QUESTIONS = (
    Question("bigram_model", "bigram_model", 3, bigram_model, bigram_inputs, BIGRAM_MISTAKES,
             output_names=("table", "bits_per_char")),
    Question("tempered_entropy_bits", "tempered_entropy_bits", 2, tempered_entropy_bits, entropy_inputs,
             ENTROPY_MISTAKES),
    Question("five_gram_bits", "answer_five_gram_bits", 1, lambda: 1.685 / LN2, kind="value", atol=0.005),
    Question("reset_state", "answer_reset_state", 1, lambda: "b", kind="value", choices=("a", "b", "c")),
)
