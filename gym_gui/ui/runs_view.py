"""RunsView: every run the registry knows, with its status; double-click opens a finished run's replay."""

from __future__ import annotations

from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

__all__ = ["RunsView"]

COLUMNS = ("run", "status", "env", "agents")


class RunsView(QWidget):
    """One row per run (runs are few: a table widget is fine). GUI thread only.

    ``replay_requested(run_id)`` on a double-click of a row.
    """

    replay_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.cellDoubleClicked.connect(lambda row, _col: self.replay_requested.emit(self.run_at(row)))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        self._rows: dict[str, int] = {}

    def set_run(self, run_id: str, status: str, env_id: str | None, agent_ids: tuple[str, ...]) -> None:
        """Add or update a run's row. GUI thread."""
        row = self._rows.get(run_id)
        if row is None:
            row = self._rows[run_id] = self.table.rowCount()
            self.table.insertRow(row)
        for col, text in enumerate((run_id, status, env_id or "", ", ".join(a for a in agent_ids if a))):
            item = self.table.item(row, col)
            if item is None:
                item = QTableWidgetItem()
                item.setData(Qt.ItemDataRole.UserRole, run_id)
                self.table.setItem(row, col, item)
            item.setText(text)

    def run_at(self, row: int) -> str:
        """The run id shown in ``row``. GUI thread."""
        item = self.table.item(row, 0)
        return item.text() if item is not None else ""

    def status_of(self, run_id: str) -> str | None:
        """The status text shown for ``run_id``. GUI thread."""
        row = self._rows.get(run_id)
        item = self.table.item(row, 1) if row is not None else None
        return item.text() if item is not None else None
