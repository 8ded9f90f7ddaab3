"""Add-alpha n-gram character models, counted with NumPy so that 5-grams over millions of
characters take a second instead of a minute.

    p(c | the previous n-1 characters) = (count(context, c) + alpha) / (count(context) + alpha V)

Two entry points, one counting code:

- `ngram_log_probs` gives the log-probability of every held-out character, so a count model
  can be scored on exactly the characters a network is scored on (chapter 8);
- `ngram_cross_entropies` gives the held-out cross-entropy of several orders at once, for a
  table of orders side by side (chapter 5).

Both count what `rnncourse.baselines.ngram.ngram_cross_entropy` counts with Python
dictionaries (the tests check that they agree). Each window of n ids is packed into one int64
code (base V), the codes are sorted once, and a held-out window's count is found by binary
search.
"""

from __future__ import annotations

import math

import numpy as np


def _check_ids(name: str, ids, vocab_size: int) -> np.ndarray:
    if isinstance(ids, (list, tuple)):
        ids = np.asarray(ids)
    if not isinstance(ids, np.ndarray) or ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"{name} must be a 1-D array of integer character ids, got "
                         f"{getattr(ids, 'shape', type(ids).__name__)} {getattr(ids, 'dtype', '')}")
    if len(ids) and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"{name} must hold ids in 0 .. {vocab_size - 1}, got {int(ids.min())} .. {int(ids.max())}")
    return ids.astype(np.int64)


def _codes(ids: np.ndarray, n: int, vocab_size: int) -> np.ndarray:
    """One int64 code per window ids[i : i + n], i = 0 .. len(ids) - n."""
    count = len(ids) - n + 1
    codes = np.zeros(max(count, 0), dtype=np.int64)
    for j in range(n):
        codes = codes * vocab_size + ids[j: j + count]
    return codes


def _counts_of(queries: np.ndarray, table: np.ndarray) -> np.ndarray:
    """How often each query code occurs in `table` (a sorted array of codes)."""
    return np.searchsorted(table, queries, side="right") - np.searchsorted(table, queries, side="left")


def _check_settings(vocab_size, order, alpha) -> None:
    if not isinstance(vocab_size, (int, np.integer)) or isinstance(vocab_size, bool) or vocab_size < 1:
        raise ValueError(f"vocab_size must be a positive int, got {vocab_size!r}")
    if not isinstance(order, (int, np.integer)) or isinstance(order, bool) or order < 1:
        raise ValueError(f"order must be an int >= 1, got {order!r}")
    if order * math.log(vocab_size) > math.log(2**62):
        raise ValueError(f"order {order} is too high for V = {vocab_size}: a window must fit in an int64 code")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)) or not alpha > 0:
        raise ValueError(f"alpha must be positive (add-alpha smoothing), got {alpha!r}")


def _log_probs_of_order(train: np.ndarray, evals: np.ndarray, vocab_size: int, n: int, alpha: float,
                        first: int, last: int) -> np.ndarray:
    """log p(evals[i] | the n-1 characters before it) for i = first .. last-1 (first >= n-1)."""
    k = n - 1
    joint_table = np.sort(_codes(train, n, vocab_size))
    joint = _counts_of(_codes(evals[first - k: last], n, vocab_size), joint_table)
    if k == 0:
        context = np.full(last - first, len(train), dtype=np.int64)
    else:
        # contexts are counted where a next character follows them: in train[:-1]
        context_table = np.sort(_codes(train[:-1], k, vocab_size))
        context = _counts_of(_codes(evals[first - k: last - 1], k, vocab_size), context_table)
    return np.log((joint + alpha) / (context + alpha * vocab_size))


def ngram_log_probs(train_ids, eval_ids, vocab_size: int, order: int, alpha: float = 0.1) -> np.ndarray:
    """Natural-log probability of every character of `eval_ids` under an add-alpha n-gram model.

    Entry i is log p(eval_ids[i] | eval_ids[i-order+1 : i]). The first order-1 characters have
    a shorter history; they are scored by the model of the order their history allows (entry 0
    by the unigram), so every entry is defined.
    """
    _check_settings(vocab_size, order, alpha)
    train = _check_ids("train_ids", train_ids, vocab_size)
    evals = _check_ids("eval_ids", eval_ids, vocab_size)
    if len(train) < order:
        raise ValueError(f"train_ids has {len(train)} ids, too few for order {order}")
    out = np.empty(len(evals), dtype=np.float64)
    for n in range(1, order + 1):
        k = n - 1
        # positions scored with order n: the full-order ones, or the one position with exactly k history
        first, last = (k, len(evals)) if n == order else (k, min(k + 1, len(evals)))
        if first < last:
            out[first:last] = _log_probs_of_order(train, evals, vocab_size, n, alpha, first, last)
    return out


def ngram_cross_entropies(train_ids, eval_ids, vocab_size: int, orders=(1, 2, 3, 4, 5), alpha: float = 1.0) -> dict:
    """{order: held-out cross-entropy in nats per character} of add-alpha n-gram models.

    Equal to `ngram_cross_entropy(train_ids, eval_ids, vocab_size, order, alpha)` for each
    order, up to the order of floating-point summation: the first order-1 characters of
    `eval_ids` only serve as context, and the mean is over the rest, i.e.
    -ngram_log_probs(...)[order - 1:].mean().
    """
    orders = list(orders)
    for order in orders:
        _check_settings(vocab_size, order, alpha)
    train = _check_ids("train_ids", train_ids, vocab_size)
    evals = _check_ids("eval_ids", eval_ids, vocab_size)
    for order in orders:
        if len(evals) < order or len(train) < order:
            raise ValueError(f"order {order} needs at least {order} training and held-out ids")
    return {order: float(-_log_probs_of_order(train, evals, vocab_size, order, alpha, order - 1, len(evals)).mean())
            for order in orders}
