"""Streams that only ever carry STEP_APPENDED and EPISODE_FINALIZED (as the existing gym_gui's producers
publish them: no RUN_STARTED, no heartbeat, no RUN_COMPLETED) are first-class in the Qt layer.

Real parts throughout: a TelemetrySQLiteStore file in tmp_path, the real DbSink thread, a real RunBus,
a publisher thread, the StoreReader, RunRegistry and ReplayController, Qt signals waited on with
pytest-qt. Only the registry's monotonic clock is a test clock, so silence is simulated, not slept.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from event_factory import EventFactory
from gym_gui.live.stall_clock import StallClock
from gym_gui.qt.app_services import AppServices
from gym_gui.qt.db_sink_thread import DbSink
from gym_gui.qt.live_controller import LiveTelemetryController
from gym_gui.qt.replay_controller import ReplayController
from gym_gui.qt.run_registry import OUTCOME_SOURCE, RunRegistry, RunStatus
from gym_gui.qt.store_reader import StoreReader
from gym_gui.ui.telemetry_window import MainWindow
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore

RUN = "trainer-run-7"
AGENT = "agent-3"


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 5000.0

    def __call__(self) -> float:
        return self.t


def publish_from_a_thread(bus: RunBus, events: list[TelemetryEvent]) -> None:
    """Publish like the existing producers do: from their own (asyncio) thread, in order."""
    thread = threading.Thread(target=lambda: [bus.publish(e) for e in events], name="producer")
    thread.start()
    thread.join(10)
    assert not thread.is_alive()


def data_only(f: EventFactory, episodes: range, length: int) -> list[TelemetryEvent]:
    """Steps and episodes only, seq_ids increasing as our proxy gives them."""
    events: list[TelemetryEvent] = []
    for ep in episodes:
        events += [f.step(ep, i) for i in range(length)]
        events.append(f.episode(ep, length))
    return events


@pytest.fixture
def parts(qtbot: Any, store: TelemetrySQLiteStore, bus: RunBus) -> Iterator[dict[str, Any]]:
    """The real durable path and a reader over ``store``; every registry a test makes is stopped."""
    sink = DbSink(store, bus, batch_size=16)
    sink.start()
    reader = StoreReader(store)
    made: list[Any] = []
    yield {"sink": sink, "reader": reader, "made": made}
    for obj in made:
        obj.stop()
        assert not obj.poll_timer.isActive()
    assert sink.stop(10) and not sink.isRunning()
    assert reader.stop(5) and reader.threads_alive() == 0


def make_registry(qtbot: Any, bus: RunBus, parts: dict[str, Any], **kwargs: Any) -> RunRegistry:
    kwargs.setdefault("poll_interval_ms", 10)
    registry = RunRegistry(bus, reader=parts["reader"], **kwargs)
    parts["made"].append(registry)
    with qtbot.waitSignal(registry.stored_runs_loaded, timeout=5000):
        registry.start()
    return registry


def wait_ticks(qtbot: Any, registry: RunRegistry, ticks: int = 3) -> None:
    """``ticks`` ticks of the registry's pump (asked for: an idle pump waits for news or a deadline)."""
    for _ in range(ticks):
        start = registry.polls
        registry.pump.wake()
        qtbot.waitUntil(lambda: registry.polls > start, timeout=5000)


def test_a_data_only_stream_runs_on_its_first_event_and_is_stalled_by_silence_never_failed(
        qtbot: Any, store: TelemetrySQLiteStore, bus: RunBus, parts: dict[str, Any]) -> None:
    clock = FakeClock()
    registry = make_registry(qtbot, bus, parts, clock=clock, idle_timeout_s=5.0)
    seen: list[tuple[str, str]] = []
    registry.status_changed.connect(lambda run, status: seen.append(("status", status)))
    registry.stream_added.connect(lambda run, agent: seen.append(("stream", agent)))
    f = EventFactory(RUN, AGENT, first_seq=1)
    with qtbot.waitSignal(registry.stream_added, timeout=5000) as added:
        publish_from_a_thread(bus, [f.step(0, 0)])
    assert added.args == [RUN, AGENT] and seen == [("status", "running"), ("stream", AGENT)]
    state = registry.state(RUN)
    assert state is not None and state.status is RunStatus.RUNNING and not state.has_lifecycle
    assert registry.stall_timeout_s(RUN) == 5.0  # no heartbeats to miss: the idle timeout
    # Steps keep it running: each one restarts the window (steps are the only sign of life here).
    for i in range(1, 4):
        clock.t += 4.0
        publish_from_a_thread(bus, [f.step(0, i)])
        wait_ticks(qtbot, registry)
        assert registry.status(RUN) is RunStatus.RUNNING
    clock.t += 4.9
    wait_ticks(qtbot, registry)
    assert registry.status(RUN) is RunStatus.RUNNING
    with qtbot.waitSignal(registry.status_changed, timeout=5000) as stalled:
        clock.t += 0.2
        registry.pump.reschedule()  # the test moved the registry's clock: the stall is due
    assert stalled.args == [RUN, "stalled"]
    clock.t += 3600.0  # an hour of silence: quiet, not failed
    wait_ticks(qtbot, registry)
    assert registry.status(RUN) is RunStatus.STALLED
    with qtbot.waitSignal(registry.status_changed, timeout=5000) as resumed:
        publish_from_a_thread(bus, [f.episode(0, 4)])
    assert resumed.args == [RUN, "running"]
    assert seen == [("status", "running"), ("stream", AGENT), ("status", "stalled"), ("status", "running")]
    # Persisted as it came, and the stored run is running: nothing waits for a RUN_COMPLETED.
    assert parts["sink"].flush(5)
    assert store.step_count(RUN, AGENT) == 4 and [e.episode_index for e in store.episode_records(RUN)] == [0]
    stored = store.run(RUN)
    assert stored is not None and stored.status == "running" and stored.started_at is None


def test_update_run_outcome_finishes_the_run_persists_it_and_a_restarted_registry_reads_it(
        qtbot: Any, db_path: Path, store: TelemetrySQLiteStore, bus: RunBus, parts: dict[str, Any]) -> None:
    registry = make_registry(qtbot, bus, parts)
    f = EventFactory(RUN, AGENT, first_seq=1)
    publish_from_a_thread(bus, data_only(f, range(2), 3))
    qtbot.waitUntil(lambda: registry.status(RUN) is RunStatus.RUNNING, timeout=5000)
    wait_ticks(qtbot, registry)
    sink: DbSink = parts["sink"]
    with pytest.raises(ValueError):
        registry.update_run_outcome(RUN, "exploded")
    errors: list[BaseException] = []

    def off_the_gui_thread() -> None:
        try:
            registry.update_run_outcome(RUN, "failed")
        except RuntimeError as exc:
            errors.append(exc)

    worker = threading.Thread(target=off_the_gui_thread)
    worker.start()
    worker.join(10)
    assert len(errors) == 1 and "registry's thread" in str(errors[0])  # a clear error, nothing published
    assert registry.status(RUN) is RunStatus.RUNNING
    with qtbot.waitSignal(sink.run_persisted, timeout=10000) as persisted:
        with qtbot.waitSignal(registry.status_changed, timeout=1) as changed:  # emitted inside the call
            evt = registry.update_run_outcome(RUN, "failed", reason="trainer reported CUDA OOM",
                                              summary={"episodes": 2}, exit_code=137)
    assert changed.args == [RUN, "failed"] and persisted.args == [RUN]
    assert evt is not None and evt.topic is Topic.RUN_COMPLETED and evt.agent_id == AGENT
    assert evt.seq_id == f.seq + 1  # the stream's next event
    assert evt.payload["source"] == OUTCOME_SOURCE
    state = registry.state(RUN)
    assert state is not None and state.status is RunStatus.FAILED and state.outcome == "failed"
    assert state.reason == "trainer reported CUDA OOM"
    assert state.summary == {"episodes": 2, "reason": "trainer reported CUDA OOM"}
    # Final: a milder outcome publishes nothing, a late step does not revive it, time does not stall it.
    assert registry.update_run_outcome(RUN, "completed") is None
    publish_from_a_thread(bus, [f.step(2, 0)])
    wait_ticks(qtbot, registry)
    assert registry.status(RUN) is RunStatus.FAILED
    stored = store.run(RUN)
    assert stored is not None and stored.status == "failed" and stored.outcome == "failed"
    assert stored.exit_code == 137 and stored.summary == {"episodes": 2, "reason": "trainer reported CUDA OOM"}

    # A new process: fresh bus, store object and reader over the same file.
    assert sink.flush(5)
    store2 = TelemetrySQLiteStore(db_path)
    reader2 = StoreReader(store2)
    registry2 = RunRegistry(RunBus(), reader=reader2, poll_interval_ms=10)
    try:
        with qtbot.waitSignal(registry2.stored_runs_loaded, timeout=5000):
            registry2.start()
        again = registry2.state(RUN)
        assert again is not None and again.status is RunStatus.FAILED and again.outcome == "failed"
        assert again.reason == "trainer reported CUDA OOM" and again.agent_ids == (AGENT,)
        assert not again.has_lifecycle
    finally:
        registry2.stop()
        assert reader2.stop(5)
        store2.close()


def test_a_stored_unfinished_data_only_run_is_stalled_after_a_restart_and_can_be_finished(
        qtbot: Any, db_path: Path, store: TelemetrySQLiteStore, bus: RunBus, parts: dict[str, Any]) -> None:
    f = EventFactory(RUN, AGENT, first_seq=10)
    publish_from_a_thread(bus, data_only(f, range(1), 3))
    assert parts["sink"].flush(5)
    # A new process over the same file: its own bus, sink, reader and registry.
    store2 = TelemetrySQLiteStore(db_path)
    bus2 = RunBus()
    sink2 = DbSink(store2, bus2, batch_size=16)
    sink2.start()
    reader2 = StoreReader(store2)
    registry = RunRegistry(bus2, reader=reader2, poll_interval_ms=10, wall_clock=lambda: 4_000_000_000.0)
    try:
        with qtbot.waitSignal(registry.stored_runs_loaded, timeout=5000):
            registry.start()
        assert registry.status(RUN) is RunStatus.STALLED  # not live here, its last news is old: quiet
        with qtbot.waitSignal(sink2.run_persisted, timeout=10000):
            evt = registry.update_run_outcome(RUN, "completed")
        assert evt is not None and evt.seq_id == f.seq + 1  # continues after the stored seq_ids
        assert registry.status(RUN) is RunStatus.COMPLETED
        stored = store2.run(RUN)
        assert stored is not None and stored.status == "completed" and stored.outcome == "completed"
    finally:
        registry.stop()
        assert sink2.stop(10)
        assert reader2.stop(5)
        store2.close()


def test_episode_one_replays_while_episode_two_runs_and_the_finish_completes_the_replay(
        qtbot: Any, store: TelemetrySQLiteStore, bus: RunBus, parts: dict[str, Any]) -> None:
    registry = make_registry(qtbot, bus, parts)
    replay = ReplayController(bus, parts["reader"], parts["sink"].run_persisted, RUN, poll_interval_ms=10)
    parts["made"].append(replay)
    replay.start()
    f = EventFactory(RUN, AGENT, first_seq=1)
    with qtbot.waitSignal(replay.episodes_persisted, timeout=10000) as persisted:
        publish_from_a_thread(bus, data_only(f, range(1), 5) + [f.step(1, i) for i in range(3)])
    assert [e.episode_index for e in persisted.args[1][AGENT]] == [0]
    assert registry.status(RUN) is RunStatus.RUNNING  # episode 1 is still under way
    with qtbot.waitSignal(replay.steps_loaded, timeout=5000) as loaded:
        assert replay.load_steps(AGENT, 0)
    assert [s.step_index for s in loaded.args[2]] == list(range(5))
    assert [s.to_event() for s in loaded.args[2]] == data_only(EventFactory(RUN, AGENT, first_seq=1), range(1), 5)[:5]
    with qtbot.waitSignal(replay.episodes_persisted, timeout=10000) as more:
        publish_from_a_thread(bus, [f.step(1, 3), f.episode(1, 4)])
    assert [e.episode_index for e in more.args[1][AGENT]] == [0, 1] and replay.episodes is None
    # Nothing waits for a RUN_COMPLETED: the app says the run is over.
    with qtbot.waitSignal(replay.replay_ready, timeout=10000) as ready:
        registry.update_run_outcome(RUN, "completed")
    assert [e.episode_index for e in ready.args[1][AGENT]] == [0, 1]
    assert registry.status(RUN) is RunStatus.COMPLETED and not replay.is_polling()


def test_the_live_tab_of_a_data_only_stream_uses_the_idle_timeout(
        qtbot: Any, bus: RunBus) -> None:
    clock = FakeClock()
    live = LiveTelemetryController(bus, RUN, AGENT, poll_interval_ms=10, heartbeat_interval_s=1.0,
                                   idle_timeout_s=8.0, clock=clock)
    stalls: list[bool] = []
    live.stall_changed.connect(stalls.append)
    live.start()
    try:
        f = EventFactory(RUN, AGENT, first_seq=1)
        with qtbot.waitSignal(live.batch_ready, timeout=5000):
            publish_from_a_thread(bus, [f.step(0, 0)])
        assert live.stall_timeout_s() == 8.0
        clock.t += 7.9
        for _ in range(3):  # ticks asked for (the pump is idle until the stall deadline)
            start = live.ticks
            live.pump.wake()
            qtbot.waitUntil(lambda: live.ticks > start, timeout=5000)
        assert stalls == [] and not live.is_stalled()
        with qtbot.waitSignal(live.stall_changed, timeout=5000):
            clock.t += 0.2
            live.pump.reschedule()  # the test moved the pump's clock: the deadline is due
        assert stalls == [True]
        with qtbot.waitSignal(live.stall_changed, timeout=5000):
            publish_from_a_thread(bus, [f.step(0, 1)])
        assert stalls == [True, False]
    finally:
        live.stop()


def test_the_stall_clock_idle_rule() -> None:
    clock = StallClock(1.0, 3, idle_timeout_s=10.0)
    assert clock.timeout_s == 10.0 and not clock.has_lifecycle
    clock.note_event(0.0)
    assert not clock.check(9.5) and clock.check(10.0) and clock.stalled
    assert clock.note_event(11.0)  # ends the stall
    clock.note_lifecycle()  # RUN_STARTED or a heartbeat: the heartbeat rule is back
    assert clock.timeout_s == 3.0 and clock.check(14.0)
    assert StallClock(2.0, 3).timeout_s == 6.0  # no idle timeout: the default interval for all
    announced = StallClock(1.0, 3, idle_timeout_s=10.0)
    announced.announce(0.5)
    assert announced.timeout_s == 1.5
    with pytest.raises(ValueError):
        StallClock(1.0, 3, idle_timeout_s=0)


def test_the_window_opens_the_replay_of_a_data_only_stream_with_its_first_stored_episode(
        qtbot: Any, db_path: Path) -> None:
    """The existing producers publish on the app's bus; the window is not their launcher."""
    services = AppServices(db_path, bus=RunBus())
    window = MainWindow(services)
    qtbot.addWidget(window)
    services.start()
    try:
        f = EventFactory(RUN, AGENT, first_seq=1)
        with qtbot.waitSignal(window.online_opened, timeout=10000) as online:
            publish_from_a_thread(services.bus, [f.step(0, i) for i in range(3)])
        assert online.args == [RUN, AGENT]
        assert window.replay_tab(RUN, AGENT) is None  # nothing stored to replay yet
        with qtbot.waitSignal(window.replay_opened, timeout=10000) as opened:
            publish_from_a_thread(services.bus, [f.episode(0, 3), f.step(1, 0)])
        assert opened.args == [RUN, AGENT]
        tab = window.replay_tab(RUN, AGENT)
        assert tab is not None and not tab.run_finished and tab.episode_count() == 1
        assert "Run #1 · agent-3 · Replay" in window.tab_titles() and "still going" in tab.progress_text()
        assert services.registry.status(RUN) is RunStatus.RUNNING
        publish_from_a_thread(services.bus, [f.step(1, 1), f.episode(1, 2)])
        qtbot.waitUntil(lambda: tab.episode_count() == 2, timeout=10000)
        with qtbot.waitSignal(services.sink.run_persisted, timeout=10000):
            services.registry.update_run_outcome(RUN, "cancelled", reason="stopped from the trainer")
        qtbot.waitUntil(lambda: tab.run_finished, timeout=10000)
        assert tab.progress_text() == "2 episodes, the whole run (cancelled)."
        assert window.runs_view.status_of(RUN) == "cancelled"
        assert window.tab_titles().count("Run #1 · agent-3 · Replay") == 1
    finally:
        assert window.shutdown(30)
        assert window.timers_active() == []


def hub_event(topic: Topic, seq_id: int, payload: dict[str, Any], *, agent_id: str = "",
              ts_iso: str = "2025-01-01T00:00:00.123456Z") -> TelemetryEvent:
    """An event as the existing GUI hub builds it: keywords, '' agent, RFC 3339 'Z' time, str uint64s."""
    return TelemetryEvent(topic=topic, run_id=RUN, agent_id=agent_id, seq_id=seq_id, ts_iso=ts_iso, payload=payload)


def test_the_existing_hubs_shapes_empty_agent_and_control_notices(
        qtbot: Any, store: TelemetrySQLiteStore, bus: RunBus, parts: dict[str, Any]) -> None:
    clock = FakeClock()
    registry = make_registry(qtbot, bus, parts, clock=clock, idle_timeout_s=5.0)
    announced: list[tuple[str, str]] = []
    registry.stream_added.connect(lambda run, agent: announced.append((run, agent)))
    steps = [hub_event(Topic.STEP_APPENDED, 100 + i, {"run_id": RUN, "agent_id": "", "episode_index": "0",
                                                      "step_index": str(i), "reward": 0.0, "terminated": False,
                                                      "truncated": False}) for i in range(3)]
    control = hub_event(Topic.CONTROL, 102, {"state": "STARVED", "stream_type": "step", "agent_id": ""})
    with qtbot.waitSignal(registry.status_changed, timeout=5000) as running:
        publish_from_a_thread(bus, [steps[0], control, *steps[1:]])
    assert running.args == [RUN, "running"]
    wait_ticks(qtbot, registry)
    state = registry.state(RUN)
    assert steps[0].agent_id is None  # '' is "no agent" on the bus
    assert state is not None and state.anonymous_stream and state.agent_ids == () and announced == []
    clock.t += 5.0
    registry.pump.reschedule()
    qtbot.waitUntil(lambda: registry.status(RUN) is RunStatus.STALLED, timeout=5000)
    # A credit notice is no sign of the run's progress: it stays stalled.
    publish_from_a_thread(bus, [hub_event(Topic.CONTROL, 103, {"state": "RESUMED", "stream_type": "step"})])
    wait_ticks(qtbot, registry)
    assert registry.status(RUN) is RunStatus.STALLED
    with qtbot.waitSignal(parts["sink"].run_persisted, timeout=10000):
        evt = registry.update_run_outcome(RUN, "completed", reason="trainer FSM: terminated")
    assert evt is not None and evt.agent_id is None and evt.seq_id == 103  # after the highest seq_id seen
    assert registry.status(RUN) is RunStatus.COMPLETED
    stored = store.run(RUN)
    assert stored is not None and stored.status == "completed" and stored.summary == {"reason": "trainer FSM: terminated"}


def test_the_window_replays_a_run_whose_only_stream_has_no_agent_id(qtbot: Any, db_path: Path) -> None:
    services = AppServices(db_path, bus=RunBus())
    window = MainWindow(services)
    qtbot.addWidget(window)
    services.start()
    try:
        f = EventFactory(RUN, None, first_seq=1)  # the hub's '' agent is None on the bus
        with qtbot.waitSignal(window.replay_opened, timeout=10000) as opened:
            publish_from_a_thread(services.bus, data_only(f, range(1), 3) + [f.step(1, 0)])
        assert opened.args == [RUN, ""]
        tab = window.replay_tab(RUN, "")
        assert tab is not None and tab.episode_count() == 1 and not tab.run_finished
        with qtbot.waitSignal(services.sink.run_persisted, timeout=10000):
            services.registry.update_run_outcome(RUN, "completed")
        qtbot.waitUntil(lambda: tab.run_finished, timeout=10000)
        assert window.runs_view.status_of(RUN) == "completed" and window.online_tab(RUN, "") is None
    finally:
        assert window.shutdown(30)
        assert window.timers_active() == []


def aged(events: list[TelemetryEvent]) -> list[TelemetryEvent]:
    """The same events, written years ago."""
    return [TelemetryEvent(e.topic, e.run_id, e.agent_id, e.seq_id, f"2020-01-01T00:00:{i % 60:02d}+00:00", e.payload)
            for i, e in enumerate(events)]


def test_a_stored_run_that_never_finished_opens_no_tab_until_it_speaks_again(
        qtbot: Any, db_path: Path, store: TelemetrySQLiteStore, bus: RunBus, parts: dict[str, Any]) -> None:
    f = EventFactory(RUN, AGENT, first_seq=1)
    publish_from_a_thread(bus, aged(data_only(f, range(2), 2)))  # a previous session; nobody finished it
    assert parts["sink"].flush(5)
    services = AppServices(db_path, bus=RunBus())
    window = MainWindow(services)
    qtbot.addWidget(window)
    try:
        with qtbot.waitSignal(services.registry.stored_runs_loaded, timeout=10000):
            services.start()
        qtbot.waitUntil(lambda: window.runs_view.status_of(RUN) == "stalled", timeout=10000)
        wait_ticks(qtbot, services.registry)
        assert window.tab_titles() == ["Runs"]  # quiet history: no tabs of its own
        with qtbot.waitSignal(window.online_opened, timeout=10000) as opened:
            publish_from_a_thread(services.bus, [f.step(2, 0)])  # it speaks again
        assert opened.args == [RUN, AGENT] and services.registry.status(RUN) is RunStatus.RUNNING
        controller = window.online_controller(RUN, AGENT)
        assert controller is not None
        qtbot.waitUntil(lambda: controller.stats()["steps_total"] == 5, timeout=10000)  # history read back
    finally:
        assert window.shutdown(30)
        assert window.timers_active() == []
