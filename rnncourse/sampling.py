"""Turning a language model's logits into text and into numbers: temperature, entropy, bits.

Everything here is NumPy in float64, whatever produced the logits (a NumPy model or a float32
Keras one). Sampling uses the inverse of the cumulative distribution with uniforms drawn by
the caller's `numpy.random.Generator`: give several rows the same generator seed and they
share their uniforms, so samples at different temperatures differ *only* by the temperature
(common random numbers), never by the luck of the draw.
"""

from __future__ import annotations

import math

import numpy as np

LN2 = math.log(2.0)


def nats_to_bits(nats):
    """Cross-entropy in nats (natural log) to bits (log base 2): divide by ln 2."""
    return np.asarray(nats, dtype=np.float64) / LN2 if np.ndim(nats) else float(nats) / LN2


def _check_temperature(temperature) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.integer, np.floating)):
        raise TypeError(f"temperature must be a number, got {type(temperature).__name__}")
    if not (math.isfinite(float(temperature)) and temperature > 0):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    return float(temperature)


def _check_logits(logits) -> np.ndarray:
    logits = np.asarray(logits)
    if logits.ndim < 1 or logits.shape[-1] < 2 or not np.issubdtype(logits.dtype, np.floating):
        raise ValueError(f"logits must be a float array whose last axis (the vocabulary) has >= 2 entries, "
                         f"got shape {logits.shape} dtype {logits.dtype}")
    return logits.astype(np.float64)


def log_softmax_t(logits, temperature: float = 1.0) -> np.ndarray:
    """log softmax(logits / temperature) over the last axis, in float64."""
    z = _check_logits(logits) / _check_temperature(temperature)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def temperature_probs(logits, temperature: float = 1.0) -> np.ndarray:
    """softmax(logits / temperature): T < 1 sharpens the distribution, T > 1 flattens it."""
    return np.exp(log_softmax_t(logits, temperature))


def entropy_bits(logits, temperature: float = 1.0) -> np.ndarray:
    """Entropy, in bits, of softmax(logits / temperature), one value per distribution."""
    logp = log_softmax_t(logits, temperature)
    return -(np.exp(logp) * logp).sum(axis=-1) / LN2


def cross_entropy_nats(logits, targets, temperature: float = 1.0) -> np.ndarray:
    """-log p(target) under softmax(logits / temperature), for every position (nats)."""
    logp = log_softmax_t(logits, temperature)
    targets = np.asarray(targets)
    if targets.shape != logp.shape[:-1] or not np.issubdtype(targets.dtype, np.integer):
        raise ValueError(f"targets must be integer ids of shape {logp.shape[:-1]}, got {targets.shape} {targets.dtype}")
    return -np.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]


def sample_inverse_cdf(probs, uniforms) -> np.ndarray:
    """Draw one index per row of `probs` (N, V) with the given uniforms (N,) in [0, 1).

    The index is the first one whose cumulative probability exceeds the uniform. The same
    uniform at two temperatures picks the same index whenever the two distributions agree
    on where it falls, which is what makes samples at different temperatures comparable.
    """
    probs = np.asarray(probs, dtype=np.float64)
    uniforms = np.asarray(uniforms, dtype=np.float64)
    if probs.ndim != 2 or uniforms.shape != probs.shape[:1]:
        raise ValueError(f"probs must be (N, V) and uniforms (N,), got {probs.shape} and {uniforms.shape}")
    cdf = np.cumsum(probs, axis=1)
    cdf /= cdf[:, -1:]
    index = (cdf <= uniforms[:, None]).sum(axis=1)
    return np.minimum(index, probs.shape[1] - 1)
