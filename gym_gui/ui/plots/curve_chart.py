"""CurveChart: one plot of a CurvePanel, its curves, and the stepped x-range it keeps while it
follows the data (``live.follow_range``), with its axes and title cached as pixmaps. GUI thread only.

What a repaint of a chart costs is mostly text: an axis replays its tick texts (a QPicture) and a
title lays out its rich text at every paint. Cached (``cache_axes``), a repaint blits them and only
the curves are drawn; an axis is redrawn when its range or its size changes. An axis's room for
its tick texts only grows (pyqtgraph shrinks it when the texts get shorter, 30 px at first): an
empty chart's "0.5" or a range stepped to shorter numbers lays out no chart again (a second paint
of every axis and grid of the panel). Axes draw two levels of ticks (pyqtgraph's third, ticks at
a tenth of the major step, was hardly visible and made an axis's layout and its grid about a
third dearer). Curve pens are cosmetic and 1 px wide (a wider pen takes Qt's stroker or
pyqtgraph's segment path: 2 to 4 times the cost), the rolling mean set apart from the raw returns
by its colour. A new range (a step, a zoom) is applied to the items' transform at once
(``settle_view``), not at the start of the next paint as pyqtgraph does, which painted every range
change twice."""

from __future__ import annotations

import weakref
from typing import Any, Callable

import numpy as np
import pyqtgraph as pg
from qtpy import sip
from qtpy.QtWidgets import QGraphicsItem

from gym_gui.live.follow_range import follow_range, stepped_range
from gym_gui.ui.plots.grid_lines import GridLines
from gym_gui.ui.plots.split_curve import SplitCurve

__all__ = ["X_PADDING", "CurveChart", "cache_axes", "cache_legend", "settle_view", "style_curve", "unlabelled_axes"]

#: The ranges a following chart shows are padded by these shares of their width on each side (y:
#: as pyqtgraph pads a chart of this height, so the extreme tick texts fit).
X_PADDING = 0.02
Y_PADDING = 0.1
_RAW_PEN = pg.mkPen((175, 198, 235), width=1)  # opaque: blending many strokes costs
_MEAN_PEN = pg.mkPen((10, 60, 170), width=1)
_LINE_PEN = pg.mkPen((40, 120, 60), width=1)  # width 1: Qt strokes it without the wide-pen stroker
_EXTRA_PEN = pg.mkPen((170, 90, 20), width=1)


def _check_binding() -> None:
    """pyqtgraph must draw with the binding qtpy chose (it follows an already imported one)."""
    import qtpy

    if pg.Qt.QT_LIB != qtpy.API_NAME:
        raise RuntimeError(f"pyqtgraph uses {pg.Qt.QT_LIB} but qtpy uses {qtpy.API_NAME}")


_check_binding()


def style_curve(curve: pg.PlotDataItem) -> pg.PlotDataItem:
    """pyqtgraph's own downsampling to the pixels (peak) and clip to the view, for curves given
    whole series of modest length (an episode's rewards). GUI thread."""
    curve.setDownsampling(auto=True, method="peak")
    curve.setClipToView(True)
    return curve


def cache_axes(plot: Any) -> None:
    """Cache the plot's axes and title as pixmaps: a repaint blits them until a range, a size or
    the text changes; an axis's room for its tick texts only grows and it draws two tick levels
    (module doc). GUI thread."""
    for name in ("bottom", "left"):
        axis = plot.getAxis(name)
        axis.setStyle(autoReduceTextSpace=False, maxTickLevel=1)
        axis.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        # An axis widens for longer tick texts after a paint; its bounding rect may stay the same,
        # so Qt would keep the pixmap drawn before: redraw it.
        axis.geometryChanged.connect(_updater(axis))
    plot.titleLabel.item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)  # the text item


def unlabelled_axes(plot: Any) -> None:
    """Turn off the SI prefix of the plot's axes (``plot.axes``: a ChartPlot's two, a PlotItem's
    four), which show no label (a CurvePanel's chart: its title says what it shows). With it on,
    every range change of an axis, shown or hidden, set its (empty) label's rich text again and
    re-sized the axis (``AxisItem.updateAutoSIPrefix``: a ``setHtml`` of 0.1 to 0.2 ms each, four
    per chart at every range step or resize); without a label the prefix scaled nothing. GUI thread."""
    for name in plot.axes:
        plot.getAxis(name).enableAutoSIPrefix(False)


def _updater(item: QGraphicsItem) -> Callable[[], None]:
    """A slot that repaints ``item`` unless it is gone (a closing view deletes its items while
    their signals may still be delivered)."""
    ref = weakref.ref(item)

    def update() -> None:
        alive = ref()
        if alive is not None and not sip.isdeleted(alive):
            alive.update()

    return update


def cache_legend(legend: pg.LegendItem) -> None:
    """Cache a legend's frame, samples and texts as pixmaps (each redrawn when it changes); call
    after its entries were added. GUI thread."""
    mode = QGraphicsItem.CacheMode.DeviceCoordinateCache
    legend.setCacheMode(mode)
    for sample, label in legend.items:
        sample.setCacheMode(mode)
        label.item.setCacheMode(mode)


class CurveChart:
    """One plot, its curves keyed by series name, and whether it follows the data. GUI thread."""

    def __init__(self, key: str, plot: Any, title: str, *, index: int = 0, grid: bool = True) -> None:
        """The chart of ``plot`` (a ``ChartPlot``, ``chart_plot.new_chart_plot``): its grid, cached
        axes without SI prefix, its view settled at each range change. GUI thread."""
        self.key = key
        self.headroom = 0.1 + 0.04 * (index % 4)  # charts step their x-axes at different ticks
        self.plot = plot
        self.title = title
        self.curves: dict[str, SplitCurve] = {}
        self.following = True  # shows every point (else the person zoomed or panned)
        self.shown_range: tuple[float, float] | None = None  # the x-range set while following
        self.shown_y: tuple[float, float] | None = None  # the y-range set while following (None: fixed)
        self.fixed_y = False  # a chart with a y-range of its own (the success rate's 0..1)
        self.last_x: float | None = None  # zoomed: the last x when its range was last asked for
        self.rewritten = -1  # zoomed: data.rewritten then
        self.stale = False  # zoomed: data changed while its range job ran
        self.grid = GridLines(plot) if grid else None  # not the axes' grid (grid_lines module doc)
        plot.getViewBox().sigRangeChanged.connect(_settler(plot.getViewBox()))  # a zoom or a step: one paint
        cache_axes(plot)
        unlabelled_axes(plot)

    @property
    def view_box(self) -> Any:
        """The plot's ViewBox."""
        return self.plot.getViewBox()

    def add_curve(self, name: str) -> SplitCurve:
        """A curve for series ``name``, styled by its kind, drawn as a cached body and a tail
        (``split_curve``); arrays arrive decimated (no pyqtgraph downsampling or clipping)."""
        if name == "return":
            curve = SplitCurve(self.plot, _RAW_PEN, "each episode")
        elif name == "return_mean":
            curve = SplitCurve(self.plot, _MEAN_PEN, "rolling mean")
        elif name.startswith(("meta:", "hb:")):
            curve = SplitCurve(self.plot, _EXTRA_PEN)
        else:
            curve = SplitCurve(self.plot, _LINE_PEN)
        if name == "success_rate":
            self.view_box.setYRange(0, 1, padding=0.05)
            self.fixed_y = True
        self.curves[name] = curve
        return curve

    def follow(self, apply: bool = True) -> bool:
        """Step the x- and y-ranges to hold every point the curves were given (module doc); True
        when they step, which redraws both axes. ``apply=False``: only say whether they would (the
        panel steps one chart per event-loop turn)."""
        bounds = [c.bounds() for c in self.curves.values()]  # kept by each curve as it is set
        xs, ys = [b[0] for b in bounds if b[0] is not None], [b[1] for b in bounds if b[1] is not None]
        if not xs:
            return False
        x_range = follow_range(min(b[0] for b in xs), max(b[1] for b in xs), self.shown_range,
                               headroom=self.headroom)
        y_range = None if self.fixed_y or not ys else stepped_range(min(b[0] for b in ys), max(b[1] for b in ys),
                                                                     self.shown_y)
        if x_range == self.shown_range and y_range == self.shown_y:
            return False
        if apply:
            self.shown_range, self.shown_y = x_range, y_range
            view_box = self.view_box
            auto_x, auto_y = view_box.autoRangeEnabled()
            # one setRange; it turns auto-range off for the axes it sets only when it is on (a
            # "View all"): else its enableAutoRange calls (each a sigStateChanged) do nothing
            if y_range is None:
                view_box.setRange(xRange=_padded(x_range), padding=0, disableAutoRange=auto_x is not False)
            else:
                view_box.setRange(xRange=_padded(x_range), yRange=_padded(y_range, Y_PADDING), padding=0,
                                  disableAutoRange=auto_x is not False or auto_y is not False)
        return True

    def reset_follow(self) -> None:
        """Follow the data again (a new data set, another axis, the whole view asked for)."""
        self.following, self.shown_range, self.shown_y = True, None, None

    def is_followed_range(self, x_range: Any, axis: int = 0) -> bool:
        """True when ``x_range`` (of axis 0: x, 1: y) is the range ``follow`` set (a resize or a
        repaint, not a zoom)."""
        if not self.following or self.view_box.autoRangeEnabled()[axis]:
            return False
        shown = self.shown_y if axis == 1 else self.shown_range
        if shown is None:
            return axis == 1  # a fixed y-range (or none yet) is not the person's
        lo, hi = _padded(shown, Y_PADDING if axis == 1 else X_PADDING)
        return bool(np.allclose(x_range, (lo, hi), rtol=1e-9, atol=1e-9 * (hi - lo)))


def settle_view(view_box: Any) -> None:
    """Apply a ViewBox's new range to its items' transform now, not when the next paint starts.
    pyqtgraph defers it to the paint (``prepareForPaint`` -> ``updateMatrix``): the items it moves
    are then marked changed while that paint runs, and the scene paints them a second time right
    after it (two paints of the chart for every range step or zoom). GUI thread."""
    view_box.updateMatrix()


def _settler(view_box: Any) -> Callable[..., None]:
    """A slot that settles ``view_box`` (``settle_view``) unless it is gone."""
    ref = weakref.ref(view_box)

    def settle(*_args: Any) -> None:
        alive = ref()
        if alive is not None and not sip.isdeleted(alive):
            settle_view(alive)

    return settle


def _padded(bounds: tuple[float, float], share: float = X_PADDING) -> tuple[float, float]:
    pad = (bounds[1] - bounds[0]) * share
    return bounds[0] - pad, bounds[1] + pad

