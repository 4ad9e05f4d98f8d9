"""CompareView: several runs' learning curves overlaid, and their hyper-parameters side by side.

``set_runs(run_ids)`` reads the runs (row, config, every stream's stored curves) on a StoreReader
thread; the result lands on the GUI thread and replaces what is shown. The plot has one curve per
(run, agent), coloured by run, named ``<run label> · <agent>`` in the legend; a metric selector
(return, length, success rate), an x-axis selector and a smoothing slider (TensorBoard's debiased
EMA, 0 to 0.99) apply to every curve, the raw curve staying faint behind the smoothed one. The
table has a row per hyper-parameter (the runs' ``config``, nested keys flattened as ``a.b``) and a
column per run; rows whose values differ are tinted and listed first.

The GUI thread draws only small arrays: the smoothing (over every point) and the min/max
decimation (``live.compare_curves``) run on the reader thread with the first read, then on the
view's PlotWorker thread for a new metric, axis or smoothing and for the visible range after a
zoom or pan (zoomed in, the rows themselves); a newer request cancels the older. Comparisons of
at most ``offload_rows`` episodes in all are drawn at once on the GUI thread. GUI thread only.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Mapping, Sequence

import attrs
import numpy as np
import pyqtgraph as pg
from qtpy.QtCore import Qt, Signal
from qtpy.QtGui import QBrush, QColor, QFont
from qtpy.QtWidgets import (
    QComboBox, QHBoxLayout, QHeaderView, QLabel, QSlider, QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout,
    QWidget,
)

from gym_gui.live.compare_curves import CompareArrays, SmoothCache, compare_arrays
from gym_gui.live.curves import CurveData
from gym_gui.live.plot_jobs import CancelToken
from gym_gui.live.run_progress import fmt_number
from gym_gui.qt.store_reader import StoreReader
from gym_gui.telemetry.curve_reads import load_curves_from_store
from gym_gui.telemetry.sqlite_records import RunRecord
from gym_gui.telemetry.run_summaries import HYPER_PARAMETER_SKIP
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore
from gym_gui.ui.plots.curve_chart import cache_axes
from gym_gui.ui.plots.curve_panel import AXIS_LABELS, DECIMATED_BINS, OFFLOAD_ROWS
from gym_gui.ui.plots.grid_lines import GridLines
from gym_gui.ui.plots.plot_worker import PlotWorker
from gym_gui.ui.plots.tick_axis import chart_axes

__all__ = ["CompareView", "ComparedRun", "flatten_config", "run_label"]

_log = logging.getLogger(__name__)

_METRICS: tuple[tuple[str, str], ...] = (
    ("return", "Episode return"),
    ("length", "Episode length"),
    ("success_rate", "Success rate (rolling)"),
)
_DIFF_BRUSH = QBrush(QColor(255, 236, 179))
_MAX_CELL = 80


@attrs.frozen(slots=True)
class ComparedRun:
    """One run as read for the comparison: its row (None if unknown), each stream's curves and
    its best return (read with them, not on the GUI thread)."""

    run_id: str
    record: RunRecord | None
    curves: Mapping[str, CurveData]
    best_return: float | None = None


def run_label(run_id: str, record: RunRecord | None) -> str:
    """A short name for a run: ``<env> <last 8 of the id>``, or the id. Pure."""
    short = run_id if len(run_id) <= 12 else "\u2026" + run_id[-8:]
    env = record.env_id if record is not None and record.env_id else None
    return f"{env} {short}" if env else run_id


def _short_id(run_id: str) -> str:
    return run_id if len(run_id) <= 12 else "\u2026" + run_id[-8:]


#: The config keys that are the telemetry's or the launcher's own settings, not the learning's: left
#: out of the table, as the Runs tab leaves them out of its hyper-parameters (``env_kwargs`` stays:
#: an environment's options do tell runs apart).
_NOT_LEARNING = HYPER_PARAMETER_SKIP - {"env_kwargs"}


def _learning_config(config: Any) -> Any:
    if not isinstance(config, Mapping):
        return config
    return {k: v for k, v in config.items() if k not in _NOT_LEARNING}


def flatten_config(config: Any, prefix: str = "") -> dict[str, Any]:
    """A config's leaves as ``{"a.b": value}`` (a non-dict config is ``{"": config}``). Pure."""
    if not isinstance(config, Mapping):
        return {prefix: config} if prefix or config is not None else {}
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            out.update(flatten_config(value, name))
        else:
            out[name] = value
    return out


def _cell(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return fmt_number(value, 4)
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "\u2026"


def _read_runs(store: TelemetrySQLiteStore, run_ids: Sequence[str], window: int) -> list[ComparedRun]:
    out: list[ComparedRun] = []
    for run_id in run_ids:
        record = store.run(run_id)
        agents = [a for a in (record.agent_ids if record is not None else ()) if a is not None] or [None]
        curves = {agent or "": load_curves_from_store(store, run_id, agent, window=window) for agent in agents}
        curves = {a: c for a, c in curves.items() if c.episode_count}
        best = max((float(np.nanmax(c.column("return"))) for c in curves.values()
                    if np.isfinite(c.column("return")).any()), default=None)
        out.append(ComparedRun(run_id, record, curves, best))
    return out


def _streams(runs: Sequence[ComparedRun]) -> dict[tuple[str, str], CurveData]:
    return {(run.run_id, agent): data for run in runs for agent, data in sorted(run.curves.items())}


class CompareView(QWidget):
    """Overlaid curves and a hyper-parameter table of the runs given to ``set_runs`` (module doc).

    ``loaded(list)`` (the run ids shown) when a ``set_runs`` read has landed and is drawn;
    ``load_failed(str)`` when it failed; ``drawn()`` whenever new curves were handed to the plot.
    GUI thread only."""

    loaded = Signal(object)
    load_failed = Signal(str)
    drawn = Signal()

    def __init__(self, reader: StoreReader, *, window: int = 100, offload_rows: int = OFFLOAD_ROWS,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._reader = reader
        self._window = window
        self._offload_rows = max(0, offload_rows)
        self._runs: list[ComparedRun] = []
        self._request = 0  # the newest set_runs; older results are dropped
        self._curves: dict[tuple[str, str], tuple[pg.PlotDataItem, pg.PlotDataItem]] = {}
        self._differing: list[str] = []
        self._smoothed: SmoothCache = {}  # the whole smoothed series of the drawing shown
        self._drawn: tuple[str, str, float, tuple[float, float] | None] | None = None
        self._feeding = False
        self.worker = PlotWorker(self, name="compare-view")

        self.metric_box = QComboBox()
        for key, text in _METRICS:
            self.metric_box.addItem(text, key)
        self.axis_box = QComboBox()
        for key, text, _label in AXIS_LABELS:
            self.axis_box.addItem(text, key)
        self.smoothing = QSlider(Qt.Orientation.Horizontal)
        self.smoothing.setRange(0, 99)
        self.smoothing.setValue(80)
        self.smoothing.setToolTip("Smoothing (exponential moving average, as TensorBoard's): 0 = raw")
        self.smoothing_label = QLabel()
        self.status_label = QLabel("Choose runs to compare.")
        for box in (self.metric_box, self.axis_box):
            box.currentIndexChanged.connect(lambda _i: self._redraw())
        self.smoothing.valueChanged.connect(lambda _v: self._redraw())
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Metric:"))
        bar.addWidget(self.metric_box)
        bar.addWidget(QLabel("x-axis:"))
        bar.addWidget(self.axis_box)
        bar.addWidget(QLabel("Smoothing:"))
        bar.addWidget(self.smoothing, 1)
        bar.addWidget(self.smoothing_label)
        bar.addStretch(1)
        bar.addWidget(self.status_label)

        self.plot_widget = pg.PlotWidget(background="w", axisItems=chart_axes())
        self.plot = self.plot_widget.getPlotItem()
        self.grid = GridLines(self.plot)  # and cached axes, as the learning curves (plots/grid_lines.py)
        cache_axes(self.plot)
        self.plot.getViewBox().sigXRangeChanged.connect(self._on_view_changed)
        self.legend = self.plot.addLegend(offset=(-5, 5), labelTextColor=(20, 20, 20),
                                          brush=pg.mkBrush(255, 255, 255, 220), pen=pg.mkPen(160, 160, 160))
        self.table = QTableWidget()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.verticalHeader().setVisible(False)
        self.table.setToolTip("Hyper-parameters of each run (its config); tinted rows differ between runs")
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.plot_widget)
        split.addWidget(self.table)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([720, 640])
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(split, 1)
        self._redraw()

    # -- public ----------------------------------------------------------------------------------
    def set_runs(self, run_ids: list[str]) -> bool:
        """Compare ``run_ids`` (in that order): read them off the GUI thread, then show them; a
        newer call wins over a read still running. False when the reader is stopped. GUI thread;
        never blocks."""
        self._request += 1
        request = self._request
        ids = list(dict.fromkeys(run_ids))
        self.status_label.setText(f"Reading {len(ids)} run{'s' if len(ids) != 1 else ''}\u2026")
        window = self._window
        metric, axis, weight = self._choice()

        def read(store: TelemetrySQLiteStore) -> tuple[list[ComparedRun], CompareArrays | None]:
            runs = _read_runs(store, ids, window)
            return runs, compare_arrays(_streams(runs), metric, axis, weight, None, DECIMATED_BINS, CancelToken())

        def done(result: tuple[list[ComparedRun], CompareArrays | None]) -> None:
            if request == self._request:
                self._show(*result)

        def failed(error: BaseException) -> None:
            if request == self._request:
                message = f"comparing {ids}: {type(error).__name__}: {error}"
                _log.warning("%s", message)
                self.status_label.setText("Reading the runs failed (see the log).")
                self.load_failed.emit(message)

        return self._reader.submit(read, done, failed)

    def runs(self) -> list[ComparedRun]:
        """The runs shown. GUI thread."""
        return list(self._runs)

    def legend_names(self) -> list[str]:
        """The legend's entries (one per run and agent), in order. GUI thread."""
        return [label.text for _sample, label in self.legend.items]

    def curve_data(self, run_id: str, agent_id: str) -> tuple[np.ndarray, np.ndarray]:
        """The smoothed curve of one stream as drawn (x, y); empty if not shown. GUI thread."""
        pair = self._curves.get((run_id, agent_id))
        if pair is None or pair[1].xData is None:
            return np.empty(0), np.empty(0)
        return pair[1].xData, pair[1].yData

    def differing_keys(self) -> list[str]:
        """The hyper-parameters whose values differ between the runs shown. GUI thread."""
        return list(self._differing)

    def table_rows(self) -> list[list[str]]:
        """The table's cells, row by row (the parameter name first, marked ``≠`` when it differs). GUI thread."""
        return [[self.table.item(r, c).text() if self.table.item(r, c) else "" for c in range(self.table.columnCount())]
                for r in range(self.table.rowCount())]

    def set_smoothing(self, weight: float) -> None:
        """Set the smoothing weight in [0, 0.99]. GUI thread; never blocks."""
        self.smoothing.setValue(round(min(0.99, max(0.0, weight)) * 100))

    def busy(self) -> bool:
        """True while a drawing is being computed on the worker. GUI thread."""
        return self.worker.pending()

    def stop(self, timeout_s: float = 0.0) -> bool:
        """Cancel the drawing jobs; wait up to ``timeout_s`` for the worker thread to end (True when
        it has). GUI thread; blocks up to ``timeout_s`` (0: never)."""
        return self.worker.stop(timeout_s)

    # -- drawing ---------------------------------------------------------------------------------
    def _choice(self) -> tuple[str, str, float]:
        return self.metric_box.currentData(), self.axis_box.currentData(), self.smoothing.value() / 100

    def _show(self, runs: list[ComparedRun], arrays: CompareArrays | None = None) -> None:
        self._runs = runs
        self._smoothed = {}
        self._drawn = None
        self._fill_table()
        self.plot.clear()
        self.legend.clear()
        self._curves.clear()
        for i, run in enumerate(runs):
            colour = pg.intColor(i, hues=max(len(runs), 1), values=1, maxValue=220)
            faint = QColor(colour)
            faint.setAlpha(35)
            label = run_label(run.run_id, run.record)
            for j, agent in enumerate(sorted(run.curves)):
                style = Qt.PenStyle.SolidLine if j == 0 else Qt.PenStyle.DashLine
                raw = self.plot.plot(pen=pg.mkPen(faint, width=1))
                name = f"{label} \u00b7 {agent}" if agent else label
                smooth = self.plot.plot(pen=pg.mkPen(colour, width=2, style=style), name=name)
                self._curves[(run.run_id, agent)] = (raw, smooth)
        if arrays is not None and (arrays.metric, arrays.axis, arrays.weight) == self._choice():
            self._apply(arrays)
        else:
            self._redraw()
        streams = sum(len(r.curves) for r in runs)
        self.status_label.setText(f"{len(runs)} runs, {streams} curves")
        self.loaded.emit([r.run_id for r in runs])

    def _redraw(self) -> None:
        """The metric, axis or smoothing changed: draw every stream whole, then fit the view."""
        metric, axis, weight = self._choice()
        self.smoothing_label.setText(f"{weight:.2f}")
        self.plot.setLabel("bottom", next(label for key, _t, label in AXIS_LABELS if key == axis))
        self.plot.setLabel("left", self.metric_box.currentText())
        self._request_draw(None)

    def _request_draw(self, x_range: tuple[float, float] | None) -> None:
        """Compute the drawing for ``x_range`` (None: whole): here when small, else on the worker."""
        streams = _streams(self._runs)
        metric, axis, weight = self._choice()
        cache = {k: v for k, v in self._smoothed.items() if k[1:] == (metric, axis, weight)}
        rows = sum(d.episode_count for d in streams.values())
        if rows <= self._offload_rows:
            self.worker.cancel("draw")
            arrays = compare_arrays(streams, metric, axis, weight, x_range, DECIMATED_BINS, CancelToken(), cache)
            if arrays is not None:
                self._apply(arrays)
            return
        bins = max(DECIMATED_BINS, int(self.plot.getViewBox().width()))
        self.worker.submit("draw", lambda token: compare_arrays(streams, metric, axis, weight, x_range, bins,
                                                                token, cache), self._apply)

    def _apply(self, arrays: CompareArrays | None) -> None:
        if arrays is None or (arrays.metric, arrays.axis, arrays.weight) != self._choice():
            return
        key = (arrays.metric, arrays.axis, arrays.weight)
        self._smoothed = {k: v for k, v in self._smoothed.items() if k[1:] == key}
        self._smoothed.update(arrays.smoothed)
        self._feeding = True
        try:
            for stream, drawn in arrays.streams.items():
                pair = self._curves.get(stream)
                if pair is not None:
                    pair[0].setData(drawn.raw_x, drawn.raw_y, connect="finite")
                    pair[1].setData(drawn.smooth_x, drawn.smooth_y, connect="finite")
            if arrays.x_range is None:
                self.plot.enableAutoRange()
        finally:
            self._feeding = False
        self._drawn = (*key, arrays.x_range)
        self.drawn.emit()

    def _on_view_changed(self, view_box: Any, x_range: Any) -> None:
        """Zoomed or panned: re-decimate the visible range; the whole view asked for: draw whole."""
        if self._feeding or not self._runs:
            return
        if view_box.autoRangeEnabled()[0]:
            if self._drawn is not None and self._drawn[3] is not None:
                self._request_draw(None)
            return
        self._request_draw((float(x_range[0]), float(x_range[1])))

    def _fill_table(self) -> None:
        runs = self._runs
        configs = [flatten_config(_learning_config(r.record.config if r.record is not None else None)) for r in runs]
        facts: list[tuple[str, list[Any]]] = [
            ("env", [r.record.env_id if r.record else None for r in runs]),
            ("status", [r.record.status if r.record else "not stored" for r in runs]),
            ("stored episodes", [sum(c.episode_count for c in r.curves.values()) for r in runs]),
            ("best return", [r.best_return for r in runs]),
        ]
        keys = sorted({k for c in configs for k in c})
        params = [(k, [c.get(k) for c in configs]) for k in keys]
        self._differing = [k for k, values in params if len({json.dumps(v, sort_keys=True, default=str) for v in values}) > 1]
        differing = set(self._differing)
        params.sort(key=lambda kv: (kv[0] not in differing, kv[0]))
        rows = facts + params
        self.table.clear()
        self.table.setColumnCount(len(runs) + 1)
        self.table.setRowCount(len(rows))
        self.table.setHorizontalHeaderLabels(["parameter", *[_short_id(r.run_id) for r in runs]])
        bold = QFont()
        bold.setBold(True)
        for row, (name, values) in enumerate(rows):
            cells = [name + (" \u2260" if name in differing else ""),
                     *("-" if value is None else _cell(value) for value in values)]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if name in differing:
                    item.setBackground(_DIFF_BRUSH)
                    item.setFont(bold)
                    item.setToolTip("differs between the runs")
                self.table.setItem(row, col, item)
        for col, run in enumerate(runs, start=1):
            self.table.horizontalHeaderItem(col).setToolTip(run.run_id)
        self.table.resizeColumnsToContents()
