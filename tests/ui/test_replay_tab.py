"""AgentReplayTab with records read back from a real store: episode list, step requests, scrubber,
play timer (runs, stops at the end, stops on stop() and close)."""

from __future__ import annotations

from typing import Any

import pytest

from event_factory import EventFactory
from gym_gui.telemetry.sqlite_records import EpisodeRecord, StepRecord
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore
from gym_gui.ui.replay_tab import AgentReplayTab
from ui_payloads import cartpole_payload, toytext_run


class Loader:
    """Stands where ReplayController is: records each request and answers it from the store."""

    def __init__(self, store: TelemetrySQLiteStore, answer: bool = True) -> None:
        self.store = store
        self.answer = answer
        self.requests: list[int] = []
        self.tab: AgentReplayTab | None = None

    def __call__(self, episode_index: int) -> None:
        self.requests.append(episode_index)
        if self.answer and self.tab is not None:
            self.tab.set_steps(episode_index, self.steps(episode_index))

    def steps(self, episode_index: int) -> list[StepRecord]:
        return self.store.steps_for_episode("run1", "agent1", episode_index)


@pytest.fixture
def stored_run(store: TelemetrySQLiteStore, factory: type[EventFactory]) -> list[EpisodeRecord]:
    store.write_events(toytext_run(factory("run1", "agent1"), episodes=5, max_steps=9, seed=1))
    episodes = store.episode_records("run1", "agent1")
    assert len(episodes) == 5
    return episodes


def make_tab(qtbot: Any, loader: Loader, **kwargs: Any) -> AgentReplayTab:
    tab = AgentReplayTab("run1", "agent1", loader, **kwargs)
    loader.tab = tab
    qtbot.addWidget(tab)
    tab.resize(900, 600)
    return tab


def test_episodes_are_listed_with_return_length_and_outcome(qtbot: Any, store: TelemetrySQLiteStore,
                                                           stored_run: list[EpisodeRecord]) -> None:
    tab = make_tab(qtbot, Loader(store))
    tab.set_episodes(list(reversed(stored_run)))
    model = tab.episode_model
    assert model.rowCount() == 5 == tab.episode_count()
    for row, record in enumerate(stored_run):
        assert [model.index(row, c).data() for c in range(4)] == [
            str(record.episode_index), f"{record.total_reward:.6g}", str(record.length), record.outcome]
    # A fresh tab opens on the first episode (no "No frame yet" to click away).
    first = stored_run[0]
    assert tab.title() == "Agent-agent1-Replay" and tab.episode_index == first.episode_index
    assert tab.step_count == first.length and tab.slider.isEnabled() and tab.render_view.kind == "grid"


def test_selecting_an_episode_requests_its_steps_and_loads_the_scrubber(
        qtbot: Any, store: TelemetrySQLiteStore, stored_run: list[EpisodeRecord]) -> None:
    loader = Loader(store)
    tab = make_tab(qtbot, loader)
    tab.set_episodes(stored_run)
    assert loader.requests == [0]
    loader.requests.clear()
    target = max(stored_run[1:], key=lambda e: e.length or 0)
    tab.episode_view.selectRow(tab.episode_model.row_of(target.episode_index))
    assert loader.requests == [target.episode_index]
    steps = loader.steps(target.episode_index)
    assert tab.episode_index == target.episode_index and tab.step_count == len(steps) == target.length
    assert tab.slider.maximum() == len(steps) - 1 and tab.position == 0 and tab.slider.isEnabled()
    # The label counts as the details do: the step's own index, of the episode's last one.
    assert tab.step_label.text() == f"step 0 / {steps[-1].step_index}" and "step 0 " in tab.details.text()
    # The scrubber moves through the frames: the grid shows each step's own agent position.
    for pos in range(len(steps)):
        tab.slider.setValue(pos)
        step = steps[pos]
        assert tab.position == pos and tab.current_step() == step
        state = tab.render_view.grid_view.grid_state()
        assert state is not None and list(state.agent) == step.render_payload["agent"]
        assert f"action: {step.action}" in tab.details.text()
        assert f"reward: {step.reward}" in tab.details.text()
        assert f"observation: {step.observation}" in tab.details.text()
        assert f"terminated: {'true' if step.terminated else 'false'}" in tab.details.text()
    tab.select_episode(target.episode_index)  # already loaded: no new request
    assert loader.requests == [target.episode_index]
    assert tab.select_episode(99) is False


def test_play_steps_through_the_frames_and_stops_at_the_end(qtbot: Any, store: TelemetrySQLiteStore,
                                                           stored_run: list[EpisodeRecord]) -> None:
    loader = Loader(store)
    tab = make_tab(qtbot, loader, play_interval_ms=5)
    tab.set_episodes(stored_run)
    target = max(stored_run, key=lambda e: e.length or 0)
    assert tab.select_episode(target.episode_index)
    positions: list[int] = []
    tab.slider.valueChanged.connect(positions.append)
    tab.play_button.click()
    assert tab.is_playing() and tab.play_button.text() == "Pause"
    qtbot.waitUntil(lambda: not tab.is_playing(), timeout=5000)
    assert tab.position == tab.step_count - 1 and positions == list(range(1, tab.step_count))
    assert not tab.play_timer.isActive() and tab.play_button.text() == "Play" and not tab.play_button.isChecked()
    tab.play()  # at the end: plays again from the start
    assert tab.position == 0 and tab.is_playing()
    tab.stop()
    assert not tab.play_timer.isActive()
    tab.stop()  # idempotent
    stopped_at = tab.position
    assert stopped_at < tab.step_count - 1


def test_close_and_a_new_selection_stop_playing(qtbot: Any, store: TelemetrySQLiteStore,
                                               stored_run: list[EpisodeRecord]) -> None:
    loader = Loader(store, answer=False)
    tab = make_tab(qtbot, loader, play_interval_ms=1000)
    tab.show()
    tab.set_episodes(stored_run)
    tab.select_episode(0)
    tab.set_steps(0, loader.steps(0))
    tab.play()
    assert tab.is_playing()
    tab.select_episode(1)  # the steps of episode 1 are still loading
    assert not tab.is_playing() and loader.requests == [0, 1]
    tab.set_steps(0, loader.steps(0))  # a late answer for the old episode is ignored
    assert tab.episode_index == 0 and "loading" in tab.episode_label.text()
    tab.set_steps(1, loader.steps(1))
    assert tab.episode_index == 1 and tab.step_count == len(loader.steps(1))
    tab.play()
    tab.close()
    assert not tab.play_timer.isActive()


def test_set_episodes_again_keeps_the_selection_without_a_new_request(
        qtbot: Any, store: TelemetrySQLiteStore, stored_run: list[EpisodeRecord]) -> None:
    loader = Loader(store)
    tab = make_tab(qtbot, loader)
    tab.set_episodes(stored_run[:3])
    tab.select_episode(2)
    tab.set_episodes(stored_run)
    assert loader.requests == [0, 2] and tab.episode_index == 2
    assert tab.episode_view.currentIndex().row() == tab.episode_model.row_of(2)


def test_a_step_without_a_frame_shows_the_newest_frame_before_it(qtbot: Any, store: TelemetrySQLiteStore,
                                                                 factory: type[EventFactory]) -> None:
    f = factory("run1", "agent1")
    frames = {0: cartpole_payload(0), 3: cartpole_payload(2)}  # (frames 0 and 1 of CartPole are the same image)
    store.write_events([f.step(0, i, observation=[0.0, 0.0, 0.0, float(i)], render_payload=frames.get(i))
                        for i in range(5)] + [f.episode(0, 5, outcome="failure")])
    loader = Loader(store)
    tab = make_tab(qtbot, loader)
    tab.set_episodes(store.episode_records("run1", "agent1"))
    tab.select_episode(0)
    video = tab.render_view.video_view
    assert tab.render_view.kind == "rgb" and video.has_frame()
    tab.set_position(2)
    assert video.image() is not None and "frame of step 1" in tab.details.text()
    first = video.image()
    tab.set_position(4)
    assert video.image() is not first and "frame of step 4" in tab.details.text()
    tab.set_position(3)
    assert "this step has none" not in tab.details.text()


def test_an_episode_without_steps_and_a_failing_loader_do_not_break_the_tab(
        qtbot: Any, store: TelemetrySQLiteStore, stored_run: list[EpisodeRecord]) -> None:
    def failing(_episode_index: int) -> None:
        raise RuntimeError("reader gone")

    tab = AgentReplayTab("run1", "agent1", failing)
    qtbot.addWidget(tab)
    tab.set_episodes(stored_run)
    assert tab.select_episode(1)  # the exception is logged, not raised
    tab.set_steps(1, [])
    assert tab.step_count == 0 and not tab.slider.isEnabled() and "no stored steps" in tab.details.text()
    tab.play()
    assert not tab.is_playing()
    assert tab.render_view.placeholder_text() == "No frame yet"


def test_a_run_still_going_lists_what_is_stored_so_far_and_says_so(
        qtbot: Any, store: TelemetrySQLiteStore, stored_run: list[EpisodeRecord]) -> None:
    loader = Loader(store)
    tab = make_tab(qtbot, loader)
    assert tab.run_finished and tab.progress_text() == "0 episodes, the whole run."
    tab.set_run_finished(False)
    tab.set_episodes(stored_run[:2])
    assert not tab.run_finished and tab.episode_count() == 2
    assert tab.progress_text().startswith("The run is still going: 2 episodes stored so far")
    assert tab.select_episode(1) and loader.requests == [0, 1] and tab.episode_index == 1
    # More episodes are stored: the list grows, the episode being replayed stays selected and loaded.
    tab.set_episodes(stored_run[:4])
    assert tab.episode_count() == 4 and tab.episode_index == 1 and loader.requests == [0, 1]
    assert "4 episodes stored so far" in tab.progress_text()
    tab.set_episodes(stored_run)
    tab.set_run_finished(True, "completed")
    assert tab.progress_text() == "5 episodes, the whole run (completed)." and tab.episode_index == 1


def test_a_partial_episode_replays_with_its_rewards_along_the_scrubber(
        qtbot: Any, store: TelemetrySQLiteStore, factory: type[EventFactory]) -> None:
    """A crashed worker's last episode (steps, no EPISODE_FINALIZED) is listed as partial and replays;
    the reward strip shows each step's reward and its cursor follows the scrubber."""
    from gym_gui.telemetry.curve_reads import PARTIAL_OUTCOME, partial_episodes_from_store

    f = factory("run1", "agent1")
    store.write_events([*f.episodes(2, 3), *[f.step(2, i, reward=float(i)) for i in range(4)]])
    listed = store.episode_records("run1", "agent1") + partial_episodes_from_store(store, "run1")
    loader = Loader(store)
    tab = make_tab(qtbot, loader)
    tab.select_episode(2)  # asked for before it is listed (e.g. from the Runs tab)
    tab.set_episodes(listed)
    model = tab.episode_model
    assert model.index(2, 3).data() == PARTIAL_OUTCOME and loader.requests == [2]
    assert tab.episode_index == 2 and "partial" in tab.episode_label.text() and tab.step_count == 4
    assert tab.reward_strip.rewards().tolist() == [0.0, 1.0, 2.0, 3.0]
    tab.set_position(3)
    assert tab.reward_strip.cursor_position() == 3 and tab.step_label.text() == "step 3 / 3"
    tab.reward_strip.cursor.setValue(1)  # the person drags the cursor
    tab.reward_strip.cursor.sigPositionChangeFinished.emit(tab.reward_strip.cursor)
    assert tab.position == 1
    # The run's curves hold the two finished episodes, not the partial one (made on the tab's worker).
    qtbot.waitUntil(lambda: tab.curve_panel.curve_data("return")[0].tolist() == [0, 1], timeout=5000)


def test_the_run_curves_are_read_off_the_gui_thread_with_a_reader(
        qtbot: Any, store: TelemetrySQLiteStore, stored_run: list[EpisodeRecord]) -> None:
    from gym_gui.qt.store_reader import StoreReader

    reader = StoreReader(store)
    try:
        tab = AgentReplayTab("run1", "agent1", Loader(store), reader=reader)
        qtbot.addWidget(tab)
        tab.set_episodes(stored_run)
        qtbot.waitUntil(lambda: tab.curve_panel.data.episode_count == 5, timeout=5000)
        assert tab.curve_panel.curve_data("return")[1].tolist() == [e.total_reward for e in stored_run]
    finally:
        assert reader.stop(5)
