"""ChartPlot: a CurvePanel chart's plot item, built from only the parts a chart shows. GUI thread only.

pyqtgraph's ``PlotItem`` builds, with every plot, four axes (two of them hidden in our charts), the
"Plot Options" context-menu form (a Qt Designer form of about 40 widgets and their connections),
the auto-range button, and the wrappers of its analysis features (averaging, FFT, log modes,
decimation of old traces) that a chart never uses: about 7 ms of a new chart's build on a quiet
core, in the event-loop turn that builds it. A ``ChartPlot`` is the same grid of the same items
placed as the PlotItem places them (margins 1 px, no spacing, the title in row 0 at 30 px, the
view box at row 2 column 1 with stretch 100, the left axis at row 2 column 0, the bottom axis at
row 3 column 1; the hidden top and right axes' row and column are empty and of no size, as a
hidden axis of zero size left them), the same stacking (view box, then the axes at z 0.5, then the title), so a
chart draws the same pixels (``tests/ui/test_chart_item.py``). What it offers is what the panel,
its charts, their grid and legend use of a PlotItem: ``getViewBox``, ``getAxis`` and ``axes``
(``left`` and ``bottom``), ``titleLabel`` and ``setTitle``, ``addItem`` / ``removeItem`` (an item
with a name goes into the legend, as PlotItem does), ``addLegend`` and ``legend``, ``setXRange`` /
``setYRange`` / ``setRange`` (the view box's). The view box's own context menu ("View All", the
axis forms; ``ChartViewBox``: built at the first right click) is the chart's context menu; the
"Plot Options" submenu and the "A" (auto-range) button are left out ("View All" does what the
button did).
"""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from qtpy.QtWidgets import QGraphicsGridLayout, QGraphicsItem, QSizePolicy

from gym_gui.ui.plots.chart_view_box import ChartViewBox
from gym_gui.ui.plots.tick_axis import TickAxis

__all__ = ["TITLE_HEIGHT_PX", "ChartPlot"]

#: The title row's height (pyqtgraph's PlotItem with a title).
TITLE_HEIGHT_PX = 30
#: Where PlotItem places its items: (row, column).
_VIEW_AT = (2, 1)
_TITLE_AT = (0, 1)
_AXES_AT = {"bottom": (3, 1), "left": (2, 0)}
_EMPTY_ROW, _EMPTY_COLUMN = 1, 2  # PlotItem's top and right axes'


class ChartPlot(pg.GraphicsWidget):
    """A title, a ``ChartViewBox`` and a left and a bottom ``TickAxis`` in PlotItem's grid (module
    doc). GUI thread."""

    def __init__(self, title: str | None = None, *, view_box: pg.ViewBox | None = None,
                 title_size: str = "11pt", **title_style: Any) -> None:
        """Build the plot; ``title`` (None: no title row) is drawn with ``title_size`` and
        ``title_style`` (``LabelItem.setText``'s ``color``, ``bold``, ...). GUI thread; builds Qt
        objects (well under a millisecond of them)."""
        super().__init__()
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        layout = QGraphicsGridLayout()
        layout.setContentsMargins(1, 1, 1, 1)
        layout.setHorizontalSpacing(0)
        layout.setVerticalSpacing(0)
        self.setLayout(layout)
        self.layout = layout
        self.vb = view_box if view_box is not None else ChartViewBox()
        layout.addItem(self.vb, *_VIEW_AT)
        self.legend: pg.LegendItem | None = None
        self.items: list[QGraphicsItem] = []
        self.axes: dict[str, dict[str, Any]] = {}
        for name in ("bottom", "left"):  # PlotItem's order (its top axis first, then bottom, left, right)
            axis = TickAxis(name)
            axis.linkToView(self.vb)
            self.axes[name] = {"item": axis, "pos": _AXES_AT[name]}
            layout.addItem(axis, *_AXES_AT[name])
            axis.setZValue(0.5)  # above the view's images, as in PlotItem
            axis.setFlag(QGraphicsItem.GraphicsItemFlag.ItemNegativeZStacksBehindParent)
            axis.show()
        # its text set with it (PlotItem sets an empty text first, then the title: two layouts)
        self.titleLabel = pg.LabelItem(title or "", parent=self, size=title_size, **title_style)  # noqa: N815
        layout.addItem(self.titleLabel, *_TITLE_AT)
        for row in range(4):
            layout.setRowPreferredHeight(row, 0)
            layout.setRowMinimumHeight(row, 0)
            layout.setRowSpacing(row, 0)
            layout.setRowStretchFactor(row, 1)
        for col in range(3):
            layout.setColumnPreferredWidth(col, 0)
            layout.setColumnMinimumWidth(col, 0)
            layout.setColumnSpacing(col, 0)
            layout.setColumnStretchFactor(col, 1)
        layout.setRowStretchFactor(_VIEW_AT[0], 100)
        layout.setColumnStretchFactor(_VIEW_AT[1], 100)
        # the top axis's row and the right axis's column: empty, of no size (as a hidden axis's,
        # which is 0 px high or wide; an empty row or column would still get its stretch's share)
        layout.setRowMaximumHeight(_EMPTY_ROW, 0)
        layout.setColumnMaximumWidth(_EMPTY_COLUMN, 0)
        self._title_row(title is not None)

    # -- PlotItem's names, what the charts use ---------------------------------------------------
    def getViewBox(self) -> pg.ViewBox:  # noqa: N802 (PlotItem's name)
        """The view box. GUI thread."""
        return self.vb

    def getAxis(self, name: str) -> TickAxis:  # noqa: N802 (PlotItem's name)
        """The ``left`` or ``bottom`` axis; KeyError for another name (a chart has no top or right
        axis), as PlotItem's for an unknown one. GUI thread."""
        if name not in self.axes:
            raise KeyError(f"Scale {name!r} not found. Scales are: {list(self.axes)}")
        return self.axes[name]["item"]

    def setTitle(self, title: str | None = None, **style: Any) -> None:  # noqa: N802 (PlotItem's name)
        """Show ``title`` in a 30 px row above the view (None: hide the row), as PlotItem. GUI thread."""
        self._title_row(title is not None)
        if title is not None:
            self.titleLabel.setText(title, **style)

    def _title_row(self, shown: bool) -> None:
        height = TITLE_HEIGHT_PX if shown else 0
        if not shown:
            self.titleLabel.setVisible(False)
        self.titleLabel.setMaximumHeight(height)
        self.layout.setRowFixedHeight(_TITLE_AT[0], height)
        if shown:
            self.titleLabel.setVisible(True)

    def addItem(self, item: QGraphicsItem, *, ignoreBounds: bool = False) -> None:  # noqa: N802, N803
        """Add ``item`` to the view box; a data item with a name (``item.name()``) also gets a
        legend entry when the plot has a legend, as PlotItem. GUI thread."""
        if item in self.items:
            return
        self.items.append(item)
        self.vb.addItem(item, ignoreBounds=ignoreBounds)
        name = item.name() if hasattr(item, "implements") and item.implements("plotData") else None
        if name is not None and self.legend is not None:
            self.legend.addItem(item, name=name)

    def removeItem(self, item: QGraphicsItem) -> None:  # noqa: N802 (PlotItem's name)
        """Take ``item`` out of the view box and the legend. GUI thread."""
        if item not in self.items:
            return
        self.items.remove(item)
        self.vb.removeItem(item)
        if self.legend is not None:
            self.legend.removeItem(item)

    def addLegend(self, offset: tuple[float, float] = (30, 30), **kwargs: Any) -> pg.LegendItem:  # noqa: N802
        """The legend, made now (anchored in the view box, ``LegendItem(offset=offset, **kwargs)``)
        unless it exists; items added after it with a name get an entry. GUI thread."""
        if self.legend is None:
            self.legend = pg.LegendItem(offset=offset, **kwargs)
            self.legend.setParentItem(self.vb)
        return self.legend

    def setXRange(self, lo: float, hi: float, padding: float | None = None) -> None:  # noqa: N802
        """The view box's ``setXRange``. GUI thread."""
        self.vb.setXRange(lo, hi, padding=padding)

    def setYRange(self, lo: float, hi: float, padding: float | None = None) -> None:  # noqa: N802
        """The view box's ``setYRange``. GUI thread."""
        self.vb.setYRange(lo, hi, padding=padding)

    def setRange(self, *args: Any, **kwargs: Any) -> None:  # noqa: N802
        """The view box's ``setRange``. GUI thread."""
        self.vb.setRange(*args, **kwargs)
