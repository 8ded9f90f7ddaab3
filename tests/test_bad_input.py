"""Bad input to the package gets a clear ValueError or TypeError naming the argument, what was
expected and what was passed (issue 8, item 5). Each case below failed obscurely, or not at
all, before: an IndexError, an AttributeError, a silently wrong answer."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from rnncourse import gru, lstm, rnn
from rnncourse.activations import get_activation, sigmoid
from rnncourse.charmodel import CharRNN
from rnncourse.gradcheck import gradient_check, numerical_gradient
from rnncourse.jacobians import numerical_jacobian, scaled_orthogonal, state_jacobian
from rnncourse.layers import dense_backward, dense_forward, one_hot
from rnncourse.losses import log_softmax, mean_squared_error, softmax, softmax_cross_entropy
from rnncourse.optim import SGD, Adagrad, Adam, clip_by_global_norm, clip_by_value, global_norm
from rnncourse.train import evaluate, train_char_model
from rnncourse.validation import NonFiniteError

ROOT = Path(__file__).resolve().parents[1]
N, T, D, H = 2, 5, 3, 4


@pytest.fixture
def data(rng):
    """x (N, T, D), states (N, H) and the parameters of each layer, float64."""
    return dict(x=rng.standard_normal((N, T, D)), h0=rng.standard_normal((N, H)), c0=rng.standard_normal((N, H)),
                rnn=rnn.init_rnn_params(D, H, rng), lstm=lstm.init_lstm_params(D, H, rng),
                gru=gru.init_gru_params(D, H, rng))


def forwards(d, x=None, h0=None):
    """The three sequence forward passes on the same data, as zero-argument calls."""
    x = d["x"] if x is None else x
    h0 = d["h0"] if h0 is None else h0
    return {"rnn": lambda: rnn.rnn_forward(x, h0, **d["rnn"]),
            "lstm": lambda: lstm.lstm_forward(x, h0, d["c0"], **d["lstm"]),
            "gru": lambda: gru.gru_forward(x, h0, **d["gru"])}


LAYERS = ["rnn", "lstm", "gru"]


# ------------------------------------------------------------------------- T = 0
@pytest.mark.parametrize("layer", LAYERS)
def test_a_sequence_of_no_steps_is_refused_by_the_forward_pass(data, layer):
    with pytest.raises(ValueError, match=re.escape("x must have shape (N, T, D) = (2, ?, ?) with every size at "
                                                   "least 1, got shape (2, 0, 3) (T = 0: a sequence needs at least "
                                                   "one time step)")):
        forwards(data, x=data["x"][:, :0])[layer]()


def test_backward_of_an_empty_sequence_names_the_cache():
    """The caches the forward passes used to return for T = 0; the backward passes raised IndexError."""
    dh = np.zeros((N, 0, H))
    with pytest.raises(ValueError, match=r"cache holds no time steps \(T = 0\): rnn_forward needs"):
        rnn.rnn_backward(dh, ([], None, (N, 0, D), (N, H)))
    with pytest.raises(ValueError, match=r"cache holds no time steps \(T = 0\): lstm_forward needs"):
        lstm.lstm_backward(dh, ([], None, dh, (N, 0, D), (N, H)))
    with pytest.raises(ValueError, match=r"cache holds no time steps \(T = 0\): gru_forward needs"):
        gru.gru_backward(dh, ([], None, (N, 0, D), (N, H), (2, 3 * H)))


def test_an_empty_batch_or_width_is_refused(data):
    with pytest.raises(ValueError, match=r"N = 0: a batch needs at least one example"):
        rnn.rnn_forward(data["x"][:0], data["h0"][:0], **data["rnn"])
    with pytest.raises(ValueError, match=r"got shape \(3, 0\) \(V = 0\)"):
        softmax_cross_entropy(np.zeros((3, 0)), np.zeros(3, dtype=int))


def test_a_cache_from_elsewhere_is_named(data):
    h, cache = rnn.rnn_forward(data["x"], data["h0"], **data["rnn"])
    with pytest.raises(TypeError, match=r"cache must be the cache that rnn_forward returned \(a tuple of 4 items\), "
                                        r"got ndarray of shape \(2, 5, 4\)"):
        rnn.rnn_backward(h, h)
    _, _, lstm_cache = lstm.lstm_forward(data["x"], data["h0"], data["c0"], **data["lstm"])
    with pytest.raises(TypeError, match=r"gru_forward returned.*steps hold 11 items, not 9 items"):
        gru.gru_backward(h, lstm_cache)
    with pytest.raises(TypeError, match="cache must be the cache that rnn_step_forward returned"):
        rnn.rnn_step_backward(h[:, 0], cache)


# --------------------------------------------------------------- lists and other non-arrays
@pytest.mark.parametrize("call, message", [
    (lambda: softmax_cross_entropy([[0.1, 0.2]], np.array([0])), "logits must be a NumPy array, got list"),
    (lambda: log_softmax([0.1, 0.2]), "logits must be a NumPy array, got list"),
    (lambda: mean_squared_error([1.0], np.array([1.0])), "predictions must be a NumPy array, got list"),
    (lambda: mean_squared_error(np.array([1.0]), [1.0]), "targets must be a NumPy array, got list"),
    (lambda: global_norm({"a": [3.0, 4.0]}), r"grads\['a'\] must be a NumPy array, got list"),
    (lambda: clip_by_global_norm({"a": [3.0, 4.0]}, 1.0), r"grads\['a'\] must be a NumPy array, got list"),
    (lambda: clip_by_global_norm([np.ones(2)], 1.0),
     r"grads must be a dict of NumPy arrays, \{name: gradient\}, got list"),
    (lambda: clip_by_value({"a": [3.0]}, 1.0), r"grads\['a'\] must be a NumPy array, got list"),
    (lambda: SGD(0.1).step({"a": [1.0]}, {"a": np.ones(1)}), r"params\['a'\] must be a NumPy array, got list"),
    (lambda: Adam().step({"a": np.ones(1)}, {"a": [1.0]}), r"grads\['a'\] must be a NumPy array, got list"),
    (lambda: Adagrad().step([np.ones(1)], {"a": np.ones(1)}), "params must be a dict of NumPy arrays"),
    (lambda: dense_forward([[1.0]], np.ones((1, 1)), np.ones(1)), "h must be a NumPy array, got list"),
    (lambda: numerical_gradient(lambda: 0.0, [1.0]), "x must be the float64 NumPy array that f reads"),
    (lambda: gradient_check(lambda: 0.0, [np.ones(1)], {}), r"arrays must be a dict \{name: array\}, got list"),
])
def test_non_arrays_get_a_type_error_naming_the_argument(call, message):
    with pytest.raises(TypeError, match=message):
        call()


# --------------------------------------------------------------- integers into activations
def test_sigmoid_refuses_integers_instead_of_returning_zeros():
    with pytest.raises(TypeError, match=r"z must be a floating-point array \(float32 or float64\), got dtype int64"):
        sigmoid(np.array([1, 2, 3]))
    with pytest.raises(TypeError, match="z must be a NumPy array, got list"):
        sigmoid([1.0])
    np.testing.assert_allclose(sigmoid(np.array([0.0, 2.0])), [0.5, 1 / (1 + np.exp(-2.0))])
    assert float(sigmoid(np.float64(0.0))) == 0.5  # NumPy float scalars still work, as before
    with pytest.raises(TypeError, match=r"activation must be a name, one of \['linear', 'relu', 'sigmoid', 'tanh'\]"):
        get_activation(np.tanh)


# --------------------------------------------------------------- NaN and inf
@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_input_names_the_array_and_the_first_index(data, layer, bad):
    x = data["x"].copy()
    x[1, 3, 2] = bad
    word = "NaN" if np.isnan(bad) else "infinite"
    with pytest.raises(ValueError, match=re.escape(f"x must hold finite numbers only, got 1 {word} value "
                                                   f"(shape (2, 5, 3), dtype float64, the first at index (1, 3, 2))")):
        forwards(data, x=x)[layer]()


def test_non_finite_states_weights_and_step_inputs(data):
    h0 = data["h0"].copy()
    h0[0, 1] = -np.inf
    with pytest.raises(ValueError, match=r"h0 must hold finite numbers only, got 1 infinite value"):
        rnn.rnn_forward(data["x"], h0, **data["rnn"])
    p = dict(data["lstm"], kernel=data["lstm"]["kernel"] * np.nan)
    with pytest.raises(ValueError, match=r"kernel must hold finite numbers only, got 48 NaN values"):
        lstm.lstm_forward(data["x"], data["h0"], data["c0"], **p)
    c_prev = np.full((N, H), np.nan)
    with pytest.raises(ValueError, match=r"c_prev must hold finite numbers only"):
        lstm.lstm_step_forward(data["x"][:, 0], data["h0"], c_prev, **data["lstm"])
    with pytest.raises(ValueError, match=r"h_prev must hold finite numbers only"):
        gru.gru_step_forward(data["x"][:, 0], h0, **data["gru"])


def test_non_finite_gradients_into_backward_passes(data):
    h, cache = rnn.rnn_forward(data["x"], data["h0"], **data["rnn"])
    with pytest.raises(ValueError, match=r"dh must hold finite numbers only, got 40 NaN values"):
        rnn.rnn_backward(np.full_like(h, np.nan), cache)
    with pytest.raises(ValueError, match=r"dh_next must hold finite numbers only"):
        rnn.rnn_step_backward(np.full((N, H), np.inf), cache[0][0])
    h, c, cache = lstm.lstm_forward(data["x"], data["h0"], data["c0"], **data["lstm"])
    with pytest.raises(ValueError, match=r"dc_last must hold finite numbers only"):
        lstm.lstm_backward(np.zeros_like(h), cache, dc_last=np.full((N, H), np.inf))
    out, dense_cache = dense_forward(h, np.ones((H, 2)), np.zeros(2))
    with pytest.raises(ValueError, match=r"dout must hold finite numbers only"):
        dense_backward(np.full_like(out, np.nan), dense_cache)


def test_non_finite_values_in_losses():
    with pytest.raises(ValueError, match=r"logits must hold finite numbers only, got 1 NaN value"):
        softmax_cross_entropy(np.array([[np.nan, 1.0]]), np.array([0]))
    with pytest.raises(ValueError, match=r"targets must hold finite numbers only, got 1 infinite value"):
        mean_squared_error(np.zeros(2), np.array([0.0, np.inf]))


def test_non_finite_gradients_are_refused_by_clipping_and_optimizers():
    grads = {"a": np.array([1.0, np.nan]), "b": np.ones(3)}
    message = re.escape("grads['a'] must hold finite numbers only, got 1 NaN value (shape (2,), dtype float64, "
                        "the first at index (1,))")
    with pytest.raises(ValueError, match=message):
        clip_by_global_norm(grads, 1.0)
    with pytest.raises(FloatingPointError):  # still a FloatingPointError too, as before
        clip_by_global_norm(grads, 1.0)
    with pytest.raises(ValueError, match=message):
        clip_by_value(grads, 1.0)
    for optimizer in (SGD(0.1), Adagrad(0.1), Adam(0.1)):
        params = {"a": np.ones(2), "b": np.ones(3)}
        with pytest.raises(NonFiniteError, match=message):
            optimizer.step(params, grads)
        assert np.array_equal(params["a"], np.ones(2))  # refused before anything changed


def test_global_norm_measures_a_diverged_gradient_without_raising():
    """Chapter 4 stops a diverging run with np.isfinite(global_norm(grads)): it must not raise."""
    assert np.isnan(global_norm({"a": np.array([np.nan])}))
    with np.errstate(over="ignore"):
        assert global_norm({"a": np.array([1e200])}) == np.inf
        with pytest.raises(FloatingPointError, match="the entries are finite but their squares overflow"):
            clip_by_global_norm({"a": np.array([1e200])}, 1.0)


# --------------------------------------------------------------- blame the right argument
@pytest.mark.parametrize("layer", LAYERS)
def test_a_wrong_input_width_is_blamed_on_x_not_the_kernel(data, layer, rng):
    wide = rng.standard_normal((N, T, D + 2))
    columns = {"rnn": H, "lstm": 4 * H, "gru": 3 * H}[layer]
    with pytest.raises(ValueError, match=re.escape(
            f"x must have shape (N, T, D) = (2, 5, 3), got shape (2, 5, 5) (dimension 2, D, should be 3: "
            f"kernel has shape (3, {columns}), so the layer takes D = 3 input features)")):
        forwards(data, x=wide)[layer]()


def test_a_wrong_input_width_in_one_step(data, rng):
    with pytest.raises(ValueError, match=r"x_t must have shape \(N, D\) = \(2, 3\), got shape \(2, 5\)"):
        rnn.rnn_step_forward(rng.standard_normal((N, 5)), data["h0"], **data["rnn"])


@pytest.mark.parametrize("layer", LAYERS)
def test_a_transposed_kernel_is_still_blamed_on_the_kernel(data, layer):
    p = {k: v.copy() for k, v in data[layer].items()}
    p["kernel"] = p["kernel"].T
    call = {"rnn": lambda: rnn.rnn_forward(data["x"], data["h0"], **p),
            "lstm": lambda: lstm.lstm_forward(data["x"], data["h0"], data["c0"], **p),
            "gru": lambda: gru.gru_forward(data["x"], data["h0"], **p)}[layer]
    with pytest.raises(ValueError, match=r"^kernel must have shape"):
        call()


@pytest.mark.parametrize("layer", LAYERS)
def test_time_major_input_is_named_as_such(data, layer):
    with pytest.raises(ValueError, match=re.escape(
            "x of shape (5, 2, 3) looks time-major (T, N, D) = (5, 2, 3): its dimension 1 matches the N = 2 rows "
            "of h0; the course uses batch-major (N, T, D), as Keras does, so pass x.transpose(1, 0, 2)")):
        forwards(data, x=data["x"].transpose(1, 0, 2))[layer]()


def test_a_batch_mismatch_that_is_not_time_major_still_blames_h0(data):
    with pytest.raises(ValueError, match=r"^h0 must have shape \(N, H\) = \(2, \?\), got shape \(3, 4\)"):
        rnn.rnn_forward(data["x"], np.zeros((3, H)), **data["rnn"])


# --------------------------------------------------------------- float16
@pytest.mark.parametrize("layer", LAYERS)
def test_float16_is_refused_and_the_message_says_so(data, layer):
    with pytest.raises(TypeError, match=re.escape(
            "x must be a floating-point array (float32 or float64), got dtype float16, which the package does "
            "not support; convert with x.astype(np.float32)")):
        forwards(data, x=data["x"].astype(np.float16))[layer]()


def test_float16_elsewhere():
    with pytest.raises(TypeError, match="got dtype float16"):
        softmax(np.zeros((2, 3), dtype=np.float16))
    with pytest.raises(TypeError, match="got dtype float16"):
        sigmoid(np.zeros(3, dtype=np.float16))
    with pytest.raises(TypeError, match=r"dtype must be np.float32 or np.float64, got float16"):
        rnn.init_rnn_params(D, H, np.random.default_rng(0), dtype=np.float16)
    with pytest.raises(TypeError, match=r"dtype must be np.float32 or np.float64, got float16"):
        one_hot(np.array([0, 1]), 3, dtype=np.float16)


# --------------------------------------------------------------- settings
@pytest.mark.parametrize("init", [rnn.init_rnn_params, lstm.init_lstm_params, gru.init_gru_params])
def test_initialisers_refuse_bad_sizes_and_generators(init):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="units must be an integer >= 1, got 0"):
        init(D, 0, rng)
    with pytest.raises(ValueError, match="units must be an integer >= 1, got -3"):
        init(D, -3, rng)
    with pytest.raises(TypeError, match="units must be an integer >= 1, got float 4.0"):
        init(D, 4.0, rng)
    with pytest.raises(ValueError, match="input_dim must be an integer >= 1, got 0"):
        init(0, H, rng)
    with pytest.raises(TypeError, match=r"rng must be a NumPy random Generator, for example "
                                        r"np.random.default_rng\(0\), got int 0"):
        init(D, H, 0)
    assert init(np.int64(D), np.int64(H), rng)["kernel"].shape[0] == D  # NumPy integers are fine


@pytest.mark.parametrize("call, error, message", [
    (lambda: SGD(0.0), ValueError, "learning_rate must be positive, got 0.0"),
    (lambda: SGD(-0.1), ValueError, "learning_rate must be positive, got -0.1"),
    (lambda: SGD(float("nan")), ValueError, "learning_rate must be positive, got nan"),
    (lambda: SGD("0.1"), TypeError, "learning_rate must be a positive number, got str '0.1'"),
    (lambda: SGD(0.1, momentum=1.0), ValueError, r"momentum must lie in \[0.0, 1.0\), got 1.0"),
    (lambda: Adagrad(0.1, epsilon=0), ValueError, "epsilon must be positive, got 0"),
    (lambda: Adam(beta_2=1.5), ValueError, r"beta_2 must lie in \[0.0, 1.0\), got 1.5"),
    (lambda: clip_by_global_norm({"a": np.ones(2)}, 0.0), ValueError, "max_norm must be positive, got 0.0"),
    (lambda: clip_by_global_norm({"a": np.ones(2)}, float("nan")), ValueError, "max_norm must be positive, got nan"),
    (lambda: clip_by_value({"a": np.ones(2)}, -1), ValueError, "limit must be positive, got -1"),
    (lambda: CharRNN(5, 4, seed=-1), ValueError, "seed must be an integer >= 0, got -1"),
    (lambda: CharRNN(5, 0), ValueError, "hidden_size must be an integer >= 1, got 0"),
    (lambda: CharRNN(5, 4).sample([1], 3, np.random.default_rng(0), temperature=0), ValueError,
     "temperature must be positive, got 0"),
    (lambda: CharRNN(5, 4).sample([1], -1, np.random.default_rng(0)), ValueError,
     "length must be an integer >= 0, got -1"),
    (lambda: CharRNN(5, 4).sample([7], 3, np.random.default_rng(0)), ValueError,
     r"start_ids must be integer character ids in \[0, 5\), got 7"),
    (lambda: CharRNN(5, 4).sample([1], 3, 0), TypeError, "rng must be a NumPy random Generator"),
    (lambda: one_hot(np.array([0]), 0), ValueError, "depth must be an integer >= 1, got 0"),
    (lambda: numerical_gradient(lambda: 0.0, np.ones(2), eps=0.0), ValueError, "eps must be positive, got 0.0"),
    (lambda: numerical_jacobian(lambda v: v, np.ones(2), eps=-1e-6), ValueError, "eps must be positive"),
    (lambda: scaled_orthogonal(0, 4, 1.0), TypeError, "rng must be a NumPy random Generator"),
    (lambda: scaled_orthogonal(np.random.default_rng(0), 0, 1.0), ValueError, "n must be an integer >= 1, got 0"),
    (lambda: rnn.glorot_uniform(np.random.default_rng(0), 3, 0), ValueError, "fan_out must be an integer >= 1, got 0"),
])
def test_settings_are_checked(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_training_loop_settings():
    model = CharRNN(5, 4)
    ids = np.arange(200) % 5
    with pytest.raises(ValueError, match="steps must be an integer >= 1, got 0"):
        train_char_model(model, ids, ids, SGD(0.1), steps=0)
    with pytest.raises(ValueError, match="clip_norm must be positive, got -1"):
        train_char_model(model, ids, ids, SGD(0.1), steps=1, clip_norm=-1)
    with pytest.raises(TypeError, match="train_ids must be a 1-D NumPy array of integer character ids, got list"):
        train_char_model(model, list(ids), ids, SGD(0.1), steps=1)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got 0"):
        evaluate(model, ids, batch_size=0)


def test_jacobian_indices(data):
    _, cache = rnn.rnn_forward(data["x"], data["h0"], **data["rnn"])
    with pytest.raises(TypeError, match="end must be an integer >= 0, got float 2.0"):
        state_jacobian(cache, 2.0, 0)
    with pytest.raises(TypeError, match="cache must be the cache that rnn_forward returned"):
        state_jacobian(cache[0], 2, 0)


# --------------------------------------------------------------- the checks cost nothing per step
def test_sequence_functions_check_once_and_compute_exactly_what_the_steps_compute(data, monkeypatch):
    calls = []
    original = rnn.check_data
    monkeypatch.setattr(rnn, "check_data", lambda *a, **k: calls.append(1) or original(*a, **k))
    h, cache = rnn.rnn_forward(data["x"], data["h0"], **data["rnn"])
    assert len(calls) == 1  # not once per time step
    h_prev = data["h0"]
    for t in range(T):  # the checked step, called by hand, gives the same numbers bit for bit
        h_prev, _ = rnn.rnn_step_forward(data["x"][:, t], h_prev, **data["rnn"])
        assert np.array_equal(h_prev, h[:, t])


def test_messages_stored_in_chapter_3_are_unchanged():
    """Chapter 3 shows three of these messages; they must still read as stored."""
    nb = json.loads((ROOT / "chapters" / "03_numpy_rnn.ipynb").read_text())
    cells = [c for c in nb["cells"] if c["cell_type"] == "code" and "transposed kernel" in "".join(c["source"])]
    if not cells:
        pytest.skip("chapter 3 no longer has the cell with the error messages")
    stored = "".join("".join(o.get("text", "")) for o in cells[0]["outputs"])
    if not stored:
        pytest.skip("chapter 3's error-message cell holds no stored output")
    x3 = np.random.default_rng(1).standard_normal((2, 5, 3))
    got = []
    for call in (lambda: rnn.rnn_forward(x3, np.zeros((2, 4)), np.zeros((4, 3)), np.zeros((4, 4)), np.zeros(4)),
                 lambda: rnn.rnn_forward(x3[0], np.zeros((2, 4)), np.zeros((3, 4)), np.zeros((4, 4)), np.zeros(4)),
                 lambda: rnn.rnn_forward(x3.astype(int), np.zeros((2, 4)), np.zeros((3, 4)), np.zeros((4, 4)),
                                         np.zeros(4))):
        with pytest.raises((ValueError, TypeError)) as info:
            call()
        got.append(f"{type(info.value).__name__}: {info.value}")
    for message in got:
        assert message in stored, message
