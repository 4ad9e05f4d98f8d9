"""Read queries for the learning curves and for replaying unfinished episodes (Qt-free, read only).

Each function takes a ``sqlite3.Connection`` (any read connection on a telemetry file) and has a
``*_from_store`` twin that runs it inside one read transaction of a ``TelemetrySQLiteStore`` (the
calling thread's read connection: a StoreReader thread in the app). None of them writes.

- ``load_curves``: one stream's episodes as a ``CurveData`` (vectorised columns; metadata JSON is
  decoded only for rows that have some).
- ``partial_episodes``: the steps stored after the last EPISODE_FINALIZED of each stream of a run
  form a partial episode (a worker that crashed, a run still going, a GUI killed mid-run): one
  ``EpisodeRecord`` each, with ``outcome == PARTIAL_OUTCOME`` and ``payload["partial"] is True``,
  its return the sum of its stored rewards and its length its stored step count.
"""

from __future__ import annotations

import math
import sqlite3
import time
from typing import Any, Callable, TypeVar

import numpy as np

from gym_gui.live.curves import META_SKIP as _META_SKIP
from gym_gui.live.curves import CurveData, episode_success, numeric_fields
from gym_gui.telemetry.json_text import load_json
from gym_gui.telemetry.sqlite_records import EpisodeRecord
from gym_gui.telemetry.sqlite_rows import loaded_agent, stored_agent

__all__ = [
    "PARTIAL_OUTCOME",
    "load_curves",
    "load_curves_from_store",
    "partial_episodes",
    "partial_episodes_from_store",
]

#: The outcome text of a partial (unfinished) episode.
PARTIAL_OUTCOME = "partial (unfinished)"
T = TypeVar("T")

_PARTIAL_SQL = (
    "SELECT episode_index, COUNT(*), SUM(reward), MAX(seq_id), MAX(ts_iso), MAX(terminated), MAX(truncated) "
    "FROM steps s WHERE run_id = :run AND agent_id = :agent AND episode_index IS NOT NULL "
    "AND seq_id > COALESCE((SELECT MAX(seq_id) FROM episodes WHERE run_id = :run AND agent_id = :agent), -1) "
    "AND NOT EXISTS (SELECT 1 FROM episodes e WHERE e.run_id = :run AND e.agent_id = :agent "
    "AND e.episode_index = s.episode_index) "
    "GROUP BY episode_index ORDER BY episode_index"
)


def _in_read(store: Any, fn: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``fn`` in one read transaction of ``store`` (its per-thread read connection)."""
    return store.read_transaction(fn)  # one BEGIN ... COMMIT on this thread's reader


def _flag(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _json_type(column: str, key: str) -> str:
    # instr first: nearly no row holds the key, and it spares those rows the JSON parse
    return (f"CASE WHEN instr({column}, '\"{key}\"') AND json_valid({column}) "
            f"THEN json_type({column}, '$.{key}') END")


def _bool_case(column: str, key: str) -> str:
    kind = _json_type(column, key)
    return f"WHEN ({kind}) = 'true' THEN 1.0 WHEN ({kind}) = 'false' THEN 0.0"


#: ``live.curves.episode_success`` in SQL: the payload's (extras') or the metadata's success /
#: is_success boolean, then the outcome text, then terminated with a positive return, truncated.
_SUCCESS_SQL = (
    "CASE " + " ".join(_bool_case(col, key) for col in ("extra_json", "metadata_json") for key in ("success", "is_success"))
    + " WHEN lower(outcome) IN ('success', 'succeeded') THEN 1.0"
    " WHEN lower(outcome) IN ('failure', 'failed', 'truncated') THEN 0.0"
    " WHEN terminated = 1 THEN CASE WHEN total_reward > 0 THEN 1.0 ELSE 0.0 END"
    " WHEN truncated = 1 THEN 0.0 END"
)
#: Epoch seconds of ts_iso (SQLite's julianday: millisecond precision), NULL when unreadable.
_WALL_SQL = "(julianday(ts_iso) - 2440587.5) * 86400.0"
_COLUMNS_SQL = (
    f"SELECT episode_index, total_reward, length, {_SUCCESS_SQL}, {_WALL_SQL} "
    "FROM episodes WHERE run_id = ? AND agent_id = ? ORDER BY episode_index"
)
#: Rows whose JSON SQLite cannot read (NaN or Infinity tokens in older SQLite): done in Python.
_ODD_JSON_SQL = (
    "SELECT episode_index, total_reward, terminated, truncated, outcome, metadata_json, extra_json FROM episodes "
    "WHERE run_id = ? AND agent_id = ? AND ((metadata_json IS NOT NULL AND NOT json_valid(metadata_json)) "
    "OR (extra_json IS NOT NULL AND NOT json_valid(extra_json))) ORDER BY episode_index"
)
_META_KEYS_SQL = (
    "SELECT DISTINCT j.key FROM episodes, json_each(episodes.metadata_json) AS j "
    "WHERE run_id = ? AND agent_id = ? AND metadata_json IS NOT NULL AND json_valid(metadata_json) "
    "AND j.type IN ('integer', 'real') ORDER BY j.key"
)


def _meta_column_sql(key: str) -> str:
    path = "$." + '"' + key.replace('"', '""') + '"'
    quoted = "'" + path.replace("'", "''") + "'"
    return (f"SELECT CASE WHEN metadata_json IS NOT NULL AND json_valid(metadata_json) AND "
            f"json_type(metadata_json, {quoted}) IN ('integer', 'real') THEN json_extract(metadata_json, {quoted}) END "
            "FROM episodes WHERE run_id = ? AND agent_id = ? ORDER BY episode_index")


#: Rows converted per numpy call: each conversion holds the GIL, so a reader thread converts in
#: short pieces and the GUI thread gets the interpreter between them (about 1 ms each).
FETCH_ROWS = 8192


def _fetch_floats(cursor: sqlite3.Cursor, columns: int) -> np.ndarray:
    """The cursor's rows as a float64 table (None -> NaN), fetched and converted in pieces."""
    parts = []
    while True:
        rows = cursor.fetchmany(FETCH_ROWS)
        if not rows:
            break
        parts.append(np.array(rows, dtype=np.float64).reshape(len(rows), columns))
        time.sleep(0)  # let a waiting thread (the GUI's) take the GIL now
    return np.concatenate(parts) if parts else np.empty((0, columns))


def load_curves(conn: sqlite3.Connection, run_id: str, agent_id: str | None, *, window: int = 100) -> CurveData:
    """The curves of stream ``(run_id, agent_id)`` from its stored episodes. Caller's thread; blocks
    for the queries (a reader thread's job). SQLite computes every column (success by the rule of
    ``live.curves.episode_success``, wall time with millisecond precision, each numeric metadata
    key), so the reader thread runs little Python per row and seldom holds the GIL the GUI thread
    needs."""
    key = (run_id, stored_agent(agent_id))
    table = _fetch_floats(conn.execute(_COLUMNS_SQL, key), 5)  # None -> nan
    metadata: dict[str, np.ndarray] = {}
    for (meta_key,) in conn.execute(_META_KEYS_SQL, key).fetchall():
        if isinstance(meta_key, str) and meta_key not in _META_SKIP:
            metadata[meta_key] = _fetch_floats(conn.execute(_meta_column_sql(meta_key), key), 1).reshape(-1)
    _patch_odd_json(conn, key, table, metadata)
    return CurveData.from_columns(table[:, 0], table[:, 1], table[:, 2], table[:, 3], table[:, 4], metadata,
                                  window=window)


def _patch_odd_json(conn: sqlite3.Connection, key: tuple[str, str], table: np.ndarray,
                    metadata: dict[str, np.ndarray]) -> None:
    """Success and metadata numbers of the few rows whose JSON only Python reads."""
    for ep, reward, terminated, truncated, outcome, meta_json, extra_json in conn.execute(_ODD_JSON_SQL, key):
        row = int(np.searchsorted(table[:, 0], ep))
        extra = load_json(extra_json) if extra_json is not None else None
        payload: dict[str, Any] = dict(extra) if isinstance(extra, dict) else {}
        payload.update({"total_reward": reward, "outcome": outcome,
                        "terminated": None if terminated is None else bool(terminated),
                        "truncated": None if truncated is None else bool(truncated)})
        if meta_json is not None:
            payload["metadata"] = load_json(meta_json)
            for name, value in numeric_fields(payload["metadata"]).items():
                if name in _META_SKIP:
                    continue
                if name not in metadata:
                    metadata[name] = np.full(len(table), math.nan)
                metadata[name][row] = value
        table[row, 3] = episode_success(payload)


def load_curves_from_store(store: Any, run_id: str, agent_id: str | None, *, window: int = 100) -> CurveData:
    """``load_curves`` in one read transaction of a TelemetrySQLiteStore. Caller's (reader) thread; blocks."""
    return _in_read(store, lambda conn: load_curves(conn, run_id, agent_id, window=window))


def partial_episodes(conn: sqlite3.Connection, run_id: str, agent_ids: Any = None) -> list[EpisodeRecord]:
    """The partial episode of each stream of ``run_id`` (``agent_ids``: the streams to look at; None:
    every stream stored), in agent then episode order. Caller's thread; blocks for the query (a
    range scan of the steps after the stream's last episode)."""
    if agent_ids is None:
        agents = [a for (a,) in conn.execute(
            "SELECT agent_id FROM streams WHERE run_id = ? ORDER BY agent_id", (run_id,))]
    else:
        agents = sorted(stored_agent(a) for a in agent_ids)
    out: list[EpisodeRecord] = []
    for agent in agents:
        for ep, count, reward_sum, seq, ts, terminated, truncated in conn.execute(
                _PARTIAL_SQL, {"run": run_id, "agent": agent}):
            total = float(reward_sum) if reward_sum is not None else None
            payload = {"episode_index": ep, "total_reward": total, "length": count, "outcome": PARTIAL_OUTCOME,
                       "partial": True}
            out.append(EpisodeRecord(run_id, loaded_agent(agent), int(ep), int(seq), ts, total, int(count),
                                     _flag(terminated), _flag(truncated), PARTIAL_OUTCOME, payload))
    return out


def partial_episodes_from_store(store: Any, run_id: str, agent_ids: Any = None) -> list[EpisodeRecord]:
    """``partial_episodes`` in one read transaction of a TelemetrySQLiteStore. Caller's (reader) thread; blocks."""
    return _in_read(store, lambda conn: partial_episodes(conn, run_id, agent_ids))
