"""The Online tab's step and episode tables keep rows the cycle collector does not walk, and show
every value as before (list observations, dict actions, odd objects, compact StepPayload steps);
its charts are frozen once built and what the freeze kept is collected after the tab stops."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import pytest

from event_factory import EventFactory
from gym_gui.gc_tuning import freeze_startup_objects, freezing, stop_freezing
from gym_gui.live.live_batch import LiveBatch
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.step_payload import compact_step
from gym_gui.ui.episode_table_model import EpisodeRow, EpisodeTableModel
from gym_gui.ui.online_tab import AgentOnlineTab
from gym_gui.ui.step_table_model import StepRow, StepTableModel


def _cells(model: Any, row: int) -> list[str]:
    return [model.index(row, c).data() for c in range(model.columnCount())]


def _tracked_among(objects: list[Any]) -> int:
    for _ in range(3):  # a collection untracks the tuples of untracked values it walks, at worst one
        gc.collect()    # level of nesting each (a row, its observation, a list in the observation)
    return sum(gc.is_tracked(o) for o in objects)


class _Odd:
    def __repr__(self) -> str:
        return "<odd>"


def test_step_rows_are_untracked_and_show_the_values(qtbot: Any) -> None:
    f = EventFactory("run1", "agent1")
    model = StepTableModel(max_rows=100)
    plain = f.step(0, 3, observation=[0.25, -1.5, [1, 2]], action={"x": 1}, reward=2)
    compact = TelemetryEvent(Topic.STEP_APPENDED, "run1", "agent1", 99, plain.ts_iso,
                             compact_step({**plain.payload, "observation": 7, "action": 2}))
    odd = f.step(1, 0, observation=_Odd(), action=[{"nested": [1]}], terminated=True)
    model.append_steps([plain, compact, odd])
    assert _cells(model, 0) == [str(plain.seq_id), "0", "3", '{"x":1}', "2", "", "", "[0.25,-1.5,[1,2]]"]
    assert _cells(model, 1) == ["99", "0", "3", "2", "2", "", "", "7"]
    assert _cells(model, 2) == [str(odd.seq_id), "1", "0", '[{"nested":[1]}]', "0.5", "yes", "", '"<odd>"']
    assert model.step_at(1) == StepRow(99, 0, 3, 2, 2, False, False, 7)
    assert model.step_at(0).observation == (0.25, -1.5, (1, 2))
    rows = list(model._rows)  # noqa: SLF001 (what the model keeps is what is measured)
    assert _tracked_among(rows) == 0


def test_ten_thousand_step_rows_add_nothing_to_a_full_collection(qtbot: Any) -> None:
    f = EventFactory("run1", "agent1")
    model = StepTableModel(max_rows=10_000)
    gc.collect()
    before = len(gc.get_objects())
    model.append_steps([f.step(i // 100, i % 100, render_payload=None) for i in range(12_000)])
    gc.collect()
    grown = len(gc.get_objects()) - before
    assert model.rowCount() == 10_000 and model.appended_total == 12_000
    assert grown < 100, grown  # was 20,000 (an event and its payload dict per row)


def test_episode_rows_are_untracked_and_keep_their_api(qtbot: Any) -> None:
    f = EventFactory("run1", "agent1")
    model = EpisodeTableModel()
    events = [f.episode(i, 10 + i) for i in range(500)]
    late = f.episode(250, 3, outcome="", terminated=False, truncated=True, total_reward=None)
    model.add_events(events + [late])
    model.add_rows([EpisodeRow(600, 1.5, None, "goal")])
    assert model.rowCount() == 501
    assert model.row_at(250) == EpisodeRow(250, None, 3, "truncated")
    assert model.row_at(500) == EpisodeRow(600, 1.5, None, "goal") and model.row_of(600) == 500
    assert _cells(model, 250) == ["250", "", "3", "truncated"]
    assert _cells(model, 0) == ["0", "5", "10", "goal"]
    assert model.rows()[1] == EpisodeRow(1, 5.5, 11, "goal")
    assert _tracked_among(list(model._rows)) == 0  # noqa: SLF001


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_a_tabs_charts_are_frozen_once_built_and_collected_after_it_stops(
        qtbot: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from gym_gui.ui import online_tab

    monkeypatch.setattr(online_tab, "THAW_DELAY_MS", 10)
    f = EventFactory("run1", "agent1")
    tab = AgentOnlineTab("run1", "agent1")
    qtbot.addWidget(tab)
    tab.resize(900, 700)
    tab.show()
    qtbot.waitExposed(tab)
    try:
        freeze_startup_objects()
        gc.disable()  # no automatic collection: the cycle below is still there when the charts freeze
        startup = gc.get_freeze_count()
        garbage = _Cycle()
        ref = weakref.ref(garbage)
        del garbage  # a cycle alive (uncollected) when the charts are frozen
        events = f.episodes(3, 4)
        steps = tuple(e for e in events if e.topic is Topic.STEP_APPENDED)
        episodes = tuple(e for e in events if e.topic is Topic.EPISODE_FINALIZED)
        tab.on_batch(LiveBatch("run1", "agent1", steps=steps, episodes=episodes, latest_step=steps[-1],
                               steps_total=len(steps), episodes_total=len(episodes)))
        qtbot.waitUntil(lambda: tab.curve_panel.chart_titles() != [], timeout=5000)
        qtbot.waitUntil(lambda: gc.get_freeze_count() > startup, timeout=5000)  # the charts, frozen
        gc.enable()
        gc.collect()
        assert ref() is not None  # frozen with them: kept until the tab stops
        tab.stop()
        qtbot.waitUntil(lambda: ref() is None, timeout=5000)  # the thaw: one collection of everything
        assert freezing() and gc.get_freeze_count() > 0
    finally:
        gc.enable()
        stop_freezing()
