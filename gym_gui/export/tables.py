"""Episodes and steps of a run to CSV or JSONL files (Qt-free).

JSONL: one object per stored row, ``run_id``, ``agent_id``, ``seq_id``, ``ts_iso`` then the event's
payload as the worker sent it (what SQLite kept, decoded), without the step's ``render_payload``
(frames go to a GIF, see gif.py). CSV: fixed columns (``EPISODE_CSV_COLUMNS``, ``STEP_CSV_COLUMNS``);
JSON values (action, observation, info, metadata) as JSON text, payload keys without a column in
``extra`` (a JSON object); an absent value is an empty cell. Rows in (agent, seq_id) order.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import sqlite3
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Union

from gym_gui.telemetry.sqlite_records import EpisodeRecord, StepRecord
from gym_gui.telemetry.sqlite_rows import EPISODE_READ_COLUMNS, STEP_READ_COLUMNS, decode_episode, decode_step

__all__ = ["EPISODE_CSV_COLUMNS", "FORMATS", "STEP_CSV_COLUMNS", "ExportError", "export_tables", "iter_episodes",
           "iter_steps", "open_readonly"]

_log = logging.getLogger(__name__)

FORMATS = ("csv", "jsonl")
EPISODE_CSV_COLUMNS = ("run_id", "agent_id", "episode_index", "seq_id", "ts_iso", "total_reward", "length",
                       "terminated", "truncated", "outcome", "metadata", "extra")
STEP_CSV_COLUMNS = ("run_id", "agent_id", "seq_id", "ts_iso", "episode_index", "step_index", "action",
                    "observation", "reward", "terminated", "truncated", "info", "extra")
_EPISODE_TYPED = frozenset(("episode_index", "total_reward", "length", "terminated", "truncated", "outcome",
                            "metadata"))
_STEP_TYPED = frozenset(("episode_index", "step_index", "action", "observation", "reward", "terminated",
                         "truncated", "info", "render_payload"))
_JSON_CELLS = frozenset(("action", "observation", "info", "metadata"))
#: Steps are read without their frames (the column is replaced by NULL in the query).
_STEP_COLUMNS_NO_FRAME = STEP_READ_COLUMNS.replace("render_payload_json", "NULL")


Record = Union[EpisodeRecord, StepRecord]


class ExportError(RuntimeError):
    """The export cannot be made (unknown run, no frames, unreadable file); ``str`` says why."""


def open_readonly(db_path: str | Path) -> sqlite3.Connection:
    """A read-only connection to a telemetry file (never creates or migrates it). Any thread; the
    connection belongs to the caller. Raises ExportError when the file is missing or not readable."""
    path = Path(db_path).expanduser().resolve()
    if not path.is_file():
        raise ExportError(f"no such database file: {path}")
    try:
        conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, isolation_level=None,
                               check_same_thread=False)
        conn.execute("PRAGMA query_only = ON")
        conn.execute("SELECT 1 FROM runs LIMIT 1").fetchall()
    except sqlite3.Error as exc:
        raise ExportError(f"{path} is not a readable telemetry database: {exc}") from exc
    return conn


def _check_run(conn: sqlite3.Connection, run_id: str) -> None:
    known = conn.execute("SELECT 1 FROM runs WHERE run_id = ? UNION ALL SELECT 1 FROM steps WHERE run_id = ? "
                         "LIMIT 1", (run_id, run_id)).fetchone()
    if known is None:
        raise ExportError(f"run {run_id!r} is not in this database")


def iter_episodes(conn: sqlite3.Connection, run_id: str) -> Iterator[Record]:
    """The run's stored episodes in (agent, seq_id) order, streamed. Thread owning ``conn``; blocks on reads."""
    sql = f"SELECT {EPISODE_READ_COLUMNS} FROM episodes WHERE run_id = ? ORDER BY agent_id, seq_id"
    for row in conn.execute(sql, (run_id,)):
        yield decode_episode(row)


def iter_steps(conn: sqlite3.Connection, run_id: str) -> Iterator[Record]:
    """The run's stored steps without frames in (agent, seq_id) order, streamed. Thread owning ``conn``."""
    sql = f"SELECT {_STEP_COLUMNS_NO_FRAME} FROM steps WHERE run_id = ? ORDER BY agent_id, seq_id"
    for row in conn.execute(sql, (run_id,)):
        yield decode_step(row)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _cell(key: str, value: Any) -> str:
    if value is None:
        return ""
    if key in _JSON_CELLS or isinstance(value, (dict, list)):
        return _json(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return str(value)


def _csv_row(record: Record, columns: tuple[str, ...], typed: frozenset[str]) -> list[str]:
    payload: Mapping[str, Any] = record.payload
    head = {"run_id": record.run_id, "agent_id": record.agent_id or "", "seq_id": record.seq_id,
            "ts_iso": record.ts_iso}
    extra = {k: v for k, v in payload.items() if k not in typed}
    row = []
    for col in columns:
        if col in head:
            row.append(_cell(col, head[col]))
        elif col == "extra":
            row.append(_json(extra) if extra else "")
        else:
            row.append(_cell(col, payload.get(col)))
    return row


def _jsonl_object(record: Record) -> dict[str, Any]:
    out: dict[str, Any] = {"run_id": record.run_id, "agent_id": record.agent_id, "seq_id": record.seq_id,
                           "ts_iso": record.ts_iso}
    out.update((k, v) for k, v in record.payload.items() if k != "render_payload")
    return out


def export_tables(conn: sqlite3.Connection, run_id: str, out_dir: str | Path, fmt: str = "csv") -> dict[str, Any]:
    """Write ``{run_id}-episodes.{fmt}`` and ``{run_id}-steps.{fmt}`` into ``out_dir`` (created).

    Returns ``{"episodes": path, "steps": path, "episode_rows": n, "step_rows": n}``. Any thread owning
    ``conn`` (not the GUI thread: it blocks on reads and file writes). Raises ExportError for an
    unknown run or format, OSError when a file cannot be written.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    _check_run(conn, run_id)
    folder = Path(out_dir).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in run_id)
    paths = {"episodes": folder / f"{safe}-episodes.{fmt}", "steps": folder / f"{safe}-steps.{fmt}"}
    counts: dict[str, int] = {}
    sources: dict[str, tuple[Callable[[sqlite3.Connection, str], Iterator[Record]], tuple[str, ...],
                             frozenset[str]]] = {
        "episodes": (iter_episodes, EPISODE_CSV_COLUMNS, _EPISODE_TYPED),
        "steps": (iter_steps, STEP_CSV_COLUMNS, _STEP_TYPED),
    }
    own_transaction = not conn.in_transaction
    if own_transaction:
        conn.execute("BEGIN")  # one snapshot for both files
    try:
        for name, (rows, columns, typed) in sources.items():
            n = 0
            # a lone surrogate (stored escaped, read back as one) is written as its JSON escape ``\udc80``
            with paths[name].open("w", encoding="utf-8", errors="backslashreplace", newline="") as fh:
                if fmt == "csv":
                    writer = csv.writer(fh)
                    writer.writerow(columns)
                    for record in rows(conn, run_id):
                        writer.writerow(_csv_row(record, columns, typed))
                        n += 1
                else:
                    for record in rows(conn, run_id):
                        fh.write(_json(_jsonl_object(record)))
                        fh.write("\n")
                        n += 1
            counts[name] = n
    finally:
        if own_transaction:
            conn.execute("COMMIT")
    _log.info("exported run %s: %d episodes, %d steps as %s into %s", run_id, counts["episodes"], counts["steps"],
              fmt, folder)
    return {"episodes": paths["episodes"], "steps": paths["steps"], "episode_rows": counts["episodes"],
            "step_rows": counts["steps"]}
