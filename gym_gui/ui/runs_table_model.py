"""RunsTableModel: one row per run (stored summary merged with the registry's live status), and
RunsFilterProxy: the Runs tab's sort and filters."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Iterable

import attrs
from qtpy.QtCore import QAbstractTableModel, QModelIndex, QObject, QSortFilterProxyModel, Qt

from gym_gui.telemetry.run_summaries import RunSummary, hyper_parameters

__all__ = ["COLUMNS", "RUN_ID_ROLE", "SORT_ROLE", "RunRow", "RunsFilterProxy", "RunsTableModel", "format_duration",
           "format_return"]

COLUMNS = ("run", "started", "duration", "status", "env", "agents", "episodes", "steps", "last return",
           "best return", "hyper-parameters")
_TOOLTIPS = {
    "run": "the run id, after the label its tabs carry (FrozenLake #3) once it has one",
    "started": "when the run started (local time), else its first stored event",
    "duration": "start to completion, or to the newest stored news of a run still going",
    "status": "live status (this window's registry), else the stored one",
    "episodes": "episodes stored in SQLite",
    "steps": "steps stored in SQLite (a partial last episode's steps count)",
    "last return": "total reward of the newest stored episode",
    "best return": "highest total reward of any stored episode",
    "hyper-parameters": "the run's scalar config values (RUN_STARTED config)",
}
RUN_ID_ROLE = int(Qt.ItemDataRole.UserRole) + 1
SORT_ROLE = int(Qt.ItemDataRole.UserRole) + 2
_STATUS_ORDER = {"running": 0, "stalled": 1, "pending": 2, "interrupted": 3, "failed": 4, "cancelled": 5, "completed": 6}


@attrs.define(slots=True)
class RunRow:
    """A run as shown: ``summary`` from SQLite (None until stored), ``live_status`` etc. from the registry."""

    run_id: str
    summary: RunSummary | None = None
    live_status: str | None = None
    live_env_id: str | None = None
    live_agents: tuple[str, ...] = ()
    label: str | None = None  # the window's tab label (``Taxi #1``), once the run has a tab

    @property
    def status(self) -> str:
        """The live status, else the stored one. GUI thread."""
        return self.live_status or (self.summary.status if self.summary is not None else "pending")

    @property
    def env_id(self) -> str | None:
        """The env id. GUI thread."""
        return self.live_env_id or (self.summary.env_id if self.summary is not None else None)

    @property
    def agents(self) -> tuple[str, ...]:
        """Agent ids, live first then stored ones. GUI thread."""
        stored = self.summary.agent_ids if self.summary is not None else ()
        return tuple(dict.fromkeys(a for a in (*self.live_agents, *stored) if a))

    @property
    def started_iso(self) -> str | None:
        """ISO start time (else the first event's). GUI thread."""
        s = self.summary
        return None if s is None else (s.started_at or s.created_at)


def format_duration(seconds: float | None) -> str:
    """``12.3 s``, ``4 min 05 s``, ``2 h 03 min``; '' for None. Any thread."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def format_return(value: float | None) -> str:
    """A return for people: up to 4 significant digits; '' for None. Any thread."""
    return "" if value is None else f"{value:.4g}"


def _local_time(iso: str | None) -> str:
    if not iso:
        return ""
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso


def _value_text(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _hyper_text(summary: RunSummary | None) -> str:
    if summary is None:
        return ""
    return ", ".join(f"{k}={_value_text(v)}" for k, v in hyper_parameters(summary.config).items())


class RunsTableModel(QAbstractTableModel):
    """Rows of ``RunRow`` in the order runs became known. GUI thread only."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[RunRow] = []
        self._index: dict[str, int] = {}
        self._labels: dict[str, str] = {}

    # -- Qt --------------------------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        """Number of runs. GUI thread."""
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        """Number of columns. GUI thread."""
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        """Column names and their tooltips. GUI thread."""
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(COLUMNS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return _TOOLTIPS.get(COLUMNS[section])
        return None

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Cell text, sort key (SORT_ROLE), run id (RUN_ID_ROLE), tooltips. GUI thread."""
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row = self._rows[index.row()]
        column = COLUMNS[index.column()]
        if role == RUN_ID_ROLE:
            return row.run_id
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(row, column)
        if role == SORT_ROLE:
            return self._sort_key(row, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == "hyper-parameters" and row.summary is not None and row.summary.config is not None:
                return json.dumps(row.summary.config, indent=1, default=str)[:2000]
            return f"run {row.run_id}"
        if role == Qt.ItemDataRole.TextAlignmentRole and column in ("episodes", "steps", "last return",
                                                                     "best return", "duration"):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    @staticmethod
    def _text(row: RunRow, column: str) -> str:
        s = row.summary
        if column == "run":
            return f"{row.label} · {row.run_id}" if row.label else row.run_id
        if column == "started":
            return _local_time(row.started_iso)
        if column == "duration":
            return format_duration(s.duration_s if s is not None else None)
        if column == "status":
            return row.status
        if column == "env":
            return row.env_id or ""
        if column == "agents":
            return ", ".join(row.agents)
        if column == "episodes":
            return "" if s is None else f"{s.episodes:,}"
        if column == "steps":
            return "" if s is None else f"{s.steps:,}"
        if column == "last return":
            return format_return(s.last_return if s is not None else None)
        if column == "best return":
            return format_return(s.best_return if s is not None else None)
        return _hyper_text(s)

    @staticmethod
    def _sort_key(row: RunRow, column: str) -> Any:
        s = row.summary
        numbers = {"duration": s.duration_s if s else None, "episodes": s.episodes if s else None,
                   "steps": s.steps if s else None, "last return": s.last_return if s else None,
                   "best return": s.best_return if s else None}
        if column in numbers:
            value = numbers[column]
            return float("-inf") if value is None else float(value)
        if column == "started":
            return row.started_iso or "9999"  # not stored yet: the newest
        if column == "status":
            return _STATUS_ORDER.get(row.status, 9)
        return RunsTableModel._text(row, column).lower()

    # -- data ------------------------------------------------------------------------------------
    def run_ids(self) -> list[str]:
        """Every run listed, in model order. GUI thread."""
        return [r.run_id for r in self._rows]

    def row_of(self, run_id: str) -> RunRow | None:
        """The run's row, if listed. GUI thread."""
        i = self._index.get(run_id)
        return None if i is None else self._rows[i]

    def set_live(self, run_id: str, status: str, env_id: str | None, agent_ids: tuple[str, ...]) -> None:
        """The registry's view of a run (adds the run if new). GUI thread."""
        i = self._index.get(run_id)
        if i is None:
            self._append(RunRow(run_id, live_status=status, live_env_id=env_id, live_agents=tuple(agent_ids)))
            return
        row = self._rows[i]
        row.live_status, row.live_env_id, row.live_agents = status, env_id or row.live_env_id, tuple(agent_ids)
        self._changed(i)

    def set_label(self, run_id: str, label: str) -> None:
        """Show the run's tab label beside its id (also once the run is listed later). GUI thread."""
        self._labels[run_id] = label
        i = self._index.get(run_id)
        if i is not None and self._rows[i].label != label:
            self._rows[i].label = label
            self._changed(i)

    def set_summaries(self, summaries: Iterable[RunSummary]) -> None:
        """Every stored run's summary: new runs are appended, changed ones updated, stored runs that
        are no longer stored (deleted) are removed unless the registry still reports them. GUI thread."""
        seen: set[str] = set()
        for summary in summaries:
            seen.add(summary.run_id)
            i = self._index.get(summary.run_id)
            if i is None:
                self._append(RunRow(summary.run_id, summary=summary))
            elif self._rows[i].summary is not summary:
                self._rows[i].summary = summary
                self._changed(i)
        gone = [r.run_id for r in self._rows if r.summary is not None and r.run_id not in seen]
        for run_id in gone:
            self.remove_run(run_id)

    def remove_run(self, run_id: str) -> bool:
        """Drop a run's row; False when it was not listed. GUI thread."""
        i = self._index.get(run_id)
        if i is None:
            return False
        self.beginRemoveRows(QModelIndex(), i, i)
        del self._rows[i]
        self._index = {r.run_id: n for n, r in enumerate(self._rows)}
        self.endRemoveRows()
        return True

    def _append(self, row: RunRow) -> None:
        row.label = row.label or self._labels.get(row.run_id)
        n = len(self._rows)
        self.beginInsertRows(QModelIndex(), n, n)
        self._rows.append(row)
        self._index[row.run_id] = n
        self.endInsertRows()

    def _changed(self, i: int) -> None:
        self.dataChanged.emit(self.index(i, 0), self.index(i, len(COLUMNS) - 1))


class RunsFilterProxy(QSortFilterProxyModel):
    """Sorts by SORT_ROLE; keeps rows whose text contains every word of ``set_text_filter`` (any
    column, case-insensitive) and whose status is in ``set_status_filter`` (None: any). GUI thread."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setSortRole(SORT_ROLE)
        self.setDynamicSortFilter(True)
        self._words: tuple[str, ...] = ()
        self._statuses: frozenset[str] | None = None

    def set_text_filter(self, text: str) -> None:
        """Show only rows containing every word of ``text``. GUI thread."""
        self._words = tuple(w for w in text.lower().split() if w)
        self.invalidateFilter()

    def set_status_filter(self, statuses: Iterable[str] | None) -> None:
        """Show only rows with one of ``statuses`` (None: every status). GUI thread."""
        self._statuses = None if statuses is None else frozenset(statuses)
        self.invalidateFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex) -> bool:  # noqa: N802
        """The filter rule. GUI thread."""
        model = self.sourceModel()
        if self._statuses is not None:
            status = model.data(model.index(source_row, COLUMNS.index("status"), source_parent))
            if status not in self._statuses:
                return False
        if not self._words:
            return True
        text = " ".join(str(model.data(model.index(source_row, c, source_parent)) or "")
                        for c in range(len(COLUMNS))).lower()
        return all(w in text for w in self._words)
