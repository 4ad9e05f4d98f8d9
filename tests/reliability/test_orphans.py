"""Issue 10, item 8: no orphans, no hang on a grandchild.

When the process that runs the proxy dies (kill -9), the worker and the ingest child end too, even
while the worker is quiet. A worker that leaves a grandchild holding its stdout and stderr is
complete (or failed) promptly after its own exit, with every line it wrote.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator
from polling import became_true, process_gone

import pytest

from gym_gui.ingest.proxy import TelemetryProxy
from gym_gui.telemetry.events import Topic
from gym_gui.telemetry.run_bus import RunBus

PARENT = """
import sys, threading, time
from gym_gui.ingest.proxy import TelemetryProxy
from gym_gui.telemetry.run_bus import RunBus

mode = sys.argv[1]
proxy = TelemetryProxy(RunBus(), run_id="orphan", decode_in_subprocess=(mode != "in-process"))
quiet_worker = [sys.executable, "-c", "import time; time.sleep(600)"]  # lives on (real time), writes nothing
if mode == "thread":  # spawned off the main thread: no parent-death signal, the pipe watch must do it
    t = threading.Thread(target=proxy.spawn, args=(quiet_worker,)); t.start(); t.join()
else:
    proxy.spawn(quiet_worker)
ingest = proxy._ingest_proc.pid if proxy._ingest_proc is not None else 0
print(proxy.process.pid, ingest, flush=True)
time.sleep(600)  # the parent lives (real time) until the test kills it with SIGKILL: what is under test
"""





@pytest.fixture
def kill_later() -> Iterator[list[int]]:
    pids: list[int] = []
    yield pids
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and PR_SET_PDEATHSIG are Linux")
@pytest.mark.parametrize("mode", ["main", "thread", "in-process"])
def test_kill_9_of_the_parent_ends_the_worker_and_the_ingest_child(
        mode: str, child_environ: Callable[[], dict[str, str]], kill_later: list[int]) -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT, mode], stdout=subprocess.PIPE, text=True,
                              env=child_environ())
    kill_later.append(parent.pid)
    assert parent.stdout is not None
    worker, ingest = (int(x) for x in parent.stdout.readline().split())
    kill_later += [worker] + ([ingest] if ingest else [])
    assert not process_gone(worker)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait(10)
    parent.stdout.close()
    assert became_true(lambda: process_gone(worker), 10), f"worker {worker} outlived its parent"
    if ingest:
        assert became_true(lambda: process_gone(ingest), 10), f"ingest child {ingest} outlived its parent"


GRANDCHILD_WORKER = """
import json, subprocess, sys
# a grandchild that lives on (real time, under test) holding the inherited stdout and stderr
sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
open(sys.argv[1], "w").write(str(sleeper.pid))
for i in range(50):
    print(json.dumps({"type": "step", "run_id": "gc", "episode": 0, "step": i, "reward": 0.0}))
if sys.argv[2] == "ok":
    print(json.dumps({"event": "run_completed", "run_id": "gc", "payload": {}}))
sys.stdout.flush()
sys.stderr.write("worker: leaving my grandchild behind\\n")
sys.exit(0 if sys.argv[2] == "ok" else 3)
"""


@pytest.mark.parametrize("ending", ["ok", "fail"])
@pytest.mark.parametrize("in_subprocess", [True, False])
def test_a_grandchild_holding_stdout_does_not_delay_the_end(
        ending: str, in_subprocess: bool, tmp_path: Path, kill_later: list[int]) -> None:
    bus = RunBus()
    steps = bus.subscribe(Topic.STEP_APPENDED, "t", maxlen=None)
    done = bus.subscribe(Topic.RUN_COMPLETED, "t", maxlen=None)
    proxy = TelemetryProxy(bus, run_id="gc", decode_in_subprocess=in_subprocess)
    pid_file = tmp_path / "grandchild.pid"
    started = time.monotonic()
    proxy.spawn([sys.executable, "-c", GRANDCHILD_WORKER, str(pid_file), ending])
    try:
        assert proxy.wait(15), "the run waited for the grandchild"
        elapsed_s = time.monotonic() - started
    finally:
        if pid_file.exists():
            kill_later.append(int(pid_file.read_text()))
    assert elapsed_s < 8
    assert [e.payload["step_index"] for e in steps.drain()] == list(range(50))
    (completion,) = done.drain()
    if ending == "ok":
        assert completion.payload["outcome"] == "completed"
    else:
        assert completion.payload["outcome"] == "failed" and completion.payload["exit_code"] == 3
        assert "leaving my grandchild behind" in completion.payload["stderr_tail"]
    assert proxy.stop(5)


def test_what_the_worker_left_in_the_pipe_is_read_however_late_the_reader_comes() -> None:
    """The drain time bounds waiting for a grandchild, never reading what the worker wrote: a reader
    held up by back-pressure for longer than ``drain_s`` still gets every byte."""
    from gym_gui.ingest.worker_pipe import ExitBoundedPipe

    read_fd, write_fd = os.pipe()  # the test keeps write_fd open, as a grandchild would
    try:
        worker = subprocess.Popen([sys.executable, "-c", "pass"])
        pipe = ExitBoundedPipe(read_fd, worker.pid, drain_s=0.1)
        data = b"".join(b'{"line": %d}\n' % i for i in range(3000))[:60_000]
        os.write(write_fd, data)  # what "the worker" wrote before it exited
        worker.wait(10)
        got = bytearray(pipe.read(4096))  # sees the worker's exit
        time.sleep(0.3)  # real time under test: the reader is held up (back-pressure) longer than drain_s
        while chunk := pipe.read(4096):
            got += chunk
        assert bytes(got) == data
        pipe.close()
    finally:
        os.close(read_fd)
        os.close(write_fd)
