"""Fault: two processes write the same stream (run id and agent) into one file at the same time.

Before stream ownership both read the stored maximum seq_id once, made the same seq_ids, and
``INSERT OR IGNORE`` kept only the first writer's rows while counting the second's as persisted.
Now the first ``gym_gui.run`` owns the live stream; the second one's records are refused
(``stream_owned``, naming the owner's pid), it says so and exits non-zero. Every line each worker
wrote is either stored or counted as refused.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Callable
from polling import became_true

from gym_gui.ingest.proxy import TelemetryProxy
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.telemetry.sink_core import SinkCore
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore

RUN = [sys.executable, "-m", "gym_gui.run"]
TESTS_DIR = Path(__file__).resolve().parents[1]  # (tests/polling.py, for the workers' waits)
RUN_ID = "shared-run"
AGENT = "agent-x"



def _worker(script: Callable[[str], list[str]], tag: str, first: int, then: int, gate: Path | None,
            counted: Path, ready: Path | None) -> list[str]:
    """A worker writing ``first`` steps, then (after ``gate`` exists) ``then`` more and its completion.

    It counts every line it wrote into ``counted`` (the test's ground truth) and touches ``ready``
    after the first part.
    """
    return script(f"""
        import json, os, sys
        written = 0
        def emit(record):
            global written
            sys.stdout.write(json.dumps(dict(v=1, run_id={RUN_ID!r}, agent_id={AGENT!r}, **record)) + "\\n")
            sys.stdout.flush()
            written += 1
            with open({str(counted)!r}, "w") as f:
                f.write(str(written))
        emit(dict(kind="run_started", env_id="Toy-v0", config={{"writer": {tag!r}}}))
        for i in range({first}):
            emit(dict(kind="step", episode_index=0, step_index=i, action=0, observation=i, reward=1.0,
                      terminated=False, truncated=False, info={{"writer": {tag!r}}}, render_payload=None))
        if {str(ready) if ready else ''!r}:
            open({str(ready) if ready else ''!r}, "w").close()
        gate = {str(gate) if gate else ''!r}
        if gate:  # the test makes the gate file from another process: wait for it (at most 60 s)
            sys.path.insert(0, {str(TESTS_DIR)!r})
            from polling import became_true
            became_true(lambda: os.path.exists(gate), 60)
        for i in range({first}, {first + then}):
            emit(dict(kind="step", episode_index=0, step_index=i, action=0, observation=i, reward=1.0,
                      terminated=False, truncated=False, info={{"writer": {tag!r}}}, render_payload=None))
        emit(dict(kind="run_completed", outcome="completed", summary={{"writer": {tag!r}}}))
    """)


def test_a_second_cli_on_a_live_stream_is_refused_and_nothing_is_lost_silently(
        tmp_path: Path, script: Callable[[str], list[str]], child_environ: Callable[[], dict[str, str]]) -> None:
    db = tmp_path / "two.sqlite"
    a_ready, b_done = tmp_path / "a_ready", tmp_path / "b_done"
    a_count, b_count = tmp_path / "a_count", tmp_path / "b_count"
    worker_a = _worker(script, "A", 300, 300, b_done, a_count, a_ready)
    worker_b = _worker(script, "B", 400, 0, None, b_count, None)
    args = ["--db", str(db), "--run-id", RUN_ID, "--progress-interval-s", "0.1", "--"]
    a = subprocess.Popen(RUN + args + worker_a, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=child_environ())
    try:
        def a_stored_its_first_part() -> bool:
            if not a_ready.exists() or not db.exists():
                return False
            with sqlite3.connect(db) as conn:
                try:
                    return conn.execute("SELECT COUNT(*) FROM steps").fetchone()[0] == 300
                except sqlite3.OperationalError:
                    return False
        assert became_true(a_stored_its_first_part, 30), "the first writer never stored its first part"
        b = subprocess.run(RUN + args + worker_b, capture_output=True, text=True, timeout=60, env=child_environ())
        b_done.touch()
        a_out, a_err = a.communicate(timeout=60)
    finally:
        b_done.touch()
        if a.poll() is None:
            a.kill()
            a.wait()
    b_written, a_written = int(b_count.read_text()), int(a_count.read_text())
    assert a.returncode == 0, a_out + a_err
    assert b.returncode == 1, b.stdout + b.stderr
    # the second writer says who writes the stream, at once and in its summary
    assert f"stream_owned {b_written}" in b.stdout, b.stdout
    assert f"pid {a.pid} on host" in b.stdout and "is being written by another live process" in b.stdout, b.stdout
    assert f"{b_written} records were refused (stream_owned)" in b.stdout, b.stdout
    with sqlite3.connect(db) as conn:
        steps = conn.execute("SELECT seq_id, info_json FROM steps ORDER BY seq_id").fetchall()
        run_events = conn.execute("SELECT topic, payload_json FROM run_events ORDER BY seq_id").fetchall()
        run = conn.execute("SELECT status, summary_json FROM runs WHERE run_id = ?", (RUN_ID,)).fetchone()
        owners = conn.execute("SELECT COUNT(*) FROM stream_owners").fetchone()[0]
    # what each worker wrote == what is stored + what was reported refused
    assert len(steps) + len(run_events) == a_written == 602
    assert [s for s in steps if '"B"' in s[1]] == [] and all('"A"' in s[1] for s in steps)
    assert [s[0] for s in steps] == list(range(2, 602))  # one numbering, no gap, no collision
    assert [t for t, _p in run_events] == ["RUN_STARTED", "RUN_COMPLETED"]
    assert run == ("completed", '{"writer":"A"}')  # the refused writer did not end the owner's run
    assert owners == 0  # released when the run completed
    assert b_written == 402


def _step(i: int, reward: float = 1.0) -> str:
    return ('{"v": 1, "kind": "step", "episode_index": 0, "step_index": %d, "action": 0, "observation": 0, '
            '"reward": %r, "terminated": false, "truncated": false, "info": {}, "render_payload": null}' % (i, reward))


def _numbered_by(store: TelemetrySQLiteStore, bus: RunBus, run_id: str) -> TelemetryProxy:
    return TelemetryProxy(bus, run_id=run_id, seq_floor=store.claim_stream, default_agent_id=AGENT)


def test_a_dead_owner_is_taken_over_and_the_numbering_continues(
        tmp_path: Path, child_environ: Callable[[], dict[str, str]]) -> None:
    """A stream whose owner process is gone (killed) is claimed by the next writer, after its stored seq_ids."""
    db = tmp_path / "takeover.sqlite"
    owner = subprocess.Popen([sys.executable, "-c", f"""
import sys
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore
store = TelemetrySQLiteStore({str(db)!r})
print(store.claim_stream({RUN_ID!r}, {AGENT!r}), flush=True)
sys.stdin.read()
"""], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=child_environ())
    try:
        assert owner.stdout is not None and owner.stdout.readline().strip() == "None"
        store = TelemetrySQLiteStore(db)
        bus = RunBus()
        sink = SinkCore(store, bus)
        sink.start()
        try:
            refused = _numbered_by(store, bus, RUN_ID)
            assert refused.feed_line(_step(0)) is None
            assert refused.rejected_counts() == {"stream_owned": 1}
            assert f"pid {owner.pid} on host" in next(iter(refused.refused_streams().values()))
            owner.send_signal(signal.SIGKILL)
            owner.wait(10)
            proxy = _numbered_by(store, bus, RUN_ID)
            evt = proxy.feed_line(_step(0))
            assert isinstance(evt, TelemetryEvent) and evt.topic is Topic.STEP_APPENDED and evt.seq_id == 1
            assert sink.flush(10)
            stored_owner = store.stream_owner(RUN_ID, AGENT)
            assert stored_owner is not None and stored_owner.process.pid == os.getpid()
        finally:
            sink.stop(10)
            store.close()
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()


def test_the_durable_path_reports_a_duplicate_key_with_other_content(tmp_path: Path) -> None:
    """Defence in depth: two writers that bypass ownership (plain ``max_seq_id``) are not a silent loss:
    the second one's events are ``seq_conflict``s, kept aside and not counted as persisted."""
    db = tmp_path / "conflict.sqlite"
    stores = [TelemetrySQLiteStore(db), TelemetrySQLiteStore(db)]
    buses = [RunBus(), RunBus()]
    sinks = [SinkCore(s, b) for s, b in zip(stores, buses)]
    proxies = [TelemetryProxy(b, run_id=RUN_ID, seq_floor=s.max_seq_id, default_agent_id=AGENT)
               for s, b in zip(stores, buses)]
    for sink in sinks:
        sink.start()
    try:
        for proxy in proxies:  # both read the stored maximum (none) before either writes
            proxy.feed_line(_step(0, 0.0))
        for writer, proxy in enumerate(proxies):
            for i in range(1, 50):
                proxy.feed_line(_step(i, writer + 0.5))
            assert sinks[writer].flush(10)
        first, second = (s.stats() for s in sinks)
        assert first["persisted"] == 50 and first["conflicts"] == 0
        assert second["persisted"] == 0 and second["duplicates"] == 0  # every key was taken, with other content
        assert second["conflicts"] == 50 and second["conflicts_by_reason"] == {"seq_conflict": 50}
        kept = stores[0].rejected_events(RUN_ID)
        assert len(kept) == 50 and all(reason.startswith("seq_conflict: ") for _e, reason in kept)
        assert sorted(e.payload["reward"] for e, _r in kept) == [0.0] + [1.5] * 49  # nothing of it is lost
        assert len(stores[0].events_after(RUN_ID, AGENT, 0)) == 50  # the first writer's stream is intact
    finally:
        for sink, store in zip(sinks, stores):
            sink.stop(10)
            store.close()
