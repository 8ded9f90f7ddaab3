"""Recurrent sentiment classifiers (chapter 7): Embedding -> recurrent layer -> Dense(1, sigmoid).

Import only after `rnncourse.repro.setup_tensorflow()` (it imports Keras).

    build_classifier  the models of the chapter, with padding masked by the Embedding layer
    fit_select        a fixed number of epochs, keeping the weights of the best validation epoch
    predict_proba     P(positive) for a padded integer matrix, in batches
"""

from __future__ import annotations

import numpy as np
import keras

KINDS = ("simple_rnn", "lstm", "gru", "bilstm", "bigru")
POOLINGS = ("last", "mean")


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
    GlobalAveragePooling1D). With `mask=True`, index 0 is padding and takes no part.
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
              _recurrent(kind, units, dropout, recurrent_dropout, pooling == "mean")]
    if pooling == "mean":
        layers.append(keras.layers.GlobalAveragePooling1D())
    layers.append(keras.layers.Dense(1, activation="sigmoid"))
    return keras.Sequential(layers, name=name)


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
               learning_rate: float = 2e-3, seed: int = 0, label: str = "model", verbose: bool = True) -> dict:
    """Compile with Adam and binary cross-entropy, train for exactly `epochs` epochs (the count
    never depends on the machine), evaluating on the validation set after each, then restore
    the weights of the best validation epoch. The test set is not touched.

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
    history = model.fit(X, np.asarray(y, dtype="float32"), batch_size=batch_size, epochs=epochs, verbose=0,
                        validation_data=(X_val, np.asarray(y_val, dtype="float32")), callbacks=[select])
    model.set_weights(select.best_weights)
    return {"history": {k: [float(v) for v in vals] for k, vals in history.history.items()},
            "best_epoch": select.best_epoch, "best_val_accuracy": float(select.best)}


def predict_proba(model: keras.Model, X, batch_size: int = 500) -> np.ndarray:
    """P(label 1) for every row of X, as a float64 vector (calls the model directly, in batches)."""
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D matrix of token indices (examples, steps), got shape {X.shape}")
    out = [keras.ops.convert_to_numpy(model(X[k:k + batch_size], training=False))[:, 0]
           for k in range(0, len(X), batch_size)]
    return np.concatenate(out).astype(np.float64) if out else np.zeros(0)
