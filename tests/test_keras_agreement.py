"""The NumPy layers against Keras 3: same weights, same outputs, same gradients.

Forward passes run in float32, as Keras layers do by default, and agree to 1e-5 absolute.
Gradients run in float64 on both sides (Keras layers accept dtype="float64") and agree to
1e-6 relative, the tolerance of the numerical gradient checks.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

import numpy as np
import pytest

import keras  # noqa: E402  (pinned in requirements.txt: a missing Keras must fail, not skip)
import tensorflow as tf  # noqa: E402

from rnncourse.gradcheck import rel_error  # noqa: E402
from rnncourse.gru import gru_backward, gru_forward  # noqa: E402
from rnncourse.keras_bridge import (  # noqa: E402
    keras_visible_steps,
    numpy_forward_like,
    params_from_keras,
    set_keras_weights,
)
from rnncourse.lstm import lstm_backward, lstm_forward  # noqa: E402
from rnncourse.rnn import rnn_backward, rnn_forward  # noqa: E402

ATOL = 1e-5  # float32 forward passes
GRAD_TOL = 1e-6  # float64 gradients
N, T, D, H = 3, 5, 2, 4
KINDS = ["SimpleRNN", "LSTM", "GRU", "GRU_reset_before"]
# Padding of every kind: at the end (what cuDNN also accepts), at the start, and a hole.
MASK = np.array([[True, True, True, False, False],
                 [False, False, True, True, True],
                 [True, False, True, True, False]])


@pytest.fixture(autouse=True)
def seeded():
    keras.utils.set_random_seed(2024)


def make_layer(kind, units=H, **kwargs):
    if kind == "SimpleRNN":
        return keras.layers.SimpleRNN(units, **kwargs)
    if kind == "LSTM":
        return keras.layers.LSTM(units, **kwargs)
    return keras.layers.GRU(units, reset_after=(kind == "GRU"), **kwargs)


def n_states(kind):
    return 2 if kind == "LSTM" else 1


def random_params(rng, kind, D, H, dtype=np.float32):
    """Random weights with non-zero biases, so that every bias term is exercised."""
    width = {"SimpleRNN": 1, "LSTM": 4}.get(kind, 3) * H
    bias_shape = (2, width) if kind == "GRU" else (width,)
    return {
        "kernel": (rng.standard_normal((D, width)) * 0.5).astype(dtype),
        "recurrent_kernel": (rng.standard_normal((H, width)) * 0.5).astype(dtype),
        "bias": (rng.standard_normal(bias_shape) * 0.3).astype(dtype),
    }


def numpy_run(kind, x, states, p, mask=None):
    """The NumPy layer itself (no bridge): (h, c or None, cache)."""
    args = (p["kernel"], p["recurrent_kernel"], p["bias"])
    if kind == "SimpleRNN":
        h, cache = rnn_forward(x, states[0], *args, mask=mask)
        return h, None, cache
    if kind == "LSTM":
        return lstm_forward(x, states[0], states[1], *args, mask=mask)
    h, cache = gru_forward(x, states[0], *args, reset_after=(kind == "GRU"), mask=mask)
    return h, None, cache


def as_list(out):
    return list(out) if isinstance(out, (list, tuple)) else [out]


def assert_all_close(keras_out, numpy_out, atol=ATOL):
    keras_out, numpy_out = as_list(keras_out), as_list(numpy_out)
    assert len(keras_out) == len(numpy_out)
    for k, n in zip(keras_out, numpy_out):
        k = keras.ops.convert_to_numpy(k)
        assert k.shape == n.shape
        np.testing.assert_allclose(n, k, rtol=0, atol=atol)


# ------------------------------------------------------------------ weights both ways
@pytest.mark.parametrize("kind", KINDS)
def test_numpy_weights_into_keras(rng, kind):
    """NumPy -> Keras: a layer given NumPy weights computes what the NumPy layer computes."""
    p = random_params(rng, kind, D, H)
    layer = make_layer(kind, return_sequences=True)
    set_keras_weights(layer, p)  # builds the layer from the kernel's shape
    x = rng.standard_normal((N, T, D)).astype(np.float32)
    h, _, _ = numpy_run(kind, x, [np.zeros((N, H), np.float32)] * 2, p)
    assert_all_close(layer(x), h)
    # And the copy is exact: reading the weights back gives the same arrays.
    back = params_from_keras(layer)
    assert all(np.array_equal(back[k], p[k]) for k in p)


@pytest.mark.parametrize("kind", KINDS)
def test_keras_weights_into_numpy(rng, kind):
    """Keras -> NumPy: the NumPy layer with a Keras layer's own (initial) weights agrees."""
    layer = make_layer(kind, return_sequences=True, return_state=True)
    x = rng.standard_normal((N, T, D)).astype(np.float32)
    keras_out = layer(x)
    p = params_from_keras(layer)
    assert p["kernel"].dtype == np.float32
    h, c, _ = numpy_run(kind, x, [np.zeros((N, H), np.float32)] * 2, p)
    states = [h[:, -1]] + ([c[:, -1]] if kind == "LSTM" else [])
    assert_all_close(keras_out, [h, *states])


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "GRU_reset_before"])
def test_keras_defaults_match_init_helpers(kind):
    """Keras's default initial weights have the structure init_lstm/gru_params reproduce."""
    from rnncourse.gru import init_gru_params
    from rnncourse.lstm import init_lstm_params

    layer = make_layer(kind)
    layer.build((None, None, D))
    p = params_from_keras(layer)
    rng = np.random.default_rng(0)
    ours = init_lstm_params(D, H, rng) if kind == "LSTM" else init_gru_params(D, H, rng, reset_after=(kind == "GRU"))
    assert all(p[k].shape == ours[k].shape for k in p)
    np.testing.assert_array_equal(p["bias"], ours["bias"])  # zeros, and the LSTM's forget gate at 1
    np.testing.assert_allclose(p["recurrent_kernel"] @ p["recurrent_kernel"].T, np.eye(H), atol=1e-5)
    assert np.abs(p["kernel"]).max() <= np.sqrt(6 / (D + p["kernel"].shape[1]))


# ------------------------------------------------------------- outputs, configured alike
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("variant", ["plain", "initial_state", "mask", "go_backwards"])
def test_forward_agrees(rng, kind, return_sequences, variant):
    layer = make_layer(kind, return_sequences=return_sequences, return_state=True,
                       go_backwards=(variant == "go_backwards"))
    layer.build((None, None, D))
    set_keras_weights(layer, random_params(rng, kind, D, H))
    x = rng.standard_normal((N, T, D)).astype(np.float32)
    kwargs = {}
    if variant == "initial_state":
        kwargs["initial_state"] = [rng.standard_normal((N, H)).astype(np.float32) for _ in range(n_states(kind))]
    if variant in ("mask", "go_backwards"):
        kwargs["mask"] = MASK
    assert_all_close(layer(x, **kwargs), numpy_forward_like(layer, x, **kwargs))


@pytest.mark.parametrize("kind", KINDS)
def test_batch_of_one_and_single_step(rng, kind):
    layer = make_layer(kind, units=2, return_sequences=True, return_state=True)
    set_keras_weights(layer, random_params(rng, kind, 3, 2))
    x = rng.standard_normal((1, 1, 3)).astype(np.float32)
    state = [rng.standard_normal((1, 2)).astype(np.float32) for _ in range(n_states(kind))]
    assert_all_close(layer(x, initial_state=state), numpy_forward_like(layer, x, state))


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_keras_outputs_at_padded_steps(rng, kind):
    """What Keras 3 returns at padded steps with return_sequences=True, spelled out.

    The state is carried over a padded step (as in the NumPy layers), but the output there
    is the previous *output*, which starts at zero rather than at the initial state: zeros
    before a sequence's first real step, the carried state after it. With
    zero_output_for_mask=True every padded step outputs zeros.
    """
    p = random_params(rng, kind, D, H)
    x = rng.standard_normal((N, T, D)).astype(np.float32)
    states = [rng.standard_normal((N, H)).astype(np.float32) for _ in range(n_states(kind))]
    h, _, _ = numpy_run(kind, x, states, p, mask=MASK)  # carried states, never zeroed
    seen = np.logical_or.accumulate(MASK, axis=1)
    for zero_output in (False, True):
        layer = make_layer(kind, return_sequences=True, zero_output_for_mask=zero_output)
        set_keras_weights(layer, p)
        out = keras.ops.convert_to_numpy(layer(x, initial_state=states, mask=MASK))
        shows_state = MASK if zero_output else seen
        np.testing.assert_allclose(out[shows_state], h[shows_state], atol=ATOL)
        assert np.all(out[~shows_state] == 0)
        np.testing.assert_array_equal(keras_visible_steps(MASK, zero_output), shows_state)
    # Row 1 is left-padded: its first two outputs are zeros although its state is h0 != 0.
    assert np.all(h[1, :2] == states[0][1])


@pytest.mark.parametrize("merge_mode", ["concat", "sum", None])
@pytest.mark.parametrize("return_sequences", [True, False])
def test_bidirectional(rng, merge_mode, return_sequences):
    layer = keras.layers.Bidirectional(
        keras.layers.LSTM(H, return_sequences=return_sequences, return_state=True), merge_mode=merge_mode
    )
    p = {"forward": random_params(rng, "LSTM", D, H), "backward": random_params(rng, "LSTM", D, H)}
    set_keras_weights(layer, p)
    back = params_from_keras(layer)
    assert all(np.array_equal(back[d][k], p[d][k]) for d in p for k in p[d])
    x = rng.standard_normal((N, T, D)).astype(np.float32)
    state = [rng.standard_normal((N, H)).astype(np.float32) for _ in range(4)]
    for kwargs in ({}, {"mask": MASK, "initial_state": state}):
        assert_all_close(layer(x, **kwargs), numpy_forward_like(layer, x, **kwargs))


# --------------------------------------------------------------- gradients, float64
def keras_gradients(layer, x, states, mask, readout):
    """Gradients of sum(readout[i] * output_i) over everything a return_state layer returns."""
    x = tf.constant(x)
    states = [tf.constant(s) for s in states]
    cell = layer.cell
    weights = [cell.kernel, cell.recurrent_kernel, cell.bias]
    with tf.GradientTape() as tape:
        tape.watch([x, *states])
        outs = layer(x, initial_state=states, mask=mask)
        loss = sum(tf.reduce_sum(o * r) for o, r in zip(outs, readout))
    grads = tape.gradient(loss, [x, *states, *weights])
    return [g.numpy() for g in grads]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("masked", [False, True])
def test_gradients_agree_with_gradient_tape(rng, kind, return_sequences, masked):
    layer = make_layer(kind, return_sequences=return_sequences, return_state=True, dtype="float64")
    p = random_params(rng, kind, D, H, dtype=np.float64)
    set_keras_weights(layer, p)
    assert layer.cell.kernel.dtype == "float64"
    x = rng.standard_normal((N, T, D))
    states = [rng.standard_normal((N, H)) for _ in range(n_states(kind))]
    mask = MASK if masked else None
    out_shape = (N, T, H) if return_sequences else (N, H)
    readout = [rng.standard_normal(out_shape)] + [rng.standard_normal((N, H)) for _ in states]
    keras_grads = keras_gradients(layer, x, states, mask, readout)

    # The same loss in NumPy: dh is the readout wherever an output shows the state (zeros
    # where Keras outputs zeros), plus the readout of the returned final state(s).
    h, _, cache = numpy_run(kind, x, states, p, mask)
    visible = np.ones((N, T), bool) if mask is None else keras_visible_steps(mask)
    dh = np.zeros((N, T, H))
    if return_sequences:
        dh += np.where(visible[:, :, None], readout[0], 0.0)
    else:
        dh[:, -1] += np.where(visible[:, -1, None], readout[0], 0.0)
    dh[:, -1] += readout[1]
    if kind == "SimpleRNN":
        dx, dh0, *dweights = rnn_backward(dh, cache)
        numpy_grads = [dx, dh0, *dweights]
    elif kind == "LSTM":
        dx, dh0, dc0, *dweights = lstm_backward(dh, cache, dc_last=readout[2])
        numpy_grads = [dx, dh0, dc0, *dweights]
    else:
        dx, dh0, *dweights = gru_backward(dh, cache)
        numpy_grads = [dx, dh0, *dweights]

    names = ["x", "h0"] + (["c0"] if kind == "LSTM" else []) + ["kernel", "recurrent_kernel", "bias"]
    errors = {name: rel_error(n, k) for name, n, k in zip(names, numpy_grads, keras_grads)}
    assert max(errors.values()) < GRAD_TOL, errors


# ---------------------------------------------------------------- clear errors
def test_wrong_layer_type():
    with pytest.raises(ValueError, match="expected a Keras SimpleRNN, LSTM, GRU or Bidirectional layer, got Dense"):
        params_from_keras(keras.layers.Dense(3))


def test_unbuilt_layer_has_no_weights_to_read():
    with pytest.raises(ValueError, match="has no weights yet: build it first"):
        params_from_keras(keras.layers.LSTM(3))


def test_gru_reset_after_mismatch_is_named(rng):
    layer = make_layer("GRU")  # reset_after=True: bias (2, 3H)
    layer.build((None, None, D))
    p = random_params(rng, "GRU_reset_before", D, H)
    with pytest.raises(ValueError, match=r"bias must have shape \(2, 3H\) = \(2, 12\).*got shape \(12,\).*"
                                         r"reset_after=True.*belongs to a GRU with reset_after=False"):
        set_keras_weights(layer, p)
    layer = make_layer("GRU_reset_before")
    layer.build((None, None, D))
    with pytest.raises(ValueError, match=r"bias must have shape \(3H,\) = \(12,\).*belongs to a GRU with reset_after=True"):
        set_keras_weights(layer, random_params(rng, "GRU", D, H))


def test_lstm_weights_for_a_gru_are_refused_and_nothing_is_written(rng):
    layer = make_layer("GRU_reset_before")
    layer.build((None, None, D))
    before = params_from_keras(layer)
    lstm = random_params(rng, "LSTM", D, H)
    with pytest.raises(ValueError, match=r"kernel must have shape \(D, 3H\) = \(2, 12\), got shape \(2, 16\).*"
                                         r"looks like the kernel of an LSTM"):
        set_keras_weights(layer, {**lstm, "bias": before["bias"]})
    assert all(np.array_equal(before[k], v) for k, v in params_from_keras(layer).items())


def test_wrong_keys_and_shapes(rng):
    layer = make_layer("SimpleRNN")
    p = random_params(rng, "SimpleRNN", D, H)
    with pytest.raises(ValueError, match=r"missing \['bias'\], unexpected \['b'\]"):
        set_keras_weights(layer, {"kernel": p["kernel"], "recurrent_kernel": p["recurrent_kernel"], "b": p["bias"]})
    set_keras_weights(layer, p)
    with pytest.raises(ValueError, match=r"recurrent_kernel must have shape \(H, H\) = \(4, 4\), got shape \(4, 3\)"):
        set_keras_weights(layer, {**p, "recurrent_kernel": p["recurrent_kernel"][:, :3]})
    with pytest.raises(ValueError, match=r"h0 must have shape \(N, H\) = \(3, 4\), got shape \(3, 5\)"):
        numpy_forward_like(layer, np.zeros((N, T, D), np.float32), [np.zeros((N, 5), np.float32)])
    bi = keras.layers.Bidirectional(keras.layers.SimpleRNN(H))
    with pytest.raises(ValueError, match=r"keys \['forward', 'backward'\]"):
        set_keras_weights(bi, p)


def test_configurations_numpy_cannot_copy():
    layer = keras.layers.LSTM(3, recurrent_activation="hard_sigmoid")
    layer.build((None, None, 2))
    with pytest.raises(ValueError, match="recurrent_activation='hard_sigmoid'; the NumPy version needs 'tanh' and 'sigmoid'"):
        numpy_forward_like(layer, np.zeros((1, 2, 2), np.float32))
    layer = keras.layers.GRU(3, use_bias=False)
    layer.build((None, None, 2))
    with pytest.raises(ValueError, match="use_bias=False"):
        params_from_keras(layer)


def test_bidirectional_misfit_changes_neither_direction(rng):
    layer = keras.layers.Bidirectional(keras.layers.GRU(H))
    layer.build((None, None, D))
    before = params_from_keras(layer)
    good = random_params(rng, "GRU", D, H)
    with pytest.raises(ValueError, match=r"GRU layer 'backward_gru.*reset_after=True.*belongs to a GRU with reset_after=False"):
        set_keras_weights(layer, {"forward": good, "backward": random_params(rng, "GRU_reset_before", D, H)})
    after = params_from_keras(layer)
    assert all(np.array_equal(before[d][k], after[d][k]) for d in before for k in before[d])
