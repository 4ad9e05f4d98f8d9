"""ReplayView without Qt: plain pytest, the test's clock, ticks and reads run by hand (no QTimer, no qtbot).

Real RunBus and SQLite store; ``DeferredReader`` runs the submitted reads when the test says so.
"""

from __future__ import annotations

from typing import Any

from deferred_reader import DeferredReader
from gym_gui.live.replay_view import ReplayView
from gym_gui.telemetry.events import TelemetryEvent
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore
from gym_gui.telemetry.subscription import Waker


class Clock:
    def __init__(self) -> None:
        self.now_s = 500.0

    def __call__(self) -> float:
        return self.now_s


class Listener:
    def __init__(self) -> None:
        self.ready: list[tuple[str, Any]] = []
        self.progress: list[Any] = []
        self.steps: list[tuple[str, int, Any]] = []
        self.failed: list[str] = []
        self.released = 0

    def on_replay_ready(self, run_id: str, episodes: Any) -> None:
        self.ready.append((run_id, episodes))

    def on_steps_loaded(self, agent_id: str, episode_index: int, steps: Any) -> None:
        self.steps.append((agent_id, episode_index, steps))

    def on_load_failed(self, message: str) -> None:
        self.failed.append(message)

    def on_episodes_persisted(self, run_id: str, episodes: Any) -> None:
        self.progress.append(episodes)

    def on_released(self) -> None:
        self.released += 1


def make(bus: RunBus, store: TelemetrySQLiteStore, **kwargs: Any) -> tuple[ReplayView, Listener, DeferredReader, Clock]:
    clock, listener, reader = Clock(), Listener(), DeferredReader(store)
    view = ReplayView(bus, reader, "run1", listener, waker=Waker(), poll_interval_s=0.1, clock=clock, **kwargs)
    return view, listener, reader, clock


def data_only(f: Any, episodes: range, length: int) -> list[TelemetryEvent]:
    events: list[TelemetryEvent] = []
    for ep in episodes:
        events += [f.step(ep, i) for i in range(length)]
        events.append(f.episode(ep, length))
    return events


def test_a_completion_seen_before_its_row_is_committed_is_looked_up_after_1_2_4_intervals(
        bus: RunBus, store: TelemetrySQLiteStore, factory: Any) -> None:
    view, listener, reader, clock = make(bus, store, follow_episodes=False)
    view.start()
    reader.run()  # the check at start: nothing stored
    assert view.live and view.next_deadline_s(clock()) is None  # waits for the bus: no tick wanted
    f = factory("run1", "agent1")
    events = [f.started(), *f.episodes(2, 3), f.completed()]
    for evt in events:
        bus.publish(evt)
    assert view.next_deadline_s(clock()) == clock()  # RUN_COMPLETED queued: tick at the next frame
    view.tick(clock())
    assert view.completion_seen
    due: list[float] = []
    for _ in range(3):  # not committed yet: looked up again later and later, on the view's clock
        reader.run()
        clock.now_s = view.next_deadline_s(clock())
        due.append(round(clock.now_s - 500.0, 3))
        view.tick(clock())
    assert due == [0.1, 0.3, 0.7] and listener.ready == []
    store.write_events(events)
    reader.run()  # the terminal row is there: persisted, then the load
    reader.run()
    [(run_id, episodes)] = listener.ready
    assert run_id == "run1" and [e.episode_index for e in episodes["agent1"]] == [0, 1]
    assert not view.live and listener.released == 1 and bus.subscriptions() == []
    assert view.next_deadline_s(clock()) is None
    assert view.load_steps("agent1", 1) and reader.run() == 1
    assert [s.step_index for s in listener.steps[0][2]] == [0, 1, 2]


def test_a_run_without_lifecycle_records_is_followed_episode_by_episode(
        bus: RunBus, store: TelemetrySQLiteStore, factory: Any) -> None:
    view, listener, reader, clock = make(bus, store)
    view.start()
    assert view.following
    f = factory("run1", "agent1")
    events = data_only(f, range(2), 2)
    for evt in events:
        bus.publish(evt)
    reader.run()  # the start check found nothing
    view.tick(clock())  # the episodes seen live: a read is due at once
    assert reader.run() == 1 and listener.progress == []  # not committed yet
    store.write_events(events)
    clock.now_s = view.next_deadline_s(clock())  # read again after the backoff
    view.tick(clock())
    reader.run()
    assert [e.episode_index for e in listener.progress[-1]["agent1"]] == [0, 1]
    assert view.next_deadline_s(clock()) is None  # nothing wanted: idle until the bus says more
    completed = f.completed("completed")
    store.write_events([completed])  # the sink's part
    bus.publish(completed)
    view.tick(clock())
    reader.run()
    reader.run()
    assert len(listener.ready) == 1 and not view.following


def test_the_notice_before_start_loads_without_a_tick_and_stop_releases(
        bus: RunBus, store: TelemetrySQLiteStore, factory: Any) -> None:
    view, listener, reader, _clock = make(bus, store)
    store.write_events(factory("run1", "agent1").run(episodes=1, length=2))
    view.on_run_persisted("other")  # not ours
    view.on_run_persisted("run1")
    view.start()
    reader.run()
    assert len(listener.ready) == 1 and view.polls == 0 and bus.subscriptions() == []
    stopped, listener2, reader2, _c = make(bus, store)
    stopped.start()
    stopped.stop()
    stopped.stop()
    reader2.run()  # the start check's result comes after stop: dropped
    assert listener2.ready == [] and listener2.released == 1 and bus.subscriptions() == []
    assert stopped.load_steps("agent1", 0) is False


def test_a_stopped_reader_is_reported(bus: RunBus, store: TelemetrySQLiteStore, factory: Any) -> None:
    view, listener, reader, _clock = make(bus, store)
    reader.stopped = True
    view.on_run_persisted("run1")
    view.start()
    assert listener.failed and "stopped" in listener.failed[0] and view.episodes is None
