"""SIGSTOP/SIGCONT storms (what a debugger or a sampling profiler does to a process) lose nothing.

Every process of a headless run (the CLI, its ingest child, the worker) is paused and resumed
again and again while it trains. Pauses split reads and writes at arbitrary bytes; the pipes, the
frames and the line reader must reassemble them: no line is rejected, every step of every
episode is stored, and the run completes.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

RUN = [sys.executable, "-m", "gym_gui.run"]


def _descendants(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout.split()
    kids = [int(x) for x in out]
    return kids + [g for k in kids for g in _descendants(k)]


def test_a_run_paused_and_resumed_hundreds_of_times_stores_every_step(
        tmp_path: Path, child_environ: Callable[[], dict[str, str]]) -> None:
    db = tmp_path / "storm.sqlite"
    proc = subprocess.Popen(RUN + ["--db", str(db), "--env", "FrozenLake-v1", "--episodes", "1500",
                                   "--seed", "3", "--run-id", "storm-1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_environ())
    rng = random.Random(7)
    pauses = 0
    try:
        while proc.poll() is None:
            victim = rng.choice([proc.pid] + _descendants(proc.pid))
            try:
                os.kill(victim, signal.SIGSTOP)
                time.sleep(rng.uniform(0.001, 0.02))  # the pause being injected, not a wait for a result
                os.kill(victim, signal.SIGCONT)
                pauses += 1
            except ProcessLookupError:
                pass
        out, err = proc.communicate(timeout=120)
    finally:
        for pid in [proc.pid] + _descendants(proc.pid):
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        proc.kill()
    assert pauses > 10, "the run ended before the storm could pause it"
    assert proc.returncode == 0, out + err
    assert "rejected lines: none" in out and "not stored: nothing" in out, out
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT status FROM runs").fetchall() == [("completed",)]
        episodes, lengths = conn.execute("SELECT COUNT(*), SUM(length) FROM episodes").fetchone()
        steps = conn.execute("SELECT COUNT(*) FROM steps").fetchone()[0]
        rejected = conn.execute("SELECT COUNT(*) FROM run_events WHERE error IS NOT NULL").fetchone()[0]
    assert episodes == 1500 and steps == lengths and rejected == 0
