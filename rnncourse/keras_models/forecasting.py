"""Small recurrent forecasters in Keras: build, train for a fixed number of epochs, forecast.

Import this module after `rnncourse.repro.setup_tensorflow()` (Keras is imported only inside
the functions, so importing the module itself starts nothing).

A forecaster reads a window of L scaled values, shape (N, L, 1), and returns one output per
horizon, (N, H): a *direct* multi-step model when H > 1. A one-step model (H = 1) can forecast
further *recursively*: `recursive_forecast` appends each output to the window as if it had
been observed and reads the next one.
"""

from __future__ import annotations

import numpy as np


def build_forecaster(kind: str = "lstm", units: int = 32, outputs: int = 1, input_length: int | None = None):
    """keras.Sequential: Input (L, 1) -> LSTM or GRU (`units`) -> Dense(`outputs`), linear output."""
    import keras

    layers = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}
    if kind not in layers:
        raise ValueError(f"kind must be 'lstm' or 'gru', got {kind!r}")
    for name, value in (("units", units), ("outputs", outputs)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    return keras.Sequential([keras.Input((input_length, 1)), layers[kind](units), keras.layers.Dense(outputs)],
                            name=f"{kind}_{units}_to_{outputs}")


def epoch_lines(name: str, epochs: int, every: int):
    """A Keras callback printing `name: epoch k/epochs` every `every` epochs: progress with no
    numbers that could differ between CPUs, so stored outputs stay the same."""
    import keras

    def on_epoch_end(epoch, logs=None):
        if (epoch + 1) % every == 0 or epoch + 1 == epochs:
            print(f"{name}: epoch {epoch + 1}/{epochs}")

    return keras.callbacks.LambdaCallback(on_epoch_end=on_epoch_end)


def fit_forecaster(model, train, epochs: int = 40, batch_size: int = 32,
                   learning_rate: float = 3e-3, seed: int = 0, name: str | None = None,
                   report_every: int = 0):
    """Train with Adam on the mean squared error for exactly `epochs` epochs (no early stopping).

    `train` is a `Windows` (scaled). Seeds Keras (`seed`) just before compiling, so a model
    trains the same way wherever it is built. Returns the Keras History (per-epoch "loss", in
    scaled units). Score on held-out windows afterwards with `predict`: passing
    `validation_data` to this TensorFlow build's `fit` prints a C++ log line on stderr.
    """
    import keras

    keras.utils.set_random_seed(seed)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
    callbacks = [epoch_lines(name or model.name, epochs, report_every)] if report_every else []
    return model.fit(train.inputs.astype("float32"), train.targets.astype("float32"), epochs=epochs,
                     batch_size=batch_size, shuffle=True, verbose=0, callbacks=callbacks)


def predict(model, inputs, batch_size: int = 256) -> np.ndarray:
    """Model outputs for `inputs` (N, L, 1) as a float64 array (N, H), without Keras's progress bar."""
    x = np.asarray(inputs, dtype=np.float32)
    out = [np.asarray(model(x[k:k + batch_size], training=False)) for k in range(0, len(x), batch_size)]
    return np.concatenate(out).astype(np.float64)


def recursive_forecast(model, inputs, steps: int) -> np.ndarray:
    """Run a one-step model `steps` times, feeding back its outputs: returns the path (N, steps).

    Step s reads the last L entries of (inputs, outputs of steps 1..s-1): from step 2 on, the
    window holds forecasts in place of observations, so errors compound.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    window = np.asarray(inputs, dtype=np.float64)
    if window.ndim != 3 or window.shape[2] != 1:
        raise ValueError(f"inputs must have shape (N, L, 1), got {window.shape}")
    path = []
    for _ in range(steps):
        out = predict(model, window)
        if out.shape[1] != 1:
            raise ValueError(f"recursive forecasting needs a one-step model (1 output), this one has {out.shape[1]}")
        path.append(out[:, 0])
        window = np.concatenate([window[:, 1:], out[:, None, :1]], axis=1)
    return np.stack(path, axis=1)
