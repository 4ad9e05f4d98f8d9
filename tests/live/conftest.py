"""Fixtures of the Qt-controller tests."""

from __future__ import annotations

from typing import Iterator

import pytest

from gym_gui.qt.live_controller import LiveTelemetryController
from gym_gui.telemetry.run_bus import RunBus


@pytest.fixture
def controllers(bus: RunBus) -> Iterator[list[LiveTelemetryController]]:
    """Controllers made by a test; each is proven stopped and its ``ui-`` subscriptions gone afterwards."""
    made: list[LiveTelemetryController] = []
    yield made
    for ctl in made:
        ctl.stop()
        assert not ctl.is_polling()
    assert not [s for s in bus.subscriptions() if s.subscriber_id.startswith("ui-")]
