"""SplitCurve: one series drawn as a cached body and a small tail, so that a live append repaints
the tail only. GUI thread only.

A live tick changes a learning curve at its end: the decimated points of the complete bins stay
(``live.decimate``: they change when a bin completes, every ``bin_rows`` rows, or when bins merge),
and only the last few points move. One PlotDataItem per series redrew the whole polyline at every
tick (about 1,000 points of full-height min/max strokes: the rasterising is most of a tick's
paint). Here a series is two curve items of the same pen: the **body**, the points up to a
checkpoint, drawn into a pixmap Qt keeps (``DeviceCoordinateCache``: redrawn only when its points
or the view's scale change), and the **tail**, from the body's last point to the end, drawn at every
paint. ``setData`` keeps the body while the new points still start with it and the tail is short
(at most ``max(TAIL_MIN_POINTS, n // TAIL_SHARE)`` points); otherwise it makes a new checkpoint
(the body all points but the last ``TAIL_KEEP_POINTS``). Body and tail share their joining point,
so together they draw exactly the polyline of the points given (a NaN breaks the line as before:
``connect="finite"``).

The two items are pyqtgraph ``PlotCurveItem``s (``ChartCurve``: cheaper data bounds), not
``PlotDataItem``s: a PlotDataItem wraps its
curve with a ScatterPlotItem (made for every item, never shown here: no symbols), a dataset and
its display copy, the plot's downsampling, clipping, log, FFT and alpha modes (all off here: the
points arrive decimated) and a ``viewRangeChanged`` hook at every range change, and its
``setData`` sets the curve's pen and every style option again. Same path, bounds and pixels
(``tests/ui/test_plot_split_curve.py``); a ``setData`` hands a changed part its points only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qtpy.QtWidgets import QGraphicsItem

from gym_gui.ui.plots.chart_curve import ChartCurve

__all__ = ["TAIL_KEEP_POINTS", "TAIL_MIN_POINTS", "TAIL_SHARE", "Bounds", "SplitCurve", "finite_bounds"]

Bounds = tuple[float, float] | None

#: Points left to the tail at a checkpoint: a decimated curve's rows after its last complete bin
#: (at most ``decimate.TAIL_ROWS`` plus the line's last point), which change at every append.
TAIL_KEEP_POINTS = 10
#: The tail may grow to this many points, or to a ``1 / TAIL_SHARE`` of the points, before the
#: body takes them in (a redraw of the body).
TAIL_MIN_POINTS = 32
TAIL_SHARE = 8


class SplitCurve:
    """One series as a cached body and a tail (module doc); ``xData``/``yData`` are the points last
    given, whole. GUI thread."""

    def __init__(self, plot: Any, pen: Any, name: str | None = None) -> None:
        """Two curves of ``pen`` added to ``plot`` (a ``ChartPlot`` or a PlotItem: its ``addItem``
        gives the body, named ``name``, a legend entry when the plot has a legend). GUI thread."""
        self.body = ChartCurve(pen=pen, name=name)
        self.tail = ChartCurve(pen=pen)
        self.body.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        plot.addItem(self.body)
        plot.addItem(self.tail)
        self._body_x = np.empty(0)
        self._body_y = np.empty(0)
        self._body_bounds: tuple[Bounds, Bounds] | None = (None, None)  # the body's finite (x, y) bounds
        self._bounds: tuple[Bounds, Bounds] | None = (None, None)  # every point's (None: not yet known)
        self._tail_empty = True
        self.xData: np.ndarray | None = None
        self.yData: np.ndarray | None = None
        self.body_sets = 0  # times the body got new points (tests)

    @property
    def opts(self) -> dict[str, Any]:
        """The body's curve options (the tail's are the same), with ``autoDownsample`` and
        ``clipToView`` False: a curve item draws every point it is given. GUI thread."""
        return {**self.body.opts, "autoDownsample": False, "clipToView": False}

    def setData(self, x: Any, y: Any, connect: str = "finite") -> None:  # noqa: N802 (pyqtgraph's name)
        """Draw the polyline of ``(x, y)``: only the tail gets new points while the body's points
        still start the series (module doc). GUI thread; O(points) comparisons, no drawing."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        self.xData, self.yData = x, y
        self._bounds = None
        n, b = len(x), len(self._body_x)
        if (2 <= b < n and n - b + 1 <= max(TAIL_MIN_POINTS, n // TAIL_SHARE)
                and np.array_equal(x[:b], self._body_x) and np.array_equal(y[:b], self._body_y, equal_nan=True)):
            self._set_tail(x[b - 1:], y[b - 1:], connect)
            return
        b = n - TAIL_KEEP_POINTS if n > TAIL_KEEP_POINTS + 1 else n
        self._body_x, self._body_y = x[:b].copy(), y[:b].copy()
        self._body_bounds = None  # computed when asked for (``bounds``)
        self.body.setData(x=self._body_x, y=self._body_y, connect=connect)
        self.body_sets += 1
        if b < n:
            self._set_tail(x[b - 1:], y[b - 1:], connect)
        elif not self._tail_empty:
            self._set_tail(np.empty(0), np.empty(0), connect)

    def bounds(self) -> tuple[Bounds, Bounds]:
        """The (min, max) of the finite x and of the finite y values last given (each None when
        there is none): the body's computed once per checkpoint, the tail's once per set, both
        when first asked for after it. GUI thread; O(tail points) after a set, O(1) again until
        the next."""
        if self._bounds is None:
            if self._body_bounds is None:
                self._body_bounds = (finite_bounds(self._body_x), finite_bounds(self._body_y))
            tail_x, tail_y = self.tail.xData, self.tail.yData
            body_x, body_y = self._body_bounds
            if self._tail_empty or tail_x is None or tail_y is None:
                self._bounds = (body_x, body_y)
            else:
                self._bounds = (_union(body_x, finite_bounds(tail_x)), _union(body_y, finite_bounds(tail_y)))
        return self._bounds

    def _set_tail(self, x: np.ndarray, y: np.ndarray, connect: str) -> None:
        self.tail.setData(x=x, y=y, connect=connect)
        self._tail_empty = not len(x)


#: Fewer values than this are scanned as Python floats (a numpy reduction's call costs more).
_SMALL = 64


def finite_bounds(values: np.ndarray) -> Bounds:
    """The (min, max) of the finite ``values``, None when there is none. Pure."""
    if not len(values):
        return None
    if len(values) < _SMALL:
        finite = [v for v in values.tolist() if v - v == 0.0]  # NaN and infinities left out
        return (min(finite), max(finite)) if finite else None
    lo, hi = float(np.min(values)), float(np.max(values))
    if np.isfinite(lo) and np.isfinite(hi):
        return lo, hi  # no NaN (it would make both NaN) and no infinity: the common case, two passes
    finite = values[np.isfinite(values)]
    return (float(finite.min()), float(finite.max())) if len(finite) else None


def _union(a: Bounds, b: Bounds) -> Bounds:
    if a is None or b is None:
        return a if b is None else b
    return min(a[0], b[0]), max(a[1], b[1])
