"""GridLines: a chart's grid drawn as one cheap item behind its curves, instead of by its axes.

pyqtgraph's own grid (``showGrid``) is drawn by the axes: each axis then spans the whole plot, so
a cached axis is a plot-sized translucent pixmap blended at every repaint, and redrawing an axis
(its range stepped, a zoom) strokes every grid line with a translucent pen (1 to 12 ms per axis
under Qt 6). Here the axes draw only their ticks and texts; this item, in the ViewBox behind the
curves, draws the grid at the axes' own tick values (``AxisItem.tickValues``), each tick level in
the opaque colour pyqtgraph's translucent line would give on the white background, with one
``drawLines`` per level, in whole device pixels (in data coordinates a line is stroked as a path),
into a pixmap Qt caches: a repaint blits it; the tick values and the pixmap are made again only
when the view range or size changes. GUI thread only.
"""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from qtpy.QtCore import QLine, QRectF
from qtpy.QtGui import QColor, QPainter, QPen, QTransform
from qtpy.QtWidgets import QGraphicsItem

__all__ = ["GridLines", "grid_colour"]

#: The axes' pen (pyqtgraph's default foreground) and the chart background the grid is blended on.
_AXIS_GREY = 150
_BACKGROUND = 255
#: Tick levels drawn (major, minor, finer), as pyqtgraph's axes draw them.
MAX_LEVELS = 3


def grid_colour(level: int, ticks: int, length_px: float, alpha: float) -> QColor:
    """The opaque colour of a grid line of tick ``level`` (0: major): pyqtgraph's line alpha
    (``255 / (level + 1) * alpha``, fading when ``ticks`` crowd ``length_px``) blended over the
    white background. Pure."""
    share = alpha / (level + 1) * min(1.0, max(0.0, 0.05 * length_px / (ticks + 1)))
    grey = round(_BACKGROUND - (_BACKGROUND - _AXIS_GREY) * share)
    return QColor(grey, grey, grey)


class GridLines(pg.GraphicsObject):
    """The grid of ``plot`` at its axes' ticks, ``alpha`` as ``showGrid``'s (module doc). GUI thread."""

    def __init__(self, plot: pg.PlotItem, *, alpha: float = 0.25) -> None:
        super().__init__()
        self._plot = plot
        self._view_box = plot.getViewBox()
        self._alpha = alpha
        self._levels: list[tuple[QPen, str, list[float]]] | None = None  # pen, axis, tick values
        self.recomputes = 0  # times the lines were recomputed (tests)
        self.setZValue(-1e9)  # behind every curve
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self._view_box.addItem(self, ignoreBounds=True)
        self._view_box.sigRangeChanged.connect(self._invalidate)
        self._view_box.sigResized.connect(self._invalidate)

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt name)
        """The view range (data coordinates). GUI thread."""
        return self._view_box.viewRect()

    def paint(self, painter: QPainter, _option: Any, _widget: Any = None) -> None:
        """Draw the grid, one ``drawLines`` per tick level, in device pixels. GUI thread."""
        if self._levels is None:
            self._levels = self._compute()
        to_device = painter.transform()  # data -> device: a scale and a translation
        area = to_device.mapRect(self._view_box.viewRect())
        left, right = round(area.left()), round(area.right())
        top, bottom = round(area.top()), round(area.bottom())
        sx, dx, sy, dy = to_device.m11(), to_device.dx(), to_device.m22(), to_device.dy()
        painter.setTransform(QTransform())
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        for pen, axis, values in self._levels:
            painter.setPen(pen)
            if axis == "bottom":
                xs = [round(sx * v + dx) for v in values]
                painter.drawLines([QLine(x, top, x, bottom) for x in xs])
            else:
                ys = [round(sy * v + dy) for v in values]
                painter.drawLines([QLine(left, y, right, y) for y in ys])

    def line_count(self) -> int:
        """Grid lines drawn at the last paint (tests). GUI thread."""
        return sum(len(values) for _pen, _axis, values in self._levels or ())

    def tick_values(self, axis: str) -> list[float]:
        """The values the grid has lines at along ``axis`` (``bottom`` or ``left``), every level
        (tests). GUI thread."""
        return sorted(v for _pen, name, values in self._levels or () for v in values if name == axis)

    def _invalidate(self, *_args: Any) -> None:
        self.prepareGeometryChange()
        self._levels = None
        self.update()

    def _compute(self) -> list[tuple[QPen, str, list[float]]]:
        self.recomputes += 1
        (x0, x1), (y0, y1) = self._view_box.viewRange()
        width_px, height_px = max(1.0, self._view_box.width()), max(1.0, self._view_box.height())
        out: list[tuple[QPen, str, list[float]]] = []
        for axis, lo, hi, length_px in (("bottom", x0, x1, width_px), ("left", y0, y1, height_px)):
            levels = self._plot.getAxis(axis).tickValues(lo, hi, length_px)[:MAX_LEVELS]
            for level, (_spacing, values) in enumerate(levels):
                shown = [v for v in values if lo <= v <= hi]
                if not shown:
                    continue
                pen = QPen(grid_colour(level, len(values), length_px, self._alpha))
                pen.setCosmetic(True)
                pen.setWidth(1)
                out.append((pen, axis, shown))
        out.sort(key=lambda item: -item[0].color().red())  # lighter levels first, majors on top
        return out
