"""An encoder-decoder (sequence to sequence) model in Keras, with optional attention, and the
decoding procedures that run it one step at a time: greedy search and beam search.

The model, for a source sequence x (letter ids) and a target y (phoneme ids):

* encoder: an embedding and a bidirectional GRU; its outputs e_1..e_S (one vector per letter)
  and its final states, concatenated, which become the decoder's initial state;
* decoder: an embedding of the previous target symbol and a GRU, so that
  p(y_t | y_<t, x) = softmax(W o_t + b) where o_t is the decoder's output s_t (no attention)
  or, with Luong-style attention, o_t = tanh(W_c [s_t; c_t]) with the context
  c_t = sum_i a_ti e_i and weights a_t = softmax(score(s_t, e_i)) over the real letters;
  score is the dot product s_t . e_i ("dot", Luong et al. 2015) or
  v . tanh(W_q s_t + W_k e_i) ("additive", Bahdanau et al. 2015).

Training uses teacher forcing: the decoder reads the *gold* previous symbols
(`decoder_in` = <s> y_1 .. y_{T-1}) and is scored on `target` = y_1 .. y_T </s>, all steps at
once. At inference the gold symbols are unknown, so the decoder reads its own previous
output, one step at a time, through `Seq2Seq.step` (same layers, same weights).

Keep `import rnncourse` light: this module imports Keras, so import it only after
`rnncourse.repro.setup_tensorflow()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
import numpy as np
from keras import layers, ops


class Attention(layers.Layer):
    """Attention of each decoder output (query) over the encoder outputs (keys = values).

    Called on `[queries (N, T, H), keys (N, S, K), source (N, S)]`, where `source` holds the
    letter ids (0 = padding, never attended to). Returns `[context (N, T, K), weights (N, T, S)]`.
    `score="dot"` needs H == K; `score="additive"` learns W_q (H, A), W_k (K, A) and v (A,).
    """

    def __init__(self, score: str = "dot", units: int = 64, **kwargs):
        super().__init__(**kwargs)
        if score not in ("dot", "additive"):
            raise ValueError(f"score must be 'dot' or 'additive', got {score!r}")
        self.score, self.units = score, units

    def build(self, input_shape):
        q_shape, k_shape, _ = input_shape
        if self.score == "additive":
            self.w_q = self.add_weight(name="w_q", shape=(q_shape[-1], self.units), initializer="glorot_uniform")
            self.w_k = self.add_weight(name="w_k", shape=(k_shape[-1], self.units), initializer="glorot_uniform")
            self.v = self.add_weight(name="v", shape=(self.units,), initializer="glorot_uniform")
        elif q_shape[-1] != k_shape[-1]:
            raise ValueError(f"dot-product attention needs queries and keys of one size, got {q_shape[-1]} and {k_shape[-1]}")

    def call(self, inputs):
        queries, keys, source = inputs
        if self.score == "dot":
            scores = ops.einsum("nth,nsh->nts", queries, keys)
        else:
            q = ops.einsum("nth,ha->nta", queries, self.w_q)[:, :, None, :]
            k = ops.einsum("nsk,ka->nsa", keys, self.w_k)[:, None, :, :]
            scores = ops.einsum("ntsa,a->nts", ops.tanh(q + k), self.v)
        real = ops.cast(ops.not_equal(source, 0), scores.dtype)[:, None, :]
        scores = scores + (1.0 - real) * -1e9  # padding gets no weight
        weights = ops.softmax(scores, axis=-1)
        return [ops.einsum("nts,nsk->ntk", weights, keys), weights]

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {**super().get_config(), "score": self.score, "units": self.units}


@dataclass
class Seq2Seq:
    """The three Keras models of one encoder-decoder; they share their layers (and weights).

    `training`: [source (N, S), decoder_in (N, T)] -> probabilities (N, T, V), teacher forced.
    `encoder`: source -> [encoder outputs (N, S, 2U), initial decoder state (N, 2U)].
    `step`: [previous symbol (N, 1), state (N, 2U), encoder outputs, source] ->
    [probabilities (N, V), new state (N, 2U), attention weights (N, S)] (zeros without attention).
    """

    training: keras.Model
    encoder: keras.Model
    step_model: keras.Model
    attention: str | None
    calls: dict = field(default_factory=lambda: {"step calls": 0, "hypothesis steps": 0})

    def encode(self, source):
        enc_out, state = self.encoder.predict_on_batch(np.asarray(source, dtype=np.int32))
        return np.asarray(enc_out), np.asarray(state)

    def step(self, prev, state, enc_out, source):
        """One decoder step for a batch of rows; counts the calls and the rows (hypotheses)."""
        self.calls["step calls"] += 1
        self.calls["hypothesis steps"] += len(prev)
        probs, state, weights = self.step_model.predict_on_batch(
            [np.asarray(prev, dtype=np.int32).reshape(-1, 1), state, enc_out, np.asarray(source, dtype=np.int32)])
        return np.asarray(probs, dtype=np.float64), np.asarray(state), np.asarray(weights)


def build_seq2seq(n_letters: int, n_phonemes: int, units: int = 64, embed: int = 32,
                  attention: str | None = None) -> Seq2Seq:
    """An encoder-decoder: bidirectional GRU encoder (units per direction), GRU decoder (2*units).

    `attention`: None, "dot" (Luong) or "additive" (Bahdanau).
    """
    for name, v in (("n_letters", n_letters), ("n_phonemes", n_phonemes), ("units", units), ("embed", embed)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    if attention not in (None, "dot", "additive"):
        raise ValueError(f"attention must be None, 'dot' or 'additive', got {attention!r}")
    h = 2 * units
    # layers shared by the three models
    letter_embedding = layers.Embedding(n_letters, embed, mask_zero=True, name="letter_embedding")
    encoder_rnn = layers.Bidirectional(layers.GRU(units, return_sequences=True, return_state=True), name="encoder")
    phoneme_embedding = layers.Embedding(n_phonemes, embed, name="phoneme_embedding")
    decoder_rnn = layers.GRU(h, return_sequences=True, return_state=True, name="decoder")
    attend = Attention(attention, name="attention") if attention else None
    combine = layers.Dense(h, activation="tanh", name="combine") if attention else None
    readout = layers.Dense(n_phonemes, activation="softmax", name="readout")

    def encode(source):
        enc_out, h_fwd, h_bwd = encoder_rnn(letter_embedding(source))
        return enc_out, layers.Concatenate(name="initial_state")([h_fwd, h_bwd])

    def decode(prev, state, enc_out, source):
        out, new_state = decoder_rnn(phoneme_embedding(prev), initial_state=state)
        if attend is None:
            return readout(out), new_state, None
        context, weights = attend([out, enc_out, source])
        return readout(combine(layers.Concatenate()([out, context]))), new_state, weights

    source = keras.Input((None,), dtype="int32", name="source")
    decoder_in = keras.Input((None,), dtype="int32", name="decoder_in")
    enc_out, state = encode(source)
    probs, _, _ = decode(decoder_in, state, enc_out, source)
    training = keras.Model([source, decoder_in], probs, name="seq2seq" + (f"_{attention}" if attention else ""))
    encoder = keras.Model(source, [enc_out, state], name="encoder_model")

    prev = keras.Input((1,), dtype="int32", name="previous")
    state_in = keras.Input((h,), name="state")
    enc_in = keras.Input((None, h), name="encoder_outputs")
    src_in = keras.Input((None,), dtype="int32", name="source_ids")
    p, new_state, w = decode(prev, state_in, enc_in, src_in)
    p = layers.Reshape((n_phonemes,))(p)
    w = layers.Reshape((-1,))(w) if w is not None else layers.Lambda(
        lambda s: ops.zeros_like(ops.cast(s, "float32")))(src_in)
    step_model = keras.Model([prev, state_in, enc_in, src_in], [p, new_state, w], name="decoder_step")
    return Seq2Seq(training, encoder, step_model, attention)


# ------------------------------------------------------------------------------ decoding


def greedy_decode(model: Seq2Seq, source, start: int, end: int, max_len: int):
    """Feed the decoder its own most probable symbol, step by step.

    Returns (tokens (N, max_len) int, with 0 after the end marker; attention weights
    (N, max_len, S)). A row stops when it emits `end` (which is not kept in `tokens`).
    """
    source = np.asarray(source, dtype=np.int32)
    n = len(source)
    enc_out, state = model.encode(source)
    prev = np.full(n, start, dtype=np.int32)
    tokens = np.zeros((n, max_len), dtype=np.int32)
    weights = np.zeros((n, max_len, source.shape[1]))
    alive = np.ones(n, dtype=bool)
    for t in range(max_len):
        probs, state, w = model.step(prev, state, enc_out, source)
        prev = probs.argmax(axis=1).astype(np.int32)
        weights[:, t] = w
        alive &= prev != end
        tokens[alive, t] = prev[alive]
        if not alive.any():
            break
    return tokens, weights


def beam_search(model: Seq2Seq, source, start: int, end: int, max_len: int, width: int):
    """Keep the `width` most probable prefixes (by summed log-probability) of every word.

    All words are searched together: a batch of N words becomes N * width decoder rows. A
    hypothesis that has emitted `end` is finished: it keeps its score and takes part in the
    ranking unchanged. Returns (tokens (N, max_len), the best hypothesis's log-probability (N,)).
    No length normalisation: with the end marker scored, short and long outputs compete on
    their total probability.
    """
    if not isinstance(width, int) or isinstance(width, bool) or width < 1:
        raise ValueError(f"width must be a positive int, got {width!r}")
    source = np.asarray(source, dtype=np.int32)
    n, k = len(source), width
    enc_out, state = model.encode(source)
    enc_out, state, src = (np.repeat(a, k, axis=0) for a in (enc_out, state, source))
    scores = np.full((n, k), -np.inf)
    scores[:, 0] = 0.0  # at first all beams hold the same prefix: keep one of them
    seqs = np.zeros((n, k, max_len), dtype=np.int32)
    prev = np.full(n * k, start, dtype=np.int32)
    finished = np.zeros((n, k), dtype=bool)
    for t in range(max_len):
        probs, new_state, _ = model.step(prev, state, enc_out, src)
        v = probs.shape[1]
        with np.errstate(divide="ignore"):
            logp = np.log(probs).reshape(n, k, v)
        # a finished hypothesis extends only by padding (id 0), at no cost
        logp[finished] = -np.inf
        logp[finished, 0] = 0.0
        total = (scores[:, :, None] + logp).reshape(n, k * v)
        best = np.argsort(-total, axis=1, kind="stable")[:, :k]
        beam, token = best // v, best % v
        scores = np.take_along_axis(total, best, axis=1)
        rows = (np.arange(n)[:, None] * k + beam).reshape(-1)
        seqs = np.take_along_axis(seqs, beam[:, :, None], axis=1)
        was_finished = np.take_along_axis(finished, beam, axis=1)
        finished = was_finished | (token == end)
        seqs[:, :, t] = np.where(finished, 0, token)
        state = np.asarray(new_state)[rows]
        prev = token.reshape(-1).astype(np.int32)
        if finished.all():
            break
    top = scores.argmax(axis=1)
    return seqs[np.arange(n), top], scores[np.arange(n), top]


def teacher_forced_predictions(model: Seq2Seq, source, decoder_in) -> np.ndarray:
    """The decoder's most probable symbol at each step when it reads the GOLD prefix: (N, T)."""
    probs = model.training.predict_on_batch([np.asarray(source, dtype=np.int32), np.asarray(decoder_in, dtype=np.int32)])
    return np.asarray(probs).argmax(axis=-1)


# ------------------------------------------------------------------------------ training


def masked_scores(probs, target) -> tuple[float, float]:
    """Mean cross-entropy and token accuracy over the real (non-padding) target positions."""
    probs, target = np.asarray(probs, dtype=np.float64), np.asarray(target)
    real = target != 0
    p = np.take_along_axis(probs, target[..., None], axis=-1)[..., 0]
    loss = float(-np.log(np.maximum(p[real], 1e-12)).mean())
    return loss, float((probs.argmax(-1) == target)[real].mean())


def train_seq2seq(model: Seq2Seq, train, val, epochs: int, batch_size: int = 128, learning_rate: float = 3e-3,
                  seed: int = 0, on_epoch=None):
    """Teacher-forced training for a FIXED number of epochs, one `train_on_batch` per batch.

    `train`, `val`: G2PArrays (rnncourse.data.cmudict). Batches are drawn in an order shuffled
    by a NumPy generator seeded with `seed`. After each epoch `on_epoch(epoch, history)` is
    called if given. Returns the history: per epoch, the mean training loss and the validation
    loss and token accuracy (teacher forced).
    """
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    model.training.compile(optimizer=keras.optimizers.Adam(learning_rate),
                           loss=keras.losses.SparseCategoricalCrossentropy(ignore_class=0))
    rng = np.random.default_rng(seed)
    history = {"epoch": [], "train loss": [], "val loss": [], "val token accuracy": []}
    n = len(train.source)
    for epoch in range(1, epochs + 1):
        order = rng.permutation(n)
        losses, weights = [], []
        for i in range(0, n, batch_size):
            idx = order[i:i + batch_size]
            loss = model.training.train_on_batch([train.source[idx], train.decoder_in[idx]], train.target[idx])
            losses.append(float(np.asarray(loss).reshape(-1)[0]))
            weights.append(int((train.target[idx] != 0).sum()))
        probs = model.training.predict_on_batch([val.source, val.decoder_in])
        val_loss, val_acc = masked_scores(probs, val.target)
        history["epoch"].append(epoch)
        history["train loss"].append(float(np.average(losses, weights=weights)))
        history["val loss"].append(val_loss)
        history["val token accuracy"].append(val_acc)
        if on_epoch is not None:
            on_epoch(epoch, history)
    return history
