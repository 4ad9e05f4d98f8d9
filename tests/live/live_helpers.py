"""Helpers for the LiveTelemetryController tests: make started controllers and record their batches."""

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


def record(ctl: LiveTelemetryController) -> list[tuple[int, LiveBatch]]:
    """Every batch with the tick that emitted it."""
    seen: list[tuple[int, LiveBatch]] = []
    ctl.batch_ready.connect(lambda batch: seen.append((ctl.ticks, batch)))
    return seen
