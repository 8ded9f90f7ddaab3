"""The Jacobians behind vanishing and exploding gradients, and truncated BPTT, for the vanilla RNN.

Row vectors, as everywhere in the course: h_t = f(z_t), z_t = x_t W + h_{t-1} U + b. The
Jacobian of one step, with rows indexing h_t and columns h_{t-1}, is

    J_t = dh_t / dh_{t-1} = diag(f'(z_t)) U^T            (H, H)

(U^T, not U: entry (i, j) is f'(z_t,i) U[j, i], because unit j of h_{t-1} reaches unit i of
h_t through the weight in row j, column i of U). Across several steps the chain rule
multiplies them: dh_T / dh_t = J_T J_{T-1} ... J_{t+1}. A row-vector gradient goes back one
step as delta_{t-1} = delta_t J_t = (delta_t * f'(z_t)) U^T, which is exactly the line
`dh_prev = dz @ recurrent_kernel.T` of `rnn.rnn_step_backward`.

Everything here reads the cache of `rnn.rnn_forward` (unmasked sequences only).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .rnn import rnn_step_backward
from .validation import check_cache, check_generator, check_int, check_positive


def _unmasked_steps(cache):
    step_caches, mask, x_shape, h0_shape = check_cache(cache, "rnn_forward", 4, 6)
    if mask is not None:
        raise ValueError("these functions handle unmasked sequences only (call rnn_forward without a mask)")
    return step_caches, x_shape, h0_shape


def step_jacobians(cache) -> np.ndarray:
    """J[n, t] = dh_t / dh_{t-1} for every example n and step t: shape (N, T, H, H).

    h_{-1} stands for the initial state h0, so J[:, 0] is the Jacobian with respect to h0.
    """
    step_caches, _, _ = _unmasked_steps(cache)
    out = []
    for _, _, _, recurrent_kernel, h_next, act in step_caches:
        slope = act.derivative_from_output(h_next)              # f'(z_t), (N, H)
        out.append(slope[:, :, None] * recurrent_kernel.T[None])  # diag(f'(z_t)) U^T, row by row
    return np.stack(out, axis=1)


def state_jacobian(cache, end: int, start: int) -> np.ndarray:
    """d h[:, end] / d h[:, start] for every example: the product J_end ... J_{start+1}, (N, H, H).

    Indices are those of the `h` array rnn_forward returns (0 .. T-1); start = -1 means h0.
    """
    step_caches, x_shape, h0_shape = _unmasked_steps(cache)
    T = x_shape[1]
    check_int("end", end, minimum=0)
    check_int("start", start, minimum=-1)
    if not -1 <= start <= end < T:
        raise ValueError(f"need -1 <= start <= end < T = {T}, got start={start}, end={end}")
    J = step_jacobians(cache)
    N, H = h0_shape
    product = np.broadcast_to(np.eye(H), (N, H, H)).copy()
    for t in range(end, start, -1):          # multiply on the right: J_end J_{end-1} ... J_{start+1}
        product = product @ J[:, t]
    return product


def numerical_jacobian(f: Callable[[np.ndarray], np.ndarray], v: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central-difference Jacobian of a vector function: J[i, j] = d f(v)_i / d v_j."""
    check_positive("eps", eps)
    v = np.asarray(v, dtype=np.float64)
    columns = []
    for j in range(v.size):
        step = np.zeros_like(v)
        step.flat[j] = eps
        columns.append((np.asarray(f(v + step)) - np.asarray(f(v - step))).ravel() / (2 * eps))
    return np.stack(columns, axis=1)


def backprop_norms(cache, dh_last: np.ndarray) -> np.ndarray:
    """||dL/dh_t|| for every example and step, for a loss L that reads only the last state.

    dh_last (N, H) is dL/dh_{T-1}. Returns norms (N, T): column t is the norm of the gradient
    that reaches h_t, that is, T - 1 - t steps back from the loss.
    """
    step_caches, x_shape, _ = _unmasked_steps(cache)
    N, T, _ = x_shape
    norms = np.empty((N, T))
    delta = dh_last
    for t in reversed(range(T)):
        norms[:, t] = np.linalg.norm(delta, axis=1)
        _, delta, _, _, _ = rnn_step_backward(delta, step_caches[t])
    return norms


def truncated_rnn_backward(dh, cache, k1: int, k2: int | None = None) -> list[dict]:
    """Truncated BPTT, BPTT(k1, k2), at fixed weights: the gradient of each update.

    The sequence is read in updates of k1 steps (the last one may be shorter). At each update
    the loss terms of its own steps (dh at those steps) are back-propagated through those steps
    and k2 - k1 steps further back, and no further (k2 >= k1; k2 = None means k2 = k1). With
    k1 = k2 = k this is the usual "windows with the state carried over and the gradient stopped
    at the window boundary"; with k1 = k2 = T it is full BPTT. (Some texts define BPTT(k1, k2)
    with all the loss terms of the last k2 steps back-propagated at every update; here each
    loss term is used once, so the updates' gradients add up to a truncated full gradient.)

    Returns one dict per update with "kernel", "recurrent_kernel", "bias" and "x" (the gradient
    with respect to the inputs, zero where the truncation stopped it).
    """
    step_caches, x_shape, h0_shape = _unmasked_steps(cache)
    N, T, D = x_shape
    k2 = k1 if k2 is None else k2
    if k1 < 1 or k2 < k1:
        raise ValueError(f"need 1 <= k1 <= k2, got k1={k1}, k2={k2}")
    if dh.shape != (N, T, h0_shape[1]):
        raise ValueError(f"dh must have shape (N, T, H) = {(N, T, h0_shape[1])}, got {dh.shape}")
    _, _, kernel, recurrent_kernel, _, _ = step_caches[0]
    updates = []
    for first in range(0, T, k1):
        end, stop = min(first + k1, T), max(0, first - (k2 - k1))
        grads = {"kernel": np.zeros_like(kernel), "recurrent_kernel": np.zeros_like(recurrent_kernel),
                 "bias": np.zeros(kernel.shape[1], dtype=kernel.dtype), "x": np.zeros(x_shape, dtype=dh.dtype)}
        dh_next = np.zeros(h0_shape, dtype=dh.dtype)
        for t in range(end - 1, stop - 1, -1):
            dh_t = (dh_next + dh[:, t]) if t >= first else dh_next
            dx_t, dh_next, dk, drk, db = rnn_step_backward(dh_t, step_caches[t])
            grads["x"][:, t] = dx_t
            grads["kernel"] += dk
            grads["recurrent_kernel"] += drk
            grads["bias"] += db
        updates.append(grads)
    return updates


def scaled_orthogonal(rng: np.random.Generator, n: int, radius: float) -> np.ndarray:
    """A random orthogonal matrix times `radius`: every eigenvalue and singular value has modulus `radius`."""
    check_generator("rng", rng)
    check_int("n", n)
    check_positive("radius", radius, allow_zero=True)
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return radius * q * np.sign(np.diag(r))
