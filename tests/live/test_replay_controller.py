"""ReplayController with the real DbSink, store, bus and reader: loads only what is fully persisted."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterator

import pytest
from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import QApplication

from gym_gui.qt.replay_controller import ReplayController
from gym_gui.qt.store_reader import StoreReader
from gym_gui.qt.db_sink_thread import DbSink
from gym_gui.telemetry.curve_reads import PARTIAL_OUTCOME
from gym_gui.telemetry.events import TelemetryEvent
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore


class ReadThreadsStore(TelemetrySQLiteStore):
    """The real store, noting which thread made each read the controller uses."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.read_threads: list[int] = []

    def run(self, run_id: str) -> Any:
        self.read_threads.append(threading.get_ident())
        return super().run(run_id)

    def episode_records(self, run_id: str, agent_id: str | None = None) -> Any:
        self.read_threads.append(threading.get_ident())
        return super().episode_records(run_id, agent_id)

    def steps_for_episode(self, run_id: str, agent_id: str | None, episode_index: int) -> Any:
        self.read_threads.append(threading.get_ident())
        return super().steps_for_episode(run_id, agent_id, episode_index)


@pytest.fixture
def parts(qtbot: Any, db_path: Path, bus: RunBus) -> Iterator[dict[str, Any]]:
    """A store, a sink (subscribed, not started) and a reader; everything is stopped and checked after."""
    store = ReadThreadsStore(db_path)
    sink = DbSink(store, bus, batch_size=16)
    reader = StoreReader(store)
    made: list[ReplayController] = []
    yield {"store": store, "sink": sink, "reader": reader, "controllers": made}
    for controller in made:
        controller.stop()
        assert not controller.poll_timer.isActive() and not controller.is_connected()
    assert sink.stop(10) and not sink.isRunning()
    assert reader.stop(5) and reader.threads_alive() == 0
    store.close()


def make_controller(bus: RunBus, parts: dict[str, Any], run_id: str = "run1", **kwargs: Any) -> ReplayController:
    kwargs.setdefault("poll_interval_ms", 10)
    controller = ReplayController(bus, parts["reader"], parts["sink"].run_persisted, run_id, **kwargs)
    parts["controllers"].append(controller)
    return controller


def let_polls_pass(qtbot: Any, controller: ReplayController, parts: dict[str, Any], n: int) -> None:
    """``n`` more ticks (asked for: the pump is idle while nothing is due), then the reader idle."""
    for _ in range(n):
        start = controller.polls
        controller.pump.wake()
        qtbot.waitUntil(lambda: controller.polls > start, timeout=5000)
    qtbot.waitUntil(lambda: parts["reader"].pending() == 0, timeout=5000)


def publish(bus: RunBus, events: list[TelemetryEvent]) -> None:
    for evt in events:
        bus.publish(evt)


def two_agent_run(factory: Any, run_id: str = "run1") -> list[TelemetryEvent]:
    """agent2: 5 episodes of 3 steps; agent1: 10 episodes of 4 steps; both complete."""
    return factory(run_id, "agent2").run(episodes=5, length=3) + factory(run_id, "agent1").run(episodes=10, length=4)


def assert_complete(episodes: dict[str, Any], run_id: str = "run1") -> None:
    assert list(episodes) == ["agent1", "agent2"]
    assert [e.episode_index for e in episodes["agent1"]] == list(range(10))
    assert [e.episode_index for e in episodes["agent2"]] == list(range(5))
    assert {e.length for e in episodes["agent1"]} == {4} and {e.length for e in episodes["agent2"]} == {3}
    assert all(e.run_id == run_id for eps in episodes.values() for e in eps)


def assert_read_off_the_gui_thread(parts: dict[str, Any]) -> None:
    threads = parts["store"].read_threads
    assert threads and threading.get_ident() not in threads


def test_replay_ready_only_after_the_sink_persisted_the_whole_run(
        qtbot: Any, bus: RunBus, factory: Any, parts: dict[str, Any]) -> None:
    sink: DbSink = parts["sink"]
    controller = make_controller(bus, parts)
    order: list[Any] = []
    persisted_at_ready: list[int] = []

    def on_ready(run_id: str, _episodes: Any) -> None:
        order.append(("ready", run_id))
        # The sink's queued signal may still be on its way: what counts is that SQLite has it all.
        persisted_at_ready.append(sink.stats()["backlog"])

    sink.run_persisted.connect(lambda run_id: order.append(("persisted", run_id)))
    controller.replay_ready.connect(on_ready)
    controller.start()
    assert controller.is_polling()
    publish(bus, two_agent_run(factory))
    # The controller sees RUN_COMPLETED while nothing is stored yet: it must keep waiting.
    qtbot.waitUntil(lambda: controller.completion_seen, timeout=5000)
    let_polls_pass(qtbot, controller, parts, 5)
    assert order == [] and controller.episodes is None and not controller.persisted
    with qtbot.waitSignal(controller.replay_ready, timeout=5000) as ready:
        sink.start()
    assert ready.args[0] == "run1" and ready.args[1] is controller.episodes
    assert_complete(ready.args[1])
    qtbot.waitUntil(lambda: ("persisted", "run1") in order, timeout=5000)
    assert order.count(("ready", "run1")) == 1 and persisted_at_ready == [0]
    assert_read_off_the_gui_thread(parts)
    # Ready: the live part is released at once.
    assert not controller.is_polling() and not controller.is_connected()
    assert "RUN_COMPLETED:replay-run1" not in bus.queue_sizes()
    # Exactly once, even when the sink persists the run again (a late completion of another agent).
    with qtbot.waitSignal(sink.run_persisted, timeout=5000):
        bus.publish(factory("run1", "agent3").completed("failed"))
    QApplication.processEvents()
    assert order.count(("ready", "run1")) == 1


def test_run_persisted_before_the_tick_sees_run_completed(
        qtbot: Any, bus: RunBus, factory: Any, parts: dict[str, Any]) -> None:
    parts["sink"].start()
    controller = make_controller(bus, parts, poll_interval_ms=3_600_000)  # the timer never ticks here
    controller.start()
    with qtbot.waitSignal(controller.replay_ready, timeout=5000) as ready:
        publish(bus, two_agent_run(factory))
    assert controller.polls == 0 and not controller.completion_seen
    assert_complete(ready.args[1])


def test_run_persisted_before_start(qtbot: Any, bus: RunBus, factory: Any, parts: dict[str, Any]) -> None:
    parts["sink"].start()
    controller = make_controller(bus, parts)  # connected at construction, not started
    publish(bus, two_agent_run(factory))
    qtbot.waitUntil(lambda: controller.persisted, timeout=5000)
    with qtbot.waitSignal(controller.replay_ready, timeout=5000) as ready:
        controller.start()
    assert_complete(ready.args[1])
    assert controller.polls == 0 and "RUN_COMPLETED:replay-run1" not in bus.queue_sizes()


def test_a_run_opened_from_history_loads_at_start_and_an_unfinished_one_waits(
        qtbot: Any, bus: RunBus, factory: Any, parts: dict[str, Any]) -> None:
    store: TelemetrySQLiteStore = parts["store"]
    store.write_events(two_agent_run(factory, "old"))  # a previous session's run (the sink is idle)
    tail = factory("open", "agent1", first_seq=100)
    store.write_events(factory("open", "agent1").run(episodes=2, length=2)[:-1])  # never completed
    old = make_controller(bus, parts, "old", poll_interval_ms=3_600_000)
    with qtbot.waitSignal(old.replay_ready, timeout=5000) as ready:
        old.start()
    assert ready.args[0] == "old" and old.polls == 0
    assert_complete(ready.args[1], "old")
    unfinished = make_controller(bus, parts, "open")
    unfinished.start()
    let_polls_pass(qtbot, unfinished, parts, 3)
    assert unfinished.episodes is None and unfinished.is_polling()
    parts["sink"].start()
    with qtbot.waitSignal(unfinished.replay_ready, timeout=5000) as ready:
        publish(bus, [tail.episode(2, 0), tail.completed()])
    assert [e.episode_index for e in ready.args[1]["agent1"]] == [0, 1, 2]
    assert_read_off_the_gui_thread(parts)


def test_load_steps_returns_the_episode_steps_in_order(
        qtbot: Any, bus: RunBus, factory: Any, parts: dict[str, Any]) -> None:
    events = two_agent_run(factory)
    parts["sink"].start()
    controller = make_controller(bus, parts)
    controller.start()
    with qtbot.waitSignal(controller.replay_ready, timeout=5000):
        publish(bus, events)
    published = [e for e in events if e.agent_id == "agent1" and e.payload.get("episode_index") == 7
                 and "step_index" in e.payload]
    parts["store"].read_threads.clear()
    with qtbot.waitSignal(controller.steps_loaded, timeout=5000) as loaded:
        assert controller.load_steps("agent1", 7)
    agent_id, episode_index, steps = loaded.args
    assert (agent_id, episode_index) == ("agent1", 7)
    assert [s.step_index for s in steps] == [0, 1, 2, 3]
    assert [s.seq_id for s in steps] == [e.seq_id for e in published]
    assert [s.to_event() for s in steps] == published
    assert_read_off_the_gui_thread(parts)
    with qtbot.waitSignal(controller.steps_loaded, timeout=5000) as loaded:
        controller.load_steps("agent2", 99)  # no such episode: an empty list, still answered
    assert loaded.args == ["agent2", 99, []]


def test_stop_releases_everything_and_nothing_arrives_after_it(
        qtbot: Any, bus: RunBus, factory: Any, parts: dict[str, Any]) -> None:
    sink: DbSink = parts["sink"]
    sink.start()
    controller = make_controller(bus, parts)
    ready: list[Any] = []
    controller.replay_ready.connect(lambda *args: ready.append(args))
    controller.start()
    controller.start()  # idempotent
    assert controller.is_polling() and "RUN_COMPLETED:replay-run1" in bus.queue_sizes()
    controller.stop()
    controller.stop()  # idempotent
    assert not controller.is_polling() and not controller.poll_timer.isActive()
    assert "RUN_COMPLETED:replay-run1" not in bus.queue_sizes() and not controller.is_connected()
    controller.start()  # a no-op after stop
    assert not controller.is_polling() and "RUN_COMPLETED:replay-run1" not in bus.queue_sizes()
    with qtbot.waitSignal(sink.run_persisted, timeout=5000):
        publish(bus, two_agent_run(factory))
    QApplication.processEvents()
    assert ready == [] and controller.episodes is None
    assert controller.load_steps("agent1", 0) is False


def test_a_stopped_reader_is_reported(qtbot: Any, bus: RunBus, factory: Any, parts: dict[str, Any]) -> None:
    parts["store"].write_events(two_agent_run(factory))
    controller = make_controller(bus, parts)
    parts["reader"].stop(5)
    with qtbot.waitSignal(controller.load_failed, timeout=5000):
        controller.start()
        parts["sink"].run_persisted.emit("run1")  # as the sink would; the load cannot be submitted
    assert controller.episodes is None and controller.load_steps("agent1", 0) is False


def data_only(f: Any, episodes: range, length: int) -> list[TelemetryEvent]:
    """Steps and episodes only: no RUN_STARTED, heartbeat or RUN_COMPLETED (the existing gym_gui's producers)."""
    events: list[TelemetryEvent] = []
    for ep in episodes:
        events += [f.step(ep, i) for i in range(length)]
        events.append(f.episode(ep, length))
    return events


def test_a_run_without_lifecycle_records_is_replayable_episode_by_episode(
        qtbot: Any, bus: RunBus, factory: Any, parts: dict[str, Any]) -> None:
    sink: DbSink = parts["sink"]
    sink.start()
    controller = make_controller(bus, parts)
    progress: list[dict[str, Any]] = []
    controller.episodes_persisted.connect(lambda _run, episodes: progress.append(episodes))
    controller.start()
    assert controller.following and "EPISODE_FINALIZED:replay-run1" in bus.queue_sizes()
    f = factory("run1", "agent1")
    with qtbot.waitSignal(controller.episodes_persisted, timeout=5000) as first:
        publish(bus, data_only(f, range(1), 3))
    assert first.args[0] == "run1" and [e.episode_index for e in first.args[1]["agent1"]] == [0]
    assert controller.persisted_so_far is first.args[1]
    # Episode 1 is under way: episode 0 is replayable now, with all its steps.
    publish(bus, [f.step(1, 0), f.step(1, 1)])
    with qtbot.waitSignal(controller.steps_loaded, timeout=5000) as loaded:
        assert controller.load_steps("agent1", 0)
    assert loaded.args[:2] == ["agent1", 0] and [s.step_index for s in loaded.args[2]] == [0, 1, 2]
    with qtbot.waitSignal(controller.episodes_persisted, timeout=5000) as second:
        publish(bus, [f.step(1, 2), f.episode(1, 3)])
    assert [e.episode_index for e in second.args[1]["agent1"]] == [0, 1]
    assert controller.episodes is None and controller.is_polling()  # not finished: no replay_ready
    # The explicit finish (RunRegistry.update_run_outcome publishes this): the whole run, once.
    with qtbot.waitSignal(controller.replay_ready, timeout=5000) as ready:
        bus.publish(f.completed("completed"))
    assert [e.episode_index for e in ready.args[1]["agent1"]] == [0, 1]
    assert not controller.following and not controller.is_polling()
    assert "EPISODE_FINALIZED:replay-run1" not in bus.queue_sizes()
    assert len(progress) == 2
    assert_read_off_the_gui_thread(parts)


def test_an_episode_seen_before_it_is_committed_is_read_again_until_it_is(
        qtbot: Any, bus: RunBus, factory: Any, parts: dict[str, Any]) -> None:
    controller = make_controller(bus, parts)
    controller.start()
    f = factory("run1", None)  # a stream without agent id (the existing producers' '')
    publish(bus, data_only(f, range(2), 2))
    # The sink is not running: the episodes are on the bus, not in SQLite. The controller keeps asking.
    let_polls_pass(qtbot, controller, parts, 20)
    assert controller.persisted_so_far is None and controller.following
    with qtbot.waitSignal(controller.episodes_persisted, timeout=10000) as persisted:
        parts["sink"].start()
    qtbot.waitUntil(lambda: controller.persisted_so_far is not None
                    and len(controller.persisted_so_far[""]) == 2, timeout=10000)
    assert list(persisted.args[1]) == [""] and persisted.args[1][""][0].agent_id is None


def test_a_run_with_lifecycle_records_still_waits_for_its_completion(
        qtbot: Any, bus: RunBus, factory: Any, parts: dict[str, Any]) -> None:
    parts["sink"].start()
    controller = make_controller(bus, parts)
    progress: list[Any] = []
    controller.episodes_persisted.connect(lambda *args: progress.append(args))
    controller.start()
    f = factory("run1", "agent1")
    publish(bus, [f.started(), *f.episodes(3, 2)])
    qtbot.waitUntil(lambda: not controller.following, timeout=5000)  # its RUN_STARTED is stored
    assert "EPISODE_FINALIZED:replay-run1" not in bus.queue_sizes() and controller.is_polling()
    with qtbot.waitSignal(controller.replay_ready, timeout=5000) as ready:
        bus.publish(f.completed())
    assert [e.episode_index for e in ready.args[1]["agent1"]] == [0, 1, 2] and progress == []


def test_follow_episodes_off_and_a_stored_unfinished_run_opened_later(
        qtbot: Any, bus: RunBus, factory: Any, parts: dict[str, Any]) -> None:
    store: TelemetrySQLiteStore = parts["store"]
    store.write_events(data_only(factory("old", "agent1"), range(3), 2))  # a previous session, never finished
    later = make_controller(bus, parts, "old", poll_interval_ms=3_600_000)
    with qtbot.waitSignal(later.episodes_persisted, timeout=5000) as persisted:
        later.start()  # what is stored is replayable at once
    assert [e.episode_index for e in persisted.args[1]["agent1"]] == [0, 1, 2] and later.episodes is None
    off = make_controller(bus, parts, "old", subscriber_id="replay-old-2", follow_episodes=False)
    progress: list[Any] = []
    off.episodes_persisted.connect(lambda *args: progress.append(args))
    off.start()
    let_polls_pass(qtbot, off, parts, 3)
    assert progress == [] and not off.following and "EPISODE_FINALIZED:replay-old-2" not in bus.queue_sizes()


class SilentSink(QObject):
    """Stands for a sink without a run_persisted notice (e.g. the existing gym_gui's TelemetryDBSink)."""

    run_persisted = Signal(str)


def test_a_completion_seen_live_is_looked_up_again_until_its_row_is_committed(
        qtbot: Any, bus: RunBus, factory: Any, parts: dict[str, Any]) -> None:
    silent = SilentSink()
    controller = ReplayController(bus, parts["reader"], silent.run_persisted, "run1", poll_interval_ms=10)
    parts["controllers"].append(controller)
    controller.start()
    f = factory("run1", None)
    publish(bus, data_only(f, range(2), 2) + [f.completed("completed")])
    qtbot.waitUntil(lambda: controller.completion_seen, timeout=5000)
    let_polls_pass(qtbot, controller, parts, 20)
    assert controller.episodes is None  # nothing committed yet: still waiting, still looking
    with qtbot.waitSignal(controller.replay_ready, timeout=10000) as ready:
        parts["sink"].start()  # commits the run; its run_persisted goes nowhere near this controller
    assert [e.episode_index for e in ready.args[1][""]] == [0, 1]


def test_episodes_published_before_start_are_found_once_committed(
        qtbot: Any, bus: RunBus, factory: Any, parts: dict[str, Any]) -> None:
    publish(bus, data_only(factory("run1", "agent1"), range(2), 2))  # on the bus, not in SQLite yet
    controller = make_controller(bus, parts)
    controller.start()  # subscribed too late to see them live
    let_polls_pass(qtbot, controller, parts, 5)
    assert controller.persisted_so_far is None
    with qtbot.waitSignal(controller.episodes_persisted, timeout=10000) as persisted:
        parts["sink"].start()
    assert [e.episode_index for e in persisted.args[1]["agent1"]] == [0, 1]


def stored_episodes(store: TelemetrySQLiteStore, run_id: str) -> dict[str, Any]:
    by_agent: dict[str, Any] = {}
    for episode in store.episode_records(run_id):
        by_agent.setdefault(episode.agent_id or "", []).append(episode)
    return by_agent


def test_the_follower_reads_after_news_backs_off_and_gives_up(
        factory: Any, parts: dict[str, Any]) -> None:
    from gym_gui.live.episode_follow import EpisodeFollower, episode_index_of

    store: TelemetrySQLiteStore = parts["store"]
    f = factory("run1", "agent1")
    events = data_only(f, range(3), 1)
    ep0, ep1, ep2 = (e for e in events if "length" in e.payload)
    follower = EpisodeFollower(start_tick=0, max_backoff_ticks=4, give_up_ticks=20, start_window_ticks=5)
    assert follower.read_due(0) and follower.wanted == 1  # whatever was published before the start
    follower.read_started()
    assert not follower.read_due(0)  # one read in flight
    assert not follower.read_done({}, 0)  # nothing stored: 1, 2, 4, 4 ticks later
    assert [t for t in range(0, 12) if follower.read_due(t)][:1] == [1]
    for tick, expected_next in ((1, 3), (3, 7)):
        follower.read_started()
        follower.read_done({}, tick)
        assert not follower.read_due(expected_next - 1) and follower.read_due(expected_next)
    follower.read_started()
    follower.read_done({}, 7)
    assert follower.wanted == 0 and not follower.read_due(100)  # the start window is over: nothing was on its way
    follower.saw([ep0, ep1], 11)
    assert follower.read_due(11) and follower.wanted == 2  # news: at once
    store.write_events(events[:2])  # episode 0 committed, episode 1 not yet
    follower.read_started()
    follower.saw([ep2], 11)  # arrives while the read runs: the next read is due at once
    assert follower.read_done(stored_episodes(store, "run1"), 12)
    assert [e.episode_index for e in follower.progress["agent1"]] == [0] and follower.wanted == 2
    assert follower.read_due(12)
    store.write_events(events[2:])
    follower.read_started()
    assert follower.read_done(stored_episodes(store, "run1"), 13) and follower.wanted == 0
    assert not follower.read_done(stored_episodes(store, "run1"), 14)  # nothing new: no progress
    # An episode that never gets stored (kept aside as malformed) is given up.
    follower.saw([f.episode(9, 1)], 20)
    for tick in range(20, 60):
        if follower.read_due(tick):
            follower.read_started()
            follower.read_done(stored_episodes(store, "run1"), tick)
    assert follower.wanted == 0 and follower.given_up == 1
    def with_index(value: Any) -> TelemetryEvent:
        return TelemetryEvent(ep0.topic, "run1", "agent1", 99, ep0.ts_iso, {"episode_index": value})

    assert episode_index_of(with_index("4")) == 4  # the existing producers' str uint64
    assert episode_index_of(with_index("x")) is None and episode_index_of(with_index(None)) is None
    with pytest.raises(ValueError):
        EpisodeFollower(give_up_ticks=0)


def test_a_crashed_run_replays_with_its_partial_last_episode(
        qtbot: Any, bus: RunBus, factory: Any, parts: dict[str, Any]) -> None:
    """A worker that died mid-episode: the steps after its last EPISODE_FINALIZED are a partial episode."""
    store: TelemetrySQLiteStore = parts["store"]
    f = factory("crashed", "agent1")
    store.write_events([f.started(), *f.episodes(2, 3), *[f.step(2, i, reward=1.0) for i in range(4)],
                        f.completed("failed", exit_code=1)])
    controller = make_controller(bus, parts, "crashed")
    with qtbot.waitSignal(controller.replay_ready, timeout=5000) as ready:
        controller.start()
    episodes = ready.args[1]["agent1"]
    assert [(e.episode_index, e.length, e.outcome) for e in episodes] == [
        (0, 3, "goal"), (1, 3, "goal"), (2, 4, PARTIAL_OUTCOME)]
    assert episodes[2].total_reward == 4.0 and episodes[2].payload["partial"] is True
    with qtbot.waitSignal(controller.steps_loaded, timeout=5000) as loaded:
        assert controller.load_steps("agent1", 2)
    assert [s.step_index for s in loaded.args[2]] == [0, 1, 2, 3]


def test_an_interrupted_run_is_replayable_as_stored(
        qtbot: Any, bus: RunBus, factory: Any, parts: dict[str, Any]) -> None:
    """A run with lifecycle records whose GUI was killed (its row stays running): opened later, what is
    stored shows at once, partial episode included; the replay still waits for a completion."""
    store: TelemetrySQLiteStore = parts["store"]
    f = factory("killed", "agent1")
    store.write_events([f.started(), *f.episodes(3, 2), f.step(3, 0)])
    controller = make_controller(bus, parts, "killed")
    with qtbot.waitSignal(controller.episodes_persisted, timeout=5000) as persisted:
        controller.start()
    assert [(e.episode_index, e.outcome) for e in persisted.args[1]["agent1"]] == [
        (0, "goal"), (1, "goal"), (2, "goal"), (3, PARTIAL_OUTCOME)]
    assert controller.episodes is None and controller.is_polling() and not controller.following
