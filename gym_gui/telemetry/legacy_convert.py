"""Rows of the existing gym_gui's telemetry tables written as rows of ours (Qt-free).

``copy_legacy_rows`` reads that application's ``steps``, ``episodes`` and ``run_status`` (under
any table names, from any connection) and inserts every row into our tables on another (or the
same) connection, inside the caller's transaction. Mapping (docs/schema.md, "Files of the
existing gym_gui app"):

- ``run_id``: the column, else parsed from ``episode_id`` (``{run}-ep{N}`` or ``{run}-w{worker}-ep{N}``),
  else ``''``; ``agent_id`` NULL or ``''`` becomes ``NO_AGENT``;
- ``episode_index`` of a step: parsed from ``episode_id``, else NULL (the id kept in the extras), as
  the record API stores such steps; of an episode: ``ep_index``, else parsed from ``episode_id``,
  else ``metadata["episode_index"]``;
- seq_ids per stream ``(run_id, agent_id)`` from 1 in rowid order; an episode row takes the seq_id
  after the last step of its episode (rows whose steps are gone come last, in rowid order);
- BLOB columns hold UTF-8 JSON text, kept verbatim in our ``*_json`` columns (NULL becomes JSON
  ``null``: those fields always exist in the app's records); timestamps are kept as text;
- columns we do not have (``render_hint``, ``frame_ref``, ``obs_ref``, ``payload_version``,
  ``worker_id``, ``space_signature``, ``vector_metadata``, ``time_step``, ``episode_seed``,
  ``game_id``, and any unknown one) go to ``extra_json`` when not NULL (``payload_version`` when not
  its default 0), and ``episode_id`` when it
  is not the one our schema derives (``format_episode_id(run_id, episode_index, worker_id)``); a value that does not fit its column
  (a flag that is not 0/1, text in an integer column, a blob that is not UTF-8 JSON) goes there
  under its own key (bytes that are not UTF-8 as ``{"__legacy_bytes_base64__": ...}``);
- an episode whose stream already has that episode_index (another worker's), or without any
  index, is stored at the next free negative index of its stream, as the record API does, with its
  ``episode_id`` and (when it had one) its ``ep_index`` kept in the extras, so the existing app's
  ``episodes.ep_index`` still reads it;
- ``run_status`` rows become ``runs`` rows (``active`` -> ``running``; ``deleted``/``archived`` as
  they are), the original row in ``summary_json`` under ``legacy_run_status``.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Iterator, Mapping

import attrs

from gym_gui.telemetry.json_text import encode_json
from gym_gui.telemetry.legacy_schema import table_columns
from gym_gui.telemetry.legacy_values import (
    bounded,
    default_episode_id,
    flag_or_none,
    json_text_or_none,
    parse_episode_id,
    plain,
)
from gym_gui.telemetry.sqlite_rows import NO_AGENT
from gym_gui.telemetry.sqlite_runs import RUN_COLUMNS
from gym_gui.telemetry.tables import EPISODES, RUNS, STEPS

__all__ = ["ConversionCounts", "copy_legacy_rows", "default_episode_id", "parse_episode_id"]

_CHUNK_ROWS = 2000

#: Step columns that are payload keys of ours, read as JSON text.
_STEP_JSON = ("observation", "info", "render_payload")
#: Columns consumed by the mapping itself (everything else of a row goes to the extras when not NULL).
_STEP_MAPPED = frozenset(("episode_id", "step_index", "action", "observation", "reward", "terminated", "truncated",
                          "info", "render_payload", "timestamp", "agent_id", "run_id"))
_EPISODE_MAPPED = frozenset(("episode_id", "total_reward", "steps", "terminated", "truncated", "metadata",
                             "timestamp", "agent_id", "run_id", "ep_index"))
#: Columns of the app holding JSON blobs that land in the extras (decoded there).
_BLOB_EXTRAS = frozenset(("render_hint", "space_signature", "vector_metadata"))
#: The converted rows fill the hand-written encoder's columns (``tables``), by name.
_STEP_INSERT = STEPS.insert_sql("INSERT", STEPS.core_insert_names())
_EPISODE_INSERT = EPISODES.insert_sql("INSERT", EPISODES.core_insert_names())
_STREAM_INSERT = "INSERT INTO streams (run_id, agent_id, max_seq_id, first_ts_iso, last_ts_iso) VALUES (?,?,?,?,?)"
_RUN_INSERT = RUNS.insert_sql("INSERT", RUN_COLUMNS)


@attrs.frozen(slots=True)
class ConversionCounts:
    """Rows read from the app's tables and where they went."""

    steps: int
    episodes: int
    episodes_renumbered: int  # of ``episodes``: stored at a negative episode_index (index taken, or none)
    run_status: int
    runs: int  # runs rows written (every run seen in any table)


@attrs.define(slots=True)
class _Stream:
    seq: int = 0
    first_ts: str = ""
    last_ts: str = ""
    episode_id: Any = None

    def next_seq(self, ts: str) -> int:
        self.seq += 1
        if self.seq == 1:
            self.first_ts = ts
        self.last_ts = ts
        return self.seq


@attrs.define(slots=True)
class _Episode:
    key: tuple[str, str]
    episode_id: Any
    index: int | None
    columns: tuple[Any, ...]  # total_reward, length, terminated, truncated, metadata_json
    extras: dict[str, Any]
    ts: str
    seq: int | None = None


class _Runs:
    """Earliest and latest time seen per run."""

    def __init__(self) -> None:
        self.times: dict[str, list[str]] = {}

    def seen(self, run_id: str, ts: str) -> None:
        span = self.times.get(run_id)
        if span is None:
            self.times[run_id] = [ts, ts]
        elif ts < span[0]:
            span[0] = ts
        elif ts > span[1]:
            span[1] = ts


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _rows(conn: sqlite3.Connection, table: str, columns: tuple[str, ...]) -> Iterator[list[tuple[Any, ...]]]:
    cursor = conn.execute(f"SELECT {', '.join(map(_quoted, columns))} FROM {_quoted(table)} ORDER BY rowid")
    while True:
        chunk = cursor.fetchmany(_CHUNK_ROWS)
        if not chunk:
            return
        yield chunk


def _common(row: Mapping[str, Any], mapped: frozenset[str], extras: dict[str, Any]) -> tuple[str, str, str]:
    """(ts_iso, stored agent, explicit run_id or '') of a row; the unmapped non-NULL columns go to ``extras``."""
    for name, value in row.items():
        if name not in mapped and value is not None and not (name == "payload_version" and value == 0):
            if name in _BLOB_EXTRAS:
                text = json_text_or_none(value)
                extras[name] = plain(value) if text is None else json.loads(text)
            else:
                extras[name] = plain(value)
    ts = row.get("timestamp")
    if type(ts) is not str:
        if ts is not None:
            extras["timestamp"] = plain(ts)
        ts = "" if ts is None else str(plain(ts))
    agent = row.get("agent_id")
    if agent is not None and type(agent) is not str:
        extras["agent_id"] = plain(agent)
        agent = str(plain(agent))
    run = row.get("run_id")
    if run is not None and type(run) is not str:
        extras["run_id"] = plain(run)
        run = str(plain(run))
    return ts, agent or NO_AGENT, run or ""


def _resolve(episode_id: Any, run: str, worker: Any, index: Any = None) -> tuple[str, int | None]:
    parsed_run, parsed_index = parse_episode_id(episode_id, run or None, worker if type(worker) is str else None)
    return run or parsed_run or "", index if type(index) is int else parsed_index


def _extras_json(extras: dict[str, Any]) -> str | None:
    if not extras:
        return None
    try:
        return encode_json(extras)
    except Exception:  # e.g. a blob nested beyond our encoder's limit: keep its text instead
        return encode_json({k: v if isinstance(v, (str, int, float, bool)) or v is None else json.dumps(v)
                            for k, v in extras.items()})


def _step_row(row: Mapping[str, Any], runs: _Runs,
              streams: dict[tuple[str, str], _Stream], place: Any) -> tuple[Any, ...]:
    extras: dict[str, Any] = {}
    ts, agent, run = _common(row, _STEP_MAPPED, extras)
    episode_id = row.get("episode_id")
    run, index = _resolve(episode_id, run, row.get("worker_id"))
    if episode_id != default_episode_id(run, index, row.get("worker_id")):
        extras["episode_id"] = plain(episode_id)
    key = (run, agent)
    stream = streams.get(key)
    if stream is None:
        stream = streams[key] = _Stream()
    elif stream.episode_id != episode_id:
        place(key, stream, stream.episode_id)
    stream.episode_id = episode_id
    runs.seen(run, ts)
    step_index = row.get("step_index")
    if type(step_index) is not int:
        extras["step_index"] = plain(step_index)
        step_index = None
    reward = row.get("reward")
    if type(reward) is not float and type(reward) is not int:
        extras["reward"] = plain(reward)
        reward = None
    flags = []
    for name in ("terminated", "truncated"):
        value = row.get(name)
        flags.append(flag_or_none(value))
        if flags[-1] is None:
            extras[name] = plain(value)
    action = row.get("action")
    action_json = "null" if action is None else int.__repr__(action) if type(action) is int else None
    if action_json is None:
        extras["action"] = plain(action)
    blobs = []
    for name in _STEP_JSON:
        value = row.get(name)
        text = "null" if value is None else json_text_or_none(value)
        if text is None:
            extras[name] = plain(value)
        blobs.append(text)
    seq = stream.next_seq(ts)
    return (run, agent, seq, index, step_index, action_json, blobs[0], reward, flags[0], flags[1], blobs[1], blobs[2],
            _extras_json(extras), ts)


def _episode(row: Mapping[str, Any], runs: _Runs) -> _Episode:
    extras: dict[str, Any] = {}
    ts, agent, run = _common(row, _EPISODE_MAPPED, extras)
    episode_id = row.get("episode_id")
    metadata = row.get("metadata")
    metadata_json = "null" if metadata is None else json_text_or_none(metadata)
    if metadata_json is None:
        extras["metadata"] = plain(metadata)
    index = row.get("ep_index")
    if index is not None and type(index) is not int:
        extras["ep_index"] = plain(index)
        index = None
    run, index = _resolve(episode_id, run, row.get("worker_id"), index)
    if index is None and metadata_json:
        meta = json.loads(metadata_json)
        if isinstance(meta, dict) and type(meta.get("episode_index")) is int:
            index = bounded(meta["episode_index"])
    if episode_id != default_episode_id(run, index, row.get("worker_id")):
        extras["episode_id"] = plain(episode_id)
    runs.seen(run, ts)
    total = row.get("total_reward")
    if type(total) is not float and type(total) is not int:
        extras["total_reward"] = plain(total)
        total = None
    length = row.get("steps")
    if type(length) is not int:
        if length is not None:
            extras["length"] = plain(length)
        length = None
    flags = []
    for name in ("terminated", "truncated"):
        value = row.get(name)
        flags.append(flag_or_none(value))
        if flags[-1] is None:
            extras[name] = plain(value)
    return _Episode((run, agent), episode_id, index, (total, length, flags[0], flags[1], metadata_json), extras, ts)


def copy_legacy_rows(src: sqlite3.Connection, tables: Mapping[str, str | None],
                     dst: sqlite3.Connection) -> ConversionCounts:
    """Insert every row of the app's tables into ours; inside the caller's transaction on ``dst``. Blocks.

    ``tables`` maps ``steps``/``episodes``/``run_status`` to the table names on ``src`` (None when
    absent). ``dst`` must have our (empty) tables. Raises on any SQLite error; the caller rolls back.
    """
    runs = _Runs()
    episodes: list[_Episode] = []
    if tables.get("episodes"):
        columns = table_columns(src, str(tables["episodes"]))
        for chunk in _rows(src, str(tables["episodes"]), columns):
            episodes.extend(_episode(dict(zip(columns, r)), runs) for r in chunk)
    pending: dict[tuple[str, str, Any], list[_Episode]] = {}
    for ep in episodes:
        pending.setdefault((*ep.key, ep.episode_id), []).append(ep)
    streams: dict[tuple[str, str], _Stream] = {}

    def place(key: tuple[str, str], stream: _Stream, episode_id: Any) -> None:
        for ep in pending.pop((*key, episode_id), ()):
            ep.seq = stream.next_seq(ep.ts)

    steps = 0
    if tables.get("steps"):
        columns = table_columns(src, str(tables["steps"]))
        for chunk in _rows(src, str(tables["steps"]), columns):
            rows = [_step_row(dict(zip(columns, r)), runs, streams, place) for r in chunk]
            dst.executemany(_STEP_INSERT, rows)
            steps += len(rows)
    for key, stream in streams.items():
        place(key, stream, stream.episode_id)
    renumbered = _write_episodes(dst, episodes, streams)
    dst.executemany(_STREAM_INSERT, [(run, agent, s.seq, s.first_ts, s.last_ts)
                                     for (run, agent), s in streams.items() if s.seq])
    status_rows = _run_status_rows(src, tables.get("run_status"))
    _write_runs(dst, runs, status_rows)
    return ConversionCounts(steps, len(episodes), renumbered, sum(map(len, status_rows.values())),
                            len(set(runs.times) | set(status_rows)))


def _write_episodes(dst: sqlite3.Connection, episodes: list[_Episode], streams: dict[tuple[str, str], _Stream]) -> int:
    """Insert the episodes (rowid order); one whose index is taken or missing goes to a negative index."""
    for ep in episodes:
        if ep.seq is None:
            stream = streams.get(ep.key)
            if stream is None:
                stream = streams[ep.key] = _Stream()
            ep.seq = stream.next_seq(ep.ts)
    taken = {(*ep.key, ep.index) for ep in episodes if ep.index is not None}
    lowest: dict[tuple[str, str], int] = {}  # per stream: the last negative index handed out
    holders: set[tuple[str, str, int]] = set()
    rows: list[tuple[Any, ...]] = []
    renumbered = 0
    for ep in episodes:
        run, agent = ep.key
        index = ep.index
        if index is None or (run, agent, index) in holders:
            low = lowest.get(ep.key, 0) - 1
            while (run, agent, low) in taken:
                low -= 1
            lowest[ep.key] = low
            if ep.index is not None:
                ep.extras["ep_index"] = ep.index
            ep.extras["episode_id"] = plain(ep.episode_id)
            index = low
            taken.add((run, agent, index))
            renumbered += 1
        holders.add((run, agent, index))
        total, length, term, trunc, metadata_json = ep.columns
        rows.append((run, agent, index, ep.seq, total, length, term, trunc, None, metadata_json,
                     _extras_json(ep.extras), ep.ts))
    dst.executemany(_EPISODE_INSERT, rows)
    return renumbered


def _run_status_rows(src: sqlite3.Connection, table: str | None) -> dict[str, list[dict[str, Any]]]:
    """run_status rows by run id (a list: a TEXT primary key may hold several NULLs)."""
    if not table:
        return {}
    columns = table_columns(src, table)
    found: dict[str, list[dict[str, Any]]] = {}
    for chunk in _rows(src, table, columns):
        for r in chunk:
            row = {c: plain(v) for c, v in zip(columns, r)}
            run_id = row.get("run_id")
            found.setdefault("" if run_id is None else str(run_id), []).append(row)
    return found


def _write_runs(dst: sqlite3.Connection, runs: _Runs, status_rows: Mapping[str, list[dict[str, Any]]]) -> None:
    rows = []
    for run_id in sorted(set(runs.times) | set(status_rows)):
        legacy = status_rows.get(run_id, [])
        times = [t for t in (runs.times.get(run_id) or []) if t]
        times += [t for row in legacy for t in (row.get("deleted_at"), row.get("archived_at")) if type(t) is str and t]
        first = min(times) if times else ""
        status = legacy[-1].get("status") if legacy else None
        row = dict.fromkeys(RUN_COLUMNS)
        row.update(run_id=run_id, status="running" if status in (None, "active") else str(status),
                   created_at=first, updated_at=max(times) if times else first)
        if legacy:
            row["summary_json"] = encode_json({"legacy_run_status": legacy[0] if len(legacy) == 1 else legacy})
        rows.append(tuple(row[c] for c in RUN_COLUMNS))
    dst.executemany(_RUN_INSERT, rows)
