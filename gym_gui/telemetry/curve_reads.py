"""Read queries for the learning curves and for replaying unfinished episodes (Qt-free, read only).

Each function takes a ``sqlite3.Connection`` (any read connection on a telemetry file) and has a
``*_from_store`` twin that runs it inside one read transaction of a ``TelemetrySQLiteStore`` (the
calling thread's read connection: a StoreReader thread in the app). None of them writes.

- ``load_curves``: one stream's episodes as a ``CurveData``, the same values the live path gives
  (``point_from_payload`` of each stored episode), in one query: numbers converted by numpy, wall
  times parsed by numpy (``epoch_seconds``), metadata decoded by orjson in the reader thread (the
  stdlib decoder for what orjson would read otherwise: NaN, Infinity, integers beyond 64 bits).
- ``partial_episodes``: the steps stored after the last EPISODE_FINALIZED of each stream of a run
  form a partial episode (a worker that crashed, a run still going, a GUI killed mid-run): one
  ``EpisodeRecord`` each, with ``outcome == PARTIAL_OUTCOME`` and ``payload["partial"] is True``,
  its return the sum of its stored rewards and its length its stored step count.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import time
from typing import Any, Callable, Mapping, NamedTuple, Sequence, TypeVar

import numpy as np
import orjson

from gym_gui.live.curves import META_SKIP, CurveData, episode_success, iso_to_epoch_s, point_from_payload
from gym_gui.live.curve_points import num
from gym_gui.rate_limited_log import RateLimitedLog
from gym_gui.telemetry.json_text import load_json, may_hold_big_int
from gym_gui.telemetry.sqlite_records import EpisodeRecord
from gym_gui.telemetry.sqlite_rows import EPISODE_KEYS, EPISODE_READ_COLUMNS, decode_episode, loaded_agent, stored_agent

__all__ = [
    "FETCH_ROWS",
    "PARTIAL_OUTCOME",
    "epoch_seconds",
    "load_curves",
    "load_curves_from_store",
    "partial_episodes",
    "partial_episodes_from_store",
]

#: The outcome text of a partial (unfinished) episode.
PARTIAL_OUTCOME = "partial (unfinished)"
T = TypeVar("T")
_log = logging.getLogger(__name__)
_orjson_loads = orjson.loads

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


#: ISO-8601 layouts parsed by numpy, by text length: fraction digits (0 or 6) and zone ("" naive,
#: "Z", "+" for +HH:MM / -HH:MM). Any other text, and any text these checks refuse, is left to
#: ``iso_to_epoch_s`` itself.
_ISO_LAYOUTS = {19: (0, ""), 26: (6, ""), 20: (0, "Z"), 27: (6, "Z"), 25: (0, "+"), 32: (6, "+")}
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
_EXACT_US = 2 ** 53  # microsecond counts below this convert to float64 exactly
_ISO_PLANS: dict[int, tuple[tuple[tuple[int, int], ...], list[int], list[tuple[int, int]], int]] = {}


def _iso_plan(length: int) -> tuple[tuple[tuple[int, int], ...], list[int], list[tuple[int, int]], int]:
    """For one layout: its fields (year, month, day, hour, minute, second, microsecond, offset hours,
    offset minutes) as (first column, digits), its digit columns, its fixed characters, and the
    column of the zone's sign (-1: none)."""
    plan = _ISO_PLANS.get(length)
    if plan is None:
        fraction, zone = _ISO_LAYOUTS[length]
        tail = 19 + (fraction + 1 if fraction else 0)
        fields = [(0, 4), (5, 2), (8, 2), (11, 2), (14, 2), (17, 2), (20, fraction), (0, 0), (0, 0)]
        fixed = [(4, ord("-")), (7, ord("-")), (10, ord("T")), (13, ord(":")), (16, ord(":"))]
        if fraction:
            fixed.append((19, ord(".")))
        if zone == "+":
            fields[7:] = [(tail + 1, 2), (tail + 4, 2)]
            fixed.append((tail + 3, ord(":")))
        elif zone == "Z":
            fixed.append((tail, ord("Z")))
        columns = [start + k for start, width in fields for k in range(width)]
        plan = (tuple(fields), columns, fixed, tail if zone == "+" else -1)
        _ISO_PLANS[length] = plan
    return plan


def _fixed_iso(text: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Epoch seconds of same-layout ISO texts (rows of bytes), and which rows the layout fits."""
    fields, columns, fixed, sign_at = _iso_plan(text.shape[1])
    by_column = np.ascontiguousarray(text.T)  # one row per character position
    ok = ((by_column[columns] - np.uint8(ord("0"))) <= 9).all(axis=0)  # (a non-digit wraps above 9)
    for col, char in fixed:
        ok &= by_column[col] == char
    digits = by_column.astype(np.int64) - ord("0")
    values = []
    for start, width in fields:
        value = np.zeros(text.shape[0], dtype=np.int64)
        for col in range(start, start + width):
            value = value * 10 + digits[col]
        values.append(value)
    year, month, day, hour, minute, second, micro, off_h, off_m = values
    month_ok = (month >= 1) & (month <= 12)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    days_in_month = _MONTH_DAYS[np.where(month_ok, month, 1)] + (leap & (month == 2))
    ok &= (year >= 1) & month_ok & (day >= 1) & (day <= days_in_month) & (hour <= 23) & (minute <= 59)
    ok &= (second <= 59) & (off_h <= 23) & (off_m <= 59)
    offset_s = off_h * 3600 + off_m * 60
    if sign_at >= 0:
        sign = text[:, sign_at]
        ok &= (sign == ord("+")) | (sign == ord("-"))
        offset_s = np.where(sign == ord("-"), -offset_s, offset_s)
    # days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil)
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    total_us = (days * 86400 + hour * 3600 + minute * 60 + second - offset_s) * 1_000_000 + micro
    ok &= np.abs(total_us) < _EXACT_US
    return total_us.astype(np.float64) / 1e6, ok


def epoch_seconds(texts: Sequence[Any]) -> np.ndarray:
    """``iso_to_epoch_s`` of every text, equal to it to the last bit: the common fixed layouts by
    numpy (the same integer microseconds over 1e6), any other text by ``iso_to_epoch_s``. Any
    thread; pure."""
    n = len(texts)
    out = np.full(n, _NAN)
    left = np.ones(n, dtype=bool)
    try:
        lengths = set(map(len, texts))
        if len(lengths) == 1:
            groups = [(np.arange(n), texts, lengths.pop())]
        else:
            by_row = np.fromiter(map(len, texts), np.int64, n)
            groups = [(rows, [texts[i] for i in rows.tolist()], length) for length in sorted(lengths)
                      for rows in [np.flatnonzero(by_row == length)]]
        for rows, group, length in groups:
            if length in _ISO_LAYOUTS:
                raw = "".join(group).encode("ascii", "replace")  # a non-ASCII letter: one "?", refused
                values, ok = _fixed_iso(np.frombuffer(raw, np.uint8).reshape(len(rows), length))
                out[rows[ok]] = values[ok]
                left[rows[ok]] = False
    except TypeError:  # a text that is not a str (None, bytes): iso_to_epoch_s says NaN
        pass
    for row in np.flatnonzero(left).tolist():
        out[row] = iso_to_epoch_s(texts[row])
    return out


#: Every column the curves need, row by row in the primary key's order (plain columns: SQLite
#: functions per row cost more than the Python that replaces them).
_ROWS_SQL = (
    "SELECT episode_index, total_reward, length, terminated, truncated, outcome, metadata_json, extra_json, ts_iso "
    "FROM episodes WHERE run_id = ? AND agent_id = ? ORDER BY episode_index"
)
#: One episode as ``decode_episode`` reads it (rows whose extras change what the columns say).
_ONE_EPISODE_SQL = (
    f"SELECT {EPISODE_READ_COLUMNS} FROM episodes WHERE run_id = ? AND agent_id = ? AND episode_index = ?"
)
#: Rows read, and converted, per piece: each conversion holds the GIL, so a reader thread works in
#: short pieces (a few ms each) and the GUI thread gets the interpreter between them.
FETCH_ROWS = 4096
_NAN = math.nan
_NO_DICT: dict[str, Any] = {}
_NUMBER_TYPES = frozenset({int, float, type(None)})
_SEP = "\x1f"
_rate_log = RateLimitedLog(_log, interval_s=5.0)


def _decode(text: str) -> Any:
    """One stored JSON text as ``load_json`` reads it (orjson when that gives the same value); None,
    logged, when it is not JSON at all."""
    try:
        if not may_hold_big_int(text.encode()):
            try:
                return _orjson_loads(text)
            except orjson.JSONDecodeError:  # NaN / Infinity tokens, lone surrogates, deep nesting
                pass
        return load_json(text)
    except (ValueError, RecursionError) as exc:
        _rate_log.log(logging.WARNING, "bad-json", "curves: an episode's stored JSON is unreadable (%s)", exc)
        return None


def _decode_all(texts: Sequence[str], joined: str) -> list[Any]:
    """Every text decoded (``_decode``), one orjson call each unless ``joined`` (the texts joined)
    may hold an integer orjson would round or a text orjson refuses."""
    if not may_hold_big_int(joined.encode()):
        try:
            return list(map(_orjson_loads, texts))
        except orjson.JSONDecodeError:
            pass
    return [_decode(text) for text in texts]


def _worker_success(mapping: Mapping[str, Any]) -> float | None:
    """The ``success`` / ``is_success`` boolean of ``mapping`` as 1.0 / 0.0 (first found), else None."""
    for key in ("success", "is_success"):
        value = mapping.get(key)
        if type(value) is bool:
            return 1.0 if value else 0.0
    return None


def _safe_num(value: Any) -> float:
    try:
        return num(value)
    except OverflowError:  # an integer beyond float's range: not a plottable number
        return _NAN


def _numbers(values: Sequence[Any]) -> np.ndarray:
    """``num`` of every value (finite int / float, else NaN), vectorised when they are plain numbers."""
    if _NUMBER_TYPES.issuperset(map(type, values)):
        try:
            column = np.array(values, dtype=np.float64)  # None -> NaN
        except OverflowError:
            pass
        else:
            column[~np.isfinite(column)] = _NAN
            return column
    return np.fromiter(map(_safe_num, values), np.float64, len(values))


class _Piece(NamedTuple):
    """The curve columns of a run of consecutive rows."""

    table: np.ndarray  # (rows, 5): index, return, length, success, wall
    metadata: dict[str, np.ndarray]
    by_reference: list[int]  # episode indices whose extras change what the columns say


def _column_success(outcomes: Sequence[Any], terminated: np.ndarray, truncated: np.ndarray,
                    total_reward: np.ndarray) -> np.ndarray:
    """``episode_success`` from the typed columns: outcome text, then terminated, then truncated."""
    by_outcome = {o: episode_success({"outcome": o}) for o in set(outcomes)}
    success = np.fromiter(map(by_outcome.__getitem__, outcomes), np.float64, len(outcomes))
    rest = np.isnan(success)
    ended = rest & (terminated == 1)
    success[ended] = total_reward[ended] > 0
    success[rest & ~ended & (truncated == 1)] = 0.0
    return success


def _piece(index: Sequence[int], total_reward: Sequence[Any], length: Sequence[Any], terminated: Sequence[Any],
           truncated: Sequence[Any], outcomes: Sequence[Any], meta_texts: Sequence[str],
           extras: Sequence[tuple[int, str]], ts_iso: Sequence[Any]) -> _Piece:
    """The curve columns of one piece's values (one entry per row, ``extras`` only for the rows
    that have some): numbers by numpy, each metadata text by one orjson call."""
    n = len(index)
    table = np.empty((n, 5))
    table[:, 0] = index
    table[:, 1] = np.array(total_reward, dtype=np.float64)  # None -> NaN
    table[:, 2] = np.array(length, dtype=np.float64)
    table[:, 1:3][~np.isfinite(table[:, 1:3])] = _NAN  # (num: an infinite return is no number)
    table[:, 3] = _column_success(outcomes, np.array(terminated, dtype=np.float64),
                                  np.array(truncated, dtype=np.float64), table[:, 1])
    table[:, 4] = epoch_seconds(ts_iso)
    joined = _SEP.join(meta_texts)
    dicts = [m if type(m) is dict else _NO_DICT for m in _decode_all(meta_texts, joined)]
    if "success" in joined:  # (is_success too) seldom: most workers say it in the outcome
        for row, d in enumerate(dicts):
            found = _worker_success(d) if d else None
            if found is not None:
                table[row, 3] = found
    by_reference: list[int] = []
    for episode_index, text in extras:
        found_extras = _decode(text)
        if type(found_extras) is not dict or not EPISODE_KEYS.isdisjoint(found_extras):
            by_reference.append(episode_index)  # a column's value lives in the extras
            continue
        found = _worker_success(found_extras)
        if found is not None:  # the payload's own boolean outranks the metadata's
            table[int(np.searchsorted(table[:, 0], episode_index)), 3] = found
    metadata: dict[str, np.ndarray] = {}
    for key in set().union(*dicts) - META_SKIP:
        column = _numbers([d.get(key) for d in dicts])
        if not np.isnan(column).all():
            metadata[key] = column
    return _Piece(table, metadata, by_reference)


def _rows_piece(rows: list[tuple[Any, ...]]) -> _Piece:
    """The piece of fetched ``_ROWS_SQL`` rows."""
    index, total_reward, length, terminated, truncated, outcomes, metas, extras, ts_iso = zip(*rows)
    if None in metas:  # (NULL: no metadata, as JSON null says)
        metas = tuple("null" if text is None else text for text in metas)
    with_extras = [] if extras.count(None) == len(extras) else [
        (i, text) for i, text in zip(index, extras) if text is not None]
    return _piece(index, total_reward, length, terminated, truncated, outcomes, metas, with_extras, ts_iso)


def _joined(pieces: list[_Piece]) -> tuple[np.ndarray, dict[str, np.ndarray], list[int]]:
    if len(pieces) == 1:
        return pieces[0]
    if not pieces:
        return np.empty((0, 5)), {}, []
    keys = sorted(set().union(*(p.metadata for p in pieces)))
    metadata = {key: np.concatenate([p.metadata.get(key, np.full(len(p.table), _NAN)) for p in pieces])
                for key in keys}
    return np.concatenate([p.table for p in pieces]), metadata, [ep for p in pieces for ep in p.by_reference]


def load_curves(conn: sqlite3.Connection, run_id: str, agent_id: str | None, *, window: int = 100) -> CurveData:
    """The curves of stream ``(run_id, agent_id)`` from its stored episodes: the same values as
    ``CurveData.add_points`` of ``point_from_payload`` of every stored episode (success by the rule
    of ``live.curves.episode_success``, wall time to the microsecond, each numeric metadata key).
    Caller's thread; blocks for the query (a reader thread's job), whose rows are converted in
    pieces of ``FETCH_ROWS`` between which the GIL is offered to other threads. The few rows whose
    extras override a column are read again, one by one, as ``decode_episode`` reads them."""
    key = (run_id, stored_agent(agent_id))
    cursor = conn.execute(_ROWS_SQL, key)
    pieces = []
    while True:
        rows = cursor.fetchmany(FETCH_ROWS)
        if not rows:
            break
        pieces.append(_rows_piece(rows))
        if len(rows) < FETCH_ROWS:
            break  # (the last piece: the cursor is done)
        time.sleep(0)  # let a waiting thread (the GUI's) take the GIL now
    table, metadata, by_reference = _joined(pieces)
    for episode_index in by_reference:
        _patch_by_reference(conn, key, episode_index, table, metadata)
    metadata = {name: metadata[name] for name in sorted(metadata)}  # the order add_points gives them
    return CurveData.from_columns(table[:, 0], table[:, 1], table[:, 2], table[:, 3], table[:, 4], metadata,
                                  window=window)


def _patch_by_reference(conn: sqlite3.Connection, key: tuple[str, str], episode_index: int, table: np.ndarray,
                        metadata: dict[str, np.ndarray]) -> None:
    """Row ``episode_index`` as the live path reads it: ``decode_episode`` then ``point_from_payload``."""
    row = conn.execute(_ONE_EPISODE_SQL, (*key, episode_index)).fetchone()
    try:
        record = decode_episode(row)
        point = point_from_payload(record.payload, record.ts_iso)
    except (ValueError, RecursionError, OverflowError, TypeError) as exc:
        _rate_log.log(logging.WARNING, "bad-row", "curves: episode %s of %s is unreadable (%s)", episode_index,
                      key, exc)
        return
    if point is None:
        return
    at = int(np.searchsorted(table[:, 0], episode_index))
    table[at, 1:] = (point.total_reward, point.length, point.success, point.wall_s)
    for name, column in metadata.items():
        column[at] = point.metadata.get(name, _NAN)
    for name, value in point.metadata.items():
        if name not in metadata and name not in META_SKIP:
            metadata[name] = np.full(len(table), _NAN)
            metadata[name][at] = value


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
