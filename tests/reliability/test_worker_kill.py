"""Fault: the worker is killed (SIGKILL) in the middle of writing a line.

Every complete line it wrote is stored, the partial one is counted, and the run ends failed with
the signal named; the CLI exits 1.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

RUN = [sys.executable, "-m", "gym_gui.run"]
STEPS = 3000


def test_sigkill_mid_line_loses_no_valid_event(tmp_path: Path, script: Callable[[str], list[str]],
                                               child_environ: Callable[[], dict[str, str]]) -> None:
    ready = tmp_path / "ready"
    worker = script(f"""
        import json, os, sys, time
        out = sys.stdout
        out.write(json.dumps({{"v": 1, "kind": "run_started", "run_id": "killed", "agent_id": "a"}}) + "\\n")
        for i in range({STEPS}):
            out.write(json.dumps({{"type": "step", "run_id": "killed", "agent_id": "a", "episode": i // 100,
                                   "step": i % 100, "reward": 1.0}}) + "\\n")
        out.write('{{"type": "step", "run_id": "killed", "agent_id": "a", "epis')  # killed right here
        out.flush()
        open({str(ready)!r}, "w").write(str(os.getpid()))
        time.sleep(120)
    """)
    db = tmp_path / "kill.sqlite"
    proc = subprocess.Popen(RUN + ["--db", str(db), "--run-id", "killed", "--progress-interval-s", "0.1", "--", *worker],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_environ())
    try:
        deadline = time.monotonic() + 30
        while not ready.exists() or not ready.read_text():
            assert time.monotonic() < deadline and proc.poll() is None, "the worker never got ready"
            time.sleep(0.02)
        os.kill(int(ready.read_text()), signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 1, out + err
    assert "outcome failed" in out and "worker exit: SIGKILL" in out, out
    assert "partial_last_line 1" in out, out
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM steps").fetchone()[0] == STEPS
        assert conn.execute("SELECT MIN(seq_id), MAX(seq_id) FROM steps").fetchone() == (2, STEPS + 1)
        assert conn.execute("SELECT status, outcome, signal FROM runs").fetchall() == [("failed", "failed", "SIGKILL")]
