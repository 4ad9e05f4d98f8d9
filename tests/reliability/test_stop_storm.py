"""SIGSTOP/SIGCONT storms (what a debugger or a sampling profiler does to a process) lose nothing.

Every process of a headless run (the CLI, its ingest child, the worker) is paused and resumed
again and again while it trains. Pauses split reads and writes at arbitrary bytes; the pipes, the
frames and the line reader must reassemble them: no line is rejected, every step of every
episode is stored, and the run completes.
"""

from __future__ import annotations

import io
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


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]


def _queued_bytes(fd: int) -> int:
    import fcntl
    import struct
    import termios

    return int(struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0])


def test_the_ingest_process_stopped_while_a_frame_waits_on_the_pipe_keeps_every_frame_whole(
        tmp_path: Path, child_environ: Callable[[], dict[str, str]]) -> None:
    """Under PYTHONUNBUFFERED=1 (``python -u``) the ingest process's stdout is raw: a SIGSTOP while a
    frame's write waits on the full pipe ends that write with part of the frame taken. The rest must
    still follow, or the parent reads garbage from there on and the run fails."""
    from gym_gui.ingest.frames import read_frame
    from gym_gui.ingest.ingest_child import child_argv
    from polling import wait_until

    lines = 30_000
    data = tmp_path / "steps.jsonl"
    data.write_bytes(b"".join(
        b'{"v":1,"kind":"step","run_id":"r","episode_index":0,"step_index":%d,"action":1,"observation":%d,'
        b'"reward":0.5,"terminated":false,"truncated":false}\n' % (i, i) for i in range(lines)))
    worker = subprocess.Popen(["cat", str(data)], stdout=subprocess.PIPE)  # a C writer: it never drops bytes
    child = subprocess.Popen(child_argv(default_agent_id="a", default_run_id="r", max_line_bytes=1 << 20,
                                        read_chunk_bytes=64 * 1024),
                             stdin=worker.stdout, stdout=subprocess.PIPE, env=dict(child_environ(), PYTHONUNBUFFERED="1"))
    assert worker.stdout is not None and child.stdout is not None
    worker.stdout.close()
    stdin = os.open(f"/proc/{child.pid}/fd/0", os.O_RDONLY | os.O_NONBLOCK)  # the worker's pipe, to see it is not empty
    received = bytearray()
    stops = 0
    try:
        for _ in range(6):
            # asleep with input waiting: the child waits in a write to its full stdout pipe
            wait_until(lambda: _state(child.pid) == "S" and _queued_bytes(stdin) > 0, 30,
                       message="the ingest process waiting on its full output pipe")
            os.kill(child.pid, signal.SIGSTOP)
            wait_until(lambda: _state(child.pid) == "T", 30, message="the ingest process stopped")
            os.kill(child.pid, signal.SIGCONT)
            stops += 1
            received += child.stdout.read(200_000)
        received += child.stdout.read()
        assert child.wait(60) == 0 and worker.wait(60) == 0
    finally:
        os.close(stdin)
        for proc in (child, worker):
            proc.kill()
            proc.wait(30)
    assert stops == 6
    stream = io.BytesIO(bytes(received))
    steps, rejections, counted = [], [], 0
    while (frame := read_frame(stream)) is not None:
        counted += frame[0]
        for item in frame[2]:
            (steps if len(item) == 6 else rejections).append(item)
    assert rejections == [] and counted == lines
    assert [item[5][1] for item in steps] == list(range(lines))  # (episode_index, step_index, ...): all, in order
