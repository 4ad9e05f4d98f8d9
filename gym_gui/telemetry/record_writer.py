"""RecordWriter: the store's record-API writer thread (Qt-free).

``TelemetrySQLiteStore.record_step`` / ``record_episode`` / the deletions only enqueue here; one
daemon thread, started on the first record write, encodes and commits them in order through the
store's write connection and lock. A batch is written after ``batch_rows`` step records (32),
``max_buffer_bytes`` of encoded payload (2 MiB), 0.1 s without a new record, at once when an
episode, a deletion or a ``flush()`` is waiting, and on close.

It never dies and never drops: a retryable SQLite error (locked, busy, full, I/O) keeps the batch
and retries it with backoff (logged, rate-limited); a batch SQLite refuses for another reason is
written op by op, and an op refused on its own is kept in ``run_events`` with the error. So
``flush()`` and ``record_episode(wait=True)`` always return once the database accepts writes again.
The thread holds no reference to the store: an unreachable store is collected and closed by
``__del__``; ``close()`` (also at interpreter exit) writes what is queued, for at most
``close_timeout_s``.
"""

from __future__ import annotations

import atexit
import collections
import dataclasses
import logging
import sqlite3
import threading
import time
import weakref
from typing import Any

from gym_gui.rate_limited_log import RateLimitedLog
from gym_gui.telemetry import record_sql
from gym_gui.telemetry.data_model import EpisodeRollup, StepRecord
from gym_gui.telemetry.sqlite_batch import is_retryable_error
from gym_gui.telemetry.record_rows import EncodedStep, encode_episode_record, encode_step_record, iso_text

__all__ = ["RecordWriter"]

_log = logging.getLogger(__name__)
_rate_log = RateLimitedLog(_log, interval_s=5.0)

#: A queued op: ("step", (record, producer seq_id)), ("episode", (rollup, producer seq_id)) or ("call", fn(conn)).
Op = tuple[str, Any]
_STEP_FIELDS = tuple(f.name for f in dataclasses.fields(StepRecord))
_EPISODE_FIELDS = tuple(f.name for f in dataclasses.fields(EpisodeRollup))
_RETRY_INITIAL_S = 0.02
_RETRY_MAX_S = 1.0
_writers: "weakref.WeakSet[RecordWriter]" = weakref.WeakSet()


def _close_all_at_exit() -> None:
    for writer in list(_writers):
        writer.close()


atexit.register(_close_all_at_exit)


class RecordWriter:
    """Queue and thread of record writes; see the module doc. Every method may be called from any thread."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        lock: threading.Lock,
        *,
        batch_rows: int = 32,
        max_buffer_bytes: int = 2 * 1024 * 1024,
        idle_flush_s: float = 0.1,
        close_timeout_s: float = 2.0,
        name: str = "TelemetrySQLiteStore-records",
    ) -> None:
        """Start the daemon thread. Any thread; never blocks."""
        self._conn = conn
        self._lock = lock
        self.batch_rows = max(1, int(batch_rows))
        self.max_buffer_bytes = max(1, int(max_buffer_bytes))
        self.idle_flush_s = idle_flush_s
        self.close_timeout_s = close_timeout_s
        self._cond = threading.Condition()
        self._queue: collections.deque[Op] = collections.deque()
        self._queued = 0      # ops ever enqueued
        self._done = 0        # ops ever finished (committed, kept aside, or given up at close)
        self._waiting = 0     # threads in wait_for()
        self._stopping = False
        self._stop_deadline = 0.0
        #: Counters: ``steps``/``episodes``/``calls`` committed, ``ignored`` repeated steps,
        #: ``retries``, ``quarantined`` ops kept in run_events, ``unencodable`` fields kept as repr,
        #: ``lost`` ops not written (only at close with the database unwritable, or after close).
        self.stats: dict[str, int] = dict.fromkeys(
            ("steps", "episodes", "calls", "ignored", "retries", "quarantined", "unencodable", "lost"), 0)
        self._keys = record_sql.StepKeyCache()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        _writers.add(self)

    @property
    def thread(self) -> threading.Thread:
        """The writer thread (tests check it ends on close)."""
        return self._thread

    def submit(self, kind: str, item: Any) -> int:
        """Enqueue one op; returns its ticket for ``wait_for``. Any thread; never blocks on the database.

        After ``close()`` the op is not written: counted in ``stats["lost"]`` and logged.
        """
        with self._cond:
            if self._stopping:
                self.stats["lost"] += 1
                _rate_log.log(logging.ERROR, "closed", "record store is closed: a %s write was not stored", kind)
                return self._queued
            self._queue.append((kind, item))
            self._queued += 1
            if len(self._queue) == 1 or kind != "step" or self._waiting:
                self._cond.notify_all()
            return self._queued

    def wait_for(self, ticket: int | None = None, timeout_s: float | None = None) -> bool:
        """Block until every op up to ``ticket`` (default: all queued so far) is done. Any thread.

        Returns False on timeout. Never call it from the writer thread.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            target = self._queued if ticket is None else ticket
            self._waiting += 1
            self._cond.notify_all()
            try:
                while self._done < target and self._thread.is_alive():
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._cond.wait(remaining)
            finally:
                self._waiting -= 1
            return self._done >= target

    def pending(self) -> int:
        """Ops queued and not yet done. Any thread."""
        with self._cond:
            return self._queued - self._done

    def close(self) -> None:
        """Write what is queued (for at most ``close_timeout_s``), then end the thread. Idempotent; blocks.

        Any thread (from the writer thread itself it only asks the thread to stop).
        """
        with self._cond:
            if not self._stopping:
                self._stopping = True
                self._stop_deadline = time.monotonic() + self.close_timeout_s
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(self.close_timeout_s)
        _writers.discard(self)

    # -- writer thread ---------------------------------------------------------------------------
    def _take(self) -> list[Op] | None:
        """The next batch, or None when stopping with nothing queued. Waits for data and the idle delay."""
        batch: list[Op] = []
        idle_until = 0.0
        with self._cond:
            while True:
                while self._queue and len(batch) < self.batch_rows:
                    op = self._queue.popleft()
                    batch.append(op)
                    if op[0] != "step":
                        return batch
                if not batch:
                    if self._stopping:
                        return None
                    self._cond.wait()
                    continue
                if len(batch) >= self.batch_rows or self._waiting or self._stopping:
                    return batch
                now = time.monotonic()
                if not idle_until:
                    idle_until = now + self.idle_flush_s
                if now >= idle_until:
                    return batch
                self._cond.wait(idle_until - now)

    def _run(self) -> None:
        while True:
            try:
                batch = self._take()
            except Exception:  # pragma: no cover - defensive: the thread must not die
                _log.exception("record writer: taking a batch failed")
                continue
            if batch is None:
                return
            try:
                self._write(batch)
            except Exception:  # pragma: no cover - defensive: the thread must not die
                _log.exception("record writer: unexpected error; %d record ops not stored", len(batch))
                self.stats["lost"] += len(batch)
            with self._cond:
                self._done += len(batch)
                self._cond.notify_all()

    def _write(self, batch: list[Op]) -> None:
        """Encode, then commit ``batch`` in order, in chunks of at most ``max_buffer_bytes`` of steps."""
        encoded: list[tuple[str, Any, Any]] = []  # (kind, original, encoded)
        size = 0
        for kind, item in batch:
            if kind == "step":
                step = encode_step_record(*item)
                self.stats["unencodable"] += step.errors
                encoded.append((kind, item[0], step))
                size += step.size_bytes
                if size >= self.max_buffer_bytes:
                    self._commit(encoded)
                    encoded, size = [], 0
            elif kind == "episode":
                episode = encode_episode_record(*item)
                self.stats["unencodable"] += episode.errors
                encoded.append((kind, item[0], episode))
            else:
                encoded.append((kind, item, item))
        if encoded:
            self._commit(encoded)

    def _commit(self, ops: list[tuple[str, Any, Any]]) -> None:
        """Commit ``ops`` in one transaction, retrying retryable errors; isolate the others."""
        delay = _RETRY_INITIAL_S
        while True:
            try:
                self._transaction(ops)
                return
            except Exception as exc:
                if not is_retryable_error(exc) and not isinstance(exc, sqlite3.ProgrammingError):
                    if len(ops) > 1:
                        for op in ops:
                            self._commit([op])
                    else:
                        self._keep_aside(ops[0], exc)
                    return
                if self._give_up(len(ops), exc):
                    return
                self.stats["retries"] += 1
                _rate_log.log(logging.WARNING, "retry", "record writer: %s; retrying %d record ops in %.2f s",
                              exc, len(ops), delay)
                with self._cond:
                    self._cond.wait(delay)
                delay = min(delay * 2, _RETRY_MAX_S)

    def _give_up(self, count: int, exc: BaseException) -> bool:
        """At close, past the deadline (or with the connection closed): count and log the loss."""
        with self._cond:
            stopping, deadline = self._stopping, self._stop_deadline
        if stopping and (time.monotonic() >= deadline or isinstance(exc, sqlite3.ProgrammingError)):
            self.stats["lost"] += count
            _log.error("record writer: closing with the database unwritable (%s); %d record ops not stored", exc, count)
            return True
        return False

    def _transaction(self, ops: list[tuple[str, Any, Any]]) -> None:
        counts = {"steps": 0, "episodes": 0, "calls": 0, "ignored": 0}
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._keys.check(conn)
                cursors = record_sql.StreamCursors(conn)
                steps: list[EncodedStep] = []
                for kind, _item, value in ops:
                    if kind == "step":
                        steps.append(value)
                        continue
                    if steps:
                        self._steps(conn, cursors, steps, counts)
                        steps = []
                    if kind == "episode":
                        record_sql.insert_episode(conn, cursors, value)
                        counts["episodes"] += 1
                    else:
                        self._keys.clear()
                        value(conn)
                        counts["calls"] += 1
                if steps:
                    self._steps(conn, cursors, steps, counts)
                cursors.save()
                conn.execute("COMMIT")
                self._keys.committed(conn)
            except BaseException:
                self._keys.clear()
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        for key, value in counts.items():
            self.stats[key] += value

    def _steps(self, conn: sqlite3.Connection, cursors: record_sql.StreamCursors, steps: list[EncodedStep],
               counts: dict[str, int]) -> None:
        inserted, ignored = record_sql.insert_steps(conn, cursors, steps, self._keys)
        counts["steps"] += inserted
        counts["ignored"] += ignored

    def _keep_aside(self, op: tuple[str, Any, Any], exc: BaseException) -> None:
        kind, item, value = op
        error = f"{type(exc).__name__}: {exc}"
        if kind == "call":
            _log.error("record store: %s failed: %s", getattr(item, "__name__", "a deletion"), error)
            return
        names = _STEP_FIELDS if kind == "step" else _EPISODE_FIELDS
        fields = {name: getattr(item, name, None) for name in names}
        topic = "STEP_APPENDED" if kind == "step" else "EPISODE_FINALIZED"
        try:
            with self._lock:
                conn = self._conn
                conn.execute("BEGIN IMMEDIATE")
                try:
                    cursors = record_sql.StreamCursors(conn)
                    run_id = value.run_id.encode("utf-8", "backslashreplace").decode("utf-8")
                    record_sql.quarantine(conn, cursors, run_id, value.agent_id, topic,
                                          iso_text(getattr(item, "timestamp", None)), dict(fields), error)
                    cursors.save()
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            self.stats["quarantined"] += 1
            _rate_log.log(logging.WARNING, "kept", "record store: a %s record was refused (%s); kept in run_events",
                          kind, error)
        except Exception as again:
            self.stats["lost"] += 1
            _log.error("record store: a %s record was refused (%s) and could not be kept aside (%s)", kind, error, again)

