"""The window watching a remote worker through Redis: live tab, persisted exactly once, replay."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gym_gui.qt.app_services import AppServices
from gym_gui.telemetry.events import Topic
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.transport.redis_client import make_client
from gym_gui.transport.redis_publisher import RedisPublisher
from gym_gui.ui.telemetry_window import MainWindow
from redis_helpers import RedisServer


def test_a_remote_run_through_redis_is_watched_persisted_and_replayed(
        qtbot: Any, redis_server: RedisServer, db_path: Path, factory: Any) -> None:
    services = AppServices(db_path, bus=RunBus(), redis_url=redis_server.url)
    window = MainWindow(services)
    qtbot.addWidget(window)
    try:
        services.start()
        f = factory("remote-run", "remote-agent", first_seq=1)
        first, rest = [f.started(), *f.episodes(3, 10)], [*f.episodes(2, 10, first_episode=3), f.completed()]
        publisher = RedisPublisher(make_client(redis_server.url))
        with qtbot.waitSignal(window.online_opened, timeout=10000) as opened:
            publisher.publish(first)
        assert opened.args == ["remote-run", "remote-agent"]
        with qtbot.waitSignal(window.replay_opened, timeout=10000) as replayed:
            publisher.publish(rest)
        assert replayed.args == ["remote-run", "remote-agent"]
        store = services.store
        assert store.step_count("remote-run") == 50 and len(store.episode_records("remote-run")) == 5
        steps = [e.seq_id for e in first + rest if e.topic is Topic.STEP_APPENDED]
        stored = [e.seq_id for e in store.events_after("remote-run", "remote-agent", 0, 1000)
                  if e.topic is Topic.STEP_APPENDED]
        assert stored == steps  # exactly once, in order
        controller = window.online_controller("remote-run", "remote-agent")
        assert controller is not None
        qtbot.waitUntil(lambda: controller.stats()["steps_total"] == 50, timeout=10000)
        assert window.runs_view.status_of("remote-run") == "completed"
        assert services.redis_source is not None and services.redis_source.stats()["rejected_total"] == 0
    finally:
        assert window.shutdown(30)
    assert window.timers_active() == [] and services.redis_source is not None
    assert not services.redis_source.is_running()
