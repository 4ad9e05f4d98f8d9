"""A CurvePanel chart's ChartPlot and PlotCurveItem curves draw what its pyqtgraph PlotItem and
PlotDataItems drew: the same geometry of its view box, axes and title, and the same pixels (axes,
ticks, grid, title, legend, curves) as a PlotItem with the same TickAxis axes (top and right
hidden), the same ChartViewBox and title, whose SplitCurves are made of PlotDataItems. Real
pyqtgraph items under pytest-qt, rendered offscreen, at several sizes, ranges and data."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pyqtgraph as pg
import pytest
from qtpy.QtWidgets import QApplication

from gym_gui.live.decimate import PeakDecimator
from gym_gui.ui.plots.chart_item import ChartPlot
from gym_gui.ui.plots.chart_plot import TITLE_COLOUR, TITLE_SIZE, new_chart_plot
from gym_gui.ui.plots.chart_view_box import ChartViewBox
from gym_gui.ui.plots import split_curve
from gym_gui.ui.plots.curve_chart import _MEAN_PEN, _RAW_PEN, CurveChart, cache_legend
from gym_gui.ui.plots.tick_axis import TickAxis, chart_axes, hide_top_right

LEGEND = {"offset": (-5, 5), "labelTextColor": (40, 40, 40), "brush": pg.mkBrush(255, 255, 255, 200)}


def pyqtgraph_plot(title: str) -> pg.PlotItem:
    """The chart's plot item as it was made before ChartPlot."""
    plot = pg.PlotItem(axisItems=chart_axes(hidden_too=True), viewBox=ChartViewBox())
    hide_top_right(plot)
    plot.setTitle(title, color=TITLE_COLOUR, size=TITLE_SIZE)
    return plot


def settle() -> None:
    for _ in range(20):
        QApplication.processEvents()


def chart_widget(qtbot: Any, make: Callable[[str], Any], size: tuple[int, int], legend: bool) -> tuple[Any, Any]:
    widget = pg.GraphicsLayoutWidget()
    qtbot.addWidget(widget)
    widget.setBackground("w")
    widget.resize(*size)
    plot = make("Episode return")
    widget.addItem(plot, row=0, col=0)
    chart = CurveChart("return", plot, "Episode return")
    plot.getViewBox().disableAutoRange()
    if legend:
        plot.addLegend(**LEGEND)
    widget.show()
    qtbot.waitExposed(widget)
    return widget, chart


def test_a_chart_plot_is_placed_as_pyqtgraphs_plot_item(qtbot: Any) -> None:
    for size in ((450, 170), (900, 340), (200, 120)):
        geometries = []
        for make in (pyqtgraph_plot, new_chart_plot):
            widget, chart = chart_widget(qtbot, make, size, legend=False)
            settle()
            plot = chart.plot
            parts = [plot, plot.getViewBox(), plot.getAxis("left"), plot.getAxis("bottom"), plot.titleLabel]
            geometries.append([part.geometry() for part in parts])
            widget.close()
        assert geometries[0] == geometries[1], size


def data_item(pen: Any = None, name: str | None = None) -> pg.PlotDataItem:
    """A SplitCurve part as it was before: a PlotDataItem whose curve the body caches."""
    item = pg.PlotDataItem(pen=pen, name=name)
    item.setCacheMode = item.curve.setCacheMode  # type: ignore[method-assign]
    return item


@pytest.mark.parametrize("size", [(450, 170), (700, 300)])
def test_a_chart_draws_the_pixels_it_drew_with_a_plot_item_and_data_items(qtbot: Any, monkeypatch: Any,
                                                                          size: tuple[int, int]) -> None:
    """The reference is the chart as it was built before: a PlotItem (four TickAxis, two hidden)
    whose SplitCurves are made of PlotDataItems; ours a ChartPlot whose SplitCurves are
    PlotCurveItems: the same axes, ticks, grid, title, legend and lines after each range step,
    for a decimated series with a gap and its rolling mean."""
    x = np.arange(30_000, dtype=float)
    raw = np.sin(x * 0.37) * (1 + x / 3000) + x / 1000
    raw[12_345] = np.nan
    mean = np.convolve(np.nan_to_num(raw), np.ones(100) / 100, mode="same")
    images: list[list[Any]] = [[], []]
    for k, make in enumerate((pyqtgraph_plot, new_chart_plot)):
        with monkeypatch.context() as patch:
            if make is pyqtgraph_plot:
                patch.setattr(split_curve, "ChartCurve", data_item)
            widget, chart = chart_widget(qtbot, make, size, legend=True)
            curves = [chart.add_curve("return"), chart.add_curve("return_mean")]
        assert all(isinstance(c.body, pg.PlotDataItem if make is pyqtgraph_plot else pg.PlotCurveItem) for c in curves)
        cache_legend(chart.plot.legend)
        decimators = [PeakDecimator(max_bins=512), PeakDecimator(max_bins=512)]
        for end in (40, 900, 5_000, 5_020, 29_999):
            for curve, decimator, y in zip(curves, decimators, (raw, mean)):
                decimator.update(x[:end], y[:end])
                curve.setData(*decimator.arrays(), connect="finite")
            chart.follow()
            settle()
            images[k].append(widget.grab().toImage())
        assert [label.text for _sample, label in chart.plot.legend.items] == ["each episode", "rolling mean"]
        widget.close()
    for step, (theirs, ours) in enumerate(zip(*images)):
        assert theirs == ours, f"step {step} differs"


def test_a_chart_plot_has_only_the_shown_axes_and_no_plot_options(qtbot: Any) -> None:
    plot = new_chart_plot("loss (heartbeat)")
    assert isinstance(plot, ChartPlot) and isinstance(plot.getViewBox(), ChartViewBox)
    assert sorted(plot.axes) == ["bottom", "left"] and all(isinstance(a["item"], TickAxis) for a in plot.axes.values())
    with pytest.raises(KeyError):
        plot.getAxis("right")
    assert plot.titleLabel.text == "loss (heartbeat)" and plot.titleLabel.isVisibleTo(plot)
    assert not hasattr(plot, "ctrlMenu") and not hasattr(plot, "autoBtn")
    assert plot.getViewBox().menu is None and plot.getViewBox().menuEnabled()  # built at the first right click
    named = pg.PlotCurveItem(pen=_RAW_PEN, name="each episode")
    plot.addItem(named)  # no legend yet: no entry, as PlotItem
    legend = plot.addLegend(**LEGEND)
    assert plot.addLegend() is legend and legend.parentItem() is plot.getViewBox()
    later = pg.PlotCurveItem(pen=_MEAN_PEN, name="rolling mean")
    plot.addItem(later)
    plot.addItem(pg.PlotCurveItem(pen=_MEAN_PEN))  # no name: no entry
    assert [label.text for _sample, label in legend.items] == ["rolling mean"]
    assert later.parentItem() is plot.getViewBox().childGroup
    plot.removeItem(later)
    assert legend.items == [] and later.parentItem() is None
    plot.setTitle(None)
    assert not plot.titleLabel.isVisibleTo(plot)
    plot.setTitle("again", color=TITLE_COLOUR, size=TITLE_SIZE)
    assert plot.titleLabel.text == "again" and plot.titleLabel.isVisibleTo(plot)
