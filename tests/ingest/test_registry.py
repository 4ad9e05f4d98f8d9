"""RunRegistry over a real RunBus, DbSink and store: status order, stalls, streams, stop."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from gym_gui.qt.store_reader import StoreReader
from gym_gui.qt.run_registry import RunRegistry, RunState, RunStatus
from gym_gui.qt.db_sink_thread import DbSink
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def parts(qtbot: Any, store: TelemetrySQLiteStore, bus: RunBus) -> Iterator[dict[str, Any]]:
    """A started sink and a reader over ``store``; registries made by the test are stopped and checked."""
    sink = DbSink(store, bus, batch_size=16)
    sink.start()
    reader = StoreReader(store)
    made: list[RunRegistry] = []
    yield {"sink": sink, "reader": reader, "registries": made}
    for registry in made:
        registry.stop()
        assert not registry.poll_timer.isActive()
    assert sink.stop(10) and not sink.isRunning()
    assert reader.stop(5) and reader.threads_alive() == 0


def make_registry(qtbot: Any, bus: RunBus, parts: dict[str, Any], **kwargs: Any) -> tuple[RunRegistry, list[tuple[str, ...]]]:
    kwargs.setdefault("poll_interval_ms", 10)
    registry = RunRegistry(bus, reader=parts["reader"], **kwargs)
    parts["registries"].append(registry)
    seen: list[tuple[str, ...]] = []
    registry.status_changed.connect(lambda run, status: seen.append(("status", run, status)))
    registry.stream_added.connect(lambda run, agent: seen.append(("stream", run, agent)))
    registry.start()
    qtbot.waitUntil(lambda: registry.stored_loaded, timeout=5000)
    return registry, seen


def publish(bus: RunBus, events: list[TelemetryEvent]) -> None:
    for evt in events:
        bus.publish(evt)


def statuses(seen: list[tuple[str, ...]], run_id: str) -> list[str]:
    return [s[2] for s in seen if s[0] == "status" and s[1] == run_id]


def wait_ticks(qtbot: Any, registry: RunRegistry, ticks: int = 3) -> None:
    """``ticks`` ticks of the registry's pump (asked for: an idle pump waits for news or a deadline)."""
    for _ in range(ticks):
        start = registry.polls
        registry.pump.wake()
        qtbot.waitUntil(lambda: registry.polls > start, timeout=5000)


def test_pending_running_completed_in_order_with_the_run_details(
        qtbot: Any, store: TelemetrySQLiteStore, bus: RunBus, factory: Any, parts: dict[str, Any]) -> None:
    registry, seen = make_registry(qtbot, bus, parts)
    registry.register_pending("run1")
    registry.register_pending("run1")  # a known run: no second announcement
    assert registry.status("run1") is RunStatus.PENDING and seen == [("status", "run1", "pending")]
    f = factory("run1", "agent1")
    events = f.run(episodes=3, length=2)
    publish(bus, events)
    qtbot.waitUntil(lambda: registry.status("run1") is RunStatus.COMPLETED, timeout=5000)
    assert seen == [("status", "run1", "pending"), ("status", "run1", "running"),
                    ("stream", "run1", "agent1"), ("status", "run1", "completed")]
    state = registry.state("run1")
    assert state == RunState(run_id="run1", status=RunStatus.COMPLETED, env_id="FrozenLake-v1",
                             agent_ids=("agent1",), outcome="completed", started_at=events[0].ts_iso,
                             completed_at=events[-1].ts_iso, last_event_at=events[-1].ts_iso,
                             summary={"episodes": 1}, has_lifecycle=True)
    assert registry.states() == [state] and registry.status("nope") is None and registry.state("nope") is None
    # Lifecycle topics (heartbeats too: their interval sets the stall timeout) are lossless and in one
    # stream-ordered subscription; steps and episodes only prove liveness: bounded.
    # Not "registry": the existing gym_gui's trainer registry subscribes with that id.
    assert {"RUN_STARTED:run-registry", "RUN_COMPLETED:run-registry", "RUN_HEARTBEAT:run-registry",
            "EPISODE_FINALIZED:run-registry", "STEP_APPENDED:run-registry"} <= set(bus.queue_sizes())
    subs = {t: s for s in bus.subscriptions() if s.subscriber_id == "run-registry" for t in s.topics}
    assert subs[Topic.RUN_STARTED] is subs[Topic.RUN_HEARTBEAT] is subs[Topic.RUN_COMPLETED]
    assert subs[Topic.RUN_STARTED].maxlen is None and subs[Topic.RUN_COMPLETED].maxlen is None
    assert all(subs[t].maxlen is not None for t in (Topic.EPISODE_FINALIZED, Topic.STEP_APPENDED))


def test_failed_and_cancelled_outcomes_and_the_most_severe_agent_wins(
        qtbot: Any, store: TelemetrySQLiteStore, bus: RunBus, factory: Any, parts: dict[str, Any]) -> None:
    registry, seen = make_registry(qtbot, bus, parts)
    crashed, stopped = factory("crashed", "a1"), factory("stopped", "a1")
    publish(bus, [crashed.started(), *crashed.episodes(2, 2), crashed.completed("failed", exit_code=1)])
    publish(bus, [stopped.started(), stopped.completed("cancelled")])
    multi1, multi2 = factory("multi", "a1"), factory("multi", "a2")
    publish(bus, [multi1.started(), multi2.started(), multi1.completed()])
    qtbot.waitUntil(lambda: registry.status("multi") is RunStatus.COMPLETED, timeout=5000)
    bus.publish(multi2.completed("failed"))
    qtbot.waitUntil(lambda: registry.status("multi") is RunStatus.FAILED, timeout=5000)
    bus.publish(multi2.completed("cancelled"))  # less severe than failed: no change
    qtbot.waitUntil(lambda: registry.status("crashed") is RunStatus.FAILED, timeout=5000)
    qtbot.waitUntil(lambda: registry.status("stopped") is RunStatus.CANCELLED, timeout=5000)
    wait_ticks(qtbot, registry)
    assert statuses(seen, "crashed") == ["running", "failed"]
    assert statuses(seen, "stopped") == ["running", "cancelled"]
    assert statuses(seen, "multi") == ["running", "completed", "failed"]
    assert registry.state("crashed").outcome == "failed"  # type: ignore[union-attr]
    assert registry.state("multi").agent_ids == ("a1", "a2")  # type: ignore[union-attr]
    # The store's runs row agrees with the registry.
    assert parts["sink"].flush(5)
    assert {r.run_id: r.status for r in store.runs()} == {"crashed": "failed", "stopped": "cancelled", "multi": "failed"}


def test_stalled_after_missed_heartbeats_and_back_to_running(
        qtbot: Any, bus: RunBus, factory: Any, parts: dict[str, Any]) -> None:
    clock = FakeClock()
    registry, seen = make_registry(qtbot, bus, parts, clock=clock, stall_missed_intervals=3,
                                   default_heartbeat_interval_s=1.0)
    f = factory("run1", "agent1")
    bus.publish(f.started(config={"heartbeat_interval_s": 0.5}))
    qtbot.waitUntil(lambda: registry.status("run1") is RunStatus.RUNNING, timeout=5000)
    assert registry.stall_timeout_s("run1") == 1.5  # the run's own interval, not the default
    clock.t += 1.4
    wait_ticks(qtbot, registry)
    assert registry.status("run1") is RunStatus.RUNNING
    clock.t += 0.2
    registry.pump.reschedule()  # the test moved the registry's clock: the stall is due
    qtbot.waitUntil(lambda: registry.status("run1") is RunStatus.STALLED, timeout=5000)
    bus.publish(f.heartbeat())
    qtbot.waitUntil(lambda: registry.status("run1") is RunStatus.RUNNING, timeout=5000)
    clock.t += 1.4
    bus.publish(f.episode(0, 3))  # an episode is news too: the window restarts
    wait_ticks(qtbot, registry)
    clock.t += 1.4
    wait_ticks(qtbot, registry)
    assert registry.status("run1") is RunStatus.RUNNING
    bus.publish(f.completed())
    qtbot.waitUntil(lambda: registry.status("run1") is RunStatus.COMPLETED, timeout=5000)
    clock.t += 100.0
    bus.publish(f.heartbeat())  # a late heartbeat does not revive a finished run, nor does time stall it
    wait_ticks(qtbot, registry)
    assert statuses(seen, "run1") == ["running", "stalled", "running", "completed"]


def test_stall_interval_from_heartbeats_or_default_and_pending_never_stalls(
        qtbot: Any, bus: RunBus, factory: Any, parts: dict[str, Any]) -> None:
    clock = FakeClock()
    registry, seen = make_registry(qtbot, bus, parts, clock=clock, default_heartbeat_interval_s=1.0)
    hb, plain = factory("hb", "a1"), factory("plain", "a1")
    publish(bus, [hb.started(), hb.heartbeat(interval_s=2.0), plain.started()])
    registry.register_pending("quiet")
    qtbot.waitUntil(lambda: registry.status("plain") is RunStatus.RUNNING, timeout=5000)
    qtbot.waitUntil(lambda: registry.status("hb") is RunStatus.RUNNING, timeout=5000)
    assert registry.stall_timeout_s("hb") == 6.0 and registry.stall_timeout_s("plain") == 3.0
    clock.t += 3.5
    registry.pump.reschedule()
    qtbot.waitUntil(lambda: registry.status("plain") is RunStatus.STALLED, timeout=5000)
    assert registry.status("hb") is RunStatus.RUNNING
    clock.t += 3.0
    registry.pump.reschedule()
    qtbot.waitUntil(lambda: registry.status("hb") is RunStatus.STALLED, timeout=5000)
    clock.t += 1000.0
    wait_ticks(qtbot, registry)
    assert statuses(seen, "quiet") == ["pending"]


def test_new_streams_come_from_bus_streams_once_each_and_revive_a_stalled_run(
        qtbot: Any, bus: RunBus, factory: Any, parts: dict[str, Any]) -> None:
    clock = FakeClock()
    a1, a2 = factory("run1", "a1"), factory("run1", "a2")
    bus.publish(a1.step(0, 0))  # before start(): known at start
    registry, seen = make_registry(qtbot, bus, parts, clock=clock, idle_timeout_s=10.0)
    assert seen[:2] == [("status", "run1", "running"), ("stream", "run1", "a1")]
    publish(bus, [a1.step(0, i) for i in range(1, 50)])  # steps only: no lifecycle event at all
    wait_ticks(qtbot, registry)
    assert registry.stall_timeout_s("run1") == 10.0  # no heartbeats to miss: the idle timeout
    clock.t += 10.0
    registry.pump.reschedule()
    qtbot.waitUntil(lambda: registry.status("run1") is RunStatus.STALLED, timeout=5000)
    publish(bus, [a2.step(0, i) for i in range(50)])  # a new stream is news
    qtbot.waitUntil(lambda: ("stream", "run1", "a2") in seen, timeout=5000)
    assert registry.status("run1") is RunStatus.RUNNING
    publish(bus, [a1.heartbeat(), a2.heartbeat(), a2.completed()])
    qtbot.waitUntil(lambda: registry.status("run1") is RunStatus.COMPLETED, timeout=5000)
    assert [s for s in seen if s[0] == "stream"] == [("stream", "run1", "a1"), ("stream", "run1", "a2")]
    assert statuses(seen, "run1") == ["running", "stalled", "running", "completed"]


def test_stop_ends_the_timer_and_the_subscriptions(
        qtbot: Any, bus: RunBus, factory: Any, parts: dict[str, Any]) -> None:
    registry, seen = make_registry(qtbot, bus, parts)
    assert registry.is_polling() and any(s.subscriber_id == "run-registry" for s in bus.subscriptions())
    registry.stop()
    registry.stop()  # idempotent
    assert not registry.is_polling() and not registry.poll_timer.isActive()
    assert not any(s.subscriber_id == "run-registry" for s in bus.subscriptions())
    registry.start()  # a no-op after stop
    assert not registry.is_polling() and not any(s.subscriber_id == "run-registry" for s in bus.subscriptions())
    publish(bus, factory("run1", "a1").run(1, 1))
    registry.poll()
    assert seen == [] and registry.states() == []
