"""LiveTelemetryController stall detection: real pump ticks, a test clock instead of waiting seconds.

The pump arms its timer for the view's stall deadline on the test clock; when a test moves that
clock it asks the pump to re-read the deadlines (``advance``), as nothing else could tell it.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from gym_gui.qt.live_controller import LiveTelemetryController
from gym_gui.telemetry.run_bus import RunBus


class Clock:
    """Monotonic seconds the test moves forward by hand."""

    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ctl(bus: RunBus, clock: Clock) -> Iterator[LiveTelemetryController]:
    controller = LiveTelemetryController(bus, "run1", "agent1", poll_interval_ms=10, heartbeat_interval_s=1.0,
                                         stall_missed_intervals=3, clock=clock)
    controller.start()
    yield controller
    controller.stop()
    assert not controller.is_polling() and bus.subscriptions() == []


def changes(ctl: LiveTelemetryController) -> list[bool]:
    seen: list[bool] = []
    ctl.stall_changed.connect(seen.append)
    return seen


def let_ticks_pass(qtbot: Any, ctl: LiveTelemetryController, n: int = 3) -> None:
    for _ in range(n):
        start = ctl.ticks
        ctl.pump.wake()
        qtbot.waitUntil(lambda: ctl.ticks > start, timeout=5000)


def advance(ctl: LiveTelemetryController, clock: Clock, delta_s: float) -> None:
    clock.now_s += delta_s
    ctl.pump.reschedule()


def test_missing_heartbeats_stall_the_stream_and_the_next_event_resumes_it(
        qtbot: Any, bus: RunBus, factory: Any, clock: Clock, ctl: LiveTelemetryController) -> None:
    seen = changes(ctl)
    f = factory("run1", "agent1")
    with qtbot.waitSignal(ctl.run_started, timeout=5000):
        bus.publish(f.started())
    advance(ctl, clock, 2.9)  # under 3 missed intervals of 1 s
    let_ticks_pass(qtbot, ctl)
    assert seen == [] and not ctl.is_stalled()
    advance(ctl, clock, 0.2)
    with qtbot.waitSignal(ctl.stall_changed, timeout=5000) as stalled:
        pass
    assert stalled.args == [True] and ctl.is_stalled() and ctl.stats()["stalled"]
    let_ticks_pass(qtbot, ctl)
    assert seen == [True]  # reported once
    with qtbot.waitSignal(ctl.stall_changed, timeout=5000) as resumed:
        bus.publish(f.heartbeat())
    assert resumed.args == [False] and not ctl.is_stalled()
    advance(ctl, clock, 3.0)  # the clock restarted at the heartbeat
    with qtbot.waitSignal(ctl.stall_changed, timeout=5000):
        pass
    assert seen == [True, False, True]


def test_the_runs_configured_interval_wins_over_the_default(
        qtbot: Any, bus: RunBus, factory: Any, clock: Clock, ctl: LiveTelemetryController) -> None:
    seen = changes(ctl)
    f = factory("run1", "agent1")
    with qtbot.waitSignal(ctl.run_started, timeout=5000):
        bus.publish(f.started(config={"heartbeat_interval_s": 10}))
    assert ctl.stall_timeout_s() == 30.0
    advance(ctl, clock, 29.0)
    let_ticks_pass(qtbot, ctl)
    assert seen == []
    advance(ctl, clock, 1.0)
    qtbot.waitUntil(lambda: seen == [True], timeout=5000)


def test_a_heartbeats_own_interval_is_used_when_the_run_configured_none(
        qtbot: Any, bus: RunBus, factory: Any, clock: Clock, ctl: LiveTelemetryController) -> None:
    seen = changes(ctl)
    f = factory("run1", "agent1")
    with qtbot.waitSignal(ctl.heartbeat, timeout=5000):
        bus.publish(f.started())
        bus.publish(f.heartbeat(interval_s=5))
    assert ctl.stall_timeout_s() == 15.0
    advance(ctl, clock, 14.0)
    let_ticks_pass(qtbot, ctl)
    assert seen == []
    advance(ctl, clock, 1.0)
    qtbot.waitUntil(lambda: seen == [True], timeout=5000)


def test_the_stall_clock_starts_at_the_first_event(
        qtbot: Any, bus: RunBus, factory: Any, clock: Clock, ctl: LiveTelemetryController) -> None:
    seen = changes(ctl)
    advance(ctl, clock, 100.0)  # a worker that has not spoken yet is pending, not stalled
    let_ticks_pass(qtbot, ctl)
    assert seen == []
    with qtbot.waitSignal(ctl.batch_ready, timeout=5000):
        bus.publish(factory("run1", "agent1").step(0, 0))
    advance(ctl, clock, 3.0)
    qtbot.waitUntil(lambda: seen == [True], timeout=5000)


def test_a_completed_run_never_stalls(qtbot: Any, bus: RunBus, factory: Any, clock: Clock,
                                      ctl: LiveTelemetryController) -> None:
    seen = changes(ctl)
    f = factory("run1", "agent1")
    with qtbot.waitSignal(ctl.run_completed, timeout=5000):
        bus.publish(f.started())
        bus.publish(f.completed())
    advance(ctl, clock, 1000.0)
    let_ticks_pass(qtbot, ctl, 5)
    assert seen == [] and not ctl.is_stalled()


def test_completion_ends_a_stall_for_good(qtbot: Any, bus: RunBus, factory: Any, clock: Clock,
                                          ctl: LiveTelemetryController) -> None:
    seen = changes(ctl)
    f = factory("run1", "agent1")
    bus.publish(f.started())
    let_ticks_pass(qtbot, ctl, 1)
    advance(ctl, clock, 5.0)
    qtbot.waitUntil(lambda: seen == [True], timeout=5000)
    with qtbot.waitSignal(ctl.run_completed, timeout=5000):
        bus.publish(f.completed())
    assert seen == [True, False]
    advance(ctl, clock, 1000.0)
    let_ticks_pass(qtbot, ctl, 5)
    assert seen == [True, False] and not ctl.is_stalled()
