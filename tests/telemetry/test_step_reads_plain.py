"""Step reads built a column at a time (``step_reads._plain_records``: a read whose rows are all
plain) and one episode read as one JSON array (``step_reads._episode_json_records``) give the
records the row loop gives, value for value, type for type, with the same sharing of one value per
text per read; a read that is not plain in any way goes to the row loop."""

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
    "fractional, huge and infinite rewards": ([_plain(i, reward=r) for i, r in enumerate(
        [0.1, 2.0 ** 60, float("inf"), -1e-310, 9007199254740993.0 * 2, -3.0])], True),
    "texts JSON escapes": ([_plain(i, action=t, observation={t: [t]}, info={"k": t})
                            for i, t in enumerate(['"q"', "back\\slash", "nul\x00 \x1f ctl", "\u2028 é 😀",
                                                   "tab\tnew\nline", ""])], True),
}
_FAST_PATHS = ("_plain_records", "_episode_json_records")


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


def _both(store: TelemetrySQLiteStore, monkeypatch: pytest.MonkeyPatch, agent: str, episode: int = 0,
          path: str = "_episode_json_records") -> tuple[list[Any], list[Any], bool]:
    """The records of the store's read through the fast ``path`` (the other one off unless it is the
    JSON read, which comes first), the row loop's records, and whether ``path`` read them."""
    calls: list[bool] = []
    real = {name: getattr(step_reads, name) for name in _FAST_PATHS}

    def spy(*args: Any) -> Any:
        out = real[path](*args)
        calls.append(out is not None)
        return out

    monkeypatch.setattr(step_reads, path, spy)
    if path == "_plain_records":
        monkeypatch.setattr(step_reads, "_episode_json_records", lambda *args: None)
    new = store.steps_for_episode("run", agent or None, episode)
    for name in _FAST_PATHS:
        monkeypatch.setattr(step_reads, name, lambda *args: None)
    old = store.steps_for_episode("run", agent or None, episode)
    for name in _FAST_PATHS:
        monkeypatch.setattr(step_reads, name, real[name])
    return new, old, any(calls)


@pytest.mark.parametrize("path", _FAST_PATHS)
@pytest.mark.parametrize("name", list(_CASES))
@pytest.mark.parametrize("agent", ["a1", ""])
def test_a_read_gives_the_row_loops_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str,
                                            agent: str, path: str) -> None:
    payloads, column_path = _CASES[name]
    with TelemetrySQLiteStore(tmp_path / "t.sqlite") as store:
        result = store.write_batch(_events(*payloads, agent=agent or None))
        assert not result.rejected and not result.lost
        new, old, used = _both(store, monkeypatch, agent, path=path)
        assert used is column_path
        assert len(new) == len(old) == len(payloads)
        assert [_typed(_fields(r)) for r in new] == [_typed(_fields(r)) for r in old]
        assert new == old and _sharing(new) == _sharing(old)
        assert [r.ts_iso for r in new] == _STAMPS[:len(payloads)]
        assert [type(r.terminated) for r in new] == [bool] * len(payloads)
        again, _, _ = _both(store, monkeypatch, agent, path=path)
        held = {id(v) for r in new for v in r.payload.values() if type(v) in (dict, list)}
        assert not held & {id(v) for r in again for v in r.payload.values() if type(v) in (dict, list)}


@pytest.mark.parametrize("fast", _FAST_PATHS)
def test_a_reference_missing_from_step_values_goes_to_the_row_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   fast: str) -> None:
    path = tmp_path / "t.sqlite"
    with TelemetrySQLiteStore(path) as store:
        store.write_batch(_events(*(_plain(i) for i in range(6))))
    conn = sqlite3.connect(str(path))
    with conn:
        removed = conn.execute("DELETE FROM step_values WHERE ref = (SELECT MIN(ref) FROM step_values)").rowcount
    conn.close()
    assert removed >= 1
    with TelemetrySQLiteStore(path) as store:
        new, old, used = _both(store, monkeypatch, "a1", path=fast)
    assert not used
    assert [_typed(_fields(r)) for r in new] == [_typed(_fields(r)) for r in old]
    assert any("info" not in r.payload or "render_payload" not in r.payload for r in new)


@pytest.mark.parametrize("change", [
    "UPDATE step_rows SET step_index = 1.5 WHERE seq_id = 2",  # a REAL in an INTEGER column
    "UPDATE step_rows SET terminated = 0.25 WHERE seq_id = 3",
    "UPDATE step_rows SET ts_us = ts_us + 0.5 WHERE seq_id = 4",  # a REAL time
    "UPDATE step_rows SET extra_json = '{\"hint\":1}' WHERE seq_id = 2",  # extras
    "UPDATE step_rows SET reward = NULL WHERE seq_id = 5",
    "UPDATE step_rows SET reward = 'much' WHERE seq_id = 1",  # a text where a REAL belongs
    "UPDATE step_rows SET observation_json = 12 WHERE seq_id = 3",  # (TEXT affinity: the text '12')
])
def test_a_stored_value_of_another_type_reads_as_the_row_loop_reads_it(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch,
                                                                        change: str) -> None:
    path = tmp_path / "t.sqlite"
    with TelemetrySQLiteStore(path) as store:
        store.write_batch(_events(*(_plain(i) for i in range(6))))
    conn = sqlite3.connect(str(path))
    with conn:
        assert conn.execute(change).rowcount == 1
    conn.close()
    with TelemetrySQLiteStore(path) as store:
        new, old, used = _both(store, monkeypatch, "a1")
    assert used is change.startswith("UPDATE step_rows SET observation_json = 12")
    assert len(new) == 6 and [_typed(_fields(r)) for r in new] == [_typed(_fields(r)) for r in old]


def _split_payload(i: int) -> dict[str, Any]:
    """Steps whose info changes at every step: after the stream's first whole texts, split (schema
    version 5) into a template and its number, an integer or a float, with fractional rewards."""
    number: Any = 1.0 / (1 + i) if i % 3 else 1000 + i
    return _plain(i, info={"prob": 1.0, "loss": number} if i % 5 else {"frame": number}, reward=0.1 * i,
                  render_payload=_DROP if i % 2 else None)


@pytest.mark.parametrize("render", ["none", "some"])
def test_split_infos_read_as_the_row_loop_reads_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      render: str) -> None:
    payloads = [_split_payload(i) for i in range(60)]
    if render == "none":
        payloads = [{k: v for k, v in p.items() if k != "render_payload"} for p in payloads]
    else:
        payloads = [{**p, "render_payload": {**_GRID, "agent": [i % 2, 1]}} for i, p in enumerate(payloads)]
    path = tmp_path / "t.sqlite"
    with TelemetrySQLiteStore(path) as store:
        store.write_batch([TelemetryEvent(Topic.STEP_APPENDED, "run", "a1", 1 + i,
                                          f"2026-03-04T05:06:{i:02d}.{i * 7919 % 1000000:06d}+00:00", p)
                           for i, p in enumerate(payloads)])
        kinds = dict(sqlite3.connect(str(path)).execute(
            "SELECT typeof(info_json), count(*) FROM step_rows WHERE typeof(extra_json) = 'blob' "
            "GROUP BY typeof(info_json)").fetchall())
        assert kinds.get("integer", 0) > 5 and kinds.get("real", 0) > 5  # split rows of both kinds
        new, old, used = _both(store, monkeypatch, "a1")
        assert used
        assert [_typed(_fields(r)) for r in new] == [_typed(_fields(r)) for r in old]
        assert new == old and _sharing(new) == _sharing(old)
        assert [r.payload["info"] for r in new] == [p["info"] for p in payloads]
        assert [r.reward for r in new] == [p["reward"] for p in payloads]


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


def test_a_stream_whose_json_read_falls_back_goes_to_the_row_fetch_for_a_while(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    with TelemetrySQLiteStore(tmp_path / "t.sqlite") as store:
        store.write_batch(_events(*(_plain(i, reward=0.1 * i) for i in range(6))))  # most rewards left out
        tries: list[bool] = []
        real = step_reads._episode_json_records

        def spy(*args: Any) -> Any:
            out = real(*args)
            tries.append(out is not None)
            return out

        monkeypatch.setattr(step_reads, "_episode_json_records", spy)
        first = store.steps_for_episode("run", "a1", 0)
        assert tries == [True]
        skipped = step_reads.StepValueCache.ROW_READS_AFTER_MISS
        reads = [store.steps_for_episode("run", "a1", 0) for _ in range(skipped)]
        assert tries == [True] and all(r == first for r in reads)  # the row fetch, the same records
        assert store.steps_for_episode("run", "a1", 0) == first
        assert tries == [True, True]  # tried again
        assert [r.reward for r in first] == [0.1 * i for i in range(6)]


@pytest.mark.parametrize("column", ["action_json", "observation_json", "info_json", "render_payload_json"])
def test_a_blob_in_a_json_column_makes_the_read_raise_a_clear_value_error(tmp_path: Path, column: str) -> None:
    path = tmp_path / "t.sqlite"
    with TelemetrySQLiteStore(path) as store:
        store.write_batch(_events(*(_plain(i, action="up", observation={"x": [i]}) for i in range(6))))
    conn = sqlite3.connect(str(path))
    with conn:
        assert conn.execute(f"UPDATE step_rows SET {column} = X'5b315d' WHERE seq_id = 3").rowcount == 1
    conn.close()
    with TelemetrySQLiteStore(path) as store:
        with pytest.raises(ValueError, match="not a text"):
            store.steps_for_episode("run", "a1", 0)
