"""Step reads built a column at a time (``step_reads._plain_records``: a read whose rows are all
plain) give the records the row loop gives, value for value, type for type, with the same sharing
of one value per text per read; a read that is not plain in any way goes to the row loop."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from gym_gui.telemetry import step_reads
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore

_GRID = {"kind": "grid", "rows": 2, "cols": 2, "cells": ["SF", "HG"]}
# before the stream's first time, across seconds and minutes, the last microsecond of a second
_STAMPS = ["2026-03-04T05:06:07.999999+00:00", "2026-03-04T05:06:08.000000+00:00",
           "2026-03-04T05:06:06.000001+00:00", "2026-03-04T05:06:07.000000+00:00",
           "2026-03-04T04:59:59.999999+00:00", "2026-03-04T05:06:08.000500+00:00"]


def _plain(i: int, **changes: Any) -> dict[str, Any]:
    payload = {"episode_index": 0, "step_index": i, "action": i % 3, "observation": [i % 2, 0.5, -0.0],
               "reward": float(i), "terminated": i == 5, "truncated": False,
               "info": {"prob": 1.0, "lives": i % 2}, "render_payload": {**_GRID, "agent": [i % 2, 1]}}
    payload.update(changes)
    return {k: v for k, v in payload.items() if v is not _DROP}


_DROP: Any = object()


def _events(*payloads: dict[str, Any], agent: str | None = "a1") -> list[TelemetryEvent]:
    return [TelemetryEvent(Topic.STEP_APPENDED, "run", agent, 1 + i, _STAMPS[i % len(_STAMPS)], p)
            for i, p in enumerate(payloads)]


_CASES: dict[str, tuple[list[dict[str, Any]], bool]] = {  # name: payloads, read by the column path
    "plain": ([_plain(i) for i in range(6)], True),
    "no render payload": ([_plain(i, render_payload=_DROP) for i in range(6)], True),
    "null render payload and info": ([_plain(i, render_payload=None, info=None) for i in range(6)], True),
    "texts": ([_plain(i, action="up", observation={"x": [i]}, info="z" * 3000, render_payload="grid")
               for i in range(6)], True),
    "one without render payload": ([_plain(i, **({"render_payload": _DROP} if i == 2 else {})) for i in range(6)],
                                   False),
    "one without info": ([_plain(i, **({"info": _DROP} if i == 3 else {})) for i in range(6)], False),
    "one with extras": ([_plain(i, **({"hint": 1} if i == 4 else {})) for i in range(6)], False),
    "one reward -0.0 (in the extras)": ([_plain(i, **({"reward": -0.0} if i == 1 else {})) for i in range(6)], False),
    "one without action": ([_plain(i, **({"action": _DROP} if i == 0 else {})) for i in range(6)], False),
}


def _fields(record: Any) -> list[Any]:
    return [record.run_id, record.agent_id, record.seq_id, record.ts_iso, record.episode_index, record.step_index,
            record.reward, record.terminated, record.truncated, record.payload]


def _typed(value: Any) -> Any:
    """``value`` with every leaf paired with its type and sign (bool is not int, -0.0 is not 0.0)."""
    if type(value) is dict:
        return [(k, _typed(v)) for k, v in value.items()]
    if type(value) is list:
        return [_typed(v) for v in value]
    return (type(value), repr(value))


def _sharing(records: list[Any]) -> list[list[int]]:
    """Which records hold the same object for each payload value (by first holder)."""
    first: dict[int, int] = {}
    return [[first.setdefault(id(v), n) for v in r.payload.values() if type(v) in (dict, list)]
            for n, r in enumerate(records)]


def _both(store: TelemetrySQLiteStore, monkeypatch: pytest.MonkeyPatch, agent: str,
          episode: int = 0) -> tuple[list[Any], list[Any], bool]:
    """The records of the store's read, the row loop's records, and whether the column path read them."""
    calls: list[bool] = []
    real = step_reads._plain_records

    def spy(*args: Any) -> Any:
        out = real(*args)
        calls.append(out is not None)
        return out

    monkeypatch.setattr(step_reads, "_plain_records", spy)
    new = store.steps_for_episode("run", agent or None, episode)
    monkeypatch.setattr(step_reads, "_plain_records", lambda *args: None)
    old = store.steps_for_episode("run", agent or None, episode)
    monkeypatch.setattr(step_reads, "_plain_records", real)
    return new, old, any(calls)


@pytest.mark.parametrize("name", list(_CASES))
@pytest.mark.parametrize("agent", ["a1", ""])
def test_a_read_gives_the_row_loops_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str,
                                            agent: str) -> None:
    payloads, column_path = _CASES[name]
    with TelemetrySQLiteStore(tmp_path / "t.sqlite") as store:
        result = store.write_batch(_events(*payloads, agent=agent or None))
        assert not result.rejected and not result.lost
        new, old, used = _both(store, monkeypatch, agent)
        assert used is column_path
        assert len(new) == len(old) == len(payloads)
        assert [_typed(_fields(r)) for r in new] == [_typed(_fields(r)) for r in old]
        assert new == old and _sharing(new) == _sharing(old)
        assert [r.ts_iso for r in new] == _STAMPS[:len(payloads)]
        assert [type(r.terminated) for r in new] == [bool] * len(payloads)
        again, _, _ = _both(store, monkeypatch, agent)
        held = {id(v) for r in new for v in r.payload.values() if type(v) in (dict, list)}
        assert not held & {id(v) for r in again for v in r.payload.values() if type(v) in (dict, list)}


def test_a_reference_missing_from_step_values_goes_to_the_row_loop(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "t.sqlite"
    with TelemetrySQLiteStore(path) as store:
        store.write_batch(_events(*(_plain(i) for i in range(6))))
    conn = sqlite3.connect(str(path))
    with conn:
        removed = conn.execute("DELETE FROM step_values WHERE ref = (SELECT MIN(ref) FROM step_values)").rowcount
    conn.close()
    assert removed >= 1
    with TelemetrySQLiteStore(path) as store:
        new, old, used = _both(store, monkeypatch, "a1")
    assert not used
    assert [_typed(_fields(r)) for r in new] == [_typed(_fields(r)) for r in old]
    assert any("info" not in r.payload or "render_payload" not in r.payload for r in new)


def test_an_episode_with_no_rows_reads_as_none(tmp_path: Path) -> None:
    with TelemetrySQLiteStore(tmp_path / "t.sqlite") as store:
        store.write_batch(_events(*(_plain(i) for i in range(3))))
        assert store.steps_for_episode("run", "a1", 7) == []
        assert store.steps_for_episode("run", "nobody", 0) == []


def test_interned_texts_are_read_once_per_connection_until_another_connection_commits(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite"
    with TelemetrySQLiteStore(path) as store:
        store.write_batch(_events(*(_plain(i) for i in range(6))))
        first = store.steps_for_episode("run", "a1", 0)
        statements: list[str] = []
        store._reader().set_trace_callback(statements.append)
        assert store.steps_for_episode("run", "a1", 0) == first
        assert not [s for s in statements if "step_values" in s]  # the texts kept from the first read
        other = sqlite3.connect(str(path))
        with other:  # another connection changes an interned text (what a rewrite of the stream could do)
            ref = other.execute("SELECT ref FROM step_values WHERE json LIKE '%\"lives\":1%'").fetchone()[0]
            other.execute("UPDATE step_values SET json = ? WHERE ref = ?", ('{"prob":0.5,"lives":7}', ref))
        other.close()
        statements.clear()
        again = store.steps_for_episode("run", "a1", 0)
        assert [s for s in statements if "step_values" in s]
        assert [r.payload["info"] for r in again] == [
            {"prob": 1.0, "lives": 0} if i % 2 == 0 else {"prob": 0.5, "lives": 7} for i in range(6)]
        store._reader().set_trace_callback(None)
