"""StepTableModel: the newest N step events of a stream, appended in bulk, formatted lazily."""

from __future__ import annotations

import json
from typing import Any, Callable, Sequence

from qtpy.QtCore import QAbstractTableModel, QModelIndex, QObject, Qt

from gym_gui.telemetry.events import TelemetryEvent

__all__ = ["DEFAULT_MAX_ROWS", "StepTableModel"]

#: Rows kept by default; older rows leave the table (the tab's counters still count them).
DEFAULT_MAX_ROWS = 10_000

_TEXT_LIMIT = 120


def _short(value: Any) -> str:
    """Compact JSON text of ``value``, cut to a table-friendly length."""
    if value is None:
        return ""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, separators=(",", ":"), default=str)
        except (TypeError, ValueError):
            text = repr(value)
    return text if len(text) <= _TEXT_LIMIT else text[: _TEXT_LIMIT - 1] + "\u2026"


def _reward(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _short(value)
    return f"{value:.6g}"


def _flag(value: Any) -> str:
    return "yes" if value is True else ("" if value in (False, None) else _short(value))


_COLUMNS: tuple[tuple[str, Callable[[TelemetryEvent], str]], ...] = (
    ("seq", lambda e: str(e.seq_id)),
    ("episode", lambda e: _short(e.payload.get("episode_index"))),
    ("step", lambda e: _short(e.payload.get("step_index"))),
    ("action", lambda e: _short(e.payload.get("action"))),
    ("reward", lambda e: _reward(e.payload.get("reward"))),
    ("terminated", lambda e: _flag(e.payload.get("terminated"))),
    ("truncated", lambda e: _flag(e.payload.get("truncated"))),
    ("observation", lambda e: _short(e.payload.get("observation"))),
)


class StepTableModel(QAbstractTableModel):
    """A bounded, append-only table of STEP_APPENDED events (newest last).

    ``append_steps`` inserts a whole batch with one ``beginInsertRows`` (and trims the oldest rows
    with one ``beginRemoveRows``); cells are formatted only when a view asks for them, so a batch
    costs a list extend, not per-row work. GUI thread only.
    """

    def __init__(self, max_rows: int = DEFAULT_MAX_ROWS, parent: QObject | None = None) -> None:
        super().__init__(parent)
        if max_rows < 1:
            raise ValueError("max_rows must be >= 1")
        self._max_rows = max_rows
        self._rows: list[TelemetryEvent] = []
        self._appended = 0

    @property
    def max_rows(self) -> int:
        """The bound on rows kept. Any thread; never blocks."""
        return self._max_rows

    @property
    def appended_total(self) -> int:
        """Steps ever appended, including those trimmed away since. GUI thread; never blocks."""
        return self._appended

    def append_steps(self, steps: Sequence[TelemetryEvent]) -> None:
        """Append ``steps`` (oldest first), dropping the oldest rows beyond ``max_rows``. GUI thread; never blocks."""
        if not steps:
            return
        self._appended += len(steps)
        if len(steps) > self._max_rows:
            steps = steps[-self._max_rows :]
        excess = len(self._rows) + len(steps) - self._max_rows
        if excess > 0:
            self.beginRemoveRows(QModelIndex(), 0, excess - 1)
            del self._rows[:excess]
            self.endRemoveRows()
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(steps) - 1)
        self._rows.extend(steps)
        self.endInsertRows()

    def count_skipped(self, count: int) -> None:
        """Count ``count`` steps older than the next ``append_steps`` that would have left the table
        at once (a tab behind another keeps only the newest ``max_rows`` it holds): they are in
        ``appended_total``, never in the rows. GUI thread; never blocks."""
        if count > 0:
            self._appended += count

    def clear(self) -> None:
        """Remove every row (the appended total is kept). GUI thread; never blocks."""
        self.beginResetModel()
        self._rows.clear()
        self.endResetModel()

    def step_at(self, row: int) -> TelemetryEvent:
        """The event shown in ``row``. GUI thread; never blocks."""
        return self._rows[row]

    # -- QAbstractTableModel ---------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802 (Qt name)
        """Rows kept. GUI thread; never blocks."""
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802 (Qt name)
        """Number of columns. GUI thread; never blocks."""
        return 0 if parent.isValid() else len(_COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        """Column names. GUI thread; never blocks."""
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal and 0 <= section < len(_COLUMNS):
            return _COLUMNS[section][0]
        return None

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Cell text, formatted on demand. GUI thread; never blocks."""
        if not index.isValid():
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            try:
                return _COLUMNS[index.column()][1](self._rows[index.row()])
            except Exception:  # an odd payload shows as empty, never breaks the view
                return ""
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() in (0, 1, 2, 4):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None
