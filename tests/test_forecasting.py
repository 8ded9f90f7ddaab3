"""Chapter 9's forecasting pieces: the CO2 loader and split, windows and horizons, scaling fitted on
the training part only, the baselines, the scoring, and (light) the Keras forecaster helpers."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from rnncourse.baselines.forecasting import (errors_by_horizon, fit_sarima, naive_forecasts, sarima_forecasts,
                                             seasonal_naive_forecasts)
from rnncourse.data.co2 import chronological_split, co2_split, load_co2_monthly, load_co2_weekly
from rnncourse.data.windows import (WindowScaler, forecast_series, make_windows, origins_with_targets_in,
                                    valid_origins)


@pytest.fixture(scope="module")
def split():
    return co2_split()


# ----------------------------------------------------------------------------- data


def test_weekly_data_loads_offline_with_its_gaps():
    weekly = load_co2_weekly()
    assert len(weekly) == 2284 and int(weekly.isna().sum()) == 59
    assert str(weekly.index[0].date()) == "1958-03-29" and str(weekly.index[-1].date()) == "2001-12-29"


def test_monthly_series_is_complete_with_a_frequency():
    monthly = load_co2_monthly()
    assert len(monthly) == 525 and not monthly.isna().any()
    assert monthly.index.freqstr == "MS"
    assert f"{monthly.index[0]:%Y-%m}" == "1958-04" and f"{monthly.index[-1]:%Y-%m}" == "2001-12"
    # each month is the mean of its (interpolated) weeks
    weekly = load_co2_weekly().interpolate(method="time")
    assert monthly.loc["1970-06-01"] == pytest.approx(weekly.loc["1970-06"].mean())


def test_split_is_chronological_and_fixed(split):
    assert (split.n_train, split.n_validation, split.n_test) == (381, 72, 72)
    train, val, test = (split.part(p) for p in ("train", "validation", "test"))
    assert train.index[-1] < val.index[0] and val.index[-1] < test.index[0]
    assert f"{val.index[0]:%Y-%m}" == "1990-01" and f"{test.index[0]:%Y-%m}" == "1996-01"
    assert split.bounds("test") == (453, 525)
    with pytest.raises(ValueError, match="part must be one of"):
        split.bounds("holdout")


def test_split_rejects_bad_dates_and_unsorted_series(split):
    with pytest.raises(ValueError, match="three non-empty parts"):
        chronological_split(split.series, "1996-01", "1990-01")
    with pytest.raises(ValueError, match="sorted by time"):
        chronological_split(split.series.iloc[::-1], "1990-01", "1996-01")
    with pytest.raises(TypeError, match="DatetimeIndex"):
        chronological_split(pd.Series([1.0, 2.0]), "1990-01", "1996-01")


# ----------------------------------------------------------------------------- windows and horizons


@pytest.mark.parametrize("horizons", [(1,), (3,), (1, 2, 6, 12)])
def test_target_is_exactly_h_steps_after_the_last_input(horizons):
    values = np.arange(100, dtype=np.float64)  # value = position, so alignment reads off directly
    w = make_windows(values, 7, horizons)
    last_input = w.inputs[:, -1, 0]
    assert np.array_equal(last_input, w.origins)
    assert np.array_equal(w.inputs[:, 0, 0], w.origins - 6)  # L = 7 consecutive inputs
    for k, h in enumerate(horizons):
        assert np.array_equal(w.targets[:, k] - last_input, np.full(len(w), h))
    assert np.array_equal(w.target_positions, w.targets)
    assert w.origins[0] == 6 and w.origins[-1] == 99 - max(horizons)  # every window that fits


def test_windows_past_the_end_have_nan_targets_and_early_origins_are_refused():
    values = np.arange(20, dtype=np.float64)
    w = make_windows(values, 5, (1, 3), origins=[17, 19])
    assert np.array_equal(w.targets[0], [18, np.nan], equal_nan=True)
    assert np.isnan(w.targets[1]).all()
    with pytest.raises(ValueError, match="origins must lie in"):
        make_windows(values, 5, (1,), origins=[3])
    with pytest.raises(ValueError, match="horizons must be positive"):
        make_windows(values, 5, (0,))
    with pytest.raises(ValueError, match="increasing"):
        make_windows(values, 5, (3, 1))
    with pytest.raises(ValueError, match="input_length"):
        make_windows(values, 0, (1,))
    with pytest.raises(ValueError, match="one-dimensional"):
        make_windows(values[:, None], 5, (1,))


def test_origins_for_a_part_keep_every_target_inside_it():
    o = origins_with_targets_in(0, 50, (1, 2, 12), 10)
    assert o[0] == 9 and (o + 12).max() == 49
    o = origins_with_targets_in(50, 80, (1,), 10)
    assert o[0] == 49 and o[-1] == 78
    assert np.array_equal(valid_origins(30, 5, (1, 4), first=1), np.arange(5, 26))


def test_a_forecast_is_plotted_at_the_time_it_forecasts(split):
    index = split.series.index
    origins = np.arange(440, 500)
    horizons = (1, 6)
    truth = make_windows(split.values, 24, horizons, origins).targets  # a perfect forecaster
    for h in horizons:
        s = forecast_series(truth, origins, horizons, h, index)
        assert s.index[0] == index[origins[0] + h]  # not at the origin
        assert (s.index[0].to_period("M") - index[origins[0]].to_period("M")).n == h  # h months later
        pd.testing.assert_series_equal(s, split.series.loc[s.index], check_names=False, check_freq=False)
    past_end = forecast_series(np.zeros((2, 1)), [523, 524], (1,), 1, index)
    assert len(past_end) == 1 and past_end.index[0] == index[-1]
    with pytest.raises(ValueError, match="not among"):
        forecast_series(truth, origins, horizons, 3, index)


# ----------------------------------------------------------------------------- scaling


def test_scaler_is_fitted_on_the_training_part_only(split):
    y = split.values
    levels = WindowScaler.fit(y, split.n_train)
    assert levels.mean == pytest.approx(y[:split.n_train].mean()) and levels.std == pytest.approx(y[:split.n_train].std())
    changed = y.copy()
    changed[split.n_train:] += 1000.0  # the future cannot move the scaler
    assert WindowScaler.fit(changed, split.n_train) == levels
    assert WindowScaler.fit(changed, split.n_train, difference=True) == WindowScaler.fit(y, split.n_train, difference=True)
    z = levels.series(y[:split.n_train])
    assert z.mean() == pytest.approx(0, abs=1e-12) and z.std() == pytest.approx(1)
    with pytest.raises(ValueError, match="n_train"):
        WindowScaler.fit(y, len(y) + 1)


@pytest.mark.parametrize("difference", [False, True])
def test_scaled_windows_round_trip_to_the_truth(split, difference):
    y = split.values
    scaler = WindowScaler.fit(y, split.n_train, difference=difference)
    horizons = (1, 2, 5, 12)
    w = scaler.windows(y, 24, horizons)
    assert w.origins[0] == 23 + scaler.first_input
    back = scaler.to_forecasts(w.targets, y, w.origins, horizons)
    assert np.allclose(back, y[w.target_positions])
    # a one-step path of the true next inputs gives the true targets at every horizon
    path = np.stack([scaler.series(y)[w.origins + k] for k in range(1, 13)], axis=1)
    assert np.allclose(scaler.path_to_outputs(path)[:, [0, 1, 4, 11]], w.targets)
    if difference:
        with pytest.raises(ValueError, match="too early"):
            scaler.windows(y, 24, (1,), origins=[23])


# ----------------------------------------------------------------------------- baselines and scoring


def test_naive_and_seasonal_naive_use_nothing_after_the_origin():
    values = np.arange(60, dtype=np.float64)
    origins = np.array([30, 40])
    horizons = np.array([1, 6, 12, 13, 24])
    assert np.array_equal(naive_forecasts(values, origins, horizons), np.repeat([[30.0], [40.0]], 5, axis=1))
    sn = seasonal_naive_forecasts(values, origins, horizons)
    assert np.array_equal(sn[0], [19, 24, 30, 19, 30])  # y[o + h - 12 ceil(h / 12)]
    assert (sn <= origins[:, None]).all()
    with pytest.raises(ValueError, match="needs 12 values"):
        seasonal_naive_forecasts(values, [5], (1,))
    with pytest.raises(ValueError, match="period"):
        seasonal_naive_forecasts(values, origins, (1,), period=0)


def test_errors_by_horizon_scores_the_same_targets_at_every_horizon():
    values = np.zeros(40)
    origins = np.arange(20, 39)
    horizons = (1, 3)
    forecasts = np.ones((len(origins), 2))
    forecasts[origins == 25, 0] = 3.0  # forecast of position 26 at h=1 is off by 3
    e = errors_by_horizon(forecasts, origins, horizons, values, 30, 35)
    assert e["count"] == 5
    assert e["mae"][1] == pytest.approx(1.0) and e["bias"][1] == pytest.approx(1.0)
    assert e["rmse"][0] == pytest.approx(1.0)  # position 26 is not a target in [30, 35)
    e = errors_by_horizon(forecasts, origins, horizons, values, 24, 29)
    assert e["mae"][0] == pytest.approx((4 + 3) / 5) and e["rmse"][0] == pytest.approx(np.sqrt((4 + 9) / 5))
    with pytest.raises(ValueError, match="no forecast at horizon 3"):
        errors_by_horizon(forecasts, origins, horizons, values, 21, 25)


def test_sarima_fits_quietly_and_forecasts_causally(split):
    series = split.series.iloc[: split.n_train + 30]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fitted = fit_sarima(series.iloc[: split.n_train])
        origins = np.array([split.n_train - 1, split.n_train + 5])
        mean, lower, upper = sarima_forecasts(fitted, series, origins, (1, 12))
    assert mean.shape == (2, 2) and (lower < mean).all() and (mean < upper).all()
    assert (upper[:, 1] - lower[:, 1] > upper[:, 0] - lower[:, 0]).all()  # wider further ahead
    # changing values after an origin does not change the forecast made at it
    changed = series.copy()
    changed.iloc[split.n_train + 6:] += 50.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again, _, _ = sarima_forecasts(fitted, changed, origins, (1, 12))
    assert np.allclose(again, mean)
    assert abs(mean[0, 0] - split.values[split.n_train]) < 1.5
    with pytest.raises(TypeError, match="frequency"):
        fit_sarima(pd.Series(series.to_numpy()))


# ----------------------------------------------------------------------------- recursive forecasting


class _NextIsLastPlusOne:
    """A stand-in one-step model (no TensorFlow needed): predicts last input + 1."""

    def __call__(self, x, training=False):
        return np.asarray(x)[:, -1, :] + 1.0


def test_recursive_forecast_feeds_back_its_own_outputs():
    from rnncourse.keras_models.forecasting import recursive_forecast

    inputs = np.arange(10, dtype=np.float64).reshape(2, 5, 1)
    path = recursive_forecast(_NextIsLastPlusOne(), inputs, 3)
    assert np.array_equal(path, [[5, 6, 7], [10, 11, 12]])
    with pytest.raises(ValueError, match="steps"):
        recursive_forecast(_NextIsLastPlusOne(), inputs, 0)
    with pytest.raises(ValueError, match=r"\(N, L, 1\)"):
        recursive_forecast(_NextIsLastPlusOne(), inputs[..., 0], 2)


def test_importing_the_forecasting_modules_does_not_start_tensorflow():
    import subprocess
    import sys

    code = ("import sys, rnncourse.keras_models.forecasting, rnncourse.data.windows, rnncourse.data.co2, "
            "rnncourse.baselines.forecasting; print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
