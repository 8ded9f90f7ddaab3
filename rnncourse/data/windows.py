"""Windows of a time series for forecasting h steps ahead, and scaling fitted on training data only.

Positions, not dates, do the bookkeeping. A window is named by its *origin* `o`, the position
of its last input: its inputs are `values[o - L + 1 : o + 1]` (L = `input_length`) and its
target for horizon h is `values[o + h]`, exactly h steps after the last input. A forecast made
at origin o for horizon h belongs to time `o + h` and is plotted there (`forecast_series`), not
at the origin: that shift is the classic bug of forecasting tutorials.

`WindowScaler` turns a series into the numbers a network sees, with its mean and standard
deviation taken from the training part only, in one of two ways:

* levels: z_t = (y_t - mean) / std; the target for horizon h is z_{o+h};
* differences: u_t = (y_t - y_{t-1} - mean) / std, the scaled month-to-month change; the
  target for horizon h is u_{o+1} + ... + u_{o+h}, the scaled change from the origin, so the
  forecast in ppm is y_o + h * mean + std * output.

In both, the one-step target is the next input, so a one-step model can be run recursively by
appending its own outputs to the window (`path_to_outputs` turns such a path into targets).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _as_series(name: str, values) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64) if not hasattr(values, "to_numpy") else values.to_numpy(dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (one value per time step), got shape {arr.shape}")
    return arr


def _as_horizons(horizons) -> np.ndarray:
    h = np.atleast_1d(np.asarray(horizons))
    if h.ndim != 1 or h.size == 0 or not np.issubdtype(h.dtype, np.integer) or (h < 1).any():
        raise ValueError(f"horizons must be positive integers (1 = the next step), got {horizons!r}")
    if (np.diff(h) <= 0).any():
        raise ValueError(f"horizons must be increasing without repeats, got {h.tolist()}")
    return h.astype(np.int64)


def _check_length(input_length) -> int:
    if isinstance(input_length, bool) or not isinstance(input_length, (int, np.integer)) or input_length < 1:
        raise ValueError(f"input_length must be a positive int, got {input_length!r}")
    return int(input_length)


@dataclass(frozen=True)
class Windows:
    """inputs (N, L, 1), targets (N, len(horizons)), origins (N,) = position of each last input."""

    inputs: np.ndarray
    targets: np.ndarray
    origins: np.ndarray
    horizons: tuple

    @property
    def target_positions(self) -> np.ndarray:
        """(N, H): the position each target comes from, origin + h."""
        return self.origins[:, None] + np.asarray(self.horizons)[None, :]

    def __len__(self) -> int:
        return len(self.origins)


def valid_origins(n: int, input_length: int, horizons, first: int = 0) -> np.ndarray:
    """Every origin whose L inputs start at or after `first` and whose targets all exist."""
    h = _as_horizons(horizons)
    return np.arange(first + _check_length(input_length) - 1, n - int(h[-1]), dtype=np.int64)


def origins_with_targets_in(start: int, stop: int, horizons, input_length: int, first: int = 0) -> np.ndarray:
    """Origins whose targets at *every* horizon lie in positions [start, stop) (a training set)."""
    h = _as_horizons(horizons)
    lo = max(start - int(h[0]), first + _check_length(input_length) - 1)
    return np.arange(lo, stop - int(h[-1]), dtype=np.int64)


def make_windows(values, input_length: int, horizons=(1,), origins=None) -> Windows:
    """Cut `values` into windows of `input_length` inputs with targets `horizons` steps ahead.

    By default every origin with all its inputs and targets inside the series is used. Given
    `origins`, a target past the end of the series is NaN (a forecast of the future, which can
    be made but not scored).
    """
    y = _as_series("values", values)
    L = _check_length(input_length)
    h = _as_horizons(horizons)
    o = valid_origins(len(y), L, h) if origins is None else np.asarray(origins, dtype=np.int64).reshape(-1)
    if o.size and (o.min() < L - 1 or o.max() >= len(y)):
        raise ValueError(f"origins must lie in [{L - 1}, {len(y) - 1}] so that all {L} inputs exist, "
                         f"got {o.min()}..{o.max()}")
    inputs = y[o[:, None] + np.arange(-L + 1, 1)[None, :]][..., None]
    positions = o[:, None] + h[None, :]
    targets = np.full(positions.shape, np.nan)
    inside = positions < len(y)
    targets[inside] = y[positions[inside]]
    return Windows(inputs, targets, o, tuple(int(k) for k in h))


def forecast_series(forecasts, origins, horizons, horizon: int, index):
    """The forecasts for one `horizon` as a pandas Series indexed by the time they forecast.

    forecasts (N, H) were made at `origins` (N,) for `horizons`; the value made at origin o for
    horizon h is placed at index[o + h]. Forecasts beyond the end of `index` are dropped.
    """
    import pandas as pd

    f = np.asarray(forecasts, dtype=np.float64)
    o = np.asarray(origins, dtype=np.int64)
    hs = list(_as_horizons(horizons))
    if horizon not in hs:
        raise ValueError(f"horizon {horizon} is not among the forecast horizons {hs}")
    if f.shape != (len(o), len(hs)):
        raise ValueError(f"forecasts must have shape (origins, horizons) = ({len(o)}, {len(hs)}), got {f.shape}")
    positions = o + horizon
    keep = positions < len(index)
    return pd.Series(f[keep, hs.index(horizon)], index=index[positions[keep]], name=f"h={horizon}")


@dataclass(frozen=True)
class WindowScaler:
    """Scaling (and optionally differencing) fitted on the training part of a series only."""

    mean: float
    std: float
    difference: bool = False

    @classmethod
    def fit(cls, values, n_train: int, difference: bool = False) -> "WindowScaler":
        """Mean and standard deviation (ddof=0) of the first `n_train` values, or of their changes."""
        y = _as_series("values", values)
        if isinstance(n_train, bool) or not isinstance(n_train, (int, np.integer)) or not 2 < n_train <= len(y):
            raise ValueError(f"n_train must be an int in (2, {len(y)}], got {n_train!r}")
        part = np.diff(y[:n_train]) if difference else y[:n_train]
        return cls(float(part.mean()), float(part.std()), bool(difference))

    @property
    def first_input(self) -> int:
        """The first position with a defined model input (1 with differencing: y_0 has no change)."""
        return 1 if self.difference else 0

    def series(self, values) -> np.ndarray:
        """The series in model units (z_t, or u_t with u_0 = NaN)."""
        y = _as_series("values", values)
        if self.difference:
            return np.concatenate([[np.nan], (np.diff(y) - self.mean) / self.std])
        return (y - self.mean) / self.std

    def windows(self, values, input_length: int, horizons=(1,), origins=None) -> Windows:
        """Windows in model units: scaled inputs and scaled targets (see the module's docstring)."""
        y = _as_series("values", values)
        L = _check_length(input_length)
        h = _as_horizons(horizons)
        if origins is None:
            origins = valid_origins(len(y), L, h, first=self.first_input)
        w = make_windows(self.series(y), L, h, origins)
        if np.isnan(w.inputs).any():
            raise ValueError(f"an origin is too early: with difference={self.difference} the first origin "
                             f"with {L} inputs is {self.first_input + L - 1}")
        if not self.difference:
            return w
        levels = make_windows(y, L, h, w.origins)
        targets = (levels.targets - y[w.origins][:, None] - self.mean * h[None, :]) / self.std
        return Windows(w.inputs, targets, w.origins, w.horizons)

    def to_forecasts(self, outputs, values, origins, horizons) -> np.ndarray:
        """Model outputs (N, H) at `origins` -> forecasts in the series' units."""
        out = np.asarray(outputs, dtype=np.float64)
        h = _as_horizons(horizons)
        o = np.asarray(origins, dtype=np.int64)
        if out.shape != (len(o), len(h)):
            raise ValueError(f"outputs must have shape (origins, horizons) = ({len(o)}, {len(h)}), got {out.shape}")
        if self.difference:
            y = _as_series("values", values)
            return y[o][:, None] + self.mean * h[None, :] + self.std * out
        return self.mean + self.std * out

    def path_to_outputs(self, path) -> np.ndarray:
        """A recursive path of one-step outputs (N, steps) -> outputs for horizons 1..steps."""
        p = np.asarray(path, dtype=np.float64)
        return np.cumsum(p, axis=1) if self.difference else p
