"""A CurvePanel's charts are moved out of the cycle collector's view once built (the first three
with the panel, a worker number's chart once its curve is added, the turn after its build), so no later collection walks them and
the young generation they filled starts again from empty; without the app's start-up freeze the
panel freezes nothing. Real widgets under pytest-qt, the real collector."""

from __future__ import annotations

import gc
from typing import Any, Iterator

import pytest

from gym_gui.gc_tuning import freeze_startup_objects, stop_freezing
from gym_gui.live.curve_points import EpisodePoint
from gym_gui.live.curves import CurveData
from gym_gui.ui.plots.curve_panel import CurvePanel


def watched(obj: object) -> bool:
    """True while the collector's generations hold ``obj`` (a frozen object is in none of them)."""
    return any(o is obj for o in gc.get_objects())


def points(first: int, count: int) -> list[EpisodePoint]:
    return [EpisodePoint(i, float(i), 10.0, 1.0, 100.0 + i, {"epsilon": 1.0 / (i + 1)})
            for i in range(first, first + count)]


@pytest.fixture
def app_freezing() -> Iterator[None]:
    """The app's collector set-up (``gym_gui.app``: start-up objects frozen), undone afterwards."""
    freeze_startup_objects()
    try:
        yield
    finally:
        stop_freezing()


def make_panel(qtbot: Any) -> CurvePanel:
    panel = CurvePanel(CurveData())
    qtbot.addWidget(panel)
    panel.resize(900, 600)
    panel.show()
    qtbot.waitExposed(panel)
    return panel


def test_a_panels_charts_are_frozen_once_built(qtbot: Any, app_freezing: None) -> None:
    frozen_before = gc.get_freeze_count()
    panel = make_panel(qtbot)
    builtin = [panel.plot_item(name) for name in ("return", "length", "success_rate")]
    assert all(plot is not None and gc.is_tracked(plot) for plot in builtin)
    assert gc.get_freeze_count() > frozen_before
    assert not any(watched(plot) for plot in builtin)
    panel.data.add_points(points(0, 5))
    panel.refresh()
    qtbot.waitUntil(lambda: len(panel.curve_data("meta:epsilon")[0]) > 0, timeout=5000)
    epsilon = panel.plot_item("meta:epsilon")
    assert not watched(epsilon) and not watched(epsilon.getViewBox())  # frozen in its curve's turn
    qtbot.waitUntil(lambda: not panel.ranges_pending(), timeout=5000)
    assert panel.curve_data("meta:epsilon")[1].tolist() == pytest.approx([1 / (i + 1) for i in range(5)])
    panel.stop(5)


def test_without_the_apps_start_up_freeze_a_panel_freezes_nothing(qtbot: Any) -> None:
    stop_freezing()
    panel = make_panel(qtbot)
    assert gc.get_freeze_count() == 0
    assert watched(panel.plot_item("return"))
    panel.stop(5)
