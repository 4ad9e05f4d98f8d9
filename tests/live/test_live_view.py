"""LiveView without Qt: plain pytest, the test's clock, ticks called by hand (no QTimer, no qtbot).

Real RunBus, real SQLite store; the reader runs each query on the test's thread when the test says so
(as the StoreReader would on a reader thread, then back on the owner's thread).
"""

from __future__ import annotations

from typing import Any

import pytest

from deferred_reader import DeferredReader
from gym_gui.live.live_batch import LiveBatch
from gym_gui.live.live_view import MAX_RETRY_DELAY_S, LiveView
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore
from gym_gui.telemetry.subscription import Waker


class Listener:
    def __init__(self) -> None:
        self.batches: list[LiveBatch] = []
        self.started: list[TelemetryEvent] = []
        self.beats: list[TelemetryEvent] = []
        self.stalls: list[bool] = []
        self.completed: list[TelemetryEvent] = []

    def on_batch(self, batch: LiveBatch) -> None:
        self.batches.append(batch)

    def on_run_started(self, evt: TelemetryEvent) -> None:
        self.started.append(evt)

    def on_heartbeat(self, evt: TelemetryEvent) -> None:
        self.beats.append(evt)

    def on_stall_changed(self, stalled: bool) -> None:
        self.stalls.append(stalled)

    def on_run_completed(self, evt: TelemetryEvent) -> None:
        self.completed.append(evt)


def make(bus: RunBus, **kwargs: Any) -> tuple[LiveView, Listener, Waker]:
    listener, waker = Listener(), Waker()
    view = LiveView(bus, "run1", "agent1", listener, waker=waker, **kwargs)
    view.start()
    return view, listener, waker


def steps_of(listener: Listener) -> list[int]:
    return [e.seq_id for b in listener.batches for e in b.steps]


def test_a_tick_delivers_what_was_published_once_and_the_bus_wakes_the_waker(bus: RunBus, factory: Any) -> None:
    view, listener, waker = make(bus)
    assert view.next_deadline_s(0.0) is None and not waker.pending  # nothing yet: no tick wanted
    f = factory("run1", "agent1")
    started, s0, s1, beat = f.started(), f.step(0, 0), f.step(0, 1), f.heartbeat()
    for evt in (started, s0, s1, beat, factory("run1", "agent2").step(0, 0)):
        bus.publish(evt)
    assert waker.pending  # the bus asked for a tick
    assert view.next_deadline_s(10.0) == 10.0  # queued data: at the next frame
    view.tick(10.0)
    assert listener.started == [started] and listener.beats == [beat]
    [batch] = listener.batches
    assert batch.steps == (s0, s1) and batch.latest_step == s1 and batch.steps_total == 2
    assert view.next_deadline_s(10.0) == 13.0  # only the stall deadline is left
    view.tick(11.0)
    assert len(listener.batches) == 1  # an empty tick emits nothing


def test_a_backlog_drains_one_batch_per_tick(bus: RunBus, factory: Any) -> None:
    view, listener, _w = make(bus, max_batch=7)
    f = factory("run1", "agent1")
    steps = [f.step(0, i) for i in range(20)]
    for evt in steps:
        bus.publish(evt)
    ticks = 0
    while view.next_deadline_s(1.0) == 1.0:
        view.tick(1.0)
        ticks += 1
    assert ticks == 3 and [len(b.steps) for b in listener.batches] == [7, 7, 6]
    assert steps_of(listener) == [e.seq_id for e in steps]


def test_stall_at_the_deadline_resume_on_the_next_event_and_never_after_completion(
        bus: RunBus, factory: Any) -> None:
    view, listener, _w = make(bus, heartbeat_interval_s=1.0, stall_missed_intervals=3)
    f = factory("run1", "agent1")
    bus.publish(f.started(config={"heartbeat_interval_s": 2}))
    view.tick(100.0)
    deadline = view.next_deadline_s(100.0)
    assert deadline == 106.0
    view.tick(105.9)
    assert listener.stalls == []
    view.tick(deadline)
    assert listener.stalls == [True] and view.is_stalled() and view.next_deadline_s(106.0) is None
    bus.publish(f.heartbeat())
    view.tick(200.0)
    assert listener.stalls == [True, False]
    bus.publish(f.completed())
    view.tick(201.0)
    assert len(listener.completed) == 1 and view.next_deadline_s(201.0) is None
    view.tick(10_000.0)
    assert listener.stalls == [True, False]


def test_drops_are_backfilled_from_sqlite_with_retries_on_the_views_clock(
        bus: RunBus, store: TelemetrySQLiteStore, factory: Any) -> None:
    reader = DeferredReader(store)
    view, listener, waker = make(bus, reader=reader, buffer_maxlen=10, retry_delay_s=0.05, heartbeat_interval_s=100.0)
    f = factory("run1", "agent1")
    steps = [f.step(0, i) for i in range(50)]
    for evt in steps:
        bus.publish(evt)
    view.tick(1.0)
    assert steps_of(listener) == [e.seq_id for e in steps[-10:]] and view.backfill_queries == 1
    assert view.next_deadline_s(1.0) == 301.0  # a read is in flight: only the stall deadline
    waker.pending = False
    assert reader.run() == 1  # nothing stored yet
    assert waker.pending  # the result asked for a tick
    assert view.next_deadline_s(1.0) == pytest.approx(1.05)  # retried after the delay, not at every tick
    view.tick(1.01)
    assert view.backfill_queries == 1
    delays = []
    now = 1.0
    for _ in range(8):  # nothing stored: the delay doubles up to the cap
        now = view.next_deadline_s(now)
        view.tick(now)
        reader.run()
        delays.append(round(view.next_deadline_s(now) - now, 3))
    assert delays[-1] == MAX_RETRY_DELAY_S and delays == sorted(delays)
    store.write_events(steps)
    now = view.next_deadline_s(now)
    view.tick(now)
    reader.run()
    view.tick(now + 0.001)  # delivered at the next tick
    stats = view.stats()
    assert sorted(steps_of(listener)) == [e.seq_id for e in steps] and len(steps_of(listener)) == 50
    assert (stats["dropped_total"], stats["backfilled_total"], stats["pending_backfill"]) == (40, 40, 0)
    assert not view.gaps and listener.batches[-1].latest_step is None  # older steps never replace the newest


def test_stop_unsubscribes_and_a_late_read_result_is_dropped(bus: RunBus, store: TelemetrySQLiteStore,
                                                             factory: Any) -> None:
    reader = DeferredReader(store)
    view, listener, _w = make(bus, reader=reader, buffer_maxlen=2)
    f = factory("run1", "agent1")
    for i in range(5):
        bus.publish(f.step(0, i))
    view.tick(1.0)
    view.stop()
    view.stop()
    assert bus.subscriptions() == [] and view.stopped and not view.started
    reader.run()
    view.tick(2.0)
    view.start()  # no restart
    assert len(listener.batches) == 1 and view.next_deadline_s(2.0) is None and bus.subscriptions() == []


def test_bad_arguments_are_refused(bus: RunBus) -> None:
    for kwargs in ({"buffer_maxlen": 0}, {"max_batch": 0}, {"retry_delay_s": 0}, {"heartbeat_interval_s": 0}):
        with pytest.raises(ValueError):
            LiveView(bus, "run1", "agent1", Listener(), **kwargs)
    with pytest.raises(ValueError):
        LiveView(bus, "", "agent1", Listener())
    view, _l, _w = make(bus)
    with pytest.raises(ValueError):  # the subscriber id is taken
        LiveView(bus, "run1", "agent1", Listener()).start()
    view.stop()
