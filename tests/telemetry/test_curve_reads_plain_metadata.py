"""load_curves takes a piece's metadata columns straight from its decoded rows when every row is a
dict without a success key (a key taken from every row shows they are dicts): whatever the rows hold
(texts, booleans, lists, nested objects, missing keys, rows that are no dicts, keys that spell
"true", quotes in keys, huge integers, -0.0, NaN), the columns and success equal the live path's."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gym_gui.live.curves import CurveData
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore
from test_curve_reads_metadata import assert_live, write_metadata


def _check(metadata: list[Any]) -> CurveData:
    with tempfile.TemporaryDirectory() as tmp:
        store = TelemetrySQLiteStore(Path(tmp) / "plain.sqlite")
        try:
            write_metadata(store, metadata, outcome="failure")
            return assert_live(store, lambda name: name == "success" or name.startswith("meta:"))
        finally:
            store.close()


def test_numbers_with_a_constant_text_and_missing_keys() -> None:
    rows: list[Any] = [{"episode_seed": i, "policy": "random", "epsilon": 0.5 / (i + 1)} for i in range(30)]
    rows += [{"epsilon": -0.0, "loss": None}, {"loss": 2 ** 64 + 1}, {"epsilon": 1e308, "loss": -5}]
    got = _check(rows)
    assert got.series_names()[-2:] == ["meta:epsilon", "meta:loss"]
    assert np.signbit(got.column("meta:epsilon")[30])


def test_values_the_columns_must_not_take_as_numbers() -> None:
    got = _check([{"a": 1.5, "flag": True}, {"a": False, "flag": 2.0}, {"a": "3.5", "true": 1},
                  {"a": [1.0], "nested": {"a": 1.0}}, {"a": 4, 'q"k': 5.0, "x": float("nan")}])
    assert got.column("meta:a").tolist()[:1] == [1.5] and np.isnan(got.column("meta:a")[1:4]).all()


def test_rows_that_are_not_dicts_and_success_keys() -> None:
    _check([{"a": 1.0}, [1, 2], {"a": 2.0}])
    _check([{"a": 1.0}, "ab", {"a": 2.0}])
    _check([{"a": 1.0}, ["a"], {"a": 2.0}])
    _check([{"a": 1.0}, None, {"b": 2.0}])
    _check([{"a": 1.0}, 7, {"b": 2.0}])
    got = _check([{"a": 1.0, "success": True}, {"a": 2.0, "is_success": False}, {"a": 3.0}])
    assert got.column("success").tolist()[:2] == [1.0, 0.0]
    _check([{"seed": 1}, [], {}])  # no column at all


_keys = st.sampled_from(["a", "b", "seed", "true", "false_alarm", 'q"k', "ü", "success", "is_success", ""])
_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
                     st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(["", "x", "true", '"', "1.5"]))
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=2) | st.dictionaries(_keys, inner, max_size=2),
                       max_leaves=4)
_rows = st.one_of(st.dictionaries(_keys, _values, max_size=4), st.dictionaries(_keys, _scalars, max_size=4),
                  st.dictionaries(st.sampled_from(["a", "b", "c"]), st.floats(allow_nan=False) | st.integers(),
                                  max_size=3), _values)


@settings(max_examples=40, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_rows, min_size=1, max_size=12))
def test_any_rows_give_the_live_columns(metadata: list[Any]) -> None:
    _check(metadata)
