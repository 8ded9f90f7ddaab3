import numpy as np
import pytest

from rnncourse import lstm, rnn
from rnncourse.gradient_flow import GradientFlow, input_gradient_flow


def x(scale=1.0, seed=0, shape=(4, 12, 3)):
    return scale * np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize("cell", ["RNN", "LSTM", "GRU"])
def test_shapes_and_factor_range(cell):
    flow = input_gradient_flow(cell, x(), units=5, seed=1)
    assert flow.norms.shape == (12,)
    assert np.all(flow.norms > 0)
    assert 0 < flow.mean_factor < 1
    assert flow.factor_per_step() > 0


def test_rnn_matches_a_direct_computation():
    xs = x()
    rng = np.random.default_rng(3)
    u = rng.standard_normal((4, 5))
    p = rnn.init_rnn_params(3, 5, rng)
    h, cache = rnn.rnn_forward(xs, np.zeros((4, 5)), **p)
    dh = np.zeros_like(h)
    dh[:, -1] = u
    expected = np.linalg.norm(rnn.rnn_backward(dh, cache)[0], axis=(0, 2))
    flow = input_gradient_flow("RNN", xs, units=5, seed=3)
    np.testing.assert_allclose(flow.norms, expected)
    assert flow.mean_factor == pytest.approx(np.mean(1 - h ** 2))


def test_lstm_forget_bias_sets_the_gate():
    assert input_gradient_flow("LSTM", x(0.01), 6, gate_bias=0.0).mean_factor == pytest.approx(0.5, abs=0.02)
    assert input_gradient_flow("LSTM", x(0.01), 6).mean_factor == pytest.approx(1 / (1 + np.exp(-1)), abs=0.02)
    # default is Keras's forget bias of 1
    rng = np.random.default_rng(0)
    rng.standard_normal((4, 6))
    assert lstm.init_lstm_params(3, 6, rng)["bias"][6:12].tolist() == [1.0] * 6


def test_factor_per_step():
    flow = GradientFlow(norms=np.array([1e-3, 1e-2, 1e-1, 1.0]), mean_factor=0.5)
    assert flow.factor_per_step() == pytest.approx(0.1)
    assert flow.factor_per_step(1) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="steps"):
        flow.factor_per_step(4)


@pytest.mark.parametrize("kwargs, message", [
    (dict(cell="rnn"), "cell"),
    (dict(x=np.zeros((2, 3))), "shape"),
    (dict(x=np.zeros((2, 3, 1), dtype=int)), "dtype"),
    (dict(x=np.zeros((2, 1, 1))), "T >= 2"),
    (dict(units=0), "units"),
    (dict(cell="RNN", gate_bias=1.0), "gate_bias"),
])
def test_bad_input(kwargs, message):
    args = dict(cell="LSTM", x=x(), units=4)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        input_gradient_flow(**args)
