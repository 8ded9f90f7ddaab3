"""Losses with their gradients, averaged over the positions that count."""

from __future__ import annotations

import numpy as np

from .validation import check, check_finite, check_float_array, check_shape


def _check_logits(logits) -> None:
    check_float_array("logits", logits)
    check_shape("logits", logits, logits.shape[:-1] + ("V",), {})
    check_finite(logits=logits)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log softmax over the last axis, shifted by the max so exp never overflows."""
    _check_logits(logits)
    return _log_softmax(logits)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities over the last axis: exp(log_softmax(logits))."""
    return np.exp(log_softmax(logits))


def softmax_cross_entropy(logits, targets, mask=None):
    """Mean negative log-likelihood of integer `targets` under softmax(`logits`).

    logits (..., V) floats; targets (...) integer class ids; mask (...) booleans, optional:
    positions where it is False (padding) contribute neither loss nor gradient, and the mean is
    taken over the True positions only. Returns (loss, dlogits).
    """
    _check_logits(logits)
    if not isinstance(targets, np.ndarray) or not np.issubdtype(targets.dtype, np.integer):
        raise TypeError(
            f"targets must be a NumPy array of integer class ids, got "
            f"{getattr(targets, 'dtype', type(targets).__name__)}"
        )
    check_shape("targets", targets, logits.shape[:-1], {})
    V = logits.shape[-1]
    if targets.size and (targets.min() < 0 or targets.max() >= V):
        raise ValueError(f"targets must lie in [0, {V}), found values from {targets.min()} to {targets.max()}")
    if mask is None:
        weights = np.ones(targets.shape, dtype=logits.dtype)
    else:
        if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_:
            raise TypeError("mask must be a NumPy array of booleans (True = counts in the loss)")
        check_shape("mask", mask, targets.shape, {})
        weights = mask.astype(logits.dtype)
    count = weights.sum()
    if count == 0:
        raise ValueError("mask selects no position: the mean loss is undefined")
    logp = _log_softmax(logits)
    picked = np.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
    loss = -(picked * weights).sum() / count
    dlogits = np.exp(logp)
    np.put_along_axis(dlogits, targets[..., None], np.take_along_axis(dlogits, targets[..., None], -1) - 1.0, -1)
    dlogits *= (weights / count)[..., None]
    return float(loss), dlogits


def mean_squared_error(predictions, targets):
    """Mean over every element of (predictions - targets)**2. Returns (loss, dpredictions)."""
    check_float_array("predictions", predictions)
    if predictions.size == 0:
        raise ValueError(f"predictions must hold at least one value, got shape {predictions.shape}")
    check("targets", targets, predictions.shape, {})
    check_finite(predictions=predictions, targets=targets)
    diff = predictions - targets
    return float(np.mean(diff * diff)), 2.0 * diff / diff.size
