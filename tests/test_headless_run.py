"""`python -m gym_gui.run`: the headless end-to-end run as a user starts it."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

RUN = [sys.executable, "-m", "gym_gui.run"]


def test_default_run_trains_persists_and_reports(tmp_path: Path) -> None:
    db = tmp_path / "nested" / "demo.sqlite"
    result = subprocess.run(RUN + ["--db", str(db), "--episodes", "40", "--seed", "2", "--run-id", "cli-1"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "run cli-1" in out and "outcome completed" in out and "stored: 40 episodes" in out
    assert "episodes" in out and "persisted" in out and "backlog" in out  # the progress line's fields
    assert f"database: {db.resolve()}" in out
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT status, outcome FROM runs WHERE run_id = 'cli-1'").fetchall() == [("completed", "completed")]
        steps = conn.execute("SELECT COUNT(*) FROM steps").fetchone()[0]
        lengths = conn.execute("SELECT SUM(length) FROM episodes").fetchone()[0]
    assert steps == lengths > 40
    assert f"{steps} steps" in out


def test_a_custom_failing_worker_command_exits_1_with_its_stderr(tmp_path: Path) -> None:
    worker = tmp_path / "worker.py"
    worker.write_text(textwrap.dedent("""
        import json, sys
        print(json.dumps({"type": "step", "episode": 0, "step": 0, "reward": 1.0}), flush=True)
        sys.exit("worker gave up: no GPU")
    """))
    db = tmp_path / "x.sqlite"
    result = subprocess.run(RUN + ["--db", str(db), "--run-id", "cli-2", "--default-agent-id", "agent6", "--",
                                   sys.executable, str(worker)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "outcome failed" in result.stdout and "worker gave up: no GPU" in result.stdout
    assert "exit code 1" in result.stdout
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT agent_id FROM steps").fetchall() == [("agent6",)]


def test_interrupt_cancels_the_worker_and_exits_130(tmp_path: Path) -> None:
    db = tmp_path / "x.sqlite"
    proc = subprocess.Popen(RUN + ["--db", str(db), "--episodes", "100000", "--step-rate-hz", "500",
                                   "--run-id", "cli-3", "--progress-interval-s", "0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("episodes"):
                break  # training is under way
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, out + err
    assert "outcome cancelled" in out
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT outcome FROM runs").fetchall() == [("cancelled",)]


def test_a_worker_that_cannot_start_is_reported_with_exit_2(tmp_path: Path) -> None:
    result = subprocess.run(RUN + ["--db", str(tmp_path / "x.sqlite"), "--", str(tmp_path / "no-such-worker")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "cannot start the worker" in result.stdout and "Traceback" not in result.stderr
