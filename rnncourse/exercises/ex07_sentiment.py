"""Exercise set ex07, after chapter 7 (sentiment classification): references, inputs, known mistakes.

The questions need no TensorFlow and no data files: they are the pieces of the chapter that
are easy to get subtly wrong (the metrics, masked pooling, the bag-of-tokens features of the
baselines) and two that ask the learner to read a result.
"""

from __future__ import annotations

import numpy as np

from .core import Mistake, Question


# ------------------------------------------------------------- Q1: precision, recall, F1 from counts
def confusion_inputs(rng):
    """Several confusion matrices [[TN, FP], [FN, TP]] (rows true 0/1, columns predicted 0/1),
    stacked (K, 2, 2); FP != FN and TN != TP in each, so that swapped roles always show."""
    k = int(rng.integers(2, 5))
    out = np.empty((k, 2, 2), dtype=np.int64)
    for i in range(k):
        while True:
            tn, fp, fn, tp = (int(v) for v in rng.integers(5, 200, size=4))
            if len({tn, fp, fn, tp}) == 4:
                break
        out[i] = [[tn, fp], [fn, tp]]
    return dict(confusion=out)


def _prf(tp, fp, fn):
    p, r = tp / (tp + fp), tp / (tp + fn)
    return p, r, 2 * p * r / (p + r)


def precision_recall_f1(confusion):
    """For each (2, 2) matrix [[TN, FP], [FN, TP]]: precision, recall and F1 of the positive class,
    as three arrays of shape (K,)."""
    tn, fp, fn, tp = (confusion[:, i, j].astype(np.float64) for i, j in ((0, 0), (0, 1), (1, 0), (1, 1)))
    return _prf(tp, fp, fn)


def _parts(confusion):
    return tuple(confusion[:, i, j].astype(np.float64) for i, j in ((0, 0), (0, 1), (1, 0), (1, 1)))


def _swapped(confusion):
    p, r, f = precision_recall_f1(confusion)
    return r, p, f


def _accuracy_for_precision(confusion):
    tn, fp, fn, tp = _parts(confusion)
    acc = (tp + tn) / (tn + fp + fn + tp)
    r = tp / (tp + fn)
    return acc, r, 2 * acc * r / (acc + r)


def _arithmetic_f1(confusion):
    p, r, _ = precision_recall_f1(confusion)
    return p, r, (p + r) / 2


def _positive_first(confusion):
    tn, fp, fn, tp = _parts(confusion)
    return _prf(tn, fn, fp)  # reads [[TN, FP], [FN, TP]] as if it were [[TP, FN], [FP, TN]]


def _specificity_for_recall(confusion):
    tn, fp, fn, tp = _parts(confusion)
    p, s = tp / (tp + fp), tn / (tn + fp)
    return p, s, 2 * p * s / (p + s)


PRF_MISTAKES = (
    Mistake("precision and recall are swapped: precision divides by the PREDICTED positives, TP / (TP + FP) "
            "(column 1), recall by the TRUE positives, TP / (TP + FN) (row 1); rows are the true labels",
            _swapped),
    Mistake("precision is computed as accuracy, (TP + TN) / all, as in the source articles; precision is "
            "TP / (TP + FP): of the examples predicted positive, the share that truly are",
            _accuracy_for_precision),
    Mistake("F1 is the arithmetic mean (P + R) / 2; it is the harmonic mean 2 P R / (P + R)", _arithmetic_f1),
    Mistake("the matrix is read as [[TP, FN], [FP, TN]] (positive class first); this course and scikit-learn "
            "order the labels 0, 1, so it is [[TN, FP], [FN, TP]] and TP is confusion[1, 1]",
            _positive_first),
    Mistake("recall is computed as TN / (TN + FP), the specificity (recall of the NEGATIVE class); "
            "recall of the positive class is TP / (TP + FN)", _specificity_for_recall),
)


# ------------------------------------------------------------- Q2: mean of the states over real steps
def pooling_inputs(rng):
    n = int(rng.integers(3, 6))
    t, h = int(rng.integers(5, 9)), int(rng.integers(2, 5))
    lengths = rng.integers(1, t + 1, size=n)
    lengths[0], lengths[1], lengths[2] = t, 1, int(rng.integers(2, t - 1))  # full, one step, in between
    states = rng.standard_normal((n, t, h))  # padded steps hold junk, as a layer's outputs may
    return dict(states=states, lengths=lengths.astype(np.int64))


def _pool(states, lengths, where="post", divide="real"):
    n, t, _ = states.shape
    steps = np.arange(t)[None, :]
    mask = steps < lengths[:, None] if where == "post" else steps >= (t - lengths)[:, None]
    total = (states * mask[..., None]).sum(axis=1)
    return total / (lengths[:, None] if divide == "real" else t)


def masked_mean_pool(states, lengths):
    """Mean of states[i, :lengths[i]] for each sequence i (post-padded): shape (N, H)."""
    return _pool(states, lengths)


POOL_MISTAKES = (
    Mistake("the padded steps are included: average only the first lengths[i] steps of row i",
            lambda states, lengths: states.mean(axis=1)),
    Mistake("the padded steps are left out of the sum but the sum is divided by T; divide by lengths[i]",
            lambda states, lengths: _pool(states, lengths, divide="all")),
    Mistake("the real steps are taken at the END (pre-padding); these sequences are padded at the end, so the "
            "real steps are the first lengths[i]",
            lambda states, lengths: _pool(states, lengths, where="pre")),
    Mistake("this is the last real state, states[i, lengths[i] - 1], not the mean of the real states",
            lambda states, lengths: states[np.arange(len(lengths)), lengths - 1]),
    Mistake("this is the state at the last step, states[:, -1], a padded step for every shorter sequence",
            lambda states, lengths: states[:, -1]),
)


# ------------------------------------------------------------- Q3: bag-of-tokens counts
def bag_inputs(rng):
    n, t, v = int(rng.integers(3, 6)), int(rng.integers(6, 10)), int(rng.integers(5, 9))
    ids = np.zeros((n, t), dtype=np.int64)
    for i in range(n):
        length = t if i == 0 else int(rng.integers(2, t - 1))
        row = rng.integers(1, v, size=length)
        row[:2] = row[0]  # a repeated token in every row, so counts differ from presence
        ids[i, :length] = row
    return dict(ids=ids, vocab_size=v)


def bag_of_tokens(ids, vocab_size):
    """Counts (N, vocab_size), float: out[i, k] = how often token k occurs in row i; index 0 is
    padding and is not counted (column 0 stays 0)."""
    out = np.zeros((ids.shape[0], vocab_size))
    for i, row in enumerate(ids):
        out[i] = np.bincount(row[row > 0], minlength=vocab_size)
    return out


BAG_MISTAKES = (
    Mistake("the padding index 0 is counted: column 0 must stay 0, padding is not a token of the review",
            lambda ids, vocab_size: np.stack([np.bincount(r, minlength=vocab_size) for r in ids]).astype(float)),
    Mistake("this marks presence (0 or 1); the bag of tokens counts how often each token occurs",
            lambda ids, vocab_size: (bag_of_tokens(ids, vocab_size) > 0).astype(float)),
    Mistake("the counts are divided by the padded length T; counts are plain counts here",
            lambda ids, vocab_size: bag_of_tokens(ids, vocab_size) / ids.shape[1]),
    Mistake("the columns are shifted by one (token k counted in column k - 1); column k is token k",
            lambda ids, vocab_size: np.roll(bag_of_tokens(ids, vocab_size), -1, axis=1)),
)


# ------------------------------------------------------------- Q4, Q5: reading results
def majority_accuracy() -> float:
    """Training labels: 8,716 positive, 8,688 negative; test: 2,496 positive, 2,504 negative.
    The majority class of the TRAINING set (positive) is right on the test set's positives."""
    return 2_496 / 5_000


QUESTIONS = (
    Question("precision_recall_f1", "precision_recall_f1", 3, precision_recall_f1, confusion_inputs, PRF_MISTAKES,
             output_names=("precision", "recall", "f1")),
    Question("masked_mean_pool", "masked_mean_pool", 2, masked_mean_pool, pooling_inputs, POOL_MISTAKES),
    Question("bag_of_tokens", "bag_of_tokens", 2, bag_of_tokens, bag_inputs, BAG_MISTAKES),
    Question("majority_accuracy", "answer_majority_accuracy", 1, majority_accuracy, kind="value", atol=5e-4),
    Question("read_comparison", "answer_read_comparison", 1, lambda: "b", kind="value", choices=("a", "b", "c")),
)
