"""Exercise set ex09, after chapter 9 (time-series forecasting): references, inputs, known mistakes.

Series are given as (T, D) arrays, D series side by side (D = 1 is one series as a column),
which is also the (steps, features) layout a Keras recurrent layer reads.
"""

from __future__ import annotations

import numpy as np

from .core import Mistake, Question


def _random_walks(rng, t, d):
    """D random walks with a drift and a season: trend and seasonality, like the CO2 series."""
    steps = 0.3 + rng.standard_normal((t, d))
    season = np.sin(2 * np.pi * np.arange(t) / 12)[:, None] * rng.uniform(1, 3, size=d)
    return np.cumsum(steps, axis=0) + season + rng.uniform(-5, 5, size=d)


# ----------------------------------------------------------------------- Q1: windows with horizon h
def windows_inputs(rng):
    t, d = int(rng.integers(20, 40)), int(rng.integers(1, 4))
    return dict(series=_random_walks(rng, t, d), input_length=int(rng.integers(3, 8)), horizon=int(rng.integers(3, 7)))


def _windows(series, input_length, horizon, *, target_shift=0, count_shift=0, one_step=False):
    t = len(series)
    n = t - input_length - horizon + 1 + count_shift
    starts = np.arange(n)
    x = series[starts[:, None] + np.arange(input_length)[None, :]]
    step = 1 if one_step else horizon
    y = series[starts + input_length - 1 + step + target_shift]
    return x, y


def make_windows(series, input_length, horizon):
    """X (N, L, D): every run of L consecutive rows; y (N, D): the row h steps after each run's last row."""
    return _windows(series, input_length, horizon)


WINDOW_MISTAKES = (
    Mistake("off-by-one horizon: the target is h + 1 steps after the last input; with inputs "
            "series[i : i + L] the last input is series[i + L - 1], so the target is series[i + L - 1 + h]",
            lambda series, input_length, horizon: _windows(series, input_length, horizon, target_shift=1, count_shift=-1)),
    Mistake("off-by-one horizon: the target is only h - 1 steps after the last input (series[i + L + h - 2]); "
            "it must be series[i + L - 1 + h]",
            lambda series, input_length, horizon: _windows(series, input_length, horizon, target_shift=-1)),
    Mistake("the horizon is ignored: every target is the next step, series[i + L]",
            lambda series, input_length, horizon: _windows(series, input_length, horizon, one_step=True)),
    Mistake("one window too few: the last window that fits (its target is the last row) is missing; "
            "there are T - L - h + 1 windows",
            lambda series, input_length, horizon: _windows(series, input_length, horizon, count_shift=-1)),
)


# ------------------------------------------------------------------ Q2: the seasonal-naive forecast
def seasonal_inputs(rng):
    period = int(rng.integers(4, 13))
    horizon = int(rng.integers(period + 2, 2 * period))  # beyond one season, not a multiple of it
    t, d = int(rng.integers(5 * period, 6 * period)), int(rng.integers(1, 4))
    origins = rng.choice(np.arange(2 * period, t - period), size=int(rng.integers(3, 7)), replace=False)
    return dict(series=_random_walks(rng, t, d), origins=np.sort(origins).astype(np.int64), horizon=horizon,
                period=period)


def _seasonal(series, origins, horizon, period, *, source="season"):
    if source == "season":
        back = period * -(-horizon // period)
        return series[origins + horizon - back]
    if source == "no_ceil":
        return series[origins + horizon - period]
    if source == "naive":
        return series[origins]
    if source == "year_before_origin":
        return series[origins - period]
    raise ValueError(source)


def seasonal_naive(series, origins, horizon, period):
    """(N, D): for each origin o, the value of the same season last observed, series[o + h - m ceil(h / m)]."""
    return _seasonal(series, origins, horizon, period)


SEASONAL_MISTAKES = (
    Mistake("the forecast uses a value after the origin: for h > period, series[o + h - period] is in the "
            "future of the origin; go back whole seasons, period * ceil(h / period)",
            lambda **kw: _seasonal(**kw, source="no_ceil")),
    Mistake("that is the naive forecast (the last value, series[o]); the seasonal-naive forecast repeats the "
            "same season's last value",
            lambda **kw: _seasonal(**kw, source="naive")),
    Mistake("the horizon is ignored: series[o - period] is the season of the origin, not of the target o + h",
            lambda **kw: _seasonal(**kw, source="year_before_origin")),
)


# --------------------------------------------------------------------- Q3: scaling fitted on train only
def scale_inputs(rng):
    t, d = int(rng.integers(30, 60)), int(rng.integers(2, 4))
    return dict(series=_random_walks(rng, t, d) * rng.uniform(1, 4, size=d), n_train=int(rng.integers(t // 3, 2 * t // 3)))


def _scale(series, n_train, *, fit_on="train", axis=0, divide=True, kind="standard"):
    part = series[:n_train] if fit_on == "train" else series
    if kind == "minmax":
        lo, hi = part.min(axis=axis), part.max(axis=axis)
        return (series - lo) / (hi - lo)
    mean, std = part.mean(axis=axis), part.std(axis=axis)
    return (series - mean) / std if divide else series - mean


def scale_with_train(series, n_train):
    """Standardise each column with the mean and standard deviation (ddof=0) of its first n_train rows."""
    return _scale(series, n_train)


SCALE_MISTAKES = (
    Mistake("the scaler is fitted on all the data: the mean and standard deviation then include the "
            "validation and test rows, so the future leaks into the inputs; fit on series[:n_train] only",
            lambda series, n_train: _scale(series, n_train, fit_on="all")),
    Mistake("one mean and one standard deviation for the whole array: each column (series) needs its own, "
            "taken over axis 0 (time)",
            lambda series, n_train: _scale(series, n_train, axis=None)),
    Mistake("the mean is removed but the result is not divided by the standard deviation",
            lambda series, n_train: _scale(series, n_train, divide=False)),
    Mistake("that is min-max scaling; standardise with the mean and standard deviation instead",
            lambda series, n_train: _scale(series, n_train, kind="minmax")),
)


# --------------------------------------------------------------------- Q4: RMSE and MAE per horizon
def error_inputs(rng):
    n, h = int(rng.integers(5, 12)), int(rng.integers(2, 5))
    truth = rng.standard_normal((n, h)) + 5
    return dict(forecasts=truth + rng.standard_normal((n, h)) * np.arange(1, h + 1) + 0.3, truth=truth)


def _errors(forecasts, truth, *, sqrt=True, axis=0, root_first=False, signed=False):
    err = forecasts - truth
    if signed:
        return err.mean(axis=axis), err.mean(axis=axis)
    mse = (err ** 2).mean(axis=axis)
    if root_first:
        rmse = np.sqrt(err ** 2).mean(axis=axis)
    else:
        rmse = np.sqrt(mse) if sqrt else mse
    return rmse, np.abs(err).mean(axis=axis)


def rmse_mae_by_horizon(forecasts, truth):
    """(rmse (H,), mae (H,)): over the N forecasts of each horizon (column)."""
    return _errors(forecasts, truth)


ERROR_MISTAKES = (
    Mistake("the average is over horizons (axis 1) instead of over the forecasts of each horizon (axis 0)",
            lambda forecasts, truth: _errors(forecasts, truth, axis=1)),
    Mistake("the square root is missing: that is the mean squared error, in squared units",
            lambda forecasts, truth: _errors(forecasts, truth, sqrt=False)),
    Mistake("the root is taken before the mean: mean(sqrt(err ** 2)) is the MAE; RMSE = sqrt(mean(err ** 2))",
            lambda forecasts, truth: _errors(forecasts, truth, root_first=True)),
    Mistake("the errors are averaged with their signs, so positive and negative errors cancel: that is the "
            "bias; square them (RMSE) or take their absolute values (MAE) first",
            lambda forecasts, truth: _errors(forecasts, truth, signed=True)),
)


def training_windows() -> int:
    """381 training months, windows of 24 inputs, direct targets for horizons 1..12, all in training."""
    return 381 - 24 - 12 + 1


QUESTIONS = (
    Question("make_windows", "make_windows", 2, make_windows, windows_inputs, WINDOW_MISTAKES, output_names=("X", "y")),
    Question("seasonal_naive", "seasonal_naive", 2, seasonal_naive, seasonal_inputs, SEASONAL_MISTAKES),
    Question("scale_with_train", "scale_with_train", 2, scale_with_train, scale_inputs, SCALE_MISTAKES),
    Question("rmse_mae_by_horizon", "rmse_mae_by_horizon", 2, rmse_mae_by_horizon, error_inputs, ERROR_MISTAKES,
             output_names=("rmse", "mae")),
    Question("baseline_to_beat", "answer_baseline_to_beat", 1, lambda: "a", kind="value", choices=("a", "b")),
    Question("level_model_failure", "answer_level_model_failure", 1, lambda: "b", kind="value",
             choices=("a", "b", "c")),
    Question("training_windows", "answer_training_windows", 1, training_windows, kind="value", atol=0.5),
)
