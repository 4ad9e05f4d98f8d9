"""Step reads: ``episode_step_records`` and ``step_records_after`` give what ``decode_step`` of the
``read_steps`` rows gives, value for value and type for type; the records of one read share the
containers of equal texts (each distinct text decoded once per read), no two reads share one (a
text decoded once and kept between reads is never handed out itself)."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path
from typing import Any

import attrs
import pytest

from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.sqlite_rows import decode_step
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore
from gym_gui.telemetry.step_layout import episode_steps_sql
from gym_gui.telemetry.step_reads import RAW_COLUMNS, episode_step_records, read_steps, step_records_after

_EPISODE = episode_steps_sql(RAW_COLUMNS)
_AFTER = (f"SELECT {RAW_COLUMNS} FROM stream_keys k JOIN step_rows s ON s.stream = k.stream "
          "WHERE k.run_id = :run AND k.agent_id = :agent AND s.seq_id > :after ORDER BY s.seq_id LIMIT :limit")
_GRID = {"kind": "grid", "rows": 2, "cols": 2, "cells": ["SF", "HG"]}


def _step(agent: str | None, seq: int, payload: dict[str, Any], ts: str | None = None) -> TelemetryEvent:
    stamp = ts if ts is not None else f"2026-03-04T05:06:{7 + seq // 3:02d}.{100000 + seq:06d}+00:00"
    return TelemetryEvent(Topic.STEP_APPENDED, "run", agent, seq, stamp, payload)


def _events() -> list[TelemetryEvent]:
    out = []
    for agent in ("a1", None):
        for i in range(12):  # repeated info and render texts (interned), nested containers
            out.append(_step(agent, 1 + i, {
                "episode_index": 0, "step_index": i, "action": i % 3, "observation": [i % 2, 0.5, -0.0],
                "reward": 1.0 if i == 11 else 0.0, "terminated": i == 11, "truncated": False,
                "info": {"prob": 1.0, "lives": i % 2}, "render_payload": {**_GRID, "agent": [i % 2, 1]}}))
    odd = [
        {"episode_index": 1, "step_index": 0, "reward": float("nan")},  # NaN: in the extras
        {"episode_index": 1, "step_index": 1, "reward": -0.0, "render_hint": "grid"},  # extras
        {"episode_index": 1, "step_index": 2**63, "action": 2**70, "observation": {"big": 2**65, "x": [1e300]},
         "info": [1, "two", None, True], "render_payload": "text"},
        {"episode_index": 1, "step_index": 3, "info": "z" * 3000, "render_payload": {"deep": [[[{"a": []}]]]}},
        {"episode_index": 1, "step_index": 4, "info": {}, "render_payload": [], "action": "up", "observation": None},
        {"episode_index": 1, "step_index": 5, "info": {"s": "\ud800"}, "terminated": True, "truncated": True},
        {"episode_index": 1, "step_index": 6, "info": {"nan": float("nan"), "inf": float("inf")}},
        {"episode_index": 1},
    ]
    out += [_step("a1", 20 + i, p) for i, p in enumerate(odd)]
    out.append(_step("a1", 40, {"episode_index": 1, "step_index": 7}, ts="2026-03-04T05:06:08+00:00"))  # text ts
    return out


@pytest.fixture
def store(tmp_path: Path) -> TelemetrySQLiteStore:
    s = TelemetrySQLiteStore(tmp_path / "t.sqlite")
    result = s.write_batch(_events())
    assert not result.rejected and not result.lost
    yield s
    s.close()


def _same(a: Any, b: Any) -> bool:
    """Equal, type for type (bool is not int, -0.0 is not 0.0), NaN equal to NaN."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if type(a) is dict:
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if type(a) is list:
        return len(a) == len(b) and all(map(_same, a, b))
    return a == b


def _fields(record: Any) -> tuple[Any, ...]:
    return (record.run_id, record.agent_id, record.seq_id, record.ts_iso, record.episode_index, record.step_index,
            record.reward, record.terminated, record.truncated, dict(record.payload))


def _containers(value: Any) -> list[int]:
    if type(value) is dict:
        return [id(value)] + [i for v in value.values() for i in _containers(v)]
    if type(value) is list:
        return [id(value)] + [i for v in value for i in _containers(v)]
    return []


def _old_and_new(store: TelemetrySQLiteStore, agent: str, episode: int | None = None, after: int = 0,
                 limit: int = 1000) -> tuple[list[Any], list[Any]]:
    """The records of the decoded ``read_steps`` rows, and the records the store's reads give."""
    if episode is None:
        params: dict[str, Any] = {"run": "run", "agent": agent, "after": after, "limit": limit}
        sql, new = _AFTER, store.read_transaction(lambda conn: step_records_after(conn, "run", agent, after, limit))
    else:
        params = {"run": "run", "agent": agent, "ep": episode}
        sql, new = _EPISODE, store.read_transaction(lambda conn: episode_step_records(conn, "run", agent, episode))
    old = store.read_transaction(lambda conn: [decode_step(r) for r in read_steps(conn, sql, params)])
    return old, new


@pytest.mark.parametrize("agent", ["a1", ""])
def test_records_equal_the_decoded_rows_value_for_value(store: TelemetrySQLiteStore, agent: str) -> None:
    for kwargs in ({}, {"after": 5}, {"after": 3, "limit": 4}, {"after": 10 ** 6}, {"episode": 0}, {"episode": 1},
                   {"episode": 7}):
        old, new = _old_and_new(store, agent, **kwargs)
        assert len(old) == len(new)
        for a, b in zip(old, new):
            assert _same(list(_fields(a)), list(_fields(b))), (kwargs, a, b)
    assert len(_old_and_new(store, agent)[1]) == (21 if agent else 12)
    assert not _old_and_new(store, "nobody")[1] and not _old_and_new(store, "nobody", episode=0)[1]
    events = store.events_after("run", agent or None, 0, 1000)
    assert [e.payload for e in events if e.topic is Topic.STEP_APPENDED] == [s.payload for s in _old_and_new(
        store, agent)[1]]
    assert [s.payload for s in store.steps_for_episode("run", agent or None, 0)] == [
        s.payload for s in _old_and_new(store, agent, episode=0)[1]]


def test_records_of_one_read_share_only_equal_texts_and_a_changed_record_changes_no_later_read(
        store: TelemetrySQLiteStore) -> None:
    first = store.steps_for_episode("run", "a1", 0)
    assert len({id(s.payload) for s in first}) == len(first)  # each record its own payload dict
    by_id: dict[int, Any] = {}
    for s in first:
        for key in ("info", "render_payload", "observation"):
            by_id.setdefault(id(s.payload[key]), s.payload[key])
    # one object per distinct value: the rows' two infos, two grids (agent [0, 1] / [1, 1]), two observations
    assert len(by_id) == 6
    assert first[0].payload["render_payload"] is first[2].payload["render_payload"]
    assert first[0].payload["render_payload"] is not first[1].payload["render_payload"]
    ids = {i for s in first for i in _containers(s.payload)}
    for s in first:  # a caller that changes what it got, against the records' contract
        s.payload["info"]["prob"] = -1  # type: ignore[index]
        s.payload["render_payload"]["cells"].append("XX")  # type: ignore[index]
        s.payload["observation"].clear()  # type: ignore[union-attr]
    for again in (store.steps_for_episode("run", "a1", 0), store.events_after("run", "a1", 0, 12)):
        payloads = [s.payload for s in again]
        assert payloads[0]["info"] == {"prob": 1.0, "lives": 0}
        assert payloads[3]["render_payload"] == {**_GRID, "agent": [1, 1]}
        assert payloads[3]["observation"] == [1, 0.5, -0.0]
        assert not ids & {i for p in payloads for i in _containers(p)}


def test_a_reference_missing_from_step_values_reads_as_no_value_in_both(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite"
    with TelemetrySQLiteStore(path) as store:
        store.write_batch(_events()[:12])
    conn = sqlite3.connect(str(path))
    with conn:
        removed = conn.execute("DELETE FROM step_values WHERE ref = (SELECT MIN(ref) FROM step_values)").rowcount
    conn.close()
    assert removed >= 1
    with TelemetrySQLiteStore(path) as store:
        old, new = _old_and_new(store, "a1")
    assert [dict(s.payload) for s in old] == [dict(s.payload) for s in new]
    assert any("info" not in s.payload or "render_payload" not in s.payload for s in new)


def test_times_before_the_streams_first_and_across_seconds_read_back_as_written(tmp_path: Path) -> None:
    stamps = ["2026-03-04T05:06:07.999999+00:00", "2026-03-04T05:06:08.000000+00:00",
              "2026-03-04T05:06:06.000001+00:00", "2026-03-04T05:06:07.000000+00:00",
              "2026-03-04T04:59:59.999999+00:00", "2026-03-04T05:06:08.000500+00:00"]
    with TelemetrySQLiteStore(tmp_path / "t.sqlite") as store:
        store.write_batch([_step("a1", 1 + i, {"episode_index": 0, "step_index": i}, ts=ts)
                           for i, ts in enumerate(stamps)])
        assert [s.ts_iso for s in store.steps_for_episode("run", "a1", 0)] == stamps
        old, new = _old_and_new(store, "a1", episode=0)
        assert [list(_fields(s)) for s in old] == [list(_fields(s)) for s in new]


def test_the_records_made_without_attrs_init_are_the_records_init_makes() -> None:
    from gym_gui.telemetry.sqlite_records import StepRecord
    from gym_gui.telemetry.step_reads import _make_record

    assert _make_record is not StepRecord  # the plain slotted class: its slots are set directly
    args = ("run", None, 3, "2026-03-04T05:06:07.000000+00:00", 0, 1, -0.0, True, None, {"a": [1]})
    made, want = _make_record(*args), StepRecord(*args)
    assert type(made) is StepRecord and made == want and repr(made) == repr(want)
    with pytest.raises(AttributeError):
        made.reward = 1.0  # type: ignore[misc]
    assert attrs.evolve(made, seq_id=4) == attrs.evolve(want, seq_id=4)
