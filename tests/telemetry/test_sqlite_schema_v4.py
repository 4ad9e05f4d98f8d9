"""Schema version 4: steps in ``step_rows`` behind the view ``steps``; a version 3 file is migrated
keeping every row, and every value reads back as the version 3 store read it."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from json_compare import same_json
from old_builds import old_build

from gym_gui.telemetry import data_model, step_layout
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.sqlite_rows import EPISODE_READ_COLUMNS, STEP_READ_COLUMNS, decode_episode, decode_step
from gym_gui.telemetry.sqlite_schema import SCHEMA_VERSION
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore

V3_STEP_COLUMNS = ("run_id, agent_id, seq_id, episode_index, step_index, action_json, observation_json, reward, "
                   "terminated, truncated, info_json, render_payload_json, extra_json, ts_iso, episode_id, worker_id")
LONG = "z" * 3000  # longer than what is interned: stays inline


class _Unencodable:
    def __repr__(self) -> str:
        return "<unencodable>"


def _odd_events() -> list[TelemetryEvent]:
    """Rows of every kind, on five streams, with odd values and odd timestamps."""
    out: list[TelemetryEvent] = []

    def add(topic: Topic, run: str, agent: str | None, seq: int, payload: dict[str, Any],
            ts: str = "2026-03-04T05:06:07.123456+00:00") -> None:
        out.append(TelemetryEvent(topic, run, agent, seq, ts, payload))

    step = Topic.STEP_APPENDED
    add(Topic.RUN_STARTED, "run-a", "a1", 1, {"env_id": "FrozenLake-v1", "config": {"x": 1}})
    for i in range(6):  # repeated info and render texts: interned by the migration
        add(step, "run-a", "a1", 2 + i, {"episode_index": 0, "step_index": i, "action": i % 4, "observation": i,
                                         "reward": 0.0, "terminated": i == 5, "truncated": False,
                                         "info": {"prob": 1.0}, "render_payload": {"grid": "SFFG", "agent": i % 2}},
            ts=f"2026-03-04T05:06:07.{100000 + i:06d}+00:00")
    add(step, "run-a", "a1", 8, {"episode_index": 1, "step_index": 0, "reward": float("nan")})  # NaN: in extras
    add(step, "run-a", "a1", 9, {"episode_index": 1, "step_index": 1, "reward": -0.0, "render_hint": "grid"})
    add(step, "run-a", "a1", 10, {"episode_index": 1, "step_index": 2**63, "action": 2**70,  # huge ints
                                  "observation": [1.5, -0.0, 1e300], "info": [1, "two"], "render_payload": "text"})
    add(step, "run-a", "a1", 11, {"episode_index": 1, "step_index": 3, "info": LONG, "render_payload": LONG},
        ts="2026-03-04T05:06:08+00:00")  # no fraction: kept as text
    add(step, "run-a", "a1", 12, {"episode_index": "one", "step_index": None, "terminated": 1},
        ts="1969-12-31T23:59:59.999999+00:00")  # before the epoch: kept as text
    add(Topic.EPISODE_FINALIZED, "run-a", "a1", 13, {"episode_index": 0, "total_reward": -0.0, "length": 6,
                                                      "terminated": True, "truncated": False, "outcome": "x",
                                                      "metadata": {"seed": 0}})
    add(Topic.EPISODE_FINALIZED, "run-a", "a1", 14, {"total_reward": 1.0})  # no index: rejected, kept aside
    add(step, "run-a", "a1", 15, {"episode_index": 2, "action": _Unencodable()})  # quarantined
    add(step, "run-a", "a1", 17, {"episode_index": 2, "step_index": 1},
        ts="2026-03-04T05:06:09.000001Z")  # another form: kept as text
    add(step, "run-a", "a1", 16, {"episode_index": 2, "step_index": 0})  # out of order
    add(Topic.RUN_HEARTBEAT, "run-a", "a1", 18, {"steps": 9})
    for agent in ("a2", None):  # more streams, the same texts (interned per stream)
        for i in range(3):
            add(step, "run-a", agent, 1 + i, {"episode_index": 0, "step_index": i, "info": {"prob": 1.0},
                                              "render_payload": {"grid": "SFFG", "agent": i % 2}, "reward": 1.0})
    add(step, "run-b", "a1", 1, {"episode_index": 0, "step_index": 0, "reward": 1e-7, "truncated": True})
    add(Topic.RUN_COMPLETED, "run-b", "a1", 2, {"outcome": "failed", "exit_code": 3})
    return out


def _raw(path: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(str(path))
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _same_rows(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]]) -> bool:
    return len(a) == len(b) and all(
        len(x) == len(y) and all(type(u) is type(v) and (u == v or (isinstance(u, float) and math.isnan(u)
                                                                    and math.isnan(v))) for u, v in zip(x, y))
        for x, y in zip(a, b))


def _records(rows: list[tuple[Any, ...]], decode: Any) -> list[tuple[Any, ...]]:
    return [(r.run_id, r.agent_id, r.seq_id, r.ts_iso, r.payload) for r in map(decode, rows)]


def _same_records(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]]) -> bool:
    return len(a) == len(b) and all(x[:4] == y[:4] and same_json(x[4], y[4]) for x, y in zip(a, b))


@pytest.fixture
def v3_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "v3.sqlite"
    with old_build(monkeypatch, 3):  # a file of the version 3 build: its DDL, its step table
        store = TelemetrySQLiteStore(path)
        result = store.write_batch(_odd_events())
        assert len(result.rejected) == 2
        store.record_step(data_model.StepRecord("run-c-ep000000", 0, 1, 2, 0.5, False, False, info={"k": "v"},
                                                render_payload={"game_id": "g"}, worker_id="w1"))
        store.record_episode(data_model.EpisodeRollup("run-c-ep000000", 0.5, 1, True, False), wait=True)
        store.close()
    assert _raw(path, "PRAGMA user_version") == [(3,)]
    assert _raw(path, "SELECT type FROM sqlite_master WHERE name = 'steps'") == [("table",)]
    return path


def test_a_version_3_file_is_migrated_keeping_every_row_and_value(v3_file: Path) -> None:
    order = " ORDER BY run_id, agent_id, seq_id"
    before_steps = _raw(v3_file, f"SELECT {V3_STEP_COLUMNS} FROM steps{order}")
    before_decoded = _records(_raw(v3_file, f"SELECT {STEP_READ_COLUMNS} FROM steps{order}"), decode_step)
    others = {t: _raw(v3_file, f"SELECT * FROM {t} ORDER BY 1, 2, 3")
              for t in ("episodes", "run_events", "runs", "streams", "stream_owners")}
    before_episodes = _records(_raw(v3_file, f"SELECT {EPISODE_READ_COLUMNS} FROM episodes{order}"), decode_episode)
    assert len(before_steps) == 21

    with TelemetrySQLiteStore(v3_file) as store:
        assert _raw(v3_file, "PRAGMA user_version") == [(SCHEMA_VERSION,)] == [(6,)]
        assert _raw(v3_file, "SELECT type FROM sqlite_master WHERE name = 'steps'") == [("view",)]
        # raw SQL of the version 3 columns through the view: the same rows, value for value
        assert _same_rows(_raw(v3_file, f"SELECT {V3_STEP_COLUMNS} FROM steps{order}"), before_steps)
        assert _same_records(_records(_raw(v3_file, f"SELECT {STEP_READ_COLUMNS} FROM steps{order}"), decode_step),
                             before_decoded)
        for table, rows in others.items():
            assert _same_rows(_raw(v3_file, f"SELECT * FROM {table} ORDER BY 1, 2, 3"), rows), table
        # the store's reads: every stream's backfill, every episode's steps
        streams = sorted({(r[0], r[1]) for r in before_steps})
        got = [(e.run_id, e.agent_id or "", e.seq_id, e.ts_iso, e.payload)
               for run, agent in streams for e in store.events_after(run, agent or None, -1, 1000)
               if e.topic is Topic.STEP_APPENDED]
        assert _same_records(got, [(r, a or "", s, t, p) for r, a, s, t, p in before_decoded])
        for run, agent, ep in sorted({(r[0], r[1], r[3]) for r in before_steps if type(r[3]) is int}):
            want = [x for x, row in zip(before_decoded, before_steps) if row[:2] == (run, agent) and row[3] == ep]
            read = [(s.run_id, s.agent_id, s.seq_id, s.ts_iso, s.payload)
                    for s in store.steps_for_episode(run, agent or None, ep)]
            assert _same_records(read, want), (run, agent, ep)
        episodes = [(e.run_id, e.agent_id, e.seq_id, e.ts_iso, e.payload) for run in ("run-a", "run-b", "run-c")
                    for e in store.episode_records(run)]
        assert _same_records(sorted(episodes, key=lambda e: (e[0], e[1] or "", e[2])), before_episodes)
        assert len(store.rejected_events()) == 2
        # the layout: interned texts, integer times where exact, one span per episode
        assert _raw(v3_file, "SELECT COUNT(*) FROM stream_keys") == [(5,)]
        texts = {t for (t,) in _raw(v3_file, "SELECT json FROM step_values")}
        assert texts == {'{"prob":1.0}', '{"grid":"SFFG","agent":0}', '{"grid":"SFFG","agent":1}'}
        assert _raw(v3_file, "SELECT COUNT(*) FROM step_values") == [(3 + 2 + 2,)]  # texts repeated in a stream
        kinds = dict(_raw(v3_file, "SELECT typeof(ts_us), COUNT(*) FROM step_rows GROUP BY 1"))
        assert kinds == {"integer": 18, "text": 3}
        assert _raw(v3_file, "SELECT COUNT(*) FROM episode_spans") == [(7,)]
        assert _raw(v3_file, "SELECT first_seq, last_seq FROM episode_spans s JOIN stream_keys k USING (stream) "
                             "WHERE run_id = 'run-a' AND agent_id = 'a1' AND episode_index = 2") == [(16, 17)]
        # and it keeps working: new rows of a migrated stream reuse its interned values
        store.write_batch([TelemetryEvent(Topic.STEP_APPENDED, "run-a", "a2", 9, "2026-03-04T05:07:00.000000+00:00",
                                          {"episode_index": 0, "step_index": 3, "info": {"prob": 1.0}})])
        assert store.steps_for_episode("run-a", "a2", 0)[-1].payload == {"episode_index": 0, "step_index": 3,
                                                                         "info": {"prob": 1.0}}
        assert _raw(v3_file, "SELECT COUNT(*) FROM step_values") == [(7,)]


def test_timestamps_round_trip_in_python_and_in_sql() -> None:
    conn = sqlite3.connect(":memory:")
    for text in ("2026-12-01T15:30:54.327122+00:00", "1970-01-01T00:00:00.000000+00:00",
                 "9999-12-31T23:59:59.999999+00:00", "2024-02-29T12:00:00.000001+00:00"):
        us = step_layout.parse_ts_us(text)
        assert us is not None and step_layout.format_ts_us(us) == text
        (sql_us,) = conn.execute(f"SELECT {step_layout.canonical_ts_sql('?1')} ", (text,)).fetchone()
        assert sql_us == 1
        (back,) = conn.execute(f"SELECT {step_layout.ts_text_sql('?1', '0')}", (us,)).fetchone()
        assert back == text
    for text in ("2026-12-01T15:30:54+00:00", "2026-12-01T15:30:54.327122Z", "2026-02-30T00:00:00.000000+00:00",
                 "1969-12-31T23:59:59.999999+00:00", "2026-12-01 15:30:54.327122+00:00", "2026-12-01T15:30:54.32712²+00:00",
                 "2026-12-01T15:30:54.327122+01:00"):
        assert step_layout.parse_ts_us(text) is None, text
        (sql_ok,) = conn.execute(f"SELECT {step_layout.canonical_ts_sql('?1')}", (text,)).fetchone()
        assert not sql_ok, text


def test_the_gif_export_reads_an_episode_alike_from_a_version_3_and_a_version_4_file(v3_file: Path) -> None:
    from gym_gui.export import gif
    from gym_gui.export.tables import open_readonly

    def read() -> tuple[Any, ...]:
        conn = open_readonly(v3_file)
        try:
            return (gif.episode_agents(conn, "run-a", 0), gif.episode_agents(conn, "run-a", 2),
                    *(list(gif._payloads(conn, "run-a", agent, ep)) for agent, ep in (("a1", 0), ("a2", 0), ("a1", 1))))
        finally:
            conn.close()

    before = read()  # read-only through the version 3 table
    TelemetrySQLiteStore(v3_file).close()  # migrated
    after = read()
    assert after[:2] == before[:2] == (["", "a1", "a2"], ["a1"])
    assert same_json(list(after[2:]), list(before[2:])) and len(after[2]) == 6 and after[4][-1] == LONG
