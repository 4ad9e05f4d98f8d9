"""Workers and ingest children start at a lower scheduling priority than the process reading them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gym_gui.ingest import worker_process
from gym_gui.ingest.worker_process import DEFAULT_CHILD_NICE, NICE_ENV_VAR, ChildNice, child_nice, start_worker

_PRINT_NICE = [sys.executable, "-c", "import os; print(os.nice(0), flush=True)"]


def _nice_of(proc: subprocess.Popen[bytes]) -> int:
    out, _err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    return int(out.decode().strip())


def test_the_increments_come_from_the_environment() -> None:
    assert child_nice({}) == ChildNice(DEFAULT_CHILD_NICE, DEFAULT_CHILD_NICE)
    assert child_nice({NICE_ENV_VAR: "0"}) == ChildNice(0, 0)
    assert child_nice({NICE_ENV_VAR: " 7 , 3 "}) == ChildNice(7, 3)


@pytest.mark.parametrize("text", ["x", "-1", "20", "1,2,3", "4,"])
def test_a_malformed_value_is_logged_and_the_default_applies(text: str, caplog: pytest.LogCaptureFixture) -> None:
    assert child_nice({NICE_ENV_VAR: text}) == ChildNice(DEFAULT_CHILD_NICE, DEFAULT_CHILD_NICE)
    assert NICE_ENV_VAR in caplog.text


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="no setpriority on this platform")
def test_a_worker_runs_below_the_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    ours = os.nice(0)
    monkeypatch.setenv(NICE_ENV_VAR, "4,2")
    assert _nice_of(start_worker(_PRINT_NICE, env=None, cwd=None)) == min(19, ours + 4)
    monkeypatch.setenv(NICE_ENV_VAR, "0")
    assert _nice_of(start_worker(_PRINT_NICE, env=None, cwd=None)) == ours


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="no setpriority on this platform")
def test_the_ingest_child_runs_at_its_own_increment(monkeypatch: pytest.MonkeyPatch) -> None:
    ours = os.nice(0)
    monkeypatch.setenv(NICE_ENV_VAR, "4,2")
    worker = start_worker([sys.executable, "-c", "import time; time.sleep(60)"], env=None, cwd=None)
    child = worker_process.start_ingest_child(worker, default_agent_id="a", default_run_id="r",
                                              max_line_bytes=1 << 20, read_chunk_bytes=1 << 16, exit_drain_s=1.0)
    try:
        assert os.getpriority(os.PRIO_PROCESS, child.pid) == min(19, ours + 2)
    finally:
        child.kill()
        worker.kill()
        child.communicate(timeout=30)
        worker.communicate(timeout=30)


def test_a_child_already_gone_is_not_an_error() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    assert worker_process.lower_priority(proc.pid, 3) is False  # reaped: no such process
    assert worker_process.lower_priority(proc.pid, 0) is True  # nothing to do
