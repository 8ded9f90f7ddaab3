"""The batch split over processes: every core runs NumPy's element-wise work, not only one.

A multi-threaded BLAS spreads each matrix product over the cores, but NumPy runs every
element-wise operation (the tanh, the gate products) on one core, and an RNN's training step
has many of them between its products: with two BLAS threads the second core waits through
all of that work. The examples of a batch never interact inside a recurrent layer, so the
batch can be cut into slices, each slice can run the whole forward and backward pass on a core
of its own, and only the weight gradients must be added up afterwards.

Python threads cannot do this well (`rnncourse.fast.map_batch_slices`): they share one
interpreter lock, which every one of the step's small NumPy calls must take, and the
Benchmarks appendix measures them slower than BLAS threads. Processes share nothing, so
`BatchProcesses` runs slice 0 in the calling process and every other slice in a worker
process of its own, each with one BLAS thread. The arrays travel through shared memory, not
through a pipe: each array is copied once, into a shared block, instead of being pickled,
sent and unpickled. Only the function's name, the arrays' shapes and small values go through
the pipe.

    with BatchProcesses(workers=1) as pool:
        parts = pool.map(fast_layer_gradients, (x, h0, dh), shared=("lstm", kernel, recurrent, bias))
        grads = [a + b for a, b in zip(*parts)]

The function must be importable by name (a module-level function), since a worker receives
it by reference; workers start with the `spawn` method, as on every operating system, so a
worker never inherits a parent's threads or locks. A slice's result equals the whole batch's
to round-off only: the sums over examples are taken in two parts.
"""

from __future__ import annotations

import multiprocessing
import traceback
from multiprocessing import shared_memory

import numpy as np

from .fast import Workspace

_WORKSPACES: dict = {}


def worker_workspace(key) -> Workspace:
    """This process's `Workspace` for `key`: buffers a function reuses from one call to the next
    (in the caller and in each worker alike)."""
    return _WORKSPACES.setdefault(key, Workspace())


def fast_layer_gradients(x, h0, dh, kind, kernel, recurrent_kernel, bias, workspace=None, fused=False):
    """One slice of a layer's training step through `rnncourse.fast`: the forward pass, then the
    backward pass from the upstream gradient dh; returns (dkernel, drecurrent_kernel, dbias),
    sums over the slice's examples, so the slices' results add up to the whole batch's.
    `workspace`: the buffers to reuse (default: this process's own for this kind of layer;
    threads running at once must each pass their own). fused=True: the LSTM through
    `rnncourse.fused` instead (its element-wise work in compiled loops)."""
    from . import fast

    ws = workspace if workspace is not None else worker_workspace(("fast_layer_gradients", kind))
    if fused:
        if kind != "lstm":
            raise ValueError(f"fused=True exists for the LSTM only, got kind={kind!r}")
        from . import fused as _fused

        cache = _fused.lstm_forward_fused(x, h0, h0, kernel, recurrent_kernel, bias, workspace=ws)[2]
        return _fused.lstm_backward_fused(dh, cache, input_gradient=False)[3:]
    if kind == "rnn":
        cache = fast.rnn_forward_fast(x, h0, kernel, recurrent_kernel, bias, workspace=ws)[1]
        return fast.rnn_backward_fast(dh, cache, input_gradient=False)[2:]
    if kind == "lstm":
        cache = fast.lstm_forward_fast(x, h0, h0, kernel, recurrent_kernel, bias, workspace=ws)[2]
        return fast.lstm_backward_fast(dh, cache, input_gradient=False)[3:]
    if kind == "gru":
        cache = fast.gru_forward_fast(x, h0, kernel, recurrent_kernel, bias, workspace=ws)[1]
        return fast.gru_backward_fast(dh, cache, input_gradient=False)[2:]
    raise ValueError(f"kind must be 'rnn', 'lstm' or 'gru', got {kind!r}")


# ------------------------------------------------------------- arrays through shared memory
class _Block:
    """A shared-memory block of this process's, replaced by a larger one when it must grow (the
    old one is unlinked at once)."""

    def __init__(self):
        self.shm = None

    def fit(self, nbytes: int) -> shared_memory.SharedMemory:
        if self.shm is None or self.shm.size < nbytes:
            self.close()
            self.shm = shared_memory.SharedMemory(create=True, size=max(nbytes, 1 << 16))
        return self.shm

    def close(self):
        if self.shm is not None:
            self.shm.close()
            self.shm.unlink()
            self.shm = None


def _pack(values, block: _Block):
    """Arrays into `block`, 64-byte aligned; returns (name, layout), where each entry of layout
    is ("array", offset, shape, dtype) or ("value", the value itself)."""
    arrays = [v for v in values if isinstance(v, np.ndarray)]
    if any(a.dtype.hasobject for a in arrays):
        # An object array holds pointers into this process's memory: meaningless in another.
        raise TypeError("arrays of Python objects (dtype object) cannot go through shared memory")
    size = sum(-(-a.nbytes // 64) * 64 for a in arrays)
    shm = block.fit(size) if arrays else None
    layout, offset = [], 0
    for v in values:
        if isinstance(v, np.ndarray):
            view = np.ndarray(v.shape, v.dtype, buffer=shm.buf, offset=offset)
            np.copyto(view, v)
            layout.append(("array", offset, v.shape, v.dtype.str))
            offset += -(-v.nbytes // 64) * 64
        else:
            layout.append(("value", v))
    return (shm.name if shm is not None else None), layout


class _Attached:
    """Blocks another process made, attached by name (and re-attached when the name changes)."""

    def __init__(self):
        self.shm = None

    def get(self, name):
        if name is None:
            return None
        if self.shm is None or self.shm.name != name:
            self.close()
            self.shm = shared_memory.SharedMemory(name=name)
        return self.shm

    def close(self):
        if self.shm is not None:
            self.shm.close()
            self.shm = None


def _unpack(name, layout, attached: _Attached, copy: bool):
    shm = attached.get(name)
    out = []
    for entry in layout:
        if entry[0] == "array":
            _, offset, shape, dtype = entry
            view = np.ndarray(shape, np.dtype(dtype), buffer=shm.buf, offset=offset)
            out.append(view.copy() if copy else view)
        else:
            out.append(entry[1])
    return out


def _worker_main(conn) -> None:
    """A worker's loop: receive (function, inputs), run it with one BLAS thread, send back the
    results, until told to stop (None) or the pipe closes."""
    from threadpoolctl import threadpool_limits

    limits = threadpool_limits(limits=1, user_api="blas")   # kept for the worker's lifetime
    inputs, results = _Attached(), _Block()
    try:
        while True:
            try:
                message = conn.recv()
            except EOFError:
                break
            if message is None:
                break
            fn, name, layout = message
            try:
                answer = fn(*_unpack(name, layout, inputs, copy=False))
                if not isinstance(answer, tuple):
                    raise TypeError(f"{fn.__name__} must return a tuple, got {type(answer).__name__}")
                conn.send(("ok",) + _pack(list(answer), results))
            except BaseException as exc:  # noqa: BLE001 - every failure goes back to the caller
                conn.send(("error", f"{type(exc).__name__}: {exc}", traceback.format_exc()))
    finally:
        inputs.close()
        results.close()
        del limits


# ----------------------------------------------------------------------------- the pool
class BatchProcesses:
    """Slice 0 of every batch in this process, slice k in worker process k (k = 1..workers).

    `map(fn, sliced, shared)` cuts every array in `sliced` into contiguous blocks of rows
    (axis 0, as even as they go) and returns [fn(*slice_k, *shared) for each k], in slice order.
    `shared` values go to every slice whole: arrays through shared memory, anything else through
    the pipe (keep it small: a name, a number). fn must return a tuple of arrays and small
    values. Call `close()`, or use the pool in a `with` block, to stop the workers.
    """

    def __init__(self, workers: int = 1):
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        from threadpoolctl import ThreadpoolController

        self._controller = ThreadpoolController()
        context = multiprocessing.get_context("spawn")
        self._workers = []
        for _ in range(workers):
            parent_end, child_end = context.Pipe()
            process = context.Process(target=_worker_main, args=(child_end,), daemon=True)
            process.start()
            child_end.close()
            self._workers.append((process, parent_end, _Block(), _Attached()))
        self.workers = workers

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        for process, conn, block, attached in self._workers:
            try:
                conn.send(None)
            except (OSError, ValueError):
                pass
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
            conn.close()
            block.close()
            attached.close()
        self._workers = []

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - at interpreter exit, modules may be gone
            pass

    def map(self, fn, sliced: tuple, shared: tuple = ()) -> list:
        if not self._workers:
            raise RuntimeError("this BatchProcesses is closed")
        if not callable(fn) or getattr(fn, "__name__", "<lambda>") == "<lambda>" or "<locals>" in getattr(
                fn, "__qualname__", ""):
            raise TypeError("fn must be a module-level function (workers import it by name), "
                            f"got {fn!r}")
        if not isinstance(sliced, tuple) or not sliced or not all(isinstance(a, np.ndarray) and a.ndim >= 1
                                                                  for a in sliced):
            raise TypeError("sliced must be a non-empty tuple of NumPy arrays, each with a batch axis (axis 0)")
        N = sliced[0].shape[0]
        if any(a.shape[0] != N for a in sliced):
            raise ValueError(f"every array in sliced must have the same batch size (axis 0), got "
                             f"{[a.shape[0] for a in sliced]}")
        if not isinstance(shared, tuple):
            raise TypeError(f"shared must be a tuple, got {type(shared).__name__}")
        if any(isinstance(a, np.ndarray) and a.dtype.hasobject for a in sliced + shared):
            # checked before anything is sent, so that no worker is left with an unread answer
            raise TypeError("arrays of Python objects (dtype object) cannot go through shared memory")
        bounds = np.linspace(0, N, min(len(self._workers) + 1, N) + 1).astype(int)
        pieces = [tuple(a[lo:hi] for a in sliced) for lo, hi in zip(bounds[:-1], bounds[1:])]
        busy = []
        for (process, conn, block, attached), piece in zip(self._workers, pieces[1:]):
            name, layout = _pack(list(piece) + list(shared), block)
            conn.send((fn, name, layout))
            busy.append((process, conn, attached))
        error, results = None, []
        try:
            with self._controller.limit(limits=1, user_api="blas"):
                results.append(fn(*pieces[0], *shared))
        except BaseException as exc:  # noqa: BLE001 - collect the workers' answers before raising
            error = exc
        for k, (process, conn, attached) in enumerate(busy, start=1):
            try:
                answer = self._receive(process, conn)
            except RuntimeError as exc:
                error = error or exc
                continue
            if answer[0] == "error":
                error = error or RuntimeError(f"slice {k} failed in its worker process: {answer[1]}\n{answer[2]}")
            else:
                results.append(tuple(_unpack(answer[1], answer[2], attached, copy=True)))
        if error is not None:
            raise error
        return results

    def _receive(self, process, conn):
        try:
            while not conn.poll(1.0):
                if not process.is_alive():
                    raise EOFError
            return conn.recv()
        except EOFError:
            process.join(timeout=1)
            self.close()
            raise RuntimeError(f"a worker process died (exit code {process.exitcode}); the pool is closed") from None
