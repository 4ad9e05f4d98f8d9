"""new_chart_plot: the plot item of one CurvePanel chart (its axes, view box and title), made in one
place so what a chart's build costs is decided here. GUI thread only.

The item is a ``ChartPlot`` (``plots/chart_item.py``): pyqtgraph's PlotItem grid holding only what a
chart shows (a title, a ``ChartViewBox``, a left and a bottom ``TickAxis``), the same pixels
without PlotItem's hidden axes, its "Plot Options" form and its auto-range button."""

from __future__ import annotations

from gym_gui.ui.plots.chart_item import ChartPlot

__all__ = ["TITLE_COLOUR", "TITLE_SIZE", "new_chart_plot"]

TITLE_COLOUR = "#333333"
TITLE_SIZE = "10pt"


def new_chart_plot(title: str) -> ChartPlot:
    """A chart's plot item: left and bottom ``TickAxis``, a ``ChartViewBox``, ``title`` set. GUI
    thread; builds Qt objects (about 2 ms of them on a quiet core)."""
    return ChartPlot(title, title_size=TITLE_SIZE, color=TITLE_COLOUR)
