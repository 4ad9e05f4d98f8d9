"""LiveTelemetryController on a real RunBus and real QTimer ticks: batches, signals, latency, stop."""

from __future__ import annotations

from typing import Any

import pytest

from live_helpers import make, quiet_ticks, record
from gym_gui.qt.live_controller import LiveTelemetryController
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.run_bus import RunBus

TOPICS = ("STEP_APPENDED", "EPISODE_FINALIZED", "RUN_STARTED", "RUN_HEARTBEAT", "RUN_COMPLETED")


def publish(bus: RunBus, events: list[TelemetryEvent]) -> None:
    for evt in events:
        bus.publish(evt)


def test_every_step_and_episode_arrives_once_in_order_and_latest_is_the_newest(
        qtbot: Any, bus: RunBus, factory: Any, controllers: list[LiveTelemetryController]) -> None:
    ctl = make(controllers, bus)
    f = factory("run1", "agent1")
    other = factory("run1", "agent2")  # another agent of the run: its data is not ours
    batches = record(ctl)
    first = [f.started(), *f.episodes(3, 5)]
    publish(bus, first)
    publish(bus, other.episodes(1, 4))
    qtbot.waitUntil(lambda: ctl.stats()["steps_total"] == 15, timeout=5000)
    second = [*f.episodes(2, 5, first_episode=3), f.completed()]
    publish(bus, second)
    qtbot.waitUntil(lambda: ctl.stats()["episodes_total"] == 5, timeout=5000)

    steps = [e for _t, b in batches for e in b.steps]
    expected = [e for e in first + second if e.topic is Topic.STEP_APPENDED]
    assert steps == expected  # every step once, in seq_id order, none of agent2's
    assert [e for _t, b in batches for e in b.episodes] == [e for e in first + second
                                                            if e.topic is Topic.EPISODE_FINALIZED]
    latest = [b.latest_step for _t, b in batches if b.latest_step is not None]
    assert latest[-1] == expected[-1]
    assert [e.seq_id for e in latest] == sorted({e.seq_id for e in latest})
    assert all(b.latest_step is None or b.latest_step == b.steps[-1] for _t, b in batches)
    last = batches[-1][1]
    assert (last.steps_total, last.episodes_total, last.dropped_total, last.backfilled, last.pending_backfill) == \
        (25, 5, 0, 0, 0)
    assert ctl.stats() == {"steps_total": 25, "episodes_total": 5, "dropped_total": 0, "backfilled_total": 0,
                           "pending_backfill": 0, "unrecoverable": 0, "stalled": False}


def test_a_batch_with_only_an_episode_has_no_latest_step(qtbot: Any, bus: RunBus, factory: Any,
                                                         controllers: list[LiveTelemetryController]) -> None:
    ctl = make(controllers, bus)
    f = factory("run1", "agent1")
    with qtbot.waitSignal(ctl.batch_ready, timeout=5000) as first:
        publish(bus, [f.step(0, 0), f.step(0, 1)])
    assert first.args[0].latest_step.seq_id == 1
    with qtbot.waitSignal(ctl.batch_ready, timeout=5000) as second:
        publish(bus, [f.episode(0, 2)])
    assert second.args[0].episodes and second.args[0].latest_step is None


def test_at_most_one_batch_per_tick_and_none_for_an_empty_tick(
        qtbot: Any, bus: RunBus, factory: Any, controllers: list[LiveTelemetryController]) -> None:
    ctl = make(controllers, bus, max_batch=7)
    f = factory("run1", "agent1")
    batches = record(ctl)
    events = f.episodes(10, 9)  # 90 steps and 10 episodes, more than a tick may drain
    publish(bus, events)
    qtbot.waitUntil(lambda: ctl.stats()["steps_total"] == 90, timeout=5000)
    ticks = [t for t, _b in batches]
    assert len(ticks) == len(set(ticks))  # never two batches in one tick
    assert all(len(b.steps) <= 7 and len(b.episodes) <= 7 for _t, b in batches)
    assert ticks == list(range(ticks[0], ticks[0] + len(ticks)))  # the backlog drains tick after tick
    assert [e for _t, b in batches for e in b.steps] == [e for e in events if e.topic is Topic.STEP_APPENDED]
    quiet_from = ctl.ticks
    quiet_ticks(qtbot, ctl, 3)  # the backlog drained: the pump is idle until asked
    assert [t for t, _b in batches if t > quiet_from] == []  # empty ticks emit nothing


def test_a_batch_and_the_lifecycle_signals_arrive_at_the_tick_after_publish(
        qtbot: Any, bus: RunBus, factory: Any, controllers: list[LiveTelemetryController]) -> None:
    ctl = make(controllers, bus, poll_interval_ms=50)
    f = factory("run1", "agent1")
    started, step, beat1, beat2 = f.started(), f.step(0, 0), f.heartbeat(), f.heartbeat()
    got: dict[str, list[Any]] = {"started": [], "beat": [], "completed": []}
    ctl.run_started.connect(got["started"].append)
    ctl.heartbeat.connect(got["beat"].append)
    ctl.run_completed.connect(got["completed"].append)
    quiet_ticks(qtbot, ctl, 1)
    published_at = ctl.ticks
    with qtbot.waitSignal(ctl.batch_ready, timeout=5000) as blocker:
        publish(bus, [started, step, beat1, beat2])
    assert ctl.ticks == published_at + 1  # within one poll interval of the publish
    assert blocker.args[0].steps == (step,)
    assert got == {"started": [started], "beat": [beat2], "completed": []}  # newest heartbeat of the tick
    completed = f.completed()
    published_at = ctl.ticks
    with qtbot.waitSignal(ctl.run_completed, timeout=5000) as done:
        bus.publish(completed)
    assert done.args == [completed] and ctl.ticks == published_at + 1


def test_lifecycle_of_the_run_counts_whichever_agent_sends_it(
        qtbot: Any, bus: RunBus, factory: Any, controllers: list[LiveTelemetryController]) -> None:
    ctl = make(controllers, bus, agent_id="agent2")
    default_agent = factory("run1", "agent1")  # a worker's lifecycle records carry its default agent
    with qtbot.waitSignal(ctl.run_started, timeout=5000):
        bus.publish(default_agent.started())
    with qtbot.waitSignal(ctl.run_completed, timeout=5000):
        bus.publish(factory("other-run", "agent2").completed())  # another run: ignored
        bus.publish(default_agent.completed())
    assert ctl.stats()["steps_total"] == 0


def test_stop_stops_the_timer_and_unsubscribes_idempotently(
        qtbot: Any, bus: RunBus, factory: Any, controllers: list[LiveTelemetryController]) -> None:
    ctl = make(controllers, bus, run_id="run1", agent_id="agent6")
    assert ctl.subscriber_id == "ui-run1-agent6"
    assert ctl.is_polling()
    assert sorted(k for s in bus.subscriptions() for k in s.keys) == sorted(f"{t}:ui-run1-agent6" for t in TOPICS)
    assert sorted(tuple(t.name for t in s.topics) for s in bus.subscriptions()) == [
        TOPICS[2:], TOPICS[:2]]  # two stream-ordered subscriptions: the stream's data, the run's lifecycle
    ctl.start()  # idempotent: no second subscription
    assert len(bus.subscriptions()) == 2
    ctl.stop()
    assert not ctl.is_polling() and bus.subscriptions() == []
    ctl.stop()
    ctl.start()  # no restart after stop
    assert not ctl.is_polling() and bus.subscriptions() == []
    batches = record(ctl)
    bus.publish(factory("run1", "agent6").step(0, 0))
    assert bus.queue_sizes() == {} and batches == []


def test_a_subscriber_id_in_use_is_refused_and_nothing_stays_subscribed(
        bus: RunBus, controllers: list[LiveTelemetryController]) -> None:
    make(controllers, bus)
    twin = LiveTelemetryController(bus, "run1", "agent1")
    with pytest.raises(ValueError):
        twin.start()
    assert not twin.is_polling() and len(bus.subscriptions()) == 2


def test_without_a_reader_drops_are_counted_as_unrecoverable(
        qtbot: Any, bus: RunBus, factory: Any, controllers: list[LiveTelemetryController]) -> None:
    ctl = make(controllers, bus, buffer_maxlen=10)
    f = factory("run1", "agent1")
    steps = [f.step(0, i) for i in range(100)]
    with qtbot.waitSignal(ctl.batch_ready, timeout=5000) as blocker:
        publish(bus, steps)
    batch = blocker.args[0]
    assert batch.steps == tuple(steps[-10:]) and batch.latest_step == steps[-1]
    assert (batch.dropped_total, batch.unrecoverable, batch.pending_backfill) == (90, 90, 0)
    assert bus.overflow_stats()["STEP_APPENDED:ui-run1-agent1"] == 90


@pytest.mark.parametrize("kwargs", [{"poll_interval_ms": 0}, {"buffer_maxlen": 0}, {"max_batch": 0},
                                    {"heartbeat_interval_s": 0}, {"stall_missed_intervals": 0}])
def test_bad_arguments_are_refused(bus: RunBus, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        LiveTelemetryController(bus, "run1", "agent1", **kwargs)
