"""CurvePanel: learning-curve charts of one stream's CurveData (pyqtgraph), redrawn from views.

Charts, in order: episode return (each episode, faint, and the rolling mean), episode length,
success rate (rolling), then one chart per number the worker reports (episode metadata, then
heartbeat stats; W&B's "any number becomes a chart"), at most ``max_charts`` in all. An x-axis
selector switches between episode, step (cumulative steps at each episode's end; a heartbeat's
``steps_done``) and wall time (seconds since the stream's first point).

``refresh()`` hands each curve views of the CurveData buffers (``setData``: no Python loop over
points, no copy except for the wall-time offset) and does nothing when the data did not change.
Curves downsample to the pixels shown (``peak``: spikes stay visible) and clip to the visible
range, so a million episodes draw within a frame. GUI thread only.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pyqtgraph as pg
from qtpy.QtWidgets import QComboBox, QHBoxLayout, QLabel, QScrollArea, QSpinBox, QVBoxLayout, QWidget

from gym_gui.live.curves import CurveData
from gym_gui.live.decimate import PeakDecimator

__all__ = ["AXIS_LABELS", "CurvePanel"]

_log = logging.getLogger(__name__)

#: x-axis choices: (key, combo text, axis label).
AXIS_LABELS: tuple[tuple[str, str, str], ...] = (
    ("episode", "Episode", "episode"),
    ("step", "Step", "environment steps"),
    ("wall", "Wall time (s)", "seconds since the first episode"),
)
_BUILTIN_CHARTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("return", "Episode return", ("return", "return_mean")),
    ("length", "Episode length", ("length",)),
    ("success_rate", "Success rate (rolling)", ("success_rate",)),
)
#: Height of one row of charts; more rows than fit scroll.
CHART_HEIGHT_PX = 170
SHOW_GRID = True
#: Bins of a decimated curve: about one per pixel of a chart (each bin draws its min-max stroke).
DECIMATED_BINS = 512
#: Up to this many points a curve gets the whole series (pyqtgraph downsamples it to the pixels).
FULL_RES_POINTS = 20_000
#: Zoomed in, a visible slice up to this many rows is drawn at full resolution, else from the bins.
ZOOM_FULL_RES_ROWS = 200_000
_RAW_PEN = pg.mkPen((175, 198, 235), width=1)  # opaque: blending a million strokes costs
_MEAN_PEN = pg.mkPen((20, 90, 200), width=2)
_LINE_PEN = pg.mkPen((40, 120, 60), width=1)  # width 1: Qt strokes it without the wide-pen stroker
_EXTRA_PEN = pg.mkPen((170, 90, 20), width=1)


def _check_binding() -> None:
    """pyqtgraph must draw with the binding qtpy chose (it follows an already imported one)."""
    import qtpy

    if pg.Qt.QT_LIB != qtpy.API_NAME:
        raise RuntimeError(f"pyqtgraph uses {pg.Qt.QT_LIB} but qtpy uses {qtpy.API_NAME}")


_check_binding()


def style_curve(curve: pg.PlotDataItem) -> pg.PlotDataItem:
    """Downsample to the pixels shown (peak: min and max per pixel) and clip to the view. GUI thread."""
    curve.setDownsampling(auto=True, method="peak")
    curve.setClipToView(True)
    return curve


class _Chart:
    """One plot and its curves, keyed by series name."""

    def __init__(self, plot: pg.PlotItem, title: str) -> None:
        self.plot = plot
        self.title = title
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.decimators: dict[tuple[str, str], PeakDecimator] = {}


class CurvePanel(QWidget):
    """The charts of one CurveData (see the module doc). GUI thread only."""

    def __init__(self, data: CurveData | None = None, *, max_charts: int = 12, columns: int = 2,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._data = data if data is not None else CurveData()
        self._max_charts = max(3, max_charts)
        self._feeding = False
        self._columns = max(1, columns)
        self._axis = "episode"
        self._drawn_version = -1
        self._charts: dict[str, _Chart] = {}
        self._series_chart: dict[str, str] = {}
        self.refreshes = 0  # refreshes that redrew (tests, benchmarks)
        self.charts_dropped = 0  # series beyond max_charts

        self.axis_box = QComboBox()
        for key, text, _label in AXIS_LABELS:
            self.axis_box.addItem(text, key)
        self.axis_box.setToolTip("What the charts' x-axis counts: episodes, environment steps (at each "
                                 "episode's end), or seconds since the first episode")
        self.axis_box.currentIndexChanged.connect(self._on_axis)
        self.window_box = QSpinBox()
        self.window_box.setRange(1, 100_000)
        self.window_box.setValue(self._data.window)
        self.window_box.setPrefix("rolling over ")
        self.window_box.setSuffix(" episodes")
        self.window_box.setToolTip("Episodes in the rolling mean of the return and in the success rate")
        self.window_box.valueChanged.connect(self._on_window)
        self.status_label = QLabel()
        bar = QHBoxLayout()
        bar.addWidget(QLabel("x-axis:"))
        bar.addWidget(self.axis_box)
        bar.addWidget(self.window_box)
        bar.addStretch(1)
        bar.addWidget(self.status_label)

        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        self.graphics.setMinimumHeight(CHART_HEIGHT_PX)
        self.scroll = QScrollArea()  # many worker numbers: the charts keep their height and scroll
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.scroll.setWidget(self.graphics)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.scroll, 1)
        for key, title, series in _BUILTIN_CHARTS:
            chart = self._add_chart(key, title)
            for name in series:
                self._add_curve(chart, name)
        self.refresh()

    # -- public ----------------------------------------------------------------------------------
    @property
    def data(self) -> CurveData:
        """The CurveData drawn. GUI thread."""
        return self._data

    def set_data(self, data: CurveData) -> None:
        """Draw another CurveData (e.g. a whole run read from SQLite). GUI thread; never blocks."""
        self._data = data
        self.window_box.blockSignals(True)
        self.window_box.setValue(data.window)
        self.window_box.blockSignals(False)
        self._drawn_version = -1
        self.refresh()

    @property
    def axis(self) -> str:
        """The x-axis: ``episode``, ``step`` or ``wall``. GUI thread."""
        return self._axis

    def set_axis(self, axis: str) -> None:
        """Switch the x-axis (see AXIS_LABELS). GUI thread; never blocks."""
        index = self.axis_box.findData(axis)
        if index < 0:
            raise ValueError(f"unknown axis {axis!r}")
        self.axis_box.setCurrentIndex(index)

    def chart_titles(self) -> list[str]:
        """The charts' titles in order. GUI thread."""
        return [chart.title for chart in self._charts.values()]

    def curve_data(self, series: str) -> tuple[np.ndarray, np.ndarray]:
        """What the curve of ``series`` was last given (x, y), empty if none. GUI thread."""
        chart = self._charts.get(self._series_chart.get(series, ""))
        curve = chart.curves.get(series) if chart is not None else None
        if curve is None or curve.xData is None:
            return np.empty(0), np.empty(0)
        return curve.xData, curve.yData

    def refresh(self) -> bool:
        """Redraw from the data when it changed since the last redraw; True if it redrew.
        GUI thread; never blocks (views handed to setData; drawing happens at the next paint)."""
        data = self._data
        if data.version == self._drawn_version:
            return False
        self._drawn_version = data.version
        for name in data.series_names():
            if name not in self._series_chart:
                self._add_series_chart(name)
        offset = self._wall_offset() if self._axis == "wall" else 0.0
        self._feeding = True
        try:
            for chart in self._charts.values():
                zoomed = not chart.plot.getViewBox().autoRangeEnabled()[0]
                x_range = chart.plot.getViewBox().viewRange()[0] if zoomed else None
                for name, curve in chart.curves.items():
                    x, y = self._points(chart, name, data, x_range, offset)
                    curve.setData(x, y, connect="finite")
        finally:
            self._feeding = False
        self.refreshes += 1
        count = data.episode_count
        self.status_label.setText(f"{count:,} episode{'s' if count != 1 else ''}")
        return True

    # -- internals -------------------------------------------------------------------------------
    def _points(self, chart: _Chart, name: str, data: CurveData, x_range: list[float] | None,
                offset: float) -> tuple[np.ndarray, np.ndarray]:
        """What one curve draws: the whole series while it is small; else the peak bins of the
        whole series (updated incrementally), or, zoomed in on few enough rows, those rows."""
        x, y = data.series(name, self._axis)
        if len(x) > FULL_RES_POINTS:
            if x_range is not None:
                lo, hi = np.searchsorted(x, [x_range[0] + offset, x_range[1] + offset])
                lo, hi = max(0, int(lo) - 1), min(len(x), int(hi) + 1)
                if hi - lo <= ZOOM_FULL_RES_ROWS:
                    x, y = x[lo:hi], y[lo:hi]
                    return (x - offset if offset else x), y
            key = (name, self._axis)
            decimator = chart.decimators.get(key)
            if decimator is None:
                decimator = chart.decimators[key] = PeakDecimator(max_bins=DECIMATED_BINS)
            decimator.update(x, y, (id(data), data.rewritten))
            x, y = decimator.arrays()
        return (x - offset if offset else x), y

    def _on_view_changed(self, view_box: Any, *_args: Any) -> None:
        """The person zoomed or panned (auto-range off): redraw at the resolution of the new range."""
        if self._feeding or view_box.autoRangeEnabled()[0]:
            return
        if self._data.episode_count > FULL_RES_POINTS or self._data.heartbeat_count > FULL_RES_POINTS:
            self._drawn_version = -1
            self.refresh()

    def _wall_offset(self) -> float:
        """Epoch seconds of the stream's first point (episode or heartbeat): wall time's zero."""
        data = self._data
        firsts = [data.series("return", "wall")[0][:1]]
        firsts += [data.series(n, "wall")[0][:1] for n in data.series_names() if n.startswith("hb:")][:1]
        values = np.concatenate(firsts)
        values = values[np.isfinite(values)]
        return float(values.min()) if len(values) else 0.0

    def _add_chart(self, key: str, title: str) -> _Chart:
        i = len(self._charts)
        row, col = divmod(i, self._columns)
        plot = self.graphics.addPlot(row=row, col=col)
        plot.setTitle(title, color="#333333", size="10pt")
        self.graphics.setMinimumHeight((row + 1) * CHART_HEIGHT_PX)
        plot.showGrid(x=SHOW_GRID, y=SHOW_GRID, alpha=0.25)
        plot.setMenuEnabled(True)
        chart = _Chart(plot, title)
        self._charts[key] = chart
        plot.getViewBox().sigXRangeChanged.connect(self._on_view_changed)
        if key == "return":
            plot.addLegend(offset=(-5, 5), labelTextColor=(40, 40, 40), brush=pg.mkBrush(255, 255, 255, 200))
        return chart

    def _add_curve(self, chart: _Chart, name: str) -> None:
        if name == "return":
            curve = chart.plot.plot(pen=_RAW_PEN, name="each episode")
        elif name == "return_mean":
            curve = chart.plot.plot(pen=_MEAN_PEN, name="rolling mean")
        elif name.startswith(("meta:", "hb:")):
            curve = chart.plot.plot(pen=_EXTRA_PEN)
        else:
            curve = chart.plot.plot(pen=_LINE_PEN)
        if name == "success_rate":
            chart.plot.setYRange(0, 1, padding=0.05)
        chart.curves[name] = style_curve(curve)
        self._series_chart[name] = next(k for k, c in self._charts.items() if c is chart)

    def _add_series_chart(self, name: str) -> None:
        if len(self._charts) >= self._max_charts:
            self._series_chart[name] = ""
            self.charts_dropped += 1
            _log.info("curve panel: no room for a chart of %s (%d charts)", name, len(self._charts))
            return
        source, _, key = name.partition(":")
        title = f"{key} ({'episode metadata' if source == 'meta' else 'heartbeat'})"
        chart = self._add_chart(name, title)
        self._add_curve(chart, name)

    def _on_axis(self, _index: int) -> None:
        axis = self.axis_box.currentData()
        if axis == self._axis:
            return
        self._axis = axis
        for chart in self._charts.values():
            chart.plot.enableAutoRange(axis="x")
        self._drawn_version = -1
        self.refresh()

    def _on_window(self, window: int) -> None:
        self._data.set_window(int(window))
        self.refresh()

    def snapshot(self) -> dict[str, Any]:
        """Counts for tests and the debug view: charts, refreshes, charts dropped. GUI thread."""
        return {"charts": len(self._charts), "refreshes": self.refreshes, "charts_dropped": self.charts_dropped}
