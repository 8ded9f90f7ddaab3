"""Fast forward and backward passes for the RNN, LSTM and GRU layers, equal to the clear ones.

`rnncourse.rnn`, `rnncourse.lstm` and `rnncourse.gru` are written to be read: one function per
time step, each computing its own input projection and its own weight gradients. That is the
algorithm, but not the fastest way to run it. Three facts make a faster version possible
without changing a single equation:

1. **The input projection does not depend on the recurrence.** x_t @ kernel + bias for every t
   is one (N*T, D) @ (D, G) matrix product, done before the time loop ("hoisted"). Only
   h_{t-1} @ recurrent_kernel has to wait for the previous step.
2. **The weight gradients are sums over steps of outer products,** dkernel = sum_t x_t^T da_t
   and drecurrent_kernel = sum_t h_{t-1}^T da_t. Stack every step's da_t into one (N*T, G)
   array and each sum is one matrix product, after the loop, as is dx = da @ kernel^T.
   One large product runs much closer to the CPU's peak than T small ones.
3. **Memory layout decides the speed of element-wise work.** NumPy's element-wise functions
   run several times faster on one contiguous block than on the same numbers cut out of a
   wider array (measured: 1.8 us against 7 us for 16,384 float32 multiplications). Inside,
   the arrays are laid out for the loop, not for the caller: time first, so one step's numbers
   are contiguous, and for the LSTM and GRU features before examples, so that each gate of a
   step is one contiguous (H, N) block and a step's gates are one product U^T h^T. Inputs are
   transposed once per call, at the edges; the gated layers keep their states feature-first,
   (H, T + 1, N), and write each step's gate gradients straight into (gates, T, N) arrays, so
   the products after the loop read both as they lie, with no transposing copy. Each sigmoid
   is computed as 0.5 * tanh(a / 2) + 0.5, with the 1/2 folded into a copy of the weights, so
   that one `np.tanh` call covers every gate of a step.
4. **A bias is a weight on a constant input.** [x_t, 1] @ [[kernel], [bias]] = x_t @ kernel + bias,
   so the LSTM and GRU append a column of ones to their (copied) inputs and the bias rides in
   the input product; its gradient is then the last row of the kernel's gradient product,
   instead of a sum over examples at every step. The GRU's recurrent bias rides the same way,
   on a row of ones under its states.

Everything else is bookkeeping. Inputs are validated once per call. The LSTM orders its gate
columns [o | i | f | g] inside instead of Keras's [i | f | g | o], so that the three sigmoid
gates are one contiguous block in the forward pass and the three gates multiplied by the
cell-state gradient ([i | f | g]) are one contiguous block in the backward pass; the
gradients are put back into Keras's order before they are returned. Every array for all steps
is allocated once per call and written in place (`out=`), or, with a `Workspace`, allocated
once and reused by every later call of the same shapes: a fresh array of a few megabytes costs
the operating system a page fault per 4 KiB the first time it is written, which on a virtual
machine can take longer than the arithmetic that fills it.

Each function takes and returns exactly what its clear twin does (same shapes, same Keras
weight layout, same masking rule), so a model can switch between them;
`tests/test_fast.py` checks outputs and gradients against the clear code, and the gradients
against central differences. The results agree to round-off, not bit for bit: the sums are
taken in another order and the sigmoid is computed another way.

The GRU fast path implements Keras's default form, reset_after=True, only.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import gru as _gru
from . import lstm as _lstm
from . import rnn as _rnn
from .activations import Activation, get_activation
from .validation import check, check_finite, check_gradient, check_mask


class Workspace:
    """Buffers that a forward and backward pass reuse from one call to the next.

    Pass the same Workspace to every call of a training loop (`lstm_forward_fast(...,
    workspace=ws)`): the large arrays (the states, the gates, the gradients of every step) are
    then allocated on the first call and reused afterwards, whenever the shapes are the same.
    The price: a cache, and the states returned with it, are only valid until the next forward
    call that uses the same workspace, which overwrites them. Without a workspace (the
    default) every call allocates its own arrays and nothing is shared.
    """

    def __init__(self):
        self._buffers: dict = {}

    def buffer(self, name: str, shape: tuple, dtype) -> np.ndarray:
        """An uninitialised array of this shape and dtype, the same one each time it is asked for."""
        found = self._buffers.get(name)
        if found is None or found.shape != tuple(shape) or found.dtype != np.dtype(dtype):
            found = self._buffers[name] = np.empty(shape, dtype=dtype)
        return found


def _buffer(workspace: Workspace | None, name: str, shape: tuple, dtype) -> np.ndarray:
    if workspace is None:
        return np.empty(shape, dtype=dtype)
    if not isinstance(workspace, Workspace):
        raise TypeError(f"workspace must be a rnncourse.fast.Workspace or None, got {type(workspace).__name__}")
    return workspace.buffer(name, shape, dtype)


def _copy_transposed(workspace, name: str, a: np.ndarray, axes: tuple, dtype=None) -> np.ndarray:
    """a.transpose(axes) as a contiguous array (a workspace buffer when there is one)."""
    view = a.transpose(axes)
    out = _buffer(workspace, name, view.shape, dtype or a.dtype)
    np.copyto(out, view)
    return out


def _time_major(a: np.ndarray, workspace=None, name: str = "x_tm") -> np.ndarray:
    """(N, T, ...) -> a contiguous (T, N, ...) copy."""
    return _copy_transposed(workspace, name, a, (1, 0) + tuple(range(2, a.ndim)))


def _batch_major(a: np.ndarray) -> np.ndarray:
    """(T, N, ...) -> a contiguous (N, T, ...) copy, the layout the package's callers use."""
    return np.ascontiguousarray(a.swapaxes(0, 1))


def _transpose_into(out: np.ndarray, a: np.ndarray, rows: int = 16) -> None:
    """out[...] = a.T for 2-D arrays, a few rows of `a` at a time. Copied whole, a transpose
    reads one array along its rows and writes the other down its columns, a cache line per
    number; a block of 16 rows of `a` turns into 16 columns of `out` whose cache lines stay in
    the first-level cache until they are full. The same numbers either way."""
    for lo in range(0, a.shape[0], rows):
        np.copyto(out[:, lo:lo + rows], a[lo:lo + rows].T)


def _scaled_transpose_into(out: np.ndarray, weights: np.ndarray, scale: np.ndarray) -> None:
    """out[...] = (weights * scale).T: a weight matrix with its columns scaled (the halved
    sigmoid gates), transposed for the products of the time loop."""
    _transpose_into(out, np.multiply(weights, scale))


def _feature_major(a: np.ndarray, workspace=None, name: str = "x_fm", dtype=None) -> np.ndarray:
    """(N, T, F) -> a contiguous (T, F, N) copy: each step's features are rows, its examples columns."""
    if not a.flags.c_contiguous:
        return _copy_transposed(workspace, name, a, (1, 2, 0), dtype)
    # For a contiguous input the same copy is one 2-D transpose, (N, T*F) -> (T*F, N), done a
    # block of examples at a time (`_transpose_into`).
    N, T, F = a.shape
    out = _buffer(workspace, name, (T, F, N), dtype or a.dtype)
    _transpose_into(out.reshape(T * F, N), a.reshape(N, T * F))
    return out


def _read_only_view(a: np.ndarray, axes: tuple) -> np.ndarray:
    """A transposed view of a cached array, for the caller: no copy (a caller that needs another
    layout pays for it only then), and read-only, so that writing into it cannot corrupt the
    cache the backward pass reads."""
    view = a.transpose(axes)
    view.flags.writeable = False
    return view


def _check_cache(cache, kind: type, made_by: str):
    if not isinstance(cache, kind):
        raise TypeError(f"cache must be the cache that {made_by} returned (a {kind.__name__}), "
                        f"got {type(cache).__name__}")
    return cache


# ============================================================ the batch on several cores
_POOLS: dict = {}
_CONTROLLER = []


def batch_bounds(N: int, threads: int) -> np.ndarray:
    """Where `map_batch_slices` cuts a batch of N examples: slice i is rows bounds[i]:bounds[i + 1]."""
    return np.linspace(0, N, min(threads, N) + 1).astype(int)


def map_batch_slices(fn, arrays, threads: int = 2) -> list:
    """fn(i, *slices_i) for i = 0 .. threads-1, at once, one Python thread each; slice i of
    every array in `arrays` is a contiguous block of its rows (the batch axis, axis 0).

    The examples of a batch are independent in the forward and the backward pass; only the
    weight gradients must be added up afterwards, which the caller does with the results
    (returned in slice order, so the sum is the same on every run). NumPy releases Python's
    lock inside its matrix products and element-wise loops, so the slices really run on
    separate cores, each with a one-thread BLAS: the element-wise work, which a
    multi-threaded BLAS leaves on one core, is shared too.
    """
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import ThreadpoolController

    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    bounds = batch_bounds(arrays[0].shape[0], threads)
    slices = [tuple(a[lo:hi] for a in arrays) for lo, hi in zip(bounds[:-1], bounds[1:])]
    if len(slices) == 1:
        return [fn(0, *slices[0])]
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())       # finding the BLAS library takes milliseconds: once
    pool = _POOLS.get(len(slices)) or _POOLS.setdefault(len(slices), ThreadPoolExecutor(len(slices)))
    with _CONTROLLER[0].limit(limits=1, user_api="blas"):
        return list(pool.map(lambda args: fn(args[0], *args[1]), enumerate(slices)))


# ================================================================= vanilla RNN
class RNNCache(NamedTuple):
    inputs: np.ndarray            # (T, N, D) the inputs, time-major; or (T, N) integer ids
    kernel: np.ndarray
    recurrent_kernel: np.ndarray
    states: np.ndarray            # (T + 1, N, H): h0, then the state after every step
    activation: Activation
    mask: np.ndarray | None       # (N, T), True at real steps
    workspace: Workspace | None


def _rnn_recurrence(states, recurrent_kernel, act: Activation, mask) -> None:
    """The loop over time, in place: states[1:] holds x_t @ kernel + bias on entry, h_t on exit."""
    recurrent = np.empty(states.shape[1:], dtype=states.dtype)
    for t in range(states.shape[0] - 1):
        h_t = states[t + 1]
        np.matmul(states[t], recurrent_kernel, out=recurrent)
        h_t += recurrent
        if act.name == "tanh":
            np.tanh(h_t, out=h_t)
        else:
            h_t[...] = act.forward(h_t)
        if mask is not None:
            np.copyto(h_t, states[t], where=~mask[:, t, None])


def rnn_forward_fast(x, h0, kernel, recurrent_kernel, bias, activation="tanh", mask=None, workspace=None):
    """`rnncourse.rnn.rnn_forward`, with the input projection hoisted out of the time loop.

    Returns h (N, T, H) and a cache for `rnn_backward_fast`. `workspace` (optional, one per
    layer): a `Workspace` whose buffers this call reuses (see `Workspace`).
    """
    sizes = _rnn._check_inputs("x", x, ("N", "T", "D"), {"h0": h0}, kernel, recurrent_kernel, bias)
    mask = check_mask(mask, sizes)
    act = get_activation(activation)
    N, T, D = x.shape
    H = sizes["H"]
    dtype = np.result_type(x, h0, kernel)
    x_tm = _time_major(x, workspace, "rnn/x")
    states = _buffer(workspace, "rnn/states", (T + 1, N, H), dtype)
    states[0] = h0
    # Every step's x_t @ kernel + bias in one product; the loop turns it into the states in place.
    np.matmul(x_tm.reshape(T * N, D), kernel, out=states[1:].reshape(T * N, H))
    states[1:] += bias
    _rnn_recurrence(states, recurrent_kernel, act, mask)
    cache = RNNCache(x_tm, kernel, recurrent_kernel, states, act, mask, workspace)
    return _read_only_view(states[1:], (1, 0, 2)), cache


def rnn_forward_ids_fast(ids, h0, kernel, recurrent_kernel, bias, activation="tanh", mask=None, workspace=None):
    """`rnn_forward_fast(one_hot(ids, D), ...)` without building the one-hot array.

    ids (N, T) are integer token ids in [0, D). Multiplying a one-hot row by kernel selects one
    row of kernel, so the input projection is a lookup, kernel[ids] (what Keras's Embedding layer
    does), and its gradient adds each step's pre-activation gradient into the row it looked up.
    For a character model (D = 65 symbols) this saves building a (N, T, 65) array and two of
    the three large products.
    """
    if not isinstance(ids, np.ndarray) or not np.issubdtype(ids.dtype, np.integer) or ids.ndim != 2 or 0 in ids.shape:
        raise TypeError(f"ids must be a (N, T) NumPy array of integer token ids with N, T >= 1, got "
                        f"{type(ids).__name__} {getattr(ids, 'dtype', '')} of shape {getattr(ids, 'shape', '?')}")
    N, T = ids.shape
    sizes = check("h0", h0, ("N", "H"), {"N": N, "T": T})
    sizes = check("kernel", kernel, ("D", "H"), sizes)
    check("recurrent_kernel", recurrent_kernel, ("H", "H"), sizes)
    check("bias", bias, ("H",), sizes)
    check_finite(h0=h0, kernel=kernel, recurrent_kernel=recurrent_kernel, bias=bias)
    if ids.min() < 0 or ids.max() >= sizes["D"]:
        raise ValueError(f"ids must lie in [0, {sizes['D']}) (the rows of kernel), got values from "
                         f"{ids.min()} to {ids.max()}")
    mask = check_mask(mask, sizes)
    act = get_activation(activation)
    dtype = np.result_type(h0, kernel)
    ids_tm = _time_major(ids)
    states = _buffer(workspace, "rnn/states", (T + 1, N, sizes["H"]), dtype)
    states[0] = h0
    # x_t @ kernel + bias for a one-hot x_t is one row of kernel + bias: add the bias to the
    # V rows once instead of to all N*T looked-up rows (the same sums, so the same bits).
    # The ids are checked above, and mode="raise" would copy `out`.
    np.take(kernel + bias, ids_tm, axis=0, out=states[1:], mode="wrap")
    _rnn_recurrence(states, recurrent_kernel, act, mask)
    cache = RNNCache(ids_tm, kernel, recurrent_kernel, states, act, mask, workspace)
    return _read_only_view(states[1:], (1, 0, 2)), cache


def _sum_rows_by_id(rows: np.ndarray, ids: np.ndarray, size: int, workspace=None) -> np.ndarray:
    """out[k] = sum of rows[i] over every i with ids[i] == k, for k < size.

    The same as np.add.at(out, ids, rows), which adds row by row; sorting the ids once and
    summing each run of equal ids with np.add.reduceat is several times faster.
    """
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_ids[1:] != sorted_ids[:-1])))
    out = np.zeros((size, rows.shape[1]), dtype=rows.dtype)
    sorted_rows = _buffer(workspace, "rnn/sorted_rows", rows.shape, rows.dtype)
    np.take(rows, order, axis=0, out=sorted_rows, mode="wrap")   # order is a permutation: in range
    out[sorted_ids[starts]] = np.add.reduceat(sorted_rows, starts, axis=0)
    return out


def rnn_backward_fast(dh, cache, input_gradient=True):
    """`rnncourse.rnn.rnn_backward`: (dx, dh0, dkernel, drecurrent_kernel, dbias).

    The weight gradients and dx are one matrix product each over all steps. With
    input_gradient=False, dx is not computed (None): a first layer fed with data never needs it.
    After `rnn_forward_ids_fast`, dx is None too (ids have no gradient).
    """
    inputs, _, _, states, _, _, workspace = _check_cache(cache, RNNCache, "rnn_forward_fast")
    T, N = inputs.shape[:2]
    check_gradient("dh", dh, (N, T, states.shape[2]))
    return _rnn_backward(_time_major(dh, workspace, "rnn/dh"), cache, input_gradient)


def _rnn_backward(dh_tm, cache, input_gradient):
    """rnn_backward_fast without the checks, for a gradient already time-major, dh_tm (T, N, H),
    which it only reads: `rnn_backward_fast` calls it after checking and transposing dh, and
    `CharRNN`'s fast step with the gradient its readout wrote in that layout."""
    inputs, kernel, recurrent_kernel, states, act, mask, workspace = cache
    T, N = inputs.shape[:2]
    D, H = kernel.shape[0], states.shape[2]
    dtype = np.result_type(dh_tm, states)
    # dz_t = (dh_t + gradient from step t+1) * f'(z_t); f' is known for all steps now, so it is
    # computed before the loop, and dz is filled in place.
    h = states[1:]
    dz = _buffer(workspace, "rnn/dz", h.shape, dtype)
    if act.name == "tanh":
        np.multiply(h, h, out=dz)
        np.subtract(1.0, dz, out=dz)
    else:
        dz[...] = act.derivative_from_output(h)
    recurrent_kernel_t = np.ascontiguousarray(recurrent_kernel.T)
    dh_next = np.zeros((N, H), dtype=dtype)
    dh_t = np.empty((N, H), dtype=dtype)
    for t in range(T - 1, -1, -1):
        np.add(dh_tm[t], dh_next, out=dh_t)
        dz_t = dz[t]
        dz_t *= dh_t
        np.matmul(dz_t, recurrent_kernel_t, out=dh_next)
        if mask is not None:
            # A padded step copied h_{t-1} forward: its gradient passes straight back.
            padded = ~mask[:, t, None]
            np.copyto(dz_t, 0.0, where=padded)
            np.copyto(dh_next, dh_t, where=padded)
    dz2 = dz.reshape(T * N, H)
    drecurrent_kernel = np.matmul(states[:-1].reshape(T * N, H).T, dz2)
    dbias = dz2.sum(axis=0)
    if inputs.ndim == 2:                                    # token ids: add into the rows used
        return None, dh_next, _sum_rows_by_id(dz2, inputs.ravel(), D, workspace), drecurrent_kernel, dbias
    dkernel = np.matmul(inputs.reshape(T * N, D).T, dz2)
    dx = _batch_major(np.matmul(dz2, kernel.T).reshape(T, N, D)) if input_gradient else None
    return dx, dh_next, dkernel, drecurrent_kernel, dbias


def _gated_backward_start(dh, x_ones, recurrent_kernel, workspace, name: str):
    """What the LSTM and GRU backward passes both start with: the sizes from the cache (D
    without the column of ones), dh checked against them, the dtype of the gradients, and dh
    laid out feature-major (T, H, N)."""
    T, N, D = x_ones.shape
    H = recurrent_kernel.shape[0]
    check_gradient("dh", dh, (N, T, H))
    dtype = np.result_type(dh, x_ones)
    return T, N, D - 1, H, dtype, _feature_major(dh, workspace, name, dtype)


# ============================================================ softmax readout
def softmax_cross_entropy_in_place(logits: np.ndarray, targets: np.ndarray) -> float:
    """`rnncourse.losses.softmax_cross_entropy` (no mask) for 2-D logits, computed in place.

    logits (M, V) floats, overwritten with dlogits, the gradient of the mean loss; targets (M,)
    integer class ids. Returns the loss. The clear version builds four arrays of the logits'
    size (the shifted logits, their exponentials, the log-probabilities, the gradient); here
    the logits' buffer is shifted, exponentiated and scaled where it lies, and only per-row
    vectors are new.
    """
    check("logits", logits, ("M", "V"), {})
    if not logits.flags.c_contiguous or not logits.flags.writeable:
        raise ValueError("logits must be a writeable C-contiguous array: it is overwritten with dlogits")
    M, V = logits.shape
    if not isinstance(targets, np.ndarray) or not np.issubdtype(targets.dtype, np.integer) or targets.shape != (M,):
        raise TypeError(f"targets must be a ({M},) NumPy array of integer class ids, got "
                        f"{type(targets).__name__} {getattr(targets, 'dtype', '')} of shape {getattr(targets, 'shape', '?')}")
    if targets.min() < 0 or targets.max() >= V:
        raise ValueError(f"targets must lie in [0, {V}), found values from {targets.min()} to {targets.max()}")
    check_finite(logits=logits)
    rows = np.arange(M)
    logits -= logits.max(axis=1, keepdims=True)           # shifted: exp never overflows
    picked = logits[rows, targets]                          # the shifted logit of each target
    np.exp(logits, out=logits)
    total = logits.sum(axis=1)
    loss = float(np.mean(np.log(total) - picked))           # -log softmax at the target, averaged
    logits *= (1.0 / (total * M))[:, None]                  # softmax / M
    logits[rows, targets] -= 1.0 / M                        # minus one-hot / M
    return loss


# ======================================================================== LSTM
# Keras's columns are [i | f | g | o]; inside the fast path they are [o | i | f | g].
def _lstm_to_internal(a: np.ndarray, H: int) -> np.ndarray:
    return np.concatenate([a[..., 3 * H:], a[..., :3 * H]], axis=-1)


def _lstm_to_keras(a: np.ndarray, H: int) -> np.ndarray:
    return np.concatenate([a[..., H:], a[..., :H]], axis=-1)


class LSTMCache(NamedTuple):
    x: np.ndarray                 # (T, N, D + 1) the inputs, time-major, with a column of ones
    kernel: np.ndarray            # (D, 4H) internal order [o | i | f | g], as given (not halved)
    recurrent_kernel: np.ndarray  # (H, 4H) internal order
    gates: np.ndarray             # (T, 4H, N): o, i, f, g after their nonlinearities
    states: np.ndarray            # (H, T + 1, N): h0, then h after every step
    cells: np.ndarray             # (T + 1, H, N): c0, then c after every step
    tanh_c: np.ndarray            # (T, H, N)
    mask: np.ndarray | None
    workspace: Workspace | None


class _LSTMForward(NamedTuple):
    """What the LSTM's time loop starts from (`_lstm_forward_setup`)."""
    mask: np.ndarray | None
    x_ones: np.ndarray            # (T, N, D + 1)
    kernel_int: np.ndarray        # (D, 4H), internal order, not halved
    recurrent_int: np.ndarray     # (H, 4H), internal order, not halved
    gates: np.ndarray             # (T, 4H, N): the input side of every step's pre-activations
    recurrent_t: np.ndarray       # (4H, H): the recurrent kernel, halved, transposed
    states: np.ndarray            # (H, T + 1, N), h0 written
    cells: np.ndarray             # (T + 1, H, N), c0 written
    tanh_c: np.ndarray            # (T, H, N)


def _lstm_forward_setup(x, h0, c0, kernel, recurrent_kernel, bias, mask, workspace, project=None) -> _LSTMForward:
    """Everything of the LSTM's fast forward pass before its time loop: the checks, the weights
    in the loop's layout, the input projection of every step, and the arrays the loop fills.
    project(weights_t, x_ones, gates), optional: computes the input projection instead of
    NumPy's matmul (`rnncourse.parallel` does it on its own threads)."""
    sizes = _lstm._check_inputs("x", x, ("N", "T", "D"), {"h0": h0, "c0": c0}, kernel, recurrent_kernel, bias)
    mask = check_mask(mask, sizes)
    N, T, D = x.shape
    H = sizes["H"]
    dtype = np.result_type(x, h0, c0, kernel)
    kernel_int = _lstm_to_internal(kernel, H)
    recurrent_int = _lstm_to_internal(recurrent_kernel, H)
    # sigmoid(a) = 0.5 * tanh(a / 2) + 0.5: halve the sigmoid gates' weights and bias once, and
    # a single tanh per step serves all four gates.
    half = np.ones(4 * H, dtype=dtype)
    half[:3 * H] = 0.5
    # The inputs, time-major, with a column of ones: [x_t, 1] @ [[kernel], [bias]] is
    # x_t @ kernel + bias, so the bias rides in the input product, and its gradient in the
    # kernel's (the last row of [x, 1]^T da is the sum of da over steps and examples).
    x_ones = _buffer(workspace, "lstm/x_ones", (T, N, D + 1), dtype)
    np.copyto(x_ones[:, :, :D], x.transpose(1, 0, 2))
    x_ones[:, :, D] = 1.0
    weights_t = np.empty((4 * H, D + 1), dtype=dtype)      # [kernel; bias]^T, sigmoid gates halved
    _scaled_transpose_into(weights_t[:, :D], kernel_int, half)
    np.multiply(_lstm_to_internal(bias, H), half, out=weights_t[:, D])
    # Every step's pre-activations from the input, (4H, N) per step, before the loop: one
    # product per step, each reading that step's rows of x_ones as columns (no copy).
    gates = _buffer(workspace, "lstm/gates", (T, 4 * H, N), dtype)
    if project is None:
        np.matmul(weights_t, x_ones.transpose(0, 2, 1), out=gates)
    else:
        project(weights_t, x_ones, gates)
    recurrent_t = np.empty((4 * H, H), dtype=dtype)
    _scaled_transpose_into(recurrent_t, recurrent_int, half)
    # The states are stored feature-first, (H, T + 1, N): step t is the block states[:, t], and
    # all steps together are one (H, (T + 1) N) matrix, which the backward pass's product
    # for drecurrent_kernel reads as it is.
    states = _buffer(workspace, "lstm/states", (H, T + 1, N), dtype)
    cells = _buffer(workspace, "lstm/cells", (T + 1, H, N), dtype)
    states[:, 0], cells[0] = h0.T, c0.T
    tanh_c = _buffer(workspace, "lstm/tanh_c", (T, H, N), dtype)
    return _LSTMForward(mask, x_ones, kernel_int, recurrent_int, gates, recurrent_t, states, cells, tanh_c)


def lstm_forward_fast(x, h0, c0, kernel, recurrent_kernel, bias, mask=None, workspace=None):
    """`rnncourse.lstm.lstm_forward`: x (N, T, D), h0, c0 (N, H) -> h, c (N, T, H), cache.

    `workspace` (optional, one per layer): a `Workspace` whose buffers this call reuses.
    """
    mask, x_ones, kernel_int, recurrent_int, gates, recurrent_t, states, cells, tanh_c = _lstm_forward_setup(
        x, h0, c0, kernel, recurrent_kernel, bias, mask, workspace)
    T, H, N = tanh_c.shape
    recurrent = np.empty((4 * H, N), dtype=gates.dtype)
    written = np.empty((H, N), dtype=gates.dtype)
    for t in range(T):
        a = gates[t]
        np.matmul(recurrent_t, states[:, t], out=recurrent)
        a += recurrent
        np.tanh(a, out=a)
        sig = a[:3 * H]
        sig *= 0.5
        sig += 0.5
        o, i, f, g = a[:H], a[H:2 * H], a[2 * H:3 * H], a[3 * H:]
        c_t = cells[t + 1]
        np.multiply(f, cells[t], out=c_t)
        np.multiply(i, g, out=written)
        c_t += written
        if mask is not None:
            np.copyto(c_t, cells[t], where=~mask[:, t])
        np.tanh(c_t, out=tanh_c[t])
        h_t = states[:, t + 1]
        np.multiply(o, tanh_c[t], out=h_t)
        if mask is not None:
            np.copyto(h_t, states[:, t], where=~mask[:, t])
    cache = LSTMCache(x_ones, kernel_int, recurrent_int, gates, states, cells, tanh_c, mask, workspace)
    return _read_only_view(states[:, 1:], (2, 1, 0)), _read_only_view(cells[1:], (2, 0, 1)), cache


def lstm_backward_fast(dh, cache, dc_last=None, input_gradient=True):
    """`rnncourse.lstm.lstm_backward`: (dx, dh0, dc0, dkernel, drecurrent_kernel, dbias).

    With input_gradient=False, dx is not computed (None).
    """
    cache, T, N, H, dtype, dh_fm, dc = _lstm_backward_start(dh, cache, dc_last, "lstm_forward_fast")
    x_ones, kernel_int, recurrent_int, gates, states, cells, tanh_c, mask, workspace = cache
    o, i, f, g = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
    # Per step, from the two gradients arriving at it (into h_t and into c_t) to the gradients
    # of the four pre-activations, every block contiguous:
    #   dc_t = dc_from_later + dh_t * o (1 - tanh(c)^2)
    #   da_o = dh_t * tanh(c) o (1 - o)
    #   da_i = dc_t * g i (1 - i),  da_f = dc_t * c_{t-1} f (1 - f),  da_g = dc_t * i (1 - g^2)
    # The factors multiplying dh_t and dc_t are formed in the scratch block local_t; the last
    # multiplication writes da_t into da_columns[:, t], whose columns are (step, example)
    # pairs, ready for the products after the loop.
    da_columns = _buffer(workspace, "lstm/da", (4 * H, T, N), dtype)
    local_t = np.empty((4 * H, N), dtype=dtype)
    local_blocks = local_t.reshape(4, H, N)                 # a view: the o, i, f, g blocks
    dh_next = np.zeros((H, N), dtype=dtype)
    dh_t = np.empty((H, N), dtype=dtype)
    through_h = np.empty((H, N), dtype=dtype)
    for t in range(T - 1, -1, -1):
        np.add(dh_fm[t], dh_next, out=dh_t)
        if mask is not None:
            padded = ~mask[:, t]
            arrived_c = dc.copy()                           # passes straight back at a padded step
        np.multiply(tanh_c[t], tanh_c[t], out=through_h)
        np.subtract(1.0, through_h, out=through_h)
        through_h *= o[t]
        through_h *= dh_t
        dc += through_h                                     # dc is now dc_t
        sig = gates[t, :3 * H]
        np.subtract(1.0, sig, out=local_t[:3 * H])
        local_t[:3 * H] *= sig                              # s (1 - s) for o, i, f
        local_blocks[0] *= tanh_c[t]
        local_blocks[1] *= g[t]
        local_blocks[2] *= cells[t]
        np.multiply(g[t], g[t], out=local_blocks[3])
        np.subtract(1.0, local_blocks[3], out=local_blocks[3])
        local_blocks[3] *= i[t]
        da_t = da_columns[:, t]
        np.multiply(local_blocks[0], dh_t, out=da_t[:H])
        np.multiply(local_blocks[1:], dc, out=da_t[H:].reshape(3, H, N))
        if mask is not None:
            # A padded step copied (h, c) forward: both gradients pass straight back.
            np.copyto(da_t, 0.0, where=padded)
        np.matmul(recurrent_int, da_t, out=dh_next)
        dc *= f[t]                                          # dc_{t-1} = dc_t * f_t
        if mask is not None:
            np.copyto(dh_next, dh_t, where=padded)
            np.copyto(dc, arrived_c, where=padded)
    return _lstm_backward_finish(da_columns, x_ones, states, kernel_int, dh_next, dc, input_gradient)


def _lstm_backward_start(dh, cache, dc_last, made_by: str):
    """What every LSTM backward pass on an `LSTMCache` starts with: the cache checked, dh checked
    and laid out feature-major (T, H, N), and dc, the gradient arriving at the last cell state
    (dc_last, or zeros), as (H, N). Returns (cache, T, N, H, dtype, dh_fm, dc)."""
    cache = _check_cache(cache, LSTMCache, made_by)
    T, N, _, H, dtype, dh_fm = _gated_backward_start(dh, cache.x, cache.recurrent_kernel, cache.workspace, "lstm/dh")
    dc = np.zeros((H, N), dtype=dtype)
    if dc_last is not None:
        check_gradient("dc_last", dc_last, (N, H))
        dc += dc_last.T
    return cache, T, N, H, dtype, dh_fm, dc


def _lstm_backward_finish(da_columns, x_ones, states, kernel_int, dh0, dc0, input_gradient):
    """After the LSTM's backward loop: the sums over steps, each one matrix product over T*N
    columns, reading the arrays as they lie (transposed views, no copies), the last row of the
    first being dbias; everything back in the caller's layout and Keras's gate order."""
    T, N, D = x_ones.shape[0], x_ones.shape[1], x_ones.shape[2] - 1
    H = states.shape[0]
    da_columns = da_columns.reshape(4 * H, T * N)
    dweights = np.matmul(x_ones.reshape(T * N, D + 1).T, da_columns.T)       # (D + 1, 4H)
    drecurrent = np.matmul(states[:, :T].reshape(H, T * N), da_columns.T)   # (H, 4H)
    dkernel, dbias = _lstm_to_keras(dweights[:D], H), _lstm_to_keras(dweights[D], H)
    dx = None
    if input_gradient:
        dx = np.ascontiguousarray(np.matmul(kernel_int, da_columns).reshape(D, T, N).transpose(2, 1, 0))
    return (dx, np.ascontiguousarray(dh0.T), np.ascontiguousarray(dc0.T), dkernel,
            _lstm_to_keras(drecurrent, H), dbias)


# ========================================================================= GRU
class GRUCache(NamedTuple):
    x: np.ndarray                 # (T, N, D + 1) the inputs, time-major, with a column of ones
    kernel: np.ndarray            # (D, 3H), Keras order [z | r | h]
    recurrent_kernel: np.ndarray  # (H, 3H)
    gates: np.ndarray             # (T, 3H, N): z, r after the sigmoid, the candidate after tanh
    recurrent: np.ndarray         # (T, 3H, N): U^T h_{t-1} + b_rec (z and r halved); its h block
                                  # is what the reset gate scales
    states: np.ndarray            # (H + 1, T + 1, N): h0, then h after every step; the last row is ones
    mask: np.ndarray | None
    workspace: Workspace | None


def gru_forward_fast(x, h0, kernel, recurrent_kernel, bias, reset_after=True, mask=None, workspace=None):
    """`rnncourse.gru.gru_forward` for reset_after=True (Keras's default).

    `workspace` (optional, one per layer): a `Workspace` whose buffers this call reuses.
    """
    if reset_after is not True:
        raise ValueError("the fast GRU implements reset_after=True only (Keras's default); "
                         "use rnncourse.gru.gru_forward for reset_after=False")
    sizes = _gru._check_inputs("x", x, ("N", "T", "D"), {"h0": h0}, kernel, recurrent_kernel, bias, reset_after)
    mask = check_mask(mask, sizes)
    N, T, D = x.shape
    H = sizes["H"]
    dtype = np.result_type(x, h0, kernel)
    half = np.ones(3 * H, dtype=dtype)
    half[:2 * H] = 0.5                                      # z and r: sigmoid as 0.5 tanh(a/2) + 0.5
    # Both bias rows ride in products, as in the LSTM: the input bias with a column of ones
    # appended to x, the recurrent bias with a row of ones appended to the states (the
    # recurrent bias of the candidate must stay on the recurrent side: the reset gate scales it).
    x_ones = _buffer(workspace, "gru/x_ones", (T, N, D + 1), dtype)
    np.copyto(x_ones[:, :, :D], x.transpose(1, 0, 2))
    x_ones[:, :, D] = 1.0
    weights_t = np.empty((3 * H, D + 1), dtype=dtype)
    _scaled_transpose_into(weights_t[:, :D], kernel, half)
    np.multiply(bias[0], half, out=weights_t[:, D])
    recurrent_t = np.empty((3 * H, H + 1), dtype=dtype)
    _scaled_transpose_into(recurrent_t[:, :H], recurrent_kernel, half)
    np.multiply(bias[1], half, out=recurrent_t[:, H])
    gates = _buffer(workspace, "gru/gates", (T, 3 * H, N), dtype)
    np.matmul(weights_t, x_ones.transpose(0, 2, 1), out=gates)
    recurrent = _buffer(workspace, "gru/recurrent", (T, 3 * H, N), dtype)
    states = _buffer(workspace, "gru/states", (H + 1, T + 1, N), dtype)
    states[:H, 0] = h0.T
    states[H] = 1.0
    scaled = np.empty((H, N), dtype=dtype)
    for t in range(T):
        a, rec = gates[t], recurrent[t]
        np.matmul(recurrent_t, states[:, t], out=rec)
        zr = a[:2 * H]
        zr += rec[:2 * H]
        np.tanh(zr, out=zr)
        zr *= 0.5
        zr += 0.5
        z, r, candidate = a[:H], a[H:2 * H], a[2 * H:]
        np.multiply(r, rec[2 * H:], out=scaled)
        candidate += scaled
        np.tanh(candidate, out=candidate)
        # h = candidate + z (h_prev - candidate), formed in `scaled`, written once into the states
        np.subtract(states[:H, t], candidate, out=scaled)
        scaled *= z
        h_t = states[:H, t + 1]
        np.add(scaled, candidate, out=h_t)
        if mask is not None:
            np.copyto(h_t, states[:H, t], where=~mask[:, t])
    cache = GRUCache(x_ones, kernel, recurrent_kernel, gates, recurrent, states, mask, workspace)
    return _read_only_view(states[:H, 1:], (2, 1, 0)), cache


def gru_backward_fast(dh, cache, input_gradient=True):
    """`rnncourse.gru.gru_backward` for reset_after=True: (dx, dh0, dkernel, drecurrent_kernel, dbias).

    With input_gradient=False, dx is not computed (None).
    """
    x_ones, kernel, recurrent_kernel, gates, recurrent, states, mask, workspace = _check_cache(
        cache, GRUCache, "gru_forward_fast")
    T, N, D, H, dtype, dh_fm = _gated_backward_start(dh, x_ones, recurrent_kernel, workspace, "gru/dh")
    z, r, candidate = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:]
    # Per step, from the gradient dh_t arriving at h_t to the pre-activation gradients:
    #   da_z = dh_t (h_{t-1} - candidate) z (1 - z)
    #   da_h = dh_t (1 - z) (1 - candidate^2)              the input side of the candidate
    #   da_r = da_h * recurrent_h r (1 - r)
    #   da_hrec = da_h * r                                 the recurrent side of the candidate
    # They are written into da_columns, rows [h | z | r | hrec], columns (step, example) pairs,
    # so that both sides' gradients are contiguous row ranges: the input side is rows [h | z | r],
    # the recurrent side rows [z | r | hrec], which is Keras's column order [z | r | h].
    da_columns = _buffer(workspace, "gru/da", (4 * H, T, N), dtype)
    sig_slope = np.empty((2 * H, N), dtype=dtype)
    scratch = np.empty((H, N), dtype=dtype)
    dh_next = np.zeros((H, N), dtype=dtype)
    dh_t = np.empty((H, N), dtype=dtype)
    for t in range(T - 1, -1, -1):
        np.add(dh_fm[t], dh_next, out=dh_t)
        da = da_columns[:, t]
        da_h, da_z, da_r, da_hrec = da[:H], da[H:2 * H], da[2 * H:3 * H], da[3 * H:]
        np.subtract(1.0, gates[t, :2 * H], out=sig_slope)
        sig_slope *= gates[t, :2 * H]                       # s (1 - s) for z and r
        np.subtract(states[:H, t], candidate[t], out=scratch)
        sig_slope[:H] *= scratch
        np.multiply(sig_slope[:H], dh_t, out=da_z)
        np.multiply(candidate[t], candidate[t], out=scratch)
        np.subtract(1.0, scratch, out=scratch)
        np.subtract(1.0, z[t], out=dh_next)                 # dh_next as scratch: 1 - z
        scratch *= dh_next
        np.multiply(scratch, dh_t, out=da_h)
        np.multiply(da_h, r[t], out=da_hrec)
        sig_slope[H:] *= recurrent[t, 2 * H:]
        np.multiply(sig_slope[H:], da_h, out=da_r)
        if mask is not None:
            padded = ~mask[:, t]
            np.copyto(da, 0.0, where=padded)
        np.matmul(recurrent_kernel, da[H:], out=dh_next)
        if mask is None:
            dh_t *= z[t]
        else:
            np.multiply(dh_t, z[t], out=dh_t, where=~padded)  # at a padded step the whole dh_t goes back
            np.copyto(dh_next, 0.0, where=padded)
        dh_next += dh_t
    # The sums over steps, one matrix product each, reading the arrays as they lie; the last row
    # of each is a bias gradient (x_ones has a column of ones, states a row of ones).
    da_columns = da_columns.reshape(4 * H, T * N)
    input_side = np.matmul(x_ones.reshape(T * N, D + 1).T, da_columns[:3 * H].T)   # (D + 1, 3H): [h | z | r]
    input_side = np.concatenate([input_side[:, H:], input_side[:, :H]], axis=1)  # Keras order [z | r | h]
    recurrent_side = np.matmul(states[:, :T].reshape(H + 1, T * N), da_columns[H:].T)  # (H + 1, 3H)
    dbias = np.stack([input_side[D], recurrent_side[H]])
    dx = None
    if input_gradient:
        kernel_hzr = np.concatenate([kernel[:, 2 * H:], kernel[:, :2 * H]], axis=1)
        dx = np.ascontiguousarray(np.matmul(kernel_hzr, da_columns[:3 * H]).reshape(D, T, N).transpose(2, 1, 0))
    return dx, np.ascontiguousarray(dh_next.T), input_side[:D], recurrent_side[:H], dbias
