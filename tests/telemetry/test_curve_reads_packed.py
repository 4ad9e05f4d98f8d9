"""load_curves reads a piece's lengths and success codes as one packed integer a row and its whole
returns as integers: negative and large lengths, every success code, NULL lengths, products
beyond int64, NaN / fractional / huge returns all read back as the live path reads them (the
reference of test_curve_reads_fast), the odd ones through the row-by-row fallbacks."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gym_gui.telemetry import curve_reads
from gym_gui.telemetry.curve_reads import load_curves_from_store
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore
from test_curve_reads_fast import AGENT, RUN, assert_same, episode, reference

OUTCOMES = ("success", "failure", "Success", "timeout", "", None)


def _write(store: TelemetrySQLiteStore, rows: list[dict[str, Any]]) -> None:
    store.write_batch([episode(n + 1, n, **row) for n, row in enumerate(rows)])


def _no_row_by_row(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(rows: Any) -> Any:
        raise AssertionError("the piece was read row by row")
    monkeypatch.setattr(curve_reads, "_rows_piece", refuse)


def test_negative_and_large_lengths_with_every_success_code_come_from_the_aggregates(
        store: TelemetrySQLiteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    lengths = [-5, -1, 0, 1, 7, 2 ** 53 + 1, 2 ** 60, -(2 ** 60)]
    rows = [{"total_reward": float(n % 3 - 1), "length": length, "outcome": OUTCOMES[n % len(OUTCOMES)],
             "terminated": n % 2 == 0, "truncated": n % 3 == 0}
            for n, length in enumerate(lengths * 3)]
    _write(store, rows)
    _no_row_by_row(monkeypatch)
    got = load_curves_from_store(store, RUN, AGENT, window=3)
    assert got.column("length").tolist()[:len(lengths)] == [float(v) for v in lengths]
    assert_same(got, reference(store, RUN, AGENT, window=3))


@pytest.mark.parametrize("odd_length", [None, 2 ** 62, 2 ** 63 - 1, -(2 ** 63)])
def test_a_null_length_or_a_product_beyond_int64_reads_the_piece_row_by_row(
        store: TelemetrySQLiteStore, odd_length: int | None) -> None:
    rows: list[dict[str, Any]] = [{"total_reward": 1.0, "length": n + 1, "outcome": "success"} for n in range(20)]
    if odd_length is None:
        del rows[7]["length"]
    else:
        rows[7]["length"] = odd_length
    _write(store, rows)
    assert_same(load_curves_from_store(store, RUN, AGENT, window=4), reference(store, RUN, AGENT, window=4))


@pytest.mark.parametrize("odd_return", [math.nan, 0.5, -2.25, 1e300, -1e300, float(2 ** 63), math.inf, None])
def test_returns_that_are_not_whole_int64_numbers_are_read_row_by_row(
        store: TelemetrySQLiteStore, odd_return: float | None) -> None:
    rows: list[dict[str, Any]] = [{"total_reward": float(n), "length": 3, "outcome": "failure"} for n in range(20)]
    rows[11]["total_reward"] = odd_return
    _write(store, rows)
    assert_same(load_curves_from_store(store, RUN, AGENT, window=4), reference(store, RUN, AGENT, window=4))


_lengths = st.one_of(st.none(), st.integers(-(2 ** 63), 2 ** 63 - 1), st.integers(-100, 100))
_returns = st.one_of(st.none(), st.floats(allow_nan=True), st.integers(-(2 ** 63), 2 ** 63 - 1).map(float),
                     st.integers(-50, 50).map(float))
_row = st.fixed_dictionaries({"total_reward": _returns, "length": _lengths, "outcome": st.sampled_from(OUTCOMES),
                              "terminated": st.booleans(), "truncated": st.booleans()})


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(_row, min_size=1, max_size=30))
def test_packed_columns_property(tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    s = TelemetrySQLiteStore(tmp_path / f"prop-{len(list(tmp_path.iterdir()))}.sqlite")
    try:
        _write(s, rows)
        assert_same(load_curves_from_store(s, RUN, AGENT, window=3), reference(s, RUN, AGENT, window=3))
    finally:
        s.close()
