"""A vanilla (Elman) RNN in NumPy: one cell step, and the layer that runs it over a sequence.

Weights use the Keras `SimpleRNN` layout so the two can exchange them unchanged:

    kernel            (D, H)   input  -> hidden
    recurrent_kernel  (H, H)   hidden -> hidden
    bias              (H,)

and the data are batch-major, as in Keras: x has shape (N, T, D), hidden states (N, T, H).

    h_t = f(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)

Each operation comes as a pair, `..._forward(...) -> (out, cache)` and
`..._backward(dout, cache) -> gradients`, so that a backward pass uses exactly what its
forward pass saw.
"""

from __future__ import annotations

import numpy as np

from .activations import get_activation
from .validation import (check, check_cache, check_data, check_finite, check_float_dtype, check_generator,
                         check_gradient, check_int, check_mask, check_step_cache)


def _check_inputs(x_name, x, x_spec, states: dict, kernel, recurrent_kernel, bias) -> dict:
    """Shapes, dtypes and finite values of everything a forward pass reads, checked once."""
    sizes = check_data(x_name, x, x_spec, states, kernel)
    sizes = check("kernel", kernel, ("D", "H"), sizes)
    check("recurrent_kernel", recurrent_kernel, ("H", "H"), sizes)
    check("bias", bias, ("H",), sizes)
    check_finite(**{x_name: x}, **states, kernel=kernel, recurrent_kernel=recurrent_kernel, bias=bias)
    return sizes


# --------------------------------------------------------------------------- one time step
def rnn_step_forward(x_t, h_prev, kernel, recurrent_kernel, bias, activation="tanh", validate=True):
    """One step of the cell. x_t (N, D), h_prev (N, H) -> h_next (N, H), cache.

    validate=False skips the input checks: rnn_forward checks the whole sequence once.
    """
    if validate:
        _check_inputs("x_t", x_t, ("N", "D"), {"h_prev": h_prev}, kernel, recurrent_kernel, bias)
    act = get_activation(activation)
    h_next = act.forward(x_t @ kernel + h_prev @ recurrent_kernel + bias)
    cache = (x_t, h_prev, kernel, recurrent_kernel, h_next, act)
    return h_next, cache


def rnn_step_backward(dh_next, cache, validate=True):
    """Gradients of one step. dh_next (N, H) -> (dx_t, dh_prev, dkernel, drecurrent_kernel, dbias).

    Here "next" and "prev" are seen from the step: dh_next is the gradient with respect to the
    state this step outputs (h_next), and dh_prev the gradient it passes to the state it read
    (h_prev). rnn_backward calls it with the total gradient at h_t.
    validate=False skips the check of dh_next: rnn_backward checks the whole dh once.
    """
    x_t, h_prev, kernel, recurrent_kernel, h_next, act = check_step_cache(cache, "rnn_step_forward", 6)
    if validate:
        check_gradient("dh_next", dh_next, h_next.shape)
    dz = dh_next * act.derivative_from_output(h_next)  # through the nonlinearity
    dx_t = dz @ kernel.T
    dh_prev = dz @ recurrent_kernel.T
    dkernel = x_t.T @ dz
    drecurrent_kernel = h_prev.T @ dz
    dbias = dz.sum(axis=0)
    return dx_t, dh_prev, dkernel, drecurrent_kernel, dbias


# ------------------------------------------------------------------- a whole sequence
def rnn_forward(x, h0, kernel, recurrent_kernel, bias, activation="tanh", mask=None):
    """Run the cell over a sequence. x (N, T, D), h0 (N, H) -> h (N, T, H), cache.

    `mask` (N, T) of booleans marks real steps; at a padded step (False) the state is carried
    over unchanged (h_t = h_{t-1}), which is what Keras does for masked inputs.
    """
    sizes = _check_inputs("x", x, ("N", "T", "D"), {"h0": h0}, kernel, recurrent_kernel, bias)
    mask = check_mask(mask, sizes)
    get_activation(activation)  # an unknown name fails here, before the loop
    N, T, _ = x.shape
    h = np.empty((N, T, sizes["H"]), dtype=np.result_type(x, h0, kernel))
    step_caches = []
    h_prev = h0
    for t in range(T):
        h_t, step_cache = rnn_step_forward(x[:, t], h_prev, kernel, recurrent_kernel, bias, activation, validate=False)
        if mask is not None:
            h_t = np.where(mask[:, t, None], h_t, h_prev)
        h[:, t] = h_t
        step_caches.append(step_cache)
        h_prev = h_t
    return h, (step_caches, mask, x.shape, h0.shape)


def rnn_backward(dh, cache):
    """Backpropagation through time over the whole sequence.

    dh (N, T, H) is the gradient of the loss with respect to every hidden state the forward
    pass returned (zeros where a state was not used). Returns
    (dx, dh0, dkernel, drecurrent_kernel, dbias).

    The gradient flowing into h_t is the sum of two paths: the loss terms that read h_t, and
    everything later, through h_{t+1} (dh_next here: what the later step passed back). The
    loop walks the array positions t = T-1 down to 0; position t holds step t + 1 of the
    chapters' numbering (h_1 ... h_T), so dh[:, t] is the loss's gradient at that step.
    """
    step_caches, mask, x_shape, h0_shape = check_cache(cache, "rnn_forward", 4, 6)
    N, T, D = x_shape
    check_gradient("dh", dh, (N, T, h0_shape[1]))
    _, _, kernel, recurrent_kernel, _, _ = step_caches[0]
    dx = np.zeros(x_shape, dtype=dh.dtype)
    dkernel = np.zeros_like(kernel)
    drecurrent_kernel = np.zeros_like(recurrent_kernel)
    dbias = np.zeros(kernel.shape[1], dtype=kernel.dtype)
    dh_next = np.zeros(h0_shape, dtype=dh.dtype)
    for t in reversed(range(T)):
        dh_t = dh[:, t] + dh_next
        if mask is not None:
            # A padded step copied h_{t-1} forward: its gradient passes straight back.
            live = mask[:, t, None]
            carried = np.where(live, 0.0, dh_t)
            dh_t = np.where(live, dh_t, 0.0)
        dx_t, dh_prev, dk, drk, db = rnn_step_backward(dh_t, step_caches[t], validate=False)
        dx[:, t] = dx_t
        dkernel += dk
        drecurrent_kernel += drk
        dbias += db
        dh_next = dh_prev if mask is None else dh_prev + carried
    return dx, dh_next, dkernel, drecurrent_kernel, dbias


# ------------------------------------------------------------------------ parameters
def glorot_uniform(rng: np.random.Generator, fan_in: int, fan_out: int, dtype=np.float64):
    """Keras's default kernel initializer: U(-l, l) with l = sqrt(6 / (fan_in + fan_out))."""
    check_generator("rng", rng)
    check_int("fan_in", fan_in)
    check_int("fan_out", fan_out)
    check_float_dtype("dtype", dtype)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype(dtype)


def orthogonal(rng: np.random.Generator, n: int, dtype=np.float64, gain: float = 1.0):
    """Keras's default recurrent initializer: a random orthogonal matrix (all singular values 1)."""
    check_generator("rng", rng)
    check_int("n", n)
    check_float_dtype("dtype", dtype)
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    q *= np.sign(np.diag(r))  # make the distribution uniform over orthogonal matrices
    return (gain * q).astype(dtype)


def init_rnn_params(input_dim: int, units: int, rng: np.random.Generator, dtype=np.float64) -> dict:
    """Parameters of a SimpleRNN, initialised as Keras does by default."""
    check_int("input_dim", input_dim)
    check_int("units", units)
    return {
        "kernel": glorot_uniform(rng, input_dim, units, dtype),
        "recurrent_kernel": orthogonal(rng, units, dtype),
        "bias": np.zeros(units, dtype=dtype),
    }
