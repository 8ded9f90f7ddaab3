"""Count-based language models: the baselines a character-level network has to beat.

All report cross-entropy in nats per character, the same unit as the network's loss, on the
same held-out text. The uniform model's ln V is also the loss an untrained network starts at.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np


def uniform_cross_entropy(vocab_size: int) -> float:
    """Guessing every character equally likely costs ln V nats per character."""
    return math.log(vocab_size)


def ngram_cross_entropy(train_ids, eval_ids, vocab_size: int, order: int = 1, alpha: float = 1.0) -> float:
    """Held-out cross-entropy of an add-alpha smoothed n-gram model (order 1 = unigram).

    p(c | previous order-1 chars) = (count(context, c) + alpha) / (count(context) + alpha V).
    The first order-1 characters of `eval_ids` only serve as context.
    """
    if order < 1:
        raise ValueError(f"order must be at least 1, got {order}")
    k = order - 1
    train = [int(i) for i in train_ids]
    evals = [int(i) for i in eval_ids]
    joint = Counter(tuple(train[i - k: i + 1]) for i in range(k, len(train)))
    context = Counter(tuple(train[i - k: i]) for i in range(k, len(train)))
    total = 0.0
    for i in range(k, len(evals)):
        ctx = tuple(evals[i - k: i])
        p = (joint[ctx + (evals[i],)] + alpha) / (context[ctx] + alpha * vocab_size)
        total -= math.log(p)
    return total / (len(evals) - k)


def majority_class_accuracy(train_labels, eval_labels) -> float:
    """Accuracy of always predicting the most frequent training label."""
    values, counts = np.unique(np.asarray(train_labels), return_counts=True)
    return float(np.mean(np.asarray(eval_labels) == values[np.argmax(counts)]))
