"""The window watching a remote worker through Redis: live tab, persisted exactly once, replay."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gym_gui.qt.app_services import AppServices
from gym_gui.telemetry.events import Topic
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.transport.redis_client import make_client
from gym_gui.transport.redis_publisher import RedisPublisher
from gym_gui.ui.rows_table_model import WARN, Row
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
        replays: list[tuple[str, str]] = []  # its Replay tab may open with the first episodes stored, or at the end
        window.replay_opened.connect(lambda run_id, agent_id: replays.append((run_id, agent_id)))
        with qtbot.waitSignal(window.online_opened, timeout=30000) as opened:
            publisher.publish(first)
        assert opened.args == ["remote-run", "remote-agent"]
        publisher.publish(rest)
        qtbot.waitUntil(lambda: bool(replays) and services.store.step_count("remote-run") == 50
                        and window.runs_view.status_of("remote-run") == "completed", timeout=30000)
        assert replays == [("remote-run", "remote-agent")]
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


def test_entries_redis_lost_show_in_the_debug_panes_redis_source(
        qtbot: Any, redis_server: RedisServer, db_path: Path, factory: Any) -> None:
    services = AppServices(db_path, bus=RunBus(), redis_url=redis_server.url)
    window = MainWindow(services)
    qtbot.addWidget(window)
    pane = window.debug_pane

    def redis_rows() -> dict[str, Row]:
        pane.refresh()
        return {row.cells[1]: row for row in pane.source_model.rows() if row.cells[0] == "redis"}

    try:
        services.start()
        assert services.redis_source is not None
        f = factory("remote-run", "remote-agent", first_seq=1)
        events = [f.started(), *f.episodes(4, 9)]  # seq 1..41
        publisher = RedisPublisher(make_client(redis_server.url))
        publisher.publish(events[:10])
        qtbot.waitUntil(lambda: services.redis_source.stats()["published_total"] == 10, timeout=10000)
        with redis_server.client() as c:
            c.flushall()  # Redis restarted without its data: seq 11..20 were there, unread
        qtbot.waitUntil(lambda: "vanished.remote-run/remote-agent" in redis_rows(), timeout=10000)
        assert redis_rows()["vanished.remote-run/remote-agent"].cells[2] == "10"
        publisher.publish(events[20:])  # the writer goes on after the restart
        qtbot.waitUntil(lambda: redis_rows()["lost"].cells[2] == "10", timeout=10000)
        rows = redis_rows()
        assert rows["lost"].severity == WARN
        assert rows["lost_ranges.remote-run/remote-agent"].cells[2] == "[[11, 20]]"
        assert rows["vanished"].cells[2] == "none"
    finally:
        assert window.shutdown(30)
