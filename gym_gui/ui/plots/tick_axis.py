"""TickAxis: a pyqtgraph AxisItem whose tick values are computed without numpy and whose label's
rich text is set only when it changes. GUI thread only.

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
once).
"""

from __future__ import annotations

import bisect
from math import ceil
from typing import Any

import pyqtgraph as pg

__all__ = ["TickAxis", "chart_axes", "hide_top_right"]


class TickAxis(pg.AxisItem):
    """pyqtgraph's AxisItem with ``tickValues`` computed in plain Python and its label's text set
    only when it changes (module doc). GUI thread."""

    _label_html: str | None = None  # the label text last set

    def _updateLabel(self) -> None:  # noqa: N802 (pyqtgraph's name)
        """As ``AxisItem._updateLabel``, without setting an unchanged label text again. GUI thread."""
        html = self.labelString()
        if html != self._label_html:
            self._label_html = html
            self.label.setHtml(html)
        self._adjustSize()
        self.picture = None
        self.update()

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


def chart_axes(*, hidden_too: bool = False) -> dict[str, Any]:
    """A chart's left and bottom axes, and with ``hidden_too`` its top and right ones as well (else
    the PlotItem makes plain AxisItems for them; given, it shows them: ``hide_top_right``). GUI thread."""
    names = ("left", "bottom", "top", "right") if hidden_too else ("left", "bottom")
    return {name: TickAxis(name) for name in names}


def hide_top_right(plot: pg.PlotItem) -> None:
    """Hide a plot's top and right axes (shown when given to it, ``chart_axes(hidden_too=True)``). GUI thread."""
    plot.hideAxis("top")
    plot.hideAxis("right")
