"""Read queries for the learning curves and for replaying unfinished episodes (Qt-free, read only).

Each function takes a ``sqlite3.Connection`` (any read connection on a telemetry file) and has a
``*_from_store`` twin that runs it inside one read transaction of a ``TelemetrySQLiteStore`` (the
calling thread's read connection: a StoreReader thread in the app). None of them writes.

- ``load_curves``: one stream's episodes as a ``CurveData``, the same values the live path gives
  (``point_from_payload`` of each stored episode), by pieces of ``FETCH_ROWS`` episodes, each read
  as one row of aggregates (SQLite concatenates the columns; Python objects per value are what
  costs; a piece whose indices fill its range, as the count shows, without its indices: the scan
  of the primary key's index, named in the query, visits the rows in index order): numbers
  converted by numpy (whole returns as integers, a length and its success code as one integer,
  so that SQLite runs as few aggregates per row as it can), success by SQL (the rule of
  ``episode_success``, less the workers' own booleans, which Python looks at), wall times parsed by numpy (``live.iso_epochs``), metadata decoded
  by orjson in the reader thread as one JSON array (by the stdlib decoder, text by text, what orjson
  refuses: NaN, Infinity, lone surrogates). Rows whose extras override a column
  are read again one by one through ``decode_episode``.
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
from itertools import repeat
from operator import itemgetter
from typing import Any, Callable, Mapping, NamedTuple, Sequence, TypeVar

import numpy as np
import orjson

from gym_gui.live.curve_points import _SUCCESS_OUTCOMES, EpisodePoint, num
from gym_gui.live.curves import META_SKIP, CurveData, episode_success, point_from_payload
from gym_gui.live.iso_epochs import epoch_seconds, joined_epoch_seconds
from gym_gui.rate_limited_log import RateLimitedLog
from gym_gui.telemetry.json_text import load_json, may_hold_big_int
from gym_gui.telemetry.sqlite_records import EpisodeRecord
from gym_gui.telemetry.sqlite_rows import EPISODE_KEYS, EPISODE_READ_COLUMNS, decode_episode, loaded_agent, stored_agent

__all__ = [
    "FETCH_ROWS",
    "PARTIAL_OUTCOME",
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


#: A piece of a stream's episodes: a range of its episode indices.
_PIECE_WHERE = "FROM episodes WHERE run_id = ? AND agent_id = ? AND episode_index BETWEEN ? AND ?"
#: The last episode index of the piece of ``FETCH_ROWS`` episodes from ``?`` on (an index-only seek).
_PIECE_END_SQL = (
    "SELECT episode_index FROM episodes WHERE run_id = ? AND agent_id = ? AND episode_index >= ? "
    "ORDER BY episode_index LIMIT 1 OFFSET ?"
)
#: The stream's first and last episode index, and the next one after ``?`` (index-only seeks: one
#: min() or max() a query, as SQLite seeks only those).
_FIRST_SQL = ("SELECT (SELECT min(episode_index) FROM episodes WHERE run_id = ?1 AND agent_id = ?2), "
              "(SELECT max(episode_index) FROM episodes WHERE run_id = ?1 AND agent_id = ?2)")
_NEXT_SQL = "SELECT min(episode_index) FROM episodes WHERE run_id = ? AND agent_id = ? AND episode_index > ?"
#: The outcome texts the success rule knows, lower-case ASCII letters without a "k", worth 1 or 0:
#: SQLite's lower() (ASCII letters only) then finds exactly the texts whose Python ``lower()`` it
#: finds (the only other letter that lowers to ASCII is the Kelvin sign, to "k").
if not all(word.isascii() and word.isalpha() and word == word.lower() and "k" not in word and value in (0.0, 1.0)
           for word, value in _SUCCESS_OUTCOMES.items()):
    raise ImportError("curve_reads: an outcome word SQLite's lower() cannot match as Python's does")
#: ``episode_success`` from an episode's columns, without the worker's own booleans (the metadata's
#: and the extras' are looked at in Python), as an integer: 1, 0, or 2 for NaN (no value of the
#: rule), packed with the length into one integer (``_PACKED_SQL``). The words as they are
#: first, the commonest first (no lower() call: a copy of the text per row), then lower(); a
#: terminated episode counts 1 when its return is a finite number above 0 (NaN is stored as NULL).
_WORDS = sorted(_SUCCESS_OUTCOMES, key=lambda word: word not in ("success", "failure"))
_WORDS_SQL = " ".join(f"WHEN '{word}' THEN {int(_SUCCESS_OUTCOMES[word])}" for word in _WORDS)
_SUCCESS_CODE_SQL = (
    f"CASE outcome {_WORDS_SQL} ELSE CASE lower(outcome) {_WORDS_SQL} ELSE "
    "CASE WHEN terminated THEN (CASE WHEN total_reward > 0 AND total_reward < 9e999 THEN 1 ELSE 0 END) "
    "WHEN truncated THEN 0 ELSE 2 END END END"
)
#: The length and the success code of a row as one integer, ``length * 4 + code`` (one aggregate
#: for both: SQLite's cost is per aggregate and row); ``null`` for a NULL length, and a REAL
#: (text with "." or "e") when the product leaves int64: the piece is then read row by row.
_PACKED_SQL = f"coalesce(length * 4 + {_SUCCESS_CODE_SQL}, 'null')"
#: A row's return when it is a whole number (exact as an integer), else "x" (NULL for NaN, a
#: fraction, beyond int64): the piece's returns are then read row by row (``_RETURNS_SQL``): SQLite's
#: REAL to text is not exact.
_WHOLE_RETURN_SQL = "iif(total_reward = CAST(total_reward AS INTEGER), CAST(total_reward AS INTEGER), 'x')"
#: A piece's columns in one row of aggregates, so that SQLite's loop, not a Python object per value,
#: carries them: integers as comma lists (whole returns, ``_WHOLE_RETURN_SQL``; lengths with the
#: success codes, ``_PACKED_SQL``), the metadata texts as the items of one JSON array (one orjson
#: call reads them; one value per text or the piece's texts are read apart), the times joined by
#: the unit separator (U+001F: JSON text escapes it; a time holding one makes the count wrong and
#: the piece is read row by row). The count of rows is that of the packed integers (one a row).
_SEP = "\x1f"
_COLUMNS_SQL = (
    f"count(extra_json), group_concat({_WHOLE_RETURN_SQL}), group_concat({_PACKED_SQL}), "
    f"group_concat(coalesce(metadata_json, 'null')), group_concat(ts_iso, '{_SEP}')"
)
_AGGREGATES_SQL = f"SELECT count(*), group_concat(episode_index), {_COLUMNS_SQL} {_PIECE_WHERE}"
#: The piece of a stream whose indices are dense (every index of the range stored: the count says
#: so), without its indices: the scan of the primary key's index (named, so that no other plan can
#: visit the rows in another order) visits them in index order, so the aggregates' items come in
#: that order; the count is the number of packed integers (one a row).
_PK_INDEX = "sqlite_autoindex_episodes_1"
_DENSE_WHERE = _PIECE_WHERE.replace("FROM episodes", f"FROM episodes INDEXED BY {_PK_INDEX}")
_DENSE_AGGREGATES_SQL = f"SELECT {_COLUMNS_SQL} {_DENSE_WHERE}"
#: The indices of a piece that turned out not to be dense (an index-only scan).
_INDICES_SQL = f"SELECT group_concat(episode_index) {_DENSE_WHERE}"
_RETURNS_SQL = f"SELECT total_reward {_PIECE_WHERE} ORDER BY episode_index"
_METADATA_SQL = f"SELECT coalesce(metadata_json, 'null') {_PIECE_WHERE} ORDER BY episode_index"
_EXTRAS_SQL = f"SELECT episode_index, extra_json {_PIECE_WHERE} AND extra_json IS NOT NULL ORDER BY episode_index"
#: The same columns row by row, for a piece whose aggregates do not split into its rows.
_ROWS_SQL = (
    "SELECT episode_index, total_reward, length, terminated, truncated, outcome, metadata_json, extra_json, ts_iso "
    f"{_PIECE_WHERE} ORDER BY episode_index"
)
#: One episode as ``decode_episode`` reads it (rows whose extras change what the columns say).
_ONE_EPISODE_SQL = (
    f"SELECT {EPISODE_READ_COLUMNS} FROM episodes WHERE run_id = ? AND agent_id = ? AND episode_index = ?"
)
#: Episodes read, and converted, per piece: SQLite's aggregates run without the GIL, their
#: conversion holds it (about 1 us per episode), so a reader thread works in pieces of about 2 ms
#: and the GUI thread gets the interpreter between them.
FETCH_ROWS = 2048
_INDEX_MIN, _INDEX_MAX = -(2 ** 63), 2 ** 63 - 1
_NAN = math.nan
_NO_DICT: dict[str, Any] = {}
_NUMBER_TYPES = frozenset({int, float, type(None)})
_DICT_ONLY = frozenset({dict})
_STR_ONLY = frozenset({str})
_SUCCESS_KEYS = frozenset({"success", "is_success"})
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


def _decode_all(items: str, count: int, texts: Callable[[], Sequence[str]]) -> list[Any]:
    """The ``count`` metadata texts that ``items`` holds joined by commas (``texts()``: the texts
    themselves), decoded (``_decode``): all as one array by one orjson call,
    unless orjson refuses a text (NaN, Infinity, a lone surrogate, ...) or the array does not have
    one value per text (a text that is not one JSON value, which the store never writes: every text
    gives at least one): then one text at a time. An integer beyond 64 bits comes as orjson's
    float, the correctly rounded one, which is what ``num`` makes of the integer: a curve reads
    only top-level numbers (and booleans), so the values it takes are the same."""
    try:
        values = _orjson_loads(f"[{items}]")
    except orjson.JSONDecodeError:
        pass
    else:
        if type(values) is list and len(values) == count:
            return values
    return [_decode(text) for text in texts()]


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
            column = np.fromiter(values, np.float64, len(values))  # None -> NaN
        except OverflowError:
            pass
        else:
            column[~np.isfinite(column)] = _NAN
            return column
    return np.fromiter(map(_safe_num, values), np.float64, len(values))


class _Piece(NamedTuple):
    """The curve columns of a run of consecutive rows."""

    table: np.ndarray  # (rows, 5): index (as float64), return, length, success, wall
    metadata: dict[str, np.ndarray]
    by_reference: list[int]  # episode indices whose extras change what the columns say
    index: np.ndarray  # the episode indices exactly (int64: float64 rounds those beyond 2**53)


def _column_success(outcomes: Sequence[Any], terminated: Sequence[Any], truncated: Sequence[Any],
                    total_reward: np.ndarray) -> np.ndarray:
    """``episode_success`` from the typed columns of rows read one by one: outcome text, then
    terminated, then truncated (what ``_SUCCESS_CODE_SQL`` says in SQL)."""
    by_outcome = {o: episode_success({"outcome": o}) for o in set(outcomes)}
    success = np.fromiter(map(by_outcome.__getitem__, outcomes), np.float64, len(outcomes))
    rest = np.isnan(success)
    if rest.any():
        ended = rest & np.fromiter((bool(t) for t in terminated), bool, len(terminated))
        success[ended] = total_reward[ended] > 0
        success[rest & ~ended & np.fromiter((bool(t) for t in truncated), bool, len(truncated))] = 0.0
    return success


def _piece(index: np.ndarray, total_reward: Sequence[Any], length: Sequence[Any], success: np.ndarray,
           items: str, meta_texts: Callable[[], Sequence[str]], extras: Sequence[tuple[int, str]],
           wall_s: np.ndarray) -> _Piece:
    """The curve columns of one piece's values (one entry per row, ``extras`` only for the rows
    that have some, ``success`` by the typed columns, ``items`` the metadata texts joined by
    commas and ``meta_texts()`` those texts; ``index`` as int64): numbers by numpy, the
    metadata by orjson."""
    n = len(index)
    table = np.empty((n, 5))
    table[:, 0] = index
    table[:, 1] = np.array(total_reward, dtype=np.float64)  # None -> NaN
    table[:, 2] = np.array(length, dtype=np.float64)
    table[:, 1:3][~np.isfinite(table[:, 1:3])] = _NAN  # (num: an infinite return is no number)
    table[:, 3] = success
    table[:, 4] = wall_s
    values = _decode_all(items, n, meta_texts)
    metadata = _plain_metadata(values)
    if metadata is None:
        metadata, dicts = _metadata(values)
        if dicts is not None:  # (a row says success or is_success: seldom, most workers say it in the outcome)
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
            table[int(np.searchsorted(index, episode_index)), 3] = found
    return _Piece(table, metadata, by_reference, index)


def _plain_metadata(values: list[Any]) -> dict[str, np.ndarray] | None:
    """The numeric metadata columns of the decoded rows ``values`` when every row is a dict without
    a success key, else None (``_metadata`` reads them): every row is a dict once a key of them has
    been taken from every row (of the JSON values, only a dict takes a text subscript), so the rows
    are not looked at apart."""
    try:
        keys = set().union(*values)  # (a number or null has no keys: not every row is a dict)
    except TypeError:
        return None
    if not _SUCCESS_KEYS.isdisjoint(keys) or not _STR_ONLY.issuperset(map(type, keys)):
        return None
    metadata: dict[str, np.ndarray] = {}
    try:
        for key in keys - META_SKIP:
            try:
                found = list(map(itemgetter(key), values))
            except KeyError:  # (not in every row)
                found = list(map(dict.get, values, repeat(key)))
            column = _numbers(found)
            if not np.isnan(column).all():
                metadata[key] = column
    except TypeError:  # a row that is a list or a text
        return None
    return metadata


def _metadata(values: list[Any]) -> tuple[dict[str, np.ndarray], list[dict[str, Any]] | None]:
    """The numeric metadata columns of the decoded rows ``values`` (any JSON values: a row that is
    no dict has none), and the rows as dicts when one of them has a success key (else None)."""
    dicts = values if _DICT_ONLY.issuperset(map(type, values)) else [
        m if type(m) is dict else _NO_DICT for m in values]
    keys = set().union(*dicts)
    metadata: dict[str, np.ndarray] = {}
    for key in keys - META_SKIP:
        try:
            found_values = list(map(itemgetter(key), dicts))
        except KeyError:  # (not in every row)
            found_values = [d.get(key) for d in dicts]
        column = _numbers(found_values)
        if not np.isnan(column).all():
            metadata[key] = column
    return metadata, None if _SUCCESS_KEYS.isdisjoint(keys) else dicts


def _rows_piece(rows: list[tuple[Any, ...]]) -> _Piece:
    """The piece of fetched ``_ROWS_SQL`` rows."""
    index, total_reward, length, terminated, truncated, outcomes, metas, extras, ts_iso = zip(*rows)
    if None in metas:  # (NULL: no metadata, as JSON null says)
        metas = tuple("null" if text is None else text for text in metas)
    with_extras = [] if extras.count(None) == len(extras) else [
        (i, text) for i, text in zip(index, extras) if text is not None]
    returns = np.array(total_reward, dtype=np.float64)  # None -> NaN
    returns[~np.isfinite(returns)] = _NAN
    return _piece(np.array(index, dtype=np.int64), returns, length,
                  _column_success(outcomes, terminated, truncated, returns), ",".join(metas),
                  lambda: metas, with_extras, epoch_seconds(ts_iso))


def _ints(text: str | None) -> list[Any]:
    return [] if text is None else _orjson_loads(f"[{text}]")


def _int_column(text: str | None, count: int, *, exact: bool = False) -> np.ndarray | list[Any]:
    """The comma list of SQLite integers ``text`` as float64 (numpy parses it: no Python int per
    value; int64 to float64 rounds as ``float(int)`` does), as int64 with ``exact``, or as
    ``_ints`` gives it when it holds a ``null`` or does not hold ``count`` integers."""
    if text is not None and "n" not in text:
        try:
            column = np.fromstring(text, dtype=np.int64, sep=",")
        except ValueError:
            pass
        else:
            if len(column) == count:
                return column if exact else column.astype(np.float64)
    return _ints(text)


_PACKED_BYTES = b"0123456789-,"


def _packed_columns(text: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The lengths (float64) and the success column (1.0 / 0.0 / NaN) of the ``_PACKED_SQL``
    integers that ``text`` lists; None when it holds anything but integers (a NULL length, a
    product beyond int64): the piece is then read row by row."""
    if text.encode().translate(None, _PACKED_BYTES):
        return None
    try:
        packed = np.fromstring(text, dtype=np.int64, sep=",")
    except ValueError:
        return None
    if len(packed) != text.count(",") + 1:
        return None
    success = (packed & 3).astype(np.float64)
    success[success == 2] = _NAN
    return (packed >> 2).astype(np.float64), success  # (floor division: a negative length too)


def _read_piece(conn: sqlite3.Connection, key: tuple[str, str], first: int, last: int,
                dense: bool) -> _Piece | None:
    """Episodes ``first..last`` of the stream (``first`` and ``last`` stored) from their aggregates
    (row by row when these do not split into the piece's rows); None without any. ``dense``: the
    rows are expected to fill the range (the previous piece did): read without their indices, which
    are then the range itself (read apart when the count says the range has holes). Caller's thread;
    blocks for the queries."""
    bounds = (*key, first, last)
    row = None
    if dense:
        try:
            row = conn.execute(_DENSE_AGGREGATES_SQL, bounds).fetchone()
        except sqlite3.OperationalError:  # (a table without the primary key's index: not this schema's)
            row = None
    if row is not None:
        extra_count, whole_returns, packed, metas, stamps = row
        if packed is None:
            return None
        columns = _packed_columns(packed)
        if columns is None:
            return _rows_piece(conn.execute(_ROWS_SQL, bounds).fetchall())
        count = len(columns[0])
        if count == last - first + 1:
            order: np.ndarray | list[Any] = np.arange(first, last + 1, dtype=np.int64)
        else:
            order = _int_column(conn.execute(_INDICES_SQL, bounds).fetchone()[0], count, exact=True)
    else:
        (count, index, extra_count, whole_returns, packed, metas,
         stamps) = conn.execute(_AGGREGATES_SQL, bounds).fetchone()
        if not count:
            return None
        columns = _packed_columns(packed)
        if columns is None:
            return _rows_piece(conn.execute(_ROWS_SQL, bounds).fetchall())
        order = _int_column(index, count, exact=True)
    lengths, success = columns
    returns = _int_column(whole_returns, count) if "x" not in whole_returns else [
        r for (r,) in conn.execute(_RETURNS_SQL, bounds).fetchall()]
    if type(order) is not np.ndarray:
        order = np.array(order, dtype=np.int64)  # (SQLite's integers: all within int64)
    wall_s = joined_epoch_seconds(stamps, count, _SEP)
    if (any(len(c) != count for c in (order, returns, lengths, success))
            or (wall_s is None and stamps.count(_SEP) != count - 1)
            or bool((order[1:] <= order[:-1]).any())):
        # a text holding the separator, or aggregates not in the index's order: row by row
        return _rows_piece(conn.execute(_ROWS_SQL, bounds).fetchall())
    extras = conn.execute(_EXTRAS_SQL, bounds).fetchall() if extra_count else []
    return _piece(order, returns, lengths, success, metas,
                  lambda: [text for (text,) in conn.execute(_METADATA_SQL, bounds).fetchall()], extras,
                  epoch_seconds(stamps.split(_SEP)) if wall_s is None else wall_s)


def _joined(pieces: list[_Piece]) -> _Piece:
    if len(pieces) == 1:
        return pieces[0]
    if not pieces:
        return _Piece(np.empty((0, 5)), {}, [], np.empty(0, dtype=np.int64))
    keys = sorted(set().union(*(p.metadata for p in pieces)))
    metadata = {key: np.concatenate([p.metadata.get(key, np.full(len(p.table), _NAN)) for p in pieces])
                for key in keys}
    return _Piece(np.concatenate([p.table for p in pieces]), metadata, [ep for p in pieces for ep in p.by_reference],
                  np.concatenate([p.index for p in pieces]))


def load_curves(conn: sqlite3.Connection, run_id: str, agent_id: str | None, *, window: int = 100) -> CurveData:
    """The curves of stream ``(run_id, agent_id)`` from its stored episodes: the same values as
    ``CurveData.add_points`` of ``point_from_payload`` of every stored episode (success by the rule
    of ``live.curves.episode_success``, wall time to the microsecond, each numeric metadata key).
    Caller's thread; blocks for the queries (a reader thread's job), in one read transaction (its
    own when ``conn`` is in none), by pieces of ``FETCH_ROWS`` episodes between which the GIL is
    offered to other threads. The few rows whose
    extras override a column are read again, one by one, as ``decode_episode`` reads them."""
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN")  # one snapshot for every query
    try:
        return _load_curves(conn, (run_id, stored_agent(agent_id)), window)
    finally:
        if own:
            conn.execute("COMMIT")


def _piece_end(conn: sqlite3.Connection, key: tuple[str, str], first: int, dense: bool) -> int:
    """The last episode index of the piece from episode ``first`` on: ``FETCH_ROWS`` indices on
    when the stream's indices were dense so far (no more than ``FETCH_ROWS`` rows, found without
    a scan), else the index ``FETCH_ROWS - 1`` rows on (a scan of the index; the stream's last
    when fewer are left)."""
    if dense:
        return min(first + FETCH_ROWS - 1, _INDEX_MAX)
    end = conn.execute(_PIECE_END_SQL, (*key, first, FETCH_ROWS - 1)).fetchone()
    return _INDEX_MAX if end is None else int(end[0])


def _load_curves(conn: sqlite3.Connection, key: tuple[str, str], window: int) -> CurveData:
    pieces = []
    first, end = conn.execute(_FIRST_SQL, key).fetchone()
    dense = filled = True
    while first is not None:
        last = min(_piece_end(conn, key, first, dense), end)
        piece = _read_piece(conn, key, first, last, filled)
        if piece is not None:
            pieces.append(piece)
            dense = len(piece.table) >= FETCH_ROWS // 2
            filled = len(piece.table) == last - first + 1
        if last >= end:  # (the stream's last episode read)
            break
        first = conn.execute(_NEXT_SQL, (*key, last)).fetchone()[0]
        if first is not None:
            time.sleep(0)  # let a waiting thread (the GUI's) take the GIL now
    table, metadata, by_reference, index = _joined(pieces)
    for episode_index in by_reference:
        _patch_by_reference(conn, key, episode_index, table, index, metadata)
    metadata = {name: metadata[name] for name in sorted(metadata)}  # the order add_points gives them
    if len(table) > 1 and not bool((table[1:, 0] > table[:-1, 0]).all()):
        return _points_curves(table, index, metadata, window)
    return CurveData.from_columns(table[:, 0], table[:, 1], table[:, 2], table[:, 3], table[:, 4], metadata,
                                  window=window)


def _points_curves(table: np.ndarray, index: np.ndarray, metadata: dict[str, np.ndarray], window: int) -> CurveData:
    """The curves of rows whose indices float64 does not tell apart (beyond 2**53, e.g. near
    -2**63): what the live path gives, ``CurveData.add_points`` of one point per row (its exact
    index, the row's finite metadata values), rather than ``from_columns``, which keeps one row
    per float64 index."""
    names = list(metadata)
    columns = [metadata[name].tolist() for name in names]
    points = [EpisodePoint(episode_index, total_reward, length, success, wall_s,
                           {name: column[row] for name, column in zip(names, columns) if column[row] == column[row]})
              for row, (episode_index, (_, total_reward, length, success, wall_s))
              in enumerate(zip(index.tolist(), table.tolist()))]
    data = CurveData(window=window)
    data.add_points(points)
    return data


def _patch_by_reference(conn: sqlite3.Connection, key: tuple[str, str], episode_index: int, table: np.ndarray,
                        index: np.ndarray, metadata: dict[str, np.ndarray]) -> None:
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
    at = int(np.searchsorted(index, episode_index))
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
