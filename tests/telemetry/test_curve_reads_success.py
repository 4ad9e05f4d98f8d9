"""The success column load_curves reads in SQL (outcome words as written, then by SQLite's lower(),
then the terminated / truncated flags with the return) is, row for row, ``episode_success`` of the
stored episode: case variants, look-alike letters, texts around the words, every return a
terminated episode can have, NULL flags and outcomes; the metadata's and the extras' own booleans
still win."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from gym_gui.live.curves import CurveData, point_from_payload
from gym_gui.telemetry.curve_reads import load_curves_from_store
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore

RUN, AGENT = "run-success", "a"
TS = "2024-05-01T12:00:00.000000+00:00"
OUTCOMES: list[Any] = [
    None, "", "success", "Success", "SUCCESS", "succeeded", "SucceedeD", "failure", "FAILURE", "failed", "Failed",
    "truncated", "TRUNCATED", " success", "success ", "succes", "successful", "ſuccess", "SUCCEſſ", "ＳＵＣＣＥＳＳ",
    "İ", "failed\u0130", "goal", "timeout", "K",
]
RETURNS: list[Any] = [1.0, 0.0, -0.0, -1.0, 1e-300, float("inf"), float("-inf"), float("nan"), None, 2.5]
FLAGS: list[Any] = [None, True, False]


def _events(payloads: list[dict[str, Any]]) -> list[TelemetryEvent]:
    return [TelemetryEvent(Topic.EPISODE_FINALIZED, RUN, AGENT, i + 1, TS, {"episode_index": i, **p})
            for i, p in enumerate(payloads)]


def _reference(store: TelemetrySQLiteStore) -> np.ndarray:
    data = CurveData()
    points = [point_from_payload(r.payload, r.ts_iso) for r in store.episode_records(RUN, AGENT)]
    data.add_points([p for p in points if p is not None])
    return data.column("success")


def test_every_outcome_flag_and_return_gives_the_live_rule(store: TelemetrySQLiteStore) -> None:
    payloads = []
    for outcome, total, terminated, truncated in itertools.product(OUTCOMES, RETURNS, FLAGS, FLAGS):
        payload: dict[str, Any] = {"total_reward": total, "length": 3}
        for name, value in (("outcome", outcome), ("terminated", terminated), ("truncated", truncated)):
            if value is not None:
                payload[name] = value
        payloads.append(payload)
    store.write_batch(_events(payloads))
    got = load_curves_from_store(store, RUN, AGENT).column("success")
    want = _reference(store)
    assert len(got) == len(payloads)
    assert np.array_equal(got, want, equal_nan=True)
    assert {0.0, 1.0} <= set(got[~np.isnan(got)].tolist()) and np.isnan(got).any()


def test_the_workers_own_booleans_outrank_the_columns(store: TelemetrySQLiteStore) -> None:
    payloads = [
        {"total_reward": 1.0, "outcome": "success", "metadata": {"success": False}},
        {"total_reward": 0.0, "outcome": "failure", "metadata": {"is_success": True}},
        {"total_reward": 0.0, "terminated": True, "success": True},  # the payload's own, in the extras
        {"total_reward": 5.0, "outcome": "Failed", "terminated": True, "is_success": False},
        {"total_reward": 5.0, "truncated": True, "metadata": {"success": "yes"}},  # not a boolean: the flags
    ]
    store.write_batch(_events(payloads))
    got = load_curves_from_store(store, RUN, AGENT).column("success")
    assert got.tolist() == [0.0, 1.0, 1.0, 0.0, 0.0]
    assert np.array_equal(got, _reference(store), equal_nan=True)
