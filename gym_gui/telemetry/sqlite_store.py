"""TelemetrySQLiteStore: the durable telemetry database (Qt-free).

One write connection, guarded by a lock; in the app only the DbSink thread writes (and, for the
existing gym_gui callers' record API -- ``record_step``, ``record_episode``, ... in ``record_store`` --
the record writer thread, started on the first record write). Every other
thread reads through its own thread-local connection; in WAL mode a reader sees the last committed
snapshot and never waits for the writer. All writes are idempotent (``INSERT OR IGNORE`` on the
primary keys, upserts for runs and streams), so a replayed event is not stored twice.
Tables, keys and queries: docs/schema.md.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import weakref
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.legacy_migration import prepare_store_file
from gym_gui.telemetry.record_store import RecordStoreAPI
from gym_gui.telemetry.sqlite_batch import (
    ENSURE_RUN,
    EPISODE_ROWS,
    INSERT_RUN_EVENT,
    STEP_ROWS,
    UPSERT_RUN,
    UPSERT_STREAM,
    Plan,
    WriteResult,
    error_text,
    is_retryable_error,
    keep_conflicts,
    plan_batch,
    quarantine_row,
    sanitised,
)
from gym_gui.telemetry.sqlite_records import EpisodeRecord, RunRecord, StepRecord
from gym_gui.telemetry.sqlite_rows import (
    EPISODE_READ_COLUMNS,
    STEP_READ_COLUMNS,
    decode_episode,
    decode_step,
    load_json,
    stored_agent,
)
from gym_gui.telemetry.sqlite_runs import RUN_COLUMNS, apply_run_event, decode_run, new_run
from gym_gui.telemetry.sqlite_schema import SCHEMA_VERSION, SchemaVersionError, configure_connection, migrate
from gym_gui.telemetry.stream_owners import StreamOwnersAPI

__all__ = [
    "SchemaVersionError",
    "TelemetrySQLiteStore",
    "WriteResult",
    "is_retryable_error",
]

_log = logging.getLogger(__name__)


class _ReaderSlot:
    """Holds one thread's read connection; weak-referenceable so ``close`` can find live ones."""

    __slots__ = ("conn", "__weakref__")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn


class TelemetrySQLiteStore(RecordStoreAPI, StreamOwnersAPI):
    """Runs, steps and episodes of telemetry streams in one SQLite file (see docs/schema.md).

    Two APIs on one file: the event-based one (``write_batch``, ``episode_records``,
    ``steps_for_episode``, ``events_after``, ``runs``, ...) and the existing gym_gui callers' record
    API (``record_step``, ``record_episode``, ``episodes_for_run``, ``recent_steps``, ...; see
    ``record_store.RecordStoreAPI``); each sees what the other wrote.
    Thread rules: write methods may be called from any thread but serialise on one write connection
    (in the app only the DbSink thread writes); read methods may be called from any thread, use a
    per-thread connection and never wait for a writer. Reads return immutable records (the record
    API returns the existing app's mutable dataclasses). Stream ownership (``claim_stream``, the
    proxy's ``seq_floor``) and stale runs (``mark_interrupted_runs``): ``stream_owners.StreamOwnersAPI``.
    ``before_commit`` (a callable or None) runs inside every ``write_batch`` transaction just before
    COMMIT, on the writing thread -- a test hook to hold a transaction open or slow commits down.
    Also a context manager (``with store:`` closes it, exceptions propagate).
    """

    def __init__(
        self,
        db_path: str | Path,
        *,
        batch_size: int | None = None,
        max_buffer_bytes: int | None = None,
        busy_timeout_s: float = 1.0,
        read_busy_timeout_s: float = 1.0,
    ) -> None:
        """Open (creating file and folders) and migrate the database. Caller's thread; blocks briefly.

        ``db_path``: a Path or str; ``~`` is expanded and the path resolved. ``batch_size`` (32) and
        ``max_buffer_bytes`` (2 MiB) tune the record writer thread, which starts on the first record
        write (``record_step``, ``record_episode``, a deletion), not here.
        Raises SchemaVersionError when the file has a newer schema or is not a telemetry file, and
        RuntimeError starting ``LOG622A:`` when SQLite reports a disk I/O error or a malformed file.
        """
        self._closed = True  # until opened (``__del__`` of a half-made store does nothing)
        self.path = Path(db_path).expanduser().resolve()
        self.db_path = self.path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._init_records(batch_size, max_buffer_bytes)
        self._init_owners()
        self._busy_timeout_s = busy_timeout_s
        self._read_busy_timeout_s = read_busy_timeout_s
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._readers: weakref.WeakSet[_ReaderSlot] = weakref.WeakSet()
        self._readers_lock = threading.Lock()
        self.before_commit: Callable[[], None] | None = None
        try:
            prepare_store_file(self.path)  # migrates an existing-app file (after a backup); refuses a foreign one
            self._conn = self._connect(busy_timeout_s)
            try:
                found = migrate(self._conn, str(self.path))
            except BaseException:
                self._conn.close()
                raise
        except sqlite3.DatabaseError as exc:
            text = str(exc).lower()
            if "disk i/o error" in text or "malformed" in text:
                raise RuntimeError(f"LOG622A: the telemetry database {self.path} cannot be used: {exc}") from exc
            raise
        self._closed = False
        if found != SCHEMA_VERSION:
            _log.info("telemetry database %s migrated from schema %d to %d", self.path, found, SCHEMA_VERSION)

    def __repr__(self) -> str:
        return f"<TelemetrySQLiteStore {str(self.path)!r}{' closed' if self._closed else ''}>"

    def _connect(self, busy_timeout_s: float) -> sqlite3.Connection:
        conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        try:
            configure_connection(conn, busy_timeout_s=busy_timeout_s)
        except BaseException:
            conn.close()
            raise
        return conn

    # -- writes ----------------------------------------------------------------------------------
    def write_events(self, events: Sequence[TelemetryEvent]) -> None:
        """Store events of any persisted topic in one transaction. Any thread; blocks on the write lock and disk.

        Malformed payloads are kept (``run_events.error``) and logged; SQLite errors are raised and
        nothing of the batch is committed.
        """
        result = self.write_batch(events)
        for evt, reason in result.rejected + result.lost:
            _log.warning("%s seq %d of %s/%s not stored as a normal row: %s", evt.topic.name, evt.seq_id,
                         evt.run_id, evt.agent_id, reason)

    def flush_steps(self, steps: Iterable[TelemetryEvent]) -> None:
        """Store STEP_APPENDED events in one transaction. Any thread; blocks. ValueError on another topic."""
        batch = list(steps)
        for evt in batch:
            if evt.topic is not Topic.STEP_APPENDED:
                raise ValueError(f"flush_steps takes STEP_APPENDED events, got {evt.topic.name}")
        self.write_events(batch)

    def write_episode(self, episode: TelemetryEvent) -> None:
        """Store one EPISODE_FINALIZED event. Any thread; blocks. ValueError on another topic."""
        if episode.topic is not Topic.EPISODE_FINALIZED:
            raise ValueError(f"write_episode takes an EPISODE_FINALIZED event, got {episode.topic.name}")
        self.write_events([episode])

    def write_batch(self, events: Sequence[TelemetryEvent], *, isolate: bool = False) -> WriteResult:
        """Store ``events`` in one transaction and say what happened. Any thread; blocks.

        Within the transaction: steps, then episodes, then run events, run rows (RUN_COMPLETED last)
        and stream cursors. Raises sqlite3 errors (rolled back); ``is_retryable_error`` tells whether
        the same batch may succeed later. With ``isolate=True`` every event gets its own savepoint,
        so an event that fails in SQLite is kept as a rejected row instead of failing the batch.
        """
        if not events:
            return WriteResult(0, 0, 0, (), (), ())
        plans = [plan_batch([evt]) for evt in events] if isolate else [plan_batch(events)]
        with self._write_lock:
            conn = self._writer()
            conn.execute("BEGIN IMMEDIATE")
            try:
                if isolate:
                    totals = [self._apply_isolated(conn, evt, plan) for evt, plan in zip(events, plans)]
                else:
                    totals = [self._apply(conn, plans[0])]
                claimed = self._claim_pending(conn, [k for p in plans for k in p.streams]) if self._pending_claims else []
                completed = [run for plan in plans for run in plan.completed_runs]
                if completed:
                    self._release_completed(conn, completed)  # the run ended: its streams are free
                hook = self.before_commit
                if hook is not None:
                    hook()
                conn.execute("COMMIT")
            except BaseException:
                self._rollback(conn)
                raise
        if claimed:
            self._claims_committed(claimed)
        return WriteResult(
            events=len(events),
            inserted=sum(t[0] for t in totals),
            duplicates=sum(t[1] for t in totals),
            rejected=tuple(r for plan in plans for r in plan.rejected),
            lost=tuple(r for plan in plans for r in plan.unstored),
            completed_runs=tuple(dict.fromkeys(run for plan in plans for run in plan.completed_runs)),
            conflicts=tuple(c for plan in plans for c in plan.conflicts),
        )

    def set_max_page_count(self, pages: int) -> int:
        """Cap the file size in pages (a quota; 0 restores the default). Any thread; blocks on the write lock.

        Returns the cap in force. Writes beyond it fail with ``database or disk is full``.
        """
        with self._write_lock:
            conn = self._writer()
            return int(conn.execute(f"PRAGMA max_page_count = {int(pages) if pages > 0 else 0x7FFFFFFE}").fetchone()[0])

    def page_count(self) -> int:
        """Pages the database uses now. Any thread; does not wait for the writer."""
        return int(self._reader().execute("PRAGMA page_count").fetchone()[0])

    def _writer(self) -> sqlite3.Connection:
        if self._closed:
            raise sqlite3.ProgrammingError(f"{self!r} is closed")
        return self._conn

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error:
            _log.exception("rollback failed")

    def _apply(self, conn: sqlite3.Connection, plan: Plan) -> tuple[int, int]:
        """Write one plan inside the caller's transaction; returns (inserted, duplicates)."""
        inserted = 0
        expected = len(plan.steps) + len(plan.episodes) + len(plan.run_events)
        runs_seen = {run_id: stream[1] for (run_id, _agent), stream in plan.streams.items()}
        if runs_seen:
            conn.executemany(ENSURE_RUN, [(run_id, ts, ts) for run_id, ts in runs_seen.items()])
        unstored_before = len(plan.unstored)
        if plan.steps:
            stored = STEP_ROWS.insert(conn, plan.steps)
            if stored < len(plan.steps):  # a replay, or a key stored with other content
                stored += keep_conflicts(conn, plan, "steps", plan.steps, ())[0]
            inserted += stored
        if plan.episodes:
            inserted += self._insert_episodes(conn, plan)
        if plan.run_events:
            stored = conn.executemany(INSERT_RUN_EVENT, plan.run_events).rowcount
            if stored < len(plan.run_events):
                kept, conflicting = keep_conflicts(conn, plan, "run_events", plan.run_events, plan.run_event_sources)
                stored += kept
                if conflicting:  # a lifecycle event in conflict does not change the run either
                    dropped = {id(plan.run_event_sources[i]) for i in conflicting}
                    plan.lifecycle[:] = [e for e in plan.lifecycle if id(e) not in dropped]
                    plan.completed_runs[:] = [e.run_id for e in plan.lifecycle if e.topic is Topic.RUN_COMPLETED]
            inserted += stored
        if plan.lifecycle:
            self._fold_runs(conn, plan.lifecycle)
        if plan.streams:
            conn.executemany(
                UPSERT_STREAM,
                [(run_id, agent, s[0], s[1], s[2]) for (run_id, agent), s in plan.streams.items()],
            )
        return inserted, expected - inserted - (len(plan.unstored) - unstored_before)

    def _insert_episodes(self, conn: sqlite3.Connection, plan: Plan) -> int:
        rows = [row for _evt, row in plan.episodes]
        inserted = EPISODE_ROWS.insert(conn, rows)
        if inserted == len(rows):
            return inserted
        # Some were ignored: a replay (same seq_id and content) is fine, another event with the same key is kept aside.
        same_seq: list[tuple[TelemetryEvent, tuple[Any, ...]]] = []
        for evt, row in plan.episodes:
            stored = conn.execute(
                "SELECT seq_id FROM episodes WHERE run_id = ? AND agent_id = ? AND episode_index = ?",
                (row[0], row[1], row[2]),
            ).fetchone()
            if stored is not None and stored[0] != evt.seq_id:
                error = f"episode_index {row[2]} is already stored with seq_id {stored[0]}"
                plan.rejected.append((evt, error))
                inserted += conn.execute(INSERT_RUN_EVENT, quarantine_row(evt, error)).rowcount
            else:
                same_seq.append((evt, row))
        if same_seq:
            inserted += keep_conflicts(conn, plan, "episodes", [r for _e, r in same_seq], [e for e, _r in same_seq])[0]
        return inserted

    def _fold_runs(self, conn: sqlite3.Connection, lifecycle: list[TelemetryEvent]) -> None:
        rows: dict[str, dict[str, Any]] = {}
        for evt in lifecycle:
            row = rows.get(evt.run_id)
            if row is None:
                found = conn.execute(
                    f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE run_id = ?", (evt.run_id,)
                ).fetchone()
                row = dict(zip(RUN_COLUMNS, found)) if found else new_run(evt.run_id, evt.ts_iso)
                rows[evt.run_id] = row
            apply_run_event(row, evt)
        conn.executemany(UPSERT_RUN, [tuple(row[c] for c in RUN_COLUMNS) for row in rows.values()])

    def _apply_isolated(self, conn: sqlite3.Connection, evt: TelemetryEvent, plan: Plan) -> tuple[int, int]:
        """Write the one-event ``plan`` of ``evt`` under a savepoint; on failure keep ``evt`` as rejected."""
        conflicts_before, unstored_before = len(plan.conflicts), len(plan.unstored)
        conn.execute("SAVEPOINT one_event")
        try:
            counts = self._apply(conn, plan)
            conn.execute("RELEASE one_event")
            return counts
        except (sqlite3.Error, UnicodeError, OverflowError, ValueError, TypeError) as exc:
            conn.execute("ROLLBACK TO one_event")
            conn.execute("RELEASE one_event")
            if is_retryable_error(exc):
                raise
            error = error_text(exc)
        del plan.conflicts[conflicts_before:], plan.unstored[unstored_before:]  # (rolled back)
        plan.rejected[:] = [(evt, error)]
        quarantine = quarantine_row(evt, error)
        last: BaseException | None = None
        for row in (quarantine, tuple(sanitised(v) if isinstance(v, str) else v for v in quarantine)):
            try:
                return conn.execute(INSERT_RUN_EVENT, row).rowcount, 0
            except (sqlite3.Error, UnicodeError) as exc:
                if is_retryable_error(exc):
                    raise
                last = exc
        plan.rejected.clear()
        plan.unstored.append((evt, f"{error}; could not keep it either: {error_text(last)}"))
        return 0, 0

    # -- reads -----------------------------------------------------------------------------------
    def _reader(self) -> sqlite3.Connection:
        slot: _ReaderSlot | None = getattr(self._local, "slot", None)
        if slot is None:
            if self._closed:
                raise sqlite3.ProgrammingError(f"{self!r} is closed")
            conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {max(0, int(self._read_busy_timeout_s * 1000))}")
            conn.execute("PRAGMA query_only = ON")
            slot = _ReaderSlot(conn)
            self._local.slot = slot
            with self._readers_lock:
                self._readers.add(slot)
        elif self._closed:
            raise sqlite3.ProgrammingError(f"{self!r} is closed")
        return slot.conn

    def _read(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``fn`` in one read transaction (one consistent snapshot)."""
        conn = self._reader()
        conn.execute("BEGIN")
        try:
            return fn(conn)
        finally:
            conn.execute("COMMIT")

    def episode_records(self, run_id: str, agent_id: str | None = None) -> list[EpisodeRecord]:
        """Episodes of a run ordered by agent and episode_index; ``agent_id=None`` means every agent.

        Any thread; never waits for the writer.
        """
        if agent_id is None:
            sql = f"SELECT {EPISODE_READ_COLUMNS} FROM episodes WHERE run_id = ? ORDER BY agent_id, episode_index"
            args: tuple[Any, ...] = (run_id,)
        else:
            sql = (f"SELECT {EPISODE_READ_COLUMNS} FROM episodes WHERE run_id = ? AND agent_id = ? "
                   "ORDER BY episode_index")
            args = (run_id, agent_id)
        rows = self._reader().execute(sql, args).fetchall()
        return [decode_episode(r) for r in rows]

    def steps_for_episode(self, run_id: str, agent_id: str | None, episode_index: int) -> list[StepRecord]:
        """Steps of one episode of one stream in seq_id order. Any thread; never waits for the writer."""
        rows = self._reader().execute(
            f"SELECT {STEP_READ_COLUMNS} FROM steps WHERE run_id = ? AND agent_id = ? AND episode_index = ? "
            "ORDER BY seq_id",
            (run_id, stored_agent(agent_id), episode_index),
        ).fetchall()
        return [decode_step(r) for r in rows]

    def events_after(
        self, run_id: str, agent_id: str | None, after_seq_id: int, limit: int = 1000
    ) -> list[TelemetryEvent]:
        """STEP_APPENDED and EPISODE_FINALIZED events of a stream with seq_id > ``after_seq_id``.

        At most ``limit`` events, in seq_id order, with their original payloads, read from one
        snapshot. Any thread; never waits for the writer.
        """
        if limit <= 0:
            return []
        key = (run_id, stored_agent(agent_id), after_seq_id, limit)

        def read(conn: sqlite3.Connection) -> tuple[list[Any], list[Any]]:
            steps = conn.execute(
                f"SELECT {STEP_READ_COLUMNS} FROM steps WHERE run_id = ? AND agent_id = ? AND seq_id > ? "
                "ORDER BY seq_id LIMIT ?", key).fetchall()
            episodes = conn.execute(
                f"SELECT {EPISODE_READ_COLUMNS} FROM episodes WHERE run_id = ? AND agent_id = ? AND seq_id > ? "
                "ORDER BY seq_id LIMIT ?", key).fetchall()
            return steps, episodes

        step_rows, episode_rows = self._read(read)
        events = [decode_step(r).to_event() for r in step_rows]
        if episode_rows:
            events += [decode_episode(r).to_event() for r in episode_rows]
            events.sort(key=lambda e: e.seq_id)
        return events[:limit]

    def step_count(self, run_id: str, agent_id: str | None = None) -> int:
        """Stored steps of a run (of one agent when ``agent_id`` is given). Any thread; never waits for the writer."""
        if agent_id is None:
            row = self._reader().execute("SELECT COUNT(*) FROM steps WHERE run_id = ?", (run_id,)).fetchone()
        else:
            row = self._reader().execute(
                "SELECT COUNT(*) FROM steps WHERE run_id = ? AND agent_id = ?", (run_id, stored_agent(agent_id))
            ).fetchone()
        return int(row[0])

    def max_seq_id(self, run_id: str, agent_id: str | None) -> int | None:
        """Highest stored seq_id of a stream (steps, episodes, run events, heartbeats), or None.

        Any thread; never waits for the writer.
        """
        row = self._reader().execute(
            "SELECT max_seq_id FROM streams WHERE run_id = ? AND agent_id = ?", (run_id, stored_agent(agent_id))
        ).fetchone()
        return None if row is None else int(row[0])

    def runs(self) -> list[RunRecord]:
        """Every run, oldest first. Any thread; never waits for the writer."""

        def read(conn: sqlite3.Connection) -> tuple[list[Any], list[Any]]:
            rows = conn.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs ORDER BY created_at, run_id").fetchall()
            agents = conn.execute("SELECT run_id, agent_id FROM streams ORDER BY run_id, agent_id").fetchall()
            return rows, agents

        rows, agent_rows = self._read(read)
        agents: dict[str, list[str]] = {}
        for run_id, agent in agent_rows:
            agents.setdefault(run_id, []).append(agent)
        return [decode_run(r, tuple(agents.get(r[0], ()))) for r in rows]

    def run(self, run_id: str) -> RunRecord | None:
        """One run, or None if unknown. Any thread; never waits for the writer."""

        def read(conn: sqlite3.Connection) -> tuple[Any, list[Any]]:
            row = conn.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            agents = conn.execute(
                "SELECT agent_id FROM streams WHERE run_id = ? ORDER BY agent_id", (run_id,)).fetchall()
            return row, agents

        row, agent_rows = self._read(read)
        return None if row is None else decode_run(row, tuple(a for (a,) in agent_rows))

    def rejected_events(self, run_id: str | None = None) -> list[tuple[TelemetryEvent, str]]:
        """Events kept aside because they could not be stored normally, with the reason. Any thread."""
        sql = "SELECT run_id, agent_id, seq_id, topic, ts_iso, payload_json, error FROM run_events WHERE error IS NOT NULL"
        args: tuple[Any, ...] = ()
        if run_id is not None:
            sql += " AND run_id = ?"
            args = (run_id,)
        out: list[tuple[TelemetryEvent, str]] = []
        for run, agent, seq, topic, ts, payload, error in self._reader().execute(sql + " ORDER BY run_id, seq_id", args):
            out.append((TelemetryEvent(Topic[topic], run, agent or None, seq, ts, _load_object(payload)), error))
        return out

    # -- lifecycle -------------------------------------------------------------------------------
    def close(self) -> None:
        """Write the queued records (at most about 2 s), release the streams this store claimed, then
        close every connection; idempotent.

        Any thread; blocks until the record writer ends (joined for at most about 2 s) and a running
        write finishes. Call it when no other thread still reads.
        """
        self._close_records()
        if not self._closed:
            self.release_streams()
        with self._write_lock:
            if self._closed:
                return
            self._closed = True
            self._conn.close()
        with self._readers_lock:
            slots = list(self._readers)
            self._readers.clear()
        for slot in slots:
            slot.conn.close()


def _load_object(text: str) -> dict[str, Any]:
    value = load_json(text)
    return value if isinstance(value, dict) else {"value": value}
