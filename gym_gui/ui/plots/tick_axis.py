"""TickAxis: a pyqtgraph AxisItem whose tick values are computed without numpy and whose label's
rich text is set only when it changes and is shown. GUI thread only.

An axis computes its tick values at every layout (its range stepped, a resize, a zoom) and the
chart's grid (``grid_lines``) asks for them again: pyqtgraph builds each level with ``np.arange``
and drops the values of the levels above with an ``np.isclose`` matrix, whose call overhead is
most of the work for the few dozen ticks of a chart (a fifth of an axis's layout, most of the
grid's). Here the same values come from the same float operations (``(i * spacing + start) /
scale``) and a value is dropped when it lies within a hundredth of the level's spacing of a value
of a level above (``np.isclose`` with that absolute tolerance), as pyqtgraph does.

An axis sets its label's rich text (``QGraphicsTextItem.setHtml``: a document laid out) at each of
its setters (pen, text pen, tick pen, style, label, range when the SI prefix is on): nine times
while a PlotItem builds one axis, 36 times a chart, about a sixth of a chart's construction, for
a label that our charts never show and whose text never changes. Here the text is set only when
it differs from the text last set (the same label drawn; a changed text, units or style set at
once). A hidden label (a chart's axes show none) gets no text at all until it is shown: each
``setHtml`` (a document laid out, 0.1 to 0.2 ms) was three per axis at its construction.
"""

from __future__ import annotations

import bisect
from math import ceil
from typing import Any

import pyqtgraph as pg
from pyqtgraph import Point
from pyqtgraph import functions as fn
from qtpy import QtGui
from qtpy.QtCore import QPointF, QRectF, Qt

__all__ = ["TEXT_SIZE_CACHE_SIZE", "TickAxis", "chart_axes", "hide_top_right"]

TEXT_SIZE_CACHE_SIZE = 4096  # distinct tick texts measured per font before the sizes are measured afresh


#: A tick text's draw flags on each side, as pyqtgraph's.
_TEXT_FLAGS = {
    "left": Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter | Qt.TextFlag.TextDontClip,
    "right": Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter | Qt.TextFlag.TextDontClip,
    "top": Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom | Qt.TextFlag.TextDontClip,
    "bottom": Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextDontClip,
}


class TickAxis(pg.AxisItem):
    """pyqtgraph's AxisItem with ``tickValues`` computed in plain Python and its label's text set
    only when it changes (module doc). GUI thread."""

    _label_html: str | None = None  # the label text last set
    _text_size_key: tuple[str, int, int] | None = None  # the font and resolution the sizes were measured with
    _text_size_cache: dict[str, tuple[float, float]] = {}  # replaced per axis at its first measurement

    def _updateLabel(self) -> None:  # noqa: N802 (pyqtgraph's name)
        """As ``AxisItem._updateLabel``, without setting an unchanged label text again, nor a hidden
        label's text (set when it is shown, ``showLabel``). GUI thread."""
        self._set_label_html()
        self._adjustSize()
        self.picture = None
        self.update()

    def showLabel(self, show: bool = True) -> None:  # noqa: N802 (pyqtgraph's name)
        """As ``AxisItem.showLabel``; a label shown gets the text it missed while hidden first (its
        size and place are then those of that text). GUI thread."""
        if show and self._set_label_html(shown=True):
            self.resizeEvent(None)  # the label's place for its new text, as after a resize
        super().showLabel(show)

    def _set_label_html(self, *, shown: bool = False) -> bool:
        """Set the label's rich text if it changed and the label is shown (or about to be); True
        when it was set."""
        if not shown and not self.label.isVisibleTo(self):
            return False
        html = self.labelString()
        if html == self._label_html:
            return False
        self._label_html = html
        self.label.setHtml(html)
        return True

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list[tuple[float, list[float]]]:  # noqa: N802, N803
        """The tick values of each level, as ``AxisItem.tickValues`` (module doc). GUI thread."""
        minVal, maxVal = sorted((minVal, maxVal))  # noqa: N806
        scale = self.scale
        minVal *= scale  # noqa: N806
        maxVal *= scale  # noqa: N806
        ticks: list[tuple[float, list[float]]] = []
        seen: list[float] = []  # every level's values so far, sorted
        for spacing, offset in self.tickSpacing(minVal, maxVal, size):
            start = (ceil((minVal - offset) / spacing) * spacing) + offset
            num = int((maxVal - start) / spacing) + 1
            tolerance = spacing / scale * 0.01
            values = []
            for i in range(max(0, num)):
                value = (i * spacing + start) / scale
                at = bisect.bisect_left(seen, value - tolerance)
                if at < len(seen) and seen[at] <= value + tolerance:
                    continue  # a tick of a level above
                values.append(value)
            seen = sorted(seen + values)
            ticks.append((spacing / scale, values))
        if self.logMode:
            return self.logTickValues(minVal, maxVal, size, ticks)
        return ticks

    def generateDrawSpecs(self, p: QtGui.QPainter) -> tuple[Any, list[Any], list[Any]] | None:  # noqa: N802
        """The axis line's, ticks' and tick texts' draw specs, as ``AxisItem.generateDrawSpecs``, with
        each tick text's measured size reused while the font is the same (module doc). GUI thread
        (inside a paint), does not block."""
        style = self.style
        if self._tickLevels is not None or style["stopAxisAtTick"] != (False, False) or style["tickAlpha"] is not None:
            return super().generateDrawSpecs(p)  # as pyqtgraph does, cases our charts do not use
        if style["tickFont"] is not None:
            p.setFont(style["tickFont"])
        bounds = self.mapRectFromParent(self.geometry())
        linked_view = self.linkedView()
        if linked_view is None or self.grid is False:
            tick_bounds = bounds
        else:
            tick_bounds = linked_view.mapRectToItem(self, linked_view.boundingRect())
        orientation = self.orientation
        if orientation == "left":
            span = (bounds.topRight() + QPointF(-1.0, -1.0), bounds.bottomRight() + QPointF(-1.0, 1.0))
            tick_start, tick_stop, tick_dir, axis = tick_bounds.right(), bounds.right(), -1, 0
        elif orientation == "right":
            span = (bounds.topLeft() + QPointF(1.0, -1.0), bounds.bottomLeft() + QPointF(1.0, 1.0))
            tick_start, tick_stop, tick_dir, axis = tick_bounds.left(), bounds.left(), 1, 0
        elif orientation == "top":
            span = (bounds.bottomLeft() + QPointF(-1.0, -1.0), bounds.bottomRight() + QPointF(1.0, -1.0))
            tick_start, tick_stop, tick_dir, axis = tick_bounds.bottom(), bounds.bottom(), -1, 1
        elif orientation == "bottom":
            span = (bounds.topLeft() + QPointF(-1.0, 1.0), bounds.topRight() + QPointF(1.0, 1.0))
            tick_start, tick_stop, tick_dir, axis = tick_bounds.top(), bounds.top(), 1, 1
        else:
            raise ValueError("self.orientation must be in {'left', 'right', 'top', 'bottom'}")
        points = [self.mapToDevice(point) for point in span]
        if None in points:
            return None
        length_px = Point(points[1] - points[0]).length()
        if length_px == 0:
            return None
        tick_levels = self.tickValues(self.range[0], self.range[1], length_px)
        lo, hi = self.range
        dif = hi - lo
        if dif == 0:
            x_scale, offset = 1, 0
        elif axis == 0:
            x_scale = -bounds.height() / dif
            offset = lo * x_scale - bounds.height()
        else:
            x_scale = bounds.width() / dif
            offset = lo * x_scale
        x_lo, x_hi = lo * x_scale - offset, hi * x_scale - offset
        x_min, x_max = min(x_lo, x_hi), max(x_lo, x_hi)

        tick_positions: list[list[float | None]] = []
        tick_specs: list[tuple[QtGui.QPen, QPointF, QPointF]] = []
        base_pen = self.tickPen()
        solid = base_pen.brush().style() == Qt.BrushStyle.SolidPattern
        for i, (_spacing, ticks) in enumerate(tick_levels):
            positions: list[float | None] = []
            tick_positions.append(positions)
            tick_length = style["tickLength"] / ((i * 0.5) + 1.0)
            line_alpha = 255 / (i + 1)
            if self.grid is not False:
                line_alpha *= self.grid / 255.0 * fn.clip_scalar((0.05 * length_px / (len(ticks) + 1)), 0.0, 1.0)
            tick_pen = base_pen
            if solid:
                tick_pen = QtGui.QPen(base_pen)
                color = QtGui.QColor(tick_pen.color())
                color.setAlpha(int(line_alpha))
                tick_pen.setColor(color)
            end = tick_stop if self.grid is not False else tick_stop + tick_length * tick_dir
            for v in ticks:
                x = (v * x_scale) - offset
                if x < x_min or x > x_max:
                    positions.append(None)
                    continue
                positions.append(x)
                if axis == 0:
                    tick_specs.append((tick_pen, QPointF(tick_start, x), QPointF(end, x)))
                else:
                    tick_specs.append((tick_pen, QPointF(x, tick_start), QPointF(x, end)))
        axis_spec = (self.pen(), span[0], span[1])
        text_specs: list[tuple[QRectF, Any, str]] = []
        if not style["showValues"]:
            return axis_spec, tick_specs, text_specs
        self._text_specs(p, tick_levels, tick_positions, tick_stop, length_px, axis, text_specs)
        return axis_spec, tick_specs, text_specs

    def _text_sizes(self, p: QtGui.QPainter) -> dict[str, tuple[float, float]]:
        """The measured (width, 0.8 * height) of each tick text drawn with ``p``'s font and device
        resolution so far (emptied when either changes, or past ``TEXT_SIZE_CACHE_SIZE`` texts). GUI thread."""
        device = p.device()
        key = (p.font().key(), device.logicalDpiX() if device is not None else 0,
               device.logicalDpiY() if device is not None else 0)
        if key != self._text_size_key or len(self._text_size_cache) > TEXT_SIZE_CACHE_SIZE:
            self._text_size_key, self._text_size_cache = key, {}
        return self._text_size_cache

    def _text_specs(self, p: QtGui.QPainter, tick_levels: list[tuple[float, list[float]]],
                    tick_positions: list[list[float | None]], tick_stop: float, length_px: float, axis: int,
                    text_specs: list[tuple[QRectF, Any, str]]) -> None:
        """Append the tick texts' draw specs, as the text half of ``AxisItem.generateDrawSpecs``. GUI thread."""
        style = self.style
        sizes = self._text_sizes(p)
        text_offset = style["tickTextOffset"][axis]
        text_size2 = last_text_size2 = 0.0
        measured: list[tuple[float, float]] = []  # every drawn level's text sizes so far
        bounding = self.boundingRect()
        offset = max(0, style["tickLength"]) + text_offset
        orientation = self.orientation
        flags = _TEXT_FLAGS[orientation]
        for i in range(min(len(tick_levels), style["maxTextLevel"] + 1)):
            spacing, values = tick_levels[i]
            strings: list[str | None] = list(self.tickStrings(values, self.autoSIPrefixScale * self.scale, spacing))
            if not strings:
                continue
            positions = tick_positions[i]
            level: list[tuple[float, float] | None] = []
            for j, s in enumerate(strings):
                if positions[j] is None or s is None:
                    strings[j] = None
                    level.append(None)
                    continue
                size = sizes.get(s)
                if size is None:
                    br = p.boundingRect(QRectF(0, 0, 100, 100), Qt.AlignmentFlag.AlignCenter, s)
                    size = sizes[s] = (br.width(), br.height() * 0.8)
                level.append(size)
                measured.append(size)
            if measured:
                if axis == 0:
                    text_size = sum(h for _w, h in measured)
                    text_size2 = max(w for w, _h in measured)
                else:
                    text_size = sum(w for w, _h in measured)
                    text_size2 = max(h for _w, h in measured)
            else:
                text_size = text_size2 = 0.0
            if i > 0:
                fill_ratio = float(text_size) / length_px
                if any(len(text_specs) >= n_texts and fill_ratio >= limit for n_texts, limit in style["textFillLimits"]):
                    break
            last_text_size2 = text_size2
            for j, vstr in enumerate(strings):
                if vstr is None:
                    continue
                x = positions[j]
                width, height = level[j]
                if orientation == "left":
                    left, top = tick_stop - offset - width, x - (height / 2)
                elif orientation == "right":
                    left, top = tick_stop + offset, x - (height / 2)
                elif orientation == "top":
                    left, top = x - width / 2.0, tick_stop - offset - height
                else:
                    left, top = x - width / 2.0, tick_stop + offset
                rect = QRectF(left, top, width, height)
                if bounding & rect != rect:  # Qt's comparison (fuzzy under Qt 6), as pyqtgraph's
                    continue
                text_specs.append((rect, flags, vstr))
        self._updateMaxTextSize(last_text_size2)


def chart_axes(*, hidden_too: bool = False) -> dict[str, Any]:
    """A chart's left and bottom axes, and with ``hidden_too`` its top and right ones as well (else
    the PlotItem makes plain AxisItems for them; given, it shows them: ``hide_top_right``). GUI thread."""
    names = ("left", "bottom", "top", "right") if hidden_too else ("left", "bottom")
    return {name: TickAxis(name) for name in names}


def hide_top_right(plot: pg.PlotItem) -> None:
    """Hide a plot's top and right axes (shown when given to it, ``chart_axes(hidden_too=True)``). GUI thread."""
    plot.hideAxis("top")
    plot.hideAxis("right")
