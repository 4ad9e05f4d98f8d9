"""RunLauncher with real Q-learning workers: runs complete, cancel never blocks the GUI thread, stop ends everything."""

from __future__ import annotations

from typing import Any

import pytest

from gym_gui.qt.run_launcher import RunLauncher
from gym_gui.ingest.worker_specs import WorkerSpec
from gym_gui.telemetry.events import Topic
from gym_gui.telemetry.run_bus import RunBus


def completions(bus: RunBus, subscriber: str = "test") -> Any:
    return bus.subscribe(Topic.RUN_COMPLETED, subscriber, maxlen=None)


def test_a_launched_run_completes_and_is_reported_once(qtbot: Any, bus: RunBus) -> None:
    done = completions(bus)
    launcher = RunLauncher(bus, poll_interval_ms=20)
    spec = WorkerSpec(episodes=5, heartbeat_interval_s=0.0)
    with qtbot.waitSignal(launcher.run_exited, timeout=30000) as blocker:
        proxy = launcher.launch(spec.argv("run-a"), run_id="run-a")
        assert launcher.active_run_ids() == ["run-a"] and launcher.proxy("run-a") is proxy
    assert blocker.args == ["run-a", 0]
    assert launcher.launched("run-a") and not launcher.launched("run-b")
    [completed] = done.drain()
    assert completed.run_id == "run-a" and completed.payload["outcome"] == "completed"
    qtbot.waitUntil(lambda: not launcher.is_polling(), timeout=5000)
    stats = launcher.stats()
    assert stats["runs"] == 1 and stats["active"] == 0 and stats["lines_read"] > 5 and stats["rejected_total"] == 0
    assert launcher.active_run_ids() == []
    assert launcher.stop(5) and launcher.stop(5)


def test_cancel_returns_at_once_and_the_run_ends_cancelled(qtbot: Any, bus: RunBus) -> None:
    done = completions(bus)
    started = bus.subscribe(Topic.RUN_STARTED, "test", maxlen=None)
    launcher = RunLauncher(bus, poll_interval_ms=20)
    slow = WorkerSpec(episodes=100_000, step_rate_hz=50.0, heartbeat_interval_s=0.0)
    launcher.launch(slow.argv("run-slow"), run_id="run-slow")
    qtbot.waitUntil(lambda: len(started) == 1, timeout=30000)  # the worker is up and training
    with qtbot.waitSignal(launcher.run_exited, timeout=30000) as blocker:
        assert launcher.cancel("run-slow") is True
    assert blocker.args[0] == "run-slow"
    [completed] = done.drain()
    assert completed.payload["outcome"] == "cancelled"
    assert launcher.cancel("run-slow") is False and launcher.cancel("nope") is False
    assert launcher.stop(5)


def test_stop_ends_running_workers_and_refuses_new_ones(qtbot: Any, bus: RunBus) -> None:
    done = completions(bus)
    launcher = RunLauncher(bus, poll_interval_ms=20)
    slow = WorkerSpec(episodes=100_000, step_rate_hz=50.0, heartbeat_interval_s=0.0)
    proxy = launcher.launch(slow.argv("run-1"), run_id="run-1")
    assert launcher.stop(5)
    assert proxy.finished and proxy.process is not None and proxy.process.poll() is not None
    assert not launcher.is_polling()
    assert [e.payload["outcome"] for e in done.drain()] in (["cancelled"], ["failed"])
    with pytest.raises(RuntimeError, match="stopped"):
        launcher.launch(slow.argv("run-2"), run_id="run-2")


def test_a_run_id_launches_once_and_a_missing_program_is_an_oserror(qtbot: Any, bus: RunBus) -> None:
    launcher = RunLauncher(bus)
    launcher.launch(WorkerSpec(episodes=1, heartbeat_interval_s=0.0).argv("r"), run_id="r")
    with pytest.raises(ValueError, match="already launched"):
        launcher.launch([], run_id="r")
    with pytest.raises(OSError):
        launcher.launch(["/nonexistent/worker"], run_id="r2")
    assert launcher.proxy("r2") is None
    assert launcher.stop(5)
