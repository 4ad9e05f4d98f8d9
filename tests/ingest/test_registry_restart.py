"""RunRegistry over an existing database: stored runs, stored streams, live state wins over the late load."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import pytest

from gym_gui.qt.store_reader import StoreReader
from gym_gui.qt.run_registry import RunRegistry, RunStatus
from gym_gui.qt.db_sink_thread import DbSink
from gym_gui.telemetry.events import TelemetryEvent
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class ReadThreadsStore(TelemetrySQLiteStore):
    """The real store, noting which thread asked for the runs."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.read_threads: list[int] = []

    def runs(self) -> Any:
        self.read_threads.append(threading.get_ident())
        return super().runs()


def publish(bus: RunBus, events: list[TelemetryEvent]) -> None:
    for evt in events:
        bus.publish(evt)


def unix_s(evt: TelemetryEvent) -> float:
    return datetime.fromisoformat(evt.ts_iso).timestamp()


@pytest.fixture
def history(qtbot: Any, db_path: Path, factory: Any) -> dict[str, TelemetryEvent]:
    """A database written by a first session through the real sink: four finished runs and one
    that was still running when that session ended. Returns the last stored event of 'orphan'."""
    store = TelemetrySQLiteStore(db_path)
    bus = RunBus()
    sink = DbSink(store, bus, batch_size=8)
    sink.start()
    done, crashed, stopped = factory("done", "a1"), factory("crashed", "a1"), factory("stopped", "a1")
    publish(bus, done.run(2, 2))
    publish(bus, [crashed.started(), crashed.completed("failed")])
    publish(bus, [stopped.started(), stopped.completed("cancelled")])
    o1, o2 = factory("orphan", "a1"), factory("orphan", "a2")
    orphan = [o1.started(config={"heartbeat_interval_s": 1.0}), o2.started(), *o1.episodes(1, 2), o1.heartbeat()]
    publish(bus, orphan)
    assert sink.flush(5) and sink.stop(5)
    store.close()
    return {"orphan_last": orphan[-1]}


@pytest.fixture
def session(qtbot: Any, db_path: Path) -> Iterator[dict[str, Any]]:
    """The second session: a fresh bus, store and reader over the same file."""
    store = ReadThreadsStore(db_path)
    reader = StoreReader(store, reader_threads=1)
    made: list[RunRegistry] = []
    yield {"store": store, "reader": reader, "bus": RunBus(), "registries": made}
    for registry in made:
        registry.stop()
        assert not registry.poll_timer.isActive()
    assert reader.stop(5) and reader.threads_alive() == 0
    store.close()


def make_registry(session: dict[str, Any], **kwargs: Any) -> tuple[RunRegistry, list[tuple[str, ...]]]:
    registry = RunRegistry(session["bus"], reader=session["reader"], poll_interval_ms=10, **kwargs)
    session["registries"].append(registry)
    seen: list[tuple[str, ...]] = []
    registry.status_changed.connect(lambda run, status: seen.append(("status", run, status)))
    registry.stream_added.connect(lambda run, agent: seen.append(("stream", run, agent)))
    return registry, seen


def test_a_new_registry_loads_the_stored_runs_and_their_streams(
        qtbot: Any, history: dict[str, TelemetryEvent], session: dict[str, Any], factory: Any) -> None:
    # An hour after the orphan's last news: nobody is running it any more.
    wall = FakeClock(unix_s(history["orphan_last"]) + 3600.0)
    registry, seen = make_registry(session, wall_clock=wall)
    with qtbot.waitSignal(registry.stored_runs_loaded, timeout=5000) as loaded:
        registry.start()
    assert loaded.args == [4]
    assert seen == [  # the store's order: oldest first, then by run_id
        ("status", "crashed", "failed"), ("stream", "crashed", "a1"),
        ("status", "done", "completed"), ("stream", "done", "a1"),
        ("status", "orphan", "stalled"), ("stream", "orphan", "a1"), ("stream", "orphan", "a2"),
        ("status", "stopped", "cancelled"), ("stream", "stopped", "a1"),
    ]
    assert [s.run_id for s in registry.states()] == ["crashed", "done", "orphan", "stopped"]
    done = registry.state("done")
    assert done is not None and done.env_id == "FrozenLake-v1" and done.outcome == "completed"
    assert done.summary == {"episodes": 1} and done.completed_at is not None
    orphan = registry.state("orphan")
    assert orphan is not None and orphan.last_event_at == history["orphan_last"].ts_iso
    assert registry.stall_timeout_s("orphan") == 3.0  # from the stored config
    store = session["store"]
    assert store.read_threads and threading.get_ident() not in store.read_threads
    # The orphan speaks again (e.g. its worker is back): running; the finished runs stay finished.
    bus = session["bus"]
    publish(bus, [factory("orphan", "a1", first_seq=100).heartbeat(), factory("done", "a1", first_seq=100).heartbeat()])
    qtbot.waitUntil(lambda: registry.status("orphan") is RunStatus.RUNNING, timeout=5000)
    assert registry.status("done") is RunStatus.COMPLETED
    assert [s for s in seen if s[1] in ("orphan", "done") and s[0] == "status"][-1] == ("status", "orphan", "running")


def test_a_recently_active_stored_run_is_running_until_its_stall_window_ends(
        qtbot: Any, history: dict[str, TelemetryEvent], session: dict[str, Any]) -> None:
    clock = FakeClock(500.0)
    wall = FakeClock(unix_s(history["orphan_last"]) + 1.0)  # the GUI restarted a second after its news
    registry, seen = make_registry(session, clock=clock, wall_clock=wall)
    with qtbot.waitSignal(registry.stored_runs_loaded, timeout=5000):
        registry.start()
    assert registry.status("orphan") is RunStatus.RUNNING
    clock.t += 1.5
    for _ in range(3):  # ticks asked for (an idle pump waits for news or a deadline)
        start = registry.polls
        registry.pump.wake()
        qtbot.waitUntil(lambda: registry.polls > start, timeout=5000)
    assert registry.status("orphan") is RunStatus.RUNNING
    clock.t += 0.6  # 1 + 1.5 + 0.6 > 3 x 1.0 s since its last stored event
    registry.pump.reschedule()
    qtbot.waitUntil(lambda: registry.status("orphan") is RunStatus.STALLED, timeout=5000)
    assert [s[2] for s in seen if s[:2] == ("status", "orphan")] == ["running", "stalled"]


def test_live_events_win_over_the_stored_state_loaded_later(
        qtbot: Any, history: dict[str, TelemetryEvent], session: dict[str, Any], factory: Any) -> None:
    reader: StoreReader = session["reader"]
    gate = threading.Event()
    assert reader.submit(lambda _store: gate.wait(5), lambda _r: None)  # holds the only reader thread
    wall = FakeClock(unix_s(history["orphan_last"]) + 3600.0)
    registry, seen = make_registry(session, wall_clock=wall)
    registry.start()
    # The orphan completes live, and a launched run is pending, before the stored rows arrive.
    registry.register_pending("done")
    session["bus"].publish(factory("orphan", "a1", first_seq=100).completed())
    qtbot.waitUntil(lambda: registry.status("orphan") is RunStatus.COMPLETED, timeout=5000)
    assert not registry.stored_loaded
    with qtbot.waitSignal(registry.stored_runs_loaded, timeout=5000):
        gate.set()
    # Stored 'running'/'completed' rows do not overwrite what this process knows; they only add streams.
    assert registry.status("orphan") is RunStatus.COMPLETED and registry.status("done") is RunStatus.PENDING
    assert [s for s in seen if s[1] == "orphan"] == [
        ("status", "orphan", "completed"), ("stream", "orphan", "a1"), ("stream", "orphan", "a2")]
    assert [s for s in seen if s[1] == "done"] == [("status", "done", "pending"), ("stream", "done", "a1")]
    assert registry.status("crashed") is RunStatus.FAILED
    assert registry.state("orphan").env_id == "FrozenLake-v1"  # type: ignore[union-attr]


def test_a_load_that_lands_after_stop_is_ignored(
        qtbot: Any, history: dict[str, TelemetryEvent], session: dict[str, Any]) -> None:
    reader: StoreReader = session["reader"]
    gate = threading.Event()
    assert reader.submit(lambda _store: gate.wait(5), lambda _r: None)
    registry, seen = make_registry(session)
    registry.start()
    registry.stop()
    delivered: list[int] = []
    reader.submit(lambda _store: 1, delivered.append)  # queued after the registry's load
    gate.set()
    qtbot.waitUntil(lambda: delivered == [1], timeout=5000)
    assert seen == [] and registry.states() == [] and not registry.is_polling()
