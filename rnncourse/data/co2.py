"""The Mauna Loa CO2 series that ships inside statsmodels, monthly, with a fixed time split.

statsmodels' `co2` data set holds weekly mean CO2 concentrations (parts per million) measured
at Mauna Loa, Hawaii, from March 1958 to December 2001: 2,284 Saturdays, 59 of them missing.
`load_co2_monthly()` fills the gaps by linear interpolation in time, averages the weeks of each
calendar month, and drops the first month (March 1958 holds a single week). The result has a
proper monthly `DatetimeIndex` (frequency "MS", month start), which is what lets statsmodels
forecast it without warnings.

`co2_split()` cuts it chronologically: training up to December 1989, validation 1990-1995,
test 1996-2001. Nothing is shuffled, so no model sees a month later than the ones it is
scored on; only the training part may be used to fit anything (scalers included).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

FIRST_MONTH = "1958-04"
VALIDATION_START = "1990-01"
TEST_START = "1996-01"


def load_co2_weekly() -> pd.Series:
    """The raw weekly series (ppm) with its missing weeks as NaN, index frequency W-SAT."""
    try:
        from statsmodels.datasets import co2
    except ModuleNotFoundError as exc:  # pragma: no cover - statsmodels is pinned
        raise ModuleNotFoundError(
            "statsmodels (which ships the Mauna Loa CO2 data) is not installed; run `make venv`"
        ) from exc
    data = co2.load_pandas().data["co2"].astype(np.float64)
    data.name = "co2"
    return data


def load_co2_monthly() -> pd.Series:
    """Monthly mean CO2 (ppm), April 1958 to December 2001: 525 months, no gaps, freq "MS".

    Missing weeks are filled by linear interpolation between their neighbours (`method="time"`;
    the weeks are evenly spaced, so this is plain linear interpolation), then each calendar
    month's weeks are averaged.
    """
    weekly = load_co2_weekly().interpolate(method="time")
    monthly = weekly.resample("MS").mean().loc[FIRST_MONTH:]
    monthly.index.freq = "MS"
    monthly.index.name = "month"
    return monthly


@dataclass(frozen=True)
class TimeSplit:
    """A series cut into consecutive training, validation and test parts.

    `n_train`, `n_validation`, `n_test` count the points of each part; the parts are
    `series[:n_train]`, `series[n_train:n_train + n_validation]` and the rest. Positions (not
    dates) are what windows and forecasts use: `bounds("test")` gives `(start, stop)`.
    """

    series: pd.Series
    n_train: int
    n_validation: int

    @property
    def n_test(self) -> int:
        return len(self.series) - self.n_train - self.n_validation

    @property
    def values(self) -> np.ndarray:
        return self.series.to_numpy(dtype=np.float64)

    def bounds(self, part: str) -> tuple[int, int]:
        """Positions [start, stop) of 'train', 'validation' or 'test'."""
        edges = {"train": (0, self.n_train),
                 "validation": (self.n_train, self.n_train + self.n_validation),
                 "test": (self.n_train + self.n_validation, len(self.series))}
        if part not in edges:
            raise ValueError(f"part must be one of {sorted(edges)}, got {part!r}")
        return edges[part]

    def part(self, part: str) -> pd.Series:
        start, stop = self.bounds(part)
        return self.series.iloc[start:stop]

    def describe(self) -> str:
        lines = []
        for name in ("train", "validation", "test"):
            s = self.part(name)
            lines.append(f"{name:<10} {s.index[0]:%Y-%m} to {s.index[-1]:%Y-%m}: {len(s):>3} months, "
                         f"{s.min():.2f} to {s.max():.2f} ppm")
        return "\n".join(lines)


def chronological_split(series: pd.Series, validation_start: str, test_start: str) -> TimeSplit:
    """Cut `series` (with a sorted DatetimeIndex) at two dates: train | validation | test."""
    if not isinstance(series, pd.Series) or not isinstance(series.index, pd.DatetimeIndex):
        raise TypeError(f"series must be a pandas Series with a DatetimeIndex, got {type(series).__name__}")
    if not series.index.is_monotonic_increasing:
        raise ValueError("series must be sorted by time (its index is not increasing)")
    v = int(series.index.searchsorted(pd.Timestamp(validation_start)))
    t = int(series.index.searchsorted(pd.Timestamp(test_start)))
    if not 0 < v < t < len(series):
        raise ValueError(f"validation_start {validation_start!r} and test_start {test_start!r} must cut "
                         f"{series.index[0]:%Y-%m}..{series.index[-1]:%Y-%m} into three non-empty parts, in order")
    return TimeSplit(series, v, t - v)


def co2_split() -> TimeSplit:
    """Monthly CO2: train 1958-04..1989-12 (381), validation 1990..1995 (72), test 1996..2001 (72)."""
    return chronological_split(load_co2_monthly(), VALIDATION_START, TEST_START)
