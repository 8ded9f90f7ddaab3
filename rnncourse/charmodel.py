"""A character-level language model: one-hot characters -> vanilla RNN -> dense -> softmax.

Built only from the package's forward/backward pairs; its parameters are a flat dict whose
names say which Keras weight each one is (`rnn/kernel` is SimpleRNN's kernel, and so on).

With fast=True the model trains through `rnncourse.fast` instead of `rnncourse.rnn`: the same
equations, with the one-hot input product done as a row lookup, the weight gradients hoisted
out of the loop over time, and the softmax readout computed in place in reused buffers (equal
to round-off; the Benchmarks appendix measures what it saves).
"""

from __future__ import annotations

import copy

import numpy as np

from .layers import dense_backward, dense_forward, one_hot
from .losses import softmax, softmax_cross_entropy
from .fast import (Workspace, _rnn_backward, map_batch_slices, rnn_forward_ids_fast,
                   softmax_cross_entropy_in_place)
from .rnn import glorot_uniform, init_rnn_params, rnn_backward, rnn_forward
from .validation import check, check_float_dtype, check_generator, check_int, check_positive


class CharRNN:
    def __init__(self, vocab_size: int, hidden_size: int, seed: int = 0, dtype=np.float64, fast: bool = False):
        check_int("vocab_size", vocab_size)
        check_int("hidden_size", hidden_size)
        check_int("seed", seed, minimum=0)
        check_float_dtype("dtype", dtype)
        if not isinstance(fast, bool):
            raise TypeError(f"fast must be True or False, got {type(fast).__name__} {fast!r}")
        rng = np.random.default_rng(seed)
        rnn = init_rnn_params(vocab_size, hidden_size, rng, dtype)
        self.params = {
            "rnn/kernel": rnn["kernel"],
            "rnn/recurrent_kernel": rnn["recurrent_kernel"],
            "rnn/bias": rnn["bias"],
            "dense/kernel": glorot_uniform(rng, hidden_size, vocab_size, dtype),
            "dense/bias": np.zeros(vocab_size, dtype=dtype),
        }
        self.vocab_size, self.hidden_size, self.dtype = vocab_size, hidden_size, dtype
        self.fast = fast
        # The fast path reuses its buffers from one call to the next (a fresh array of a few
        # megabytes costs a page fault per 4 KiB the first time it is written).
        self._workspace = Workspace() if fast else None

    def initial_state(self, batch_size: int) -> np.ndarray:
        check_int("batch_size", batch_size)
        return np.zeros((batch_size, self.hidden_size), dtype=self.dtype)

    def _check_ids(self, inputs, targets):
        for name, ids in (("inputs", inputs), ("targets", targets)):
            if not isinstance(ids, np.ndarray) or not np.issubdtype(ids.dtype, np.integer):
                raise ValueError(f"{name} must be a (N, T) NumPy array of integer character ids, got "
                                 f"{type(ids).__name__} {getattr(ids, 'dtype', '')}".rstrip())
            if ids.ndim != 2 or 0 in ids.shape:
                raise ValueError(f"{name} must be a (N, T) array of integer character ids with N, T >= 1, "
                                 f"got shape {ids.shape}")
        if inputs.shape != targets.shape:
            raise ValueError(f"inputs {inputs.shape} and targets {targets.shape} must have the same (N, T) shape")

    def forward(self, inputs, targets, h0=None):
        """Loss over a batch of windows; returns (loss, h_last, cache)."""
        self._check_ids(inputs, targets)
        p = self.params
        h0 = self.initial_state(inputs.shape[0]) if h0 is None else h0
        check("h0", h0, (inputs.shape[0], self.hidden_size), {})
        if self.fast:
            # A one-hot x_t times the kernel is one row of the kernel: look it up instead.
            h, rnn_cache = rnn_forward_ids_fast(inputs, h0, p["rnn/kernel"], p["rnn/recurrent_kernel"], p["rnn/bias"],
                                                workspace=self._workspace)
            # The fast path returns a read-only transposed view of its time-major states; one
            # copy here saves the dense layer from copying it twice (forward and backward).
            h = np.ascontiguousarray(h)
        else:
            x = one_hot(inputs, self.vocab_size, self.dtype)
            h, rnn_cache = rnn_forward(x, h0, p["rnn/kernel"], p["rnn/recurrent_kernel"], p["rnn/bias"])
        logits, dense_cache = dense_forward(h, p["dense/kernel"], p["dense/bias"])
        loss, dlogits = softmax_cross_entropy(logits, targets)
        return loss, h[:, -1], (rnn_cache, dense_cache, dlogits)

    def loss(self, inputs, targets, h0=None) -> float:
        return self.forward(inputs, targets, h0)[0]

    def loss_and_grads(self, inputs, targets, h0=None):
        """Loss, gradients of every parameter (same keys as `params`), and the last hidden state."""
        if self.fast:  # the same equations, laid out for speed: see _fast_loss_and_grads
            return self._fast_loss_and_grads(inputs, targets, h0)
        loss, h_last, (rnn_cache, dense_cache, dlogits) = self.forward(inputs, targets, h0)
        dh, dkernel_out, dbias_out = dense_backward(dlogits, dense_cache)
        _, _, dkernel, drecurrent, dbias = rnn_backward(dh, rnn_cache)
        grads = {
            "rnn/kernel": dkernel, "rnn/recurrent_kernel": drecurrent, "rnn/bias": dbias,
            "dense/kernel": dkernel_out, "dense/bias": dbias_out,
        }
        return loss, grads, h_last

    def _fast_loss_and_grads(self, inputs, targets, h0=None):
        """`loss_and_grads` through `rnncourse.fast`: the same equations, equal to round-off.

        What differs is where the numbers live. The states stay time-major, as the fast RNN
        keeps them, so the readout's rows are (step, example) pairs and its gradient arrives
        in the layout the RNN's backward pass reads: no transposing copies. Softmax and
        cross-entropy are computed in place, in the logits' buffer, which becomes dlogits.
        And every large array is a buffer of the model's workspace, reused by the next call.
        A fresh array of a megabyte or two can cost hundreds of page faults when it is first
        written (whether it does depends on what the process allocated and freed before): in a
        fresh process on the benchmark machine, the version that allocated them took about 1.5
        times as long per step (Benchmarks appendix).
        """
        self._check_ids(inputs, targets)
        p, ws = self.params, self._workspace
        N, T = inputs.shape
        H, V = self.hidden_size, self.vocab_size
        h0 = self.initial_state(N) if h0 is None else h0
        check("h0", h0, (N, H), {})
        _, rnn_cache = rnn_forward_ids_fast(inputs, h0, p["rnn/kernel"], p["rnn/recurrent_kernel"], p["rnn/bias"],
                                            workspace=ws)
        states = rnn_cache.states                                  # (T + 1, N, H): h0, then every h_t
        h_rows = states[1:].reshape(T * N, H)
        dtype = np.result_type(h_rows, p["dense/kernel"])
        logits = ws.buffer("dense/logits", (T * N, V), dtype)
        np.matmul(h_rows, p["dense/kernel"], out=logits)
        logits += p["dense/bias"]
        loss = softmax_cross_entropy_in_place(logits, np.ascontiguousarray(targets.T).ravel())
        dlogits = logits
        dh = ws.buffer("dense/dh", (T, N, H), dtype)
        np.matmul(dlogits, p["dense/kernel"].T, out=dh.reshape(T * N, H))
        # dh is finite whenever the loss is (and the optimizer checks the gradients), so the
        # backward pass is entered without the public function's checks.
        _, _, dkernel, drecurrent, dbias = _rnn_backward(dh, rnn_cache, input_gradient=False)
        grads = {
            "rnn/kernel": dkernel, "rnn/recurrent_kernel": drecurrent, "rnn/bias": dbias,
            "dense/kernel": h_rows.T @ dlogits, "dense/bias": dlogits.sum(axis=0),
        }
        return loss, grads, states[-1].copy()

    def sample(self, start_ids, length: int, rng: np.random.Generator, temperature: float = 1.0) -> np.ndarray:
        """Feed `start_ids`, then draw `length` characters one at a time from softmax(logits / T).

        Temperature below 1 sharpens the distribution (safer, more repetitive text); above 1 it
        flattens it (more varied, more mistakes); temperature -> 0 is greedy argmax.
        """
        check_positive("temperature", temperature)
        check_int("length", length, minimum=0)
        check_generator("rng", rng)
        p = self.params
        h = self.initial_state(1)
        out = []
        ids = list(start_ids)
        if not ids:
            raise ValueError("start_ids must hold at least one character id")
        bad = [i for i in ids if not isinstance(i, (int, np.integer)) or isinstance(i, bool)
               or not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(f"start_ids must be integer character ids in [0, {self.vocab_size}), got {bad[0]!r}")
        for step in range(len(ids) + length - 1):
            x = one_hot(np.array([[ids[step] if step < len(ids) else out[-1]]]), self.vocab_size, self.dtype)
            hs, _ = rnn_forward(x, h, p["rnn/kernel"], p["rnn/recurrent_kernel"], p["rnn/bias"])
            h = hs[:, -1]
            if step >= len(ids) - 1:
                probs = softmax((h @ p["dense/kernel"] + p["dense/bias"]) / temperature)[0]
                out.append(int(rng.choice(self.vocab_size, p=probs / probs.sum())))
        return np.array(out, dtype=np.int64)


_PARAM_NAMES = ("rnn/kernel", "rnn/recurrent_kernel", "rnn/bias", "dense/kernel", "dense/bias")
_SLICE_MODELS: dict = {}


def _slice_loss_and_grads(inputs, targets, h0, *params):
    """One slice of `SplitBatch(..., processes=True)`, in whichever process runs it: the fast
    loss and gradients of the slice's rows, through a model of this process's own (its own
    buffers) that is given the batch's parameters. Returns (rows, loss, *grads, h_last), the
    gradients in the order of `_PARAM_NAMES`."""
    V, H = params[0].shape
    key = (V, H, params[0].dtype.str)
    model = _SLICE_MODELS.get(key)
    if model is None:
        model = _SLICE_MODELS[key] = CharRNN(V, H, dtype=params[0].dtype, fast=True)
    model.params = dict(zip(_PARAM_NAMES, params))
    loss, grads, h_last = model._fast_loss_and_grads(inputs, targets, h0)
    return (inputs.shape[0], loss, *(grads[name] for name in _PARAM_NAMES), h_last)


class SplitBatch:
    """A fast CharRNN whose `loss_and_grads` splits each batch over several cores.

    The rows of a batch never interact inside the model, so each slice of rows runs the whole
    forward and backward pass on its own core, and the slices' losses and gradients, each a
    mean over its own rows, are averaged with weights equal to their shares of the batch. The
    result equals the model's own `loss_and_grads` to round-off. Everything else (parameters,
    `forward`, `sample`) is the wrapped model's.

    The slices run in Python threads (`rnncourse.fast.map_batch_slices`), or, with
    processes=True, one in this process and the others in worker processes
    (`rnncourse.processes.BatchProcesses`), which do not share Python's interpreter lock; call
    `close()` (or use a `with` block) to stop them.
    """

    def __init__(self, model: CharRNN, threads: int = 2, processes: bool = False):
        if not isinstance(model, CharRNN) or not model.fast:
            raise ValueError("SplitBatch needs a CharRNN made with fast=True")
        check_int("threads", threads)
        if not isinstance(processes, bool):
            raise TypeError(f"processes must be True or False, got {type(processes).__name__} {processes!r}")
        self.model, self.params, self.threads = model, model.params, threads
        self.vocab_size, self.hidden_size, self.dtype = model.vocab_size, model.hidden_size, model.dtype
        self._pool = None
        if processes and threads > 1:
            from .processes import BatchProcesses

            self._pool = BatchProcesses(workers=threads - 1)
        # For threads, one shallow copy per slice: the same parameters, its own buffers.
        self._slices = [] if self._pool is not None else [copy.copy(model) for _ in range(threads)]
        for part in self._slices:
            part._workspace = Workspace()

    def close(self) -> None:
        """Stop the worker processes (with processes=True; otherwise nothing to do)."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def initial_state(self, batch_size: int) -> np.ndarray:
        return self.model.initial_state(batch_size)

    def forward(self, inputs, targets, h0=None):
        return self.model.forward(inputs, targets, h0)

    def loss(self, inputs, targets, h0=None) -> float:
        return self.model.loss(inputs, targets, h0)

    def sample(self, *args, **kwargs):
        return self.model.sample(*args, **kwargs)

    def loss_and_grads(self, inputs, targets, h0=None):
        self.model._check_ids(inputs, targets)
        h0 = self.initial_state(inputs.shape[0]) if h0 is None else h0
        check("h0", h0, (inputs.shape[0], self.hidden_size), {})
        if self._pool is not None:
            # The parameters are copied to the workers with every batch: they change every step.
            answers = self._pool.map(_slice_loss_and_grads, (inputs, targets, h0),
                                     tuple(self.params[name] for name in _PARAM_NAMES))
            parts = [(a[0], a[1], dict(zip(_PARAM_NAMES, a[2:-1])), a[-1]) for a in answers]
        else:
            parts = map_batch_slices(lambda i, x, y, h: (x.shape[0], *self._slices[i].loss_and_grads(x, y, h)),
                                     (inputs, targets, h0), self.threads)
        shares = [rows / inputs.shape[0] for rows, *_ in parts]
        loss = sum(share * part[1] for share, part in zip(shares, parts))
        grads = {name: sum(share * part[2][name] for share, part in zip(shares, parts)) for name in self.params}
        return loss, grads, np.concatenate([part[3] for part in parts])
