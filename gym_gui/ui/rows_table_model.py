"""RowsTableModel: a small table of text rows, each with a severity, replaced wholesale on refresh."""

from __future__ import annotations

from typing import Any, Sequence

from qtpy.QtCore import QAbstractTableModel, QModelIndex, QObject, Qt
from qtpy.QtGui import QBrush, QColor

from gym_gui.live.stat_rows import ERROR, OK, WARN, StatRow

__all__ = ["ERROR", "OK", "WARN", "Row", "RowsTableModel"]

#: A row: cell texts and a severity (OK, WARN or ERROR) that tints it (Qt-free, ``gym_gui.live.stat_rows``).
Row = StatRow
_BACKGROUNDS = {WARN: QBrush(QColor(255, 236, 179)), ERROR: QBrush(QColor(255, 190, 190))}


class RowsTableModel(QAbstractTableModel):
    """Fixed headers, rows set as a whole (stats views with tens of rows). GUI thread only."""

    def __init__(self, headers: Sequence[str], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._headers = tuple(headers)
        self._rows: list[Row] = []

    def set_rows(self, rows: Sequence[Row]) -> None:
        """Replace the rows: in place (dataChanged) when the count is unchanged, else a reset.
        GUI thread; never blocks."""
        rows = list(rows)
        if len(rows) == len(self._rows):
            if rows != self._rows:
                self._rows = rows
                self.dataChanged.emit(self.index(0, 0), self.index(len(rows) - 1, len(self._headers) - 1))
            return
        self.beginResetModel()
        self._rows = rows
        self.endResetModel()

    def rows(self) -> list[Row]:
        """A copy of the rows. GUI thread; never blocks."""
        return list(self._rows)

    def texts(self) -> list[tuple[str, ...]]:
        """The cell texts of every row. GUI thread; never blocks."""
        return [row.cells for row in self._rows]

    # -- QAbstractTableModel ---------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802 (Qt name)
        """Rows. GUI thread; never blocks."""
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802 (Qt name)
        """Columns. GUI thread; never blocks."""
        return 0 if parent.isValid() else len(self._headers)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        """Column names. GUI thread; never blocks."""
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal and 0 <= section < len(self._headers):
            return self._headers[section]
        return None

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Cell text and row tint. GUI thread; never blocks."""
        if not index.isValid():
            return None
        row = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return row.cells[index.column()] if index.column() < len(row.cells) else ""
        if role == Qt.ItemDataRole.BackgroundRole:
            return _BACKGROUNDS.get(row.severity)
        if role == Qt.ItemDataRole.ForegroundRole and row.severity != OK:
            return QBrush(QColor(20, 20, 20))
        return None
