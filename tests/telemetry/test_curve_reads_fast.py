"""load_curves gives what the live path gives: every stored episode through ``decode_episode`` and
``point_from_payload`` into ``CurveData.add_points`` (the reference), value for value, for odd rows
too: NaN / Infinity in JSON, missing or non-numeric metadata, success keys in the extras, booleans,
timestamps of every layout, extras that override a column, several pieces of rows."""

from __future__ import annotations

import math
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gym_gui.live.curves import CurveData, iso_to_epoch_s, point_from_payload
from gym_gui.telemetry import curve_reads
from gym_gui.live.iso_epochs import epoch_seconds
from gym_gui.telemetry.curve_reads import load_curves, load_curves_from_store
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore

RUN, AGENT = "run-fast", "a"
COLUMNS = ("index", "return", "length", "success", "wall", "steps_end", "return_mean", "success_rate")
TS = "2024-05-01T12:00:00.000000+00:00"


def reference(store: TelemetrySQLiteStore, run_id: str, agent_id: str | None, window: int = 100) -> CurveData:
    """The live path over the stored records: the slow, obviously right curves."""
    data = CurveData(window=window)
    points = [point_from_payload(r.payload, r.ts_iso) for r in store.episode_records(run_id, agent_id)
              if r.agent_id == agent_id]
    data.add_points([p for p in points if p is not None])
    return data


def assert_same(got: CurveData, want: CurveData) -> None:
    assert got.series_names() == want.series_names()
    assert got.extra_series_dropped == want.extra_series_dropped
    names = list(COLUMNS) + [n for n in want.series_names() if n.startswith("meta:")]
    for name in names:
        a, b = got.column(name), want.column(name)
        assert a.shape == b.shape, name
        assert np.array_equal(a, b, equal_nan=True), (name, a[:8], b[:8])
        both = ~np.isnan(a)
        assert np.array_equal(np.signbit(a[both]), np.signbit(b[both])), name  # -0.0 stays -0.0


def episode(seq: int, index: int, ts_iso: str = TS, agent: str = AGENT, **payload: Any) -> TelemetryEvent:
    return TelemetryEvent(Topic.EPISODE_FINALIZED, RUN, agent, seq, ts_iso, {"episode_index": index, **payload})


NAN, INF = float("nan"), float("inf")
ODD_PAYLOADS: list[dict[str, Any]] = [
    {"total_reward": 1.0, "length": 10, "terminated": True, "truncated": False, "outcome": "success",
     "metadata": {"epsilon": 0.05, "episode_seed": 3, "loss": 0.25}},
    {"total_reward": 0.0, "length": 7, "terminated": True, "truncated": False},  # no outcome, no metadata
    {"total_reward": 2.5, "terminated": True, "metadata": {"loss": NAN, "lr": INF, "beta": -INF}},  # NaN tokens
    {"total_reward": NAN, "length": 3, "terminated": True},  # NaN return: kept in the extras
    {"total_reward": -0.0, "length": 1, "truncated": True},  # -0.0 return: its sign in the extras
    {"total_reward": 10 ** 30, "length": 2},  # an integer beyond 64 bits: in the extras
    {"total_reward": "high", "length": 2.5, "terminated": 1, "outcome": 7},  # misfits: all in the extras
    {"total_reward": 3.0, "outcome": "SUCCESS", "metadata": None},
    {"total_reward": 3.0, "outcome": "Failed", "terminated": True, "metadata": [1, 2, 3]},
    {"total_reward": 3.0, "outcome": "truncated", "metadata": 5},
    {"total_reward": 3.0, "outcome": "goal", "truncated": True, "metadata": "text"},
    {"total_reward": -1.0, "terminated": True, "metadata": {"is_success": True}},
    {"total_reward": 1.0, "terminated": True, "outcome": "success", "metadata": {"success": False, "is_success": True}},
    {"total_reward": 1.0, "outcome": "failure", "metadata": {"success": 1, "is_success": "yes"}},  # not booleans
    {"total_reward": 1.0, "outcome": "success", "success": False},  # the payload's own boolean, in the extras
    {"total_reward": 0.0, "is_success": True, "metadata": {"success": False}},  # the payload's wins
    {"total_reward": 0.0, "success": "no", "note": "kept", "metadata": {"is_success": False}},
    {"total_reward": 1.5, "metadata": {"flag": True, "off": False, "name": "x", "nested": {"a": 1}, "list": [1.0],
                                       "none": None, "int": 4, "big": 2 ** 70, "neg_big": -(2 ** 64) - 1}},
    {"total_reward": 1.5, "metadata": {"seed": 1, "pid": 2, "worker_id": 3, "env_seed": 4, "episode_index": 5}},
    {"total_reward": 1.5, "metadata": {"quote\"key": 1.0, "üñí": 2.0, "": 3.0, "a.b": 4.0, "$x": 5.0}},
    {"total_reward": 1.5, "metadata": {"lone": "\ud800", "value": 6.0}},  # a lone surrogate: stdlib decodes it
    {"total_reward": 1.5, "metadata": {"deep": [[[[1]]]], "value": 1e-320, "huge": 1e308, "tiny": -1e-310}},
]
ODD_TIMES = [
    "2024-05-01T12:00:00.000000+00:00", "2024-05-01T12:00:00+00:00", "2024-05-01T12:00:00.123456Z",
    "2024-05-01T12:00:00Z", "2024-05-01T12:00:00.5", "2024-05-01T12:00:00", "2024-05-01T12:00:00.123456",
    "2024-05-01T17:30:00.000001+05:30", "2024-05-01T04:00:00.999999-08:00", "2024-05-01 12:00:00+00:00",
    "2024-05-01T12:00:00.123+00:00", "2024-02-29T00:00:00+00:00", "2023-02-29T00:00:00+00:00",
    "2024-13-01T00:00:00+00:00", "2024-05-01T24:00:00+00:00", "2024-05-01T23:59:60+00:00",
    "0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59.999999+00:00", "0000-01-01T00:00:00+00:00",
    "1969-12-31T23:59:59.999999+00:00", "2024-05-01T12:00:00+24:00", "2024-05-01T12:00:00+23:59",
    "not a time", "2024-05-01T12:00:0x+00:00", "２０２４-05-01T12:00:00+00:00", "2024-05-01T12:00:00.000000+0000",
    "2024-05-01T12:00:00-00:00", "2024-05-01T12:00:00z", "2024-05-01",
]


def test_odd_rows_read_back_as_the_live_path_reads_them(store: TelemetrySQLiteStore) -> None:
    events = []
    for i, payload in enumerate(ODD_PAYLOADS * 2):
        events.append(episode(i + 1, (i * 7919) % 1000 - 300, ODD_TIMES[i % len(ODD_TIMES)], **payload))
    store.write_batch(events)
    got = load_curves_from_store(store, RUN, AGENT, window=3)
    assert got.episode_count == len(events)
    assert_same(got, reference(store, RUN, AGENT, window=3))


def test_a_stream_without_episodes_and_other_streams_stay_apart(store: TelemetrySQLiteStore) -> None:
    assert load_curves_from_store(store, RUN, AGENT).episode_count == 0
    store.write_batch([episode(1, 0, agent="b", total_reward=5.0), episode(2, 1, total_reward=1.0)])
    got = load_curves_from_store(store, RUN, AGENT)
    assert got.column("return").tolist() == [1.0]
    assert_same(got, reference(store, RUN, AGENT))


def test_many_pieces_and_many_metadata_keys(store: TelemetrySQLiteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(curve_reads, "FETCH_ROWS", 7)  # pieces of 7 rows, each with its own keys
    events = [episode(i + 1, i * 3, TS, total_reward=float(i % 5), length=i, terminated=i % 2 == 0,
                      outcome=("success", "failure", None)[i % 3],
                      metadata={f"k{i % 40:02d}": float(i), "always": i / 3, "sometimes": NAN if i % 4 else 1.0})
              for i in range(100)]
    events.append(episode(200, 500, TS, total_reward=-0.0, metadata={"late": 1.0}))  # by reference, a new key
    store.write_batch(events)
    got = load_curves_from_store(store, RUN, AGENT, window=5)
    assert got.extra_series_dropped > 0  # 43 keys for 32 series
    assert_same(got, reference(store, RUN, AGENT, window=5))


def test_a_bare_connection_reads_the_same(store: TelemetrySQLiteStore) -> None:
    import sqlite3

    store.write_batch([episode(i + 1, i, ODD_TIMES[i % len(ODD_TIMES)], **p) for i, p in enumerate(ODD_PAYLOADS)])
    conn = sqlite3.connect(str(store.path))
    try:
        assert_same(load_curves(conn, RUN, AGENT), reference(store, RUN, AGENT))
    finally:
        conn.close()


def test_an_integer_beyond_float_range_in_metadata_is_not_a_number(store: TelemetrySQLiteStore) -> None:
    # The live rule (num) raises OverflowError on float(10**400); the stored curves call it no number.
    store.write_batch([episode(1, 0, TS, total_reward=1.0, metadata={"huge": 10 ** 400, "ok": 2.0})])
    got = load_curves_from_store(store, RUN, AGENT)
    assert got.series_names()[-1:] == ["meta:ok"] and got.column("meta:ok").tolist() == [2.0]


@pytest.mark.parametrize("text", ODD_TIMES)
def test_epoch_seconds_is_iso_to_epoch_s_to_the_bit(text: str) -> None:
    got, want = epoch_seconds([text, text])[0], iso_to_epoch_s(text)
    assert (math.isnan(got) and math.isnan(want)) or got == want


def test_epoch_seconds_of_mixed_layouts_and_non_texts() -> None:
    texts: list[Any] = ODD_TIMES + [None, b"2024-05-01T12:00:00+00:00", 5]
    got = epoch_seconds(texts)
    want = np.array([iso_to_epoch_s(t) for t in texts])
    assert np.array_equal(got, want, equal_nan=True)
    assert epoch_seconds([]).shape == (0,)


_stamps = st.builds(
    lambda dt, offset_min, fraction, zone: _iso(dt, offset_min, fraction, zone),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59), st.booleans(), st.sampled_from(["+", "Z", ""]))


def _iso(dt: datetime, offset_min: int, fraction: bool, zone: str) -> str:
    dt = dt.replace(microsecond=dt.microsecond if fraction else 0)
    if zone == "Z":
        return dt.isoformat(timespec="microseconds" if fraction else "seconds") + "Z"
    if zone == "":
        return dt.isoformat(timespec="microseconds" if fraction else "seconds")
    return dt.replace(tzinfo=timezone(timedelta(minutes=offset_min))).isoformat(
        timespec="microseconds" if fraction else "seconds")


@settings(max_examples=150, derandomize=True, deadline=None)
@given(st.lists(_stamps, min_size=1, max_size=20))
def test_epoch_seconds_property(texts: list[str]) -> None:
    got = epoch_seconds(texts)
    want = np.array([iso_to_epoch_s(t) for t in texts])
    assert np.array_equal(got, want, equal_nan=True)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2 ** 80), max_value=2 ** 80)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=6)
_metadata = st.none() | _json_values | st.dictionaries(
    st.sampled_from(["loss", "success", "is_success", "seed", "lr", "k"]) | st.text(max_size=3), _json_values,
    max_size=5)
_payloads = st.fixed_dictionaries({}, optional={
    "total_reward": (st.floats(allow_nan=True) | st.integers(min_value=-(2 ** 70), max_value=2 ** 70)
                     | st.text(max_size=2)),
    "length": st.integers(min_value=0, max_value=10 ** 6) | st.floats(allow_nan=False),
    "terminated": st.booleans() | st.integers(0, 1), "truncated": st.booleans() | st.none(),
    "outcome": st.sampled_from(["success", "Succeeded", "failure", "FAILED", "truncated", "other", ""]) | st.none(),
    "metadata": _metadata, "success": st.booleans() | st.integers(0, 1), "is_success": st.booleans(),
    "note": st.text(max_size=3),
})


@settings(max_examples=40, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_payloads, _stamps | st.sampled_from(ODD_TIMES)), min_size=1, max_size=12))
def test_load_curves_property(rows: list[tuple[dict[str, Any], str]]) -> None:
    with tempfile.TemporaryDirectory(prefix="curves_") as tmp:
        store = TelemetrySQLiteStore(Path(tmp) / "p.sqlite")
        try:
            store.write_batch([episode(i + 1, i * 2, ts, **payload) for i, (payload, ts) in enumerate(rows)])
            assert_same(load_curves_from_store(store, RUN, AGENT, window=2), reference(store, RUN, AGENT, window=2))
        finally:
            store.close()


def test_texts_holding_the_unit_separator_are_read_row_by_row(store: TelemetrySQLiteStore) -> None:
    # the aggregates join texts with U+001F: a text holding one cannot be split, its piece goes row by row
    store.write_batch([
        episode(1, 0, TS, total_reward=1.0, outcome="success\x1f", terminated=True, metadata={"k\x1f": 1.0}),
        episode(2, 1, "2024-05-01T12:00:00\x1f+00:00", total_reward=0.5, outcome="failure", metadata={"k\x1f": 2.0}),
        episode(3, 2, TS, total_reward=2.0, outcome="success", metadata={"m": 3.0}),
    ])
    got = load_curves_from_store(store, RUN, AGENT)
    assert got.column("success").tolist() == [1.0, 0.0, 1.0]
    assert_same(got, reference(store, RUN, AGENT))


@pytest.mark.parametrize("returns", [[1.0, 2.0, -3.0, 0.0], [1.5, 2.0, 1e300, 2.0 ** 63], [INF, 1.0, -INF, 2.0]])
def test_whole_and_fractional_returns_read_back_exactly(store: TelemetrySQLiteStore, returns: list[float]) -> None:
    store.write_batch([episode(i + 1, i, TS, total_reward=r, terminated=True) for i, r in enumerate(returns)])
    assert_same(load_curves_from_store(store, RUN, AGENT), reference(store, RUN, AGENT))


def test_joined_epoch_seconds_splits_only_what_it_can_split_exactly() -> None:
    from gym_gui.live.iso_epochs import joined_epoch_seconds

    texts = [TS, "2024-05-01T12:00:00.000001+05:30", "2024-13-01T00:00:00.000000+00:00", "x" * 32]
    got = joined_epoch_seconds("\x1f".join(texts), len(texts), "\x1f")
    assert got is not None and np.array_equal(got, [iso_to_epoch_s(t) for t in texts], equal_nan=True)
    assert joined_epoch_seconds("\x1f".join([TS, TS[:-1] + "\x1f"]), 2, "\x1f") is None  # a text holds it
    assert joined_epoch_seconds("\x1f".join([TS[:-1], TS + "0"]), 2, "\x1f") is None  # lengths differ
    assert joined_epoch_seconds("2024-05-01", 1, "\x1f") is None  # not a layout it reads


@pytest.mark.parametrize("indices", [
    list(range(23)),  # dense: pieces found without a scan
    [i * 1000 for i in range(23)],  # sparse: pieces found by a scan of the index
    list(range(5)) + [10 ** 6 + i * 97 for i in range(9)] + list(range(2 * 10 ** 6, 2 * 10 ** 6 + 9)),  # both
    [-(2 ** 63), -(2 ** 62), -5, 0, 2 ** 62, 2 ** 63 - 4096, 2 ** 63 - 2048, 2 ** 63 - 1],  # the ends of int64
])
def test_pieces_by_index_range_and_by_count_read_every_episode_once(
        store: TelemetrySQLiteStore, monkeypatch: pytest.MonkeyPatch, indices: list[int]) -> None:
    monkeypatch.setattr(curve_reads, "FETCH_ROWS", 4)
    store.write_batch([episode(n + 1, index, TS, total_reward=float(n), length=n, outcome="success",
                               metadata={"n": n}) for n, index in enumerate(indices)])
    got = load_curves_from_store(store, RUN, AGENT, window=3)
    assert got.column("return").tolist() == [float(n) for n in range(len(indices))]
    assert_same(got, reference(store, RUN, AGENT, window=3))


@pytest.mark.parametrize("fetch_rows", [4, 2048])
@pytest.mark.parametrize("indices", [
    [-(2 ** 63) + i for i in range(9)],  # one float64 for all of them
    [-(2 ** 63), -(2 ** 63) + 1, -(2 ** 63) + 1024, -(2 ** 63) + 1025, 0, 2 ** 63 - 2, 2 ** 63 - 1],
    [2 ** 53 + i for i in range(6)],  # float64 steps of 2 here
])
def test_indices_float64_cannot_tell_apart_give_every_point_the_live_path_gives(
        store: TelemetrySQLiteStore, monkeypatch: pytest.MonkeyPatch, fetch_rows: int, indices: list[int]) -> None:
    monkeypatch.setattr(curve_reads, "FETCH_ROWS", fetch_rows)
    events = [episode(n + 1, index, TS, total_reward=float(n), length=n, outcome="success", metadata={"n": n})
              for n, index in enumerate(indices)]
    events.append(episode(100, indices[2] + 0, TS, total_reward=-0.0, metadata={"late": 1.0}))  # (same index: ignored)
    events.append(episode(101, indices[0] + 3 * 10 ** 6, TS, total_reward=-0.0, length=3,
                          metadata={"late": 1.0}))  # read by reference (its return's sign in the extras)
    store.write_batch(events)
    want = reference(store, RUN, AGENT, window=3)
    got = load_curves_from_store(store, RUN, AGENT, window=3)
    assert got.episode_count == want.episode_count == len(indices) + 1
    assert_same(got, want)
