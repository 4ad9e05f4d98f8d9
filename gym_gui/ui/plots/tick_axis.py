"""TickAxis: a pyqtgraph AxisItem whose tick values are computed without numpy. GUI thread only.

An axis computes its tick values at every layout (its range stepped, a resize, a zoom) and the
chart's grid (``grid_lines``) asks for them again: pyqtgraph builds each level with ``np.arange``
and drops the values of the levels above with an ``np.isclose`` matrix, whose call overhead is
most of the work for the few dozen ticks of a chart (a fifth of an axis's layout, most of the
grid's). Here the same values come from the same float operations (``(i * spacing + start) /
scale``) and a value is dropped when it lies within a hundredth of the level's spacing of a value
of a level above (``np.isclose`` with that absolute tolerance), as pyqtgraph does.
"""

from __future__ import annotations

import bisect
from math import ceil
from typing import Any

import pyqtgraph as pg

__all__ = ["TickAxis", "chart_axes"]


class TickAxis(pg.AxisItem):
    """pyqtgraph's AxisItem with ``tickValues`` computed in plain Python (module doc). GUI thread."""

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


def chart_axes() -> dict[str, Any]:
    """A chart's left and bottom axes (top and right are made, hidden, by the PlotItem). GUI thread."""
    return {name: TickAxis(name) for name in ("left", "bottom")}
