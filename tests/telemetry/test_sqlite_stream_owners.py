"""Schema version 3: stream owners (claims, refusals, take-overs, releases), stale runs, seq conflicts."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterator

import pytest
from old_builds import old_build

from gym_gui.telemetry import sqlite_schema, stream_owners
from gym_gui.telemetry.sqlite_schema import SCHEMA_VERSION
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore
from gym_gui.telemetry.stream_owners import ProcessIdentity, StreamOwned, current_process, process_alive


@pytest.fixture
def other_process() -> Iterator[subprocess.Popen[bytes]]:
    """A live process that is not this one."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    yield proc
    proc.kill()
    proc.wait()


def _identity_of(pid: int) -> ProcessIdentity:
    start = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[19])
    me = current_process()
    return ProcessIdentity(pid, me.host, start, me.boot_id)


def _own(db_path: Path, run_id: str, agent: str, who: ProcessIdentity, claimed_at: str = "2026-01-01T00:00:00+00:00") -> None:
    with sqlite3.connect(db_path) as conn:
        conn.execute("INSERT OR REPLACE INTO stream_owners VALUES (?,?,?,?,?,?,?)",
                     (run_id, agent, who.pid, who.host, who.process_start, who.boot_id, claimed_at))


def test_a_version_2_file_is_migrated_to_version_3_keeping_every_row(db_path: Path, factory: Any,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    f = factory("run-a", "agent1")
    with old_build(monkeypatch, 2):  # write a file as the version 2 build did
        old = TelemetrySQLiteStore(db_path)
        old.write_batch([f.started(), *f.episodes(2, 3), f.heartbeat()])
        old.close()
    tables = ("steps", "episodes", "run_events", "runs", "streams")
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (2,)
        before = {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3").fetchall() for t in tables}
    store = TelemetrySQLiteStore(db_path)
    try:
        with sqlite3.connect(db_path) as conn:
            assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,) == (6,)
            assert {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3").fetchall() for t in tables} == before
            assert conn.execute("SELECT * FROM stream_owners").fetchall() == []
        assert store.claim_stream("run-a", "agent1") == f.seq  # numbering continues after the stored max
    finally:
        store.close()


def test_a_claim_returns_the_stored_max_and_names_this_process(store: TelemetrySQLiteStore, factory: Any) -> None:
    f = factory("r", "a")
    assert store.claim_stream("r", "a") is None
    store.write_batch([f.started(), f.step(0, 0)])
    assert store.claim_stream("r", "a") == f.seq  # this process again: fine
    owner = store.stream_owner("r", "a")
    assert owner is not None and owner.process == current_process() and owner.process.pid == os.getpid()
    assert store.claim_stream("r", None) is None and store.stream_owner("r", None) is not None  # '' agent
    assert process_alive(current_process()) is True


def test_a_live_owner_refuses_the_claim_and_a_gone_one_is_taken_over(
        store: TelemetrySQLiteStore, db_path: Path, other_process: subprocess.Popen[bytes]) -> None:
    live = _identity_of(other_process.pid)
    _own(db_path, "r", "a", live)
    assert process_alive(live) is True
    with pytest.raises(StreamOwned, match=f"stream r/a is being written by another live process, pid {live.pid} on host"):
        store.claim_stream("r", "a")
    reused = ProcessIdentity(live.pid, live.host, (live.process_start or 0) + 1, live.boot_id)  # same pid, another process
    rebooted = ProcessIdentity(live.pid, live.host, live.process_start, "another-boot")
    for stale in (reused, rebooted):
        _own(db_path, "r", "a", stale)
        assert process_alive(stale) is False
        assert store.claim_stream("r", "a") is None
        owner = store.stream_owner("r", "a")
        assert owner is not None and owner.process == current_process()
    elsewhere = ProcessIdentity(os.getpid(), "some-other-host", 1, None)
    _own(db_path, "r", "b", elsewhere)
    assert process_alive(elsewhere) is None  # cannot be told: counts as alive
    with pytest.raises(StreamOwned, match="on host some-other-host"):
        store.claim_stream("r", "b")
    other_process.kill()
    other_process.wait()
    _own(db_path, "r", "a", live)
    assert process_alive(live) is False
    assert store.claim_stream("r", "a") is None  # its owner is gone: taken over


def test_claims_are_released_when_the_run_completes_and_when_the_store_closes(
        store: TelemetrySQLiteStore, db_path: Path, factory: Any) -> None:
    a, b = factory("r", "a"), factory("r", "b")
    store.claim_stream("r", "a")
    store.claim_stream("r", "b")
    store.claim_stream("other", "a")
    store.write_batch([a.started(), b.started(), a.step(0, 0)])
    assert store.stream_owner("r", "a") is not None
    result = store.write_batch([a.completed()])
    assert result.completed_runs == ("r",)
    assert store.stream_owner("r", "a") is None and store.stream_owner("r", "b") is None  # every agent of the run
    assert store.stream_owner("other", "a") is not None
    store.close()
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM stream_owners").fetchone() == (0,)


def test_stale_runs_are_marked_interrupted_at_their_last_stored_event(
        store: TelemetrySQLiteStore, db_path: Path, factory: Any, other_process: subprocess.Popen[bytes]) -> None:
    dead = ProcessIdentity(other_process.pid, current_process().host, 1, current_process().boot_id)  # wrong start
    runs = {name: factory(name, "a") for name in ("dead", "live", "old", "recent", "done")}
    last_event = {}
    for name, f in runs.items():
        events = [f.started(), f.step(0, 0), f.step(0, 1)]
        store.write_batch(events)
        last_event[name] = events[-1].ts_iso
    store.write_batch([runs["done"].completed()])
    _own(db_path, "dead", "a", dead)
    _own(db_path, "live", "a", _identity_of(other_process.pid))
    now = datetime.fromisoformat(last_event["old"]) + timedelta(hours=1)
    recent = (now - timedelta(seconds=10)).isoformat()
    with sqlite3.connect(db_path) as conn:  # "recent" wrote a moment ago; the others an hour ago
        conn.execute("UPDATE streams SET last_ts_iso = ? WHERE run_id = 'recent'", (recent,))
    last = {r: store.run(r) for r in runs}
    assert [r.run_id for r in store.mark_interrupted_runs()] == ["dead"]  # unowned runs are left alone
    _own(db_path, "dead", "a", dead)
    store._conn.execute("UPDATE runs SET status = 'running' WHERE run_id = 'dead'")
    found = stream_owners_mark(store, now)  # with a grace time, an unowned run that is old enough is stale too
    assert [r.run_id for r in found] == ["dead", "old"]
    assert f"pid {dead.pid} on host" in found[0].reason and "ended without completing it" in found[0].reason
    assert "no live process writes it" in found[1].reason
    for run_id in ("dead", "old"):
        run = store.run(run_id)
        assert run is not None and run.is_terminal
        assert (run.status, run.outcome) == ("interrupted", "interrupted")
        assert run.completed_at == last_event[run_id] == found[0].last_event_at
        assert run.summary["interrupted"] is True and run.summary["reason"].startswith("interrupted: ")
    assert store.stream_owner("dead", "a") is None  # the dead owner's row is gone
    for run_id in ("live", "recent", "done"):
        assert store.run(run_id) == last[run_id]  # untouched
    assert stream_owners_mark(store, now) == []  # idempotent
    later = now + timedelta(minutes=5)
    assert [r.run_id for r in stream_owners_mark(store, later)] == ["recent"]


def stream_owners_mark(store: TelemetrySQLiteStore, now: datetime) -> list[Any]:
    return store._owners_transaction(lambda conn: stream_owners.mark_interrupted(conn, unowned_grace_s=60.0, now=now))


def test_an_interrupted_run_is_reopened_by_a_new_claim_and_finished_by_a_completion(
        store: TelemetrySQLiteStore, db_path: Path, factory: Any) -> None:
    f = factory("r", "a")
    store.write_batch([f.started(), f.step(0, 0)])
    assert store.mark_interrupted_runs() == []  # nobody owns it: nobody can tell whether its writer lives
    _own(db_path, "r", "a", ProcessIdentity(1 << 22, current_process().host, 1, current_process().boot_id))
    assert [r.run_id for r in store.mark_interrupted_runs()] == ["r"]
    assert store.claim_stream("r", "a") == f.seq
    run = store.run("r")
    assert run is not None and (run.status, run.outcome, run.completed_at, run.summary) == ("running", None, None, None)
    _own(db_path, "r", "a", ProcessIdentity(1 << 22, current_process().host, 1, current_process().boot_id))
    store.mark_interrupted_runs()
    store.write_batch([f.completed()])  # a completion stored later still finishes it
    run = store.run("r")
    assert run is not None and (run.status, run.outcome) == ("completed", "completed")


def test_a_key_stored_with_other_content_is_a_conflict_and_a_replay_is_a_duplicate(
        store: TelemetrySQLiteStore, factory: Any) -> None:
    a, b = factory("r", "a"), factory("r", "a")
    first = [a.started(), a.step(0, 0), a.step(0, 1), a.episode(0, 2)]
    second = [b.started(env_id="Other-v0"), b.step(0, 0, reward=7.0), b.step(0, 1), b.episode(0, 5)]
    assert store.write_batch(first).inserted == 4
    result = store.write_batch(second)
    conflicting = {e.seq_id: reason for e, reason in result.conflicts}
    assert sorted(conflicting) == [1, 3] and all(r.startswith("seq_conflict: ") for r in conflicting.values())
    assert result.duplicates == 1  # step (0, 1): the same event (same content and time)
    assert [e.seq_id for e, _r in result.lost] == [0]  # a RUN_STARTED's key in run_events: cannot be kept aside
    assert "seq_conflict" in result.lost[0][1]
    run = store.run("r")
    assert run is not None and run.env_id == "FrozenLake-v1"  # the refused RUN_STARTED changed nothing
    assert sorted(e.seq_id for e, _r in store.rejected_events("r")) == [1, 3]  # kept aside, nothing lost
    assert [s.reward for s in store.steps_for_episode("r", "a", 0)] == [first[1].payload["reward"], first[2].payload["reward"]]
    again = store.write_batch(second)  # replaying the same batch: duplicates, not new conflicts
    assert again.conflicts == () and again.duplicates == 3 and [e.seq_id for e, _r in again.lost] == [0]
    assert store.write_batch(first).duplicates == 4  # a replay of what is stored is still a duplicate


def test_a_claim_never_waits_long_on_a_locked_file_and_is_taken_with_the_streams_first_batch(
        store: TelemetrySQLiteStore, db_path: Path, factory: Any, caplog: pytest.LogCaptureFixture) -> None:
    f = factory("r", "a")
    store.write_batch([f.started()])
    locker = sqlite3.connect(db_path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    try:
        started = time.monotonic()
        assert store.claim_stream("r", "a") == f.seq  # the stored maximum, read without waiting for the lock
        assert time.monotonic() - started < 1.0  # the proxy calls it under its feed lock
        assert store.stream_owner("r", "a") is None
        assert "stream r/a cannot be claimed yet" in caplog.text
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    store.write_batch([f.step(0, 0)])  # the stream's first stored batch takes the claim
    owner = store.stream_owner("r", "a")
    assert owner is not None and owner.process == current_process()
