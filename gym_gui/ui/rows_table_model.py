"""RowsTableModel: a small table of text rows, each with a severity, replaced wholesale on refresh.

A ``QStandardItemModel`` that overrides none of Qt's virtual methods: the cells live in Qt's own
items, so painting the table (the debug dock is always on screen) calls no Python per cell, and in a
process whose other threads run Python (the proxies' readers, the sink) the GUI thread does not wait
for the interpreter once per cell. A refresh touches only the cells whose text or tint changed.
"""

from __future__ import annotations

from typing import Sequence

from qtpy.QtCore import QObject, Qt
from qtpy.QtGui import QBrush, QColor, QStandardItem, QStandardItemModel

from gym_gui.live.stat_rows import ERROR, OK, WARN, StatRow

__all__ = ["ERROR", "OK", "WARN", "Row", "RowsTableModel"]

#: A row: cell texts and a severity (OK, WARN or ERROR) that tints it (Qt-free, ``gym_gui.live.stat_rows``).
Row = StatRow
_BACKGROUNDS = {WARN: QBrush(QColor(255, 236, 179)), ERROR: QBrush(QColor(255, 190, 190))}
_TINTED_TEXT = QBrush(QColor(20, 20, 20))
_NO_BRUSH = QBrush()


class RowsTableModel(QStandardItemModel):
    """Fixed headers, rows set as a whole (stats views with tens of rows). GUI thread only."""

    def __init__(self, headers: Sequence[str], parent: QObject | None = None) -> None:
        """An empty table with ``headers``. GUI thread; never blocks."""
        super().__init__(0, len(headers), parent)
        self._headers = tuple(headers)
        self.setHorizontalHeaderLabels(list(self._headers))
        self._rows: list[Row] = []

    def set_rows(self, rows: Sequence[Row]) -> None:
        """Replace the rows: rows are added or removed at the end, and only the cells whose text or
        tint changed are set (one dataChanged each). GUI thread; never blocks."""
        rows = list(rows)
        old = self._rows
        if rows == old:
            return
        columns = len(self._headers)
        if len(rows) != len(old):
            self.setRowCount(len(rows))
        for r, row in enumerate(rows):
            before = old[r] if r < len(old) else None
            if before == row:
                continue
            retint = before is None or before.severity != row.severity
            for c in range(columns):
                text = row.cells[c] if c < len(row.cells) else ""
                item = self.item(r, c)
                if item is None:
                    item = QStandardItem(text)
                    item.setEditable(False)
                    self._tint(item, row.severity)
                    self.setItem(r, c, item)
                    continue
                if before is None or c >= len(before.cells) or before.cells[c] != text:
                    item.setText(text)
                if retint:
                    self._tint(item, row.severity)
        self._rows = rows

    @staticmethod
    def _tint(item: QStandardItem, severity: int) -> None:
        background = _BACKGROUNDS.get(severity)
        if background is None:  # OK: no role at all (an empty brush would paint the text invisible)
            item.setData(None, Qt.ItemDataRole.BackgroundRole)
            item.setData(None, Qt.ItemDataRole.ForegroundRole)
        else:
            item.setBackground(background)
            item.setForeground(_TINTED_TEXT)

    def rows(self) -> list[Row]:
        """A copy of the rows. GUI thread; never blocks."""
        return list(self._rows)

    def texts(self) -> list[tuple[str, ...]]:
        """The cell texts of every row. GUI thread; never blocks."""
        return [row.cells for row in self._rows]

    def headers(self) -> tuple[str, ...]:
        """The column names. Any thread; never blocks."""
        return self._headers

    def cell(self, row: int, column: int) -> str:
        """The text shown in a cell (Qt's own item). GUI thread; never blocks."""
        item = self.item(row, column)
        return "" if item is None else item.text()

    def background(self, row: int) -> QBrush:
        """The tint of a row (an empty brush when OK). GUI thread; never blocks."""
        item = self.item(row, 0)
        return _NO_BRUSH if item is None else item.background()

