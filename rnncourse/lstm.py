"""The LSTM in NumPy: one cell step, and the layer that runs it over a sequence.

Weights use the Keras `LSTM` layout so the two can exchange them unchanged. The four gates
sit side by side in the columns, in the order i, f, c, o (Keras calls the candidate "c";
here it is g, so that c can stay the cell state):

    kernel            (D, 4H)   input  -> [i | f | g | o]
    recurrent_kernel  (H, 4H)   hidden -> [i | f | g | o]
    bias              (4H,)

With a_t = x_t @ kernel + h_{t-1} @ recurrent_kernel + bias split into four (N, H) blocks:

    i_t = sigmoid(a_i)        input gate:  how much of the candidate to write
    f_t = sigmoid(a_f)        forget gate: how much of the old cell state to keep
    g_t = tanh(a_g)           candidate cell state
    o_t = sigmoid(a_o)        output gate: how much of the cell state to show
    c_t = f_t * c_{t-1} + i_t * g_t
    h_t = o_t * tanh(c_t)

The data are batch-major, as in Keras: x has shape (N, T, D), hidden and cell states
(N, T, H). Each operation comes as a pair, `..._forward(...) -> (out, cache)` and
`..._backward(dout, cache) -> gradients`, as in `rnncourse.rnn`.
"""

from __future__ import annotations

import numpy as np

from .activations import sigmoid
from .rnn import glorot_uniform, orthogonal
from .validation import (check, check_cache, check_data, check_finite, check_gradient, check_int, check_mask,
                         check_step_cache)

GATES = ("i", "f", "g", "o")


def _check_weights(kernel, recurrent_kernel, bias, sizes: dict) -> dict:
    """Check the three weight arrays once H (and D) are known; "4H" is spelt out in messages."""
    sizes = {**sizes, "4H": 4 * sizes["H"]}
    sizes = check("kernel", kernel, ("D", "4H"), sizes)
    check("recurrent_kernel", recurrent_kernel, ("H", "4H"), sizes)
    check("bias", bias, ("4H",), sizes)
    return sizes


def _check_inputs(x_name, x, x_spec, states: dict, kernel, recurrent_kernel, bias) -> dict:
    """Shapes, dtypes and finite values of everything a forward pass reads, checked once."""
    sizes = check_data(x_name, x, x_spec, states, kernel, gates=4)
    sizes = _check_weights(kernel, recurrent_kernel, bias, sizes)
    check_finite(**{x_name: x}, **states, kernel=kernel, recurrent_kernel=recurrent_kernel, bias=bias)
    return sizes


# --------------------------------------------------------------------------- one time step
def lstm_step_forward(x_t, h_prev, c_prev, kernel, recurrent_kernel, bias, validate=True):
    """One step of the cell. x_t (N, D), h_prev and c_prev (N, H) -> h_next, c_next (N, H), cache.

    validate=False skips the input checks: lstm_forward checks the whole sequence once.
    """
    if validate:
        _check_inputs("x_t", x_t, ("N", "D"), {"h_prev": h_prev, "c_prev": c_prev}, kernel, recurrent_kernel, bias)
    H = h_prev.shape[1]
    # One matrix product for all four gates, then cut the columns into the four blocks.
    a = x_t @ kernel + h_prev @ recurrent_kernel + bias
    i = sigmoid(a[:, 0 * H:1 * H])
    f = sigmoid(a[:, 1 * H:2 * H])
    g = np.tanh(a[:, 2 * H:3 * H])
    o = sigmoid(a[:, 3 * H:4 * H])
    c_next = f * c_prev + i * g
    tanh_c = np.tanh(c_next)
    h_next = o * tanh_c
    cache = (x_t, h_prev, c_prev, kernel, recurrent_kernel, i, f, g, o, c_next, tanh_c)
    return h_next, c_next, cache


def lstm_step_backward(dh_next, dc_next, cache, validate=True):
    """Gradients of one step.

    dh_next, dc_next (N, H) are the gradients with respect to h_next and c_next. Returns
    (dx_t, dh_prev, dc_prev, dkernel, drecurrent_kernel, dbias). validate=False skips the
    checks of dh_next and dc_next: lstm_backward checks its gradients once.
    """
    x_t, h_prev, c_prev, kernel, recurrent_kernel, i, f, g, o, c_next, tanh_c = check_step_cache(
        cache, "lstm_step_forward", 11)
    if validate:
        check_gradient("dh_next", dh_next, c_next.shape)
        check_gradient("dc_next", dc_next, c_next.shape)
    # c_next reaches the loss two ways: directly (dc_next) and through h_next = o * tanh(c_next).
    dc = dc_next + dh_next * o * (1.0 - tanh_c * tanh_c)
    do = dh_next * tanh_c
    di = dc * g
    df = dc * c_prev
    dg = dc * i
    dc_prev = dc * f
    # Back through each gate's nonlinearity to its pre-activation, blocks in kernel order.
    da = np.concatenate(
        [di * i * (1.0 - i), df * f * (1.0 - f), dg * (1.0 - g * g), do * o * (1.0 - o)], axis=1
    )
    dx_t = da @ kernel.T
    dh_prev = da @ recurrent_kernel.T
    dkernel = x_t.T @ da
    drecurrent_kernel = h_prev.T @ da
    dbias = da.sum(axis=0)
    return dx_t, dh_prev, dc_prev, dkernel, drecurrent_kernel, dbias


# ------------------------------------------------------------------- a whole sequence
def lstm_forward(x, h0, c0, kernel, recurrent_kernel, bias, mask=None):
    """Run the cell over a sequence. x (N, T, D), h0 and c0 (N, H) -> h, c (N, T, H), cache.

    h[:, t] and c[:, t] are the hidden and cell states after step t. `mask` (N, T) of
    booleans marks real steps; at a padded step (False) both states are carried over
    unchanged, which is what Keras does for masked inputs.
    """
    sizes = _check_inputs("x", x, ("N", "T", "D"), {"h0": h0, "c0": c0}, kernel, recurrent_kernel, bias)
    mask = check_mask(mask, sizes)
    N, T, _ = x.shape
    dtype = np.result_type(x, h0, c0, kernel)
    h = np.empty((N, T, sizes["H"]), dtype=dtype)
    c = np.empty((N, T, sizes["H"]), dtype=dtype)
    step_caches = []
    h_prev, c_prev = h0, c0
    for t in range(T):
        h_t, c_t, step_cache = lstm_step_forward(x[:, t], h_prev, c_prev, kernel, recurrent_kernel, bias,
                                                  validate=False)
        if mask is not None:
            live = mask[:, t, None]
            h_t = np.where(live, h_t, h_prev)
            c_t = np.where(live, c_t, c_prev)
        h[:, t] = h_t
        c[:, t] = c_t
        step_caches.append(step_cache)
        h_prev, c_prev = h_t, c_t
    return h, c, (step_caches, mask, c, x.shape, h0.shape)


def lstm_backward(dh, cache, dc_last=None):
    """Backpropagation through time over the whole sequence.

    dh (N, T, H) is the gradient of the loss with respect to every hidden state the forward
    pass returned (zeros where a state was not used); dc_last (N, H), optional, is the
    gradient with respect to the final cell state c[:, -1] (a Keras layer with
    return_state=True hands that state out). Returns
    (dx, dh0, dc0, dkernel, drecurrent_kernel, dbias).

    Two gradients flow backwards from step to step: into h_{t-1} and into c_{t-1}. The cell
    state path multiplies only by the forget gate, never by a weight matrix, which is why
    gradients survive over many more steps than in the vanilla RNN.
    """
    step_caches, mask, _, x_shape, h0_shape = check_cache(cache, "lstm_forward", 5, 11)
    N, T, D = x_shape
    check_gradient("dh", dh, (N, T, h0_shape[1]))
    dc_next = np.zeros(h0_shape, dtype=dh.dtype)
    if dc_last is not None:
        check_gradient("dc_last", dc_last, h0_shape)
        dc_next = dc_next + dc_last
    kernel, recurrent_kernel = step_caches[0][3], step_caches[0][4]
    dx = np.zeros(x_shape, dtype=dh.dtype)
    dkernel = np.zeros_like(kernel)
    drecurrent_kernel = np.zeros_like(recurrent_kernel)
    dbias = np.zeros(kernel.shape[1], dtype=kernel.dtype)
    dh_next = np.zeros(h0_shape, dtype=dh.dtype)
    for t in reversed(range(T)):
        dh_t = dh[:, t] + dh_next
        dc_t = dc_next
        if mask is not None:
            # A padded step copied (h, c) forward unchanged: their gradients pass straight back.
            live = mask[:, t, None]
            carried_h = np.where(live, 0.0, dh_t)
            carried_c = np.where(live, 0.0, dc_t)
            dh_t = np.where(live, dh_t, 0.0)
            dc_t = np.where(live, dc_t, 0.0)
        dx_t, dh_prev, dc_prev, dk, drk, db = lstm_step_backward(dh_t, dc_t, step_caches[t], validate=False)
        dx[:, t] = dx_t
        dkernel += dk
        drecurrent_kernel += drk
        dbias += db
        if mask is None:
            dh_next, dc_next = dh_prev, dc_prev
        else:
            dh_next, dc_next = dh_prev + carried_h, dc_prev + carried_c
    return dx, dh_next, dc_next, dkernel, drecurrent_kernel, dbias


def lstm_gates(cache) -> dict:
    """The gate activations of a forward pass, for plotting: {"i", "f", "g", "o", "c"}.

    Each value has shape (N, T, H): the input, forget and output gates and the candidate
    g as the cell computed them at step t, and c the cell state after step t. At a padded
    step the cell still computes gates (Keras does too) but the states ignore them; use the
    mask to hide them in a plot.
    """
    step_caches, _, c, _, _ = check_cache(cache, "lstm_forward", 5, 11)
    # Positions 5..8 of a step cache hold i, f, g, o (see lstm_step_forward).
    gates = {name: np.stack([sc[5 + k] for sc in step_caches], axis=1) for k, name in enumerate(GATES)}
    gates["c"] = c
    return gates


# ------------------------------------------------------------------------ parameters
def init_lstm_params(input_dim: int, units: int, rng: np.random.Generator, dtype=np.float64) -> dict:
    """Parameters of an LSTM, initialised as Keras does by default.

    kernel: Glorot uniform over the whole (D, 4H) matrix. recurrent_kernel: orthogonal with
    orthonormal rows, as Keras draws an (H, 4H) orthogonal matrix; the first H rows of a
    random 4H x 4H orthogonal matrix have exactly that distribution. bias: zero except the
    forget gate, which starts at 1 (Keras's unit_forget_bias=True) so that early in training
    the cell remembers by default instead of forgetting by default.
    """
    check_int("input_dim", input_dim)
    check_int("units", units)
    bias = np.zeros(4 * units, dtype=dtype)
    bias[units:2 * units] = 1.0
    return {
        "kernel": glorot_uniform(rng, input_dim, 4 * units, dtype),
        "recurrent_kernel": orthogonal(rng, 4 * units, dtype)[:units],
        "bias": bias,
    }
