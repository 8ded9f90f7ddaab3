"""The GRU in NumPy: one cell step, and the layer that runs it over a sequence.

Weights use the Keras `GRU` layout so the two can exchange them unchanged. The three gates
sit side by side in the columns, in the order z (update), r (reset), h (candidate):

    kernel            (D, 3H)   input  -> [z | r | h]
    recurrent_kernel  (H, 3H)   hidden -> [z | r | h]

and the new state mixes the old one with a candidate, in the Keras convention:

    z_t = sigmoid(x_t W_z + h_{t-1} U_z + b_z)
    r_t = sigmoid(x_t W_r + h_{t-1} U_r + b_r)
    h_t = z_t * h_{t-1} + (1 - z_t) * candidate_t

Keras has two forms of the candidate, chosen by `reset_after`:

    reset_after=False  (Cho et al. 2014)          bias (3H,)
        candidate = tanh(x_t W_h + (r_t * h_{t-1}) U_h + b_h)
    reset_after=True   (Keras 3 default; cuDNN)   bias (2, 3H): row 0 input, row 1 recurrent
        candidate = tanh(x_t W_h + b_in_h + r_t * (h_{t-1} U_h + b_rec_h))

With reset_after=True the reset gate multiplies the product h_{t-1} U_h instead of h_{t-1},
so all three recurrent products can be computed in one matrix multiplication (cuDNN does).
In that form z and r see the sum of both bias rows, b_in + b_rec.

The data are batch-major, as in Keras: x has shape (N, T, D), hidden states (N, T, H).
"""

from __future__ import annotations

import numpy as np

from .activations import sigmoid
from .rnn import glorot_uniform, orthogonal
from .validation import (check, check_cache, check_data, check_finite, check_gradient, check_int, check_mask,
                         check_step_cache)


def _check_weights(kernel, recurrent_kernel, bias, reset_after: bool, sizes: dict) -> dict:
    """Check the three weight arrays once H (and D) are known; "3H" is spelt out in messages."""
    if not isinstance(reset_after, (bool, np.bool_)):
        raise TypeError(f"reset_after must be True or False, got {reset_after!r}")
    sizes = {**sizes, "3H": 3 * sizes["H"]}
    sizes = check("kernel", kernel, ("D", "3H"), sizes)
    check("recurrent_kernel", recurrent_kernel, ("H", "3H"), sizes)
    spec = (2, "3H") if reset_after else ("3H",)
    try:
        check("bias", bias, spec, sizes)
    except ValueError as err:
        # The commonest mistake is a bias from the other form of the GRU: say so.
        H3 = sizes["3H"]
        if bias.shape == ((H3,) if reset_after else (2, H3)):
            other = "(3H,)" if reset_after else "(2, 3H)"
            hint = f"a bias of shape {other} belongs to a GRU with reset_after={not reset_after}"
            raise ValueError(f"{err}; {hint}") from None
        raise
    return sizes


def _check_inputs(x_name, x, x_spec, states: dict, kernel, recurrent_kernel, bias, reset_after) -> dict:
    """Shapes, dtypes and finite values of everything a forward pass reads, checked once."""
    sizes = check_data(x_name, x, x_spec, states, kernel, gates=3)
    sizes = _check_weights(kernel, recurrent_kernel, bias, reset_after, sizes)
    check_finite(**{x_name: x}, **states, kernel=kernel, recurrent_kernel=recurrent_kernel, bias=bias)
    return sizes


# --------------------------------------------------------------------------- one time step
def gru_step_forward(x_t, h_prev, kernel, recurrent_kernel, bias, reset_after=True, validate=True):
    """One step of the cell. x_t (N, D), h_prev (N, H) -> h_next (N, H), cache.

    validate=False skips the input checks: gru_forward checks the whole sequence once.
    """
    if validate:
        _check_inputs("x_t", x_t, ("N", "D"), {"h_prev": h_prev}, kernel, recurrent_kernel, bias, reset_after)
    H = h_prev.shape[1]
    if reset_after:
        # Input and recurrent contributions for all three blocks, each with its own bias.
        ax = x_t @ kernel + bias[0]
        ah = h_prev @ recurrent_kernel + bias[1]
        z = sigmoid(ax[:, :H] + ah[:, :H])
        r = sigmoid(ax[:, H:2 * H] + ah[:, H:2 * H])
        recurrent_h = ah[:, 2 * H:]  # h_{t-1} U_h + b_rec_h, which the reset gate scales
        candidate = np.tanh(ax[:, 2 * H:] + r * recurrent_h)
    else:
        ax = x_t @ kernel + bias
        ah = h_prev @ recurrent_kernel[:, :2 * H]  # the reset gate must exist before U_h is applied
        z = sigmoid(ax[:, :H] + ah[:, :H])
        r = sigmoid(ax[:, H:2 * H] + ah[:, H:])
        recurrent_h = r * h_prev  # the reset state r * h_{t-1}, which U_h multiplies
        candidate = np.tanh(ax[:, 2 * H:] + recurrent_h @ recurrent_kernel[:, 2 * H:])
    h_next = z * h_prev + (1.0 - z) * candidate
    cache = (x_t, h_prev, kernel, recurrent_kernel, z, r, candidate, recurrent_h, reset_after)
    return h_next, cache


def gru_step_backward(dh_next, cache, validate=True):
    """Gradients of one step. dh_next (N, H) -> (dx_t, dh_prev, dkernel, drecurrent_kernel, dbias).

    dbias has the shape of the bias the forward pass used: (2, 3H) with reset_after=True,
    (3H,) otherwise. validate=False skips the check of dh_next: gru_backward checks dh once.
    """
    x_t, h_prev, kernel, recurrent_kernel, z, r, candidate, recurrent_h, reset_after = check_step_cache(
        cache, "gru_step_forward", 9)
    if validate:
        check_gradient("dh_next", dh_next, h_prev.shape)
    H = h_prev.shape[1]
    # h_next = z * h_prev + (1 - z) * candidate: three ways back.
    dh_prev = dh_next * z
    dz = dh_next * (h_prev - candidate)
    dcandidate = dh_next * (1.0 - z)
    da_z = dz * z * (1.0 - z)  # pre-activation gradients, through sigmoid and tanh
    da_h = dcandidate * (1.0 - candidate * candidate)
    if reset_after:
        # candidate = tanh(ax_h + r * recurrent_h), recurrent_h = h_prev U_h + b_rec_h
        da_r = da_h * recurrent_h * r * (1.0 - r)
        dax = np.concatenate([da_z, da_r, da_h], axis=1)
        dah = np.concatenate([da_z, da_r, da_h * r], axis=1)
        dh_prev = dh_prev + dah @ recurrent_kernel.T
        drecurrent_kernel = h_prev.T @ dah
        dbias = np.stack([dax.sum(axis=0), dah.sum(axis=0)])
    else:
        # candidate = tanh(ax_h + recurrent_h U_h), recurrent_h = r * h_prev
        drecurrent_h = da_h @ recurrent_kernel[:, 2 * H:].T
        da_r = drecurrent_h * h_prev * r * (1.0 - r)
        dh_prev = dh_prev + drecurrent_h * r
        da_zr = np.concatenate([da_z, da_r], axis=1)
        dh_prev = dh_prev + da_zr @ recurrent_kernel[:, :2 * H].T
        drecurrent_kernel = np.concatenate([h_prev.T @ da_zr, recurrent_h.T @ da_h], axis=1)
        dax = np.concatenate([da_z, da_r, da_h], axis=1)
        dbias = dax.sum(axis=0)
    dx_t = dax @ kernel.T
    dkernel = x_t.T @ dax
    return dx_t, dh_prev, dkernel, drecurrent_kernel, dbias


# ------------------------------------------------------------------- a whole sequence
def gru_forward(x, h0, kernel, recurrent_kernel, bias, reset_after=True, mask=None):
    """Run the cell over a sequence. x (N, T, D), h0 (N, H) -> h (N, T, H), cache.

    `mask` (N, T) of booleans marks real steps; at a padded step (False) the state is carried
    over unchanged (h_t = h_{t-1}), which is what Keras does for masked inputs.
    """
    sizes = _check_inputs("x", x, ("N", "T", "D"), {"h0": h0}, kernel, recurrent_kernel, bias, reset_after)
    mask = check_mask(mask, sizes)
    N, T, _ = x.shape
    h = np.empty((N, T, sizes["H"]), dtype=np.result_type(x, h0, kernel))
    step_caches = []
    h_prev = h0
    for t in range(T):
        h_t, step_cache = gru_step_forward(x[:, t], h_prev, kernel, recurrent_kernel, bias, reset_after, validate=False)
        if mask is not None:
            h_t = np.where(mask[:, t, None], h_t, h_prev)
        h[:, t] = h_t
        step_caches.append(step_cache)
        h_prev = h_t
    return h, (step_caches, mask, x.shape, h0.shape, bias.shape)


def gru_backward(dh, cache):
    """Backpropagation through time over the whole sequence.

    dh (N, T, H) is the gradient of the loss with respect to every hidden state the forward
    pass returned (zeros where a state was not used). Returns
    (dx, dh0, dkernel, drecurrent_kernel, dbias).

    The term z * h_{t-1} in the update passes gradient back to h_{t-1} multiplied only by
    the update gate, a path with no weight matrix on it, like the LSTM's cell state.
    """
    step_caches, mask, x_shape, h0_shape, bias_shape = check_cache(cache, "gru_forward", 5, 9)
    N, T, D = x_shape
    check_gradient("dh", dh, (N, T, h0_shape[1]))
    kernel, recurrent_kernel = step_caches[0][2], step_caches[0][3]
    dx = np.zeros(x_shape, dtype=dh.dtype)
    dkernel = np.zeros_like(kernel)
    drecurrent_kernel = np.zeros_like(recurrent_kernel)
    dbias = np.zeros(bias_shape, dtype=kernel.dtype)
    dh_next = np.zeros(h0_shape, dtype=dh.dtype)
    for t in reversed(range(T)):
        dh_t = dh[:, t] + dh_next
        if mask is not None:
            # A padded step copied h_{t-1} forward: its gradient passes straight back.
            live = mask[:, t, None]
            carried = np.where(live, 0.0, dh_t)
            dh_t = np.where(live, dh_t, 0.0)
        dx_t, dh_prev, dk, drk, db = gru_step_backward(dh_t, step_caches[t], validate=False)
        dx[:, t] = dx_t
        dkernel += dk
        drecurrent_kernel += drk
        dbias += db
        dh_next = dh_prev if mask is None else dh_prev + carried
    return dx, dh_next, dkernel, drecurrent_kernel, dbias


def gru_gates(cache) -> dict:
    """The gate activations of a forward pass, for plotting: {"z", "r", "candidate"}.

    Each value has shape (N, T, H), as the cell computed it at step t. At a padded step the
    cell still computes gates (Keras does too) but the state ignores them; use the mask to
    hide them in a plot.
    """
    step_caches = check_cache(cache, "gru_forward", 5, 9)[0]
    # Positions 4..6 of a step cache hold z, r, candidate (see gru_step_forward).
    return {name: np.stack([sc[4 + k] for sc in step_caches], axis=1)
            for k, name in enumerate(("z", "r", "candidate"))}


# ------------------------------------------------------------------------ parameters
def init_gru_params(input_dim: int, units: int, rng: np.random.Generator, dtype=np.float64,
                    reset_after: bool = True) -> dict:
    """Parameters of a GRU, initialised as Keras does by default.

    kernel: Glorot uniform over the whole (D, 3H) matrix. recurrent_kernel: orthogonal with
    orthonormal rows, as Keras draws an (H, 3H) orthogonal matrix; the first H rows of a
    random 3H x 3H orthogonal matrix have exactly that distribution. bias: zeros, of shape
    (2, 3H) with reset_after=True and (3H,) without.
    """
    check_int("input_dim", input_dim)
    check_int("units", units)
    return {
        "kernel": glorot_uniform(rng, input_dim, 3 * units, dtype),
        "recurrent_kernel": orthogonal(rng, 3 * units, dtype)[:units],
        "bias": np.zeros((2, 3 * units) if reset_after else (3 * units,), dtype=dtype),
    }
