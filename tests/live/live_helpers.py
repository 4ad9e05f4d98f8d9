"""Helpers for the LiveTelemetryController tests: make started controllers, record their batches, run quiet ticks."""

from __future__ import annotations

from typing import Any

from gym_gui.live.live_batch import LiveBatch
from gym_gui.qt.live_controller import LiveTelemetryController
from gym_gui.telemetry.run_bus import RunBus


def make(controllers: list[LiveTelemetryController], bus: RunBus, run_id: str = "run1", agent_id: str = "agent1",
         **kwargs: Any) -> LiveTelemetryController:
    """A started controller with a 10 ms poll unless told otherwise; the ``controllers`` fixture stops it."""
    kwargs.setdefault("poll_interval_ms", 10)
    ctl = LiveTelemetryController(bus, run_id, agent_id, **kwargs)
    controllers.append(ctl)
    ctl.start()
    return ctl


def quiet_ticks(qtbot: Any, ctl: LiveTelemetryController, n: int = 3) -> None:
    """With nothing pending the pump is idle (no timer runs); then ``n`` ticks are asked for and run."""
    qtbot.waitUntil(lambda: not ctl.pump.timer_active(), timeout=5000)
    for _ in range(n):
        start = ctl.ticks
        ctl.pump.wake()
        qtbot.waitUntil(lambda: ctl.ticks > start, timeout=5000)


def record(ctl: LiveTelemetryController) -> list[tuple[int, LiveBatch]]:
    """Every batch with the tick that emitted it."""
    seen: list[tuple[int, LiveBatch]] = []
    ctl.batch_ready.connect(lambda batch: seen.append((ctl.ticks, batch)))
    return seen
