"""A SplitCurve draws exactly the polyline of the points it is given (body and tail together: the
same path elements, bounds and pixels as one pyqtgraph curve of the same arrays), keeps its cached
body while rows are appended, and a live append repaints its tail only. Real pyqtgraph items and a
real PeakDecimator under pytest-qt, rendered offscreen."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from pyqtgraph.graphicsItems.PlotCurveItem import PlotCurveItem
from qtpy.QtWidgets import QApplication

from gym_gui.live.decimate import PeakDecimator
from gym_gui.ui.plots.split_curve import SplitCurve, finite_bounds
from gym_gui.ui.plots.tick_axis import chart_axes

PEN = pg.mkPen((10, 60, 170), width=1)


def make_plot(qtbot: Any) -> tuple[pg.GraphicsLayoutWidget, pg.PlotItem]:
    widget = pg.GraphicsLayoutWidget()
    qtbot.addWidget(widget)
    widget.setBackground("w")
    widget.resize(600, 300)
    plot = widget.addPlot(axisItems=chart_axes())
    plot.getViewBox().disableAutoRange()
    widget.show()
    qtbot.waitExposed(widget)
    return widget, plot


def settle() -> None:
    for _ in range(20):
        QApplication.processEvents()


def series(rows: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.arange(rows, dtype=float)
    y = np.tanh(x / 2000) + 0.3 * np.sin(x * 0.37)
    y[rows // 3] = np.nan  # a missing value breaks the line
    return x, y


def test_body_and_tail_are_the_points_given_with_pyqtgraphs_path_and_bounds(qtbot: Any) -> None:
    _widget, plot = make_plot(qtbot)
    split = SplitCurve(plot, PEN)
    whole = PlotCurveItem(pen=PEN)
    decimator = PeakDecimator(max_bins=256)
    x, y = series(60_000)
    sets = []
    for end in range(50, 60_000, 997):
        decimator.update(x[:end], y[:end])
        dx, dy = decimator.arrays()
        split.setData(dx, dy, connect="finite")
        whole.setData(dx, dy, connect="finite")
        sets.append(split.body_sets)
        bx, by = split.body.xData, split.body.yData
        tx, ty = split.tail.xData, split.tail.yData
        if tx is not None and len(tx):
            assert bx[-1] == tx[0] and (by[-1] == ty[0] or np.isnan(by[-1]) and np.isnan(ty[0]))  # they join
            joined_x, joined_y = np.concatenate((bx, tx[1:])), np.concatenate((by, ty[1:]))
        else:
            joined_x, joined_y = bx, by
        assert np.array_equal(joined_x, dx) and np.array_equal(joined_y, dy, equal_nan=True)
        assert split.xData is not None and np.array_equal(split.xData, dx)
        finite_x, finite_y = dx[np.isfinite(dx)], dy[np.isfinite(dy)]
        assert split.bounds() == ((finite_x.min(), finite_x.max()), (finite_y.min(), finite_y.max()))
        parts = [split.body] + ([split.tail] if tx is not None and len(tx) else [])
        elements = sum(part.getPath().elementCount() for part in parts) - (len(parts) - 1)  # the shared point
        assert elements == whole.getPath().elementCount()
        for axis in (0, 1):
            bounds = [part.dataBounds(axis) for part in parts]
            assert (min(b[0] for b in bounds), max(b[1] for b in bounds)) == whole.dataBounds(axis)
    assert sets[-1] < len(sets) / 2  # most appends kept the body


def test_bounds_are_the_finite_values_extremes() -> None:
    split_x = np.array([0.0, 1.0, 2.0, np.inf])
    assert finite_bounds(split_x) == (0.0, 2.0) and finite_bounds(np.array([np.nan])) is None
    assert finite_bounds(np.empty(0)) is None and finite_bounds(np.array([3.0, -1.0])) == (-1.0, 3.0)


def test_a_split_curve_looks_like_one_curve(qtbot: Any) -> None:
    images = []
    x, y = series(5_000)
    decimator = PeakDecimator(max_bins=256)
    for kind in ("split", "whole"):
        widget, plot = make_plot(qtbot)
        curve = SplitCurve(plot, PEN) if kind == "split" else plot.plot(pen=PEN)
        for end in (1_000, 3_000, 4_321):  # appends, the last one kept in the tail
            decimator.update(x[:end], y[:end])
            curve.setData(*decimator.arrays(), connect="finite")
            plot.getViewBox().setRange(xRange=(0, 5_000), yRange=(-1.5, 1.5), padding=0)
            settle()
        images.append(widget.grab().toImage())
        decimator = PeakDecimator(max_bins=256)
    assert images[0] == images[1]


def test_a_live_append_repaints_the_tail_only(qtbot: Any, monkeypatch: Any) -> None:
    _widget, plot = make_plot(qtbot)
    split = SplitCurve(plot, PEN)
    painted: list[Any] = []
    original = PlotCurveItem.paint

    def paint(item: PlotCurveItem, *args: Any) -> None:
        painted.append(item)
        original(item, *args)

    monkeypatch.setattr(PlotCurveItem, "paint", paint)
    x, y = series(200_000)
    decimator = PeakDecimator(max_bins=512)
    decimator.update(x[:150_000], y[:150_000])
    split.setData(*decimator.arrays())
    plot.getViewBox().setRange(xRange=(0, 200_000), yRange=(-1.5, 2), padding=0)
    settle()
    assert split.body in painted
    kept = split.body_sets
    for end in range(150_020, 151_000, 20):  # live ticks of 20 episodes
        del painted[:]
        decimator.update(x[:end], y[:end])
        split.setData(*decimator.arrays())
        settle()
        assert painted == [split.tail]  # the body came from its cached pixmap
    assert split.body_sets == kept
