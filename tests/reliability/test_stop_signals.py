"""``python -m gym_gui.run`` under the ways a terminal session ends it: a second Ctrl+C, Ctrl+C while
the last writes wait on a locked file, SIGHUP, a reader that goes away (``| head``), a -wal file
deleted, a damaged file, a run whose end cannot be numbered. Each ends with the summary (or one
clear line), a truthful exit code, and no traceback; every loss is counted.

Real CLI processes and worker scripts; a worker that must wait for the test blocks on a FIFO the
test opens (no timing).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterator

import pytest

from gym_gui.telemetry.events import MAX_SEQ_ID
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore
from polling import wait_until

RUN = [sys.executable, "-m", "gym_gui.run"]
Script = Callable[[str], list[str]]
Env = Callable[[], dict[str, str]]

#: A worker writing canonical lines: run_started and ``FIRST`` steps, then (after the FIFO is
#: released) ``REST`` more and run_completed. ``STOP_FIFO``: on SIGTERM it ends only once that FIFO is released.
WORKER = """
import json, signal, sys
FIFO, FIRST, REST, STOP_FIFO = {fifo!r}, {first}, {rest}, {stop_fifo!r}
TS = "2024-05-01T12:00:00+00:00"
def line(kind, **fields):
    sys.stdout.write(json.dumps({{"v": 1, "kind": kind, "run_id": "r1", "agent_id": "a1", "ts": TS, **fields}}) + "\\n")
    sys.stdout.flush()
def step(i):
    line("step", episode_index=0, step_index=i, action=0, observation=0, reward=1.0, terminated=False,
         truncated=False, info={{}}, render_payload=None)
def on_term(*_):
    if STOP_FIFO:
        open(STOP_FIFO).read()  # a worker that needs a while to stop: until the test releases it
    line("run_completed", outcome="cancelled", summary={{}})
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
line("run_started", env_id="FrozenLake-v1", config={{}})
for i in range(FIRST):
    step(i)
open(FIFO).read()  # until the test releases it
for i in range(FIRST, FIRST + REST):
    step(i)
line("run_completed", outcome="completed", summary={{}})
"""


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "go.fifo"
    os.mkfifo(path)
    yield path


def _release(fifo: Path) -> None:
    with open(fifo, "w"):
        pass


def _start(script: Script, env: Env, db: Path, fifo: Path, *, first: int = 5, rest: int = 5,
           stop_fifo: Path | None = None, extra: tuple[str, ...] = ()) -> subprocess.Popen[str]:
    worker = script(WORKER.format(fifo=str(fifo), first=first, rest=rest,
                                  stop_fifo=str(stop_fifo) if stop_fifo else ""))
    return subprocess.Popen(RUN + ["--db", str(db), "--progress-interval-s", "0.05", *extra, "--", *worker],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())


def _read_until(proc: subprocess.Popen[str], text: str) -> str:
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if text in line:
            return "".join(seen)
    raise AssertionError(f"{text!r} never came: {''.join(seen)}")


def _stored(db: Path) -> tuple[str, int]:
    """The one run's status and its stored steps."""
    with sqlite3.connect(db) as conn:
        ((status,),) = conn.execute("SELECT status FROM runs").fetchall()
        return status, conn.execute("SELECT COUNT(*) FROM steps").fetchone()[0]


def _until_stored(proc: subprocess.Popen[str]) -> None:
    """Until a progress line shows the run's first events committed."""
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("episodes") and " persisted        0 " not in line:
            return
    raise AssertionError("the run never stored anything")


def _mid_run(proc: subprocess.Popen[str], fifo: Path, act: Callable[[], object]) -> None:
    """Once the run's first events are stored: ``act()``, then let the worker write the rest."""
    _until_stored(proc)
    act()
    _release(fifo)


def _release_once_opened(fifo: Path) -> None:
    """Release a FIFO as soon as its reader has opened it (never blocks on a reader that never comes)."""
    def opened() -> bool:
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:  # ENXIO: no reader yet
            return False
        return True
    wait_until(opened, 30, message=f"the worker to wait on {fifo.name}")


def test_a_second_ctrl_c_while_the_worker_stops_still_gives_the_summary_and_130(
        tmp_path: Path, script: Script, child_environ: Env, fifo: Path) -> None:
    stop_fifo = tmp_path / "stop.fifo"
    os.mkfifo(stop_fifo)
    proc = _start(script, child_environ, tmp_path / "db.sqlite", fifo, stop_fifo=stop_fifo)
    try:
        _until_stored(proc)
        proc.send_signal(signal.SIGINT)
        _read_until(proc, "interrupted: stopping the worker")
        proc.send_signal(signal.SIGINT)  # while the worker is still stopping (it waits on stop_fifo)
        _release_once_opened(stop_fifo)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, out + err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert "summary:" in out and "outcome cancelled" in out and "not stored: nothing" in out, out


def test_ctrl_c_while_the_last_writes_wait_on_a_locked_file_counts_them_lost(
        tmp_path: Path, script: Script, child_environ: Env, fifo: Path) -> None:
    db = tmp_path / "db.sqlite"
    proc = _start(script, child_environ, db, fifo, rest=200, extra=("--flush-timeout-s", "120"))
    lock = None
    try:
        _until_stored(proc)
        lock = sqlite3.connect(db, isolation_level=None, timeout=30)
        lock.execute("BEGIN EXCLUSIVE")  # another process holds the file
        _release(fifo)  # the worker writes the rest and ends; the CLI waits for its last writes
        _read_until(proc, "Ctrl+C stops waiting")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if lock is not None:
            lock.execute("ROLLBACK")
            lock.close()
        proc.kill()
    assert proc.returncode == 1, out + err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert "stopped waiting for the last writes" in out and "summary:" in out, out
    lost = int(out.split(" lost; producer paused")[0].rsplit(" ", 1)[1])
    assert lost >= 200, out  # the steps after the lock (and the completion) are counted, not silent
    # the run's end was not stored: the next process that opens the file marks it interrupted
    store = TelemetrySQLiteStore(db)
    try:
        assert [r.run_id for r in store.mark_interrupted_runs()] == ["r1"]
    finally:
        store.close()


def test_sighup_stops_the_run_like_ctrl_c_with_the_summary_and_129(
        tmp_path: Path, script: Script, child_environ: Env, fifo: Path) -> None:
    db = tmp_path / "db.sqlite"
    proc = _start(script, child_environ, db, fifo)
    try:
        _until_stored(proc)
        proc.send_signal(signal.SIGHUP)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 129, out + err
    assert "hung up (SIGHUP" in out and "summary:" in out and "outcome cancelled" in out, out
    assert "Traceback" not in err, err
    assert _stored(db) == ("cancelled", 5)


def test_a_reader_that_goes_away_does_not_stop_the_training(
        tmp_path: Path, script: Script, child_environ: Env, fifo: Path) -> None:
    db = tmp_path / "db.sqlite"
    proc = _start(script, child_environ, db, fifo, rest=500)
    try:
        assert proc.stdout is not None
        _mid_run(proc, fifo, proc.stdout.close)  # `| head -3`: the reader is gone; progress lines go on
        err = proc.stderr.read() if proc.stderr is not None else ""
        proc.wait(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert _stored(db) == ("completed", 505)


def test_a_deleted_write_ahead_log_is_reported_not_called_stored(
        tmp_path: Path, script: Script, child_environ: Env, fifo: Path) -> None:
    db = tmp_path / "db.sqlite"
    proc = _start(script, child_environ, db, fifo, rest=500)
    try:
        _mid_run(proc, fifo, lambda: [Path(f"{db}{suffix}").unlink() for suffix in ("-wal", "-shm")])
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 1, out + err
    assert "write-ahead log" in out and "was deleted" in out and "events are lost" in out, out
    assert "not stored: nothing" not in out and "Traceback" not in err, out + err


def test_a_damaged_database_file_is_one_clear_line_and_exit_2(tmp_path: Path, child_environ: Env) -> None:
    db = tmp_path / "db.sqlite"
    TelemetrySQLiteStore(db).close()
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2])  # truncated: the schema's pages are gone
    done = subprocess.run(RUN + ["--db", str(db), "--", sys.executable, "-c", "pass"], capture_output=True,
                          text=True, timeout=60, env=child_environ())
    assert done.returncode == 2, done.stdout + done.stderr
    assert "cannot open the database" in done.stdout and "malformed" in done.stdout, done.stdout
    assert "Traceback" not in done.stderr, done.stderr


def test_a_run_whose_end_cannot_be_numbered_is_marked_interrupted_at_the_next_open(
        tmp_path: Path, script: Script, child_environ: Env) -> None:
    db = tmp_path / "db.sqlite"
    worker = script(f"""
        import json
        TS = "2024-05-01T12:00:00+00:00"
        head = {{"v": 1, "run_id": "r1", "agent_id": "a1", "ts": TS}}
        step = {{"kind": "step", "episode_index": 0, "step_index": 0, "action": 0, "observation": 0, "reward": 1.0,
                 "terminated": False, "truncated": False, "info": {{}}, "render_payload": None}}
        print(json.dumps({{**head, "kind": "run_started", "seq": 1, "env_id": "FrozenLake-v1", "config": {{}}}}))
        print(json.dumps({{**head, **step, "seq": {MAX_SEQ_ID}}}))
        print(json.dumps({{**head, **step, "step_index": 1}}))  # no seq_id is left for it nor the end
        print(json.dumps({{**head, "kind": "run_completed", "outcome": "completed", "summary": {{}}}}))
    """)
    first = subprocess.run(RUN + ["--db", str(db), "--", *worker], capture_output=True, text=True, timeout=60,
                           env=child_environ())
    assert first.returncode == 1, first.stdout + first.stderr
    assert "seq_exhausted 2" in first.stdout and "outcome none stored (still running in the file)" in first.stdout
    second = subprocess.run(RUN + ["--db", str(db), "--", sys.executable, "-c", "pass"], capture_output=True,
                            text=True, timeout=60, env=child_environ())
    assert "run r1 was left running by a process that is gone: marked interrupted" in second.stdout, second.stdout
