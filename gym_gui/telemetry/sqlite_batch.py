"""How ``TelemetrySQLiteStore.write_batch`` turns a batch of events into rows (Qt-free; the sink's hot path).

``plan_batch`` encodes a batch before the write lock is taken; ``MultiRowInsert`` writes its steps
and episodes with few multi-row statements. See docs/performance.md ("Durable path").
"""

from __future__ import annotations

import json
import sqlite3
from bisect import bisect_left
from itertools import chain
from typing import Any, Iterable, Iterator, Sequence

import attrs

from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.sqlite_rows import NO_AGENT, dump_json, encode_episode, encode_step, quarantine_json, stored_agent
from gym_gui.telemetry.sqlite_rows import _encode_step_core
from gym_gui.telemetry.sqlite_rows import encode_step as _encode_step
from gym_gui.telemetry.step_payload import _INT_MAX, _INT_MIN, StepPayload
from gym_gui.telemetry.sqlite_runs import FOLDED_TOPICS, RUN_COLUMNS, apply_run_event, new_run
from gym_gui.telemetry.tables import EPISODES, RUNS, STEPS, Table, episode_app_values
from gym_gui.telemetry.utf8_text import storable_ids
from gym_gui.telemetry.topic_specs import RowKind, TopicSpecError, check_durable_rows, specs

_STEPS, _EPISODES, _RUN_EVENTS = RowKind.STEPS, RowKind.EPISODES, RowKind.RUN_EVENTS

__all__ = [
    "ENSURE_RUN",
    "EPISODE_ROWS",
    "FUSED_STEP_EVENTS",
    "INSERT_RUN_EVENT",
    "MultiRowInsert",
    "Plan",
    "SEQ_CONFLICT",
    "UPSERT_RUN",
    "UPSERT_STREAM",
    "WriteResult",
    "check_topics",
    "error_text",
    "is_retryable_error",
    "keep_conflicts",
    "plan_batch",
    "quarantine_row",
    "sanitised",
    "sanitised_row",
]

#: The most step rows one INSERT statement takes; batches are cut into statements of 256, 128, ..., 1 rows.
_MAX_ROWS_PER_STATEMENT = 256
INSERT_RUN_EVENT = "INSERT OR IGNORE INTO run_events VALUES (?,?,?,?,?,?,?)"
ENSURE_RUN = "INSERT OR IGNORE INTO runs (run_id, status, created_at, updated_at) VALUES (?, 'running', ?, ?)"
UPSERT_RUN = RUNS.insert_sql("INSERT OR REPLACE", RUN_COLUMNS)
UPSERT_STREAM = (
    "INSERT INTO streams (run_id, agent_id, max_seq_id, first_ts_iso, last_ts_iso) VALUES (?,?,?,?,?) "
    "ON CONFLICT (run_id, agent_id) DO UPDATE SET "
    "last_ts_iso = CASE WHEN excluded.max_seq_id > max_seq_id THEN excluded.last_ts_iso ELSE last_ts_iso END, "
    "max_seq_id = MAX(max_seq_id, excluded.max_seq_id)"
)

# SQLite primary result codes after which the same batch can succeed later.
_RETRYABLE_CODES = frozenset({5, 6, 7, 10, 13, 14, 15})  # BUSY LOCKED NOMEM IOERR FULL CANTOPEN PROTOCOL
_RETRYABLE_TEXT = ("locked", "busy", "disk is full", "disk i/o", "unable to open", "out of memory")


def is_retryable_error(exc: BaseException) -> bool:
    """True for SQLite errors that a later retry of the same batch can overcome (locked, busy, full, I/O)."""
    if not isinstance(exc, sqlite3.Error):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return (code & 0xFF) in _RETRYABLE_CODES
    text = str(exc).lower()
    return any(t in text for t in _RETRYABLE_TEXT)


@attrs.frozen(slots=True)
class WriteResult:
    """What one ``write_batch`` committed.

    ``inserted``: new rows in steps/episodes/run_events; ``duplicates``: events already stored;
    ``rejected``: events that could not be stored as normal rows, with the reason -- they are kept in
    ``run_events`` with an ``error`` text unless ``lost`` says that failed too;
    ``completed_runs``: runs whose RUN_COMPLETED was in the batch; ``conflicts``: events whose key
    (stream and seq_id; an episode's stream and index) is stored with other content -- not stored in
    their stream (nor counted as duplicates), kept aside in ``run_events`` with an error starting
    ``seq_conflict:`` (one that cannot be kept aside either is in ``lost``).
    """

    events: int
    inserted: int
    duplicates: int
    rejected: tuple[tuple[TelemetryEvent, str], ...]
    lost: tuple[tuple[TelemetryEvent, str], ...]
    completed_runs: tuple[str, ...]
    conflicts: tuple[tuple[TelemetryEvent, str], ...] = ()


@attrs.define(slots=True)
class Plan:
    """Rows of one batch, encoded before the write lock is taken."""

    steps: list[Any] = attrs.Factory(list)  # version 3 rows; a StepPayload event as it is (FUSED_STEP_EVENTS)
    episodes: list[tuple[TelemetryEvent, tuple[Any, ...]]] = attrs.Factory(list)
    run_events: list[tuple[Any, ...]] = attrs.Factory(list)
    lifecycle: list[TelemetryEvent] = attrs.Factory(list)
    rejected: list[tuple[TelemetryEvent, str]] = attrs.Factory(list)
    unstored: list[tuple[TelemetryEvent, str]] = attrs.Factory(list)
    # (run_id, stored agent) -> [max_seq_id, first_ts_iso, ts_iso of max_seq_id]
    streams: dict[tuple[str, str], list[Any]] = attrs.Factory(dict)
    completed_runs: list[str] = attrs.Factory(list)
    source: Sequence[TelemetryEvent] = ()  # the batch's events (to name the ones in conflict)
    run_event_sources: list[TelemetryEvent] = attrs.Factory(list)  # the event of each run_events row
    conflicts: list[tuple[TelemetryEvent, str]] = attrs.Factory(list)


def statement_slices(total: int) -> Iterator[tuple[int, int]]:
    """``(start, size)`` of the statements that insert ``total`` rows: whole statements of
    ``_MAX_ROWS_PER_STATEMENT`` rows, then one per set bit of the remainder (``MultiRowInsert``'s
    prepared sizes)."""
    start, size = 0, _MAX_ROWS_PER_STATEMENT
    while start < total:
        while total - start < size:
            size //= 2
        yield start, size
        start += size


def statements_by_size(prefix: str, one: str) -> dict[int, str]:
    """``prefix`` and ``one`` (a row's ``(?,...)``) repeated 1, 2, 4, ..., ``_MAX_ROWS_PER_STATEMENT``
    times, by that count (the sizes ``statement_slices`` gives). Pure."""
    out: dict[int, str] = {}
    size = _MAX_ROWS_PER_STATEMENT
    while size:
        out[size] = prefix + ",".join([one] * size)
        size //= 2
    return out


class MultiRowInsert:
    """``INSERT`` statements of 1, 2, 4, ..., ``_MAX_ROWS_PER_STATEMENT`` rows of one table.

    The columns are the table's written ones (``tables``), by name. ``null_column``: one that is
    nearly always NULL (``extra_json``). Binding ``None`` costs sqlite3 a failed adapter look-up
    (about ten times an int), so a statement whose rows all have None there writes a literal NULL
    instead and binds one value less per row.
    """

    def __init__(self, table: Table, null_column: str) -> None:
        names = table.insert_names()
        prefix = f"INSERT OR IGNORE INTO {table.name} ({', '.join(names)}) VALUES "
        self.names = names
        self.columns = columns = len(names)
        self.null_at = null_at = names.index(null_column)
        marks = ["?"] * columns
        one = "(" + ",".join(marks) + ")"
        marks[null_at] = "NULL"
        one_null = "(" + ",".join(marks) + ")"
        self.sql = statements_by_size(prefix, one)
        self.sql_null = statements_by_size(prefix, one_null)

    def insert(self, conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> int:
        """Insert ``rows`` (in order) with few statements; returns how many were new.

        Whole statements of ``_MAX_ROWS_PER_STATEMENT`` rows, then one statement per set bit of the
        remainder (at most 8 more), never one statement per row: every statement releases and
        re-takes the GIL, and against the busy proxy thread each re-take can wait (see
        docs/performance.md), while one statement of n rows binds and steps like n one-row ones.
        """
        width, null_at = self.columns, self.null_at
        inserted = 0
        for start, size in statement_slices(len(rows)):
            values = list(chain.from_iterable(rows[start:start + size]))
            if values[null_at::width].count(None) == size:  # (count compares by identity first: cheap)
                del values[null_at::width]
                inserted += conn.execute(self.sql_null[size], values).rowcount
            else:
                inserted += conn.execute(self.sql[size], values).rowcount
        return inserted


    def insert_narrow(self, conn: sqlite3.Connection, flat: list[Any], extras: dict[int, Any],
                      full: bool = False) -> int:
        """``insert`` of rows given as one flat list, each row's values but the ``null_column`` one in
        order, and ``extras``: row index -> its ``null_column`` value where that is not None. Returns
        how many rows were new. A statement none of whose rows has an extra binds ``flat``'s slice as
        it is (no row tuples, no copy of a row). ``full``: the rows of ``flat`` have every column
        (``extras`` unused), bound as they are. Writing thread, inside its transaction."""
        if full:
            width = self.columns
            inserted = 0
            for start, size in statement_slices(len(flat) // width):
                inserted += conn.execute(self.sql[size], flat[start * width:(start + size) * width]).rowcount
            return inserted
        width = self.columns - 1
        total = len(flat) // width
        null_at = self.null_at
        marked = sorted(extras) if extras else []
        inserted = 0
        for start, size in statement_slices(total):
            end = start + size
            at = bisect_left(marked, start) if marked else 0
            if at == len(marked) or marked[at] >= end:  # no extras in these rows
                inserted += conn.execute(self.sql_null[size], flat[start * width:end * width]).rowcount
            else:
                values: list[Any] = []
                get = extras.get
                for i in range(start, end):
                    row = flat[i * width:(i + 1) * width]
                    row.insert(null_at, get(i))
                    values += row
                inserted += conn.execute(self.sql[size], values).rowcount
        return inserted


class EpisodeRowInsert(MultiRowInsert):
    """``MultiRowInsert`` of ``episodes`` that also binds the app columns (``episode_id``, ``ep_index``,
    ``worker_id``) as their rule gives them (``tables.episode_app_values``), so the insert trigger
    (schema version 6) leaves the rows be; where the rule's values cannot be told here they are
    bound NULL and the trigger sets them."""

    def __init__(self, table: Table, null_column: str) -> None:
        super().__init__(table, null_column)
        names = self.names
        self._run_at, self._ep_at = names.index("run_id"), names.index("episode_index")
        marks = ["?"] * (self.columns + len(APP_COLUMNS))
        one = "(" + ",".join(marks) + ")"
        marks[self.null_at] = marks[-1] = "NULL"  # no extras: no worker id either
        one_plain = "(" + ",".join(marks) + ")"
        prefix = f"INSERT OR IGNORE INTO {table.name} ({', '.join(names + APP_COLUMNS)}) VALUES "
        self.sql_app = statements_by_size(prefix, one)
        self.sql_app_plain = statements_by_size(prefix, one_plain)

    def insert(self, conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> int:
        """``MultiRowInsert.insert``, each row with its app columns. Writing thread, inside its transaction."""
        null_at, run_at, ep_at = self.null_at, self._run_at, self._ep_at
        inserted = 0
        for start, size in statement_slices(len(rows)):
            chunk = rows[start:start + size]
            values: list[Any] = []
            if any(row[null_at] is not None for row in chunk):
                for row in chunk:
                    values += row
                    values += episode_app_values(row[run_at], row[ep_at], row[null_at])
                inserted += conn.execute(self.sql_app[size], values).rowcount
                continue
            for row in chunk:  # no extras: the statement writes NULL for extra_json and worker_id
                values += row[:null_at]
                values += row[null_at + 1:]
                values += episode_app_values(row[run_at], row[ep_at], None)[:2]
            inserted += conn.execute(self.sql_app_plain[size], values).rowcount
        return inserted


#: The app columns ``EpisodeRowInsert`` binds (the trigger's; ``tables.EPISODES`` declares them).
APP_COLUMNS = EPISODES.names("episode_id", "ep_index", "worker_id")
EPISODE_ROWS = EpisodeRowInsert(EPISODES, "extra_json")
#: ``plan_batch`` hands a STEP_APPENDED event whose payload is a StepPayload with int action and
#: observation to the step writer as it is (``step_writer.StepRowWriter.insert`` makes its row in one
#: pass) when the step columns are the hand-written encoder's only (no declared generic column).
FUSED_STEP_EVENTS = _encode_step is _encode_step_core and STEPS.insert_names() == STEPS.core_insert_names()


def error_text(exc: BaseException) -> str:
    """``Type: message`` of an exception."""
    return f"{type(exc).__name__}: {exc}"


def quarantine_row(evt: TelemetryEvent, error: str) -> tuple[Any, ...]:
    """The ``run_events`` row that keeps a rejected event with its reason."""
    return (evt.run_id, stored_agent(evt.agent_id), evt.seq_id, evt.topic.name, evt.ts_iso,
            quarantine_json(evt.payload), error)


def sanitised(text: str) -> str:
    """``text`` with lone surrogates escaped (storable as UTF-8)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


#: The reason of an event whose run or agent id SQLite cannot store (``storable_ids``).
_UNSTORABLE_ID_ERROR = "unstorable_id: its run or agent id holds a lone surrogate, which no UTF-8 text can hold"


def sanitised_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """``row`` with every text ``sanitised``."""
    return tuple(sanitised(v) if isinstance(v, str) else v for v in row)


def check_topics() -> None:
    """Raise TopicSpecError when a declared durable topic cannot be written: no row kind, or a
    lifecycle topic that ``sqlite_runs.apply_run_event`` does not fold. Any thread (start-up)."""
    check_durable_rows(frozenset(RowKind))
    unfolded = [s.topic.name for s in specs() if s.durable and s.lifecycle and s.topic not in FOLDED_TOPICS]
    if unfolded:
        raise TopicSpecError(f"lifecycle topics {unfolded} have no fold into the runs row (sqlite_runs.apply_run_event)")


def plan_batch(events: Iterable[TelemetryEvent]) -> Plan:
    """Encode a batch: step and episode rows, run events, lifecycle events, rejections, stream cursors.

    Each event is mapped as its ``TopicSpec`` says (``topic_specs``: normaliser, row kind,
    lifecycle); a topic that is not durable is ``unstored``.
    """
    plan = Plan(source=events if isinstance(events, Sequence) else ())
    steps_append = plan.steps.append
    streams = plan.streams
    by_topic = {s.topic: s for s in specs()}
    step_spec = by_topic.get(Topic.STEP_APPENDED)
    fast_steps = step_spec is not None and step_spec.row is _STEPS and step_spec.normalise is None
    step_topic = Topic.STEP_APPENDED if fast_steps else None  # the hot path: no look-up, no normaliser
    run_id: str | None = None  # the stream of the previous event, and its cursor (events come in runs)
    agent_id: str | None = None
    stream: list[Any] = []
    fused = FUSED_STEP_EVENTS
    for evt in events:
        new_stream = evt.run_id != run_id or evt.agent_id != agent_id
        if new_stream and not storable_ids(evt.run_id, evt.agent_id):
            # kept aside under its ids escaped (``sanitised``); no stream, run row or owner of its own
            plan.rejected.append((evt, _UNSTORABLE_ID_ERROR))
            plan.run_events.append(sanitised_row(quarantine_row(evt, _UNSTORABLE_ID_ERROR)))
            plan.run_event_sources.append(evt)
            continue
        topic = evt.topic
        try:
            if topic is step_topic:
                p = evt.payload
                if (fused and type(p) is StepPayload and type(action := p.fields[2]) is int
                        and type(observation := p.fields[3]) is int
                        and _INT_MIN <= action <= _INT_MAX and _INT_MIN <= observation <= _INT_MAX):
                    steps_append(evt)  # its row is made by the step writer (FUSED_STEP_EVENTS), which binds them
                else:  # (an int beyond 64 bits cannot be bound: encode_step writes its digits)
                    steps_append(encode_step(evt))
            else:
                declared = by_topic.get(topic)
                if declared is None or not declared.durable:
                    # e.g. OVERFLOW: a notice about another event's seq_id, not a stream event itself
                    plan.unstored.append((evt, f"topic {topic.name} is not persisted"))
                    continue
                if declared.normalise is not None:
                    evt = declared.normalise(evt)
                row = declared.row
                if row is _STEPS:
                    steps_append(encode_step(evt))
                elif row is _EPISODES:
                    plan.episodes.append((evt, encode_episode(evt)))
                else:  # a run_events row and/or the runs row
                    if declared.lifecycle:
                        apply_run_event(new_run(evt.run_id, evt.ts_iso), evt)  # raises now if it cannot be folded
                    if row is _RUN_EVENTS:
                        plan.run_events.append(
                            (evt.run_id, stored_agent(evt.agent_id), evt.seq_id, topic.name, evt.ts_iso,
                             dump_json(evt.payload), None)
                        )
                        plan.run_event_sources.append(evt)
                    if topic is Topic.RUN_COMPLETED:
                        plan.completed_runs.append(evt.run_id)
                    if declared.lifecycle:
                        plan.lifecycle.append(evt)
        except Exception as exc:  # malformed payload: keep it in run_events with the reason
            error = error_text(exc)
            plan.rejected.append((evt, error))
            plan.run_events.append(quarantine_row(evt, error))
            plan.run_event_sources.append(evt)
        if new_stream:
            run_id, agent_id = evt.run_id, evt.agent_id
            key = (run_id, NO_AGENT if agent_id is None else agent_id)
            found = streams.get(key)
            if found is None:
                streams[key] = stream = [evt.seq_id, evt.ts_iso, evt.ts_iso]
                continue
            stream = found
        if evt.seq_id > stream[0]:
            stream[0] = evt.seq_id
            stream[2] = evt.ts_iso
    return plan


#: The reason of an event whose key is stored with other content (two writers made the same seq_id).
SEQ_CONFLICT = "seq_conflict"
#: The columns each table's insert binds, in order; the first three are its primary key.
_INSERT_COLUMNS = {
    "steps": STEPS.insert_names(),  # the view's (version 3) columns
    "episodes": EPISODE_ROWS.names,
    "run_events": ("run_id", "agent_id", "seq_id", "topic", "ts_iso", "payload_json", "error"),
}


def _canonical_json(text: str) -> str | None:
    try:
        return json.dumps(json.loads(text), sort_keys=True)
    except (ValueError, RecursionError):
        return None


def _same_value(a: Any, b: Any) -> bool:
    """One column of a new row and of the stored row hold the same value (JSON text by meaning)."""
    if a == b:
        return True
    if type(a) is str and type(b) is str:
        canon = _canonical_json(a)
        return canon is not None and canon == _canonical_json(b)
    return a != a and b != b  # NaN (a typed column never holds one, but an extra might be read as such)


def _stored_rows(conn: sqlite3.Connection, table: str, rows: Sequence[tuple[Any, ...]]) -> dict[tuple[Any, ...], Any]:
    """The stored rows with the keys of ``rows``, by key: one range query per stream."""
    columns = _INSERT_COLUMNS[table]
    ranges: dict[tuple[Any, Any], list[Any]] = {}
    for row in rows:
        span = ranges.get((row[0], row[1]))
        if span is None:
            ranges[(row[0], row[1])] = [row[2], row[2]]
        elif type(row[2]) is int:
            span[0], span[1] = min(span[0], row[2]), max(span[1], row[2])
    stored: dict[tuple[Any, ...], Any] = {}
    sql = (f"SELECT {', '.join(columns)} FROM {table} WHERE run_id = ? AND agent_id = ? "
           f"AND {columns[2]} BETWEEN ? AND ?")
    for (run_id, agent), (low, high) in ranges.items():
        for found in conn.execute(sql, (run_id, agent, low, high)):
            stored[found[:3]] = found
    return stored


def _is_stored(conn: sqlite3.Connection, row: tuple[Any, ...]) -> bool:
    """``row`` of ``run_events`` is stored as it is."""
    found = conn.execute(f"SELECT {', '.join(_INSERT_COLUMNS['run_events'])} FROM run_events WHERE run_id = ? "
                         "AND agent_id = ? AND seq_id = ?", row[:3]).fetchone()
    return found is not None and all(_same_value(a, b) for a, b in zip(row, found))


def keep_conflicts(conn: sqlite3.Connection, plan: Plan, table: str, rows: Sequence[tuple[Any, ...]],
                   events: Sequence[TelemetryEvent | None]) -> tuple[int, list[int]]:
    """After an ``INSERT OR IGNORE`` of ``rows`` into ``table`` stored fewer rows than given: find the
    rows whose key is stored with other content and keep their events aside in ``run_events``.

    ``events[i]`` is the event of ``rows[i]`` (None: look it up in ``plan.source``). Returns (rows
    inserted into ``run_events``, indexes of the conflicting rows). Each conflict is appended to
    ``plan.conflicts`` (kept aside) or ``plan.unstored`` (its key is taken in ``run_events`` too).
    Only the miss path pays for this (one range read per stream of the batch).
    """
    stored = _stored_rows(conn, table, rows)
    by_key: dict[tuple[Any, ...], TelemetryEvent] | None = None
    inserted = 0
    conflicting: list[int] = []
    for i, row in enumerate(rows):
        found = stored.get(row[:3])
        if found is None or row == found or all(_same_value(a, b) for a, b in zip(row, found)):
            continue
        conflicting.append(i)
        evt = events[i] if i < len(events) else None
        if evt is None:
            if by_key is None:
                by_key = {(e.run_id, stored_agent(e.agent_id), e.seq_id): e for e in plan.source
                          if e.topic is Topic.STEP_APPENDED}
            evt = by_key.get(row[:3])
            if evt is None:  # pragma: no cover - every step row comes from an event of the batch
                continue
        if table == "episodes":
            what = (f"episode_index {row[2]} of the stream is already stored with other content "
                    f"(seq_id {found[_INSERT_COLUMNS['episodes'].index('seq_id')]}")
        else:
            what = f"seq_id {row[2]} of the stream is already stored with other content ({table} row"
        error = (f"{SEQ_CONFLICT}: {what}, ts {found[_INSERT_COLUMNS[table].index('ts_iso')]}); "
                 "two writers numbered the stream")
        if table == "run_events":  # the key is taken where it would be kept aside
            kept = 0
        else:
            aside = quarantine_row(evt, error)
            kept = conn.execute(INSERT_RUN_EVENT, aside).rowcount
            if not kept and _is_stored(conn, aside):
                continue  # a replay of a conflict already kept aside: a duplicate
        if kept:
            inserted += kept
            plan.conflicts.append((evt, error))
        else:
            plan.rejected[:] = [(e, r) for e, r in plan.rejected if e is not evt]  # (a rejected event's row)
            plan.unstored.append((evt, f"{error}; its key is taken in run_events too, so it is not kept"))
    return inserted, conflicting
