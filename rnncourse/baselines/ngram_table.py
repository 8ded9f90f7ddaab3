"""Add-alpha n-gram cross-entropies of several orders at once, vectorised with NumPy.

`rnncourse.baselines.ngram.ngram_cross_entropy` counts with Python dictionaries, which is
clear but takes seconds per order on a few million characters. This computes the same
quantity (same smoothing, same held-out positions) by encoding each n-gram as one integer
and counting with `np.unique`, so a chapter can show every order side by side cheaply.
"""

from __future__ import annotations

import numpy as np


def _codes(ids: np.ndarray, length: int, base: int) -> np.ndarray:
    """Integer code of every window of `length` ids: sum of ids[i + j] * base**(length-1-j)."""
    n = ids.size - length + 1
    codes = np.zeros(n, dtype=np.int64)
    for j in range(length):
        codes = codes * base + ids[j:j + n]
    return codes


def _counts(train_codes: np.ndarray, query_codes: np.ndarray) -> np.ndarray:
    """How often each query code occurs among the training codes."""
    values, counts = np.unique(train_codes, return_counts=True)
    position = np.searchsorted(values, query_codes)
    position = np.minimum(position, values.size - 1)
    return np.where(values[position] == query_codes, counts[position], 0)


def ngram_cross_entropies(train_ids, eval_ids, vocab_size: int, orders=(1, 2, 3, 4, 5), alpha: float = 1.0) -> dict:
    """{order: held-out cross-entropy in nats/char} of add-alpha smoothed n-gram models.

    Equal to `ngram_cross_entropy(train_ids, eval_ids, vocab_size, order, alpha)` for each
    order (up to the order of floating-point summation): p(c | context) = (count(context, c)
    + alpha) / (count(context) + alpha V), and the first order-1 characters of `eval_ids` only
    serve as context.
    """
    if not isinstance(vocab_size, (int, np.integer)) or isinstance(vocab_size, bool) or vocab_size < 1:
        raise ValueError(f"vocab_size must be a positive int, got {vocab_size!r}")
    if not (isinstance(alpha, (int, float)) and alpha > 0):
        raise ValueError(f"alpha must be a positive number, got {alpha!r}")
    train = np.asarray(train_ids)
    evals = np.asarray(eval_ids)
    for name, ids in (("train_ids", train), ("eval_ids", evals)):
        if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"{name} must be a 1-D integer array, got dtype {ids.dtype} and shape {ids.shape}")
        if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
            raise ValueError(f"{name} must hold ids in 0 .. {vocab_size - 1}, got {ids.min()} .. {ids.max()}")
    train, evals = train.astype(np.int64), evals.astype(np.int64)
    orders = list(orders)
    for order in orders:
        if not isinstance(order, (int, np.integer)) or isinstance(order, bool) or order < 1:
            raise ValueError(f"every order must be an int >= 1, got {order!r}")
        if vocab_size ** order >= 2 ** 62:
            raise ValueError(f"order {order} with vocab_size {vocab_size} is too large to encode in 64 bits")
        if evals.size < order or train.size < order:
            raise ValueError(f"order {order} needs at least {order} training and held-out ids")
    results = {}
    for order in orders:
        k = order - 1
        joint = _counts(_codes(train, order, vocab_size), _codes(evals, order, vocab_size))
        if k == 0:
            context = np.full(evals.size, train.size)
        else:
            # contexts are counted at the positions where a next character follows, as in ngram.py
            context = _counts(_codes(train[:-1], k, vocab_size), _codes(evals[:-1], k, vocab_size)[: evals.size - k])
        p = (joint + alpha) / (context + alpha * vocab_size)
        results[order] = float(-np.log(p).mean())
    return results
