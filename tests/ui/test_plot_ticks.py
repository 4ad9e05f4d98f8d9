"""A chart's TickAxis gives exactly pyqtgraph's tick values (computed without numpy), shows the
label pyqtgraph's axis shows while setting its text only when it changes, and the CurvePanel's
charts use it on all four sides (top and right hidden). Real pyqtgraph axes under pytest-qt."""

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
        assert all(isinstance(chart.plot.getAxis(name), TickAxis) for name in ("left", "bottom", "top", "right"))
        assert chart.plot.getAxis("left").isVisible() and chart.plot.getAxis("bottom").isVisible()
        assert not chart.plot.getAxis("top").isVisible() and not chart.plot.getAxis("right").isVisible()


def test_the_label_is_pyqtgraphs_and_its_text_is_set_only_when_it_changes(qtbot: Any, monkeypatch: Any) -> None:
    texts: list[tuple[Any, str]] = []
    original = pg.QtWidgets.QGraphicsTextItem.setHtml

    def counted(item: Any, html: str) -> None:
        texts.append((item, html))
        original(item, html)

    monkeypatch.setattr(pg.QtWidgets.QGraphicsTextItem, "setHtml", counted)
    ours, theirs = TickAxis("left"), pg.AxisItem("left")
    for axis in (ours, theirs):
        axis.setPen("k")
        axis.setTextPen("r")
        axis.setStyle(tickLength=-3)
        axis.setLabel("reward", units="s", color="#333333")
        axis.setRange(0, 1)
        axis.setLabel("return", units="s", color="#333333")
    set_ours = [html for item, html in texts if item is ours.label]
    set_theirs = [html for item, html in texts if item is theirs.label]
    changes = [html for i, html in enumerate(set_theirs) if i == 0 or html != set_theirs[i - 1]]
    assert set_ours == changes and len(set_ours) < len(set_theirs)  # each change once, none repeated
    assert ours.label.toHtml() == theirs.label.toHtml() and ours.label.toPlainText().startswith("return")
    assert ours.label.isVisible() and ours.width() == theirs.width()
