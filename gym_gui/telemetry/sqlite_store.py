"""TelemetrySQLiteStore: the durable telemetry database (Qt-free).

One write connection, guarded by a lock; in the app only the DbSink thread writes (and, for the
existing gym_gui callers' record API -- ``record_step``, ``record_episode``, ... in ``record_store`` --
the record writer thread, started on the first record write). Every other
thread reads through its own thread-local connection; in WAL mode a reader sees the last committed
snapshot and never waits for the writer. All writes are idempotent (``INSERT OR IGNORE`` on the
primary keys, upserts for runs and streams), so a replayed event is not stored twice.
Tables, keys and queries: docs/schema.md. The parts: ``sqlite_batch`` (events -> rows, by their
``topic_specs``), ``sqlite_write`` (a batch's rows in one transaction), ``sqlite_reads`` (the event
reads), ``record_store`` (the existing app's record API), ``stream_owners``; the columns are
declared in ``tables``.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import weakref
from pathlib import Path
from typing import Callable, Iterable, Sequence, TypeVar

from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.legacy_migration import prepare_store_file
from gym_gui.telemetry.record_store import RecordStoreAPI
from gym_gui.telemetry.sqlite_batch import WriteResult, check_topics, is_retryable_error, plan_batch
from gym_gui.telemetry.sqlite_reads import EventReadsAPI
from gym_gui.telemetry.sqlite_schema import SCHEMA_VERSION, SchemaVersionError, configure_connection, migrate
from gym_gui.telemetry.sqlite_write import apply_isolated, apply_plan
from gym_gui.telemetry.step_reads import StepValueCache
from gym_gui.telemetry.step_writer import register as register_step_writer
from gym_gui.telemetry.step_writer import unregister as unregister_step_writer
from gym_gui.telemetry.stream_owners import StreamOwnersAPI
from gym_gui.telemetry.topic_specs import RowKind, backfilled_topics, spec

__all__ = [
    "SchemaVersionError",
    "TelemetrySQLiteStore",
    "WriteResult",
    "is_retryable_error",
]

_log = logging.getLogger(__name__)
T = TypeVar("T")


class _ReaderSlot:
    """Holds one thread's read connection; weak-referenceable so ``close`` can find live ones."""

    __slots__ = ("conn", "step_values", "__weakref__")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.step_values = StepValueCache()  # (the connection's interned texts kept between reads)


class TelemetrySQLiteStore(EventReadsAPI, RecordStoreAPI, StreamOwnersAPI):
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
        Raises SchemaVersionError when the file has a newer schema or is not a telemetry file,
        RuntimeError starting ``LOG622A:`` when SQLite reports a disk I/O error or a malformed file,
        and ``topic_specs.TopicSpecError`` when a declared durable topic has no row this store writes.
        """
        self._closed = True  # until opened (``__del__`` of a half-made store does nothing)
        check_topics()  # a durable topic this store cannot write is refused here, not counted lost later
        self._backfilled_events = tuple(t.name for t in backfilled_topics() if spec(t).row is RowKind.RUN_EVENTS)
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
        register_step_writer(self._conn)  # its stream keys and interned values, kept between batches
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
                    totals = [apply_isolated(conn, evt, plan) for evt, plan in zip(events, plans)]
                else:
                    totals = [apply_plan(conn, plans[0])]
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

    def _step_value_cache(self) -> StepValueCache:
        """This thread's read connection's interned texts (``step_reads.StepValueCache``). Any
        thread; opens the connection if needed, never blocks on the writer."""
        self._reader()
        return self._local.slot.step_values  # type: ignore[no-any-return]

    def read_transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` in one read transaction of this thread's read-only connection: every
        query of ``fn`` sees one consistent snapshot; returns what ``fn`` returns.

        Any thread; never waits for the writer (WAL). ``fn`` must not keep ``conn`` nor write (the
        connection is ``query_only``); exceptions of ``fn`` propagate after the transaction ends.
        """
        conn = self._reader()
        conn.execute("BEGIN")
        try:
            return fn(conn)
        finally:
            conn.execute("COMMIT")

    # -- lifecycle -------------------------------------------------------------------------------
    def close(self) -> None:
        """Write the queued records (at most about 2 s), release the streams this store claimed, then
        close every connection; idempotent.

        Any thread; blocks until the record writer ends (joined for at most about 2 s) and a running
        write finishes. Call it when no other thread still reads.
        """
        self._close_records()
        if not self._closed and not self.keep_claims_at_close:
            self.release_streams()
        with self._write_lock:
            if self._closed:
                return
            self._closed = True
            unregister_step_writer(self._conn)
            self._conn.close()
        with self._readers_lock:
            slots = list(self._readers)
            self._readers.clear()
        for slot in slots:
            slot.conn.close()

