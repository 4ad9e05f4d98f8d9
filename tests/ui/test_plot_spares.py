"""A new chart takes a PlotItem built ahead, a piece per event-loop turn, once a panel was painted:
the refresh that sees a new worker number only adds it to the layout, and a new panel's built-in
charts come from the spares too. Real CurvePanels under pytest-qt, rendered offscreen."""

from __future__ import annotations

from typing import Any

import numpy as np
from qtpy.QtWidgets import QApplication

from gym_gui.live.curves import CurveData, EpisodePoint
from gym_gui.ui.plots.curve_panel import CurvePanel
from gym_gui.ui.plots.plot_spares import SPARES, shared_spares


def full_pool(qtbot: Any) -> None:
    qtbot.waitUntil(lambda: shared_spares().count() == SPARES, timeout=10_000)


def make_panel(qtbot: Any, **kwargs: Any) -> CurvePanel:
    panel = CurvePanel(CurveData(), **kwargs)
    qtbot.addWidget(panel)
    panel.resize(900, 500)
    panel.show()
    qtbot.waitExposed(panel)
    return panel


def points(first: int, count: int, **metadata: float) -> list[EpisodePoint]:
    return [EpisodePoint(i, float(i), 20.0, 1.0, 1.8e9 + i, dict(metadata)) for i in range(first, first + count)]


def test_a_new_chart_takes_a_spare_built_ahead_and_the_pool_is_refilled(qtbot: Any) -> None:
    panel = make_panel(qtbot)
    spares = shared_spares()
    full_pool(qtbot)  # built in the turns after a first paint
    taken, built = spares.taken, spares.built
    spare_plot = spares._spares[0]
    panel.data.add_points(points(0, 10, epsilon=0.5))
    panel.refresh()
    # the chart is there in the same refresh, on the spare PlotItem, with the look of any other chart
    chart = panel._charts["meta:epsilon"]
    assert chart.plot is spare_plot and spares.taken == taken + 1
    assert chart.plot.menuEnabled() and chart.plot.getViewBox().menu is not None
    assert not chart.plot.getAxis("top").isVisible() and not chart.plot.getAxis("right").isVisible()
    assert chart.plot.getAxis("left").isVisible() and chart.plot.getAxis("bottom").isVisible()
    assert panel.curve_data("meta:epsilon")[1].tolist() == [0.5] * 10
    full_pool(qtbot)  # refilled
    assert spares.built == built + 1


def test_a_new_panel_takes_its_three_charts_from_the_spares(qtbot: Any) -> None:
    make_panel(qtbot)
    full_pool(qtbot)
    spares = shared_spares()
    pooled = list(spares._spares)
    panel = make_panel(qtbot)
    assert [chart.plot for chart in panel._charts.values()] == pooled
    assert panel.chart_titles() == ["Episode return", "Episode length", "Success rate (rolling)"]
    assert panel._charts["return"].plot.legend is not None
    panel.data.add_points(points(0, 5))
    panel.refresh()
    assert panel.curve_data("return")[1].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    full_pool(qtbot)


def test_new_numbers_after_the_first_wait_for_the_next_spare(qtbot: Any) -> None:
    panel = make_panel(qtbot)
    full_pool(qtbot)
    taken = shared_spares().taken
    panel.data.add_points(points(0, 5, a=1.0, b=2.0, c=3.0, d=4.0, e=5.0))
    panel.refresh()
    assert "meta:a" in panel._charts and "meta:b" not in panel._charts
    qtbot.waitUntil(lambda: {"meta:b", "meta:c", "meta:d", "meta:e"} <= set(panel._charts), timeout=10_000)
    assert shared_spares().taken == taken + 5  # each on a spare (the last two built in the turns before)
    assert panel.curve_data("meta:e")[1].tolist() == [5.0] * 5


def test_a_stopped_panel_builds_no_more_charts_and_the_others_still_do(qtbot: Any) -> None:
    stopped = make_panel(qtbot)
    stopped.stop(5)
    panel = make_panel(qtbot)
    full_pool(qtbot)
    panel.data.add_points(points(0, 2, a=1.0))
    panel.refresh()
    assert "meta:a" in panel._charts and stopped._charts.keys() == {"return", "length", "success_rate"}


def test_a_spare_built_after_another_panel_closed_has_working_menus(qtbot: Any) -> None:
    """pyqtgraph's menus list every ViewBox: a panel closed (its C++ views deleted) must not break
    the menus of a spare built afterwards, nor of the chart on it."""
    closed = make_panel(qtbot)
    full_pool(qtbot)
    closed.stop(5)
    closed.close()
    closed.deleteLater()
    QApplication.processEvents()
    panel = make_panel(qtbot)
    full_pool(qtbot)
    panel.data.add_points(points(0, 3, epsilon=0.25))
    panel.refresh()
    view_box = panel._charts["meta:epsilon"].plot.getViewBox()
    view_box.menu.popup(view_box.mapToScene(view_box.rect().center()).toPoint())
    view_box.updateViewLists()  # what the menu does when views come and go
    view_box.menu.close()
    x, y = panel.curve_data("meta:epsilon")
    assert np.array_equal(y, [0.25] * 3)
