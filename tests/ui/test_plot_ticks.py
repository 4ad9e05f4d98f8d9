"""A chart's TickAxis gives exactly pyqtgraph's tick values (computed without numpy), shows the
label pyqtgraph's axis shows while setting its text only when it changes, and the CurvePanel's
charts use it on their two sides (left and bottom; no top and right axes). Real pyqtgraph axes under pytest-qt."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
import pytest

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
    panel.show()
    qtbot.waitExposed(panel)
    for chart in panel._charts.values():
        assert sorted(chart.plot.axes) == ["bottom", "left"]  # no hidden top and right axes built
        assert all(isinstance(chart.plot.getAxis(name), TickAxis) for name in ("left", "bottom"))
        assert chart.plot.getAxis("left").isVisible() and chart.plot.getAxis("bottom").isVisible()
        with pytest.raises(KeyError):
            chart.plot.getAxis("top")


def counted_texts(monkeypatch: Any) -> list[tuple[Any, str]]:
    texts: list[tuple[Any, str]] = []
    original = pg.QtWidgets.QGraphicsTextItem.setHtml

    def counted(item: Any, html: str) -> None:
        texts.append((item, html))
        original(item, html)

    monkeypatch.setattr(pg.QtWidgets.QGraphicsTextItem, "setHtml", counted)
    return texts


def is_subsequence(short: list[str], long: list[str]) -> bool:
    it = iter(long)
    return all(any(item == other for other in it) for item in short)


def test_the_label_is_pyqtgraphs_and_its_text_is_set_only_when_it_changes(qtbot: Any, monkeypatch: Any) -> None:
    texts = counted_texts(monkeypatch)
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
    assert all(a != b for a, b in zip(set_ours, set_ours[1:]))  # none repeated
    assert is_subsequence(set_ours, changes) and set_ours[-1] == changes[-1] and len(set_ours) < len(set_theirs)
    assert ours.label.toHtml() == theirs.label.toHtml() and ours.label.toPlainText().startswith("return")
    assert ours.label.isVisible() and ours.width() == theirs.width()
    for axis in (ours, theirs):
        axis.resize(axis.width(), 321)  # as its layout does: the label placed for its text
    assert ours.label.pos() == theirs.label.pos()


def test_a_hidden_label_gets_its_text_when_shown_and_looks_as_pyqtgraphs(qtbot: Any, monkeypatch: Any) -> None:
    """A chart's axes show no label: their text is not set while hidden (three ``setHtml`` an axis
    at its construction); shown later, the label has the text, size and place pyqtgraph's has."""
    texts = counted_texts(monkeypatch)
    for orientation in ("left", "bottom"):
        del texts[:]
        ours, theirs = TickAxis(orientation), pg.AxisItem(orientation)
        built = [html for item, html in texts if item is ours.label]
        for axis in (ours, theirs):
            axis.setPen("k")
            axis.setTextPen("r")
            axis.setRange(0, 1000)
            axis.resize(60, 300) if orientation == "left" else axis.resize(300, 40)
        hidden = [html for item, html in texts if item is ours.label][len(built):]
        assert hidden == [] and len(built) <= 1  # only while its constructor had it shown
        for axis in (ours, theirs):
            axis.setLabel("episodes", color="#333333")  # shows the label
        assert ours.label.toHtml() == theirs.label.toHtml() and ours.label.isVisibleTo(ours)
        for axis in (ours, theirs):
            axis.resize(axis.size().width() + 1, axis.size().height() + 1)  # as its layout does
        assert ours.size() == theirs.size() and ours.label.pos() == theirs.label.pos()
        for axis in (ours, theirs):
            axis.showLabel(False)
            axis.setTextPen("b")  # changes the label's style while hidden
            axis.showLabel(True)
            axis.resize(axis.size().width() + 1, axis.size().height() + 1)
        assert ours.label.toHtml() == theirs.label.toHtml() and ours.label.pos() == theirs.label.pos()
