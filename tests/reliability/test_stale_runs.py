"""Fault: the process running the sink (a GUI, the CLI) is killed with SIGKILL in the middle of a run.

Before, its run stayed ``running`` forever (shown running or stalled on every start, never
replayable). Now, when the app next opens the file, a run whose owner process is gone is marked
``interrupted`` with the time of its last stored event; a new run of the same stream continues
numbering after the stored maximum seq_id and finishes the run; the stored steps replay.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

from gym_gui.live.run_state import RunStatus, TERMINAL_STATUSES
from gym_gui.live.run_state_table import RunStateTable
from gym_gui.telemetry.events import TelemetryEvent, Topic
from polling import became_true

RUN = [sys.executable, "-m", "gym_gui.run"]
RUN_ID = "killed-gui"
AGENT = "agent-k"
STEPS = 200



def _stored(db: Path, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        try:
            return conn.execute(sql, args).fetchall()
        except sqlite3.OperationalError:  # not created yet
            return []


def _worker(script: Callable[[str], list[str]], steps: int, *, gate: Path | None = None,
            ready: Path | None = None, complete: bool = True) -> list[str]:
    """Waits for ``gate``, writes run_started and ``steps`` steps (one episode of them when it completes), touches
    ``ready``; then completes, or sleeps (to be killed)."""
    return script(f"""
        import json, os, sys, time
        def emit(record):
            sys.stdout.write(json.dumps(dict(v=1, run_id={RUN_ID!r}, agent_id={AGENT!r}, **record)) + "\\n")
            sys.stdout.flush()
        gate = {str(gate or '')!r}
        while gate and not os.path.exists(gate):
            time.sleep(0.01)
        emit(dict(kind="run_started", env_id="Toy-v0", config={{}}))
        for i in range({steps}):
            emit(dict(kind="step", episode_index=0, step_index=i, action=0, observation=i, reward=1.0,
                      terminated=False, truncated=False, info={{}}, render_payload=None))
        if {str(ready or '')!r}:
            open({str(ready or '')!r}, "w").write(str(os.getpid()))
        if not {complete!r}:
            time.sleep(120)
        emit(dict(kind="episode", episode_index=0, total_reward=float({steps}), length={steps}, terminated=True,
                  truncated=False, outcome="success", metadata={{}}))
        emit(dict(kind="run_completed", outcome="completed", summary={{"second": True}}))
    """)


def _kill_a_cli_mid_run(db: Path, script: Callable[[str], list[str]], env: dict[str, str], tmp_path: Path) -> str:
    """Run ``gym_gui.run`` until STEPS steps are stored, SIGKILL it; returns the last stored event's time."""
    ready = tmp_path / "ready"
    cli = subprocess.Popen(RUN + ["--db", str(db), "--run-id", RUN_ID, "--progress-interval-s", "0.1", "--",
                                  *_worker(script, STEPS, ready=ready, complete=False)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        assert became_true(lambda: ready.exists() and _stored(db, "SELECT COUNT(*) FROM steps") == [(STEPS,)], 30)
        os.kill(cli.pid, signal.SIGKILL)
        cli.wait(10)
        worker = int(ready.read_text())
        assert became_true(lambda: not os.path.exists(f"/proc/{worker}") or
                          open(f"/proc/{worker}/stat").read().rsplit(")", 1)[1].split()[0] in "ZX", 10)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    assert _stored(db, "SELECT status FROM runs") == [("running",)]  # left running by the killed process
    assert _stored(db, "SELECT pid FROM stream_owners") == [(cli.pid,)]
    [(last_ts,)] = _stored(db, "SELECT MAX(ts_iso) FROM steps")
    assert _stored(db, "SELECT last_ts_iso FROM streams") == [(last_ts,)]
    return str(last_ts)


def test_the_cli_marks_a_killed_run_interrupted_and_a_new_run_continues_the_stream(
        tmp_path: Path, script: Callable[[str], list[str]], child_environ: Callable[[], dict[str, str]]) -> None:
    db = tmp_path / "stale.sqlite"
    last_ts = _kill_a_cli_mid_run(db, script, child_environ(), tmp_path)
    gate = tmp_path / "gate"
    again = subprocess.Popen(RUN + ["--db", str(db), "--run-id", RUN_ID, "--progress-interval-s", "0.1", "--",
                                    *_worker(script, 50, gate=gate)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_environ())
    try:
        assert again.stdout is not None
        seen = []
        for line in again.stdout:  # the check happens when the file is opened, before the worker speaks
            seen.append(line)
            if "marked interrupted" in line:
                break
        assert f"run {RUN_ID} was left running by a process that is gone: marked interrupted at {last_ts}, " \
               "the time of its last stored event" in "".join(seen), "".join(seen)
        assert _stored(db, "SELECT status, outcome, completed_at FROM runs") == [("interrupted", "interrupted", last_ts)]
        assert _stored(db, "SELECT COUNT(*) FROM stream_owners") == [(0,)]
        gate.touch()
        out, err = again.communicate(timeout=60)
    finally:
        gate.touch()
        if again.poll() is None:
            again.kill()
            again.wait()
    assert again.returncode == 0, out + err
    seqs = [s for (s,) in _stored(db, "SELECT seq_id FROM steps ORDER BY seq_id")]
    assert seqs == list(range(2, STEPS + 2)) + list(range(STEPS + 3, STEPS + 53))  # after the stored max (run_started)
    assert _stored(db, "SELECT status FROM runs") == [("completed",)]  # the new writer finished it
    assert _stored(db, "SELECT COUNT(*) FROM stream_owners") == [(0,)]


def test_the_window_services_mark_it_interrupted_and_its_steps_replay(
        qtbot: Any, tmp_path: Path, script: Callable[[str], list[str]],
        child_environ: Callable[[], dict[str, str]]) -> None:
    from gym_gui.qt.app_services import AppServices
    from gym_gui.qt.replay_controller import ReplayController
    from gym_gui.telemetry.run_bus import RunBus

    db = tmp_path / "stale.sqlite"
    last_ts = _kill_a_cli_mid_run(db, script, child_environ(), tmp_path)
    services = AppServices(db, bus=RunBus())
    try:
        assert [(r.run_id, r.last_event_at) for r in services.interrupted_runs] == [(RUN_ID, last_ts)]
        assert "ended without completing it" in services.interrupted_runs[0].reason
        stored = services.store.run(RUN_ID)
        assert stored is not None and (stored.status, stored.outcome, stored.completed_at) == (
            "interrupted", "interrupted", last_ts)
        with qtbot.waitSignal(services.registry.stored_runs_loaded, timeout=10000):
            services.start()
        state = services.registry.state(RUN_ID)
        assert state is not None and state.status is RunStatus.INTERRUPTED and state.completed_at == last_ts
        replay = ReplayController(services.bus, services.reader, services.sink.run_persisted, RUN_ID,
                                  poll_interval_ms=10, follow_episodes=False)
        with qtbot.waitSignal(replay.replay_ready, timeout=10000) as ready:
            replay.start()
        [partial] = ready.args[1][AGENT]  # the unfinished episode, made of its stored steps
        assert partial.episode_index == 0 and partial.payload["length"] == STEPS and partial.payload["partial"]
        with qtbot.waitSignal(replay.steps_loaded, timeout=10000) as loaded:
            assert replay.load_steps(AGENT, 0)
        assert [s.step_index for s in loaded.args[2]] == list(range(STEPS))
        replay.stop()
        with qtbot.waitSignal(services.sink.run_persisted, timeout=10000):  # "mark failed" still finishes it
            evt = services.registry.update_run_outcome(RUN_ID, "failed", reason="the GUI was killed")
        assert evt is not None and evt.seq_id == STEPS + 2  # after the stored seq_ids
        stored = services.store.run(RUN_ID)
        assert stored is not None and (stored.status, stored.outcome) == ("failed", "failed")
        assert services.sink.stats()["conflicts"] == 0
    finally:
        services.stop()


def test_an_interrupted_run_is_terminal_until_a_writer_resumes_it() -> None:
    table = RunStateTable()
    assert RunStatus.INTERRUPTED in TERMINAL_STATUSES and RunStatus.INTERRUPTED.is_terminal
    from gym_gui.telemetry.sqlite_records import RunRecord

    record = RunRecord(run_id="r", status="interrupted", outcome="interrupted", env_id=None, config=None,
                       created_at="2026-01-01T00:00:00+00:00", started_at="2026-01-01T00:00:00+00:00",
                       completed_at="2026-01-01T00:00:09+00:00", last_heartbeat_at=None, last_heartbeat=None,
                       exit_code=None, signal=None, stderr_tail=None,
                       summary={"reason": "interrupted: gone", "interrupted": True},
                       updated_at="2026-01-01T00:00:09+00:00", agent_ids=("a",))
    assert record.is_terminal
    assert table.merge_stored(record, now=1000.0, age_s=5000.0) == [("status", "r", "interrupted"), ("stream", "r", "a")]
    state = table.state("r")
    assert state is not None and state.reason == "interrupted: gone" and state.completed_at == record.completed_at
    assert table.check_stalls(now=99_999.0) == []  # terminal: it never stalls
    step = TelemetryEvent(Topic.STEP_APPENDED, "r", "a", 11, "2026-01-01T01:00:00+00:00", {})
    assert table.apply_event(step, now=1001.0) == [("status", "r", "running")]  # a writer resumed it
    done = TelemetryEvent(Topic.RUN_COMPLETED, "r", "a", 12, "2026-01-01T01:00:01+00:00", {"outcome": "completed"})
    assert table.apply_event(done, now=1002.0) == [("status", "r", "completed")]
    assert table.apply_event(step, now=1003.0) == []  # completed is final


def test_the_runs_tab_shows_an_interrupted_run_filters_it_and_offers_mark_failed_and_delete(
        qtbot: Any, tmp_path: Path) -> None:
    from gym_gui.qt.store_reader import StoreReader
    from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore
    from gym_gui.telemetry.stream_owners import current_process
    from gym_gui.ui.runs_table_model import COLUMNS
    from gym_gui.ui.runs_view import STATUS_FILTERS, RunsView

    db = tmp_path / "tab.sqlite"
    store = TelemetrySQLiteStore(db)
    reader = StoreReader(store)
    try:
        for run_id in ("gone", "done"):
            steps = [TelemetryEvent(Topic.STEP_APPENDED, run_id, AGENT, i, f"2026-01-01T00:00:0{i}+00:00",
                                    {"episode_index": 0, "step_index": i}) for i in range(1, 4)]
            store.write_batch(steps)
        store.write_batch([TelemetryEvent(Topic.RUN_COMPLETED, "done", AGENT, 9, "2026-01-01T00:00:09+00:00",
                                          {"outcome": "completed"})])
        me = current_process()
        with sqlite3.connect(db) as conn:  # "gone" was written by a process that is gone
            conn.execute("INSERT INTO stream_owners VALUES ('gone', ?, ?, ?, ?, ?, '2026-01-01T00:00:00+00:00')",
                         (AGENT, 1 << 22, me.host, 1, me.boot_id))
        assert [r.run_id for r in store.mark_interrupted_runs()] == ["gone"]
        view = RunsView(reader, refresh_interval_ms=100)
        qtbot.addWidget(view)
        view.start()
        qtbot.waitUntil(lambda: view.model.rowCount() == 2 and view.summary_of("gone") is not None, timeout=5000)
        rows = {view.run_at(r): dict(zip(COLUMNS, [view.proxy.index(r, c).data() for c in range(len(COLUMNS))]))
                for r in range(view.proxy.rowCount())}
        assert rows["gone"]["status"] == "interrupted" and rows["gone"]["steps"] == "3"
        view.status_filter.setCurrentText("interrupted")
        assert STATUS_FILTERS["interrupted"] == frozenset({"interrupted"})
        assert [view.run_at(r) for r in range(view.proxy.rowCount())] == ["gone"]
        view.select_runs(["gone"])
        assert view.action_mark_failed.isEnabled() and view.action_delete.isEnabled()
        with qtbot.waitSignal(view.mark_failed_requested, timeout=2000) as failed:
            view.action_mark_failed.trigger()
        assert failed.args == ["gone"]
        view.stop()
    finally:
        assert reader.stop(5)
        store.close()
