"""StepTableModel: the newest N steps of a stream, appended in bulk, formatted lazily.

A row is a plain tuple of the values the table shows (``StepRow``'s fields), each one the
collector does not track (``gc_tuning.untracked_value``; a list observation becomes a tuple, an
object that cannot be made flat its table text): 10,000 rows per tab add nothing to what a full
collection of the window's heap walks, where the events themselves (an event and its payload,
two tracked objects a row) made a full collection walk 20,000 more objects per tab
(docs/tuning.md, "Long-lived rows").
"""

from __future__ import annotations

import json
from typing import Any, Callable, NamedTuple, Sequence

from qtpy.QtCore import QAbstractTableModel, QModelIndex, QObject, Qt

from gym_gui.gc_tuning import NOT_FLAT, untracked_value
from gym_gui.telemetry.events import TelemetryEvent
from gym_gui.telemetry.step_payload import StepPayload

__all__ = ["DEFAULT_MAX_ROWS", "StepRow", "StepTableModel", "step_row"]

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


class StepRow(NamedTuple):
    """What the table shows of one step (a value the collector would track is its table text)."""

    seq_id: int
    episode_index: Any
    step_index: Any
    action: Any
    reward: Any
    terminated: Any
    truncated: Any
    observation: Any


_ATOMIC = frozenset({int, float, bool, str, type(None)})


def _flat(value: Any) -> Any:
    if type(value) in _ATOMIC:
        return value
    flat = untracked_value(value)
    return _short(value) if flat is NOT_FLAT else flat


def step_row(evt: TelemetryEvent) -> tuple[Any, ...]:
    """The table's row of a STEP_APPENDED event: a plain tuple in ``StepRow`` order whose values the
    collector does not track. Any thread; pure."""
    payload = evt.payload
    if type(payload) is StepPayload:  # (indices, reward and flags: ints, floats and bools by construction)
        ep, si, action, observation, reward, terminated, truncated, _info, _render = payload.fields
        atomic = _ATOMIC
        if type(action) not in atomic:
            action = _flat(action)
        if type(observation) not in atomic:
            observation = _flat(observation)
        return (evt.seq_id, ep, si, action, reward, terminated, truncated, observation)
    get = payload.get
    return (evt.seq_id, _flat(get("episode_index")), _flat(get("step_index")), _flat(get("action")),
            _flat(get("reward")), _flat(get("terminated")), _flat(get("truncated")), _flat(get("observation")))


_COLUMNS: tuple[tuple[str, Callable[[tuple[Any, ...]], str]], ...] = (
    ("seq", lambda r: str(r[0])),
    ("episode", lambda r: _short(r[1])),
    ("step", lambda r: _short(r[2])),
    ("action", lambda r: _short(r[3])),
    ("reward", lambda r: _reward(r[4])),
    ("terminated", lambda r: _flag(r[5])),
    ("truncated", lambda r: _flag(r[6])),
    ("observation", lambda r: _short(r[7])),
)


class StepTableModel(QAbstractTableModel):
    """A bounded, append-only table of STEP_APPENDED events (newest last).

    ``append_steps`` inserts a whole batch with one ``beginInsertRows`` (and trims the oldest rows
    with one ``beginRemoveRows``); a step is kept as its flat row (``step_row``), and cells are
    formatted only when a view asks for them. GUI thread only.
    """

    def __init__(self, max_rows: int = DEFAULT_MAX_ROWS, parent: QObject | None = None) -> None:
        super().__init__(parent)
        if max_rows < 1:
            raise ValueError("max_rows must be >= 1")
        self._max_rows = max_rows
        self._rows: list[tuple[Any, ...]] = []
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
        self._appended += len(steps) - min(len(steps), self._max_rows)
        self.append_rows([step_row(evt) for evt in steps[-self._max_rows:]])

    def append_rows(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Append rows made by ``step_row`` (oldest first; a tab holds its steps as rows while
        hidden), dropping the oldest beyond ``max_rows``. GUI thread; never blocks."""
        if not rows:
            return
        self._appended += len(rows)
        if len(rows) > self._max_rows:
            rows = rows[-self._max_rows :]
        excess = len(self._rows) + len(rows) - self._max_rows
        if excess > 0:
            self.beginRemoveRows(QModelIndex(), 0, excess - 1)
            del self._rows[:excess]
            self.endRemoveRows()
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(rows) - 1)
        self._rows.extend(rows)
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

    def step_at(self, row: int) -> StepRow:
        """What ``row`` shows of its step. GUI thread; never blocks."""
        return StepRow(*self._rows[row])

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
