"""DebugPane: the bus's subscriptions and the stats of the proxy, the sink and other sources."""

from __future__ import annotations

import json
import logging
import math
from datetime import datetime
from typing import Any, Callable, Iterator, Mapping

from qtpy.QtCore import QSize, Qt, QTimer
from qtpy.QtGui import QCloseEvent
from qtpy.QtWidgets import QHeaderView, QLabel, QSplitter, QTableView, QVBoxLayout, QWidget

from gym_gui.rate_limited_log import RateLimitedLog
from gym_gui.telemetry.run_bus import RunBus, Subscription
from gym_gui.ui.rows_table_model import ERROR, OK, WARN, Row, RowsTableModel
from gym_gui.ui.table_view import make_table_view
from gym_gui.ui.titled import titled

__all__ = ["DebugPane", "SUBSCRIPTION_HEADERS", "SOURCE_HEADERS", "StatsFn"]

_log = logging.getLogger(__name__)
_rlog = RateLimitedLog(_log, interval_s=10.0)

StatsFn = Callable[[], Mapping[str, Any]]

SUBSCRIPTION_HEADERS = ("topic", "subscriber", "stream", "queued", "capacity", "dropped", "delivered")
SOURCE_HEADERS = ("source", "stat", "value")
#: The pane's preferred height: about eight rows of each table under their captions.
PREFERRED_HEIGHT_PX = 260

#: Stats shown first, in this order (the proxy's rejects, the sink's backlog, rate and errors).
_FIRST = ("rejected_total", "rejected", "lines_read", "events_published", "published", "backlog",
          "rows_per_s", "persisted", "errors", "retries", "failing", "last_error")
#: Stats whose non-zero / non-empty value deserves a tint.
_WARN_IF_SET = frozenset({"rejected_total", "rejected", "errors", "retries", "failing", "last_error", "lost",
                          "gate_paused", "worker_errors"})


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.1f}" if math.isfinite(value) else str(value)
    if isinstance(value, (int, str)):
        return str(value)
    try:
        return json.dumps(value, default=str)[:300]
    except (TypeError, ValueError):
        return repr(value)[:300]


def _flatten(stats: Mapping[str, Any]) -> Iterator[tuple[str, str, Any]]:
    """``(top key, shown key, value)`` for every stat, nested dicts as ``key.sub``, ``_FIRST`` first."""
    keys = [k for k in _FIRST if k in stats] + [k for k in stats if k not in _FIRST]
    for key in keys:
        value = stats[key]
        if isinstance(value, Mapping):
            if not value:
                yield key, f"{key}", "none"
            for sub in sorted(value, key=str):
                yield key, f"{key}.{sub}", value[sub]
        else:
            yield key, str(key), value


def _severity(top: str, value: Any) -> int:
    if top in _WARN_IF_SET and value not in (None, 0, 0.0, False, "", "none"):
        return WARN
    return OK


def _subscription_row(sub: Subscription) -> Row:
    stream = f"{sub.run_id or '*'}/{sub.agent_id or '*'}" if (sub.run_id or sub.agent_id) else "*"
    dropped = sub.dropped
    return Row(
        (sub.topic.name, sub.subscriber_id, stream, str(len(sub)),
         "lossless" if sub.maxlen is None else str(sub.maxlen), str(dropped), str(sub.delivered)),
        WARN if dropped else OK,
    )


#: Width of the subscription table's stream column (its text repeats the subscriber's run and agent).
STREAM_COLUMN_WIDTH_PX = 110


def _fit_columns(view: QTableView, columns: tuple[int, ...], narrow: int | None = None) -> None:
    """``columns`` as wide as their texts (ids are never cut), ``narrow`` a fixed width with its text
    elided in the middle; the last column stretches."""
    header = view.horizontalHeader()
    for col in columns:
        header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
    if narrow is not None:
        header.resizeSection(narrow, STREAM_COLUMN_WIDTH_PX)
    view.setTextElideMode(Qt.TextElideMode.ElideMiddle)


class DebugPane(QWidget):
    """Refreshes, on a GUI-thread QTimer, a table of ``bus.subscriptions()`` (topic, subscriber,
    stream filter, queued, capacity, dropped, delivered) and a table of named stats sources
    (``add_source``: e.g. a TelemetryProxy's or the DbSink's ``stats``). Each refresh also calls
    ``bus.flush_overflow_notices()`` so the last drops of a burst are reported. A source that
    raises shows as an error row. GUI thread only; stats functions must not block.
    """

    def __init__(self, bus: RunBus, *, refresh_interval_ms: int = 500,
                 sources: Mapping[str, StatsFn] | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("DebugPane")
        self._bus = bus
        self._sources: dict[str, StatsFn] = dict(sources or {})
        self._notices_flushed = 0
        self._refreshes = 0
        self.timer = QTimer(self)
        self.timer.setInterval(max(1, refresh_interval_ms))
        self.timer.timeout.connect(self.refresh)

        self.subscription_model = RowsTableModel(SUBSCRIPTION_HEADERS, self)
        self.source_model = RowsTableModel(SOURCE_HEADERS, self)
        self.subscription_view = make_table_view(self.subscription_model)
        self.source_view = make_table_view(self.source_model)
        self.status_label = QLabel("not refreshed yet")
        # Side by side: the dock is short, and stacked tables showed two rows each.
        _fit_columns(self.subscription_view, (0, 1, 3, 4, 5), narrow=2)
        _fit_columns(self.source_view, (0, 1))
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(titled("Bus subscriptions", self.subscription_view))
        self.splitter.addWidget(titled("Proxy, sink and other sources", self.source_view))
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([660, 340])  # the subscriptions have seven columns
        splitter = self.splitter
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.status_label)

    # -- sources ---------------------------------------------------------------------------------
    def add_source(self, name: str, stats_fn: StatsFn) -> None:
        """Show ``stats_fn()`` (a dict) under ``name`` from the next refresh on; replaces a source
        of the same name. GUI thread; never blocks."""
        self._sources[name] = stats_fn

    def remove_source(self, name: str) -> None:
        """Stop showing ``name``; idempotent. GUI thread; never blocks."""
        self._sources.pop(name, None)

    def source_names(self) -> list[str]:
        """Names of the sources shown. GUI thread; never blocks."""
        return list(self._sources)

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Refresh now and every ``refresh_interval_ms``; idempotent. GUI thread; never blocks."""
        if self.timer.isActive():
            return
        self.refresh()
        self.timer.start()

    def stop(self) -> None:
        """Stop refreshing; idempotent. GUI thread; never blocks."""
        self.timer.stop()

    def is_refreshing(self) -> bool:
        """True while the refresh timer runs. GUI thread; never blocks."""
        return self.timer.isActive()

    @property
    def refreshes(self) -> int:
        """Refreshes done since construction. GUI thread; never blocks."""
        return self._refreshes

    @property
    def notices_flushed(self) -> int:
        """OVERFLOW notices this pane's refreshes made the bus publish. GUI thread; never blocks."""
        return self._notices_flushed

    # -- refresh ---------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Flush pending OVERFLOW notices, then re-read every stat. GUI thread; never blocks long."""
        self._refreshes += 1
        try:
            self._notices_flushed += self._bus.flush_overflow_notices()
        except Exception as exc:  # the pane must keep showing what it can
            _rlog.log(logging.ERROR, "flush", "flushing overflow notices failed: %r", exc)
        subs = sorted(self._bus.subscriptions(), key=lambda s: s.key)
        self.subscription_model.set_rows([_subscription_row(s) for s in subs])
        rows: list[Row] = []
        for name, stats_fn in list(self._sources.items()):
            rows.extend(self._source_rows(name, stats_fn))
        self.source_model.set_rows(rows)
        dropped = sum(s.dropped for s in subs)
        self.status_label.setText(
            f"{len(subs)} subscriptions, {dropped} events dropped in total, "
            f"{self._notices_flushed} overflow notices flushed; refreshed {datetime.now():%H:%M:%S}"
        )

    @staticmethod
    def _source_rows(name: str, stats_fn: StatsFn) -> list[Row]:
        try:
            stats = stats_fn()
        except Exception as exc:
            _rlog.log(logging.WARNING, f"source:{name}", "debug pane source %s failed: %r", name, exc)
            return [Row((name, "error", f"{type(exc).__name__}: {exc}"), ERROR)]
        if not isinstance(stats, Mapping):
            return [Row((name, "error", f"stats returned {type(stats).__name__}, not a dict"), ERROR)]
        return [Row((name, shown, _fmt(value)), _severity(top, value)) for top, shown, value in _flatten(stats)]

    # -- Qt --------------------------------------------------------------------------------------
    def sizeHint(self) -> QSize:  # noqa: N802 (Qt name)
        """Tall enough for several rows of each table (a dock starts at its widget's hint). GUI thread."""
        return QSize(900, PREFERRED_HEIGHT_PX)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt name)
        """Stop the timer when the pane closes. GUI thread; never blocks."""
        self.stop()
        super().closeEvent(event)
