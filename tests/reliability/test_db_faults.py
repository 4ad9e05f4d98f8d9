"""Faults of the database file under a live run: another process locks it for 5 s, the disk fills up.

Nothing is lost: the sink keeps its batch and retries, back-pressure holds the worker, and a stream
whose first record arrives while the file cannot be written is still claimed (its numbering
continues after the stored seq_ids) once it can. The error is reported while it lasts; when the
run completes its streams are released.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from gym_gui.ingest.proxy import TelemetryProxy
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.telemetry.sink_core import SinkCore
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore
from polling import became_true

RUN = [sys.executable, "-m", "gym_gui.run"]
RUN_ID = "db-fault"
LOCK_S = 5.0



def _worker(script: Callable[[str], list[str]], first: int, then: int, phase1: Path, gate: Path,
            info_bytes: int = 0) -> list[str]:
    """agent-1 writes ``first`` steps, touches ``phase1``, waits for ``gate``; then agent-1 and a new
    stream agent-2 write ``then`` steps each (agent-2's first record comes while the file is failing),
    and both complete."""
    return script(f"""
        import json, os, sys, time
        pad = "p" * {info_bytes}
        def emit(agent, **record):
            sys.stdout.write(json.dumps(dict(v=1, run_id={RUN_ID!r}, agent_id=agent, **record)) + "\\n")
            sys.stdout.flush()
        def step(agent, i):
            emit(agent, kind="step", episode_index=0, step_index=i, action=0, observation=i, reward=1.0,
                 terminated=False, truncated=False, info={{"pad": pad}}, render_payload=None)
        emit("agent-1", kind="run_started", env_id="Toy-v0", config={{}})
        for i in range({first}):
            step("agent-1", i)
        open({str(phase1)!r}, "w").close()
        while not os.path.exists({str(gate)!r}):
            time.sleep(0.01)
        for i in range(100):  # (stored once the file can be written again)
            step("agent-1", {first} + i)
        emit("agent-2", kind="run_started", env_id="Toy-v0", config={{}})
        for i in range({then}):
            step("agent-1", {first} + 100 + i)
            step("agent-2", i)
        for agent in ("agent-1", "agent-2"):
            emit(agent, kind="run_completed", outcome="completed", summary={{}})
    """)


def _stored(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        try:
            return conn.execute(sql).fetchall()
        except sqlite3.OperationalError:
            return []


def _assert_everything_stored(db: Path, first: int, then: int) -> None:
    seqs = {agent: [s for (s,) in _stored(db, f"SELECT seq_id FROM steps WHERE agent_id = '{agent}' ORDER BY seq_id")]
            for agent in ("agent-1", "agent-2")}
    assert seqs["agent-1"] == list(range(2, first + 100 + then + 2))  # after its run_started, no gap, nothing twice
    assert seqs["agent-2"] == list(range(2, then + 2))
    assert _stored(db, "SELECT agent_id, topic FROM run_events ORDER BY agent_id, seq_id") == [
        ("agent-1", "RUN_STARTED"), ("agent-1", "RUN_COMPLETED"), ("agent-2", "RUN_STARTED"), ("agent-2", "RUN_COMPLETED")]
    assert _stored(db, "SELECT status FROM runs") == [("completed",)]
    assert _stored(db, "SELECT COUNT(*) FROM stream_owners") == [(0,)]  # both streams released at completion


def test_a_database_locked_for_5_s_mid_run_loses_nothing(
        tmp_path: Path, script: Callable[[str], list[str]], child_environ: Callable[[], dict[str, str]]) -> None:
    db = tmp_path / "locked.sqlite"
    phase1, gate = tmp_path / "phase1", tmp_path / "gate"
    first, then = 500, 500
    cli = subprocess.Popen(RUN + ["--db", str(db), "--run-id", RUN_ID, "--progress-interval-s", "0.2", "--",
                                  *_worker(script, first, then, phase1, gate)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_environ())
    try:
        assert became_true(lambda: phase1.exists() and _stored(db, "SELECT COUNT(*) FROM steps") == [(first,)], 30)
        assert _stored(db, "SELECT agent_id, pid FROM stream_owners") == [("agent-1", cli.pid)]
        locker = sqlite3.connect(str(db), isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
        locked_at = time.monotonic()
        try:
            gate.touch()
            threading.Event().wait(LOCK_S)  # the fault itself: the lock is held for LOCK_S
            assert time.monotonic() - locked_at >= LOCK_S and cli.poll() is None
            assert _stored(db, "SELECT COUNT(*) FROM steps") == [(first,)]  # nothing of phase 2 got in
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        out, err = cli.communicate(timeout=60)
    finally:
        gate.touch()
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    assert cli.returncode == 0, out + err
    summary = out[out.index("summary:"):]
    assert "0 lost" in summary and "not stored: nothing" in summary, summary
    errors = re.search(r"(\d+) write errors \((\d+) retries\)", summary)
    assert errors is not None and int(errors.group(1)) >= 1 and int(errors.group(2)) >= 1, summary  # reported
    assert "stream db-fault/agent-2 cannot be claimed yet" in err and "locked" in err, err
    _assert_everything_stored(db, first, then)


def test_a_full_disk_reports_the_error_while_it_lasts_and_loses_nothing_once_freed(
        tmp_path: Path, script: Callable[[str], list[str]]) -> None:
    db = tmp_path / "full.sqlite"
    phase1, gate = tmp_path / "phase1", tmp_path / "gate"
    first, then = 300, 300
    errors: list[str] = []
    store = TelemetrySQLiteStore(db)
    bus = RunBus()
    sink = SinkCore(store, bus, batch_size=100, retry_initial_s=0.02, retry_max_s=0.2, on_error=errors.append)
    proxy = TelemetryProxy(bus, run_id=RUN_ID, seq_floor=store.claim_stream, gate=sink.gate)
    sink.start()
    try:
        proxy.spawn(_worker(script, first, then, phase1, gate, info_bytes=2000))
        assert became_true(lambda: phase1.exists() and store.step_count(RUN_ID) == first, 30)
        assert store.stream_owner(RUN_ID, "agent-1") is not None
        store.set_max_page_count(store.page_count())  # the disk is full: not one more page
        gate.touch()
        assert became_true(lambda: sink.stats()["failing"] and any("full" in e for e in errors), 20), errors
        full_since = time.monotonic()
        assert became_true(lambda: sink.stats()["retries"] >= 5, 20)  # still failing, still reported
        stats = sink.stats()
        assert stats["failing"] and "full" in str(stats["last_error"]) and stats["lost"] == 0
        assert store.step_count(RUN_ID) == first and time.monotonic() - full_since < 20
        store.set_max_page_count(0)  # space freed
        assert proxy.wait(60)
        assert sink.flush(30)
        stats = sink.stats()
        assert not stats["failing"] and stats["lost"] == 0 and stats["conflicts"] == 0
        assert proxy.rejected_counts() == {}
    finally:
        proxy.stop(10)
        sink.stop(30)
        store.close()
    _assert_everything_stored(db, first, then)
