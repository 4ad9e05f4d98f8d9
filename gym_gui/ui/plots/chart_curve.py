"""ChartCurve: a pyqtgraph PlotCurveItem whose data bounds cost less at a live tick. GUI thread only.

A curve's bounding rect is asked for at every paint of its scene (Qt's item lookup) and is made
again after each ``setData`` and each change of its view's range or size: its data bounds (two
``np.nanmin`` / ``np.nanmax`` passes inside a ``warnings.catch_warnings`` block, about 15 us an
axis) and the size of a pixel. A chart's tail curve gets a few dozen points at every live tick,
and pyqtgraph dropped the data bounds with the pixel size at every range step, so the body's
hundreds of points were scanned again for a range change that did not change them. Here the data
bounds of fewer than ``SMALL_POINTS`` points are found as Python floats, and a view change keeps
the data bounds (they do not depend on the view) and drops only the bounding rect. The values are
pyqtgraph's, exactly: the extremes of the finite values; ``(nan, nan)`` when every value is NaN;
``(None, None)`` when there is none or none is finite and some is infinite; pyqtgraph's own code
for a fraction of the data, an orthogonal range, a fill level or a pen that is not cosmetic
(``tests/ui/test_chart_curve.py``).
"""

from __future__ import annotations

import math
from typing import Any

from pyqtgraph.graphicsItems.PlotCurveItem import PlotCurveItem
from qtpy.QtCore import Qt

__all__ = ["SMALL_POINTS", "ChartCurve", "small_bounds"]

#: Fewer points than this are scanned as Python floats (a numpy reduction's call costs more).
SMALL_POINTS = 64


def small_bounds(values: Any) -> tuple[float | None, float | None]:
    """pyqtgraph's data bounds of ``values`` (a short 1-D array) at ``frac`` 1 (module doc). Pure."""
    items = values.tolist()
    finite = [v for v in items if v - v == 0]  # NaN and infinities left out
    if finite:
        return float(min(finite)), float(max(finite))
    if any(math.isinf(v) for v in items):
        return None, None
    return math.nan, math.nan


class ChartCurve(PlotCurveItem):
    """A PlotCurveItem with cheaper data bounds for short curves and data bounds kept across view
    changes (module doc). GUI thread."""

    def dataBounds(self, ax: int, frac: float = 1.0, orthoRange: Any = None) -> tuple[Any, Any]:  # noqa: N802, N803
        """As ``PlotCurveItem.dataBounds`` (module doc). GUI thread; O(points)."""
        cache = self._boundsCache[ax]
        if cache is not None and cache[0] == (frac, orthoRange):
            return cache[1]
        data = self.xData if ax == 0 else self.yData
        if (data is None or len(data) >= SMALL_POINTS or frac < 1.0 or orthoRange is not None or ax not in (0, 1)
                or self.opts["fillLevel"] not in (None, "enclosed") or not self._pens_cosmetic()):
            return super().dataBounds(ax, frac, orthoRange)
        if len(data) == 0 or len(self.xData) == 0:
            return None, None
        bounds = small_bounds(data)
        if bounds[0] is None:
            return bounds  # not kept, as pyqtgraph
        self._boundsCache[ax] = [(frac, orthoRange), bounds]
        return bounds

    def viewTransformChanged(self) -> None:  # noqa: N802 (pyqtgraph's name)
        """The view's range or size changed: the bounding rect (padded by a pixel's size) is made
        again, the data bounds are kept. GUI thread."""
        self._boundingRect = None
        self.prepareGeometryChange()

    def _pens_cosmetic(self) -> bool:
        for pen in (self.opts["pen"], self.opts["shadowPen"]):
            if pen is not None and not pen.isCosmetic() and pen.style() != Qt.PenStyle.NoPen:
                return False
        return True
