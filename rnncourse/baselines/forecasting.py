"""Forecasting baselines and their scoring: naive, seasonal naive, SARIMA; RMSE and MAE per horizon.

Every forecaster here returns a matrix `forecasts[i, k]`: the forecast made at origin
`origins[i]` (the position of the last value it may use) for horizon `horizons[k]`, i.e. for
position `origins[i] + horizons[k]`. `errors_by_horizon` scores every model on the same set of
target positions, whatever the horizon, so the columns of a table are comparable.

* naive: the last value, y_o, for every horizon;
* seasonal naive: the value one season before the target, y_{o+h-m} (m = 12 for monthly data),
  or k seasons before when h > m, so that it never uses a value after the origin;
* SARIMA: a seasonal ARIMA of a small fixed order, fitted by statsmodels on the training part
  only; its fitted parameters are then run (not refitted) over the whole series, so that each
  forecast uses exactly the values up to its origin. It also gives prediction intervals.
"""

from __future__ import annotations

import numpy as np


def _origins_horizons(origins, horizons):
    o = np.asarray(origins, dtype=np.int64).reshape(-1)
    h = np.atleast_1d(np.asarray(horizons))
    if h.ndim != 1 or h.size == 0 or not np.issubdtype(h.dtype, np.integer) or (h < 1).any():
        raise ValueError(f"horizons must be positive integers, got {horizons!r}")
    return o, h.astype(np.int64)


def naive_forecasts(values, origins, horizons) -> np.ndarray:
    """(N, H): the value at each origin, repeated for every horizon."""
    y = np.asarray(values, dtype=np.float64)
    o, h = _origins_horizons(origins, horizons)
    return np.repeat(y[o][:, None], len(h), axis=1)


def seasonal_naive_forecasts(values, origins, horizons, period: int = 12) -> np.ndarray:
    """(N, H): y[o + h - period * ceil(h / period)], the same season's last observed value."""
    if isinstance(period, bool) or not isinstance(period, (int, np.integer)) or period < 1:
        raise ValueError(f"period must be a positive int, got {period!r}")
    y = np.asarray(values, dtype=np.float64)
    o, h = _origins_horizons(origins, horizons)
    back = period * (-(-h // period))  # period * ceil(h / period)
    source = o[:, None] + h[None, :] - back[None, :]
    if source.min() < 0:
        raise ValueError(f"the seasonal-naive forecast needs {period} values before each origin; "
                         f"the earliest origin is {o.min()}")
    return y[source]


# ----------------------------------------------------------------------------- SARIMA

AIRLINE_ORDER = ((0, 1, 1), (0, 1, 1, 12))
"""The "airline model" of Box and Jenkins: one regular and one seasonal difference, one MA term each."""


def fit_sarima(train, order=AIRLINE_ORDER[0], seasonal_order=AIRLINE_ORDER[1]):
    """Fit SARIMA(order)(seasonal_order) by maximum likelihood on `train` (a pandas Series with a
    DatetimeIndex that has a frequency, e.g. "MS": without one statsmodels warns and cannot date
    its forecasts). Returns the statsmodels results object."""
    import pandas as pd
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    if not isinstance(train, pd.Series) or not isinstance(train.index, pd.DatetimeIndex) or train.index.freq is None:
        raise TypeError("train must be a pandas Series with a DatetimeIndex that has a frequency "
                        "(set series.index.freq, e.g. 'MS'); statsmodels warns otherwise")
    model = SARIMAX(train, order=order, seasonal_order=seasonal_order)
    return model.fit(disp=False)


def sarima_forecasts(fitted, series, origins, horizons, alpha: float = 0.05):
    """Forecasts (N, H) from each origin with the fitted parameters, and their prediction interval.

    The parameters of `fitted` (from `fit_sarima` on the training part) are applied to the whole
    `series` without refitting; the forecast from origin o is the model's h-step prediction given
    `series[: o + 1]` only (the Kalman filter is causal). Returns (mean, lower, upper), the
    interval being the model's (1 - alpha) prediction interval.
    """
    o, h = _origins_horizons(origins, horizons)
    full = fitted.apply(series)
    steps = int(h.max())
    mean = np.empty((len(o), len(h)))
    lower, upper = np.empty_like(mean), np.empty_like(mean)
    for i, origin in enumerate(o):
        pred = full.get_prediction(start=int(origin) + 1, end=int(origin) + steps, dynamic=True)
        m = np.asarray(pred.predicted_mean, dtype=np.float64)
        ci = np.asarray(pred.conf_int(alpha=alpha), dtype=np.float64)
        mean[i], lower[i], upper[i] = m[h - 1], ci[h - 1, 0], ci[h - 1, 1]
    return mean, lower, upper


# ----------------------------------------------------------------------------- scoring


def errors_by_horizon(forecasts, origins, horizons, values, start: int, stop: int) -> dict:
    """RMSE, MAE and mean error (bias, forecast minus truth) per horizon over targets [start, stop).

    For every horizon h the scored forecasts are those made at origin t - h for each target
    position t in [start, stop): every horizon is scored on the same targets, and a ValueError
    says which targets are missing if `origins` does not cover them.
    Returns {"rmse": (H,), "mae": (H,), "bias": (H,), "count": int}.
    """
    f = np.asarray(forecasts, dtype=np.float64)
    o, h = _origins_horizons(origins, horizons)
    y = np.asarray(values, dtype=np.float64)
    if f.shape != (len(o), len(h)):
        raise ValueError(f"forecasts must have shape (origins, horizons) = ({len(o)}, {len(h)}), got {f.shape}")
    row = {int(origin): i for i, origin in enumerate(o)}
    targets = np.arange(start, stop)
    rmse, mae, bias = [], [], []
    for k, horizon in enumerate(h):
        needed = targets - horizon
        missing = [int(t) for t, n in zip(targets, needed) if int(n) not in row]
        if missing:
            raise ValueError(f"no forecast at horizon {horizon} for target positions {missing[:5]}"
                             f"{'...' if len(missing) > 5 else ''}: origins must include {needed[0]}..{needed[-1]}")
        err = f[[row[int(n)] for n in needed], k] - y[targets]
        rmse.append(np.sqrt(np.mean(err ** 2)))
        mae.append(np.mean(np.abs(err)))
        bias.append(np.mean(err))
    return {"rmse": np.array(rmse), "mae": np.array(mae), "bias": np.array(bias), "count": len(targets)}
