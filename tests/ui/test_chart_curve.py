"""A ChartCurve's data bounds and bounding rect are pyqtgraph's PlotCurveItem's, exactly, for short
and long data with NaN, infinities, all-NaN, empty data, after range changes and for pens and fill
levels it leaves to pyqtgraph; a range change keeps its data bounds. Real pyqtgraph items in a real
ViewBox under pytest-qt."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from pyqtgraph.graphicsItems.PlotCurveItem import PlotCurveItem
from qtpy.QtWidgets import QApplication

from gym_gui.ui.plots.chart_curve import SMALL_POINTS, ChartCurve, small_bounds

PEN = pg.mkPen((10, 60, 170), width=1)
INF, NAN = math.inf, math.nan


def same(a: Any, b: Any) -> bool:
    return all((x is None and y is None) or x == y or (isinstance(x, float) and math.isnan(x) and math.isnan(y))
               for x, y in zip(a, b))


def cases() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(3)
    out = []
    for n in (0, 1, 2, 5, SMALL_POINTS - 1, SMALL_POINTS, 300):
        x = np.arange(n, dtype=float) * 1.5 - 7
        y = rng.normal(0, 10, n)
        out.append((x, y))
        if n:
            for special in ((NAN,), (INF,), (-INF,), (NAN, INF), (NAN, -INF, INF)):
                ys = y.copy()
                for i, value in enumerate(special):
                    ys[(i * 7) % n] = value
                out.append((x, ys))
            out.append((x, np.full(n, NAN)))
            out.append((x, np.full(n, INF)))
            out.append((x, np.where(np.arange(n) % 2 == 0, NAN, -INF)))
    return out


def test_small_bounds_follow_pyqtgraphs_rules() -> None:
    assert small_bounds(np.array([3.0, NAN, -1.0, INF])) == (-1.0, 3.0)
    assert small_bounds(np.array([INF, NAN])) == (None, None)
    bounds = small_bounds(np.array([NAN, NAN]))
    assert math.isnan(bounds[0]) and math.isnan(bounds[1])


def test_data_bounds_and_rect_are_pyqtgraphs(qtbot: Any) -> None:
    widget = pg.GraphicsLayoutWidget()
    qtbot.addWidget(widget)
    widget.resize(500, 300)
    view = widget.addViewBox()
    view.disableAutoRange()
    ours, theirs = ChartCurve(pen=PEN), PlotCurveItem(pen=PEN)
    for item in (ours, theirs):
        view.addItem(item)
    widget.show()
    qtbot.waitExposed(widget)
    for x, y in cases():
        for item in (ours, theirs):
            item.setData(x=x, y=y, connect="finite")
        for ax in (0, 1):
            assert same(ours.dataBounds(ax), theirs.dataBounds(ax)), (len(x), y[:8], ax)
            assert same(ours.dataBounds(ax), ours.dataBounds(ax))  # the kept value
        assert same(ours.dataBounds(1, orthoRange=(-3, 30)), theirs.dataBounds(1, orthoRange=(-3, 30)))
        if len(x) > 1:
            assert same(ours.dataBounds(1, frac=0.5), theirs.dataBounds(1, frac=0.5))
        for x_range in ((-10, 10), (0, 1000)):
            view.setRange(xRange=x_range, yRange=(-40, 40), padding=0)
            QApplication.processEvents()
            rect_ours, rect_theirs = ours.boundingRect(), theirs.boundingRect()
            corners = [(r.x(), r.y(), r.width(), r.height()) for r in (rect_ours, rect_theirs)]
            assert same(*corners), (len(x), corners)


def test_a_range_change_keeps_the_data_bounds_and_remakes_the_rect(qtbot: Any, monkeypatch: Any) -> None:
    widget = pg.GraphicsLayoutWidget()
    qtbot.addWidget(widget)
    widget.resize(500, 300)
    view = widget.addViewBox()
    view.disableAutoRange()
    curve = ChartCurve(pen=PEN)
    view.addItem(curve)
    curve.setData(x=np.arange(1000.0), y=np.sin(np.arange(1000.0)))
    widget.show()
    qtbot.waitExposed(widget)
    before = curve.boundingRect()
    scans: list[int] = []
    original = PlotCurveItem.dataBounds

    def counted(item: Any, *args: Any, **kwargs: Any) -> Any:
        if item._boundsCache[args[0] if args else kwargs["ax"]] is None:
            scans.append(1)
        return original(item, *args, **kwargs)

    monkeypatch.setattr(PlotCurveItem, "dataBounds", counted)
    view.setRange(xRange=(0, 500), yRange=(-2, 2), padding=0)
    QApplication.processEvents()
    after = curve.boundingRect()
    assert scans == [] and after != before  # the pixel padding is the new view's; the data not scanned
    assert after == PlotCurveItem.boundingRect(curve)


def test_what_it_leaves_to_pyqtgraph(qtbot: Any) -> None:
    thick = pg.mkPen("r", width=4)
    thick.setCosmetic(False)
    y = np.array([1.0, 5.0, -2.0])
    for kwargs in ({"pen": thick}, {"pen": PEN, "fillLevel": 10.0}, {"pen": PEN, "shadowPen": thick}):
        ours, theirs = ChartCurve(**kwargs), PlotCurveItem(**kwargs)
        for item in (ours, theirs):
            item.setData(x=np.arange(3.0), y=y)
        assert ours.dataBounds(1) == theirs.dataBounds(1) != (-2.0, 5.0)
