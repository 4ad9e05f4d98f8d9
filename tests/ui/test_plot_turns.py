"""The plots' deferred work runs one piece per event-loop turn (``gui_turns``): a timer that came due
while a piece ran goes before the next piece, a piece asked for from a paint waits until that paint
is done, pieces are asked for once per kind and owner, and a cancelled or deleted owner's pieces
never run; a chart's range step is painted once. Real Qt objects and widgets under pytest-qt."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from qtpy import sip
from qtpy.QtCore import QEvent, QObject, QTimer
from qtpy.QtWidgets import QApplication

from gym_gui.ui.plots.curve_chart import CurveChart
from gym_gui.ui.plots.gui_turns import GuiTurns, gui_turns
from gym_gui.ui.plots.tick_axis import chart_axes


def zero_timer(fn: Any) -> QTimer:
    timer = QTimer()
    timer.setSingleShot(True)
    timer.setInterval(0)
    timer.timeout.connect(fn)
    return timer


def test_a_timer_that_came_due_during_a_piece_runs_before_the_next_piece(qtbot: Any) -> None:
    turns, owner, order = GuiTurns(), QObject(), []
    marker = zero_timer(lambda: order.append("timer"))

    def first() -> None:
        order.append("first")
        marker.start()  # due from now on, as a heartbeat that came due meanwhile

    assert turns.request(owner, "a", first)
    assert turns.request(owner, "b", lambda: order.append("second"))
    assert order == []  # nothing runs inside the request
    qtbot.waitUntil(lambda: len(order) == 3, timeout=5000)
    assert order == ["first", "timer", "second"] and turns.turns_run == 2


def test_a_piece_is_asked_for_once_per_kind_and_owner_and_cancel_drops_it(qtbot: Any) -> None:
    turns, one, other, ran = GuiTurns(), QObject(), QObject(), []
    assert turns.request(one, "follow", lambda: ran.append("one"))
    assert not turns.request(one, "follow", lambda: ran.append("one again"))  # waits already
    assert turns.request(other, "follow", lambda: ran.append("other"))
    assert turns.request(one, "build", lambda: ran.append("build"))
    assert turns.pending(one) and turns.pending(one, "build") and not turns.pending(other, "build")
    turns.cancel(one, "build")
    assert not turns.pending(one, "build") and turns.pending(one, "follow")
    qtbot.waitUntil(lambda: not turns.pending(one) and not turns.pending(other), timeout=5000)
    assert ran == ["one", "other"]  # first in, first out; the cancelled one never ran
    gone, ran_gone = QObject(), []
    assert turns.request(gone, "x", lambda: ran_gone.append(True))
    turns.request(one, "after", lambda: ran.append("after"))
    sip.delete(gone)  # its owner deleted before its turn
    qtbot.waitUntil(lambda: ran[-1:] == ["after"], timeout=5000)
    assert ran_gone == []


def test_a_piece_asked_for_from_a_posted_event_starts_after_the_posted_events(qtbot: Any) -> None:
    """Asked for outside a turn, the timer starts through a posted call: a timer that came due in
    the same stretch (after the request) still goes first."""
    turns, owner, order = gui_turns(), QObject(), []
    marker = zero_timer(lambda: order.append("timer"))

    class Poster(QObject):
        def event(self, event: QEvent) -> bool:
            if event.type() == QEvent.Type.User:
                turns.request(owner, "piece", lambda: order.append("piece"))  # e.g. from a paint
                marker.start()  # came due after the request, in the same stretch
                return True
            return super().event(event)

    poster = Poster()
    QApplication.postEvent(poster, QEvent(QEvent.Type.User))
    qtbot.waitUntil(lambda: len(order) == 2, timeout=5000)
    assert order == ["timer", "piece"]


def test_a_range_step_or_a_zoom_is_painted_once(qtbot: Any) -> None:
    """pyqtgraph applies a new range to the items at the start of the next paint, which marks them
    changed during that paint and paints them again right after; a chart applies it at once."""
    widget = pg.GraphicsLayoutWidget()
    qtbot.addWidget(widget)
    widget.resize(500, 300)
    plot = pg.PlotItem(axisItems=chart_axes())
    widget.addItem(plot)
    chart = CurveChart("return", plot, "Episode return")
    chart.view_box.disableAutoRange()
    curve = chart.add_curve("return")
    widget.show()
    qtbot.waitExposed(widget)
    paints = []

    class Count(QObject):
        def eventFilter(self, _obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt name)
            if event.type() == QEvent.Type.Paint:
                paints.append(True)
            return False

    counter = Count()
    widget.viewport().installEventFilter(counter)

    def settle() -> None:
        for _ in range(20):  # the posted chain of a change: scene processing, paint, a second one
            QApplication.processEvents()

    settle()
    for end in (100, 1000, 10_000):
        x = np.arange(end, dtype=float)
        curve.setData(x, np.sin(x))
        settle()  # the new curve painted
        del paints[:]
        assert chart.follow()
        settle()
        lo, hi = chart.view_box.viewRange()[0]
        assert lo < 0 and hi >= end - 1
        if end > 100:  # (the first step also widens the axes for longer tick texts: a layout, painted too)
            assert len(paints) == 1  # pyqtgraph's deferred transform: 2
    for lo, hi in ((1000, 2000), (1500, 1600)):  # a person's zoom, as the wheel sets it
        del paints[:]
        chart.view_box.setXRange(lo, hi, padding=0)
        settle()
        assert len(paints) == 1 and chart.view_box.viewRange()[0] == [lo, hi]
    widget.viewport().removeEventFilter(counter)


def test_a_new_series_chart_is_built_in_two_turns_and_never_painted_half_built(qtbot: Any) -> None:
    from gym_gui.live.curve_points import EpisodePoint
    from gym_gui.live.curves import CurveData
    from gym_gui.ui.plots.curve_panel import CurvePanel

    panel = CurvePanel(CurveData())
    qtbot.addWidget(panel)
    panel.resize(900, 600)
    panel.show()
    qtbot.waitExposed(panel)
    qtbot.waitUntil(lambda: not panel.ranges_pending(), timeout=5000)
    turns, seen, half_built_painted = gui_turns(), {}, []

    def on_paint() -> None:
        plot = panel.plot_item("meta:loss")
        if plot is not None and plot.opacity() > 0 and len(panel.curve_data("meta:loss")[0]) == 0:
            half_built_painted.append(turns.turns_run)

    def after_turn() -> None:
        plot = panel.plot_item("meta:loss")
        if plot is not None and "built" not in seen:
            seen["built"] = turns.turns_run
            seen["empty"] = len(panel.curve_data("meta:loss")[0]) == 0
        if len(panel.curve_data("meta:loss")[0]) and "filled" not in seen:
            seen["filled"] = turns.turns_run

    panel.graphics.scene().sigPrepareForPaint.connect(on_paint)
    probe = QTimer()  # a 0 ms timer runs between two turns of the queue (module doc of gui_turns)
    probe.setInterval(0)
    probe.timeout.connect(after_turn)
    probe.start()
    panel.data.add_points([EpisodePoint(i, float(i), 5.0, 1.0, 10.0 + i, {"loss": 1.0 / (i + 1)}) for i in range(4)])
    panel.refresh()
    assert panel.plot_item("meta:loss") is None  # never inside the refresh
    qtbot.waitUntil(lambda: "filled" in seen and not panel.ranges_pending(), timeout=5000)
    probe.stop()
    assert seen["empty"] and seen["filled"] > seen["built"]  # the chart in one turn, its curve in a later one
    assert half_built_painted == []
    assert panel.curve_data("meta:loss")[1].tolist() == [1.0, 0.5, 1 / 3, 0.25]
    assert panel.plot_item("meta:loss").opacity() == 1.0
    panel.stop(5)


def test_a_panel_stopped_between_a_charts_two_turns_still_draws_its_curve(qtbot: Any) -> None:
    from gym_gui.live.curve_points import EpisodePoint
    from gym_gui.live.curves import CurveData
    from gym_gui.ui.plots.curve_panel import CurvePanel

    panel = CurvePanel(CurveData())
    qtbot.addWidget(panel)
    panel.data.add_points([EpisodePoint(i, float(i), 5.0, 1.0, 10.0 + i, {"loss": 2.0}) for i in range(3)])
    ran: list[int] = []
    panel._fill_chart = lambda: ran.append(1)  # type: ignore[method-assign]  # its curve's turn does nothing
    panel.refresh()
    qtbot.waitUntil(lambda: panel.plot_item("meta:loss") is not None and ran == [1], timeout=5000)
    assert len(panel.curve_data("meta:loss")[0]) == 0  # built, its curve not added
    panel.stop(5)
    panel.refresh()
    assert panel.curve_data("meta:loss")[1].tolist() == [2.0, 2.0, 2.0]


def test_following_a_pump_a_piece_runs_only_where_the_frame_before_its_next_tick_holds_it(qtbot: Any) -> None:
    from event_loop_turns import run_turns
    from gym_gui.qt.gui_pump import GuiPump

    now = [100.0]
    pump = GuiPump(clock=lambda: now[0])
    turns, owner, ran = GuiTurns(), QObject(), []
    pump.start()  # its last tick: now; the next may come 16 ms later
    turns.follow_pump(pump)
    try:
        now[0] = 100.014  # 2 ms left before the next tick
        assert turns.request(owner, "piece", lambda: ran.append("piece"), room_ms=4.0)
        run_turns()
        assert ran == [] and turns.turns_waited >= 1  # it would run into the tick: it waits for it
        pump.tick_now()  # the tick; the piece goes at the turn after it
        qtbot.waitUntil(lambda: ran == ["piece"], timeout=5000)
        now[0] = 100.016  # right after that tick (at 100.014): 14 ms left
        assert turns.request(owner, "small", lambda: ran.append("small"), room_ms=4.0)
        qtbot.waitUntil(lambda: ran[-1:] == ["small"], timeout=5000)
        now[0] = 100.025  # 5 ms left: a piece asking for 20 ms waits for the early part of a frame (10 ms) ...
        assert turns.request(owner, "big", lambda: ran.append("big"), room_ms=20.0)
        run_turns()
        assert ran[-1:] == ["small"]
        now[0] = 101.0  # ... and runs at once when the pump is idle
        qtbot.waitUntil(lambda: ran[-1:] == ["big"], timeout=5000)
        assert turns.expected_cost_ms("big") is not None
    finally:
        turns.follow_pump(None)
        pump.stop()
    gone = GuiPump()
    turns.follow_pump(gone)
    sip.delete(gone)  # a followed pump deleted: the pieces run at each turn again
    turns.request(owner, "after", lambda: ran.append("after"))
    qtbot.waitUntil(lambda: ran[-1:] == ["after"], timeout=5000)


def test_a_refresh_in_turns_hands_each_changed_chart_its_bins_in_a_turn_of_its_own(qtbot: Any) -> None:
    from gym_gui.live.curve_points import EpisodePoint
    from gym_gui.live.curves import CurveData
    from gym_gui.ui.plots.curve_panel import CurvePanel

    panel = CurvePanel(CurveData())
    qtbot.addWidget(panel)
    panel.resize(900, 600)
    panel.show()
    qtbot.waitExposed(panel)
    qtbot.waitUntil(lambda: not panel.ranges_pending(), timeout=5000)
    turns = gui_turns()
    sets: list[tuple[int, str]] = []  # (turn, series) of every setData of a built-in chart's curve
    for series in ("return", "return_mean", "length", "success_rate"):
        curve = panel._charts[panel._series_chart[series]].curves[series]  # noqa: SLF001 (observed)
        real = curve.setData

        def spy(*args: Any, _real: Any = real, _series: str = series, **kwargs: Any) -> None:
            sets.append((turns.turns_run, _series))
            _real(*args, **kwargs)

        curve.setData = spy  # type: ignore[method-assign]
    done: list[int] = []
    panel.data.add_points([EpisodePoint(i, float(i), 5.0, 1.0, 10.0 + i, {}) for i in range(4)])
    drawn = panel.refreshes
    assert panel.refresh_in_turns(lambda: done.append(turns.turns_run))
    assert sets == [] and panel.refreshing() and panel.refreshes == drawn  # only the bins folded here
    panel.data.add_points([EpisodePoint(4, 4.0, 5.0, 1.0, 14.0, {})])  # more news while it is spread
    assert panel.refresh_in_turns(lambda: done.append(-1))
    qtbot.waitUntil(lambda: len(done) == 2, timeout=5000)
    assert panel.refreshes == drawn + 1 and not panel.refreshing()  # one refresh: both done at its end
    chart_turns = {series: turn for turn, series in sets}
    assert chart_turns["return"] == chart_turns["return_mean"]  # a chart's curves in one turn ...
    assert len({chart_turns["return"], chart_turns["length"], chart_turns["success_rate"]}) == 3  # ... each chart its own
    assert done[0] > max(chart_turns.values())  # after the last chart, at the ranges' turn
    assert panel.curve_data("return")[1].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert panel.curve_data("length")[1].tolist() == [5.0] * 5
    sets.clear()
    panel.data.add_heartbeat("2024-01-01T00:00:00Z", {"stats": {"fps": 3.0}})  # no episode: their charts keep their bins
    panel.refresh()
    assert sets == []
    assert not panel.refresh_in_turns(lambda: done.append(-2))  # nothing new: nothing to do, no done
    panel.stop(5)


def test_a_chart_added_in_a_row_resizes_no_other_chart_and_its_build_is_painted_once(qtbot: Any) -> None:
    from gym_gui.live.curve_points import EpisodePoint
    from gym_gui.live.curves import CurveData
    from gym_gui.ui.plots.curve_panel import CurvePanel

    panel = CurvePanel(CurveData())  # three charts in two columns: the fourth joins the second row
    qtbot.addWidget(panel)
    panel.resize(900, 600)
    panel.show()
    qtbot.waitExposed(panel)
    qtbot.waitUntil(lambda: not panel.ranges_pending(), timeout=5000)
    moved: list[str] = []
    for title in panel.chart_titles():
        plot = next(c.plot for c in panel._charts.values() if c.title == title)  # noqa: SLF001 (observed)
        plot.geometryChanged.connect(lambda t=title: moved.append(t))
    held_at_fill: list[bool] = []
    fill = panel._fill_chart  # noqa: SLF001

    def observed_fill() -> None:
        fill()
        held_at_fill.append(panel.paint_held())

    panel._fill_chart = observed_fill  # type: ignore[method-assign]  # noqa: SLF001
    panel.data.add_points([EpisodePoint(i, float(i), 5.0, 1.0, 10.0 + i, {"loss": 1.0}) for i in range(3)])
    panel.refresh()
    qtbot.waitUntil(lambda: len(panel.curve_data("meta:loss")[0]) == 3 and not panel.ranges_pending(), timeout=5000)
    assert moved == []  # its size hints were there before it joined the layout: no other chart moved, even for a moment
    assert held_at_fill == [True]  # the view held from the build through the fill ...
    assert not panel.paint_held() and panel.graphics.viewport().updatesEnabled()  # ... and painted after them
    panel.hold_paint("a")
    panel.hold_paint("b")
    panel.release_paint("a")
    assert panel.paint_held() and not panel.graphics.viewport().updatesEnabled()  # until every hold is released
    panel.stop(5)
    assert not panel.paint_held()  # a stopped panel holds nothing back
