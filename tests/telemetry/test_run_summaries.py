"""run_summaries: the Runs tab's per-run aggregates, read from a real SQLite file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from event_factory import EventFactory
from gym_gui.telemetry.run_summaries import duration_s, hyper_parameters, read_summaries, summaries_token
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore


def reader(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA query_only = ON")
    return conn


def test_each_run_has_its_episodes_steps_returns_and_duration(store: TelemetrySQLiteStore, db_path: Path) -> None:
    done = EventFactory("r-done", "agent-1")
    store.write_batch([done.started("Taxi-v3"), *done.episodes(3, 4), done.completed()])
    going = EventFactory("r-going", "agent-2")
    events = [going.started(), *going.episodes(2, 5)]
    events[-1].payload["total_reward"] = -1.0  # the last episode is not the best one
    events += [going.step(2, 0), going.step(2, 1)]  # a partial episode: steps count, episodes do not
    store.write_batch(events)
    conn = reader(db_path)
    by_id = {s.run_id: s for s in read_summaries(conn)}
    assert list(by_id) == ["r-done", "r-going"]
    d = by_id["r-done"]
    assert (d.status, d.env_id, d.agent_ids, d.episodes, d.steps) == ("completed", "Taxi-v3", ("agent-1",), 3, 12)
    assert d.last_return == d.best_return == 2.0
    assert d.duration_s == pytest.approx((done.seq - 0) / 1000)  # started at seq 0, completed at the last seq
    g = by_id["r-going"]
    assert (g.status, g.episodes, g.steps, g.last_return, g.best_return) == ("running", 2, 12, -1.0, 2.5)
    assert g.completed_at is None and g.duration_s is not None
    assert g.hyper_parameters == {"alpha": 0.1}
    # The counts equal what SQLite holds.
    for run_id, summary in by_id.items():
        assert summary.steps == conn.execute("SELECT COUNT(*) FROM steps WHERE run_id = ?", (run_id,)).fetchone()[0]


def test_unchanged_runs_keep_their_aggregates_and_changed_ones_are_read_again(
        store: TelemetrySQLiteStore, db_path: Path) -> None:
    done = EventFactory("r-done", "a")
    store.write_batch(done.run(2, 3))
    going = EventFactory("r-going", "a")
    store.write_batch([going.started(), *going.episodes(1, 3)])
    conn = reader(db_path)
    token = summaries_token(conn)
    first = {s.run_id: s for s in read_summaries(conn)}
    assert summaries_token(conn) == token  # nothing written: the refresh can stop here
    store.write_batch(going.episodes(1, 3, first_episode=1))
    assert summaries_token(conn) != token
    second = {s.run_id: s for s in read_summaries(conn, first)}
    assert second["r-done"] is first["r-done"]  # not aggregated again
    assert second["r-going"].episodes == 2 and second["r-going"].steps == 6


def test_deleted_runs_are_not_listed_and_other_runs_keep_their_rows(store: TelemetrySQLiteStore,
                                                                     db_path: Path) -> None:
    for run_id in ("r1", "r2"):
        store.write_batch(EventFactory(run_id, "a").run(2, 3))
    store.delete_run("r1", wait=True)
    conn = reader(db_path)
    assert [s.run_id for s in read_summaries(conn)] == ["r2"]
    assert read_summaries(conn)[0].steps == 6


def test_a_run_without_episodes_or_times_reads_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "x.sqlite"
    with TelemetrySQLiteStore(path) as s:
        f = EventFactory("r-quiet", "a")
        s.write_batch([f.started()])
    (summary,) = read_summaries(reader(path))
    assert (summary.episodes, summary.steps, summary.last_return, summary.best_return) == (0, 0, None, None)


def test_duration_and_hyper_parameter_helpers() -> None:
    assert duration_s("2026-01-01T00:00:00+00:00", None, "2026-01-01T00:01:30+00:00", None) == 90.0
    assert duration_s(None, "2026-01-01T00:00:00Z", None, "2026-01-01T00:00:05Z") == 5.0
    assert duration_s(None, None, None, None) is None and duration_s("bad", None, "bad", None) is None
    config = {"learning_rate": 0.1, "gamma": 0.99, "env_kwargs": {"map": "4x4"}, "heartbeat_interval_s": 1.0,
              "algorithm": "q_learning", "nan": float("nan"), "seed": 0}
    assert hyper_parameters(config) == {"learning_rate": 0.1, "gamma": 0.99, "algorithm": "q_learning", "seed": 0}
    assert hyper_parameters(None) == {} and hyper_parameters([1]) == {}


def test_a_growing_run_is_updated_from_its_new_rows_and_equals_a_full_read(store: TelemetrySQLiteStore,
                                                                          db_path: Path) -> None:
    a = EventFactory("r-grow", "agent-a")
    b = EventFactory("r-grow", "agent-b", first_seq=0)
    store.write_batch([a.started(), *a.episodes(2, 3)])
    conn = reader(db_path)
    previous = {s.run_id: s for s in read_summaries(conn)}
    for round_ in range(4):
        batch = a.episodes(1, 2 + round_, first_episode=2 + round_)
        batch[-1].payload["total_reward"] = float(10 - 3 * round_)  # best early, last lower
        batch += b.episodes(1, 4, first_episode=round_)  # a second agent appears, then grows
        batch += [a.step(9, 0)]  # a partial episode
        store.write_batch(batch)
        incremental = {s.run_id: s for s in read_summaries(conn, previous)}
        full = {s.run_id: s for s in read_summaries(conn)}
        assert incremental == full
        previous = incremental
    summary = previous["r-grow"]
    assert summary.agent_ids == ("agent-a", "agent-b")
    assert summary.steps == conn.execute("SELECT COUNT(*) FROM steps WHERE run_id = 'r-grow'").fetchone()[0]
    assert summary.episodes == 2 + 4 + 4 and summary.best_return == 10.0
    newest = conn.execute("SELECT total_reward FROM episodes WHERE run_id = 'r-grow' ORDER BY seq_id DESC "
                          "LIMIT 1").fetchone()[0]
    assert summary.last_return == newest


def test_a_run_whose_rows_were_removed_is_read_again_in_full(store: TelemetrySQLiteStore, db_path: Path) -> None:
    f = EventFactory("r1", "a")
    store.write_batch(f.run(3, 2))
    conn = reader(db_path)
    first = {s.run_id: s for s in read_summaries(conn)}
    store.write_batch([EventFactory("r1", "b").step(0, 0)])  # another stream: a changed fingerprint
    again = {s.run_id: s for s in read_summaries(conn, first)}
    assert again["r1"].steps == 7 and again["r1"].episodes == 3
