"""SQL of the store's record API: what one write transaction of records does (Qt-free).

Every function runs inside the caller's transaction on the write connection (``record_writer``
owns the BEGIN/COMMIT) or, for the lookups, on any connection. Rules (docs/schema.md, "Record API"):

- seq_id: each record row gets the next durable seq_id of its stream (``streams.max_seq_id`` + 1,
  or one past the highest stored seq_id when the stream has no cursor row), so no record is ever
  ignored as a seq_id duplicate; the stream cursor and the ``runs`` row are upserted like
  ``write_batch`` does.
- steps: a repeated ``(episode_id, step_index)`` of one stream (run, agent) is ignored -- but only
  for a non-empty ``episode_id``: producers that send ``''`` for every step keep every step. The
  stored keys of an episode are read once and then kept in a ``StepKeyCache``, which is dropped
  whenever anything else changed the file (``PRAGMA data_version``: another connection;
  ``total_changes``: ``write_batch`` on the same connection).
- episodes: upsert on ``episode_id`` (non-empty) within the run: rows of that id are replaced. The
  row is keyed by the rollup's episode index; when that key holds another episode id, or there is
  no index, the row goes to the next free negative index of the stream (``episode_id`` kept).
"""

from __future__ import annotations

import sqlite3
from typing import Any, NamedTuple, Sequence

from gym_gui.telemetry.data_model import format_episode_id, parse_episode_id
from gym_gui.telemetry.record_rows import EncodedEpisode, EncodedStep, effective_episode_id
from gym_gui.telemetry.sqlite_rows import (
    EPISODE_READ_COLUMNS,
    STEP_READ_COLUMNS,
    encode_episode,
    load_json,
    quarantine_json,
)
from gym_gui.telemetry.step_layout import episode_steps_sql, physical_columns
from gym_gui.telemetry.step_writer import forget as forget_step_values
from gym_gui.telemetry.step_writer import writer_for
from gym_gui.telemetry.tables import EPISODES, STEPS

__all__ = [
    "StepKeyCache",
    "StreamCursors",
    "delete_episode_rows",
    "delete_step_rows",
    "find_episode_rows",
    "find_step_rows",
    "insert_episode",
    "insert_steps",
    "mark_run",
    "quarantine",
]

#: The record API's step rows bind the hand-written encoder's columns (``tables.STEPS``); a
#: generic column declared later stays NULL there, its payload value stays in the extras.
#: Where each column sits in ``EncodedStep.columns`` (the insert's columns after run_id, agent_id, seq_id).
_AT = {name: i for i, name in enumerate(STEPS.core_insert_names()[3:])}
_EPISODE_AT, _STEP_AT, _EXTRA_AT, _TS_AT = _AT["episode_index"], _AT["step_index"], _AT["extra_json"], _AT["ts_iso"]
_INSERT_EPISODE = EPISODES.insert_sql("INSERT")
_ENSURE_RUN = "INSERT OR IGNORE INTO runs (run_id, status, created_at, updated_at) VALUES (?, 'running', ?, ?)"
_UPSERT_STREAM = (
    "INSERT INTO streams (run_id, agent_id, max_seq_id, first_ts_iso, last_ts_iso) VALUES (?,?,?,?,?) "
    "ON CONFLICT (run_id, agent_id) DO UPDATE SET "
    "last_ts_iso = CASE WHEN excluded.max_seq_id > max_seq_id THEN excluded.last_ts_iso ELSE last_ts_iso END, "
    "max_seq_id = MAX(max_seq_id, excluded.max_seq_id)"
)
_MARK_RUN = (
    "INSERT INTO runs (run_id, status, created_at, updated_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (run_id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at"
)


class StreamCursors:
    """The durable seq_id counters of the streams one transaction touches (the writing thread, one transaction)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._streams: dict[tuple[str, str], list[Any]] = {}  # key -> [max_seq_id, first_ts, last_ts]

    def next_seq(self, run_id: str, agent_id: str, ts_iso: str) -> int:
        """The next durable seq_id of the stream (inside the transaction)."""
        key = (run_id, agent_id)
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = [self._stored_max(run_id, agent_id), ts_iso, ts_iso]
        stream[0] += 1
        stream[2] = ts_iso
        return int(stream[0])

    def _stored_max(self, run_id: str, agent_id: str) -> int:
        conn = self._conn
        key = (run_id, agent_id)
        row = conn.execute("SELECT max_seq_id FROM streams WHERE run_id = ? AND agent_id = ?", key).fetchone()
        if row is not None:
            return int(row[0])
        found = [0]
        for table in ("steps", "episodes", "run_events"):
            value = conn.execute(f"SELECT MAX(seq_id) FROM {table} WHERE run_id = ? AND agent_id = ?", key).fetchone()[0]
            if value is not None:
                found.append(int(value))
        return max(found)

    def save(self) -> None:
        """Upsert the cursors and make sure every touched run has a ``runs`` row."""
        if not self._streams:
            return
        conn = self._conn
        runs = {run_id: s[1] for (run_id, _agent), s in self._streams.items()}
        conn.executemany(_ENSURE_RUN, [(run_id, ts, ts) for run_id, ts in runs.items()])
        conn.executemany(_UPSERT_STREAM, [(r, a, s[0], s[1], s[2]) for (r, a), s in self._streams.items()])


def _stored_step_keys(conn: sqlite3.Connection, run_id: str, agent_id: str,
                      episode_index: int | None) -> set[tuple[str, Any]]:
    """(episode id, step_index) of every stored step of one stream and episode index (``steps_by_episode``)."""
    found: set[tuple[str, Any]] = set()
    where = "episode_index = ?" if episode_index is not None else "episode_index IS NULL"
    args: tuple[Any, ...] = (run_id, agent_id) if episode_index is None else (run_id, agent_id, episode_index)
    if episode_index is not None:  # the episode's span: a range of the primary key
        found_rows = conn.execute(episode_steps_sql(f"s.step_index, {physical_columns('extra_json')}"),
                                  {"run": run_id, "agent": agent_id, "ep": episode_index}).fetchall()
    else:
        found_rows = conn.execute(
            f"SELECT step_index, extra_json FROM steps WHERE run_id = ? AND agent_id = ? AND {where}", args).fetchall()
    for step_index, extra in found_rows:
        if step_index is None and extra is None:
            continue
        payload = load_json(extra) if extra is not None else {}
        if step_index is None:
            step_index = payload.get("step_index")
        try:
            found.add((effective_episode_id(run_id, episode_index, payload), step_index))
        except TypeError:  # an unhashable step_index is never deduped
            pass
    return found


GroupKey = tuple[str, str, Any]  # (run_id, stored agent_id, episode_index or None)


class StepKeyCache:
    """The stored (episode id, step_index) keys of the episodes the record writer touched lately.

    Writer thread only (under the write lock). Valid while nothing but the record writer changed
    the file; ``check`` drops it otherwise, ``committed`` marks the state after a record commit,
    ``clear`` drops it (rollback, deletions).
    """

    def __init__(self, max_groups: int = 64) -> None:
        self.max_groups = max_groups
        self._groups: dict[GroupKey, set[tuple[str, Any]]] = {}
        self._state: tuple[int, int] | None = None

    @staticmethod
    def _state_of(conn: sqlite3.Connection) -> tuple[int, int]:
        return int(conn.execute("PRAGMA data_version").fetchone()[0]), conn.total_changes

    def check(self, conn: sqlite3.Connection) -> None:
        """Drop the cache unless the file is as the last record commit left it."""
        if self._groups and self._state != self._state_of(conn):
            self._groups.clear()

    def committed(self, conn: sqlite3.Connection) -> None:
        """Remember the file state right after a record commit."""
        self._state = self._state_of(conn)

    def clear(self) -> None:
        """Forget every cached episode."""
        self._groups.clear()
        self._state = None

    def keys(self, conn: sqlite3.Connection, group: GroupKey) -> set[tuple[str, Any]]:
        """The stored keys of one episode group (read on first use, then kept up to date by ``insert_steps``)."""
        found = self._groups.pop(group, None)
        if found is None:
            found = _stored_step_keys(conn, *group)
            if len(self._groups) >= self.max_groups:
                del self._groups[next(iter(self._groups))]  # the least recently used
        self._groups[group] = found
        return found


def insert_steps(conn: sqlite3.Connection, cursors: StreamCursors, steps: Sequence[EncodedStep],
                 cache: StepKeyCache | None = None) -> tuple[int, int]:
    """Write step records in order; returns (inserted, ignored as repeated (episode_id, step_index)).

    Writing thread, inside its transaction, under the write lock.
    """
    if cache is None:
        cache = StepKeyCache()
    rows = []
    group: GroupKey | None = None
    keys: set[tuple[str, Any]] = set()
    for step in steps:
        if step.dedupe_id:
            step_index = step.columns[_STEP_AT]
            step_key = (step.dedupe_id, step_index if step_index is not None else _extra_step_index(step))
            this = (step.run_id, step.agent_id, step.columns[_EPISODE_AT])
            if this != group:
                group, keys = this, cache.keys(conn, this)
            try:
                if step_key in keys:
                    continue
                keys.add(step_key)
            except TypeError:  # an unhashable step_index (kept in extra_json) is never deduped
                pass
        seq_id = cursors.next_seq(step.run_id, step.agent_id, step.columns[_TS_AT])
        rows.append((step.run_id, step.agent_id, seq_id, *step.columns))
    if rows:
        writer_for(conn).insert(conn, rows)
    return len(rows), len(steps) - len(rows)


def _extra_step_index(step: EncodedStep) -> Any:
    """A step_index that did not fit the column (kept in extra_json), for the dedupe key."""
    extra = step.columns[_EXTRA_AT]
    return load_json(extra).get("step_index") if extra is not None else None


class _RowEvent(NamedTuple):
    """What ``sqlite_rows.encode_episode`` reads of an event."""

    run_id: str
    agent_id: str
    seq_id: int
    ts_iso: str
    payload: dict[str, Any]


def _matching_episodes(conn: sqlite3.Connection, run_id: str, episode_id: str) -> list[tuple[str, int]]:
    """Keys (agent_id, episode_index) of the run's episode rows whose episode id is ``episode_id``.

    ``episodes.episode_id`` (schema v2, filled by a trigger like ``record_rows.effective_episode_id``)
    is indexed.
    """
    return conn.execute("SELECT agent_id, episode_index FROM episodes WHERE episode_id = ? AND run_id = ?",
                        (episode_id, run_id)).fetchall()


def insert_episode(conn: sqlite3.Connection, cursors: StreamCursors, episode: EncodedEpisode) -> int:
    """Upsert one episode rollup (after the steps before it); returns the episode_index it is stored at.

    Writing thread, inside its transaction, under the write lock.
    """
    run_id, agent_id = episode.run_id, episode.agent_id
    if episode.episode_id:
        for agent, stored_index in _matching_episodes(conn, run_id, episode.episode_id):
            conn.execute("DELETE FROM episodes WHERE run_id = ? AND agent_id = ? AND episode_index = ?",
                         (run_id, agent, stored_index))
    wanted = episode.episode_index
    if wanted is not None and wanted >= 0 and conn.execute(
            "SELECT 1 FROM episodes WHERE run_id = ? AND agent_id = ? AND episode_index = ?",
            (run_id, agent_id, wanted)).fetchone() is None:
        index = wanted
    else:  # no index, or its key holds another episode id: the next free negative index of the stream
        low = conn.execute("SELECT MIN(episode_index) FROM episodes WHERE run_id = ? AND agent_id = ?",
                           (run_id, agent_id)).fetchone()[0]
        index = min(low if low is not None else 0, 0) - 1
    payload = dict(episode.payload)
    payload["episode_index"] = index
    if index < 0 or format_episode_id(run_id, index, episode.worker_id) != episode.episode_id:
        payload["episode_id"] = episode.episode_id
    seq_id = cursors.next_seq(run_id, agent_id, episode.ts_iso)
    row = encode_episode(_RowEvent(run_id, agent_id, seq_id, episode.ts_iso, payload))  # type: ignore[arg-type]
    conn.execute(_INSERT_EPISODE, row)
    return index


def quarantine(conn: sqlite3.Connection, cursors: StreamCursors, run_id: str, agent_id: str, topic: str,
               ts_iso: str, fields: dict[str, Any], error: str) -> None:
    """Keep a record SQLite refused in ``run_events`` (``error`` set), like a rejected event. Inside a transaction."""
    seq_id = cursors.next_seq(run_id, agent_id, ts_iso)
    conn.execute("INSERT OR IGNORE INTO run_events VALUES (?,?,?,?,?,?,?)",
                 (run_id, agent_id, seq_id, topic, ts_iso, quarantine_json(fields), error))


def _parse_candidates(episode_id: str) -> list[tuple[str, int]]:
    """(run_id, episode_index) pairs ``episode_id`` may stand for (a run id may contain ``-w``)."""
    out: list[tuple[str, int]] = []
    parsed = parse_episode_id(episode_id)
    if parsed is not None:
        out.append((parsed.run_id, parsed.episode_index))
        if parsed.worker_id is not None:
            head, _, tail = episode_id.rpartition("-ep")
            plain = (head, int(tail))
            if plain not in out:
                out.append(plain)
    return out


_EPISODE_STEP_ROWS = episode_steps_sql(f"s.seq_id, {physical_columns(STEP_READ_COLUMNS)}")


def find_step_rows(conn: sqlite3.Connection, episode_id: str) -> list[tuple[Any, ...]]:
    """``(seq_id, *STEP_READ_COLUMNS)`` of every step whose episode id is ``episode_id`` (any run, agent).

    Reads the episode's span (``episode_spans``) for ids of the canonical forms; other ids (e.g.
    ``''``) are found by a scan of the steps that have no episode index. Any thread, on its own
    connection.
    """
    rows: list[tuple[Any, ...]] = []
    candidates = _parse_candidates(episode_id)
    for run_id, index in candidates:
        for agent in _agents(conn, run_id):
            rows += conn.execute(_EPISODE_STEP_ROWS, {"run": run_id, "agent": agent, "ep": index}).fetchall()
    if not candidates:
        rows = conn.execute(f"SELECT seq_id, {STEP_READ_COLUMNS} FROM steps WHERE episode_index IS NULL "
                            "AND extra_json LIKE '%\"episode_id\"%'").fetchall()
    return [r for r in rows if effective_episode_id(r[1], r[5], _payload_extras(r[-1])) == episode_id]


def _agents(conn: sqlite3.Connection, run_id: str) -> list[str]:
    """The stored agent ids of a run: its stream cursors, else (rows without a cursor) its steps."""
    agents = [a for (a,) in conn.execute("SELECT agent_id FROM streams WHERE run_id = ?", (run_id,))]
    if not agents:
        agents = [a for (a,) in conn.execute("SELECT DISTINCT agent_id FROM steps WHERE run_id = ?", (run_id,))]
    return agents


def find_episode_rows(conn: sqlite3.Connection, episode_id: str) -> list[tuple[Any, ...]]:
    """``EPISODE_READ_COLUMNS`` rows whose episode id is ``episode_id`` (any run, agent; indexed). Any thread."""
    return conn.execute(f"SELECT {EPISODE_READ_COLUMNS} FROM episodes WHERE episode_id = ?", (episode_id,)).fetchall()


def _payload_extras(extra: str | None) -> dict[str, Any]:
    if extra is None:
        return {}
    value = load_json(extra)
    return value if isinstance(value, dict) else {}


def delete_episode_rows(conn: sqlite3.Connection, episode_id: str) -> int:
    """Delete the steps and the episode row(s) of ``episode_id``; returns the rows deleted. Inside a transaction."""
    step_keys = [(r[1], r[2], r[0]) for r in find_step_rows(conn, episode_id)]
    episodes = [(r[0], r[1] if r[1] is not None else "", r[2]) for r in find_episode_rows(conn, episode_id)]
    if step_keys:
        conn.executemany("DELETE FROM step_rows WHERE stream = (SELECT stream FROM stream_keys WHERE run_id = ? "
                         "AND agent_id = ?) AND seq_id = ?", step_keys)
    if episodes:
        conn.executemany("DELETE FROM episodes WHERE run_id = ? AND agent_id = ? AND episode_index = ?", episodes)
    return len(step_keys) + len(episodes)


def mark_run(conn: sqlite3.Connection, run_id: str, status: str, ts_iso: str) -> None:
    """Delete the run's steps and episodes and set its ``runs.status`` (``deleted``/``archived``) at ``ts_iso``.

    Inside a transaction.
    """
    delete_step_rows(conn, "WHERE stream IN (SELECT stream FROM stream_keys WHERE run_id = ?)", (run_id,))
    conn.execute("DELETE FROM episodes WHERE run_id = ?", (run_id,))
    conn.execute(_MARK_RUN, (run_id, status, ts_iso, ts_iso))


def delete_step_rows(conn: sqlite3.Connection, where: str = "", args: tuple[Any, ...] = ()) -> None:
    """Delete the step rows, interned values and episode spans of the streams ``where`` selects (a
    ``WHERE`` over ``stream``; empty: every stream). Inside a transaction, on the write connection."""
    for table in ("step_rows", "step_values", "episode_spans"):
        conn.execute(f"DELETE FROM {table} {where}", args)
    forget_step_values(conn)
