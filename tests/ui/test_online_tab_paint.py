"""AgentOnlineTab in the window (a chart refresh interval): a chart refresh returns with the charts'
repaint held while the refresh is spread over turns (a chart's curves per turn, so the pump's tick and
input get in between), and the charts are then painted with what the refresh drew."""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import QEvent, QObject
from qtpy.QtWidgets import QGraphicsView

from event_factory import EventFactory
from event_loop_turns import run_turns
from gym_gui.live.live_batch import LiveBatch
from gym_gui.ui.online_tab import AgentOnlineTab


class PaintCounter(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def eventFilter(self, _obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt name)
        if event.type() == QEvent.Type.Paint:
            self.count += 1
        return False


def test_a_chart_refresh_is_spread_over_turns_and_repaints_the_charts_after_them(
        qtbot: Any, factory: type[EventFactory]) -> None:
    tab = AgentOnlineTab("run1", "agent1", chart_refresh_interval_ms=50)
    qtbot.addWidget(tab)
    tab.resize(900, 700)
    tab.show()
    qtbot.waitExposed(tab)
    f = factory("run1", "agent1")
    tab.on_batch(LiveBatch("run1", "agent1", episodes=(f.episode(0, 4, total_reward=0.0),)))
    panel = tab.curve_panel
    qtbot.waitUntil(lambda: panel.refreshes >= 1 and bool(panel.findChildren(QGraphicsView)), timeout=5000)
    viewports = [view.viewport() for view in panel.findChildren(QGraphicsView)]
    qtbot.waitUntil(lambda: all(v.updatesEnabled() for v in viewports), timeout=5000)
    paints = PaintCounter()
    for viewport in viewports:
        viewport.installEventFilter(paints)
    seen: list[tuple[bool, int]] = []  # at each chart's turn of the refresh: updates enabled, paints
    chart_turn = panel._set_turn  # noqa: SLF001 (observed, not driven)

    def observed_turn() -> None:
        chart_turn()
        seen.append((all(v.updatesEnabled() for v in viewports), paints.count))

    panel._set_turn = observed_turn  # type: ignore[method-assign]  # noqa: SLF001
    drawn = panel.refreshes
    tab.on_batch(LiveBatch("run1", "agent1", episodes=(f.episode(1, 4, total_reward=1.0),)))
    assert panel.refreshes == drawn  # not inside the batch's handling
    qtbot.waitUntil(lambda: panel.refreshes > drawn, timeout=5000)
    assert len(seen) >= 3  # one turn per chart whose curves changed (return, length, success rate)
    held_paints = seen[0][1]
    assert not any(enabled for enabled, _p in seen) and all(p == held_paints for _e, p in seen)  # held meanwhile
    qtbot.waitUntil(lambda: all(v.updatesEnabled() for v in viewports) and paints.count > held_paints,
                    timeout=5000)  # ... and repainted in a turn after them
    assert panel.curve_data("return")[1].tolist() == [0.0, 1.0]
    assert panel.curve_data("length")[1].tolist() == [4.0, 4.0]
    tab.stop()
    assert all(v.updatesEnabled() for v in viewports)  # a stopped tab holds nothing back


def test_a_tab_on_its_own_draws_its_charts_at_once(qtbot: Any, factory: type[EventFactory]) -> None:
    tab = AgentOnlineTab("run1", "agent1")  # no refresh interval: the refresh and its paint as before
    qtbot.addWidget(tab)
    tab.show()
    f = factory("run1", "agent1")
    tab.on_batch(LiveBatch("run1", "agent1", episodes=(f.episode(0, 4, total_reward=2.0),)))
    views = tab.curve_panel.findChildren(QGraphicsView)
    assert views and all(view.viewport().updatesEnabled() for view in views)
    assert tab.curve_panel.curve_data("return")[1].tolist() == [2.0]
    tab.stop()


def test_a_tab_shown_again_draws_its_charts_after_the_turn_that_shows_it(
        qtbot: Any, factory: type[EventFactory]) -> None:
    from qtpy.QtWidgets import QTabWidget

    tabs = QTabWidget()
    qtbot.addWidget(tabs)
    back = AgentOnlineTab("run1", "agent1", chart_refresh_interval_ms=50)
    front = AgentOnlineTab("run0", "agent1", chart_refresh_interval_ms=50)
    tabs.addTab(back, "back")
    tabs.addTab(front, "front")
    tabs.resize(900, 700)
    tabs.show()
    qtbot.waitExposed(tabs)
    f = factory("run1", "agent1")
    back.on_batch(LiveBatch("run1", "agent1", episodes=(f.episode(0, 4, total_reward=0.0),)))
    qtbot.waitUntil(lambda: back.charts_built() and back.curve_panel.refreshes >= 1, timeout=5000)
    tabs.setCurrentWidget(front)  # the tab under test goes behind: it only counts
    for i in range(1, 4):
        back.on_batch(LiveBatch("run1", "agent1", episodes=(f.episode(i, 4, total_reward=float(i)),)))
    drawn = back.curve_panel.refreshes
    run_turns()
    qtbot.waitUntil(lambda: not back._chart_timer.isActive(), timeout=5000)  # a held refresh would be due by now
    assert back.curve_panel.refreshes == drawn  # nothing drawn while hidden
    tabs.setCurrentWidget(back)  # its show event: the tables and texts at once, the charts a turn later
    assert back.header_text("episodes_seen") == "4" and back.episode_model.rowCount() == 4
    assert back.curve_panel.refreshes == drawn
    qtbot.waitUntil(lambda: back.curve_panel.refreshes == drawn + 1, timeout=5000)
    assert back.curve_panel.curve_data("return")[1].tolist() == [0.0, 1.0, 2.0, 3.0]
    front.stop()
    back.stop()


def test_with_news_flowing_the_charts_refresh_right_after_the_batch_past_the_interval(
        qtbot: Any, factory: type[EventFactory]) -> None:
    now = [100.0]
    tab = AgentOnlineTab("run1", "agent1", chart_refresh_interval_ms=2000, clock=lambda: now[0])
    qtbot.addWidget(tab)
    tab.show()
    f = factory("run1", "agent1")
    panel = tab.curve_panel
    tab.on_batch(LiveBatch("run1", "agent1", episodes=(f.episode(0, 4, total_reward=0.0),)))
    qtbot.waitUntil(lambda: panel.curve_data("return")[1].tolist() == [0.0] and not panel.refreshing(), timeout=5000)
    drawn = panel.refreshes
    now[0] += 0.5  # within the interval: held (a fallback timer would draw it 1.55 s of real time from now)
    tab.on_batch(LiveBatch("run1", "agent1", episodes=(f.episode(1, 4, total_reward=1.0),)))
    run_turns()  # the turns right after the batch's tick: no refresh in them
    assert panel.refreshes == drawn
    now[0] += 1.6  # the interval is over: the next batch's tick is followed by the refresh at once
    tab.on_batch(LiveBatch("run1", "agent1", episodes=(f.episode(2, 4, total_reward=2.0),)))
    qtbot.waitUntil(lambda: panel.refreshes == drawn + 1, timeout=1000)  # well before the fallback
    assert panel.curve_data("return")[1].tolist() == [0.0, 1.0, 2.0]
    tab.stop()


def test_without_more_news_the_fallback_draws_the_last_of_it(qtbot: Any, factory: type[EventFactory]) -> None:
    tab = AgentOnlineTab("run1", "agent1", chart_refresh_interval_ms=100)
    qtbot.addWidget(tab)
    tab.show()
    f = factory("run1", "agent1")
    panel = tab.curve_panel
    tab.on_batch(LiveBatch("run1", "agent1", episodes=(f.episode(0, 4, total_reward=0.0),)))
    qtbot.waitUntil(lambda: panel.curve_data("return")[1].tolist() == [0.0], timeout=5000)
    tab.on_batch(LiveBatch("run1", "agent1", episodes=(f.episode(1, 4, total_reward=1.0),)))  # the last news
    qtbot.waitUntil(lambda: panel.curve_data("return")[1].tolist() == [0.0, 1.0], timeout=5000)
    tab.stop()
