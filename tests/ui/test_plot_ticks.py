"""A chart's TickAxis gives exactly pyqtgraph's tick values (computed without numpy), and the
CurvePanel's charts use it. Real pyqtgraph axes under pytest-qt."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg

from gym_gui.live.curves import CurveData
from gym_gui.ui.plots.curve_panel import CurvePanel
from gym_gui.ui.plots.tick_axis import TickAxis


def test_tick_values_are_pyqtgraphs_for_every_range_and_length(qtbot: Any) -> None:
    rng = np.random.default_rng(7)
    ranges = [(0, 1), (-1.234, 1.5), (0, 1_020_000), (999.5, 1000.5), (-5e-7, 3e-6), (1.8e9, 1.8e9 + 3600),
              (5, 5), (3, -2), (0.1, 0.30000000000000004)]
    ranges += [tuple(sorted(rng.normal(0, 10.0 ** rng.integers(-6, 9), 2))) for _ in range(300)]
    for orientation in ("left", "bottom"):
        for max_level in (1, 2):
            ours, theirs = TickAxis(orientation), pg.AxisItem(orientation)
            for axis in (ours, theirs):
                axis.setStyle(maxTickLevel=max_level)
            for lo, hi in ranges:
                for length_px in (37.0, 150.0, 588.0, 1200.0):
                    assert ours.tickValues(lo, hi, length_px) == theirs.tickValues(lo, hi, length_px), (lo, hi, length_px)


def test_the_panels_charts_tick_with_the_tick_axis(qtbot: Any) -> None:
    panel = CurvePanel(CurveData())
    qtbot.addWidget(panel)
    for chart in panel._charts.values():
        assert isinstance(chart.plot.getAxis("left"), TickAxis) and isinstance(chart.plot.getAxis("bottom"), TickAxis)
        assert not chart.plot.getAxis("top").isVisible() and not chart.plot.getAxis("right").isVisible()
