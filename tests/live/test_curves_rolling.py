"""rolling_mean_tail takes its windows' sums as slices of the prefix sums: the same values, to the
bit, as the prefix sums gathered at each row's window ends, for every start, window and NaN pattern."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gym_gui.live.smoothing import rolling_mean_tail


def _gathered(values: np.ndarray, window: int, start: int) -> np.ndarray:
    n = len(values)
    lo = max(0, start - window)
    part = np.asarray(values[lo:n], dtype=np.float64)
    valid = ~np.isnan(part)
    csum = np.concatenate(([0.0], np.cumsum(np.where(valid, part, 0.0))))
    ccount = np.concatenate(([0], np.cumsum(valid)))
    rows = np.arange(start, n) - lo + 1
    left = np.maximum(0, rows - window)
    total = csum[rows] - csum[left]
    count = ccount[rows] - ccount[left]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


@settings(max_examples=100, derandomize=True, deadline=None)
@given(st.lists(st.floats(allow_infinity=True) | st.sampled_from([0.0, -0.0, 1.0, float("nan")]), max_size=40),
       st.integers(min_value=1, max_value=45), st.integers(min_value=0, max_value=45))
def test_slices_give_the_gathered_windows(values: list[float], window: int, start: int) -> None:
    column = np.array(values, dtype=np.float64)
    if start > len(column):
        start = len(column)
    with np.errstate(over="ignore", invalid="ignore"):  # (sums of huge values overflow to inf in both)
        got, want = rolling_mean_tail(column, window, start), _gathered(column, window, start)
    assert got.shape == want.shape
    assert np.array_equal(got, want, equal_nan=True)
    assert np.array_equal(np.signbit(got), np.signbit(want))


def test_a_long_column_every_start() -> None:
    rng = np.random.default_rng(5)
    column = rng.normal(size=700)
    column[rng.integers(0, 700, 90)] = np.nan
    for window in (1, 2, 99, 100, 101, 699, 700, 1000):
        for start in (0, 1, 50, 99, 100, 101, 350, 699, 700):
            assert np.array_equal(rolling_mean_tail(column, window, start), _gathered(column, window, start),
                                  equal_nan=True)
