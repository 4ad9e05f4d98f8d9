"""CurvePanel: learning-curve charts of one stream's CurveData (pyqtgraph), the GUI thread drawing
only small pre-decimated arrays.

Charts, in order: episode return (each episode, faint, and the rolling mean), episode length,
success rate (rolling), then one chart per number the worker reports (episode metadata, then
heartbeat stats; W&B's "any number becomes a chart"), at most ``max_charts`` in all. An x-axis
selector switches between episode, step (cumulative steps at each episode's end; a heartbeat's
``steps_done``) and wall time (seconds since the stream's first point).

Every curve gets at most about ``2 * DECIMATED_BINS`` points, the min and max of each bin of rows
(``live.decimate``): every episode is represented, every spike visible; pyqtgraph's own
downsampling and clipping (a re-read of every point at every refresh) are off. New charts (a
worker number seen for the first time) are built one per event-loop turn, never inside the
refresh that found their series (a chart's pyqtgraph widgets take 10 to 20 ms of CPU to build: a
history's merge would hold its refresh and the build in one event). A new panel's first paint
draws its first chart only; the other two are shown one per turn after it; a chart built for a
shown panel is likewise left out of the paint after its build and shown at the turn after it, and
the next new chart is built after that (``ranges_pending()`` until every chart is built and shown).
A new series' chart is built in two turns: the chart (its PlotItem, axes, title, grid, placed in
the layout, left out of the paints if the panel is shown) in one, its curves and first data in the
next; no paint shows it before both ran.
Once built (the first three with the panel, each later one in its turn), a chart's thousands of
pyqtgraph objects are moved out of the cycle collector's view (``gc_tuning.freeze_long_lived``,
O(1), a no-op unless the app froze its start-up objects): no collection walks them again, and the
young generation they filled starts again from empty, so its next collection does not come due
during the load and first paints that follow the build.

- A chart that shows everything ("following") keeps a ``PeakDecimator`` per curve: a live tick
  folds in the new rows only (O(new points), ``refresh()``). Its x-range steps (``follow_range``)
  instead of changing at every tick, and its axes are cached, so a repaint redraws the curves but
  seldom the axis texts. At most one chart steps its ranges between two paints (its axes' texts
  are laid out again at the next paint); the others take their turns after the following paints,
  so a new data set or x-axis does not lay out every axis in one paint (``ranges_pending()``).
  pyqtgraph's auto-range is off from the start (the panel sets the ranges); "View all" turns it on
  for a chart, which then follows the data again.
- Work that grows with the run goes to the panel's worker thread (``PlotWorker``): building the
  decimation of a whole series (a stored run shown, a history merged, another x-axis, rows before
  the end rewritten) once it is longer than ``offload_rows``, a rolling-window change, and the
  re-decimation of the visible range when the person zooms or pans a chart (a zoomed-in slice
  comes back as its rows: the full data is there). A newer request cancels the older; a closed
  panel cancels them all and its thread ends (``stop()`` waits for it).

GUI thread only (except where a docstring says otherwise).
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import numpy as np
import pyqtgraph as pg
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QComboBox, QHBoxLayout, QLabel, QScrollArea, QSpinBox, QVBoxLayout, QWidget

from gym_gui.gc_tuning import freeze_long_lived
from gym_gui.live.curves import CurveData, WindowColumns
from gym_gui.live.curve_jobs import build_decimators, decimate_views, wall_offset
from gym_gui.live.decimate import PeakDecimator
from gym_gui.ui.plots.curve_chart import CurveChart, cache_legend, style_curve
from gym_gui.ui.plots.chart_plot import new_chart_plot
from gym_gui.ui.plots.gui_turns import gui_turns
from gym_gui.ui.plots.plot_worker import PlotWorker
from gym_gui.ui.plots.split_curve import SplitCurve

__all__ = ["AXIS_LABELS", "CurvePanel", "style_curve"]  # style_curve: for the views that import it here

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
#: A chart's preferred (and least) width: the columns share what is left equally.
CHART_MIN_WIDTH_PX = 120
SHOW_GRID = True
#: Bins of a decimated curve: about one per pixel of a chart (each bin draws its min-max stroke).
DECIMATED_BINS = 512
#: Rows of work (a series to decimate, rows to refold, a rolling window) done on the GUI thread at
#: most; more goes to the worker thread (a few ms of numpy at most on the GUI thread).
OFFLOAD_ROWS = 20_000
#: The frame the repaint after a chart's build waits for before the window's next pump tick
#: (``gui_turns``): the whole view's repaint, 10-25 ms, runs as early in a frame as there is.
BUILD_PAINT_ROOM_MS = 16.0
#: The same for a range step's turn (its two axes laid out again at the paint right after it, 3-7
#: ms) and a chart shown (its first paint, 5-10 ms): the piece itself is short, its paint is not.
FOLLOW_ROOM_MS = 8.0
REVEAL_ROOM_MS = 10.0


class CurvePanel(QWidget):
    """The charts of one CurveData (see the module doc). GUI thread only."""

    def __init__(self, data: CurveData | None = None, *, max_charts: int = 12, columns: int = 2,
                 offload_rows: int = OFFLOAD_ROWS, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._data = data if data is not None else CurveData()
        self._max_charts = max(3, max_charts)
        self._offload_rows = max(0, offload_rows)
        self._feeding = False
        self._columns = max(1, columns)
        self._axis = "episode"
        self._drawn_version = -1
        self._charts: dict[str, CurveChart] = {}
        self._series_chart: dict[str, str] = {}
        # The whole-series decimation of each curve: (decimator, data.rewritten it is synced to),
        # for (id(data), axis) == _dec_key; _rebuilding: the key a worker job builds for.
        self._dec: dict[str, tuple[PeakDecimator, int]] = {}
        self._dec_key: tuple[int, str] | None = None
        self._rebuilding: tuple[int, str] | None = None
        self.worker = PlotWorker(self, name="curve-panel")
        # The turns (``gui_turns``): "follow", the next chart's turn to step its ranges (after a
        # paint); "build", the next new series' chart; "fill", its curves and first data (the turn
        # after its build); "reveal", the next chart a paint left out.
        self._turns = gui_turns()
        self._follow_waiting = False  # a following chart waits for its turn
        self._new_veiled: CurveChart | None = None  # a chart just built, left out of the next paint
        self._build_after_paint = False  # the next new chart is built after the paint showing the last
        self._unfilled: dict[str, CurveChart] = {}  # series whose chart was built, their curve not yet
        # A refresh's charts whose curves wait for their new bins (``refresh_in_turns``), in order,
        # and what to call once the last has them.
        self._unset: dict[str, None] = {}
        self._set_offset = 0.0
        self._set_state: dict[str, tuple[Any, ...] | None] = {}  # per curve: ``_state_of`` when last handed its bins
        self._done_after_set: list[Callable[[], None]] = []
        self._paint_holds: set[str] = set()  # reasons the view does not repaint now (``hold_paint``)
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
        self.graphics.scene().sigPrepareForPaint.connect(self._on_paint)
        self.graphics.setFixedHeight(CHART_HEIGHT_PX)  # rows x CHART_HEIGHT_PX once charts are added
        self.scroll = QScrollArea()  # many worker numbers: the charts keep their height and scroll
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        # The scroll bar's place is kept from the start: a row that outgrows the panel shows the bar
        # in it, not narrowing every chart (a resize of every chart and a relayout of every axis,
        # a 30-80 ms paint of the whole view, in the steady state of a live run).
        self.scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setWidget(self.graphics)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.scroll, 1)
        for key, title, series in _BUILTIN_CHARTS:
            chart = self._add_chart(key, title)
            for name in series:
                self._add_curve(chart, name)
            if chart.plot.legend is not None:
                cache_legend(chart.plot.legend)  # its entries are there now
        # The panel's first paint draws the first chart only; the others are shown one per turn
        # after it (each chart's first paint lays out its axes, grid and title: 5 to 10 ms).
        self._veiled = list(self._charts.values())[1:]
        for chart in self._veiled:
            chart.plot.setOpacity(0.0)  # laid out as any other, not painted
        self.refresh()
        freeze_long_lived()  # the charts live as long as the panel (module doc)

    # -- public ----------------------------------------------------------------------------------
    @property
    def data(self) -> CurveData:
        """The CurveData drawn. GUI thread."""
        return self._data

    def set_data(self, data: CurveData) -> None:
        """Draw another CurveData (e.g. a whole run read from SQLite): a long one is decimated on
        the worker thread and shown when that lands. GUI thread; never blocks."""
        self._data = data
        self.window_box.blockSignals(True)
        self.window_box.setValue(data.window)
        self.window_box.blockSignals(False)
        self.worker.cancel("window")
        for chart in self._charts.values():
            chart.reset_follow()
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

    def plot_item(self, series: str) -> pg.PlotItem | None:
        """The plot that draws ``series`` (tests, zooming from code). GUI thread."""
        chart = self._charts.get(self._series_chart.get(series, ""))
        return chart.plot if chart is not None else None

    def curve_data(self, series: str) -> tuple[np.ndarray, np.ndarray]:
        """What the curve of ``series`` was last given (x, y), empty if none. GUI thread."""
        chart = self._charts.get(self._series_chart.get(series, ""))
        curve = chart.curves.get(series) if chart is not None else None
        if curve is None or curve.xData is None:
            return np.empty(0), np.empty(0)
        return curve.xData, curve.yData

    def busy(self) -> bool:
        """True while worker results are awaited (a decimation, a window change, a zoom). GUI thread."""
        return self.worker.pending()

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Cancel the worker's jobs and wait up to ``timeout_s`` for its thread to end; True when it
        has; the work put off to the next turn is dropped. The panel then draws only what needs no
        worker. GUI thread; blocks up to ``timeout_s``."""
        self._turns.cancel(self)
        while self._unset:  # a spread refresh's charts: their bins now
            self._set_next_chart()
        self._done_after_set = []
        if self._unfilled:  # a chart built: its curves, drawn at the next refresh
            self._fill_charts()
            self._drawn_version = -1
        while self._veiled:  # nothing left out
            self._veiled.pop(0).plot.setOpacity(1.0)
        self._new_veiled = None
        self._build_after_paint = False
        for reason in list(self._paint_holds):
            self.release_paint(reason)
        return self.worker.stop(timeout_s)

    def refresh(self) -> bool:
        """Redraw from the data when it changed since the last redraw; True if it redrew. A
        following chart folds in the new rows (O(new points)); a zoomed one asks the worker for its
        range. GUI thread; never blocks (small arrays handed to setData; drawing at the next paint)."""
        if not self._fold_all():
            return False
        self._finish()
        return True

    def refresh_in_turns(self, done: Callable[[], None] | None = None) -> bool:
        """``refresh`` spread over event-loop turns (``gui_turns``), none longer than a chart's
        part: this call folds the new rows into every following curve's bins (O(new points), no
        drawing item touched) and asks the worker for the zoomed charts' ranges; then each chart's
        curves get their bins in a turn of their own (the charts in view first), the ranges step at
        the turn after the last, and ``done()`` runs there (``refreshes`` counts it then). A refresh
        asked for while one is spread folds its rows at once and its charts join the turns to come.
        False (``done`` not called) when the data did not change. GUI thread; never blocks."""
        if not self._fold_all():
            if done is not None and self._unset:
                self._done_after_set.append(done)  # the spread refresh under way ends with it
                return True
            return False
        if done is not None:
            self._done_after_set.append(done)
        self._turns.request(self, "set", self._set_turn)
        return True

    def _fold_all(self) -> bool:
        """The first part of a refresh: the new rows folded into each following curve's bins, the
        charts whose curves need their new bins noted (``_unset``), the zoomed ones' worker jobs."""
        data = self._data
        if data.version == self._drawn_version:
            return False
        self._drawn_version = data.version
        self._build_new_charts(data)
        key = (id(data), self._axis)
        if key != self._dec_key:
            self._dec, self._dec_key = {}, key
        self._set_offset = wall_offset(self._data) if self._axis == "wall" else 0.0
        rebuild: list[str] = []
        for chart in self._charts.values():
            if chart.plot.getViewBox().autoRangeEnabled()[0]:
                chart.following = True  # the person asked for the whole view again
            if not chart.following:
                for name in chart.curves:
                    self._set_state.pop(name, None)  # (its curves show the zoomed range's rows)
                self._view_data_changed(chart)
                continue
            stale = False
            for name, curve in chart.curves.items():
                if not self._fold_whole(name, curve, data):
                    rebuild.append(name)
                stale = stale or self._set_state.get(name) != self._state_of(name)
            if stale:
                self._unset[chart.key] = None
        if rebuild and self._rebuilding != key:
            self._request_rebuild(rebuild)
        count = data.episode_count
        self.status_label.setText(f"{count:,} episode{'s' if count != 1 else ''}")
        return True

    def _set_next_chart(self) -> None:
        """Hand the next chart waiting for its bins (one in view first) its curves' arrays."""
        key = self._next_unset()
        del self._unset[key]
        chart = self._charts.get(key)
        if chart is None or not chart.following:
            return
        offset = self._set_offset
        self._feeding = True
        try:
            for name, curve in chart.curves.items():
                entry = self._dec.get(name)
                if entry is not None:
                    dx, dy = entry[0].arrays()
                    curve.setData(dx - offset if offset else dx, dy, connect="finite")
                    self._set_state[name] = self._state_of(name)
        finally:
            self._feeding = False

    def _state_of(self, name: str) -> tuple[Any, ...] | None:
        """What a curve's bins are made of (its decimator, the rows and rewrite it holds, the
        axis and offset): a curve handed the same since is not handed them again."""
        entry = self._dec.get(name)
        if entry is None:
            return None
        return (id(entry[0]), entry[0].rows, entry[1], self._dec_key, self._set_offset)

    def _next_unset(self) -> str:
        """The first chart waiting for its bins that is in the scroll area's view, else the first."""
        top = self.scroll.verticalScrollBar().value()
        bottom = top + self.scroll.viewport().height()
        for key in self._unset:
            chart = self._charts.get(key)
            if chart is not None:
                rect = chart.plot.geometry()
                if rect.bottom() >= top and rect.top() <= bottom:
                    return key
        return next(iter(self._unset))

    def _set_turn(self) -> None:
        """A spread refresh's turn: one chart's curves; after the last, the ranges' turn."""
        if self._unset:
            self._set_next_chart()
        if self._unset:
            self._turns.request(self, "set", self._set_turn)
        else:
            self._turns.request(self, "set-end", self._end_spread)

    def _end_spread(self) -> None:
        """The turn after a spread refresh's last chart: the ranges step (one chart), ``done``."""
        if self._unset:  # a refresh came in meanwhile: its charts first
            self._turns.request(self, "set", self._set_turn)
            return
        self._finish()

    def _finish(self) -> None:
        """A refresh's end: every chart waiting for its bins gets them (a spread refresh's
        turns are dropped), the ranges step (one chart), the refresh counts, its ``done`` run."""
        self._turns.cancel(self, "set")
        self._turns.cancel(self, "set-end")
        while self._unset:
            self._set_next_chart()
        self._follow_charts()
        self.refreshes += 1
        done, self._done_after_set = self._done_after_set, []
        for fn in done:
            fn()

    def hold_paint(self, reason: str) -> None:
        """Keep the charts' view from repainting until every ``reason`` held is released
        (``release_paint``): the work of several turns is painted once, in a turn of its own.
        GUI thread; never blocks."""
        if not self._paint_holds:
            self.graphics.viewport().setUpdatesEnabled(False)
        self._paint_holds.add(reason)

    def release_paint(self, reason: str) -> None:
        """Release ``reason``'s hold; the last one lets the view repaint (all of it, at this turn's
        end). GUI thread; never blocks."""
        if reason not in self._paint_holds:
            return
        self._paint_holds.discard(reason)
        if not self._paint_holds:
            self.graphics.viewport().setUpdatesEnabled(True)

    def paint_held(self) -> bool:
        """True while a hold keeps the charts from repainting. GUI thread."""
        return bool(self._paint_holds)

    def refreshing(self) -> bool:
        """True while a spread refresh (``refresh_in_turns``) has turns to come. GUI thread."""
        return bool(self._unset) or self._turns.pending(self, "set") or self._turns.pending(self, "set-end")

    def ranges_pending(self) -> bool:
        """True while a chart waits for its turn to be built (a new series), to be shown (a new
        panel's first paints, a chart just built) or, if it follows the data, to step its ranges
        (module doc). GUI thread."""
        return (self._follow_waiting or bool(self._veiled) or self._turns.pending(self)
                or self._build_after_paint)

    # -- drawing ---------------------------------------------------------------------------------
    def _follow_charts(self) -> None:
        """Step the ranges of the first following chart that needs it (its two axes are laid out
        again at the next paint: a few ms each); the others keep theirs until the turn after the
        next paint (``_on_paint``, the "follow" turn)."""
        stepped = waiting = False
        self._feeding = True
        try:
            for chart in self._charts.values():
                if not chart.following:
                    continue
                if stepped:
                    waiting = chart.follow(apply=False) or waiting
                else:
                    stepped = chart.follow()
        finally:
            self._feeding = False
        self._follow_waiting = waiting  # the next one steps after the next paint (``_on_paint``)

    def _on_paint(self) -> None:
        """The charts are about to be painted: a chart waiting to step its ranges gets its turn
        right after this paint, and so do the next chart a paint left out and, once a chart just
        built is shown by this paint, the next new series' chart."""
        if self._follow_waiting:
            self._turns.request(self, "follow", self._follow_charts, room_ms=FOLLOW_ROOM_MS)
        if self._veiled:
            self._turns.request(self, "reveal", self._reveal_next, room_ms=REVEAL_ROOM_MS)
        if self._build_after_paint:
            self._build_after_paint = False
            self._build_new_charts(self._data)

    def _reveal_next(self) -> None:
        """Show the next chart a paint left out (drawn at the next paint); a chart just built being
        shown, the next new series' chart is built after that paint (``_on_paint``)."""
        if not self._veiled:
            return
        chart = self._veiled.pop(0)
        chart.plot.setOpacity(1.0)
        if chart is self._new_veiled:
            self._new_veiled = None
            self._build_after_paint = self._has_unbuilt(self._data)

    def _has_unbuilt(self, data: CurveData) -> bool:
        return any(name not in self._series_chart for name in data.series_names())

    def _build_new_charts(self, data: CurveData) -> None:
        """Give the first series without a chart its own event-loop turn to build one in
        (``_redraw``), unless that turn is coming or a chart just built waits to be shown."""
        if (self._new_veiled is not None or self._build_after_paint or self._turns.pending(self, "build")
                or self._unfilled):
            return
        if self._has_unbuilt(data):
            self._turns.request(self, "build", self._redraw)

    def _fold_whole(self, name: str, curve: SplitCurve, data: CurveData) -> bool:
        """Bring the whole series' bins of ``name`` up to date here when that costs at most
        ``offload_rows`` rows (``_set_next_chart`` hands them to ``curve``); False when the worker
        must build them (the curve keeps what it has)."""
        x, y = data.series(name, self._axis)
        entry = self._dec.get(name)
        if entry is None:
            changed, work = None, len(y)
        else:
            changed = data.changed_from(entry[1])
            work = len(y) - (entry[0].rows if changed is None else changed)
        if work > self._offload_rows:
            if entry is None:
                self._feeding = True
                try:
                    curve.setData([], [])
                finally:
                    self._feeding = False
            return False
        decimator = entry[0] if entry is not None else PeakDecimator(max_bins=DECIMATED_BINS)
        decimator.update(x, y, changed)
        self._dec[name] = (decimator, data.rewritten)
        return True

    def _request_rebuild(self, names: list[str]) -> None:
        """Build the whole-series decimators of ``names`` on the worker (a newer build cancels it)."""
        data, axis, key = self._data, self._axis, (id(self._data), self._axis)
        views = {name: data.series(name, axis) for name in names}
        rewritten = data.rewritten

        def done(built: dict[str, PeakDecimator] | None) -> None:
            self._rebuilding = None
            if built is None or (id(self._data), self._axis) != key or self._dec_key != key:
                return
            self._dec.update({name: (decimator, rewritten) for name, decimator in built.items()})
            self._drawn_version = -1
            self.refresh()  # folds in the rows added meanwhile

        def failed(_error: BaseException) -> None:
            self._rebuilding = None

        self._rebuilding = key
        self.worker.submit("whole", lambda token: build_decimators(views, DECIMATED_BINS, token), done, failed)

    def _view_data_changed(self, chart: CurveChart) -> None:
        """New data under a zoomed chart: re-decimate its range if the change can be seen there,
        one job at a time (a tick does not cancel a job a zoom asked for; it asks again after)."""
        if self.worker.pending(("view", chart.key)):
            chart.stale = True
            return
        x_hi = chart.plot.getViewBox().viewRange()[0][1]
        if chart.last_x is not None and x_hi < chart.last_x and chart.rewritten == self._data.rewritten:
            return  # only rows past the visible range were added
        self._request_view(chart)

    def _request_view(self, chart: CurveChart) -> None:
        """Re-decimate a zoomed chart's visible range on the worker; its curves get the result."""
        data, axis = self._data, self._axis
        offset = wall_offset(self._data) if axis == "wall" else 0.0
        x_lo, x_hi = chart.plot.getViewBox().viewRange()[0]
        x_range = (x_lo + offset, x_hi + offset)
        views = {name: data.series(name, axis) for name in chart.curves}
        ends = [x[-1] - offset for x, _y in views.values() if len(x) and np.isfinite(x[-1])]
        chart.last_x, chart.rewritten, chart.stale = (max(ends) if ends else None), data.rewritten, False
        width_px = max(64, int(chart.plot.getViewBox().width()))
        bins = max(DECIMATED_BINS, width_px)

        def done(result: dict[str, tuple[np.ndarray, np.ndarray]] | None) -> None:
            if result is None or self._data is not data or self._axis != axis or chart.following:
                return
            self._feeding = True
            try:
                for name, (x, y) in result.items():
                    chart.curves[name].setData(x - offset if offset else x, y, connect="finite")
                    self._set_state.pop(name, None)
            finally:
                self._feeding = False
            if chart.stale:
                self._view_data_changed(chart)

        self.worker.submit(("view", chart.key), lambda token: decimate_views(views, x_range, bins, token), done)

    def _on_y_changed(self, view_box: Any, y_range: Any) -> None:
        """Only the y-range was zoomed or panned: the chart stops following (the next tick would
        undo it otherwise)."""
        chart = None if self._feeding else self._chart_of(view_box)
        if chart is None or not chart.following or view_box.autoRangeEnabled()[1] or chart.is_followed_range(y_range, 1):
            return
        chart.following = False
        self._request_view(chart)

    def _chart_of(self, view_box: Any) -> CurveChart | None:
        return next((c for c in self._charts.values() if c.view_box is view_box), None)

    def _on_view_changed(self, view_box: Any, x_range: Any) -> None:
        """The person zoomed or panned a chart (or asked for the whole view): re-decimate it."""
        if self._feeding:
            return
        chart = self._chart_of(view_box)
        if chart is None:
            return
        if chart.is_followed_range(x_range):
            return  # the range it was given (a resize, a repaint): still following
        if view_box.autoRangeEnabled()[0]:
            chart.reset_follow()
            self._drawn_version = -1
            self.refresh()
            return
        chart.following = False
        self._request_view(chart)

    def _redraw(self) -> None:
        """A new series' turn: build its chart, empty (left out of the paints until shown if the
        panel is shown, ``_reveal_next``); its curve and first data come at the next turn
        (``_fill_chart``): the chart's two halves cost 10 to 15 ms and 5 to 10 ms of CPU, each
        in a turn of its own."""
        name = next((n for n in self._data.series_names() if n not in self._series_chart), None)
        chart = self._add_series_chart(name, curve=False) if name is not None else None
        if chart is None or name is None:
            self._drawn_version = -1
            self.refresh()
            return
        if self.graphics.isVisible():
            chart.plot.setOpacity(0.0)  # laid out as any other, painted from the turn after the next paint
            self._veiled.append(chart)
            self._new_veiled = chart
            # A chart added repaints the whole view (10-25 ms of CPU with 5 to 8 charts), once after
            # its build and once after its fill: held until both ran, then painted once, in a turn of its own.
            self.hold_paint("build")
        self._unfilled[name] = chart
        self._turns.request(self, "fill", self._fill_chart)

    def _fill_chart(self) -> None:
        """The turn after a chart's build: its curves and their first data, then the chart's objects
        are frozen (module doc)."""
        self._fill_charts()
        self._drawn_version = -1
        self.refresh()
        freeze_long_lived()  # the chart lives as long as the panel (module doc)
        if "build" in self._paint_holds:
            self._turns.request(self, "paint", lambda: self.release_paint("build"), room_ms=BUILD_PAINT_ROOM_MS)

    def _fill_charts(self) -> None:
        unfilled, self._unfilled = self._unfilled, {}
        for name, chart in unfilled.items():
            if self._charts.get(chart.key) is chart:
                chart.add_curve(name)

    # -- building --------------------------------------------------------------------------------
    def _add_chart(self, key: str, title: str) -> CurveChart:
        i = len(self._charts)
        row, col = divmod(i, self._columns)
        plot = new_chart_plot(title)
        # Columns share the width equally whatever their charts hold: a chart added later (a new
        # worker number) resizes no other chart (which would lay out every axis again). Its size
        # hints are set before it joins the layout, which lays itself out at once (GraphicsLayout.
        # addItem): with a new PlotItem's own hints there, every chart was resized twice, and every
        # axis laid out again at the next paint (10-25 ms for 5 to 8 charts).
        plot.setPreferredSize(CHART_MIN_WIDTH_PX, CHART_HEIGHT_PX)
        plot.setMinimumWidth(CHART_MIN_WIDTH_PX)
        grid = self.graphics.ci.layout
        grid.setColumnStretchFactor(col, 1)
        # Every row is CHART_HEIGHT_PX tall and the view exactly as tall as its rows (it scrolls):
        # a new row grows the scene below the others and leaves every chart's geometry alone (no
        # chart resized, no axis laid out again at the next paint: a new row's paint is the new
        # chart's and what it damaged, not the whole view's 16-25 ms).
        grid.setRowFixedHeight(row, CHART_HEIGHT_PX)
        self.graphics.setFixedHeight(self._rows_height_px(row + 1))
        self.graphics.addItem(plot, row=row, col=col)
        chart = CurveChart(key, plot, title, index=i, grid=SHOW_GRID)
        self._charts[key] = chart
        plot.getViewBox().disableAutoRange()  # the panel sets the ranges (module doc)
        plot.getViewBox().sigXRangeChanged.connect(self._on_view_changed)
        plot.getViewBox().sigYRangeChanged.connect(self._on_y_changed)
        if key == "return":
            plot.addLegend(offset=(-5, 5), labelTextColor=(40, 40, 40), brush=pg.mkBrush(255, 255, 255, 200))
        return chart

    def _rows_height_px(self, rows: int) -> int:
        """The view's height for ``rows`` rows of CHART_HEIGHT_PX: its layout's margins and row
        spacing included."""
        grid = self.graphics.ci.layout
        _left, top, _right, bottom = grid.getContentsMargins()
        spacing = max(0.0, grid.verticalSpacing())
        frame = 2 * self.graphics.frameWidth()
        return int(np.ceil(rows * CHART_HEIGHT_PX + (rows - 1) * spacing + top + bottom)) + frame

    def _add_curve(self, chart: CurveChart, name: str) -> None:
        chart.add_curve(name)
        self._series_chart[name] = chart.key

    def _add_series_chart(self, name: str, *, curve: bool = True) -> CurveChart | None:
        """The chart of series ``name`` (None when there is no room: counted, logged); its curve
        added unless ``curve`` is False (the caller adds it, ``_fill_chart``)."""
        if len(self._charts) >= self._max_charts:
            self._series_chart[name] = ""
            self.charts_dropped += 1
            _log.info("curve panel: no room for a chart of %s (%d charts)", name, len(self._charts))
            return None
        source, _, key = name.partition(":")
        title = f"{key} ({'episode metadata' if source == 'meta' else 'heartbeat'})"
        chart = self._add_chart(name, title)
        if curve:
            self._add_curve(chart, name)
        else:
            self._series_chart[name] = chart.key
        return chart

    # -- controls --------------------------------------------------------------------------------
    def _on_axis(self, _index: int) -> None:
        axis = self.axis_box.currentData()
        if axis == self._axis:
            return
        self._axis = axis
        for chart in self._charts.values():
            chart.reset_follow()
        self._drawn_version = -1
        self.refresh()

    def _on_window(self, window: int) -> None:
        """A new rolling window: computed here for a short run, on the worker for a long one."""
        data = self._data
        if data.episode_count <= self._offload_rows:
            self.worker.cancel("window")
            data.set_window(int(window))
            self.refresh()
            return
        job: Callable[[], WindowColumns] = data.window_job(int(window))

        def done(result: WindowColumns) -> None:
            if self._data is not data or self.window_box.value() != result.window:
                return
            if not data.adopt_window(result):  # rows were rewritten meanwhile: again
                self._on_window(result.window)
                return
            self.refresh()

        self.worker.submit("window", lambda _token: job(), done)

    def snapshot(self) -> dict[str, Any]:
        """Counts for tests and the debug view: charts, refreshes, charts dropped, worker jobs. GUI thread."""
        return {"charts": len(self._charts), "refreshes": self.refreshes, "charts_dropped": self.charts_dropped,
                "worker_jobs": self.worker.jobs.jobs_run, "worker_failed": self.worker.jobs.jobs_failed}
