"""Between the NumPy layers and Keras 3: move weights both ways, and run a Keras layer in NumPy.

The NumPy layers (`rnncourse.rnn`, `rnncourse.lstm`, `rnncourse.gru`) keep their weights in
a dict {"kernel", "recurrent_kernel", "bias"} laid out exactly as the Keras layers
`SimpleRNN`, `LSTM` and `GRU` keep theirs, so moving weights is a copy, with checks:

    params = params_from_keras(layer)        # Keras -> NumPy
    set_keras_weights(layer, params)         # NumPy -> Keras

A `Bidirectional` wrapper holds two such layers; its parameters are the nested dict
{"forward": {...}, "backward": {...}}.

`numpy_forward_like(layer, x)` runs the NumPy layer configured like a Keras one and returns
what the Keras layer returns, so the two can be compared number for number.

What Keras returns at padded steps (a `mask` with False entries), with return_sequences=True.
On the CPU (the generic loop in keras/src/backend/tensorflow/rnn.py), the *state* is carried
over a padded step, as in the NumPy layers, but the *output* there is the previous step's
output, and the "previous output" before step 0 is zeros, not the initial state. So the
output at a padded step is the carried state once the sequence has had a real step, and
zeros before that; the two differ only for left padding with a non-zero initial state.
With zero_output_for_mask=True (which `Bidirectional` forces on its two layers when they
return sequences) padded steps output zeros. `keras_visible_steps` computes which outputs
show the state. (Keras's cuDNN kernel, used on a GPU, also writes zeros at padded steps and
accepts only right padding; this module follows the CPU loop.)

TensorFlow and Keras are imported inside the functions, so `import rnncourse` stays light.
"""

from __future__ import annotations

import numpy as np

from .activations import ACTIVATIONS
from .gru import gru_forward
from .lstm import lstm_forward
from .rnn import rnn_forward
from .validation import check, check_finite, check_float_array, check_mask

PARAM_NAMES = ("kernel", "recurrent_kernel", "bias")
GATE_BLOCKS = {"SimpleRNN": 1, "GRU": 3, "LSTM": 4}  # how many H-wide blocks of columns


# ---------------------------------------------------------------- which layer is this?
def _kind(layer) -> str:
    """"SimpleRNN", "LSTM", "GRU" or "Bidirectional"; a ValueError for anything else."""
    import keras

    for name in ("Bidirectional", "LSTM", "GRU", "SimpleRNN"):
        if isinstance(layer, getattr(keras.layers, name)):
            return name
    raise ValueError(
        f"expected a Keras SimpleRNN, LSTM, GRU or Bidirectional layer, got {type(layer).__name__}"
    )


def _describe(layer) -> str:
    return f"{type(layer).__name__} layer {layer.name!r}"


def _check_usable(layer) -> None:
    """Refuse configurations the NumPy layers do not have."""
    if not layer.built:
        raise ValueError(
            f"{_describe(layer)} has no weights yet: build it first, for example by calling it on "
            f"a batch or with layer.build((None, None, input_dim))"
        )
    if not layer.cell.use_bias:
        raise ValueError(f"{_describe(layer)} has use_bias=False; the NumPy layers always have a bias")


def _weight_spec(layer) -> tuple[dict, dict]:
    """The expected shape of each weight of a built layer, as named specs and their sizes."""
    kind = _kind(layer)
    cell = layer.cell
    H = cell.units
    D = cell.kernel.shape[0]
    blocks = GATE_BLOCKS[kind]
    wide = "H" if blocks == 1 else f"{blocks}H"  # "H", "3H" or "4H", as in the docstrings
    sizes = {"D": D, "H": H, wide: blocks * H}
    bias = (2, wide) if kind == "GRU" and cell.reset_after else (wide,)
    return {"kernel": ("D", wide), "recurrent_kernel": ("H", wide), "bias": bias}, sizes


# ----------------------------------------------------------------------- Keras -> NumPy
def params_from_keras(layer) -> dict:
    """Copy the weights of a built Keras layer into a NumPy param dict.

    SimpleRNN, LSTM, GRU: {"kernel", "recurrent_kernel", "bias"}, in the dtype of the
    layer's variables. Bidirectional: {"forward": {...}, "backward": {...}}.
    """
    if _kind(layer) == "Bidirectional":
        return {"forward": params_from_keras(layer.forward_layer),
                "backward": params_from_keras(layer.backward_layer)}
    _check_usable(layer)
    # Variable.numpy() rather than np.asarray(variable), which NumPy 2 warns about for Keras
    # and TensorFlow variables; np.array copies, so the dict stays put when the layer trains on.
    return {name: np.array(getattr(layer.cell, name).numpy()) for name in PARAM_NAMES}


# ----------------------------------------------------------------------- NumPy -> Keras
def set_keras_weights(layer, params: dict) -> None:
    """Copy a NumPy param dict into a Keras layer, checking every shape first.

    An unbuilt layer is built for the input size the kernel implies. Values are cast to the
    dtype of the layer's variables (usually float32). Raises ValueError, naming the expected
    shape, when the dict does not fit the layer: a missing or extra key, an LSTM's weights
    for a GRU, or a GRU bias of the other `reset_after` form.
    """
    # Check everything before assigning anything, so that a misfit leaves the layer as it was.
    for variable, value in _checked_assignments(layer, params):
        variable.assign(np.asarray(value, dtype=variable.dtype))


def _checked_assignments(layer, params) -> list:
    """[(Keras variable, NumPy value), ...] for every weight, once all of them fit."""
    if _kind(layer) == "Bidirectional":
        _check_keys(layer, params, ("forward", "backward"))
        if not layer.built:
            layer.build((None, None, _input_dim(params["forward"])))
        return (_checked_assignments(layer.forward_layer, params["forward"])
                + _checked_assignments(layer.backward_layer, params["backward"]))
    _check_keys(layer, params, PARAM_NAMES)
    if not layer.built:
        layer.build((None, None, _input_dim(params)))
    _check_usable(layer)
    specs, sizes = _weight_spec(layer)
    for name in PARAM_NAMES:
        try:
            check(name, params[name], specs[name], sizes)
        except ValueError as err:
            where = f"for {_describe(layer)} ({_config_words(layer)})"
            raise ValueError(f"{err}, {where}{_hint(layer, name, params[name])}") from None
    check_finite(**{name: params[name] for name in PARAM_NAMES})
    return [(getattr(layer.cell, name), params[name]) for name in PARAM_NAMES]


def _check_keys(layer, params, expected) -> None:
    if not isinstance(params, dict):
        raise TypeError(f"params for {_describe(layer)} must be a dict, got {type(params).__name__}")
    missing, extra = set(expected) - set(params), set(params) - set(expected)
    if missing or extra:
        raise ValueError(
            f"params for {_describe(layer)} must have exactly the keys {list(expected)}; "
            f"missing {sorted(missing)}, unexpected {sorted(extra)}"
        )


def _input_dim(params: dict) -> int:
    kernel = check_float_array("kernel", params["kernel"])
    if kernel.ndim != 2:
        raise ValueError(f"kernel must have shape (D, units * gates) (2 dimensions), got shape {kernel.shape}")
    return kernel.shape[0]


def _config_words(layer) -> str:
    words = f"units={layer.cell.units}, input dim {layer.cell.kernel.shape[0]}"
    if _kind(layer) == "GRU":
        words += f", reset_after={layer.cell.reset_after}"
    return words


def _hint(layer, name: str, value: np.ndarray) -> str:
    """A guess at the cause of a misfit, for the two mistakes that are easy to make."""
    kind, H = _kind(layer), layer.cell.units
    if name == "bias" and kind == "GRU":
        other = (3 * H,) if layer.cell.reset_after else (2, 3 * H)
        if value.shape == other:
            return f"; a bias of shape {other} belongs to a GRU with reset_after={not layer.cell.reset_after}"
    if name in ("kernel", "recurrent_kernel") and value.ndim == 2:
        for other_kind, blocks in GATE_BLOCKS.items():
            if other_kind != kind and value.shape[1] == blocks * H:
                article = "an" if other_kind == "LSTM" else "a"
                return f"; {blocks} x {H} columns looks like the {name} of {article} {other_kind}"
    return ""


# ------------------------------------------------------------- run a Keras layer in NumPy
def keras_visible_steps(mask, zero_output_for_mask: bool = False) -> np.ndarray:
    """(N, T) booleans: where a Keras RNN's output sequence shows the (carried) state.

    Elsewhere Keras outputs zeros: at padded steps before a sequence's first real step
    (the "previous output" Keras carries starts at zero), and, with zero_output_for_mask,
    at every padded step.
    """
    mask = check_mask(mask, {})
    if zero_output_for_mask:
        return mask
    return np.logical_or.accumulate(mask, axis=1)  # True from the first real step on


def numpy_forward_like(layer, x, initial_state=None, mask=None):
    """Run the NumPy layer configured like `layer`, with its weights; return what it returns.

    x (N, T, D); initial_state a list of (N, H) arrays as Keras takes them ([h0] for
    SimpleRNN and GRU, [h0, c0] for LSTM, forward then backward states for Bidirectional),
    zeros if None; mask (N, T) booleans. Honours return_sequences, return_state,
    go_backwards, zero_output_for_mask and a Bidirectional merge_mode. Computes in the dtype
    of x. Returns the output array, or a tuple (output, *states) with return_state=True.
    """
    kind = _kind(layer)
    sizes = check("x", x, ("N", "T", "D"), {})
    mask = check_mask(mask, sizes)
    if kind == "Bidirectional":
        return _bidirectional_like(layer, x, initial_state, mask)
    _check_usable(layer)
    if layer.stateful:
        raise ValueError(f"{_describe(layer)} is stateful; pass its states as initial_state and use a stateless layer")
    params = {k: v.astype(x.dtype) for k, v in params_from_keras(layer).items()}
    n_states = 2 if kind == "LSTM" else 1
    states = _initial_states(layer, initial_state, n_states, x.shape[0], x.dtype)
    if layer.go_backwards:
        # Keras reads the sequence from the end and returns outputs in the order it read them.
        x = x[:, ::-1]
        mask = None if mask is None else mask[:, ::-1]
    args = (params["kernel"], params["recurrent_kernel"], params["bias"])
    if kind == "SimpleRNN":
        h, _ = rnn_forward(x, *states, *args, activation=_simple_rnn_activation(layer), mask=mask)
        final = [h[:, -1]]
    elif kind == "LSTM":
        _require_tanh_sigmoid(layer)
        h, c, _ = lstm_forward(x, *states, *args, mask=mask)
        final = [h[:, -1], c[:, -1]]
    else:
        _require_tanh_sigmoid(layer)
        h, _ = gru_forward(x, *states, *args, reset_after=bool(layer.cell.reset_after), mask=mask)
        final = [h[:, -1]]
    if mask is not None:
        h = np.where(keras_visible_steps(mask, layer.zero_output_for_mask)[:, :, None], h, 0.0)
    output = h if layer.return_sequences else h[:, -1]
    return (output, *final) if layer.return_state else output


def _bidirectional_like(layer, x, initial_state, mask):
    forward_state = backward_state = None
    if initial_state is not None:
        half = len(initial_state) // 2
        forward_state, backward_state = initial_state[:half], initial_state[half:]
    y = numpy_forward_like(layer.forward_layer, x, forward_state, mask)
    y_rev = numpy_forward_like(layer.backward_layer, x, backward_state, mask)
    states = ()
    if layer.return_state:
        states = tuple(y[1:]) + tuple(y_rev[1:])
        y, y_rev = y[0], y_rev[0]
    if layer.return_sequences:
        y_rev = y_rev[:, ::-1]  # back into the forward time order
    merge = {
        "concat": lambda: np.concatenate([y, y_rev], axis=-1),
        "sum": lambda: y + y_rev,
        "ave": lambda: (y + y_rev) / 2,
        "mul": lambda: y * y_rev,
        None: lambda: (y, y_rev),
    }[layer.merge_mode]()
    if not layer.return_state:
        return merge
    return (*merge, *states) if layer.merge_mode is None else (merge, *states)


def _initial_states(layer, initial_state, n_states, N, dtype) -> list:
    H = layer.cell.units
    if initial_state is None:
        return [np.zeros((N, H), dtype=dtype) for _ in range(n_states)]
    if isinstance(initial_state, np.ndarray):
        initial_state = [initial_state]
    if len(initial_state) != n_states:
        raise ValueError(f"{_describe(layer)} takes {n_states} initial state(s), got {len(initial_state)}")
    names = ["h0", "c0"][:n_states]
    for name, state in zip(names, initial_state):
        check(name, state, ("N", "H"), {"N": N, "H": H})
    return [np.asarray(s, dtype=dtype) for s in initial_state]


def _activation_name(layer, attribute: str):
    """The name Keras serialises the cell's activation to: "tanh", "sigmoid", ... (or a dict)."""
    import keras

    return keras.activations.serialize(getattr(layer.cell, attribute))


def _simple_rnn_activation(layer) -> str:
    name = _activation_name(layer, "activation")
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(f"{_describe(layer)} uses activation={name!r}; the NumPy RNN knows {sorted(ACTIVATIONS)}")
    return name


def _require_tanh_sigmoid(layer) -> None:
    """The NumPy LSTM and GRU hard-wire Keras's defaults: tanh, and sigmoid for the gates."""
    got = (_activation_name(layer, "activation"), _activation_name(layer, "recurrent_activation"))
    if got != ("tanh", "sigmoid"):
        raise ValueError(
            f"{_describe(layer)} uses activation={got[0]!r}, recurrent_activation={got[1]!r}; "
            f"the NumPy version needs 'tanh' and 'sigmoid'"
        )
