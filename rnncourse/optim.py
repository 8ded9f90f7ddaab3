"""Gradient clipping and three optimizers, all acting on dicts of NumPy arrays in place."""

from __future__ import annotations

import numpy as np

from .validation import check_finite, check_float_array, check_fraction, check_grads, check_positive


def global_norm(grads: dict) -> float:
    """sqrt of the sum of squares of every gradient entry, across all parameters.

    A measurement, so it does not refuse NaN or inf: it returns a non-finite norm, which a
    training loop can test with np.isfinite to stop a run that diverged.
    """
    check_grads(grads, finite=False)
    return float(np.sqrt(sum(float(np.sum(g * g)) for g in grads.values())))


def clip_by_global_norm(grads: dict, max_norm: float):
    """Rescale all gradients together so their global norm is at most `max_norm`.

    The direction of the update is kept; only its length shrinks. Returns (clipped, norm
    before clipping). Non-finite gradients raise, since no rescaling can repair them.
    """
    check_positive("max_norm", max_norm)
    check_grads(grads)  # a dict of float arrays; NaN or inf raises, naming the parameter
    norm = global_norm(grads)
    if not np.isfinite(norm):
        raise FloatingPointError(f"gradient norm is {norm}: the entries are finite but their squares overflow")
    scale = min(1.0, max_norm / (norm + 1e-12))
    return {name: g * scale for name, g in grads.items()}, norm


def clip_by_value(grads: dict, limit: float) -> dict:
    """Clip every entry to [-limit, limit] independently (this changes the direction)."""
    check_positive("limit", limit)
    check_grads(grads)  # a dict of float arrays; NaN or inf raises, naming the parameter
    return {name: np.clip(g, -limit, limit) for name, g in grads.items()}


def _check_same_keys(params: dict, grads: dict):
    """Once per step: params and grads are dicts of float arrays with the same keys and shapes,
    and every gradient is finite (a NaN would spread into every parameter it touches)."""
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict of NumPy arrays, {{name: parameter}}, got {type(params).__name__}")
    check_grads(grads, finite=False)
    if params.keys() != grads.keys():
        raise ValueError(f"grads have keys {sorted(grads)}, params have {sorted(params)}")
    for name in params:
        check_float_array(f"params[{name!r}]", params[name])
        if params[name].shape != grads[name].shape:
            raise ValueError(f"grad {name!r} has shape {grads[name].shape}, parameter has {params[name].shape}")
    check_finite(**{f"grads[{name!r}]": g for name, g in grads.items()})


class SGD:
    """Plain stochastic gradient descent, with optional (heavy-ball) momentum."""

    def __init__(self, learning_rate: float = 0.1, momentum: float = 0.0):
        check_positive("learning_rate", learning_rate)
        check_fraction("momentum", momentum)
        self.learning_rate, self.momentum, self.velocity = learning_rate, momentum, {}

    def step(self, params: dict, grads: dict) -> None:
        _check_same_keys(params, grads)
        for name, g in grads.items():
            v = self.velocity.get(name, np.zeros_like(g))
            v = self.momentum * v - self.learning_rate * g
            self.velocity[name] = v
            params[name] += v


class Adagrad:
    """Per-parameter step sizes shrinking with the sum of squared past gradients (min-char-rnn's choice)."""

    def __init__(self, learning_rate: float = 0.1, epsilon: float = 1e-8):
        check_positive("learning_rate", learning_rate)
        check_positive("epsilon", epsilon)
        self.learning_rate, self.epsilon, self.accumulator = learning_rate, epsilon, {}

    def step(self, params: dict, grads: dict) -> None:
        _check_same_keys(params, grads)
        for name, g in grads.items():
            acc = self.accumulator.setdefault(name, np.zeros_like(g))
            acc += g * g
            params[name] -= self.learning_rate * g / (np.sqrt(acc) + self.epsilon)


class Adam:
    """Adam (Kingma & Ba, 2015) with bias correction, as in Keras."""

    def __init__(self, learning_rate: float = 1e-3, beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7):
        check_positive("learning_rate", learning_rate)
        check_fraction("beta_1", beta_1)
        check_fraction("beta_2", beta_2)
        check_positive("epsilon", epsilon)
        self.learning_rate, self.beta_1, self.beta_2, self.epsilon = learning_rate, beta_1, beta_2, epsilon
        self.m, self.v, self.iterations = {}, {}, 0

    def step(self, params: dict, grads: dict) -> None:
        _check_same_keys(params, grads)
        self.iterations += 1
        t = self.iterations
        lr = self.learning_rate * np.sqrt(1 - self.beta_2**t) / (1 - self.beta_1**t)
        for name, g in grads.items():
            m = self.m.setdefault(name, np.zeros_like(g))
            v = self.v.setdefault(name, np.zeros_like(g))
            m += (1 - self.beta_1) * (g - m)
            v += (1 - self.beta_2) * (g * g - v)
            params[name] -= lr * m / (np.sqrt(v) + self.epsilon)
