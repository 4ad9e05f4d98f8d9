"""AgentOnlineTab wired to a real LiveTelemetryController on a real RunBus, as the main window wires it."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from event_factory import EventFactory
from gym_gui.qt.live_controller import LiveTelemetryController
from gym_gui.telemetry.events import Topic
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.ui.online_tab import AgentOnlineTab
from ui_payloads import toytext_run


@pytest.fixture
def controllers() -> Iterator[list[LiveTelemetryController]]:
    made: list[LiveTelemetryController] = []
    yield made
    for controller in made:
        controller.stop()
        assert not controller.is_polling()


def wired(qtbot: Any, bus: RunBus, controllers: list[LiveTelemetryController],
          **kwargs: Any) -> tuple[LiveTelemetryController, AgentOnlineTab]:
    controller = LiveTelemetryController(bus, "run1", "agent1", poll_interval_ms=10, **kwargs)
    controllers.append(controller)
    tab = AgentOnlineTab("run1", "agent1")
    qtbot.addWidget(tab)
    controller.run_started.connect(tab.on_run_started)
    controller.batch_ready.connect(tab.on_batch)
    controller.heartbeat.connect(tab.on_heartbeat)
    controller.stall_changed.connect(tab.on_stall_changed)
    controller.run_completed.connect(tab.on_run_completed)
    controller.start()
    return controller, tab


def test_a_published_run_reaches_the_tab_counted_rendered_and_completed(
        qtbot: Any, bus: RunBus, factory: type[EventFactory], controllers: list[LiveTelemetryController]) -> None:
    controller, tab = wired(qtbot, bus, controllers)
    f = factory("run1", "agent1")
    events = [f.started("FrozenLake-v1", render_kind="grid", env_family="FrozenLake"),
              *toytext_run(f, episodes=8, max_steps=10), f.completed()]
    for evt in events:
        bus.publish(evt)
    steps = [e for e in events if e.topic is Topic.STEP_APPENDED]
    qtbot.waitUntil(lambda: tab.header_text("status") == "completed", timeout=5000)
    assert tab.steps_seen == len(steps) == controller.stats()["steps_total"]
    assert tab.episodes_seen == 8 and tab.episode_model.rowCount() == 8
    assert not tab.tables_visible() and tab.header_text("env") == "FrozenLake-v1"
    state = tab.render_view.grid_view.grid_state()
    assert state is not None and list(state.agent) == steps[-1].payload["render_payload"]["agent"]
    assert tab.header_text("dropped") == "0"


def test_drops_show_in_the_header_and_the_table_still_has_every_delivered_step(
        qtbot: Any, bus: RunBus, factory: type[EventFactory], controllers: list[LiveTelemetryController]) -> None:
    controller, tab = wired(qtbot, bus, controllers, buffer_maxlen=16)  # no reader: nothing is backfilled
    f = factory("run1", "agent1")
    for evt in [f.step(0, i) for i in range(100)]:  # faster than one poll: the buffer drops the oldest
        bus.publish(evt)
    qtbot.waitUntil(lambda: tab.steps_seen == 16, timeout=5000)
    assert tab.header_text("dropped") == str(controller.stats()["dropped_total"]) == "84"
    assert [tab.step_model.step_at(r).step_index for r in range(16)] == list(range(84, 100))


def test_a_silent_stream_raises_the_banner_and_the_next_event_lowers_it(
        qtbot: Any, bus: RunBus, factory: type[EventFactory], controllers: list[LiveTelemetryController]) -> None:
    _controller, tab = wired(qtbot, bus, controllers, heartbeat_interval_s=0.05, stall_missed_intervals=2)
    tab.show()
    f = factory("run1", "agent1")
    bus.publish(f.started())
    bus.publish(f.step(0, 0))
    qtbot.waitUntil(lambda: tab.stalled and tab.stall_banner.isVisible(), timeout=5000)
    assert tab.stall_timer.isActive() and "durable path keeps recording" in tab.stall_banner.text()
    # The stream speaks again, and now announces a long interval: on a loaded machine the next check
    # could otherwise come 0.1 s later, stall it again and hide the moment it resumed.
    bus.publish(f.heartbeat(interval_s=60.0))
    bus.publish(f.step(0, 1))
    qtbot.waitUntil(lambda: not tab.stalled, timeout=5000)
    assert tab.stall_banner.isHidden() and not tab.stall_timer.isActive() and tab.steps_seen == 2
    tab.stop()
