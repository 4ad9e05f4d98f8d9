"""new_chart_plot: the plot item of one CurvePanel chart (its axes, view box and title), made in one
place so what a chart's build costs is decided here. GUI thread only."""

from __future__ import annotations

import pyqtgraph as pg

from gym_gui.ui.plots.chart_view_box import ChartViewBox
from gym_gui.ui.plots.tick_axis import chart_axes, hide_top_right

__all__ = ["new_chart_plot"]


def new_chart_plot(title: str) -> pg.PlotItem:
    """A chart's plot item: left and bottom ``TickAxis``, a ``ChartViewBox``, ``title`` set. GUI
    thread; builds Qt objects (a few ms)."""
    plot = pg.PlotItem(axisItems=chart_axes(hidden_too=True), viewBox=ChartViewBox())
    hide_top_right(plot)
    plot.setTitle(title, color="#333333", size="10pt")
    return plot
