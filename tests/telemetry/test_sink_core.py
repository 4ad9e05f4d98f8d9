"""SinkCore on a plain thread, no Qt: batching by size and age, flush, stop, malformed events."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from gym_gui.telemetry.events import Topic
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.telemetry.sink_core import DURABLE_TOPICS, SinkCore
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore


class Recorder:
    """Collects callback calls and lets a test wait for them."""

    def __init__(self) -> None:
        self.calls: list[Any] = []
        self._cond = threading.Condition()

    def __call__(self, value: Any) -> None:
        with self._cond:
            self.calls.append(value)
            self._cond.notify_all()

    def wait_for(self, predicate: Any, timeout_s: float = 5.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self.calls), timeout_s)


@pytest.fixture
def cores() -> Iterator[list[SinkCore]]:
    made: list[SinkCore] = []
    yield made
    for core in made:
        assert core.stop(10)
        assert not core.running


def count(store: TelemetrySQLiteStore, table: str) -> int:
    return int(store._reader().execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def test_subscribes_losslessly_at_construction(store: TelemetrySQLiteStore, bus: RunBus, factory: Any,
                                              cores: list[SinkCore]) -> None:
    core = SinkCore(store, bus)
    cores.append(core)
    (sub,) = bus.subscriptions()  # one stream-ordered subscription for every durable topic
    assert set(sub.topics) == set(DURABLE_TOPICS) and sub.subscriber_id == "db-sink"
    assert {k for k in bus.queue_sizes()} == {f"{t.name}:db-sink" for t in DURABLE_TOPICS}
    assert all(s.maxlen is None for s in bus.subscriptions())
    events = factory().run(episodes=3, length=5)
    for e in events:
        bus.publish(e)  # before start: queued, not lost
    assert core.backlog() == len(events)
    core.start()
    core.start()  # idempotent
    assert core.flush(5)
    assert count(store, "steps") == 15 and count(store, "episodes") == 3
    assert core.backlog() == 0 and core.stats()["persisted"] == len(events)


def test_a_small_batch_is_written_after_max_delay(store: TelemetrySQLiteStore, bus: RunBus, factory: Any,
                                                  cores: list[SinkCore]) -> None:
    stats = Recorder()
    core = SinkCore(store, bus, batch_size=10_000, max_delay_s=0.05, stats_interval_s=0, on_stats=stats)
    cores.append(core)
    core.start()
    f = factory()
    for i in range(3):
        bus.publish(f.step(0, i))
    # Nothing asked for a write: the age of the batch did.
    assert stats.wait_for(lambda calls: any(c["batches"] == 1 for c in calls), timeout_s=2.0)
    assert count(store, "steps") == 3 and core.stats()["batches"] == 1


def test_full_batches_are_written_without_waiting_for_the_delay(store: TelemetrySQLiteStore, bus: RunBus,
                                                               factory: Any, cores: list[SinkCore]) -> None:
    stats = Recorder()
    core = SinkCore(store, bus, batch_size=100, max_delay_s=30.0, stats_interval_s=0, on_stats=stats)
    cores.append(core)
    f = factory()
    for i in range(250):
        bus.publish(f.step(0, i))
    core.start()
    assert stats.wait_for(lambda calls: any(c["batches"] == 2 for c in calls))
    assert count(store, "steps") == 200  # the last 50 wait for their delay (30 s) ...
    assert core.backlog() == 50
    assert core.flush(5)  # ... or a flush
    assert count(store, "steps") == 250 and core.stats()["batches"] == 3


def test_a_batch_filled_while_the_sink_waits_for_its_delay_is_written_at_once(
        store: TelemetrySQLiteStore, bus: RunBus, factory: Any, cores: list[SinkCore]) -> None:
    """The sink sleeps through publishes that cannot fill a batch (CountWaker), not through the one
    that does, nor past the gate's high-water mark when that is lower than a batch."""
    stats = Recorder()
    core = SinkCore(store, bus, batch_size=50, max_delay_s=60.0, stats_interval_s=0, on_stats=stats)
    cores.append(core)
    core.start()
    f = factory()
    bus.publish(f.step(0, 0))  # held: the sink now waits for its delay or a full batch
    for i in range(1, 50):
        bus.publish(f.step(0, i))
    assert stats.wait_for(lambda calls: any(c["batches"] == 1 for c in calls))
    assert count(store, "steps") == 50

    gated = SinkCore(store, bus, batch_size=100_000, max_delay_s=60.0, high_water=100, low_water=10,
                     subscriber_id="gated")
    cores.append(gated)
    gated.start()
    done = threading.Event()

    def produce() -> None:  # as the proxy does: wait on the gate before each publish
        for i in range(50, 400):
            gated.gate.wait_until_open(10)
            bus.publish(f.step(1, i))
        done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    assert done.wait(20)  # the sink woke at the mark and drained, so the gate opened again
    producer.join(5)
    assert gated.stats()["gate_pauses"] >= 1


def test_flush_covers_everything_published_before_it(store: TelemetrySQLiteStore, bus: RunBus, factory: Any,
                                                    cores: list[SinkCore]) -> None:
    core = SinkCore(store, bus, batch_size=64, max_delay_s=30.0)
    cores.append(core)
    core.start()
    f = factory()
    for n in (1, 7, 300):
        for e in f.episodes(n, 3):
            bus.publish(e)
        assert core.flush(5)
        assert store.max_seq_id("run1", "agent1") == f.seq


def test_flush_and_stop_on_a_sink_that_never_started(store: TelemetrySQLiteStore, bus: RunBus,
                                                    factory: Any) -> None:
    idle = SinkCore(store, bus, subscriber_id="idle")
    assert idle.flush(0.1) is True  # nothing queued
    assert idle.stop(1) is True and idle.stop(1) is True
    busy = SinkCore(store, bus, subscriber_id="busy")
    for e in factory().run(episodes=1, length=4):
        bus.publish(e)
    assert busy.flush(0.1) is False  # queued, and nobody runs to store it
    assert busy.stop(5) is True  # stop starts it to store the queue first
    assert count(store, "steps") == 4 and not busy.running
    assert bus.subscriptions() == []


def test_run_persisted_is_reported_after_the_whole_run_is_committed(store: TelemetrySQLiteStore, bus: RunBus,
                                                                  factory: Any, cores: list[SinkCore]) -> None:
    seen: dict[str, tuple[int, int]] = {}

    def on_persisted(run_id: str) -> None:  # runs on the sink thread, right after the commit
        seen[run_id] = (len(store.episode_records(run_id)), count(store, "steps"))
        persisted(run_id)

    persisted = Recorder()
    core = SinkCore(store, bus, batch_size=7, on_run_persisted=on_persisted)
    cores.append(core)
    core.start()
    for e in factory("run1", "agent1").run(episodes=20, length=5):
        bus.publish(e)
    assert persisted.wait_for(lambda calls: calls == ["run1"])
    assert seen["run1"] == (20, 100)
    assert store.run("run1").status == "completed"  # type: ignore[union-attr]


def test_a_malformed_event_is_reported_and_the_rest_is_stored(store: TelemetrySQLiteStore, bus: RunBus,
                                                              factory: Any, cores: list[SinkCore]) -> None:
    errors = Recorder()
    core = SinkCore(store, bus, on_error=errors)
    cores.append(core)
    core.start()
    f = factory()
    bus.publish(f.step(0, 0))
    bad = f.step(0, 1, observation=object())
    bus.publish(bad)
    bus.publish(f.step(0, 2))
    assert core.flush(5)
    assert errors.wait_for(lambda calls: any(f"seq={bad.seq_id}" in c for c in calls))
    assert [s.seq_id for s in store.steps_for_episode("run1", "agent1", 0)] == [0, 2]
    assert [e.seq_id for e, _ in store.rejected_events()] == [bad.seq_id]
    stats = core.stats()
    assert (stats["rejected"], stats["persisted"], stats["lost"]) == (1, 3, 0) and core.running


def test_an_unexpected_sqlite_failure_is_isolated_to_its_event(store: TelemetrySQLiteStore, bus: RunBus,
                                                              factory: Any, cores: list[SinkCore]) -> None:
    errors = Recorder()
    core = SinkCore(store, bus, on_error=errors)
    cores.append(core)
    f = factory()
    good = [f.step(0, 0), f.step(0, 1)]
    broken = f.step(0, 2, action="\udcff")  # a lone surrogate is fine in JSON (escaped) ...
    broken = type(broken)(Topic.STEP_APPENDED, "run1", "agent1", broken.seq_id, broken.ts_iso + "\udcff",
                          broken.payload)  # ... but not as a bound TEXT: SQLite cannot encode it
    for e in [*good, broken]:
        bus.publish(e)
    core.start()
    assert core.flush(5)
    assert errors.wait_for(lambda calls: any("one by one" in c for c in calls))
    assert [s.seq_id for s in store.steps_for_episode("run1", "agent1", 0)] == [0, 1]
    kept = store.rejected_events()
    assert len(kept) == 1 and kept[0][0].seq_id == broken.seq_id and "UnicodeEncodeError" in kept[0][1]
    assert core.stats()["lost"] == 0 and core.running


def test_stop_stores_the_backlog_and_is_idempotent(store: TelemetrySQLiteStore, bus: RunBus,
                                                  factory: Any) -> None:
    core = SinkCore(store, bus, batch_size=100, write_delay_s=0.02)
    core.start()
    events = factory().run(episodes=100, length=9)
    for e in events:
        bus.publish(e)
    assert core.backlog() > 0
    assert core.stop(10) is True
    assert core.stop(10) is True
    assert core.backlog() == 0 and not core.running and core._thread is not None
    core._thread.join(5)
    assert not core._thread.is_alive()
    assert count(store, "steps") == 900 and count(store, "episodes") == 100
    assert store.run("run1").status == "completed"  # type: ignore[union-attr]
    bus.publish(factory().step(9, 9))  # after stop: no subscription left, nothing queues up
    assert bus.subscriptions() == [] and core.backlog() == 0


def test_stop_gives_up_after_its_timeout_when_the_store_keeps_failing(db_path: Path, bus: RunBus,
                                                                     factory: Any) -> None:
    store = TelemetrySQLiteStore(db_path, busy_timeout_s=0.01)
    errors = Recorder()
    core = SinkCore(store, bus, retry_initial_s=0.01, retry_max_s=0.05, on_error=errors)
    core.start()
    blocker_store = TelemetrySQLiteStore(db_path)  # (kept referenced: a collected store closes its connection)
    blocker = blocker_store._conn
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        for e in factory().episodes(2, 3):
            bus.publish(e)
        assert errors.wait_for(lambda calls: any("locked" in c for c in calls))
        assert core.stop(0.3) is False
        assert not core.running and core.stats()["lost"] == 8 and core.backlog() == 0
        assert errors.wait_for(lambda calls: any("without storing 8 events" in c for c in calls))
    finally:
        blocker.execute("ROLLBACK")
        blocker_store.close()
        store.close()


class RacingDrains:
    """The sink's subscription, with a producer publishing right before and right after each drain.

    The producer is the sink thread itself (one thread, in seq order, as the bus contract requires).
    Those are the worst moments for ordering: a drain that sees part of what one round published.
    """

    def __init__(self, sub: Any, bus: RunBus, chunks: list[list[Any]]) -> None:
        self._sub = sub
        self._bus = bus
        self._chunks = chunks

    def drain(self, max_items: int | None = None) -> list[Any]:
        if self._chunks:
            publish_all(self._bus, self._chunks.pop(0))
        drained = self._sub.drain(max_items)
        if self._chunks:
            publish_all(self._bus, self._chunks.pop(0))
        return drained

    def __len__(self) -> int:
        return len(self._sub)

    def put_nowait(self, item: Any) -> None:  # a flush marker
        self._sub.put_nowait(item)

    def __getattr__(self, name: str) -> Any:  # wait, wake, close, give_up
        return getattr(self._sub, name)


def publish_all(bus: RunBus, events: list[Any]) -> None:
    for e in events:
        bus.publish(e)


def test_every_commit_is_a_prefix_of_the_stream_even_when_publishing_races_the_drains(
        store: TelemetrySQLiteStore, bus: RunBus, factory: Any, cores: list[SinkCore]) -> None:
    f = factory()
    events = [f.started()]
    for ep in range(40):
        events += [f.step(ep, i) for i in range(ep % 3 + 1)] + [f.episode(ep, ep % 3 + 1)]
        if ep % 5 == 0:
            events.append(f.heartbeat())
    events.append(f.completed())
    chunks, i, size = [], 0, 1
    while i < len(events):
        chunks.append(events[i:i + size])
        i += size
        size = size % 4 + 1
    violations: list[str] = []
    commits = [0]

    def check_inside_the_transaction() -> None:  # sink thread, write lock held: sees this commit's rows
        commits[0] += 1
        count, top = store._conn.execute(
            "SELECT COUNT(*), COALESCE(MAX(seq_id), -1) FROM (SELECT seq_id FROM steps UNION ALL "
            "SELECT seq_id FROM episodes UNION ALL SELECT seq_id FROM run_events)").fetchone()
        beats = sum(1 for e in events if e.topic is Topic.RUN_HEARTBEAT and e.seq_id <= top)
        if count + beats != top + 1:
            violations.append(f"commit {commits[0]}: {count} rows + {beats} heartbeats up to seq {top}")

    store.before_commit = check_inside_the_transaction
    core = SinkCore(store, bus, max_delay_s=0.0)
    cores.append(core)
    core.processor._sub = RacingDrains(core.processor._sub, bus, chunks)  # type: ignore[assignment]
    core.start()  # from here on the sink thread itself publishes, chunk by chunk, around its drains
    while chunks:
        assert core.flush(5)
    assert core.flush(5)
    assert not violations, violations[:5]
    assert commits[0] > 10
    assert store.max_seq_id("run1", "agent1") == events[-1].seq_id
    assert len(store.episode_records("run1")) == 40
