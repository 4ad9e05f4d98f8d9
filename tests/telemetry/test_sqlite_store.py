"""TelemetrySQLiteStore: round trips, idempotence, cursor reads, schema, malformed payloads, readers."""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import attrs
import pytest

from gym_gui.telemetry import data_model, sqlite_schema
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.sqlite_schema import SCHEMA_VERSION, SchemaVersionError
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore


def raw(db_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(str(db_path), isolation_level=None)


def test_file_and_folders_are_created_with_wal_and_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "t.sqlite"
    store = TelemetrySQLiteStore(path)
    try:
        assert path.exists()
        conn = raw(path)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert store._conn.execute("PRAGMA busy_timeout").fetchone()[0] == 1000
        conn.close()
    finally:
        store.close()


def test_round_trip_of_steps_episodes_and_run_lifecycle(store: TelemetrySQLiteStore, factory: Any) -> None:
    f = factory("run1", "agent1")
    started = f.started(worker_argv=["python", "-m", "w"], pid=42)
    beat = f.heartbeat(sps=10.5)
    steps = [
        f.step(0, 0, render_hint="grid", frame_ref="frames/0.png", payload_version=2, episode_seed=7, worker_id="w1"),
        f.step(0, 1, terminated=True, reward=1.0, info={}),
    ]
    episode = f.episode(0, 2, episode_id="run1-ep000000")
    done = f.completed(summary={"episodes": 1, "mean_reward": 0.75})
    store.write_events([started, beat, *steps, episode, done])

    run = store.run("run1")
    assert run is not None and run.status == "completed" and run.is_terminal
    assert (run.env_id, run.config, run.outcome, run.exit_code) == ("FrozenLake-v1", {"alpha": 0.1}, "completed", 0)
    assert run.started_at == started.ts_iso and run.completed_at == done.ts_iso
    assert run.last_heartbeat_at == beat.ts_iso and run.last_heartbeat == dict(beat.payload)
    assert run.summary == {"episodes": 1, "mean_reward": 0.75} and run.agent_ids == ("agent1",)
    assert [r.run_id for r in store.runs()] == ["run1"]

    stored_steps = store.steps_for_episode("run1", "agent1", 0)
    assert [s.seq_id for s in stored_steps] == [e.seq_id for e in steps]
    assert [s.payload for s in stored_steps] == [dict(e.payload) for e in steps]  # extras kept
    first = stored_steps[0]
    assert (first.episode_index, first.step_index, first.reward, first.terminated) == (0, 0, 0.5, False)
    assert first.render_payload == {"grid": [["S", "F"], ["H", "G"]], "agent": [0, 0]}
    assert first.to_event() == steps[0]

    (stored_episode,) = store.episode_records("run1")
    assert stored_episode.to_event() == episode
    assert (stored_episode.length, stored_episode.total_reward, stored_episode.outcome) == (2, 1.0, "goal")
    assert stored_episode.metadata == {"seed": 0} and stored_episode.payload["episode_id"] == "run1-ep000000"
    assert store.max_seq_id("run1", "agent1") == done.seq_id
    assert store.max_seq_id("run1", "other") is None and store.run("nope") is None


def test_rewriting_the_same_events_stores_nothing_twice(store: TelemetrySQLiteStore, db_path: Path,
                                                        factory: Any) -> None:
    events = factory("run1", "agent1").run(episodes=3, length=4)
    first = store.write_batch(events)
    assert (first.inserted, first.duplicates) == (len(events) - 0, 0)
    again = store.write_batch(events)
    assert (again.inserted, again.duplicates) == (0, len(events))
    store.flush_steps([e for e in events if e.topic is Topic.STEP_APPENDED][:5])
    for e in events:
        if e.topic is Topic.EPISODE_FINALIZED:
            store.write_episode(e)
    reopened = TelemetrySQLiteStore(db_path)
    reopened.write_events(events)
    reopened.close()
    conn = raw(db_path)
    assert conn.execute("SELECT COUNT(*) FROM steps").fetchone()[0] == 12
    assert conn.execute("SELECT COUNT(*) FROM episodes").fetchone()[0] == 3
    assert conn.execute("SELECT COUNT(*) FROM run_events").fetchone()[0] == 2  # started + completed
    assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1
    conn.close()
    assert store.run("run1").status == "completed"  # type: ignore[union-attr]


def test_seed_write_methods_reject_other_topics(store: TelemetrySQLiteStore, factory: Any) -> None:
    f = factory()
    with pytest.raises(ValueError):
        store.flush_steps([f.episode(0, 1)])
    with pytest.raises(ValueError):
        store.write_episode(f.step(0, 0))


def test_cursor_reads_return_exactly_later_seq_ids_in_order_with_the_limit(store: TelemetrySQLiteStore,
                                                                          factory: Any) -> None:
    f = factory("run1", "agent1")
    other = factory("run1", "agent2")
    events = [f.started(), *f.episodes(4, 3), f.heartbeat(), *f.episodes(2, 2, first_episode=4), f.completed()]
    store.write_events(events + other.run(2, 2))
    data = [e for e in events if e.topic in (Topic.STEP_APPENDED, Topic.EPISODE_FINALIZED)]
    for cursor in (-1, 0, 1, 3, 4, 10, 17, data[-1].seq_id, 10_000):
        for limit in (1, 2, 5, 1000):
            expected = [e for e in data if e.seq_id > cursor][:limit]
            got = store.events_after("run1", "agent1", cursor, limit)
            assert got == expected, (cursor, limit)
    assert store.events_after("run1", "agent1", -1, 0) == []
    assert {e.agent_id for e in store.events_after("run1", "agent2", -1, 1000)} == {"agent2"}


def test_episodes_are_never_stored_with_a_null_agent_id(store: TelemetrySQLiteStore, db_path: Path,
                                                        factory: Any) -> None:
    f = factory("run1", None)
    events = f.run(episodes=2, length=2)
    store.write_events(events)
    conn = raw(db_path)
    notnull = {row[1]: row[3] for row in conn.execute("PRAGMA table_info(episodes)")}
    assert notnull["agent_id"] == 1
    assert conn.execute("SELECT COUNT(*) FROM episodes WHERE agent_id IS NULL").fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM episodes").fetchone()[0] == 2
    conn.close()
    # The stream without an agent id reads back as such, and rewriting it is still idempotent.
    assert store.write_batch(events).duplicates == len(events)
    assert [e.agent_id for e in store.episode_records("run1")] == [None, None]
    assert store.events_after("run1", None, -1, 100) == [e for e in events if e.topic in
                                                         (Topic.STEP_APPENDED, Topic.EPISODE_FINALIZED)]
    assert store.max_seq_id("run1", None) == events[-1].seq_id


def test_two_agents_in_one_run_keep_separate_episodes(store: TelemetrySQLiteStore, factory: Any) -> None:
    a, b = factory("run1", "agent1"), factory("run1", "agent2")
    store.write_events(a.run(episodes=2, length=3) + b.run(episodes=3, length=2))
    both = store.episode_records("run1")
    assert [(e.agent_id, e.episode_index, e.length) for e in both] == [
        ("agent1", 0, 3), ("agent1", 1, 3), ("agent2", 0, 2), ("agent2", 1, 2), ("agent2", 2, 2)
    ]
    assert [e.episode_index for e in store.episode_records("run1", "agent2")] == [0, 1, 2]
    assert (store.episode_count("run1"), store.episode_count("run1", "agent1"), store.episode_count("run1", "agent2"),
            store.episode_count("run2")) == (5, 2, 3, 0)
    assert (store.step_count("run1"), store.step_count("run1", "agent2")) == (12, 6)
    assert len(store.steps_for_episode("run1", "agent1", 0)) == 3
    assert len(store.steps_for_episode("run1", "agent2", 0)) == 2
    assert store.run("run1").agent_ids == ("agent1", "agent2")  # type: ignore[union-attr]


def test_max_seq_id_counts_heartbeats_and_run_events(store: TelemetrySQLiteStore, factory: Any) -> None:
    f = factory("run1", "agent1", first_seq=100)
    store.write_events([f.started(), f.step(0, 0), f.heartbeat()])
    assert store.max_seq_id("run1", "agent1") == 102
    store.write_events([f.step(0, 1)])  # written out of order: the maximum stays right
    store.write_events([f.step(0, 2)])
    assert store.max_seq_id("run1", "agent1") == 104


def test_malformed_payloads_are_kept_and_reported_never_dropped(store: TelemetrySQLiteStore,
                                                                factory: Any) -> None:
    f = factory("run1", "agent1")
    odd_step = f.step(0, 0, reward="high", terminated=1, truncated=None)
    odd_step = attrs.evolve(odd_step, payload={**odd_step.payload, "step_index": "3"})
    bare_step = TelemetryEvent(Topic.STEP_APPENDED, "run1", "agent1", f.seq + 1, "2026-01-01T00:00:00+00:00", {})
    f.seq += 1
    nan_step = f.step(0, 1, reward=math.nan, info={"huge": 2**70})
    unencodable = f.step(0, 2, action=object())
    no_index = f.episode(0, 3)
    no_index = attrs.evolve(no_index, payload={**no_index.payload, "episode_index": "zero"})
    good = f.episode(0, 3)
    result = store.write_batch([odd_step, bare_step, nan_step, unencodable, no_index, good])

    assert {(e.seq_id, reason.split(":")[0]) for e, reason in result.rejected} == {
        (unencodable.seq_id, "TypeError"), (no_index.seq_id, "ValueError")
    }
    steps = {s.seq_id: s for s in store.steps_for_episode("run1", "agent1", 0)}
    odd = steps[odd_step.seq_id]
    assert (odd.reward, odd.terminated, odd.truncated, odd.step_index) == (None, None, None, None)
    assert odd.payload == dict(odd_step.payload)  # wrong types kept in the extras
    nan = steps[nan_step.seq_id]
    assert nan.reward is None and math.isnan(nan.payload["reward"]) and nan.payload["info"] == {"huge": 2**70}
    bare = store.events_after("run1", "agent1", odd_step.seq_id, 1)[0]
    assert bare.seq_id == bare_step.seq_id and bare.payload == {}
    assert unencodable.seq_id not in steps
    kept = {e.seq_id: (e, reason) for e, reason in store.rejected_events("run1")}
    assert set(kept) == {unencodable.seq_id, no_index.seq_id}
    assert kept[unencodable.seq_id][0].payload["action"].startswith("<object object")
    assert kept[no_index.seq_id][0].payload == json.loads(json.dumps(dict(no_index.payload)))
    assert "episode_index" in kept[no_index.seq_id][1]
    assert [e.seq_id for e in store.episode_records("run1")] == [good.seq_id]
    assert store.max_seq_id("run1", "agent1") == good.seq_id


def test_a_second_episode_with_a_stored_index_is_kept_aside(store: TelemetrySQLiteStore, factory: Any) -> None:
    f = factory("run1", "agent1")
    first = f.episode(0, 1)
    clash = f.episode(0, 2)
    store.write_events([first])
    result = store.write_batch([first, clash])
    assert result.duplicates == 1 and [e.seq_id for e, _ in result.rejected] == [clash.seq_id]
    assert [e.seq_id for e in store.episode_records("run1")] == [first.seq_id]
    assert [e.seq_id for e, _ in store.rejected_events()] == [clash.seq_id]


def test_run_status_folds_lifecycle_of_several_agents(store: TelemetrySQLiteStore, factory: Any) -> None:
    a, b = factory("run1", "agent1"), factory("run1", "agent2")
    store.write_events([a.step(0, 0)])
    run = store.run("run1")
    assert run is not None and run.status == "running" and run.started_at is None
    store.write_events([a.started(), b.started(env_id="Taxi-v3")])
    assert store.run("run1").env_id == "Taxi-v3"  # type: ignore[union-attr]
    store.write_events([a.completed("failed", exit_code=3, stderr_tail="boom"), b.completed("completed")])
    run = store.run("run1")
    assert run is not None and (run.status, run.outcome, run.exit_code, run.stderr_tail) == ("failed", "failed", 3, "boom")
    store.write_events([b.started()])  # a late start never reopens a finished run
    assert store.run("run1").status == "failed"  # type: ignore[union-attr]


def test_a_later_more_severe_completion_keeps_what_the_earlier_one_said(store: TelemetrySQLiteStore,
                                                                          factory: Any) -> None:
    """``Mark as failed`` after the worker's own completion: the worker's summary, exit code and
    stderr stay; the new outcome and its reason are added."""
    worker = factory("run1", "agent1")
    store.write_events([worker.started(), worker.completed(exit_code=0, stderr_tail="done",
                                                            summary={"episodes": 40, "best_return": 1.0})])
    marked = factory("run1", None, first_seq=100)
    store.write_events([marked.completed("failed", exit_code=None, stderr_tail=None,
                                         summary={"reason": "marked as failed"})])
    run = store.run("run1")
    assert run is not None
    assert (run.status, run.exit_code, run.stderr_tail) == ("failed", 0, "done")
    assert run.summary == {"episodes": 40, "best_return": 1.0, "reason": "marked as failed"}


def test_a_completion_after_an_interrupted_mark_replaces_its_summary(store: TelemetrySQLiteStore,
                                                                    factory: Any) -> None:
    worker = factory("run1", "agent1")
    store.write_events([worker.started()])
    with store._writer() as conn:  # (as ``mark_interrupted_runs`` leaves it)
        conn.execute("UPDATE runs SET status = 'interrupted', outcome = 'interrupted', "
                     "summary_json = '{\"interrupted\": true, \"reason\": \"gone\"}' WHERE run_id = 'run1'")
    store.write_events([worker.completed(summary={"episodes": 2})])
    run = store.run("run1")
    assert run is not None and run.status == "completed" and run.summary == {"episodes": 2}


def test_newer_schema_versions_are_refused_with_a_clear_message(db_path: Path) -> None:
    TelemetrySQLiteStore(db_path).close()
    conn = raw(db_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaVersionError, match=f"version {SCHEMA_VERSION + 1}.*newer gym_gui"):
        TelemetrySQLiteStore(db_path)


def test_a_foreign_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    conn = raw(path)
    conn.execute("CREATE TABLE notes (t TEXT)")
    conn.close()
    with pytest.raises(SchemaVersionError, match="not a gym_gui telemetry database"):
        TelemetrySQLiteStore(path)


def test_forward_migrations_are_applied_on_open(db_path: Path, factory: Any,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    old = TelemetrySQLiteStore(db_path)
    old.write_events(factory().run(1, 2))
    old.close()
    v2 = ("ALTER TABLE runs ADD COLUMN label TEXT", "UPDATE runs SET label = 'migrated'")
    monkeypatch.setattr(sqlite_schema, "MIGRATIONS", sqlite_schema.MIGRATIONS + (v2,))
    monkeypatch.setattr(sqlite_schema, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    TelemetrySQLiteStore(db_path).close()
    conn = raw(db_path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    assert conn.execute("SELECT label FROM runs").fetchall() == [("migrated",)]
    conn.close()


def test_readers_never_wait_for_an_open_write_transaction(store: TelemetrySQLiteStore, factory: Any) -> None:
    f = factory("run1", "agent1")
    store.write_events(f.run(episodes=1, length=2))
    in_commit = threading.Event()
    release = threading.Event()

    def hold() -> None:
        in_commit.set()
        assert release.wait(10)

    store.before_commit = hold
    more = f.episodes(2, 2, first_episode=1)
    writer = threading.Thread(target=store.write_events, args=(more,))
    writer.start()
    try:
        assert in_commit.wait(5)
        results: dict[str, Any] = {}

        def read(name: str) -> None:
            t0 = time.monotonic()
            results[name] = (len(store.events_after("run1", "agent1", -1, 100)), len(store.runs()),
                             store.max_seq_id("run1", "agent1"), time.monotonic() - t0)

        other = threading.Thread(target=read, args=("other",))
        other.start()
        read("this")
        other.join(5)
        for name in ("this", "other"):
            count, runs, max_seq, took_s = results[name]
            assert (count, runs, max_seq) == (3, 1, 4)  # the open transaction is invisible
            assert took_s < 0.5, f"{name} reader waited {took_s:.3f}s for the writer"
    finally:
        release.set()
        writer.join(10)
        store.before_commit = None
    assert store.max_seq_id("run1", "agent1") == more[-1].seq_id


def test_close_is_idempotent_and_later_calls_fail_clearly(db_path: Path, factory: Any) -> None:
    store = TelemetrySQLiteStore(db_path)
    assert store.runs() == []
    store.close()
    store.close()
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        store.runs()
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        store.write_events([factory().step(0, 0)])


def test_inserts_name_their_columns_so_a_later_migration_may_add_nullable_ones(db_path: Path, factory: Any) -> None:
    store = TelemetrySQLiteStore(db_path)
    for table in ("step_rows", "episodes"):  # (version 4: steps is a view of step_rows)
        store._conn.execute(f"ALTER TABLE {table} ADD COLUMN added_later TEXT")
    try:
        events = factory("run1", "agent1").run(episodes=2, length=3)
        assert store.write_batch(events).inserted == len(events)
        assert len(store.steps_for_episode("run1", "agent1", 1)) == 3 and len(store.episode_records("run1")) == 2
        store.record_step(data_model.StepRecord("run2-ep000000", 0, 1, 1, 0.0, False, False))
        store.record_episode(data_model.EpisodeRollup("run2-ep000000", 0.0, 1, True, False), wait=True)
        assert store.step_count("run2") == 1 and len(store.episodes_for_run("run2")) == 1
    finally:
        store.close()

