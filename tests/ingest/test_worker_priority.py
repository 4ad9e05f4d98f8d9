"""Workers and ingest children start at a lower scheduling priority than the process reading them."""

from __future__ import annotations

import os
import subprocess
import sys

from typing import Any

import pytest

from gym_gui.ingest import worker_process
from gym_gui.ingest.worker_process import NICE_ENV_VAR, ChildNice, child_nice, set_child_nice, start_worker

_PRINT_NICE = [sys.executable, "-c", "import os; print(os.nice(0), flush=True)"]


@pytest.fixture(autouse=True)
def _restore_the_process_setting() -> Any:
    before = child_nice({})
    yield
    set_child_nice(before)


def _nice_of(proc: subprocess.Popen[bytes]) -> int:
    out, _err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    return int(out.decode().strip())


def test_the_process_asks_and_the_environment_overrides() -> None:
    set_child_nice(ChildNice(6, 5))
    assert child_nice({}) == ChildNice(6, 5)
    assert child_nice({NICE_ENV_VAR: "0"}) == ChildNice(0, 0)
    assert child_nice({NICE_ENV_VAR: " 7 , 3 "}) == ChildNice(7, 3)
    with pytest.raises(ValueError):
        set_child_nice(ChildNice(20, 0))
    assert child_nice({}) == ChildNice(6, 5)


@pytest.mark.parametrize("text", ["x", "-1", "20", "1,2,3", "4,"])
def test_a_malformed_value_is_logged_and_the_process_setting_applies(text: str,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    set_child_nice(ChildNice(4, 4))
    assert child_nice({NICE_ENV_VAR: text}) == ChildNice(4, 4)
    assert NICE_ENV_VAR in caplog.text


def test_the_window_asks_for_nice_10(tmp_path: Any) -> None:
    from gym_gui.qt.app_services import GUI_CHILD_NICE, AppServices

    services = AppServices(tmp_path / "t.sqlite")
    try:
        assert child_nice({}) == GUI_CHILD_NICE == ChildNice(10, 10)
    finally:
        services.stop()


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="no setpriority on this platform")
def test_a_worker_runs_below_the_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    ours = os.nice(0)
    monkeypatch.delenv(NICE_ENV_VAR, raising=False)
    set_child_nice(ChildNice(0, 0))  # (a process that does not ask: unchanged)
    assert _nice_of(start_worker(_PRINT_NICE, env=None, cwd=None)) == ours
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
