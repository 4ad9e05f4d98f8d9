"""RunsView: the run manager. Every run the registry knows or SQLite holds, with its aggregates;
sortable, filterable, refreshed from SQLite off the GUI thread (every ``refresh_interval_ms``, a
deadline of the GUI pump: no timer of its own); a context menu acts on the selected runs (open
live / replay, compare, export, mark as failed, delete)."""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Callable, Sequence

from qtpy.QtCore import QItemSelectionModel, QModelIndex, QPoint, Qt, QTimer, Signal
from qtpy.QtGui import QAction, QShowEvent
from qtpy.QtWidgets import (QAbstractItemView, QComboBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
                            QMenu, QMessageBox, QPushButton, QTableView, QVBoxLayout, QWidget)

from gym_gui.qt.gui_pump import GuiPump
from gym_gui.qt.store_reader import StoreReader
from gym_gui.telemetry.run_summaries import RunSummary, read_summaries, summaries_token
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore
from gym_gui.ui.runs_table_model import COLUMNS, RUN_ID_ROLE, RunsFilterProxy, RunsTableModel

__all__ = ["COLUMNS", "DEFAULT_REFRESH_INTERVAL_MS", "RunsView", "STATUS_FILTERS"]

_log = logging.getLogger(__name__)

DEFAULT_REFRESH_INTERVAL_MS = 3000
#: Shortest time between two fits of the columns to their texts (a fit reads every cell of the table).
FIT_INTERVAL_S = 1.0
#: The status filter's choices: label -> statuses shown (None: all).
STATUS_FILTERS: dict[str, frozenset[str] | None] = {
    "all statuses": None,
    "going (running, stalled, pending)": frozenset({"running", "stalled", "pending"}),
    "running": frozenset({"running"}),
    "stalled": frozenset({"stalled"}),
    "completed": frozenset({"completed"}),
    "failed": frozenset({"failed"}),
    "cancelled": frozenset({"cancelled"}),
    "interrupted": frozenset({"interrupted"}),
}
#: Finished runs (they can be deleted); an interrupted one can still be marked failed.
TERMINAL = frozenset({"completed", "failed", "cancelled", "interrupted"})


def _can_mark_failed(status: str | None) -> bool:
    return status not in TERMINAL or status == "interrupted"
Confirm = Callable[[str, str], bool]


def _ask(parent: QWidget) -> Confirm:
    def confirm(title: str, text: str) -> bool:
        answer = QMessageBox.question(parent, title, text,
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                                      QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Yes
    return confirm


class RunsView(QWidget):
    """The Runs tab. GUI thread only; SQLite is read and written only through the ``StoreReader``.

    Signals (GUI thread): ``live_requested(run_id)``, ``replay_requested(run_id)`` (also a double-click),
    ``compare_requested(list[str])``, ``export_requested(run_id, fmt)`` (fmt ``csv``, ``jsonl`` or
    ``gif``), ``mark_failed_requested(run_id)``, ``run_deleted(run_id)`` (after the store removed it),
    ``refreshed(int rows)`` after each refresh that read SQLite.
    """

    live_requested = Signal(str)
    replay_requested = Signal(str)
    compare_requested = Signal(object)
    export_requested = Signal(str, str)
    mark_failed_requested = Signal(str)
    run_deleted = Signal(str)
    delete_failed = Signal(str, str)
    refreshed = Signal(int)

    def __init__(self, reader: StoreReader | None = None, *, refresh_interval_ms: int = DEFAULT_REFRESH_INTERVAL_MS,
                 pump: GuiPump | None = None, parent: QWidget | None = None) -> None:
        """Build the view; ``start()`` begins the refreshes, ticked by ``pump`` (the app's GUI pump;
        without one the view runs its own). GUI thread; does not block."""
        super().__init__(parent)
        self._reader = reader
        self._interval_s = max(50, refresh_interval_ms) / 1000.0
        self._next_refresh_s: float | None = None  # None: not refreshing
        self._own_pump = pump is None
        self.pump = GuiPump(parent=self) if pump is None else pump
        self._token: Any = None
        self._summaries: dict[str, RunSummary] = {}
        self._in_flight = False
        self._deleting: set[str] = set()
        self._refreshes = 0
        self._last_fit_s = float("-inf")
        self._fit_pending = False
        self.fits = 0  # fits of the columns to their texts (tests, benchmarks)
        self._fit_timer = QTimer(self)
        self._fit_timer.setSingleShot(True)
        self._fit_timer.timeout.connect(self._fit_columns)
        #: ``confirm(title, text) -> bool``: asks before a deletion (a QMessageBox; tests may replace it).
        self.confirm: Confirm = _ask(self)

        self.model = RunsTableModel(self)
        self.proxy = RunsFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(COLUMNS.index("started"), Qt.SortOrder.DescendingOrder)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        # Interactive, fitted by _fit_columns (only while shown): in ResizeToContents mode the header
        # read every cell again at each refresh's dataChanged, the tab hidden or not.
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)  # elided; the tooltip has all
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._show_menu)
        self.table.doubleClicked.connect(self._on_double_click)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._update_actions())

        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter runs: env, agent, status, run id, hyper-parameter ...")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self.proxy.set_text_filter)
        self.status_filter = QComboBox()
        self.status_filter.addItems(list(STATUS_FILTERS))
        self.status_filter.currentTextChanged.connect(lambda label: self.proxy.set_status_filter(STATUS_FILTERS[label]))
        self.compare_button = QPushButton("Compare selected")
        self.count_label = QLabel("")

        self.action_open_live = QAction("Open live", self)
        self.action_open_replay = QAction("Open replay", self)
        self.action_compare = QAction("Compare selected runs", self)
        self.action_export_csv = QAction("Export episodes and steps as CSV...", self)
        self.action_export_jsonl = QAction("Export episodes and steps as JSONL...", self)
        self.action_export_gif = QAction("Export an episode as GIF...", self)
        self.action_mark_failed = QAction("Mark as failed", self)
        self.action_delete = QAction("Delete...", self)
        self.action_open_live.triggered.connect(lambda: self._each(self.live_requested.emit))
        self.action_open_replay.triggered.connect(lambda: self._each(self.replay_requested.emit))
        self.action_compare.triggered.connect(self._compare)
        self.compare_button.clicked.connect(self._compare)
        self.action_export_csv.triggered.connect(lambda: self._each(lambda r: self.export_requested.emit(r, "csv")))
        self.action_export_jsonl.triggered.connect(lambda: self._each(lambda r: self.export_requested.emit(r, "jsonl")))
        self.action_export_gif.triggered.connect(lambda: self._each(lambda r: self.export_requested.emit(r, "gif")))
        self.action_mark_failed.triggered.connect(self._mark_failed)
        self.action_delete.triggered.connect(lambda: self.delete_runs(self.selected_run_ids()))

        bar = QHBoxLayout()
        bar.addWidget(self.filter_edit, 1)
        bar.addWidget(self.status_filter)
        bar.addWidget(self.compare_button)
        bar.addWidget(self.count_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.table)

        for signal in (self.proxy.rowsInserted, self.proxy.rowsRemoved, self.proxy.layoutChanged,
                       self.proxy.modelReset):
            signal.connect(lambda *_: self._update_count())
        self._update_actions()

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Refresh from SQLite now and every ``refresh_interval_ms``; idempotent. GUI thread; never blocks."""
        if self._reader is None or self._next_refresh_s is not None:
            return
        self.refresh()
        self._next_refresh_s = self.pump.clock() + self._interval_s
        self.pump.add(self, waker=self.pump.new_waker())  # no subscription: ticked at its deadlines only
        if self._own_pump:
            self.pump.start()

    def stop(self) -> None:
        """Stop the refreshes (the pump no longer ticks the view); idempotent. GUI thread; never blocks."""
        self._next_refresh_s = None
        self._fit_timer.stop()
        self.pump.remove(self)
        if self._own_pump:
            self.pump.stop()

    def is_refreshing(self) -> bool:
        """True while the pump refreshes the view. GUI thread."""
        return self._next_refresh_s is not None and self in self.pump and self.pump.is_running()

    def tick(self, now_s: float) -> None:
        """The pump's tick: refresh when due (skipped while a read is still running). GUI thread."""
        if self._next_refresh_s is not None and now_s >= self._next_refresh_s:
            self._next_refresh_s = now_s + self._interval_s
            self.refresh()

    def next_deadline_s(self, now_s: float) -> float | None:
        """The next refresh (None when stopped). GUI thread."""
        return self._next_refresh_s

    @property
    def refreshes(self) -> int:
        """Refreshes whose read came back (changed or not). GUI thread."""
        return self._refreshes

    # -- rows ------------------------------------------------------------------------------------
    def set_run(self, run_id: str, status: str, env_id: str | None, agent_ids: tuple[str, ...]) -> None:
        """The registry's news of a run: add or update its row. GUI thread; never blocks."""
        if run_id in self._deleting:
            return
        self.model.set_live(run_id, status, env_id, tuple(agent_ids))
        self._update_actions()
        self._fit_columns()

    def set_label(self, run_id: str, label: str) -> None:
        """Show the label the run's tabs carry beside its id. GUI thread; never blocks."""
        self.model.set_label(run_id, label)
        self._fit_columns()

    def status_of(self, run_id: str) -> str | None:
        """The status shown for ``run_id``, or None when it is not listed. GUI thread."""
        row = self.model.row_of(run_id)
        return None if row is None else row.status

    def summary_of(self, run_id: str) -> RunSummary | None:
        """The stored aggregates shown for ``run_id`` (None until read). GUI thread."""
        row = self.model.row_of(run_id)
        return None if row is None else row.summary

    def visible_run_ids(self) -> list[str]:
        """Run ids as shown: filtered and sorted. GUI thread."""
        return [self.proxy.data(self.proxy.index(r, 0), RUN_ID_ROLE) for r in range(self.proxy.rowCount())]

    def run_at(self, row: int) -> str:
        """The run id shown in visible ``row``. GUI thread."""
        return str(self.proxy.data(self.proxy.index(row, 0), RUN_ID_ROLE) or "")

    def select_runs(self, run_ids: Sequence[str]) -> None:
        """Select the visible rows of ``run_ids`` (the rest is deselected). GUI thread."""
        wanted = set(run_ids)
        selection = self.table.selectionModel()
        selection.clearSelection()
        for r in range(self.proxy.rowCount()):
            if self.run_at(r) in wanted:
                selection.select(self.proxy.index(r, 0), QItemSelectionModel.SelectionFlag.Select
                                 | QItemSelectionModel.SelectionFlag.Rows)
        self._update_actions()

    def selected_run_ids(self) -> list[str]:
        """Selected runs in the order shown. GUI thread."""
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        return [self.run_at(r) for r in rows]

    # -- refresh ---------------------------------------------------------------------------------
    def refresh(self) -> bool:
        """Read SQLite on a reader thread (skipped when nothing changed since the last read, or a read is
        still running); the rows update when it lands. GUI thread; never blocks. False when not submitted."""
        if self._reader is None or self._in_flight:
            return False
        token, previous = self._token, dict(self._summaries)

        def query(store: TelemetrySQLiteStore) -> tuple[Any, list[RunSummary] | None]:
            conn = store._reader()  # noqa: SLF001 - the store's own per-thread read connection
            now = summaries_token(conn)
            if now == token:
                return now, None
            return now, read_summaries(conn, previous)

        submitted = self._reader.submit(query, self._on_summaries, self._on_refresh_failed)
        self._in_flight = submitted
        return submitted

    def _on_summaries(self, result: tuple[Any, list[RunSummary] | None]) -> None:
        self._in_flight = False
        self._refreshes += 1
        token, summaries = result
        if summaries is not None:
            self._token = token
            listed = [s for s in summaries if s.run_id not in self._deleting]
            self._summaries = {s.run_id: s for s in listed}
            self.model.set_summaries(listed)
            self._update_actions()
            self._fit_columns()
        self.refreshed.emit(self.model.rowCount())

    def _on_refresh_failed(self, error: BaseException) -> None:
        self._in_flight = False
        self._refreshes += 1
        _log.warning("the Runs tab could not read the runs: %s: %s", type(error).__name__, error)

    # -- actions ---------------------------------------------------------------------------------
    def _each(self, fn: Callable[[str], None]) -> None:
        for run_id in self.selected_run_ids():
            fn(run_id)

    def _compare(self) -> None:
        run_ids = self.selected_run_ids()
        if run_ids:
            self.compare_requested.emit(run_ids)

    def _mark_failed(self) -> None:
        for run_id in self.selected_run_ids():
            if _can_mark_failed(self.status_of(run_id)):
                self.mark_failed_requested.emit(run_id)

    def delete_runs(self, run_ids: Sequence[str]) -> int:
        """Ask, then remove the finished ones of ``run_ids`` from SQLite (steps and episodes; the run is
        marked deleted) on a reader thread; each row goes when its deletion is committed
        (``run_deleted``). Runs still going are not deleted. GUI thread; never blocks on SQLite
        (the question is modal). Returns how many deletions were submitted."""
        finished = [r for r in run_ids if self.status_of(r) in TERMINAL and r not in self._deleting]
        skipped = len(run_ids) - len(finished)
        if not finished or self._reader is None:
            return 0
        names = ", ".join(finished[:5]) + (f" and {len(finished) - 5} more" if len(finished) > 5 else "")
        text = (f"Delete {len(finished)} run(s) from the database: {names}?\n\nTheir steps and episodes are removed "
                "for good; other runs are not touched.")
        if skipped:
            text += f"\n{skipped} selected run(s) still going are not deleted."
        if not self.confirm("Delete runs", text):
            return 0
        submitted = 0
        for run_id in finished:
            def query(store: TelemetrySQLiteStore, run_id: str = run_id) -> str:
                store.delete_run(run_id, wait=True)  # the store's writer thread; this reader thread waits
                return run_id

            if self._reader.submit(query, self._on_deleted,
                                   lambda exc, run_id=run_id: self._on_delete_failed(run_id, exc)):
                self._deleting.add(run_id)
                submitted += 1
        return submitted

    def _on_deleted(self, run_id: str) -> None:
        self._summaries.pop(run_id, None)
        self.model.remove_run(run_id)
        self._update_actions()
        self.run_deleted.emit(run_id)

    def _on_delete_failed(self, run_id: str, error: BaseException) -> None:
        self._deleting.discard(run_id)
        _log.error("deleting run %s failed: %s", run_id, error)
        self.delete_failed.emit(run_id, f"{type(error).__name__}: {error}")

    def _update_actions(self) -> None:
        selected = self.selected_run_ids()
        statuses = [self.status_of(r) for r in selected]
        one_or_more = bool(selected)
        for action in (self.action_open_live, self.action_open_replay, self.action_export_csv,
                       self.action_export_jsonl, self.action_export_gif):
            action.setEnabled(one_or_more)
        self.action_compare.setEnabled(len(selected) >= 1)
        self.compare_button.setEnabled(len(selected) >= 1)
        self.action_mark_failed.setEnabled(any(_can_mark_failed(s) for s in statuses))
        self.action_delete.setEnabled(any(s in TERMINAL for s in statuses))

    def context_menu(self) -> QMenu:
        """The menu of the selected runs (its actions are this view's ``action_*``). GUI thread."""
        self._update_actions()
        menu = QMenu(self)
        menu.addAction(self.action_open_live)
        menu.addAction(self.action_open_replay)
        menu.addAction(self.action_compare)
        menu.addSeparator()
        menu.addAction(self.action_export_csv)
        menu.addAction(self.action_export_jsonl)
        menu.addAction(self.action_export_gif)
        menu.addSeparator()
        menu.addAction(self.action_mark_failed)
        menu.addAction(self.action_delete)
        return menu

    def _show_menu(self, pos: QPoint) -> None:
        index = self.table.indexAt(pos)
        if index.isValid() and not self.table.selectionModel().isRowSelected(index.row(), QModelIndex()):
            self.select_runs([self.run_at(index.row())])
        if self.selected_run_ids():
            self.context_menu().exec(self.table.viewport().mapToGlobal(pos))

    def _on_double_click(self, index: QModelIndex) -> None:
        run_id = self.run_at(index.row())
        if run_id:
            self.replay_requested.emit(run_id)

    def _fit_columns(self) -> None:
        """Columns as wide as their texts (the header's contents mode reads only at layout time).

        A fit reads every cell, so it runs only while the tab is shown (a hidden one fits when shown)
        and at most every ``FIT_INTERVAL_S`` (a change sooner fits at the interval's end)."""
        if not self.isVisible():
            self._fit_timer.stop()
            self._fit_pending = True
            return
        now = time.monotonic()
        wait_s = self._last_fit_s + FIT_INTERVAL_S - now
        if wait_s > 0:
            if not self._fit_timer.isActive():
                self._fit_timer.start(max(1, math.ceil(wait_s * 1000)))
            return
        self._fit_pending = False
        self._last_fit_s = now
        self.fits += 1
        self.table.resizeColumnsToContents()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt name)
        """Fit the columns to what changed while the tab was hidden. GUI thread; never blocks long."""
        super().showEvent(event)
        if self._fit_pending:
            self._fit_columns()

    def _update_count(self) -> None:
        shown, total = self.proxy.rowCount(), self.model.rowCount()
        self.count_label.setText(f"{total} runs" if shown == total else f"{shown} of {total} runs")
