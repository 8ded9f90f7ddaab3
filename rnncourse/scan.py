"""Linear recurrences, computed by a loop and by a parallel (associative) scan; the minGRU.

A *linear* recurrence, element by element,

    h_t = a_t * h_{t-1} + b_t,        t = 1 .. T,   h_0 given,

is the core of the recurrent models that came back after the Transformer: the state-space
models S4 and Mamba, RWKV, and the minGRU / minLSTM of Feng et al. (2024). Unlike
h_t = tanh(x_t W + h_{t-1} U + b), it can be computed without visiting the steps in order.
Each step is the affine map h -> a h + b, and composing two such maps gives another one:

    (a1, b1) then (a2, b2)  =  (a1 * a2,  a2 * b1 + b2).

This composition is associative, so the prefix compositions ("scans") can be formed in any
bracketing, in particular in ceil(log2 T) rounds of independent work (Hillis & Steele 1986;
Blelloch 1990): that is the *parallel scan*. It does more arithmetic than the loop (its
*work* is about T log2 T combinations instead of T), but its *depth* (the longest chain of
operations that must happen one after another) is log2 T instead of T. On hardware with
thousands of parallel lanes the depth is what costs time; on a CPU core, doing more work
costs more, and the scan can be slower than the loop.

Everything here is batch-major like the rest of the package: a and b have shape (N, T, H)
(or any shape whose axis 1 is time), h0 has shape (N, H).
"""

from __future__ import annotations

import math

import numpy as np

from .activations import sigmoid


def _check_ab(a, b, h0):
    a = np.asarray(a)
    b = np.asarray(b)
    if a.ndim < 2:
        raise ValueError(f"a must have a time axis 1, shape (N, T, ...), got shape {a.shape}")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape (N, T, ...), got a {a.shape} and b {b.shape}")
    if h0 is not None:
        h0 = np.asarray(h0)
        expected = a.shape[:1] + a.shape[2:]
        if h0.shape != expected:
            raise ValueError(f"h0 must have shape {expected} (a's shape without the time axis), got {h0.shape}")
    return a, b, h0


def combine(first, second):
    """Compose two affine steps: apply `first` = (a1, b1), then `second` = (a2, b2).

    h -> a2 * (a1 * h + b1) + b2 = (a1 * a2) * h + (a2 * b1 + b2). Associative, not commutative.
    """
    a1, b1 = first
    a2, b2 = second
    return a1 * a2, a2 * b1 + b2


def linear_recurrence_loop(a, b, h0=None):
    """h_t = a_t * h_{t-1} + b_t by a loop over t: T steps, each waiting for the one before.

    Returns h with the shape of a: h[:, t] is the state after step t. h0 defaults to zeros.
    """
    a, b, h0 = _check_ab(a, b, h0)
    h = np.empty(np.broadcast_shapes(a.shape, b.shape), dtype=np.result_type(a, b, h0 if h0 is not None else a))
    prev = np.zeros_like(h[:, 0]) if h0 is None else h0
    for t in range(a.shape[1]):
        prev = a[:, t] * prev + b[:, t]
        h[:, t] = prev
    return h


def linear_recurrence_scan(a, b, h0=None):
    """The same h by a parallel prefix scan (Hillis-Steele): ceil(log2 T) rounds, no loop over t.

    Round k combines every position t with position t - 2**k (all t at once, vectorised):
    after the round, position t holds the composition of the steps t - 2**(k+1) + 1 .. t.
    After ceil(log2 T) rounds it holds steps 1 .. t, i.e. h_t for h_0 = 0; a nonzero h_0 is
    folded into the first step's b.
    """
    a, b, h0 = _check_ab(a, b, h0)
    A = np.array(a, dtype=np.result_type(a, b), copy=True)
    B = np.array(b, dtype=np.result_type(a, b, h0 if h0 is not None else b), copy=True)
    if h0 is not None:
        B[:, 0] = B[:, 0] + A[:, 0] * h0
    T = A.shape[1]
    offset = 1
    while offset < T:
        # new[t] = combine(old[t - offset], old[t]) for t >= offset; the right sides are read
        # before anything is written, as the parallel algorithm requires.
        A_prev, B_prev = A[:, :-offset], B[:, :-offset]
        A_new, B_new = combine((A_prev, B_prev), (A[:, offset:], B[:, offset:]))
        A[:, offset:], B[:, offset:] = A_new, B_new
        offset *= 2
    return B


def scan_cost(T: int, method: str) -> dict:
    """Work (number of combine operations) and depth (rounds that must run one after another).

    method "loop": work T - 1, depth T - 1 (each step waits for the previous one).
    method "hillis-steele": round k does T - 2**k combines; depth ceil(log2 T).
    method "blelloch": an up-sweep and a down-sweep of n - 1 combines each over the padded
    length n = 2**ceil(log2 T), so at most 4 T; depth 2 ceil(log2 T) (Blelloch 1990).
    """
    if not isinstance(T, (int, np.integer)) or isinstance(T, bool) or T < 1:
        raise ValueError(f"T must be a positive int, got {T!r}")
    T = int(T)
    rounds = math.ceil(math.log2(T)) if T > 1 else 0
    if method == "loop":
        return {"work": T - 1, "depth": T - 1}
    if method == "hillis-steele":
        return {"work": sum(T - 2**k for k in range(rounds)), "depth": rounds}
    if method == "blelloch":
        size = 2**rounds
        return {"work": 2 * (size - 1), "depth": 2 * rounds}
    raise ValueError(f"method must be 'loop', 'hillis-steele' or 'blelloch', got {method!r}")


# --------------------------------------------------------------------------------- minGRU


def init_mingru_params(input_dim: int, units: int, rng: np.random.Generator, dtype=np.float64) -> dict:
    """Glorot-uniform kernels (D, 2H) for [z | candidate] and a zero bias (2H,)."""
    for name, value in (("input_dim", input_dim), ("units", units)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    limit = np.sqrt(6.0 / (input_dim + 2 * units))
    kernel = rng.uniform(-limit, limit, size=(input_dim, 2 * units)).astype(dtype)
    return {"kernel": kernel, "bias": np.zeros(2 * units, dtype=dtype)}


def mingru_forward(x, h0, kernel, bias, method: str = "scan"):
    """The minGRU of Feng et al. (2024), in its plain (not log-space) form.

        z_t         = sigmoid(x_t W_z + b_z)          update gate, from the input only
        candidate_t = x_t W_h + b_h                   candidate state, from the input only
        h_t         = (1 - z_t) * h_{t-1} + z_t * candidate_t

    Neither the gate nor the candidate reads h_{t-1}: the recurrence is linear in h, with
    a_t = 1 - z_t and b_t = z_t * candidate_t, so all of a and b are computed for every step
    at once and the states by `linear_recurrence_scan` (method "scan") or the loop ("loop").
    kernel (D, 2H) holds [W_z | W_h] side by side, bias (2H,). Returns h (N, T, H).
    """
    x = np.asarray(x)
    kernel = np.asarray(kernel)
    bias = np.asarray(bias)
    if x.ndim != 3:
        raise ValueError(f"x must have shape (N, T, D), got shape {x.shape}")
    if kernel.ndim != 2 or kernel.shape[0] != x.shape[2] or kernel.shape[1] % 2:
        raise ValueError(f"kernel must have shape (D, 2H) with D = {x.shape[2]}, got {kernel.shape}")
    H = kernel.shape[1] // 2
    if bias.shape != (2 * H,):
        raise ValueError(f"bias must have shape (2H,) = ({2 * H},), got {bias.shape}")
    pre = x @ kernel + bias
    z = sigmoid(pre[..., :H])
    candidate = pre[..., H:]
    a, b = 1.0 - z, z * candidate
    if method == "scan":
        return linear_recurrence_scan(a, b, h0)
    if method == "loop":
        return linear_recurrence_loop(a, b, h0)
    raise ValueError(f"method must be 'scan' or 'loop', got {method!r}")


def keras_mingru_layer(units: int, return_sequences: bool = False, name: str | None = None):
    """A Keras layer computing `mingru_forward` (from h_0 = 0) by the same parallel scan, in `keras.ops`.

    Imported lazily so that `import rnncourse` does not import TensorFlow. Its weights use the
    same layout as `mingru_forward` (kernel (D, 2H), bias (2H,)), so the two can be compared.
    """
    import keras
    from keras import ops

    # keras.ops.associative_scan exists, but on the TensorFlow backend it fails inside `fit`
    # (Keras 3.15: "as_list() is not defined on an unknown TensorShape"); the ceil(log2 T)
    # rounds below are the same algorithm as `linear_recurrence_scan` and differentiate as is.
    class MinGRU(keras.layers.Layer):
        def __init__(self, units, return_sequences=False, **kwargs):
            super().__init__(**kwargs)
            self.units = int(units)
            self.return_sequences = bool(return_sequences)

        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(input_shape[-1], 2 * self.units), initializer="glorot_uniform",
                                          name="kernel")
            self.bias = self.add_weight(shape=(2 * self.units,), initializer="zeros", name="bias")

        def call(self, x):
            pre = ops.matmul(x, self.kernel) + self.bias
            z = ops.sigmoid(pre[..., : self.units])
            candidate = pre[..., self.units:]
            A, B = 1.0 - z, z * candidate
            T = x.shape[1]
            if T is None:
                raise ValueError("the minGRU layer needs a fixed sequence length: give keras.Input a shape (T, D)")
            offset = 1
            while offset < T:  # the Hillis-Steele rounds of linear_recurrence_scan, in keras.ops
                A_new, B_new = combine((A[:, :-offset], B[:, :-offset]), (A[:, offset:], B[:, offset:]))
                A = ops.concatenate([A[:, :offset], A_new], axis=1)
                B = ops.concatenate([B[:, :offset], B_new], axis=1)
                offset *= 2
            return B if self.return_sequences else B[:, -1]

        def compute_output_shape(self, input_shape):
            if self.return_sequences:
                return (*input_shape[:2], self.units)
            return (input_shape[0], self.units)

        def get_config(self):
            return {**super().get_config(), "units": self.units, "return_sequences": self.return_sequences}

    if not isinstance(units, (int, np.integer)) or isinstance(units, bool) or units < 1:
        raise ValueError(f"units must be a positive int, got {units!r}")
    return MinGRU(units, return_sequences=return_sequences, name=name)
