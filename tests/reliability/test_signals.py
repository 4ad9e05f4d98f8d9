"""Issue 10, item 6: SIGTERM to ``python -m gym_gui.run`` is handled like Ctrl+C.

The worker is stopped (and writes its cancelled run_completed), everything read is stored, the
summary is printed, and the exit code is 143.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Callable

RUN = [sys.executable, "-m", "gym_gui.run"]


def test_sigterm_stores_the_backlog_marks_the_run_cancelled_and_prints_the_summary(
        tmp_path: Path, child_environ: Callable[[], dict[str, str]]) -> None:
    db = tmp_path / "term.sqlite"
    proc = subprocess.Popen(RUN + ["--db", str(db), "--episodes", "100000", "--step-rate-hz", "2000",
                                   "--run-id", "term-1", "--progress-interval-s", "0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_environ())
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("episodes") and " persisted        0 " not in line:
                break  # training is under way and some of it is stored
        os.kill(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, out + err
    assert "terminated (SIGTERM)" in out and "summary:" in out and "outcome cancelled" in out, out
    assert "Traceback" not in err
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT status, outcome FROM runs").fetchall() == [("cancelled", "cancelled")]
        steps = conn.execute("SELECT COUNT(*) FROM steps").fetchone()[0]
        lengths = conn.execute("SELECT SUM(length) FROM episodes").fetchone()[0]
    assert steps == lengths > 0  # every step of every episode, the partial last one included
    assert f"{steps} steps" in out
