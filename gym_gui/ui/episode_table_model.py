"""EpisodeTableModel: every episode of a stream (index, return, length, outcome), by episode index."""

from __future__ import annotations

import bisect
from typing import Any, Iterable, Mapping, Sequence

import attrs
from qtpy.QtCore import QAbstractTableModel, QModelIndex, QObject, Qt

from gym_gui.telemetry.events import TelemetryEvent
from gym_gui.telemetry.sqlite_records import EpisodeRecord

__all__ = ["EpisodeRow", "EpisodeTableModel"]

_HEADERS = ("episode", "return", "length", "outcome")


def _number(value: Any) -> float | None:
    return None if isinstance(value, bool) or not isinstance(value, (int, float)) else float(value)


def _count(value: Any) -> int | None:
    return value if type(value) is int else None


def _outcome(outcome: Any, terminated: Any, truncated: Any) -> str:
    if isinstance(outcome, str) and outcome:
        return outcome
    if terminated is True:
        return "terminated"
    if truncated is True:
        return "truncated"
    return ""


@attrs.frozen(slots=True)
class EpisodeRow:
    """One row of the episode table."""

    episode_index: int
    total_reward: float | None
    length: int | None
    outcome: str

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> EpisodeRow | None:
        """The row of an EPISODE_FINALIZED payload, or None without an integer episode_index.
        Any thread; never blocks."""
        index = payload.get("episode_index")
        if type(index) is not int:
            return None
        return cls(index, _number(payload.get("total_reward")), _count(payload.get("length")),
                   _outcome(payload.get("outcome"), payload.get("terminated"), payload.get("truncated")))

    @classmethod
    def from_record(cls, record: EpisodeRecord) -> EpisodeRow:
        """The row of a stored episode. Any thread; never blocks."""
        return cls(record.episode_index, record.total_reward, record.length,
                   _outcome(record.outcome, record.terminated, record.truncated))


class EpisodeTableModel(QAbstractTableModel):
    """Episodes sorted by index, one row each (a later row for the same index replaces it).

    Episodes arriving in order (the live case) are appended with one ``beginInsertRows`` per
    call; a late one (e.g. backfilled) is inserted at its place. GUI thread only.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[EpisodeRow] = []
        self._keys: list[int] = []

    def add_events(self, events: Iterable[TelemetryEvent]) -> None:
        """Add the EPISODE_FINALIZED ``events``; payloads without an episode index are skipped.
        GUI thread; never blocks."""
        self.add_rows([row for row in (EpisodeRow.from_payload(e.payload) for e in events) if row is not None])

    def set_records(self, records: Iterable[EpisodeRecord]) -> None:
        """Replace every row with the stored ``records``. GUI thread; never blocks."""
        rows = sorted((EpisodeRow.from_record(r) for r in records), key=lambda row: row.episode_index)
        by_index = {row.episode_index: row for row in rows}
        self.beginResetModel()
        self._rows = list(by_index.values())
        self._keys = [row.episode_index for row in self._rows]
        self.endResetModel()

    def add_rows(self, rows: Sequence[EpisodeRow]) -> None:
        """Add ``rows`` at their place by episode index. GUI thread; never blocks."""
        tail: list[EpisodeRow] = []
        for row in rows:
            last = tail[-1].episode_index if tail else (self._keys[-1] if self._keys else None)
            if last is None or row.episode_index > last:
                tail.append(row)
            else:
                self._flush_tail(tail)
                tail = []
                self._place(row)
        self._flush_tail(tail)

    def _flush_tail(self, tail: list[EpisodeRow]) -> None:
        if not tail:
            return
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(tail) - 1)
        self._rows.extend(tail)
        self._keys.extend(row.episode_index for row in tail)
        self.endInsertRows()

    def _place(self, row: EpisodeRow) -> None:
        pos = bisect.bisect_left(self._keys, row.episode_index)
        if pos < len(self._keys) and self._keys[pos] == row.episode_index:
            self._rows[pos] = row
            self.dataChanged.emit(self.index(pos, 0), self.index(pos, len(_HEADERS) - 1))
            return
        self.beginInsertRows(QModelIndex(), pos, pos)
        self._rows.insert(pos, row)
        self._keys.insert(pos, row.episode_index)
        self.endInsertRows()

    def row_at(self, row: int) -> EpisodeRow:
        """The episode shown in ``row``. GUI thread; never blocks."""
        return self._rows[row]

    def row_of(self, episode_index: int) -> int | None:
        """The row of ``episode_index``, or None. GUI thread; never blocks."""
        pos = bisect.bisect_left(self._keys, episode_index)
        return pos if pos < len(self._keys) and self._keys[pos] == episode_index else None

    def rows(self) -> list[EpisodeRow]:
        """A copy of every row. GUI thread; never blocks."""
        return list(self._rows)

    # -- QAbstractTableModel ---------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802 (Qt name)
        """Episodes shown. GUI thread; never blocks."""
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802 (Qt name)
        """Number of columns. GUI thread; never blocks."""
        return 0 if parent.isValid() else len(_HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        """Column names. GUI thread; never blocks."""
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal and 0 <= section < len(_HEADERS):
            return _HEADERS[section]
        return None

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Cell text. GUI thread; never blocks."""
        if not index.isValid():
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            row = self._rows[index.row()]
            col = index.column()
            if col == 0:
                return str(row.episode_index)
            if col == 1:
                return "" if row.total_reward is None else f"{row.total_reward:.6g}"
            if col == 2:
                return "" if row.length is None else str(row.length)
            return row.outcome
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() < 3:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None
