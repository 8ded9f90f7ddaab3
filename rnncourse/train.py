"""Training and evaluation loops for the character-level model (truncated BPTT, carried state),
and several seeds of it trained side by side."""

from __future__ import annotations

import numpy as np

from .data import stream_batches
from .optim import clip_by_global_norm
from .progress import Progress
from .validation import check_int, check_positive


def _check_ids(name: str, ids) -> None:
    if not isinstance(ids, np.ndarray) or not np.issubdtype(ids.dtype, np.integer) or ids.ndim != 1:
        raise TypeError(f"{name} must be a 1-D NumPy array of integer character ids, got "
                        f"{type(ids).__name__} {getattr(ids, 'dtype', '')} of shape {getattr(ids, 'shape', '?')}")


def evaluate(model, ids: np.ndarray, batch_size: int = 16, seq_len: int = 100) -> float:
    """Mean cross-entropy (nats per character) over a held-out stream, state carried across windows."""
    _check_ids("ids", ids)
    check_int("batch_size", batch_size)
    check_int("seq_len", seq_len)
    h = model.initial_state(batch_size)
    total, count = 0.0, 0
    for inputs, targets in stream_batches(ids, batch_size, seq_len):
        loss, h, _ = model.forward(inputs, targets, h)
        total += loss * inputs.size
        count += inputs.size
    return total / count


def train_char_model(model, train_ids, val_ids, optimizer, steps: int, batch_size: int = 32,
                     seq_len: int = 50, clip_norm: float | None = 5.0, eval_every: int = 250,
                     eval_chars: int = 20_000, progress_lines: int = 10,
                     progress_tolerance: float | None = None) -> dict:
    """Train for `steps` updates; return the history of train and validation losses.

    Windows are taken in order through `batch_size` parallel streams of the text, and the final
    hidden state of each window starts the next one (its gradient stops there: truncated BPTT).
    When a pass over the text ends, the next one starts with a zero state.

    With `progress_tolerance`, the progress lines show the losses to 3 decimals as measured
    values that the test suite compares within that tolerance (see `rnncourse.progress`).
    """
    _check_ids("train_ids", train_ids)
    _check_ids("val_ids", val_ids)
    for name, value in (("steps", steps), ("batch_size", batch_size), ("seq_len", seq_len),
                        ("eval_every", eval_every), ("eval_chars", eval_chars), ("progress_lines", progress_lines)):
        check_int(name, value)
    if clip_norm is not None:
        check_positive("clip_norm", clip_norm)
    history = {"step": [], "train_loss": [], "val_step": [], "val_loss": [], "grad_norm": []}
    progress = Progress(steps, lines=progress_lines, tolerance=progress_tolerance,
                        digits=4 if progress_tolerance is None else 3)
    val_ids = val_ids[:eval_chars]
    batches, h = None, None
    recent = []
    for step in range(1, steps + 1):
        batch = next(batches, None) if batches is not None else None
        if batch is None:  # start (again) at the top of the text
            batches = stream_batches(train_ids, batch_size, seq_len)
            batch, h = next(batches), model.initial_state(batch_size)
        inputs, targets = batch
        loss, grads, h = model.loss_and_grads(inputs, targets, h)
        if clip_norm is not None:
            grads, norm = clip_by_global_norm(grads, clip_norm)
        else:
            norm = float(np.sqrt(sum(float(np.sum(g * g)) for g in grads.values())))
        optimizer.step(model.params, grads)
        history["step"].append(step)
        history["train_loss"].append(loss)
        history["grad_norm"].append(norm)
        recent.append(loss)
        if step % eval_every == 0 or step == steps:
            history["val_step"].append(step)
            history["val_loss"].append(evaluate(model, val_ids))
        shown = {"train loss": float(np.mean(recent))}
        if history["val_loss"]:
            shown["val loss"] = history["val_loss"][-1]
        if progress.update(step, **shown):
            recent = []
    return history


# ------------------------------------------------------------------ several seeds at once
def _train_one_seed(seed: int, vocab_size: int, hidden_size: int, train_ids, val_ids, learning_rate: float,
                    train_kwargs: dict) -> dict:
    """In a worker process: one CharRNN trained as `train_char_models` describes; its weights."""
    import contextlib
    import io

    from threadpoolctl import threadpool_limits

    from .charmodel import CharRNN
    from .optim import Adam

    with threadpool_limits(limits=1, user_api="blas"), contextlib.redirect_stdout(io.StringIO()):
        model = CharRNN(vocab_size, hidden_size=hidden_size, seed=seed, fast=True)
        train_char_model(model, train_ids, val_ids, Adam(learning_rate=learning_rate), **train_kwargs)
    return model.params


def train_char_models(seeds, vocab_size: int, hidden_size: int, train_ids, val_ids, learning_rate: float,
                      processes: int | None = None, **train_kwargs) -> list:
    """One `CharRNN(vocab_size, hidden_size, seed=seed, fast=True)` per seed, each trained with
    `train_char_model(model, train_ids, val_ids, Adam(learning_rate), **train_kwargs)`; the
    trained models, in the order of `seeds`.

    The runs are independent, so they run side by side, each in a process of its own (at most
    `processes` at a time; default: one per core available, up to one per seed) with one BLAS
    thread. Each computes exactly what the same call in this process would (the same operations
    in the same order), so the weights are the same bit for bit (`tests/test_training_pieces.py`);
    only the progress lines are not shown. On two cores, two seeds take about the time of one.
    """
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    from .charmodel import CharRNN

    seeds = list(seeds)
    if not seeds or any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in seeds):
        raise ValueError(f"seeds must be a non-empty list of non-negative ints, got {seeds!r}")
    _check_ids("train_ids", train_ids)
    _check_ids("val_ids", val_ids)
    check_int("vocab_size", vocab_size)
    check_int("hidden_size", hidden_size)
    check_positive("learning_rate", learning_rate)
    if processes is not None:
        check_int("processes", processes)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = min(len(seeds), processes or cores)
    # "spawn": a fresh interpreter per worker, safe whatever threads this process has started.
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_train_one_seed, seed, vocab_size, hidden_size, train_ids, val_ids, learning_rate,
                               train_kwargs) for seed in seeds]
        trained = [future.result() for future in futures]
    models = []
    for seed, params in zip(seeds, trained):
        model = CharRNN(vocab_size, hidden_size=hidden_size, seed=seed, fast=True)
        model.params.update(params)
        models.append(model)
    return models
