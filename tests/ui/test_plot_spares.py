"""A new chart takes a PlotItem built ahead, a piece per event-loop turn, once the panel was painted:
the refresh that sees a new worker number only adds it to the layout. Real CurvePanels under
pytest-qt, rendered offscreen."""

from __future__ import annotations

from typing import Any

import numpy as np
from qtpy.QtWidgets import QApplication

from gym_gui.live.curves import CurveData, EpisodePoint
from gym_gui.ui.plots.curve_panel import CurvePanel


def make_panel(qtbot: Any, **kwargs: Any) -> CurvePanel:
    panel = CurvePanel(CurveData(), **kwargs)
    qtbot.addWidget(panel)
    panel.resize(900, 500)
    panel.show()
    qtbot.waitExposed(panel)
    return panel


def points(first: int, count: int, **metadata: float) -> list[EpisodePoint]:
    return [EpisodePoint(i, float(i), 20.0, 1.0, 1.8e9 + i, dict(metadata)) for i in range(first, first + count)]


def test_a_new_chart_takes_the_spare_built_ahead_and_the_next_spare_is_built(qtbot: Any) -> None:
    panel = make_panel(qtbot)
    spares = panel._spares
    qtbot.waitUntil(spares.ready, timeout=5000)  # built in the turns after the first paint
    assert spares.built == 1 and spares.taken == 0
    spare_plot = spares._spare
    panel.data.add_points(points(0, 10, epsilon=0.5))
    panel.refresh()
    # the chart is there in the same refresh, on the spare PlotItem, with the look of any other chart
    chart = panel._charts["meta:epsilon"]
    assert chart.plot is spare_plot and spares.taken == 1
    assert chart.plot.menuEnabled() and chart.plot.getViewBox().menu is not None
    assert not chart.plot.getAxis("top").isVisible() and not chart.plot.getAxis("right").isVisible()
    assert chart.plot.getAxis("left").isVisible() and chart.plot.getAxis("bottom").isVisible()
    assert panel.curve_data("meta:epsilon")[1].tolist() == [0.5] * 10
    qtbot.waitUntil(spares.ready, timeout=5000)  # the next one
    assert spares.built == 2


def test_new_numbers_after_the_first_wait_for_the_next_spare(qtbot: Any) -> None:
    panel = make_panel(qtbot)
    qtbot.waitUntil(panel._spares.ready, timeout=5000)
    panel.data.add_points(points(0, 5, a=1.0, b=2.0, c=3.0))
    panel.refresh()
    assert "meta:a" in panel._charts and "meta:b" not in panel._charts
    qtbot.waitUntil(lambda: {"meta:b", "meta:c"} <= set(panel._charts), timeout=5000)
    assert panel._spares.taken == 3  # each on a spare built in the turns before
    assert panel.curve_data("meta:c")[1].tolist() == [3.0] * 5


def test_no_spare_is_built_for_a_full_panel_and_none_after_stop(qtbot: Any) -> None:
    full = make_panel(qtbot, max_charts=3)
    stopped = make_panel(qtbot)
    stopped.stop(5)
    panel = make_panel(qtbot)
    qtbot.waitUntil(panel._spares.ready, timeout=5000)  # its turns came: so did the others'
    assert full._spares.built == 0 and not full._spares.building()
    assert stopped._spares.built == 0 and not stopped._spares.building()


def test_a_spare_built_after_another_panel_closed_has_working_menus(qtbot: Any) -> None:
    """pyqtgraph's menus list every ViewBox: a panel closed (its C++ views deleted) must not break
    the menus of a spare built afterwards, nor of the chart on it."""
    closed = make_panel(qtbot)
    qtbot.waitUntil(closed._spares.ready, timeout=5000)
    closed.stop(5)
    closed.close()
    closed.deleteLater()
    QApplication.processEvents()
    panel = make_panel(qtbot)
    qtbot.waitUntil(panel._spares.ready, timeout=5000)
    panel.data.add_points(points(0, 3, epsilon=0.25))
    panel.refresh()
    view_box = panel._charts["meta:epsilon"].plot.getViewBox()
    view_box.menu.popup(view_box.mapToScene(view_box.rect().center()).toPoint())
    view_box.updateViewLists()  # what the menu does when views come and go
    view_box.menu.close()
    x, y = panel.curve_data("meta:epsilon")
    assert np.array_equal(y, [0.25] * 3)
