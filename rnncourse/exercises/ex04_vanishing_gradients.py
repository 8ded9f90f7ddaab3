"""Exercise set ex04, after chapter 4 (vanishing and exploding gradients): references, inputs, mistakes."""

from __future__ import annotations

import numpy as np

from .core import Mistake, Question, RaiseHint, random_sizes

BPTT = 'chapter 2, section "Backpropagation through time, derived"'


# ----------------------------------------------- Q1: clipping a log of gradients, step by step
def clip_inputs(rng):
    _, d, h = random_sizes(rng)
    steps = int(rng.integers(3, 6))
    max_norm = float(rng.choice([0.5, 1.0, 2.0, 5.0]))
    grads = [rng.standard_normal((steps, d, h)), rng.standard_normal((steps, h, h)),
             0.3 * rng.standard_normal((steps, h))]
    norms = np.sqrt(sum((g**2).reshape(steps, -1).sum(axis=1) for g in grads))
    # Target norms: step 0 below max_norm, step 1 far above it (an explosion), the rest anywhere.
    target = max_norm * np.exp(rng.uniform(np.log(0.2), np.log(10.0), size=steps))
    target[0] = max_norm * rng.uniform(0.3, 0.9)
    target[1] = max_norm * rng.uniform(15.0, 40.0)
    scale = target / norms
    dkernel, drecurrent_kernel, dbias = (g * scale.reshape((steps,) + (1,) * (g.ndim - 1)) for g in grads)
    return dict(dkernel=dkernel, drecurrent_kernel=drecurrent_kernel, dbias=dbias, max_norm=max_norm)


def _per_step(g):
    return g.reshape(g.shape[0], -1)


def _expand(v, g):
    return v.reshape((g.shape[0],) + (1,) * (g.ndim - 1))


def clip_gradients(dkernel, drecurrent_kernel, dbias, max_norm):
    """Clip each logged step's three gradients by their global norm; return them and the norms before."""
    grads = (dkernel, drecurrent_kernel, dbias)
    norms = np.sqrt(sum((_per_step(g) ** 2).sum(axis=1) for g in grads))
    scale = np.where(norms > max_norm, max_norm / norms, 1.0)
    return (*(g * _expand(scale, g) for g in grads), norms)


def _clip_each_tensor(dkernel, drecurrent_kernel, dbias, max_norm):
    out = []
    for g in (dkernel, drecurrent_kernel, dbias):
        n = np.sqrt((_per_step(g) ** 2).sum(axis=1))
        out.append(g * _expand(np.where(n > max_norm, max_norm / n, 1.0), g))
    return (*out, clip_gradients(dkernel, drecurrent_kernel, dbias, max_norm)[3])


def _clip_by_value(dkernel, drecurrent_kernel, dbias, max_norm):
    norms = clip_gradients(dkernel, drecurrent_kernel, dbias, max_norm)[3]
    return (*(np.clip(g, -max_norm, max_norm) for g in (dkernel, drecurrent_kernel, dbias)), norms)


def _always_rescale(dkernel, drecurrent_kernel, dbias, max_norm):
    norms = clip_gradients(dkernel, drecurrent_kernel, dbias, max_norm)[3]
    return (*(g * _expand(max_norm / norms, g) for g in (dkernel, drecurrent_kernel, dbias)), norms)


def _sum_of_norms(dkernel, drecurrent_kernel, dbias, max_norm):
    grads = (dkernel, drecurrent_kernel, dbias)
    norms = sum(np.sqrt((_per_step(g) ** 2).sum(axis=1)) for g in grads)
    scale = np.where(norms > max_norm, max_norm / norms, 1.0)
    return (*(g * _expand(scale, g) for g in grads), norms)


def _norms_after(dkernel, drecurrent_kernel, dbias, max_norm):
    clipped = clip_gradients(dkernel, drecurrent_kernel, dbias, max_norm)[:3]
    return (*clipped, np.sqrt(sum((_per_step(g) ** 2).sum(axis=1) for g in clipped)))


def _one_norm_for_all_steps(dkernel, drecurrent_kernel, dbias, max_norm):
    grads = (dkernel, drecurrent_kernel, dbias)
    norm = np.sqrt(sum(float((g**2).sum()) for g in grads))
    scale = max_norm / norm if norm > max_norm else 1.0
    return (*(g * scale for g in grads), np.full(dkernel.shape[0], norm))


CLIP_MISTAKES = (
    Mistake("each tensor is clipped by its own norm; the global norm joins all three, so they all shrink "
            "by the same factor and the update keeps its direction", _clip_each_tensor),
    Mistake("this clips by value (np.clip), entry by entry, which changes the direction of the update; "
            "rescale the whole gradient by max_norm / norm instead", _clip_by_value),
    Mistake("every step is rescaled to length max_norm, even those whose norm is already below it; scale "
            "only when norm > max_norm", _always_rescale),
    Mistake("the global norm is the square root of the sum of all squared entries, not the sum of the "
            "three tensors' norms", _sum_of_norms),
    Mistake("the norms returned are those after clipping; return the norms before clipping (the ones to "
            "monitor)", _norms_after),
    Mistake("one norm is computed over all logged steps together; each step is a separate update, "
            "clipped by its own norm", _one_norm_for_all_steps),
)


# ------------------------------------------------------ Q2: the gradient norm, step by step back
def norm_curve_inputs(rng):
    n, _, h = random_sizes(rng)
    t = int(rng.integers(3, 9))
    x = rng.standard_normal((n, t, 3))
    kernel = rng.standard_normal((3, h)) / np.sqrt(3)
    recurrent_kernel = float(rng.choice([0.8, 1.5, 2.5])) * rng.standard_normal((h, h)) / np.sqrt(h)
    states = np.empty((n, t, h))
    prev = 0.5 * rng.standard_normal((n, h))
    for step in range(t):
        prev = np.tanh(x[:, step] @ kernel + prev @ recurrent_kernel)
        states[:, step] = prev
    return dict(h=states, recurrent_kernel=recurrent_kernel, dh_last=rng.standard_normal((n, h)))


def _norm_curve(h, recurrent_kernel, dh_last, *, derivative=True, transpose_u=True, at_earlier=False,
                norm="global", carry=True):
    t = h.shape[1]
    u = recurrent_kernel.T if transpose_u else recurrent_kernel
    grads = [dh_last]
    for step in range(t - 1, 0, -1):  # from dL/dh_step to dL/dh_{step-1}
        at = h[:, step - 1] if at_earlier else h[:, step]
        d = 1.0 - at**2 if derivative else 1.0
        grads.append(((grads[-1] if carry else dh_last) * d) @ u)
    grads = grads[::-1]  # entry t: the gradient with respect to h[:, t]
    if norm == "global":
        return np.array([np.sqrt((g**2).sum()) for g in grads])
    return np.array([np.sqrt((g**2).sum(axis=1)).mean() for g in grads])


def gradient_norms(h, recurrent_kernel, dh_last):
    """Entry t: the norm of dL/dh[:, t] (one number for the whole (N, H) array) when only h_T feeds L."""
    return _norm_curve(h, recurrent_kernel, dh_last)


NORM_CURVE_MISTAKES = (
    Mistake("the tanh derivative is missing: going back one step multiplies by (1 - h_t**2) before U^T",
            lambda **kw: _norm_curve(**kw, derivative=False)),
    Mistake("U is used where U transposed belongs: dL/dh_{t-1} = (dL/dh_t * (1 - h_t**2)) U^T "
            f"({BPTT})",
            lambda **kw: _norm_curve(**kw, transpose_u=False)),
    Mistake("off by one in time: the step from h_{t-1} to h_t has derivative 1 - h_t**2, at the later "
            "state, not at h_{t-1}",
            lambda **kw: _norm_curve(**kw, at_earlier=True)),
    Mistake("the curve is reversed: entry t belongs to h[:, t], so the last entry is the norm of dh_last",
            lambda **kw: _norm_curve(**kw)[::-1]),
    Mistake("the per-example norms are averaged; take one norm of the whole (N, H) gradient",
            lambda **kw: _norm_curve(**kw, norm="mean")),
    Mistake("the gradient is not carried back: each step starts again from dh_last, but dL/dh_(t-1) is "
            f"computed from dL/dh_t, the step after it ({BPTT}: the g_(t+1) U^T term)",
            lambda **kw: _norm_curve(**kw, carry=False)),
)

NORM_CURVE_HINTS = (
    RaiseHint("IndexError", "off by one in the time loop: the states are h[:, 0] .. h[:, T-1]; going back from "
                            "index t to t - 1 uses 1 - h[:, t]**2, for t from T-1 down to 1"),
)


# ------------------------------------------------------------------------ Q3: the spectral radius
def spectral_inputs(rng):
    size = int(rng.integers(3, 8))
    radius = float(rng.uniform(0.5, 1.5))
    angle = float(rng.uniform(0.6, 2.5))
    block = np.zeros((size, size))
    block[:2, :2] = radius * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    rest = rng.uniform(0.1, 0.8, size=size - 2) * radius * rng.choice([-1.0, 1.0], size=size - 2)
    block[2:, 2:] = np.diag(rest)
    basis = np.eye(size) + 0.3 * rng.standard_normal((size, size))
    return dict(matrix=basis @ block @ np.linalg.inv(basis))


def spectral_radius(matrix):
    """The largest modulus of an eigenvalue of a square matrix."""
    return float(np.max(np.abs(np.linalg.eigvals(matrix))))


SPECTRAL_MISTAKES = (
    Mistake("this is the largest singular value (the matrix 2-norm), an upper bound on the spectral radius; "
            "the spectral radius is the largest |eigenvalue|",
            lambda matrix: float(np.linalg.norm(matrix, 2))),
    Mistake("this is the largest real part of an eigenvalue; eigenvalues can be complex or negative, take "
            "their modulus |lambda|",
            lambda matrix: float(np.max(np.linalg.eigvals(matrix).real))),
    Mistake("this is the largest entry in absolute value; the spectral radius comes from the eigenvalues",
            lambda matrix: float(np.max(np.abs(matrix)))),
)


QUESTIONS = (
    Question("clip_gradients", "clip_gradients", 3, clip_gradients, clip_inputs, CLIP_MISTAKES,
             output_names=("dkernel", "drecurrent_kernel", "dbias", "norms")),
    Question("gradient_norms", "gradient_norms", 3, gradient_norms, norm_curve_inputs, NORM_CURVE_MISTAKES,
             raise_hints=NORM_CURVE_HINTS),
    Question("spectral_radius", "spectral_radius", 2, spectral_radius, spectral_inputs, SPECTRAL_MISTAKES),
    Question("adding_baseline", "answer_adding_baseline", 1, lambda: 1.0 / 6.0, kind="value", atol=1e-3),
    Question("what_clipping_fixes", "answer_what_clipping_fixes", 1, lambda: "a", kind="value",
             choices=("a", "b", "c")),
)
