"""The parallel scan equals the loop; the minGRU's NumPy and Keras forms agree; costs and errors."""

from __future__ import annotations

import numpy as np
import pytest

from rnncourse.scan import (combine, init_mingru_params, linear_recurrence_loop, linear_recurrence_scan,
                            mingru_forward, scan_cost)


@pytest.mark.parametrize("T", [1, 2, 3, 7, 8, 9, 64, 100])
def test_scan_equals_loop(T):
    rng = np.random.default_rng(T)
    a = rng.uniform(0.5, 1.0, size=(3, T, 4))
    b = rng.standard_normal((3, T, 4))
    h0 = rng.standard_normal((3, 4))
    for init in (None, h0):
        loop = linear_recurrence_loop(a, b, init)
        scan = linear_recurrence_scan(a, b, init)
        assert scan.shape == (3, T, 4)
        np.testing.assert_allclose(scan, loop, rtol=1e-12, atol=1e-12)


def test_loop_matches_the_definition():
    a = np.array([[[0.5], [2.0], [1.0]]])
    b = np.array([[[1.0], [1.0], [-3.0]]])
    h = linear_recurrence_loop(a, b, np.array([[2.0]]))
    np.testing.assert_array_equal(h[0, :, 0], [2.0, 5.0, 2.0])


def test_combine_is_associative_not_commutative():
    rng = np.random.default_rng(0)
    p, q, r = [(rng.standard_normal(5), rng.standard_normal(5)) for _ in range(3)]
    left = combine(combine(p, q), r)
    right = combine(p, combine(q, r))
    for x, y in zip(left, right):
        np.testing.assert_allclose(x, y, rtol=1e-12)
    assert not np.allclose(combine(p, q)[1], combine(q, p)[1])


def test_scan_does_not_modify_its_inputs():
    rng = np.random.default_rng(1)
    a, b = rng.random((2, 10, 3)), rng.random((2, 10, 3))
    a0, b0 = a.copy(), b.copy()
    linear_recurrence_scan(a, b, np.ones((2, 3)))
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b0)


def test_costs():
    assert scan_cost(1024, "loop") == {"work": 1023, "depth": 1023}
    hs = scan_cost(1024, "hillis-steele")
    assert hs["depth"] == 10 and hs["work"] == 10 * 1024 - 1023
    assert scan_cost(1024, "blelloch") == {"work": 2046, "depth": 20}
    # The Hillis-Steele work counts exactly the combines the NumPy scan performs.
    T = 100
    count = sum(T - 2**k for k in range(7))
    assert scan_cost(T, "hillis-steele")["work"] == count


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_cost_rejects_bad_lengths(bad):
    with pytest.raises(ValueError, match="T must be a positive int"):
        scan_cost(bad, "loop")


def test_cost_rejects_unknown_method():
    with pytest.raises(ValueError, match="method must be"):
        scan_cost(8, "magic")


def test_shape_errors_name_the_argument():
    with pytest.raises(ValueError, match="a and b must have the same shape"):
        linear_recurrence_scan(np.ones((2, 5, 3)), np.ones((2, 4, 3)))
    with pytest.raises(ValueError, match="h0 must have shape"):
        linear_recurrence_loop(np.ones((2, 5, 3)), np.ones((2, 5, 3)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="x must have shape"):
        mingru_forward(np.ones((5, 3)), None, np.ones((3, 4)), np.zeros(4))
    with pytest.raises(ValueError, match="kernel must have shape"):
        mingru_forward(np.ones((2, 5, 3)), None, np.ones((4, 4)), np.zeros(4))
    with pytest.raises(ValueError, match="method must be"):
        mingru_forward(np.ones((2, 5, 3)), None, np.ones((3, 4)), np.zeros(4), method="fast")


def test_mingru_scan_equals_loop_and_gate_semantics():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 20, 3))
    p = init_mingru_params(3, 5, rng)
    p["bias"] = rng.standard_normal(10)
    h0 = rng.standard_normal((2, 5))
    np.testing.assert_allclose(mingru_forward(x, h0, **p), mingru_forward(x, h0, **p, method="loop"), atol=1e-12)
    # A gate held shut (z = 0) keeps h_0 for ever.
    p["kernel"][:, :5] = 0.0
    p["bias"][:5] = -50.0
    h = mingru_forward(x, h0, **p)
    np.testing.assert_allclose(h[:, -1], h0, atol=1e-12)


def test_keras_mingru_equals_numpy():
    from rnncourse.repro import setup_tensorflow

    keras = setup_tensorflow(seed=0)
    from rnncourse.scan import keras_mingru_layer

    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 13, 3)).astype("float32")
    layer = keras_mingru_layer(6, return_sequences=True)
    model = keras.Sequential([keras.Input((13, 3)), layer])
    kernel, bias = (w.numpy() for w in layer.weights)
    bias = rng.standard_normal(bias.shape).astype("float32")
    layer.set_weights([kernel, bias])
    got = np.asarray(model(x))
    expected = mingru_forward(x.astype(np.float64), None, kernel.astype(np.float64), bias.astype(np.float64))
    np.testing.assert_allclose(got, expected, atol=1e-5)
