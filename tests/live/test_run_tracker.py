"""RunTracker (the RunRegistry's Qt-free logic) over a real RunBus, ticked by hand with a plain
clock: subscriptions, fold order, bursts, stall deadlines, stored runs and explicit finishes."""

from __future__ import annotations

from typing import Any

import pytest

from event_factory import EventFactory
from gym_gui.live.run_state import RunStatus
from gym_gui.live.run_state_table import STATUS, STREAM
from gym_gui.live.run_tracker import ACTIVITY_MAXLEN, OUTCOME_SOURCE, RunTracker
from gym_gui.telemetry.events import Topic
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.telemetry.sqlite_records import RunRecord
from gym_gui.telemetry.subscription import Waker


def tracker_on(bus: RunBus, **kwargs: Any) -> RunTracker:
    tracker = RunTracker(bus, **kwargs)
    tracker.subscribe()
    return tracker


def test_two_subscriptions_lifecycle_lossless_and_stream_ordered_activity_bounded(bus: RunBus) -> None:
    waker = Waker()
    tracker = RunTracker(bus)
    tracker.subscribe(waker)
    tracker.subscribe()  # idempotent
    subs = [s for s in bus.subscriptions() if s.subscriber_id == "run-registry"]
    by_topic = {t: s for s in subs for t in s.topics}
    assert len(subs) == 2 and set(by_topic) == {Topic.RUN_STARTED, Topic.RUN_HEARTBEAT, Topic.RUN_COMPLETED,
                                                Topic.EPISODE_FINALIZED, Topic.STEP_APPENDED}
    assert by_topic[Topic.RUN_STARTED].topics == (Topic.RUN_STARTED, Topic.RUN_HEARTBEAT, Topic.RUN_COMPLETED)
    assert by_topic[Topic.RUN_STARTED].maxlen is None and by_topic[Topic.STEP_APPENDED].maxlen == ACTIVITY_MAXLEN
    assert all(s.waker is waker for s in subs)
    tracker.unsubscribe()
    tracker.unsubscribe()
    assert not tracker.subscribed and not [s for s in bus.subscriptions() if s.subscriber_id == "run-registry"]


def test_a_tick_folds_activity_then_lifecycle_in_stream_order(bus: RunBus, factory: type[EventFactory]) -> None:
    tracker = tracker_on(bus)
    quick = factory("quick", "a1")
    # A worker that dies at once: steps and its completion land in one tick; it is running first.
    for evt in (quick.step(0, 0), quick.step(0, 1), quick.completed("failed", exit_code=1)):
        bus.publish(evt)
    assert tracker.tick(0.0) == [(STATUS, "quick", "running"), (STREAM, "quick", "a1"), (STATUS, "quick", "failed")]
    # Lifecycle events fold in publish order (the same seq_id everywhere, as the existing daemon sends).
    zero = factory("zero", "a1")
    started, completed = zero.started(config={"heartbeat_interval_s": 2.0}), zero.completed("cancelled")
    for evt in (started, zero.heartbeat(interval_s=0.5), completed):
        bus.publish(type(evt)(evt.topic, evt.run_id, evt.agent_id, 0, evt.ts_iso, evt.payload))
    assert tracker.tick(1.0) == [(STATUS, "zero", "running"), (STREAM, "zero", "a1"), (STATUS, "zero", "cancelled")]
    state = tracker.table.state("zero")
    assert state is not None and state.env_id == "FrozenLake-v1" and state.has_lifecycle
    assert tracker.table.stall_timeout_s("zero") == 6.0  # the configured interval wins over the heartbeat's
    assert tracker.ticks == 2


def test_a_burst_of_steps_drops_activity_never_the_completion(bus: RunBus, factory: type[EventFactory]) -> None:
    tracker = tracker_on(bus)
    f = factory("burst", "a1")
    bus.publish(f.started())
    for i in range(ACTIVITY_MAXLEN + 500):
        bus.publish(f.step(0, i))
    bus.publish(f.completed())
    changes = tracker.tick(0.0)
    assert changes[-1] == (STATUS, "burst", "completed") and tracker.table.state("burst").status is RunStatus.COMPLETED
    activity = next(s for s in bus.subscriptions() if s.subscriber_id == "run-registry" and s.maxlen is not None)
    assert activity.dropped == 500 and activity.take_lost_ranges() == {}  # discarded each tick


def test_new_streams_come_from_the_bus_and_stalls_are_due_at_the_deadline(
        bus: RunBus, factory: type[EventFactory]) -> None:
    early = factory("early", "a1")
    bus.publish(early.step(0, 0))  # before the tracker existed: bus.streams() knows it
    tracker = tracker_on(bus, idle_timeout_s=10.0, stall_missed_intervals=3)
    assert tracker.tick(100.0) == [(STATUS, "early", "running"), (STREAM, "early", "a1")]
    assert tracker.next_deadline_s() == 110.0
    hb = factory("hb", "a1")
    bus.publish(hb.started(config={"heartbeat_interval_s": 1.0}))
    tracker.tick(101.0)
    assert tracker.next_deadline_s() == 104.0
    assert tracker.tick(103.9) == []
    assert tracker.tick(104.0) == [(STATUS, "hb", "stalled")] and tracker.next_deadline_s() == 110.0
    assert tracker.tick(110.0) == [(STATUS, "early", "stalled")] and tracker.next_deadline_s() is None
    tracker.register_pending("later", 111.0)
    assert tracker.next_deadline_s() is None  # pending never stalls


def stored_run(run_id: str, status: str, **fields: Any) -> RunRecord:
    values: dict[str, Any] = dict(
        run_id=run_id, status=status, outcome=None, env_id="Taxi-v3", config=None, created_at="2027-01-01T00:00:00+00:00",
        started_at="2027-01-01T00:00:00+00:00", completed_at=None, last_heartbeat_at=None, last_heartbeat=None,
        exit_code=None, signal=None, stderr_tail=None, summary=None, updated_at="2027-01-01T00:00:00Z",
        agent_ids=("a1",))
    values.update(fields)
    return RunRecord(**values)


def test_stored_runs_age_from_their_last_stored_news(bus: RunBus) -> None:
    tracker = tracker_on(bus)
    news_at = 1798761600.0  # 2027-01-01T00:00:00Z in unix seconds
    fresh, old = stored_run("fresh", "running"), stored_run("old", "running", updated_at="2026-12-31T23:00:00+00:00")
    changes = tracker.merge_stored([(fresh, {"a1": 41}), (old, {})], 50.0, news_at + 1.0)
    assert changes == [(STATUS, "fresh", "running"), (STREAM, "fresh", "a1"),
                       (STATUS, "old", "stalled"), (STREAM, "old", "a1")]
    assert tracker.next_deadline_s() == 52.0  # 3 x 1 s from its stored news, a second ago
    assert tracker.table.next_seq_id("fresh", "a1") == 42


def _tracking_a_step(bus: RunBus, factory: type[EventFactory]) -> tuple[RunTracker, EventFactory]:
    """A tracker that has folded one step of stream r/a1 (seq_id 10), and the stream's factory."""
    tracker = tracker_on(bus)
    f = factory("r", "a1", first_seq=10)
    bus.publish(f.step(0, 0))
    tracker.tick(0.0)
    return tracker, f


def test_the_outcome_event_continues_the_stream_and_respects_severity(
        bus: RunBus, factory: type[EventFactory]) -> None:
    tracker, f = _tracking_a_step(bus, factory)
    evt = tracker.outcome_event("r", "failed", reason="trainer said so", summary={"x": 1}, exit_code=3)
    assert evt is not None and evt.topic is Topic.RUN_COMPLETED and (evt.run_id, evt.agent_id, evt.seq_id) == ("r", "a1", 11)
    assert dict(evt.payload) == {"outcome": "failed", "source": OUTCOME_SOURCE, "reason": "trainer said so",
                                 "summary": {"x": 1, "reason": "trainer said so"}, "exit_code": 3}
    bus.publish(evt)
    assert tracker.tick(1.0) == [(STATUS, "r", "failed")]
    assert tracker.outcome_event("r", "completed") is None  # less severe than failed: nothing to publish
    assert tracker.outcome_event("unknown", "completed").seq_id == 1  # type: ignore[union-attr]
    for bad in ({"run_id": ""}, {"outcome": "done"}, {"reason": 3}, {"exit_code": "1"}):
        kwargs: dict[str, Any] = {"run_id": "r", "outcome": "failed", **bad}
        with pytest.raises(ValueError):
            tracker.outcome_event(kwargs.pop("run_id"), kwargs.pop("outcome"), **kwargs)


def test_finish_run_numbers_its_completion_after_every_event_already_on_the_bus(
        bus: RunBus, factory: type[EventFactory]) -> None:
    tracker, f = _tracking_a_step(bus, factory)
    for i in range(1, 5):  # published since the last tick: a worker's last steps and its own completion
        bus.publish(f.step(0, i))
    bus.publish(f.completed("cancelled"))
    evt, changes = tracker.finish_run("r", "failed", 1.0)
    assert evt is not None and evt.seq_id == f.seq + 1  # after every event published before the call
    assert (STATUS, "r", "cancelled") in changes and changes[-1] == (STATUS, "r", "failed")
    assert tracker.finish_run("r", "cancelled", 2.0) == (None, [])


def test_finish_run_publishes_the_outcome_and_folds_it_subscribed_or_not(
        bus: RunBus, factory: type[EventFactory]) -> None:
    sink = bus.subscribe(Topic.RUN_COMPLETED, "durable-probe", maxlen=None)
    tracker = tracker_on(bus)
    f = factory("r", "a1", first_seq=10)
    bus.publish(f.step(0, 0))
    tracker.tick(0.0)
    evt, changes = tracker.finish_run("r", "cancelled", 1.0, reason="stopped by the trainer")
    assert evt is not None and evt.seq_id == 11 and evt.payload["source"] == OUTCOME_SOURCE
    assert (STATUS, "r", "cancelled") in changes and tracker.table.state("r").status is RunStatus.CANCELLED  # type: ignore[union-attr]
    assert [e.seq_id for e in sink.drain()] == [11]  # on the bus, for the DbSink
    assert tracker.finish_run("r", "completed", 2.0) == (None, [])  # less severe: nothing published
    tracker.unsubscribe()  # not subscribed: folded straight into the table, still published
    evt, changes = tracker.finish_run("r", "failed", 3.0)
    assert evt is not None and changes == [(STATUS, "r", "failed")] and [e.seq_id for e in sink.drain()] == [12]
