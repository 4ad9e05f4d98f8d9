"""CompareView: several runs' learning curves overlaid, and their hyper-parameters side by side.

``set_runs(run_ids)`` reads the runs (row, config, every stream's stored curves) on a StoreReader
thread; the result lands on the GUI thread and replaces what is shown. The plot has one curve per
(run, agent), coloured by run, named ``<run label> · <agent>`` in the legend; a metric selector
(return, length, success rate), an x-axis selector and a smoothing slider (TensorBoard's debiased
EMA, 0 to 0.99) apply to every curve, the raw curve staying faint behind the smoothed one. The
table has a row per hyper-parameter (the runs' ``config``, nested keys flattened as ``a.b``) and a
column per run; rows whose values differ are tinted and listed first. GUI thread only.
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

from gym_gui.live.curves import CurveData
from gym_gui.live.run_progress import fmt_number
from gym_gui.live.smoothing import ema_smooth
from gym_gui.qt.store_reader import StoreReader
from gym_gui.telemetry.curve_reads import load_curves_from_store
from gym_gui.telemetry.sqlite_records import RunRecord
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore
from gym_gui.ui.plots.curve_panel import AXIS_LABELS, style_curve

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
    """One run as read for the comparison: its row (None if unknown) and each stream's curves."""

    run_id: str
    record: RunRecord | None
    curves: Mapping[str, CurveData]


def run_label(run_id: str, record: RunRecord | None) -> str:
    """A short name for a run: ``<env> <last 8 of the id>``, or the id. Pure."""
    short = run_id if len(run_id) <= 12 else "\u2026" + run_id[-8:]
    env = record.env_id if record is not None and record.env_id else None
    return f"{env} {short}" if env else run_id


def _short_id(run_id: str) -> str:
    return run_id if len(run_id) <= 12 else "\u2026" + run_id[-8:]


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
        out.append(ComparedRun(run_id, record, {a: c for a, c in curves.items() if c.episode_count}))
    return out


class CompareView(QWidget):
    """Overlaid curves and a hyper-parameter table of the runs given to ``set_runs`` (module doc).

    ``loaded(list)`` (the run ids shown) when a ``set_runs`` read has landed; ``load_failed(str)``
    when it failed. GUI thread only."""

    loaded = Signal(object)
    load_failed = Signal(str)

    def __init__(self, reader: StoreReader, *, window: int = 100, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._reader = reader
        self._window = window
        self._runs: list[ComparedRun] = []
        self._request = 0  # the newest set_runs; older results are dropped
        self._curves: dict[tuple[str, str], tuple[pg.PlotDataItem, pg.PlotDataItem]] = {}
        self._differing: list[str] = []

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

        self.plot_widget = pg.PlotWidget(background="w")
        self.plot = self.plot_widget.getPlotItem()
        self.plot.showGrid(x=True, y=True, alpha=0.25)
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

        def done(runs: list[ComparedRun]) -> None:
            if request == self._request:
                self._show(runs)

        def failed(error: BaseException) -> None:
            if request == self._request:
                message = f"comparing {ids}: {type(error).__name__}: {error}"
                _log.warning("%s", message)
                self.status_label.setText("Reading the runs failed (see the log).")
                self.load_failed.emit(message)

        return self._reader.submit(lambda store: _read_runs(store, ids, window), done, failed)

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

    # -- drawing ---------------------------------------------------------------------------------
    def _show(self, runs: list[ComparedRun]) -> None:
        self._runs = runs
        self._fill_table()
        self._redraw()
        streams = sum(len(r.curves) for r in runs)
        self.status_label.setText(f"{len(runs)} runs, {streams} curves")
        self.loaded.emit([r.run_id for r in runs])

    def _redraw(self) -> None:
        weight = self.smoothing.value() / 100
        self.smoothing_label.setText(f"{weight:.2f}")
        metric = self.metric_box.currentData()
        axis = self.axis_box.currentData()
        self.plot.clear()
        self.legend.clear()
        self._curves.clear()
        self.plot.setLabel("bottom", next(label for key, _t, label in AXIS_LABELS if key == axis))
        self.plot.setLabel("left", self.metric_box.currentText())
        for i, run in enumerate(self._runs):
            colour = pg.intColor(i, hues=max(len(self._runs), 1), values=1, maxValue=220)
            faint = QColor(colour)
            faint.setAlpha(35)
            label = run_label(run.run_id, run.record)
            for j, (agent, data) in enumerate(sorted(run.curves.items())):
                x, y = data.series(metric, axis)
                if axis == "wall" and len(x):
                    x = x - np.nanmin(x)
                style = Qt.PenStyle.SolidLine if j == 0 else Qt.PenStyle.DashLine
                raw = style_curve(self.plot.plot(x, y, pen=pg.mkPen(faint, width=1), connect="finite"))
                smooth_y = ema_smooth(y, weight) if weight > 0 else y
                name = f"{label} \u00b7 {agent}" if agent else label
                smooth = style_curve(self.plot.plot(x, smooth_y, pen=pg.mkPen(colour, width=2, style=style),
                                                    name=name, connect="finite"))
                self._curves[(run.run_id, agent)] = (raw, smooth)
        self.plot.enableAutoRange()

    def _fill_table(self) -> None:
        runs = self._runs
        configs = [flatten_config(r.record.config if r.record is not None else None) for r in runs]
        facts: list[tuple[str, list[Any]]] = [
            ("env", [r.record.env_id if r.record else None for r in runs]),
            ("status", [r.record.status if r.record else "not stored" for r in runs]),
            ("stored episodes", [sum(c.episode_count for c in r.curves.values()) for r in runs]),
            ("best return", [max((float(np.nanmax(c.column("return"))) for c in r.curves.values()
                                  if np.isfinite(c.column("return")).any()), default=None) for r in runs]),
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
