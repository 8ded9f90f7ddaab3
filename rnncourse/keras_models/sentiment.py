"""Recurrent sentiment classifiers (chapter 7): Embedding -> recurrent layer -> Dense(1, sigmoid).

Import only after `rnncourse.repro.setup_tensorflow()` (it imports Keras).

    build_classifier  the models of the chapter, with padding masked by the Embedding layer
    MaskedMeanMax     pooling over states: the average and the maximum over the real steps
    LengthBatches     batches of reviews of similar length, each cut to its longest review
    fit_select        a fixed number of epochs, keeping the weights of the best validation epoch
    predict_proba     P(positive) for a padded integer matrix, in batches, through a compiled graph
"""

from __future__ import annotations

import weakref

import numpy as np
import keras

KINDS = ("simple_rnn", "lstm", "gru", "bilstm", "bigru")
POOLINGS = ("last", "mean", "mean_max")


def _recurrent(kind, units, dropout, recurrent_dropout, return_sequences):
    kw = dict(dropout=dropout, recurrent_dropout=recurrent_dropout, return_sequences=return_sequences)
    if kind == "simple_rnn":
        return keras.layers.SimpleRNN(units, **kw)
    if kind == "lstm":
        return keras.layers.LSTM(units, **kw)
    if kind == "gru":
        return keras.layers.GRU(units, **kw)
    if kind == "bilstm":
        return keras.layers.Bidirectional(keras.layers.LSTM(units, **kw))
    return keras.layers.Bidirectional(keras.layers.GRU(units, **kw))


def build_classifier(kind: str, vocab_size: int, embed_dim: int = 32, units: int = 32, dropout: float = 0.0,
                     recurrent_dropout: float = 0.0, mask: bool = True, pooling: str = "last",
                     name: str | None = None) -> keras.Model:
    """Embedding(vocab_size, embed_dim, mask_zero=mask) -> recurrent layer -> Dense(1, sigmoid).

    `kind`: "simple_rnn", "lstm", "gru", "bilstm" (Bidirectional LSTM), "bigru".
    `pooling`: "last" classifies from the final state (the last REAL step when masked);
    "mean" averages the states of all real steps (return_sequences=True, then a masked
    GlobalAveragePooling1D); "mean_max" concatenates that average with the elementwise maximum
    over the real steps (`MaskedMeanMax`). With `mask=True`, index 0 is padding and takes no part.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    for arg, v in (("vocab_size", vocab_size), ("embed_dim", embed_dim), ("units", units)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{arg} must be a positive int, got {v!r}")
    for arg, v in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
        if not (isinstance(v, (int, float)) and 0 <= v < 1):
            raise ValueError(f"{arg} must be a number in [0, 1), got {v!r}")
    layers = [keras.Input((None,), dtype="int32"), keras.layers.Embedding(vocab_size, embed_dim, mask_zero=mask),
              _recurrent(kind, units, dropout, recurrent_dropout, pooling != "last")]
    if pooling == "mean":
        layers.append(keras.layers.GlobalAveragePooling1D())
    elif pooling == "mean_max":
        layers.append(MaskedMeanMax())
    layers.append(keras.layers.Dense(1, activation="sigmoid"))
    return keras.Sequential(layers, name=name)


class MaskedMeanMax(keras.layers.Layer):
    """(batch, steps, features) -> (batch, 2 * features): the average of the states of the real
    (unmasked) steps, then their elementwise maximum. Padded steps take no part in either, so
    the result does not depend on how much padding follows a review (Keras's own
    GlobalMaxPooling1D ignores the mask). A row with no real step gives zeros."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        ops = keras.ops
        if mask is None:
            mask = ops.ones(ops.shape(inputs)[:2], dtype="bool")
        real = ops.expand_dims(ops.cast(mask, "bool"), -1)
        count = ops.sum(ops.cast(real, inputs.dtype), axis=1)
        mean = ops.sum(ops.where(real, inputs, 0.0), axis=1) / ops.maximum(count, 1.0)
        top = ops.max(ops.where(real, inputs, -1e9), axis=1)
        return ops.concatenate([mean, ops.where(count > 0, top, 0.0)], axis=-1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 2 * input_shape[2])


def real_lengths(X) -> np.ndarray:
    """The number of steps up to and including the last non-zero index of each row of a
    post-padded matrix (0 for an all-padding row)."""
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D matrix of token indices (examples, steps), got shape {X.shape}")
    return np.where(X != 0, np.arange(1, X.shape[1] + 1), 0).max(axis=1, initial=0)


class LengthBatches(keras.utils.PyDataset):
    """Training batches of reviews of similar length, each cut to its longest review.

    Post-padded rows of a 400-step matrix are mostly padding (a median review has under 200
    words), and a recurrent layer pays for every step, padded or not. Each epoch the rows are
    shuffled (NumPy generator seeded by `seed`), cut into chunks of `chunk` batches, sorted by
    length within each chunk and batched, and the batches are shuffled; each batch keeps only
    the columns up to its longest review. With the padding masked this changes the cost, not
    what the network computes. `shuffle=False` (for evaluation) batches all rows in order of
    length, the same every epoch.
    """

    def __init__(self, X, y, batch_size: int, seed: int = 0, chunk: int = 20, shuffle: bool = True):
        super().__init__()
        for arg, v in (("batch_size", batch_size), ("chunk", chunk)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{arg} must be a positive int, got {v!r}")
        self.X, self.y = np.asarray(X), np.asarray(y, dtype="float32")
        if len(self.X) != len(self.y) or len(self.X) == 0:
            raise ValueError(f"X and y must have the same, non-zero length, got {len(self.X)} and {len(self.y)}")
        self.lengths = real_lengths(self.X)
        self.batch_size, self.chunk, self.shuffle = int(batch_size), int(chunk), shuffle
        self.rng = np.random.default_rng(seed)
        self._make_batches()

    def _make_batches(self):
        n, bs = len(self.X), self.batch_size
        if not self.shuffle:  # one pass in order of length
            order = np.argsort(self.lengths, kind="stable")
            self.batches = [order[k:k + bs] for k in range(0, n, bs)]
            return
        order = self.rng.permutation(n)
        batches = []
        for start in range(0, n, bs * self.chunk):
            part = order[start:start + bs * self.chunk]
            part = part[np.argsort(self.lengths[part], kind="stable")]
            batches += [part[k:k + bs] for k in range(0, len(part), bs)]
        self.batches = [batches[k] for k in self.rng.permutation(len(batches))]

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, k):
        rows = self.batches[k]
        steps = max(1, int(self.lengths[rows].max()))
        return self.X[rows, :steps], self.y[rows]

    def on_epoch_end(self):
        if self.shuffle:
            self._make_batches()


def _dataset(batches: LengthBatches):
    """A tf.data pipeline over `batches` that says its batches have any number of steps (Keras
    would infer a fixed width from the first two batches if given the PyDataset itself)."""
    import tensorflow as tf

    passes = []

    def generate():  # a fresh order at the start of every pass after the first (one per epoch)
        if passes:
            batches.on_epoch_end()
        passes.append(len(passes))
        for k in range(len(batches)):
            yield batches[k]

    spec = (tf.TensorSpec((None, None), batches.X.dtype), tf.TensorSpec((None,), tf.float32))
    dataset = tf.data.Dataset.from_generator(generate, output_signature=spec)
    return dataset.apply(tf.data.experimental.assert_cardinality(len(batches)))


class _SelectBest(keras.callbacks.Callback):
    """Prints one fixed line per epoch (no numbers, so the stored text never changes) and keeps
    the weights of the epoch with the best validation accuracy (the first such epoch on a tie)."""

    def __init__(self, label, epochs, verbose):
        super().__init__()
        self.label, self.epochs, self.verbose = label, epochs, verbose
        self.best, self.best_epoch, self.best_weights = -np.inf, 0, None

    def on_epoch_end(self, epoch, logs=None):
        if self.verbose:
            print(f"{self.label}: epoch {epoch + 1}/{self.epochs} done", flush=True)
        if logs["val_accuracy"] > self.best:
            self.best, self.best_epoch = logs["val_accuracy"], epoch + 1
            self.best_weights = self.model.get_weights()


def fit_select(model: keras.Model, X, y, X_val, y_val, epochs: int, batch_size: int = 64,
               learning_rate: float = 2e-3, seed: int = 0, label: str = "model", verbose: bool = True,
               by_length: bool = False) -> dict:
    """Compile with Adam and binary cross-entropy, train for exactly `epochs` epochs (the count
    never depends on the machine), evaluating on the validation set after each, then restore
    the weights of the best validation epoch. The test set is not touched.

    `by_length=True` trains on `LengthBatches` (seeded by `seed`) and validates on batches cut
    to their longest review: for post-padded inputs to a model whose padding is masked.

    Returns {'history': {metric: [per epoch]}, 'best_epoch': int, 'best_val_accuracy': float}.
    """
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if len(X) != len(y) or len(X_val) != len(y_val):
        raise ValueError(f"inputs and labels must have the same length, got {len(X)}/{len(y)} (training) "
                         f"and {len(X_val)}/{len(y_val)} (validation)")
    keras.utils.set_random_seed(seed)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="binary_crossentropy", metrics=["accuracy"])
    select = _SelectBest(label, epochs, verbose)
    if by_length:
        data = dict(x=_dataset(LengthBatches(X, y, batch_size, seed)), shuffle=False,  # it shuffles itself
                    validation_data=_dataset(LengthBatches(X_val, y_val, 250, shuffle=False)))
    else:
        data = dict(x=X, y=np.asarray(y, dtype="float32"), batch_size=batch_size,
                    validation_data=(X_val, np.asarray(y_val, dtype="float32")))
    history = model.fit(**data, epochs=epochs, verbose=0, callbacks=[select])
    model.set_weights(select.best_weights)
    return {"history": {k: [float(v) for v in vals] for k, vals in history.history.items()},
            "best_epoch": select.best_epoch, "best_val_accuracy": float(select.best)}


_FORWARD = weakref.WeakKeyDictionary()  # model -> {input dtype: compiled forward pass}


def _forward(model: keras.Model, dtype):
    """`model(x, training=False)` as one compiled TensorFlow graph for any (rows, steps) matrix
    of `dtype`, traced once per model and dtype. Called eagerly instead, a recurrent layer runs
    its loop one step at a time from Python: on one CPU thread the compiled call predicts the
    same numbers with eight to ten times less CPU time. The graph holds the model only weakly,
    so a model no longer used is freed with its graphs."""
    import tensorflow as tf

    functions = _FORWARD.setdefault(model, {})
    key = np.dtype(dtype).str
    if key not in functions:
        ref = weakref.ref(model)
        spec = tf.TensorSpec((None, None), tf.as_dtype(np.dtype(dtype)))
        functions[key] = tf.function(lambda x: ref()(x, training=False), input_signature=[spec])
    return functions[key]


def predict_proba(model: keras.Model, X, batch_size: int = 500, by_length: bool = False) -> np.ndarray:
    """P(label 1) for every row of X, as a float64 vector (the model's forward pass compiled
    once into a graph, then called in batches).

    `by_length=True` (post-padded X, padding masked) batches the rows in order of length and
    cuts each batch to its longest row: cheaper, and the same predictions up to float rounding.
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D matrix of token indices (examples, steps), got shape {X.shape}")
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    forward = _forward(model, X.dtype)
    if not by_length:
        out = [keras.ops.convert_to_numpy(forward(X[k:k + batch_size]))[:, 0]
               for k in range(0, len(X), batch_size)]
        return np.concatenate(out).astype(np.float64) if out else np.zeros(0)
    lengths = real_lengths(X)
    order = np.argsort(lengths, kind="stable")
    prob = np.zeros(len(X))
    for k in range(0, len(X), batch_size):
        rows = order[k:k + batch_size]
        steps = max(1, int(lengths[rows].max()))
        prob[rows] = keras.ops.convert_to_numpy(forward(X[rows, :steps]))[:, 0]
    return prob
