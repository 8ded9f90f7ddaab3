"""rnncourse.processes: the batch split over worker processes, and what crosses to them."""

import numpy as np
import pytest

from rnncourse import fast, lstm
from rnncourse.processes import BatchProcesses, fast_layer_gradients

from test_fast import assert_same_loss_and_grads, max_rel


def _raise_value_error(x):
    raise ValueError("bad slice")


def _shapes_and_sum(x, scale, label):
    return (x.shape[0], x.sum(axis=0) * scale, label)


def _exit_in_worker(x):
    import multiprocessing
    import os

    if multiprocessing.parent_process() is not None:    # a worker (slice 0 runs in the caller)
        os._exit(3)
    return (x.shape[0],)


@pytest.fixture(scope="module")
def pool():
    with BatchProcesses(workers=2) as p:
        yield p


def test_slices_are_contiguous_rows_in_order_with_shared_values(pool):
    rows = np.arange(20.0).reshape(10, 2)
    out = pool.map(_shapes_and_sum, (rows,), (np.float64(2.0), "tag"))
    assert [r[0] for r in out] == [3, 3, 4]                      # np.linspace(0, 10, 4) cut points
    assert np.array_equal(sum(r[1] for r in out), 2 * rows.sum(axis=0))
    assert [r[2] for r in out] == ["tag"] * 3
    # a batch smaller than the number of slices: one row each, no empty slice
    assert [r[0] for r in pool.map(_shapes_and_sum, (rows[:2],), (1.0, "x"))] == [1, 1]


def test_layer_gradients_over_processes_equal_the_whole_batch(pool):
    rng = np.random.default_rng(0)
    N, T, D, H = 7, 5, 4, 3
    p = lstm.init_lstm_params(D, H, rng, np.float64)
    x, dh = rng.standard_normal((N, T, D)), rng.standard_normal((N, T, H))
    h0 = np.zeros((N, H))
    whole = fast_layer_gradients(x, h0, dh, "lstm", p["kernel"], p["recurrent_kernel"], p["bias"])
    parts = pool.map(fast_layer_gradients, (x, h0, dh), ("lstm", p["kernel"], p["recurrent_kernel"], p["bias"]))
    for w, s in zip(whole, (sum(g) for g in zip(*parts))):
        assert max_rel(s, w) < 1e-12
    # and the fast path equals the clear code
    clear = lstm.lstm_backward(dh, lstm.lstm_forward(x, h0, h0, **p)[2])[3:]
    for w, c in zip(whole, clear):
        assert max_rel(w, c) < 1e-10


def test_a_failing_slice_raises_in_the_caller_and_the_pool_goes_on(pool):
    rows = np.ones((6, 2))
    with pytest.raises(ValueError, match="bad slice"):
        pool.map(_raise_value_error, (rows,))
    # slice 0 failed here, the others in their workers: every answer was read, so the next call is in step
    assert len(pool.map(_shapes_and_sum, (rows,), (1.0, "ok"))) == 3


def test_bad_arguments_get_clear_errors(pool):
    rows = np.ones((4, 2))
    with pytest.raises(TypeError, match="module-level"):
        pool.map(lambda x: (x,), (rows,))
    with pytest.raises(TypeError, match="tuple of NumPy arrays"):
        pool.map(_shapes_and_sum, rows)
    with pytest.raises(ValueError, match="same batch size"):
        pool.map(_shapes_and_sum, (rows, rows[:3]))
    with pytest.raises(TypeError, match="dtype object"):
        pool.map(_shapes_and_sum, (np.array([[None]] * 4, dtype=object),), (1.0, "x"))
    assert len(pool.map(_shapes_and_sum, (rows,), (1.0, "still in step"))) == 3
    with pytest.raises(ValueError, match="positive integer"):
        BatchProcesses(workers=0)
    with pytest.raises(ValueError, match="'rnn', 'lstm' or 'gru'"):
        fast_layer_gradients(rows, rows, rows, "transformer", None, None, None)


def test_a_dead_worker_closes_the_pool_with_a_clear_error():
    with BatchProcesses(workers=1) as p:
        with pytest.raises(RuntimeError, match="worker process died"):
            p.map(_exit_in_worker, (np.ones((4, 1)),))
        with pytest.raises(RuntimeError, match="closed"):
            p.map(_shapes_and_sum, (np.ones((4, 1)),), (1.0, "x"))


def test_charrnn_split_over_processes_equals_one():
    from rnncourse.charmodel import CharRNN, SplitBatch

    rng = np.random.default_rng(4)
    ids = rng.integers(0, 9, (5, 13))
    one = CharRNN(9, 6, seed=1, fast=True)
    h0 = 0.3 * rng.standard_normal((5, 6))
    with SplitBatch(CharRNN(9, 6, seed=1, fast=True), threads=2, processes=True) as two:
        for _ in range(2):
            a = one.loss_and_grads(ids[:, :-1], ids[:, 1:], h0)
            b = two.loss_and_grads(ids[:, :-1], ids[:, 1:], h0)
            assert_same_loss_and_grads(a, b)
            # an update reaches the workers: the parameters travel with every batch
            for model in (one, two):
                model.params["dense/bias"] += 0.5
    with pytest.raises(TypeError, match="processes must be True or False"):
        SplitBatch(CharRNN(9, 6, fast=True), threads=2, processes="yes")
