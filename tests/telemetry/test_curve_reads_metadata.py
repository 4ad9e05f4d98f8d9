"""load_curves decodes a piece's metadata texts as one JSON array with orjson: integers beyond 64
bits (which orjson reads as their correctly rounded float) give the numbers the live path's ``num``
gives the integers, at the top level and nested; a piece with a text orjson refuses is read text by
text; the values equal the live path's, bit for bit."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from gym_gui.live.curves import CurveData, point_from_payload
from gym_gui.telemetry.curve_reads import load_curves_from_store
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore

RUN, AGENT = "run-meta", "a"
TS = "2024-05-01T12:00:00.000000+00:00"
BIG = [2 ** 53 + 1, 2 ** 63 - 1, 2 ** 63, 2 ** 64 - 1, 2 ** 64, 2 ** 64 + 1, 10 ** 20 + 1, 3 ** 90, -(2 ** 63),
       -(2 ** 63) - 1, -(2 ** 64) - 3, -(10 ** 30) - 7, 2 ** 1023 * 3 // 2, 2 ** 1024 - 2 ** 971, 2 ** 1024 - 2 ** 970 - 1]


def write_metadata(store: TelemetrySQLiteStore, metadata: list[Any], *, outcome: str = "success") -> None:
    """One stored episode per item of ``metadata`` (episode indices 0, 1, ...)."""
    store.write_batch([TelemetryEvent(Topic.EPISODE_FINALIZED, RUN, AGENT, i + 1, TS,
                                      {"episode_index": i, "total_reward": 1.0, "length": 2, "outcome": outcome,
                                       "metadata": m}) for i, m in enumerate(metadata)])


def assert_live(store: TelemetrySQLiteStore, compared: Callable[[str], bool] = lambda _name: True) -> CurveData:
    """The curves read from disk: the live path's series names, and the live path's values in
    every series ``compared`` says (-0.0 stays -0.0)."""
    want = CurveData()
    want.add_points([p for r in store.episode_records(RUN, AGENT) for p in [point_from_payload(r.payload, r.ts_iso)]
                     if p is not None])
    got = load_curves_from_store(store, RUN, AGENT)
    assert got.series_names() == want.series_names()
    for name in filter(compared, got.series_names()):
        a, b = got.column(name), want.column(name)
        assert np.array_equal(a, b, equal_nan=True), name
        assert np.array_equal(np.signbit(a), np.signbit(b)), name
    return got


def test_integers_beyond_64_bits_give_the_live_numbers(store: TelemetrySQLiteStore) -> None:
    write_metadata(store, [{"big": value, "nested": {"n": value, "l": [value]}, "epsilon": 0.05} for value in BIG])
    got = assert_live(store)
    assert got.column("meta:big")[:4].tolist() == [float(v) for v in BIG[:4]]
    assert got.column("meta:big")[-1] == float(BIG[-1])  # (the largest integer that rounds to a finite float)


def test_a_text_orjson_refuses_sends_its_piece_text_by_text(store: TelemetrySQLiteStore) -> None:
    write_metadata(store, [{"loss": 0.5 + i, "epsilon": 0.1} for i in range(50)]
           + [{"loss": float("nan"), "lr": float("inf"), "epsilon": 0.1}, {"lone": "\ud800", "loss": 2.0}, None,
              [1, 2], "text", {"loss": 10 ** 30, "success": True}])
    got = assert_live(store)
    assert got.episode_count == 56 and got.column("success")[-1] == 1.0
