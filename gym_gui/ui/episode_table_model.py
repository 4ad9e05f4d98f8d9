"""EpisodeTableModel: every episode of a stream (index, return, length, outcome), by episode index.

The table keeps every episode of a run (hundreds of thousands for a long one), so a row is a
plain tuple of atomic values ``(episode_index, total_reward, length, outcome)``, which the cycle
collector stops tracking at its first young collection: the rows add nothing to what a full
collection of the window's heap walks (an ``EpisodeRow`` object a row did, docs/tuning.md).
``EpisodeRow`` stays the type the accessors return.
"""

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
        flat = _flat_of(payload)
        return None if flat is None else cls(*flat)

    @classmethod
    def from_record(cls, record: EpisodeRecord) -> EpisodeRow:
        """The row of a stored episode. Any thread; never blocks."""
        return cls(record.episode_index, record.total_reward, record.length,
                   _outcome(record.outcome, record.terminated, record.truncated))


_Flat = tuple[int, "float | None", "int | None", str]


def _flat_of(payload: Mapping[str, Any]) -> _Flat | None:
    index = payload.get("episode_index")
    if type(index) is not int:
        return None
    return (index, _number(payload.get("total_reward")), _count(payload.get("length")),
            _outcome(payload.get("outcome"), payload.get("terminated"), payload.get("truncated")))


def _flat(row: EpisodeRow) -> _Flat:
    return (row.episode_index, row.total_reward, row.length, row.outcome)


class EpisodeTableModel(QAbstractTableModel):
    """Episodes sorted by index, one row each (a later row for the same index replaces it).

    Episodes arriving in order (the live case) are appended with one ``beginInsertRows`` per
    call; a late one (e.g. backfilled) is inserted at its place. GUI thread only.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[_Flat] = []
        self._keys: list[int] = []

    def add_events(self, events: Iterable[TelemetryEvent]) -> None:
        """Add the EPISODE_FINALIZED ``events``; payloads without an episode index are skipped.
        GUI thread; never blocks."""
        self._add_flat([row for row in (_flat_of(e.payload) for e in events) if row is not None])

    def set_records(self, records: Iterable[EpisodeRecord]) -> None:
        """Replace every row with the stored ``records``. GUI thread; never blocks."""
        rows = sorted((_flat(EpisodeRow.from_record(r)) for r in records), key=lambda row: row[0])
        by_index = {row[0]: row for row in rows}
        self.beginResetModel()
        self._rows = list(by_index.values())
        self._keys = [row[0] for row in self._rows]
        self.endResetModel()

    def add_rows(self, rows: Sequence[EpisodeRow]) -> None:
        """Add ``rows`` at their place by episode index. GUI thread; never blocks."""
        self._add_flat([_flat(row) for row in rows])

    def _add_flat(self, rows: Sequence[_Flat]) -> None:
        tail: list[_Flat] = []
        for row in rows:
            last = tail[-1][0] if tail else (self._keys[-1] if self._keys else None)
            if last is None or row[0] > last:
                tail.append(row)
            else:
                self._flush_tail(tail)
                tail = []
                self._place(row)
        self._flush_tail(tail)

    def _flush_tail(self, tail: list[_Flat]) -> None:
        if not tail:
            return
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(tail) - 1)
        self._rows.extend(tail)
        self._keys.extend(row[0] for row in tail)
        self.endInsertRows()

    def _place(self, row: _Flat) -> None:
        pos = bisect.bisect_left(self._keys, row[0])
        if pos < len(self._keys) and self._keys[pos] == row[0]:
            self._rows[pos] = row
            self.dataChanged.emit(self.index(pos, 0), self.index(pos, len(_HEADERS) - 1))
            return
        self.beginInsertRows(QModelIndex(), pos, pos)
        self._rows.insert(pos, row)
        self._keys.insert(pos, row[0])
        self.endInsertRows()

    def row_at(self, row: int) -> EpisodeRow:
        """The episode shown in ``row``. GUI thread; never blocks."""
        return EpisodeRow(*self._rows[row])

    def row_of(self, episode_index: int) -> int | None:
        """The row of ``episode_index``, or None. GUI thread; never blocks."""
        pos = bisect.bisect_left(self._keys, episode_index)
        return pos if pos < len(self._keys) and self._keys[pos] == episode_index else None

    def rows(self) -> list[EpisodeRow]:
        """A copy of every row. GUI thread; never blocks."""
        return [EpisodeRow(*row) for row in self._rows]

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
            episode_index, total_reward, length, outcome = self._rows[index.row()]
            col = index.column()
            if col == 0:
                return str(episode_index)
            if col == 1:
                return "" if total_reward is None else f"{total_reward:.6g}"
            if col == 2:
                return "" if length is None else str(length)
            return outcome
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() < 3:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None
