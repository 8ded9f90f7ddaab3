import numpy as np
import pytest

from rnncourse.tasks import ADDING_BASELINE_MSE, adding_problem, delayed_echo


def test_adding_problem_shapes_markers_and_targets():
    rng = np.random.default_rng(0)
    x, y = adding_problem(500, 30, rng)
    assert x.shape == (500, 30, 2) and y.shape == (500, 1) and x.dtype == np.float32
    markers = x[..., 1]
    assert np.all(markers.sum(axis=1) == 2)
    assert np.all(markers[:, :15].sum(axis=1) == 1) and np.all(markers[:, 15:].sum(axis=1) == 1)
    assert np.all((x[..., 0] >= 0) & (x[..., 0] < 1))
    np.testing.assert_allclose(y[:, 0], (x[..., 0] * markers).sum(axis=1), rtol=1e-6)


def test_adding_problem_statistics_and_trivial_baseline():
    x, y = adding_problem(200_000, 10, np.random.default_rng(1), dtype=np.float64)
    assert abs(y.mean() - 1.0) < 0.005
    baseline = float(np.mean((y - 1.0) ** 2))
    assert abs(baseline - ADDING_BASELINE_MSE) < 0.002
    assert abs(ADDING_BASELINE_MSE - 0.1667) < 1e-4
    # every position of each half is used
    first = x[..., 1][:, :5].argmax(axis=1)
    assert set(np.unique(first)) == set(range(5))


def test_adding_problem_is_reproducible_and_rejects_bad_sizes():
    a = adding_problem(4, 8, np.random.default_rng(3))
    b = adding_problem(4, 8, np.random.default_rng(3))
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    with pytest.raises(ValueError):
        adding_problem(4, 1, np.random.default_rng(0))
    with pytest.raises(ValueError):
        adding_problem(0, 8, np.random.default_rng(0))


def test_delayed_echo():
    x, y, mask = delayed_echo(3, 12, 4, np.random.default_rng(0))
    assert x.shape == y.shape == (3, 12, 1) and mask.shape == (3, 12)
    np.testing.assert_array_equal(y[:, 4:], x[:, :-4])
    assert not mask[:, :4].any() and mask[:, 4:].all()
    assert set(np.unique(x)) == {-1.0, 1.0}
    with pytest.raises(ValueError):
        delayed_echo(3, 12, 12, np.random.default_rng(0))
