"""Schema version 2: the existing gym_gui's raw SQL works on our files, and a v1 file keeps every row."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from gym_gui.telemetry import sqlite_schema
from gym_gui.telemetry.sqlite_schema import SCHEMA_VERSION
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore
from old_builds import old_build


def _raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(str(path), isolation_level=None)


def _mixed_events(factory: Any) -> list[Any]:
    """Two agents and a worker-less stream; explicit episode ids and worker ids, NaN and -0.0 rewards."""
    a = factory("run-a", "agent1")
    b = factory("run-a", "agent2")
    c = factory("run-c", None)
    return [
        a.step(0, 0), a.step(0, 1, worker_id="w1"), a.episode(0, 2, worker_id="w1"),
        a.step(1, 0, episode_id="run-a-w1-ep000001", worker_id="w1"),
        a.episode(1, 1, episode_id="run-a-w1-ep000001", worker_id="w1"),
        b.step(0, 0, reward=-0.0), b.step(0, 1, reward=float("nan")), b.episode(0, 2),
        c.step(7, 0), c.episode(7, 1),
    ]


def test_the_existing_apps_raw_queries_work_on_our_files(store: TelemetrySQLiteStore, db_path: Path,
                                                         factory: Any) -> None:
    store.write_batch(_mixed_events(factory))
    conn = _raw(db_path)
    # telemetry/probes.py: steps {episode_id, step_index, reward, run_id, agent_id}
    rows = conn.execute(
        "SELECT episode_id, step_index, reward, run_id, agent_id FROM steps WHERE run_id = ? ORDER BY rowid",
        ("run-a",)).fetchall()
    assert [r[:2] for r in rows] == [  # the canonical id has the worker in it (format_episode_id)
        ("run-a-ep000000", 0), ("run-a-ww1-ep000000", 1), ("run-a-w1-ep000001", 0),
        ("run-a-ep000000", 0), ("run-a-ep000000", 1),
    ]
    assert conn.execute("SELECT COUNT(*) FROM steps WHERE episode_id = ?", ("run-c-ep000007",)).fetchone() == (1,)
    assert conn.execute("SELECT step_index, reward FROM steps WHERE episode_id = ? AND agent_id = ?",
                        ("run-a-w1-ep000001", "agent1")).fetchall() == [(0, 0.5)]
    # telemetry/probes.py: episodes {episode_id, total_reward, agent_id, run_id}
    assert conn.execute(
        "SELECT episode_id, total_reward, agent_id, run_id FROM episodes ORDER BY run_id, agent_id, episode_id"
    ).fetchall() == [
        ("run-a-w1-ep000001", 0.5, "agent1", "run-a"), ("run-a-ww1-ep000000", 1.0, "agent1", "run-a"),
        ("run-a-ep000000", 1.0, "agent2", "run-a"), ("run-c-ep000007", 0.5, "", "run-c"),
    ]
    # core/run_counter_manager.py: PRAGMA table_info(episodes), then MAX(ep_index) by run and worker
    columns = {row[1] for row in conn.execute("PRAGMA table_info(episodes)")}
    assert {"episode_id", "ep_index", "worker_id", "run_id", "agent_id", "total_reward"} <= columns
    max_ep = "SELECT COALESCE(MAX(ep_index), -1) FROM episodes WHERE run_id = ? AND worker_id = ?"
    assert conn.execute(max_ep, ("run-a", "w1")).fetchone() == (1,)
    assert conn.execute(max_ep, ("run-a", "w9")).fetchone() == (-1,)
    assert conn.execute("SELECT COALESCE(MAX(ep_index), -1) FROM episodes WHERE run_id = ? "
                        "AND (worker_id IS NULL OR worker_id = '')", ("run-a",)).fetchone() == (0,)
    assert conn.execute("SELECT COALESCE(MAX(ep_index), -1) FROM episodes WHERE run_id = ? "
                        "AND (worker_id IS NULL OR worker_id = '')", ("run-c",)).fetchone() == (7,)
    plan = " ".join(str(r) for r in conn.execute("EXPLAIN QUERY PLAN " + max_ep, ("run-a", "w1")))
    assert "episodes_by_worker" in plan
    assert conn.execute("SELECT worker_id FROM steps WHERE run_id = 'run-a' AND agent_id = 'agent1' "
                        "ORDER BY seq_id").fetchall() == [(None,), ("w1",), ("w1",)]
    conn.close()


def test_the_added_step_columns_take_no_bytes_and_inserts_stay_positional(store: TelemetrySQLiteStore,
                                                                           db_path: Path, factory: Any) -> None:
    f = factory()
    store.write_batch([f.step(0, i) for i in range(3)])
    conn = _raw(db_path)
    # version 4: the view computes them on read; the step rows hold no such column
    assert {"episode_id", "worker_id"} <= {row[1] for row in conn.execute("PRAGMA table_info(steps)")}
    assert not {"episode_id", "worker_id"} & {row[1] for row in conn.execute("PRAGMA table_xinfo(step_rows)")}
    conn.close()
    assert store.step_count("run1") == 3


def test_the_episode_columns_follow_an_updated_row(store: TelemetrySQLiteStore, db_path: Path, factory: Any) -> None:
    f = factory()
    store.write_batch([f.episode(3, 1)])
    conn = _raw(db_path)
    conn.execute("""UPDATE episodes SET extra_json = '{"episode_id":"x-w2-ep000003","worker_id":"2"}'""")
    assert conn.execute("SELECT episode_id, ep_index, worker_id FROM episodes").fetchall() == [
        ("x-w2-ep000003", 3, "2")]
    conn.execute("""UPDATE episodes SET extra_json = '{"worker_id":"2"}'""")
    assert conn.execute("SELECT episode_id, ep_index, worker_id FROM episodes").fetchall() == [
        ("run1-w2-ep000003", 3, "2")]
    conn.execute("UPDATE episodes SET extra_json = NULL, episode_index = 4")
    assert conn.execute("SELECT episode_id, ep_index, worker_id FROM episodes").fetchall() == [
        ("run1-ep000004", 4, None)]
    conn.close()


def test_a_version_1_file_is_migrated_to_version_2_keeping_every_row(db_path: Path, factory: Any,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    with old_build(monkeypatch, 1):  # write a file as the version 1 build did
        old = TelemetrySQLiteStore(db_path)
        events = _mixed_events(factory)
        old.write_batch(events)
        old.close()
    conn = _raw(db_path)
    assert conn.execute("PRAGMA user_version").fetchone() == (1,)
    before = {table: conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
              for table in ("steps", "episodes", "run_events", "runs")}
    before["streams"] = conn.execute("SELECT * FROM streams").fetchall()
    conn.close()

    store = TelemetrySQLiteStore(db_path)
    try:
        conn = _raw(db_path)
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        v1_steps = "run_id, agent_id, seq_id, episode_index, step_index, action_json, observation_json, reward, " \
                   "terminated, truncated, info_json, render_payload_json, extra_json, ts_iso"
        assert conn.execute(f"SELECT {v1_steps} FROM steps ORDER BY rowid").fetchall() == before["steps"]
        v1_episodes = "run_id, agent_id, episode_index, seq_id, total_reward, length, terminated, truncated, " \
                      "outcome, metadata_json, extra_json, ts_iso"
        assert conn.execute(f"SELECT {v1_episodes} FROM episodes ORDER BY rowid").fetchall() == before["episodes"]
        for table in ("run_events", "runs"):
            assert conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall() == before[table]
        assert conn.execute("SELECT * FROM streams").fetchall() == before["streams"]
        assert conn.execute("SELECT episode_id, ep_index, worker_id FROM episodes ORDER BY rowid").fetchall() == [
            ("run-a-ww1-ep000000", 0, "w1"), ("run-a-w1-ep000001", 1, "w1"), ("run-a-ep000000", 0, None),
            ("run-c-ep000007", 7, None)]
        conn.close()
        stored = [e for r in ("run-a", "run-c") for a in ("agent1", "agent2", None)
                  for e in store.events_after(r, a, -1)]
        assert sorted((e.run_id, e.agent_id or "", e.seq_id) for e in stored) == sorted(
            (e.run_id, e.agent_id or "", e.seq_id) for e in events)
        more = factory("run-a", "agent1", first_seq=100)
        store.write_batch([more.episode(2, 1, worker_id="w1")])
        assert _raw(db_path).execute("SELECT MAX(ep_index) FROM episodes WHERE worker_id = 'w1'").fetchone() == (2,)
    finally:
        store.close()


def test_an_old_sqlite_without_generated_columns_is_refused_clearly(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_schema.sqlite3, "sqlite_version_info", (3, 30, 1))
    with pytest.raises(sqlite_schema.SchemaVersionError, match=r"needs SQLite 3\.31\.0 or newer"):
        TelemetrySQLiteStore(tmp_path / "new.sqlite")
