"""LiveTelemetryController backfill: lost ranges and stall gaps read back from SQLite off the GUI thread.

Real RunBus, real store, real StoreReader threads, a real DbSink QThread where the durable path matters.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Iterator

import pytest

from gym_gui.live.live_batch import LiveBatch
from live_helpers import make, quiet_ticks, record
from gym_gui.qt.live_controller import LiveTelemetryController
from gym_gui.qt.store_reader import StoreReader
from gym_gui.qt.db_sink_thread import DbSink
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore


class WatchedReader(StoreReader):
    """A real StoreReader that notes where each query and callback ran and how many were in flight."""

    def __init__(self, store: TelemetrySQLiteStore) -> None:
        super().__init__(store)
        self.query_threads: set[int] = set()
        self.callback_threads: set[int] = set()
        self.in_flight = self.max_in_flight = 0

    def submit(self, query: Callable[[TelemetrySQLiteStore], Any], on_done: Callable[[Any], None],
               on_error: Callable[[BaseException], None] | None = None) -> bool:
        def watched_query(store: TelemetrySQLiteStore) -> Any:
            self.query_threads.add(threading.get_ident())
            return query(store)

        def finish(callback: Callable[[Any], None] | None, value: Any) -> None:
            self.callback_threads.add(threading.get_ident())
            self.in_flight -= 1
            if callback is not None:
                callback(value)

        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        return super().submit(watched_query, lambda r: finish(on_done, r), lambda e: finish(on_error, e))


@pytest.fixture
def reader(store: TelemetrySQLiteStore) -> Iterator[WatchedReader]:
    r = WatchedReader(store)
    yield r
    assert r.stop(5) and r.threads_alive() == 0


def step_seqs(batches: list[tuple[int, LiveBatch]]) -> list[int]:
    return [e.seq_id for _t, b in batches for e in b.steps]


def test_a_burst_beyond_the_buffer_is_backfilled_from_sqlite_exactly_once_off_the_gui_thread(
        qtbot: Any, bus: RunBus, store: TelemetrySQLiteStore, factory: Any, reader: WatchedReader,
        controllers: list[LiveTelemetryController]) -> None:
    sink = DbSink(store, bus)
    sink.start()
    try:
        ctl = make(controllers, bus, reader=reader, buffer_maxlen=64, max_batch=1024)
        batches = record(ctl)
        f = factory("run1", "agent1")
        started = f.started()
        steps = [f.step(i // 100, i % 100) for i in range(10_000)]
        for evt in [started, *steps, f.completed()]:  # all before the first tick: the buffer overflows
            bus.publish(evt)
        qtbot.waitUntil(lambda: ctl.stats()["steps_total"] == 10_000 and ctl.stats()["pending_backfill"] == 0,
                        timeout=20_000)
    finally:
        assert sink.stop(10)
    seqs = step_seqs(batches)
    assert sorted(seqs) == [e.seq_id for e in steps] and len(set(seqs)) == 10_000  # every step, once
    assert all([e.seq_id for e in b.steps] == sorted(e.seq_id for e in b.steps) for _t, b in batches)
    ticks = [t for t, _b in batches]
    assert len(ticks) == len(set(ticks))  # at most one batch per tick, backfill included
    assert batches[0][1].steps == tuple(steps[-64:]) and batches[0][1].latest_step == steps[-1]
    assert all(b.latest_step is None for _t, b in batches[1:])  # older steps never replace the newest
    stats = ctl.stats()
    assert stats["dropped_total"] == 10_000 - 64 == stats["backfilled_total"]
    assert sum(b.backfilled for _t, b in batches) == stats["backfilled_total"]
    assert stats["unrecoverable"] == 0
    assert by_seq(steps, batches) == steps  # the events read back are the ones published
    gui = threading.get_ident()
    assert reader.query_threads and gui not in reader.query_threads
    assert reader.callback_threads == {gui}
    assert reader.max_in_flight == 1


def by_seq(expected: list[TelemetryEvent], batches: list[tuple[int, LiveBatch]]) -> list[TelemetryEvent]:
    got = {e.seq_id: e for _t, b in batches for e in b.steps}
    return [got[e.seq_id] for e in expected]


def test_ranges_not_yet_persisted_are_retried_on_later_ticks(
        qtbot: Any, bus: RunBus, store: TelemetrySQLiteStore, factory: Any, reader: WatchedReader,
        controllers: list[LiveTelemetryController]) -> None:
    ctl = make(controllers, bus, reader=reader, buffer_maxlen=20)
    batches = record(ctl)
    f = factory("run1", "agent1")
    events = [f.started(), *f.episodes(20, 9)]  # 180 steps, 20 episodes
    for evt in events:
        bus.publish(evt)
    qtbot.waitUntil(lambda: ctl.backfill_queries >= 3, timeout=10_000)  # nothing stored: tried, and again
    assert ctl.stats()["backfilled_total"] == 0 and ctl.stats()["pending_backfill"] > 0
    store.write_events(events[:100])  # the durable path catches up in two steps
    qtbot.waitUntil(lambda: ctl.stats()["backfilled_total"] > 0, timeout=10_000)
    store.write_events(events[100:])
    qtbot.waitUntil(lambda: ctl.stats()["pending_backfill"] == 0, timeout=10_000)
    assert sorted(step_seqs(batches)) == [e.seq_id for e in events if e.topic is Topic.STEP_APPENDED]
    episodes = [e.seq_id for _t, b in batches for e in b.episodes]
    assert sorted(episodes) == [e.seq_id for e in events if e.topic is Topic.EPISODE_FINALIZED]
    stats = ctl.stats()
    assert (stats["steps_total"], stats["episodes_total"], stats["unrecoverable"]) == (180, 20, 0)
    # One stream-ordered buffer of 20 holds steps and episodes together (it was 20 of each).
    assert stats["backfilled_total"] == stats["dropped_total"] == 200 - 20
    assert reader.max_in_flight == 1


def test_a_completed_run_gives_up_what_sqlite_will_never_have(
        qtbot: Any, bus: RunBus, store: TelemetrySQLiteStore, factory: Any, reader: WatchedReader,
        controllers: list[LiveTelemetryController]) -> None:
    ctl = make(controllers, bus, reader=reader, agent_id="a1", buffer_maxlen=20)
    a0, a1 = factory("run1", "a0"), factory("run1", "a1")
    steps = [a1.step(0, i) for i in range(200)]  # seq 0..199; the live buffer keeps 180..199
    completed = a0.completed()  # the run's completion travels on its default agent's stream
    store.write_events([a0.started(), *steps[:100], completed])  # the rest of a1 never reached SQLite
    for evt in [*steps, completed]:
        bus.publish(evt)
    qtbot.waitUntil(lambda: ctl.stats()["steps_total"] == 120, timeout=10_000)
    qtbot.waitUntil(lambda: ctl.stats()["pending_backfill"] == 0, timeout=10_000)
    stats = ctl.stats()
    assert (stats["steps_total"], stats["backfilled_total"], stats["unrecoverable"]) == (120, 100, 80)
    assert stats["dropped_total"] == 180


def test_nothing_is_given_up_before_the_controller_sees_the_completion(
        qtbot: Any, bus: RunBus, store: TelemetrySQLiteStore, factory: Any, reader: WatchedReader,
        controllers: list[LiveTelemetryController]) -> None:
    ctl = make(controllers, bus, reader=reader, agent_id="a1", buffer_maxlen=20)
    a0, a1 = factory("run1", "a0"), factory("run1", "a1")
    steps = [a1.step(0, i) for i in range(50)]
    completed = a0.completed()
    store.write_events([completed])  # SQLite says the run is over; the live path has not said so yet
    for evt in steps:
        bus.publish(evt)
    qtbot.waitUntil(lambda: ctl.backfill_queries >= 3, timeout=10_000)
    stats = ctl.stats()
    assert (stats["steps_total"], stats["pending_backfill"], stats["unrecoverable"]) == (20, 30, 0)
    with qtbot.waitSignal(ctl.run_completed, timeout=5000):
        bus.publish(completed)
    qtbot.waitUntil(lambda: ctl.stats()["pending_backfill"] == 0, timeout=10_000)
    assert (ctl.stats()["unrecoverable"], ctl.stats()["backfilled_total"]) == (30, 0)


def test_events_skipped_over_a_stall_are_read_back_when_the_stream_resumes(
        qtbot: Any, bus: RunBus, store: TelemetrySQLiteStore, factory: Any, reader: WatchedReader,
        controllers: list[LiveTelemetryController]) -> None:
    clock = [1000.0]
    ctl = make(controllers, bus, reader=reader, clock=lambda: clock[0])
    batches = record(ctl)
    f = factory("run1", "agent1")
    events = [f.started(), *f.episodes(3, 4), f.heartbeat()]  # seq 0..16
    store.write_events(events)
    first, skipped, resumed = events[:6], events[6:16], events[16]
    for evt in first:
        bus.publish(evt)
    qtbot.waitUntil(lambda: ctl.stats()["steps_total"] == 4, timeout=5000)
    clock[0] += 3.0
    ctl.pump.reschedule()  # the test moved the pump's clock: the stall deadline is due now
    qtbot.waitUntil(ctl.is_stalled, timeout=5000)
    # The live path never carried seq 6..15 (e.g. a bridge that reconnected); SQLite has them.
    with qtbot.waitSignal(ctl.stall_changed, timeout=5000) as blocker:
        bus.publish(resumed)
    assert blocker.args == [False]
    qtbot.waitUntil(lambda: ctl.stats()["steps_total"] == 12, timeout=5000)
    assert step_seqs(batches) == [e.seq_id for e in events if e.topic is Topic.STEP_APPENDED]
    assert [e for _t, b in batches for e in b.episodes] == [e for e in events if e.topic is Topic.EPISODE_FINALIZED]
    assert ctl.stats()["backfilled_total"] == len(skipped) == 10
    assert (ctl.stats()["dropped_total"], ctl.stats()["pending_backfill"]) == (0, 0)


def test_a_stream_opened_late_gets_its_history_from_sqlite_first(
        qtbot: Any, bus: RunBus, store: TelemetrySQLiteStore, factory: Any, reader: WatchedReader,
        controllers: list[LiveTelemetryController]) -> None:
    f = factory("run1", "agent1")
    before = [f.started(), *f.episodes(3, 5)]  # published before the tab opened: only SQLite has them
    store.write_events(before)
    ctl = make(controllers, bus, reader=reader, history_after_seq_id=-1)
    batches = record(ctl)
    after = f.episodes(1, 5, first_episode=3)
    store.write_events(after)
    for evt in after:
        bus.publish(evt)
    qtbot.waitUntil(lambda: ctl.stats()["steps_total"] == 20 and ctl.stats()["pending_backfill"] == 0,
                    timeout=10_000)
    all_steps = [e.seq_id for e in before + after if e.topic is Topic.STEP_APPENDED]
    assert sorted(step_seqs(batches)) == all_steps and len(step_seqs(batches)) == 20
    assert ctl.stats()["backfilled_total"] == 15 + 3 and ctl.stats()["episodes_total"] == 4
    assert ctl.stats()["dropped_total"] == 0 and ctl.stats()["unrecoverable"] == 0


def test_a_stream_that_ended_before_its_tab_opened_is_read_whole_from_sqlite(
        qtbot: Any, bus: RunBus, store: TelemetrySQLiteStore, factory: Any, reader: WatchedReader,
        controllers: list[LiveTelemetryController]) -> None:
    f = factory("run1", "agent1")
    store.write_events([f.started(), *f.episodes(2, 5)])  # not terminal yet: the check stays open
    ctl = make(controllers, bus, reader=reader, history_after_seq_id=-1)
    qtbot.waitUntil(lambda: ctl.stats()["steps_total"] == 10, timeout=10_000)
    store.write_events([*f.episodes(1, 5, first_episode=2), f.completed()])  # the rest, then the end
    qtbot.waitUntil(lambda: ctl.stats()["steps_total"] == 15 and not ctl.view.gaps, timeout=10_000)
    stats = ctl.stats()
    assert (stats["episodes_total"], stats["backfilled_total"], stats["unrecoverable"]) == (3, 18, 0)
    queries = ctl.backfill_queries
    quiet_ticks(qtbot, ctl, 20)  # nothing pending: the pump is idle, and ticks asked for read nothing
    assert ctl.backfill_queries == queries  # closed: no more reading
