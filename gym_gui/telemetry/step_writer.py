"""Writing step rows into the version 4 layout (``step_layout``): streams, interned values, spans (Qt-free).

Every writer of steps (the sink's ``write_batch``, the record API, the conversion of an existing-app
file) hands its rows in the version 3 shape -- ``(run_id, agent_id, seq_id, episode_index, ...,
info_json, render_payload_json, extra_json, ts_iso, *declared generic columns)`` as
``sqlite_rows.encode_step`` makes them -- to ``StepRowWriter.insert``, inside its write transaction.
The writer:

- maps ``(run_id, agent_id)`` to the stream's integer key (kept in memory; a new stream is
  ``INSERT OR IGNORE``-d into ``stream_keys`` and read back, so a second writing process agrees);
- replaces ``info_json`` / ``render_payload_json`` texts by a reference into ``step_values``: every
  new text of a stream until the stream holds ``MAX_VALUES_PER_STREAM`` values (after that new
  texts stay inline), texts longer than ``MAX_INTERNED_CHARS`` always inline;
- (version 5) splits an info text that is not interned and ends in a number (``info_numbers``), in
  a row without extras, into its template, interned, and the number: ``info_json`` holds the number,
  ``extra_json`` the template's ref as a BLOB (``step_layout.SPLIT_SQL``); once the stream has
  interned ``SPLIT_AFTER_TEXTS`` such texts whole (or has the template already): a constant info
  stays one interned text, an info whose numbers change every step costs a number and a short ref;
- stores a canonical ``ts_iso`` as integer microseconds minus the stream's ``ts_base_us``;
- upserts ``episode_spans`` with the batch's lowest and highest seq_id of each episode.

The in-memory maps are dropped when another connection committed (``PRAGMA data_version``) and by
``forget`` (the store's own deletions). One writer per write connection: ``register`` /
``writer_for``; writing thread only, under the store's write lock.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections import OrderedDict
from typing import Any, Sequence

from gym_gui.telemetry.events import TelemetryEvent
from gym_gui.telemetry.info_numbers import number_after, ref_blob, split_info
from gym_gui.telemetry.sqlite_batch import MultiRowInsert
from gym_gui.telemetry.sqlite_rows import NO_AGENT, encode_step
from gym_gui.telemetry.step_layout import (
    MAX_INTERNED_CHARS,
    MAX_VALUES_PER_STREAM,
    STEP_ROWS_TABLE,
    parse_ts_us,
)

__all__ = ["SPLIT_AFTER_TEXTS", "STEP_ROW_INSERT", "StepRowWriter", "forget", "register", "unregister", "writer_for"]

#: Multi-row ``INSERT OR IGNORE`` into ``step_rows`` (``extra_json`` nearly always NULL).
STEP_ROW_INSERT = MultiRowInsert(STEP_ROWS_TABLE, "extra_json")
_WIDTH = len(STEP_ROW_INSERT.names)  # physical columns; a v3 row has one more (run_id, agent_id -> stream)
#: The physical columns ``insert`` builds rows of (``extra_json`` dropped when no row of the batch has
#: one): these, in this order, or ``insert`` takes its general path (a declared generic column).
_FUSED_NAMES = ("stream", "seq_id", "episode_index", "step_index", "action_json", "observation_json", "reward",
                "terminated", "truncated", "info_json", "render_payload_json", "extra_json", "ts_us")
_FUSED = STEP_ROW_INSERT.names == _FUSED_NAMES
_EXTRA_AT = _FUSED_NAMES.index("extra_json")
#: Texts that ``split_info`` could split a stream interns whole before it splits new ones.
SPLIT_AFTER_TEXTS = 16
#: What ``sqlite_rows.encode_step`` keeps in ``extra_json`` for a reward of -0.0 (its column holds 0.0).
_NEG_ZERO_REWARD = '{"reward":-0.0}'
_copysign = math.copysign
_UPSERT_SPAN = (
    "INSERT INTO episode_spans (stream, episode_index, first_seq, last_seq) VALUES (?,?,?,?) "
    "ON CONFLICT (stream, episode_index) DO UPDATE SET first_seq = MIN(first_seq, excluded.first_seq), "
    "last_seq = MAX(last_seq, excluded.last_seq)"
)
_MAX_CACHED_STREAMS = 64


class _Stream:
    __slots__ = ("stream", "base_us", "values", "next_ref", "last", "split_texts", "last_split")

    def __init__(self, stream: int, base_us: int) -> None:
        self.stream = stream
        self.base_us = base_us
        self.values: dict[str, int] | None = None  # loaded on first use
        self.next_ref = 0
        self.last: tuple[int, str] | None = None  # the newest interned (ref, text)
        self.split_texts = 0  # interned whole texts that split_info splits
        self.last_split: tuple[str, bytes] | None = None  # the newest split's interned template, its ref's BLOB


class StepRowWriter:
    """Maps version 3 step rows to ``step_rows`` (module doc). Writing thread, inside a transaction."""

    def __init__(self) -> None:
        self._streams: OrderedDict[tuple[str, str], _Stream] = OrderedDict()
        self._data_version: int | None = None

    def forget(self) -> None:
        """Drop the interned values (after a deletion of ``step_values`` rows). Writing thread."""
        for state in self._streams.values():
            state.values = None

    def _check(self, conn: sqlite3.Connection) -> None:
        version = int(conn.execute("PRAGMA data_version").fetchone()[0])
        if version != self._data_version:
            self._data_version = version
            self.forget()

    def _stream(self, conn: sqlite3.Connection, run_id: str, agent_id: str, ts_iso: Any) -> _Stream:
        """The stream's state, checked against the file once per ``insert`` (a rolled-back key or value
        of an earlier transaction, or values another deletion removed, make it read again)."""
        key = (run_id, agent_id)
        state = self._streams.get(key)
        if state is not None:
            self._streams.move_to_end(key)
            found = conn.execute("SELECT ts_base_us FROM stream_keys WHERE stream = ? AND run_id = ? AND agent_id = ?",
                                 (state.stream, run_id, agent_id)).fetchone()
            if found is not None and int(found[0]) == state.base_us:
                if state.values is not None and state.last is not None and conn.execute(
                        "SELECT json FROM step_values WHERE stream = ? AND ref = ?",
                        (state.stream, state.last[0])).fetchone() != (state.last[1],):
                    state.values = None
                return state
            del self._streams[key]
        found = conn.execute("SELECT stream, ts_base_us FROM stream_keys WHERE run_id = ? AND agent_id = ?",
                             key).fetchone()
        if found is None:
            conn.execute("INSERT OR IGNORE INTO stream_keys (run_id, agent_id, ts_base_us) VALUES (?,?,?)",
                         (run_id, agent_id, parse_ts_us(ts_iso) or 0))
            found = conn.execute("SELECT stream, ts_base_us FROM stream_keys WHERE run_id = ? AND agent_id = ?",
                                 key).fetchone()
        state = _Stream(int(found[0]), int(found[1]))
        self._streams[key] = state
        if len(self._streams) > _MAX_CACHED_STREAMS:
            self._streams.popitem(last=False)
        return state

    @staticmethod
    def _load(conn: sqlite3.Connection, state: _Stream) -> dict[str, int]:
        values: dict[str, int] = {}
        state.last = None
        state.last_split = None
        split = 0
        for ref, text in conn.execute("SELECT ref, json FROM step_values WHERE stream = ? ORDER BY ref",
                                      (state.stream,)):
            values[text] = ref
            state.last = (ref, text)
            if text[-1:] == "}" and split_info(text) is not None:
                split += 1
        state.split_texts = split
        state.values = values
        state.next_ref = 0 if state.last is None else state.last[0] + 1
        return values

    def insert(self, conn: sqlite3.Connection, rows: Sequence[Any]) -> int:
        """Insert step ``rows`` (in order) into ``step_rows``; returns how many were new (``INSERT OR
        IGNORE`` on (stream, seq_id)). Writing thread, inside its transaction; blocks on SQLite.

        An item is a version 3 shaped row (missing trailing generic columns are NULL) or, from
        ``sqlite_batch.plan_batch`` when ``FUSED_STEP_EVENTS``, a STEP_APPENDED event whose payload is
        a StepPayload with int action and observation: its row is made here in one pass (what
        ``sqlite_rows.encode_step`` would give, without the intermediate tuple).
        """
        if not rows:
            return 0
        self._check(conn)
        if not _FUSED:  # declared generic columns: the general path
            return self._insert_wide(conn, rows)
        flat: list[Any] = []
        any_extra = False
        new_values: list[tuple[int, int, str]] = []
        spans: dict[tuple[int, int], list[int]] = {}
        run_id: Any = None
        agent_id: Any = None
        state: _Stream | None = None
        values: dict[str, int] = {}
        stream = base = 0
        checked: dict[tuple[Any, Any], _Stream] = {}
        parse = parse_ts_us
        last_prefix = ""  # the seconds of the previous canonical timestamp, as text and as microseconds
        last_us = 0
        span: list[int] | None = None
        span_stream = span_ep = None
        event_type = TelemetryEvent
        neg_zero = _NEG_ZERO_REWARD
        interned = _interned
        stored_info = _stored_info
        max_values, max_chars = MAX_VALUES_PER_STREAM, MAX_INTERNED_CHARS
        copysign = _copysign
        for n, row in enumerate(rows):
            if type(row) is event_type:
                run, agent, seq, ts = row.run_id, row.agent_id, row.seq_id, row.ts_iso
                if agent is None:
                    agent = NO_AGENT
                # int action and observation are bound as they are: their TEXT columns' affinity stores
                # the decimal text ``int.__repr__`` gives (what encode_step binds), without a str made here
                ep, si, action, observation, reward, term, trunc, info, render = row.payload.fields
                term = 1 if term else 0
                trunc = 1 if trunc else 0
                if render is None:
                    render = "null"
                extra = neg_zero if reward == 0.0 and type(reward) is float and copysign(1.0, reward) < 0.0 else None
            else:
                run, agent, seq, ep, si, action, observation, reward, term, trunc, info, render, extra, ts = row[:14]
            if run != run_id or agent != agent_id or state is None:
                run_id, agent_id = run, agent
                state = checked.get((run_id, agent_id))
                if state is None:
                    state = checked[(run_id, agent_id)] = self._stream(conn, run_id, agent_id, ts)
                stream, base = state.stream, state.base_us
                values = state.values if state.values is not None else self._load(conn, state)
            if info is not None:
                ref = values.get(info)
                if ref is not None:
                    info = ref
                elif extra is None:
                    info, extra = stored_info(info, values, state, new_values, True)
                else:
                    info = stored_info(info, values, state, new_values, False)[0]
            if extra is not None:
                any_extra = True
            if render is not None:
                ref = values.get(render)
                if ref is not None:
                    render = ref
                elif state.next_ref < max_values and type(render) is str and len(render) <= max_chars:
                    render = interned(render, values, state, new_values)
            # a canonical ts_iso (``parse_ts_us``) of the same second as the one before: its seconds are known
            if type(ts) is str and len(ts) == 32 and ts[:19] == last_prefix:
                fraction = ts[20:26]
                if ts[19] == "." and ts.endswith("+00:00") and fraction.isdigit() and fraction.isascii():
                    ts = last_us + int(fraction) - base
                else:
                    us = parse(ts)
                    ts = ts if us is None else us - base
            else:
                us = parse(ts)
                if us is not None:
                    last_prefix, last_us = ts[:19], us - us % 1_000_000
                    ts = us - base
            if ep is not None:
                if ep != span_ep or stream != span_stream or span is None:
                    span_stream, span_ep = stream, ep
                    span = spans.get((stream, ep))
                    if span is None:
                        span = spans[(stream, ep)] = [seq, seq]
                        flat += (stream, seq, ep, si, action, observation, reward, term, trunc, info, render, extra,
                                 ts)
                        continue
                if type(seq) is int:
                    if seq < span[0]:
                        span[0] = seq
                    elif seq > span[1]:
                        span[1] = seq
            flat += (stream, seq, ep, si, action, observation, reward, term, trunc, info, render, extra, ts)
        if new_values:
            conn.executemany("INSERT INTO step_values (stream, ref, json) VALUES (?,?,?)", new_values)
        if not any_extra:  # (no bound NULLs: the statements write a NULL literal)
            del flat[_EXTRA_AT::_WIDTH]
        inserted = STEP_ROW_INSERT.insert_narrow(conn, flat, {}, full=any_extra)
        if spans:
            conn.executemany(_UPSERT_SPAN, [(s, e, lo, hi) for (s, e), (lo, hi) in spans.items()])
        return inserted

    def _insert_wide(self, conn: sqlite3.Connection, rows: Sequence[Any]) -> int:
        """``insert`` for a ``step_rows`` with more columns than the one-pass rows know (a declared
        generic one): every item as its version 3 row (an event through ``encode_step``)."""
        rows = [encode_step(r) if type(r) is TelemetryEvent else r for r in rows]
        out: list[tuple[Any, ...]] = []
        new_values: list[tuple[int, int, str]] = []
        spans: dict[tuple[int, int], list[int]] = {}
        run_id: Any = None
        agent_id: Any = None
        state: _Stream | None = None
        values: dict[str, int] = {}
        stream = base = 0
        checked: dict[tuple[Any, Any], _Stream] = {}
        parse = parse_ts_us
        for row in rows:
            if row[0] != run_id or row[1] != agent_id or state is None:
                run_id, agent_id = row[0], row[1]
                state = checked.get((run_id, agent_id))
                if state is None:
                    state = checked[(run_id, agent_id)] = self._stream(conn, run_id, agent_id, row[13])
                stream, base = state.stream, state.base_us
                values = state.values if state.values is not None else self._load(conn, state)
            info, render, extra = row[10], row[11], row[12]
            if info is not None:
                info, split = _stored_info(info, values, state, new_values, extra is None)
                if split is not None:
                    extra = split
            if render is not None:
                render = _interned(render, values, state, new_values)
            ts = row[13]
            us = parse(ts)
            seq, ep = row[2], row[3]
            if ep is not None:
                span = spans.get((stream, ep))
                if span is None:
                    spans[(stream, ep)] = [seq, seq]
                elif type(seq) is int:
                    if seq < span[0]:
                        span[0] = seq
                    elif seq > span[1]:
                        span[1] = seq
            physical = (stream, seq, ep, row[4], row[5], row[6], row[7], row[8], row[9], info, render, extra,
                        ts if us is None else us - base, *row[14:])
            out.append(physical + (None,) * (_WIDTH - len(physical)) if len(physical) < _WIDTH else physical)
        if new_values:
            conn.executemany("INSERT INTO step_values (stream, ref, json) VALUES (?,?,?)", new_values)
        inserted = STEP_ROW_INSERT.insert(conn, out)
        if spans:
            conn.executemany(_UPSERT_SPAN, [(s, e, lo, hi) for (s, e), (lo, hi) in spans.items()])
        return inserted


def _stored_info(text: Any, values: dict[str, int], state: _Stream, new_values: list[tuple[int, int, str]],
                 may_split: bool) -> tuple[Any, bytes | None]:
    """``(info_json, extra_json)`` of a step's info text (module doc): the reference of the whole text
    and None, else (``may_split``: the row has no extras) its number and its template's reference as
    a BLOB (``split_info``, ``ref_blob``), else the text inline and None. Writing thread."""
    ref = values.get(text)
    if ref is not None:
        return ref, None
    if type(text) is not str or len(text) > MAX_INTERNED_CHARS:
        return text, None
    if not may_split:
        return _interned(text, values, state, new_values), None
    last = state.last_split  # a learner's info: the same template as the step before, another number
    if last is not None and text.startswith(last[0]):
        number = number_after(text, len(last[0]))
        if number is not None:
            return number, last[1]
    split = split_info(text)
    if split is not None:
        template, number = split
        ref = values.get(template)
        if ref is None and state.split_texts >= SPLIT_AFTER_TEXTS:
            stored = _interned(template, values, state, new_values)
            if stored is template:
                return text, None
            ref = stored
        if ref is not None:
            blob = ref_blob(ref)
            state.last_split = (template, blob)
            return number, blob
        if state.next_ref < MAX_VALUES_PER_STREAM:
            state.split_texts += 1
    return _interned(text, values, state, new_values), None


def _interned(text: Any, values: dict[str, int], state: _Stream, new_values: list[tuple[int, int, str]]) -> Any:
    """The stream's reference of ``text``, interned now (queued in ``new_values``) while it fits and
    the stream has room, else ``text`` itself (stored inline). Writing thread."""
    ref = values.get(text)
    if ref is None:
        if type(text) is not str or len(text) > MAX_INTERNED_CHARS or state.next_ref >= MAX_VALUES_PER_STREAM:
            return text
        ref = values[text] = state.next_ref
        state.next_ref += 1
        new_values.append((state.stream, ref, text))
        state.last = (ref, text)
    return ref


_registry: dict[int, tuple[sqlite3.Connection, StepRowWriter]] = {}
_registry_lock = threading.Lock()


def register(conn: sqlite3.Connection) -> StepRowWriter:
    """Give the write connection ``conn`` its own writer (kept until ``unregister``). Any thread."""
    with _registry_lock:
        found = _registry.get(id(conn))
        if found is not None and found[0] is conn:
            return found[1]
        writer = StepRowWriter()
        _registry[id(conn)] = (conn, writer)
        return writer


def unregister(conn: sqlite3.Connection) -> None:
    """Forget the writer of ``conn`` (before it is closed). Any thread."""
    with _registry_lock:
        found = _registry.get(id(conn))
        if found is not None and found[0] is conn:
            del _registry[id(conn)]


def writer_for(conn: sqlite3.Connection) -> StepRowWriter:
    """The registered writer of ``conn``, else a new one for this call (it reads its maps from the file)."""
    found = _registry.get(id(conn))
    if found is not None and found[0] is conn:
        return found[1]
    return StepRowWriter()


def forget(conn: sqlite3.Connection) -> None:
    """After the caller deleted ``step_values`` rows on ``conn``: drop its writer's interned values."""
    found = _registry.get(id(conn))
    if found is not None and found[0] is conn:
        found[1].forget()
