"""A character-level LSTM language model in Keras: training with the state carried across
batches, scoring in bits per character, and generation with a temperature.

Two models share one set of weights:

* the *training* model, `build_char_lm(..., stateful=True)`: ids (N, T) -> logits (N, T, V),
  a target at every step. With `stateful=True` Keras keeps each row's final (h, c) and starts
  the next batch's row from it, so row b of batch k+1 must continue row b of batch k: that is
  what `stream_arrays` arranges (the same streams as chapter 3's `stream_batches`).
* the *state-passing* model, `build_state_model`: (ids, h0, c0) -> (logits, h, c). The state
  is an explicit input and output, so scoring and generation decide themselves whether to
  carry it (`score_stream`, `generate`).

Import this module only after `rnncourse.repro.setup_tensorflow()`.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from ..data.shakespeare import stream_batches
from ..progress import Progress
from ..sampling import cross_entropy_nats, entropy_bits, sample_inverse_cdf, temperature_probs


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def build_char_lm(vocab_size: int, units: int = 256, embedding_dim: int = 32, batch_size: int | None = None,
                  stateful: bool = False) -> keras.Model:
    """Embedding -> LSTM(return_sequences=True) -> Dense(V): logits for the next character at every step.

    A stateful model needs a fixed `batch_size` (Keras keeps one state per row).
    """
    vocab_size, units, embedding_dim = (_positive_int(n, v) for n, v in
                                        (("vocab_size", vocab_size), ("units", units), ("embedding_dim", embedding_dim)))
    if stateful and batch_size is None:
        raise ValueError("a stateful model keeps one state per row, so it needs a fixed batch_size; got None")
    if batch_size is not None:
        batch_size = _positive_int("batch_size", batch_size)
    ids = keras.Input(batch_shape=(batch_size, None), dtype="int32", name="ids")
    x = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")(ids)
    x = keras.layers.LSTM(units, return_sequences=True, stateful=stateful, name="lstm")(x)
    logits = keras.layers.Dense(vocab_size, name="logits")(x)
    return keras.Model(ids, logits, name="char_lstm")


def build_state_model(vocab_size: int, units: int = 256, embedding_dim: int = 32) -> keras.Model:
    """The same network with its state passed explicitly: (ids, h0, c0) -> (logits, h, c)."""
    vocab_size, units, embedding_dim = (_positive_int(n, v) for n, v in
                                        (("vocab_size", vocab_size), ("units", units), ("embedding_dim", embedding_dim)))
    ids = keras.Input((None,), dtype="int32", name="ids")
    h0, c0 = keras.Input((units,), name="h0"), keras.Input((units,), name="c0")
    x = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")(ids)
    x, h, c = keras.layers.LSTM(units, return_sequences=True, return_state=True, name="lstm")(x, initial_state=[h0, c0])
    logits = keras.layers.Dense(vocab_size, name="logits")(x)
    return keras.Model([ids, h0, c0], [logits, h, c], name="char_lstm_state")


def copy_weights(source: keras.Model, target: keras.Model) -> None:
    """Give `target` the weights of `source` (same layers, in the same order)."""
    src, dst = source.get_weights(), target.get_weights()
    shapes = [w.shape for w in src], [w.shape for w in dst]
    if shapes[0] != shapes[1]:
        raise ValueError(f"the two models' weights differ: {shapes[0]} vs {shapes[1]}")
    target.set_weights(src)


def reset_state(model: keras.Model) -> None:
    """Zero the carried state of every stateful recurrent layer (the start of a pass over the text)."""
    for layer in model.layers:
        if getattr(layer, "stateful", False):
            layer.reset_state()


def stream_arrays(ids: np.ndarray, batch_size: int, seq_len: int, steps: int | None = None):
    """The windows of `stream_batches` stacked in order, for `model.fit(..., shuffle=False)`.

    Returns inputs and targets of shape (steps * batch_size, seq_len): rows k*B .. k*B+B-1 are
    batch k, and row b of batch k+1 continues row b of batch k, which is what a stateful layer
    assumes. `steps=None` takes one whole pass over the text.
    """
    windows = []
    for step, batch in enumerate(stream_batches(ids, batch_size, seq_len)):
        if steps is not None and step >= steps:
            break
        windows.append(batch)
    if steps is not None and len(windows) < steps:
        raise ValueError(f"the text gives only {len(windows)} batches of {batch_size} x {seq_len}, fewer than steps={steps}")
    inputs = np.concatenate([w[0] for w in windows]).astype(np.int32)
    targets = np.concatenate([w[1] for w in windows]).astype(np.int32)
    return inputs, targets


def train_stateful(model: keras.Model, inputs: np.ndarray, targets: np.ndarray, batch_size: int,
                   segments: int = 10, reset_each_segment: bool = False) -> list[float]:
    """One pass over the stacked windows, in order, with the state carried from batch to batch.

    The pass is cut into `segments` calls of `fit`; each prints one progress line (batches and
    characters processed so far, the same on every CPU). The mean training loss of each segment
    is returned, not printed: it differs slightly between CPUs, so show it with a tolerance.

    The state starts at zeros; with reset_each_segment=True it is set to zeros again before
    every segment, so that the network also learns to start from a zero state in the middle of
    its streams, as evaluation and generation start it (chapter 8 shows a seed that did not).
    """
    batch_size = _positive_int("batch_size", batch_size)
    rows = len(inputs)
    if rows % batch_size or inputs.shape != targets.shape:
        raise ValueError(f"inputs and targets must have the same shape with a multiple of batch_size={batch_size} "
                         f"rows, got {inputs.shape} and {targets.shape}")
    steps = rows // batch_size
    if steps % segments:
        raise ValueError(f"the {steps} batches must split evenly into segments={segments}")
    per = steps // segments
    progress = Progress(steps, lines=segments)
    reset_state(model)
    losses = []
    for k in range(segments):
        if reset_each_segment and k:
            reset_state(model)
        part = slice(k * per * batch_size, (k + 1) * per * batch_size)
        history = model.fit(inputs[part], targets[part], batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
        losses.append(float(history.history["loss"][-1]))
        progress.update((k + 1) * per, characters=f"{(k + 1) * per * batch_size * inputs.shape[1]:,}")
    return losses


def zero_state(batch_size: int, units: int):
    return np.zeros((batch_size, units), np.float32), np.zeros((batch_size, units), np.float32)


@dataclass(frozen=True)
class StreamScore:
    """How well a model predicted a held-out stream.

    nats_by_position[t]: mean cross-entropy (nats) at position t of the windows (T = 1);
    cross_entropy[T] (nats) and entropy[T] (bits): means over every scored character, with
    the logits divided by the temperature T.
    """

    nats_by_position: np.ndarray
    cross_entropy: dict
    entropy: dict
    characters: int

    @property
    def nats(self) -> float:
        return float(self.nats_by_position.mean())


def score_stream(state_model: keras.Model, ids: np.ndarray, batch_size: int = 16, seq_len: int = 100,
                 carry_state: bool = True, temperatures=(1.0,)) -> StreamScore:
    """Score every target of `stream_batches(ids, batch_size, seq_len)` in float64.

    With `carry_state=True` each window starts from the state the previous window of its row
    ended in; with `carry_state=False` every window starts from zeros, so its first characters
    are predicted with no context at all.
    """
    units = state_model.get_layer("lstm").units
    temperatures = tuple(float(t) for t in temperatures)
    if 1.0 not in temperatures:
        temperatures = (1.0,) + temperatures
    by_position = np.zeros(seq_len)
    cross = dict.fromkeys(temperatures, 0.0)
    entropy = dict.fromkeys(temperatures, 0.0)
    h, c = zero_state(batch_size, units)
    windows = 0
    for inputs, targets in stream_batches(ids, batch_size, seq_len):
        if not carry_state:
            h, c = zero_state(batch_size, units)
        logits, h, c = state_model.predict_on_batch([inputs.astype(np.int32), h, c])
        logits = np.asarray(logits, dtype=np.float64)
        for t in temperatures:
            nll = cross_entropy_nats(logits, targets, t)
            cross[t] += float(nll.sum())
            entropy[t] += float(entropy_bits(logits, t).sum())
            if t == 1.0:
                by_position += nll.sum(axis=0)
        windows += 1
    count = windows * batch_size * seq_len
    return StreamScore(by_position / (windows * batch_size), {t: v / count for t, v in cross.items()},
                       {t: v / count for t, v in entropy.items()}, count)


def generate(state_model: keras.Model, prompt_ids, length: int, temperatures, seed: int = 0,
             carry_state: bool = True):
    """Continue one prompt at several temperatures at once, one row per temperature.

    Every row draws its uniforms from its own `numpy.random.default_rng(seed)`, so all rows use
    the same random numbers and differ only by their temperature. Probabilities are computed in
    float64 from the model's logits. Returns (ids (R, length), entropy in bits of each step's
    tempered distribution (R, length)). `carry_state=False` restarts every step from a zero
    state (the bug of a generation loop that drops the state it is given back).
    """
    length = _positive_int("length", length)
    temperatures = [float(t) for t in temperatures]
    prompt_ids = np.asarray(prompt_ids)
    if prompt_ids.ndim != 1 or len(prompt_ids) < 1:
        raise ValueError(f"prompt_ids must be a non-empty 1-D array of ids, got shape {prompt_ids.shape}")
    rows, units = len(temperatures), state_model.get_layer("lstm").units
    rngs = [np.random.default_rng(seed) for _ in temperatures]
    x = np.repeat(prompt_ids[None, :].astype(np.int32), rows, axis=0)
    h, c = zero_state(rows, units)
    logits, h, c = state_model.predict_on_batch([x, h, c])
    out = np.zeros((rows, length), dtype=np.int64)
    entropies = np.zeros((rows, length))
    for step in range(length):
        last = np.asarray(logits, dtype=np.float64)[:, -1]
        probs = np.stack([temperature_probs(last[r], t) for r, t in enumerate(temperatures)])
        entropies[:, step] = [entropy_bits(last[r], t) for r, t in enumerate(temperatures)]
        out[:, step] = sample_inverse_cdf(probs, np.array([g.random() for g in rngs]))
        if not carry_state:
            h, c = zero_state(rows, units)
        logits, h, c = state_model.predict_on_batch([out[:, step: step + 1].astype(np.int32), h, c])
    return out, entropies
