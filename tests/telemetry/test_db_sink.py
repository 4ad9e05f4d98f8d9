"""DbSink on a real QThread with real SQLite files: signals, ordering, faults, readers, shutdown."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from qtpy.QtCore import QThread

from gym_gui.telemetry import run_bus as run_bus_module
from gym_gui.qt.db_sink_thread import DbSink
from gym_gui.telemetry.events import TelemetryEvent
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore


@pytest.fixture
def sinks() -> Iterator[list[DbSink]]:
    """Sinks made by a test; each is proven stopped afterwards."""
    made: list[DbSink] = []
    yield made
    for sink in made:
        assert sink.stop(10)
        assert sink.isFinished() and not sink.isRunning()


def make_sink(sinks: list[DbSink], store: TelemetrySQLiteStore, bus: RunBus, **tuning: Any) -> DbSink:
    sink = DbSink(store, bus, **tuning)
    sinks.append(sink)
    sink.start()
    return sink


def stored(store: TelemetrySQLiteStore, sql: str, *args: Any) -> Any:
    return store._reader().execute(sql, args).fetchone()[0]


def publish_all(bus: RunBus, events: list[TelemetryEvent]) -> None:
    for e in events:
        bus.publish(e)


def test_run_persisted_fires_once_the_whole_run_is_readable(qtbot: Any, store: TelemetrySQLiteStore,
                                                            bus: RunBus, factory: Any,
                                                            sinks: list[DbSink]) -> None:
    sink = make_sink(sinks, store, bus, batch_size=16)
    assert isinstance(sink, QThread)
    a, b = factory("run1", "agent1"), factory("run1", "agent2")
    with qtbot.waitSignal(sink.run_persisted, timeout=5000) as blocker:
        publish_all(bus, b.run(episodes=5, length=3)[:-1])  # agent2 never completes: still stored
        publish_all(bus, a.run(episodes=10, length=4))
    assert blocker.args == ["run1"]
    # Received in the GUI thread: everything of the run is already committed and visible there.
    assert len(store.episode_records("run1", "agent1")) == 10
    assert len(store.episode_records("run1", "agent2")) == 5
    assert stored(store, "SELECT COUNT(*) FROM steps") == 55
    run = store.run("run1")
    assert run is not None and run.status == "completed" and run.agent_ids == ("agent1", "agent2")
    stats = sink.stats()
    assert stats["persisted"] == 2 * 1 + 10 * 5 + 5 * 4 + 1 and stats["backlog"] == 0 and stats["errors"] == 0


def test_bus_none_means_the_process_wide_bus(qtbot: Any, store: TelemetrySQLiteStore, factory: Any,
                                             sinks: list[DbSink]) -> None:
    bus = run_bus_module._reset_default_bus_for_tests()
    sink = DbSink(store)
    sinks.append(sink)
    sink.start()
    publish_all(run_bus_module.get_bus(), factory().episodes(2, 2))
    assert sink.flush(5)
    assert stored(store, "SELECT COUNT(*) FROM episodes") == 2
    assert sink.stop(5) and bus.subscriptions() == []


def test_no_episode_is_ever_visible_before_its_steps(store: TelemetrySQLiteStore, bus: RunBus, factory: Any,
                                                     sinks: list[DbSink]) -> None:
    """A reader checks every committed snapshot while two producers and the sink run flat out."""
    sink = make_sink(sinks, store, bus, batch_size=37, max_delay_s=0.001)
    producers_done = threading.Event()
    violations: list[str] = []
    snapshots = [0]
    snapshot_taken = threading.Condition()

    def read() -> None:
        conn = sqlite3.connect(str(store.path), isolation_level=None)
        try:
            while True:
                last = producers_done.is_set()
                conn.execute("BEGIN")
                rows = conn.execute(
                    "SELECT agent_id, COUNT(*), COALESCE(MAX(seq_id), -1) FROM ("
                    " SELECT agent_id, seq_id FROM steps UNION ALL SELECT agent_id, seq_id FROM episodes"
                    ") GROUP BY agent_id").fetchall()
                short = conn.execute(
                    "SELECT e.agent_id, e.episode_index FROM episodes e WHERE e.length != "
                    "(SELECT COUNT(*) FROM steps s WHERE s.run_id = e.run_id AND s.agent_id = e.agent_id"
                    " AND s.episode_index = e.episode_index)").fetchall()
                conn.execute("COMMIT")
                with snapshot_taken:
                    snapshots[0] += 1
                    snapshot_taken.notify_all()
                for agent, count, max_seq in rows:
                    if count != max_seq + 1:  # committed events of a stream always form a prefix
                        violations.append(f"{agent}: {count} rows up to seq {max_seq}")
                if short:
                    violations.append(f"episodes committed before their steps: {short[:3]}")
                if violations or last:
                    return
        finally:
            conn.close()
            with snapshot_taken:  # producers waiting for a snapshot go on
                snapshots[0] += 1
                snapshot_taken.notify_all()

    def produce(agent: str) -> None:
        f = factory("run1", agent)
        for ep in range(150):
            for i in range(ep % 7 + 1):
                bus.publish(f.step(ep, i))
            bus.publish(f.episode(ep, ep % 7 + 1))
            if ep % 10 == 9:  # let the reader look between bursts, so its snapshots overlap the writes
                with snapshot_taken:
                    seen = snapshots[0]
                    snapshot_taken.wait_for(lambda: snapshots[0] > seen or bool(violations), timeout=10)

    reader = threading.Thread(target=read)
    producers = [threading.Thread(target=produce, args=(a,)) for a in ("agent1", "agent2")]
    reader.start()
    for p in producers:
        p.start()
    for p in producers:
        p.join(30)
    assert sink.flush(10)
    producers_done.set()
    reader.join(30)
    assert not violations, violations[:5]
    assert snapshots[0] >= 15  # the reader really overlapped the writes (each producer waited for 15 snapshots)
    assert stored(store, "SELECT COUNT(*) FROM episodes") == 300
    assert sink.stats()["batches"] > 10


def test_a_locked_database_delays_but_loses_nothing(qtbot: Any, db_path: Path, bus: RunBus, factory: Any,
                                                    sinks: list[DbSink]) -> None:
    store = TelemetrySQLiteStore(db_path, busy_timeout_s=0.05)
    sink = make_sink(sinks, store, bus, batch_size=50, retry_initial_s=0.05, retry_max_s=0.4)
    f = factory("run1", "agent1")
    publish_all(bus, f.episodes(2, 5))
    assert sink.flush(5)
    locker = sqlite3.connect(str(db_path), isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock for about a second
    locked_at = time.monotonic()
    try:
        with qtbot.waitSignal(sink.error, timeout=5000) as blocker:
            events = [f.started(), *f.episodes(40, 10, first_episode=2), f.completed()]
            publish_all(bus, events)
        assert "locked" in blocker.args[0]
        assert sink.flush(0.2) is False  # still locked: flush says so instead of lying
        qtbot.waitUntil(lambda: sink.stats()["retries"] >= 4, timeout=5000)
        held_s = time.monotonic() - locked_at
        stats = sink.stats()
        assert stats["failing"] and stats["backlog"] == len(events) and stats["persisted"] == 12
        # Readers keep working while the writer is locked out.
        assert len(store.episode_records("run1")) == 2
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert held_s >= 0.5
    with qtbot.waitSignal(sink.run_persisted, timeout=10_000):
        pass
    assert sink.flush(5)
    assert sink.isRunning()
    assert stored(store, "SELECT COUNT(*) FROM steps") == 10 + 400
    assert stored(store, "SELECT COUNT(*) FROM episodes") == 42
    assert store.max_seq_id("run1", "agent1") == f.seq
    stats = sink.stats()
    assert stats["persisted"] == 12 + len(events) and stats["duplicates"] == 0 and not stats["failing"]
    assert stats["errors"] >= 4 and "locked" in stats["last_error"]
    assert sink.stop(5)
    store.close()


def test_a_full_database_reports_errors_and_stores_everything_once_space_is_freed(
        qtbot: Any, store: TelemetrySQLiteStore, bus: RunBus, factory: Any, sinks: list[DbSink]) -> None:
    sink = make_sink(sinks, store, bus, batch_size=20, retry_initial_s=0.02, retry_max_s=0.1)
    f = factory("run1", "agent1")
    store.set_max_page_count(store.page_count())  # no room left for another page
    blob = "x" * 3000
    events = [f.started()] + [f.step(0, i, observation=blob) for i in range(60)] + [f.episode(0, 60)]
    with qtbot.waitSignal(sink.error, timeout=5000) as blocker:
        publish_all(bus, events)
    assert "full" in blocker.args[0]
    qtbot.waitUntil(lambda: sink.stats()["retries"] >= 3, timeout=5000)
    assert sink.isRunning() and sink.stats()["persisted"] == 0
    store.set_max_page_count(0)  # space freed
    assert sink.flush(5)
    assert stored(store, "SELECT COUNT(*) FROM steps") == 60
    assert stored(store, "SELECT COUNT(*) FROM episodes") == 1
    steps = store.steps_for_episode("run1", "agent1", 0)
    assert [s.step_index for s in steps] == list(range(60)) and steps[-1].observation == blob
    stats = sink.stats()
    assert stats["persisted"] == len(events) and stats["lost"] == 0 and "full" in stats["last_error"]


def test_readers_on_other_threads_and_the_gui_thread_never_wait_for_the_sink(
        qtbot: Any, store: TelemetrySQLiteStore, bus: RunBus, factory: Any, sinks: list[DbSink]) -> None:
    in_commit = threading.Event()
    release = threading.Event()

    def slow_commit() -> None:
        if not release.is_set():
            in_commit.set()
            release.wait(10)

    sink = make_sink(sinks, store, bus, batch_size=200)
    f = factory("run1", "agent1")
    publish_all(bus, f.episodes(5, 4))
    assert sink.flush(5)
    store.before_commit = slow_commit  # the next commit hangs, as on a stalled disk
    publish_all(bus, f.episodes(50, 4, first_episode=5))
    assert in_commit.wait(5)
    slowest = [0.0]
    reads = [0]
    stop_reading = threading.Event()

    def reader() -> None:
        while not stop_reading.is_set():
            t0 = time.monotonic()
            assert len(store.events_after("run1", "agent1", -1, 10_000)) == 25
            store.runs()
            slowest[0] = max(slowest[0], time.monotonic() - t0)
            reads[0] += 1

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        t0 = time.monotonic()  # the GUI thread reads while the sink is stuck inside its transaction
        assert [e.episode_index for e in store.episode_records("run1")] == [0, 1, 2, 3, 4]
        assert store.max_seq_id("run1", "agent1") == 24
        gui_read_s = time.monotonic() - t0
        qtbot.waitUntil(lambda: reads[0] >= 20, timeout=5000)
    finally:
        stop_reading.set()
        for t in threads:
            t.join(10)
        release.set()
    assert gui_read_s < 0.2 and slowest[0] < 0.5
    assert sink.flush(5)
    store.before_commit = None
    assert len(store.episode_records("run1")) == 55


def test_stop_stores_the_backlog_and_leaves_no_thread_running(qtbot: Any, store: TelemetrySQLiteStore,
                                                              bus: RunBus, factory: Any) -> None:
    sink = DbSink(store, bus, batch_size=100, write_delay_s=0.01)
    sink.start()
    threads_before = {t.ident for t in threading.enumerate()}
    events = factory("run1", "agent1").episodes(300, 5) + factory("run2", "agent1").run(10, 10)
    publish_all(bus, events)
    assert sink.backlog() > 0
    with qtbot.waitSignal(sink.finished, timeout=10_000):
        assert sink.stop(10) is True
    assert sink.stop(10) is True  # twice is harmless
    sink.start()  # and a stopped sink does not come back
    assert sink.isFinished() and not sink.isRunning() and not sink.core.running
    assert stored(store, "SELECT COUNT(*) FROM steps") == 1500 + 100
    assert stored(store, "SELECT COUNT(*) FROM episodes") == 310
    assert bus.subscriptions() == [] and sink.backlog() == 0
    assert {t.ident for t in threading.enumerate() if t.is_alive()} <= threads_before
    assert sink.ingest_gate.wait_until_open(0)  # a stopped sink never stalls a producer


def test_stopping_a_sink_that_never_started_stores_its_queue_on_the_qthread(
        qtbot: Any, store: TelemetrySQLiteStore, bus: RunBus, factory: Any) -> None:
    sink = DbSink(store, bus)
    publish_all(bus, factory().run(episodes=2, length=3))
    with qtbot.waitSignal(sink.finished, timeout=10_000):
        assert sink.stop(10) is True
    assert sink.isFinished() and not sink.isRunning()
    assert stored(store, "SELECT COUNT(*) FROM steps") == 6 and sink.backlog() == 0


def test_start_takes_a_scoped_thread_priority(qtbot: Any, store: TelemetrySQLiteStore, bus: RunBus,
                                              sinks: list[DbSink]) -> None:
    """The default and the argument use the scoped enum (QThread.Priority.*), which PyQt6 requires."""
    sink = DbSink(store, bus)
    sinks.append(sink)
    sink.start(QThread.Priority.LowPriority)
    qtbot.waitUntil(sink.isRunning, timeout=5000)
    assert sink.priority() == QThread.Priority.LowPriority
