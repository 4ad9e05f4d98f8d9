"""The existing gym_gui callers' record API of TelemetrySQLiteStore (Qt-free; mixed into the store).

``record_step`` / ``record_episode`` and the deletions are queued to a ``RecordWriter`` thread,
started on the first of them; the reads see every committed row, whether written by these methods
or by ``write_batch`` (events), as ``StepRecord`` / ``EpisodeRollup`` (the host app's classes when
present, see ``data_model.record_classes``). Semantics: docs/schema.md, "Record API".
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from datetime import datetime, timezone
from typing import Any, Callable, Optional, Sequence

from gym_gui.rate_limited_log import RateLimitedLog
from gym_gui.telemetry import record_sql
from gym_gui.telemetry.record_rows import episode_from_row, step_from_row
from gym_gui.telemetry.record_writer import RecordWriter
from gym_gui.telemetry.sqlite_rows import EPISODE_READ_COLUMNS, STEP_READ_COLUMNS, decode_episode, decode_step
from gym_gui.telemetry.step_layout import format_ts_us, physical_columns

__all__ = ["CHECKPOINT_MODES", "RecordStoreAPI"]

_log = logging.getLogger(__name__)
_rate_log = RateLimitedLog(_log, interval_s=5.0)

#: The ``PRAGMA wal_checkpoint`` modes ``checkpoint_wal`` runs.
CHECKPOINT_MODES = ("PASSIVE", "FULL", "RESTART", "TRUNCATE")
DEFAULT_BATCH_ROWS = 32
DEFAULT_MAX_BUFFER_BYTES = 2 * 1024 * 1024
#: One stream's newest steps: ts_iso, stream, seq_id, then the columns ``decode_step`` reads.
_NEWEST_OF_STREAM_SQL = (
    f"SELECT {physical_columns('ts_iso')}, s.stream, s.seq_id, {physical_columns(STEP_READ_COLUMNS)} "
    "FROM step_rows s JOIN stream_keys k ON k.stream = s.stream WHERE s.stream = ? ORDER BY s.seq_id DESC LIMIT ?")


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def _count_and_last_ts(conn: sqlite3.Connection, run_id: str) -> tuple[int, str | None]:
    """Step rows of a run and the greatest ``ts_iso`` text among them (as ``MAX(ts_iso)`` of the
    view), without formatting every row: per stream, the greatest integer time and the greatest text."""
    count, last = 0, None
    for stream, base in conn.execute("SELECT stream, ts_base_us FROM stream_keys WHERE run_id = ?", (run_id,)).fetchall():
        n, high_us, high_text = conn.execute(
            "SELECT COUNT(*), MAX(CASE WHEN typeof(ts_us) = 'integer' THEN ts_us END), "
            "MAX(CASE WHEN typeof(ts_us) = 'text' THEN ts_us END) FROM step_rows WHERE stream = ?", (stream,)).fetchone()
        count += int(n)
        for text in (None if high_us is None else format_ts_us(base + high_us), high_text):
            if text is not None and (last is None or text > last):
                last = text
    return count, last


class RecordStoreAPI:
    """Record methods of TelemetrySQLiteStore. Needs the store's ``_conn``, ``_write_lock``, ``_reader()``."""

    _conn: sqlite3.Connection
    _write_lock: threading.Lock
    _closed: bool
    _reader: Callable[[], sqlite3.Connection]
    _record_batch_rows: int = DEFAULT_BATCH_ROWS
    _record_buffer_bytes: int = DEFAULT_MAX_BUFFER_BYTES
    _records: RecordWriter | None = None
    _records_lock: threading.Lock

    def _init_records(self, batch_size: int | None, max_buffer_bytes: int | None) -> None:
        self._record_batch_rows = int(batch_size) if batch_size else DEFAULT_BATCH_ROWS
        self._record_buffer_bytes = int(max_buffer_bytes) if max_buffer_bytes else DEFAULT_MAX_BUFFER_BYTES
        self._records = None
        self._records_lock = threading.Lock()

    def _record_writer(self) -> RecordWriter | None:
        """The writer thread, started on first use; None once the store is closed."""
        writer = self._records
        if writer is not None:
            return writer
        with self._records_lock:
            if self._records is None and not self._closed:
                self._records = RecordWriter(self._conn, self._write_lock, batch_rows=self._record_batch_rows,
                                             max_buffer_bytes=self._record_buffer_bytes)
            return self._records

    def _close_records(self) -> None:
        with self._records_lock:
            writer = self._records
        if writer is not None:
            writer.close()

    @property
    def record_stats(self) -> dict[str, int]:
        """Counters of the record writer (see ``RecordWriter.stats``); empty before the first record write."""
        writer = self._records
        return dict(writer.stats) if writer is not None else {}

    def _submit(self, kind: str, item: Any) -> tuple[RecordWriter | None, int]:
        try:
            writer = self._record_writer()
            if writer is None:
                _rate_log.log(logging.ERROR, "closed", "%r is closed: a %s write was not stored", self, kind)
                return None, 0
            return writer, writer.submit(kind, item)
        except Exception:  # writes never raise
            _log.exception("record store: could not queue a %s write", kind)
            return None, 0

    def _call(self, fn: Callable[[sqlite3.Connection], None], wait: bool) -> None:
        writer, ticket = self._submit("call", fn)
        if wait and writer is not None:
            writer.wait_for(ticket)

    # -- writes ----------------------------------------------------------------------------------
    def record_step(self, record: Any, *, seq_id: int | None = None) -> None:
        """Queue one step record (any object with StepRecord's attributes). Any thread; never blocks, never raises.

        A repeated (episode_id, step_index) of one stream is ignored when written, unless the
        episode_id is empty (those are all kept). ``seq_id``: the producer's seq_id of the event,
        kept with the row (``producer_seq_id``); the row's own seq_id is the stream's next durable one.
        """
        self._submit("step", (record, seq_id))

    def record_episode(self, rollup: Any, *, wait: bool = False, seq_id: int | None = None) -> None:
        """Queue one episode rollup after the steps queued before it; upserted on episode_id. Any thread.

        ``wait=True`` blocks until everything queued so far is committed. ``seq_id`` as for
        ``record_step``. Never raises.
        """
        writer, ticket = self._submit("episode", (rollup, seq_id))
        if wait and writer is not None:
            writer.wait_for(ticket)

    def flush(self) -> None:
        """Block until every queued record write is committed. Any thread but the writer's; never raises."""
        writer = self._records
        if writer is not None:
            writer.wait_for()

    def delete_episode(self, episode_id: str, *, wait: bool = True) -> None:
        """Delete the episode's step rows and its episode row, after the queued writes. Any thread; blocks if ``wait``."""

        def delete_episode(conn: sqlite3.Connection) -> None:
            record_sql.delete_episode_rows(conn, episode_id)

        self._call(delete_episode, wait)

    def delete_all_episodes(self, *, wait: bool = True) -> None:
        """Empty the steps and episodes tables (runs and stream cursors stay). Any thread; blocks if ``wait``."""

        def delete_all_episodes(conn: sqlite3.Connection) -> None:
            record_sql.delete_step_rows(conn)
            conn.execute("DELETE FROM episodes")

        self._call(delete_all_episodes, wait)

    def delete_run(self, run_id: str, *, wait: bool = True) -> None:
        """Delete the run's steps and episodes and mark it ``deleted``. Any thread; blocks if ``wait``; never raises."""

        def delete_run(conn: sqlite3.Connection) -> None:
            record_sql.mark_run(conn, run_id, "deleted", _now_iso())

        self._call(delete_run, wait)

    def archive_run(self, run_id: str, *, wait: bool = True) -> None:
        """Delete the run's steps and episodes (as ``delete_run``) and mark it ``archived``. Any thread."""

        def archive_run(conn: sqlite3.Connection) -> None:
            record_sql.mark_run(conn, run_id, "archived", _now_iso())

        self._call(archive_run, wait)

    def purge_steps(self, keep_recent: int) -> None:
        """Flush, then keep only the newest ``keep_recent`` step rows (``<= 0``: none). Any thread; blocks."""
        keep = int(keep_recent)

        def purge_steps(conn: sqlite3.Connection) -> None:
            if keep <= 0:
                record_sql.delete_step_rows(conn)
            else:  # the newest as recent_steps orders them
                kept = [(row[1], row[2]) for row in newest_step_rows(conn, keep)]
                conn.execute("CREATE TEMP TABLE IF NOT EXISTS purge_keep (stream INTEGER, seq_id INTEGER, "
                             "PRIMARY KEY (stream, seq_id)) WITHOUT ROWID")
                conn.execute("DELETE FROM temp.purge_keep")
                conn.executemany("INSERT INTO temp.purge_keep VALUES (?, ?)", kept)
                conn.execute("DELETE FROM step_rows WHERE (stream, seq_id) NOT IN "
                             "(SELECT stream, seq_id FROM temp.purge_keep)")
                conn.execute("DELETE FROM temp.purge_keep")

        self._call(purge_steps, True)

    def checkpoint_wal(self, mode: str = "TRUNCATE") -> None:
        """``PRAGMA wal_checkpoint(MODE)`` for PASSIVE/FULL/RESTART/TRUNCATE (any case). Any thread; blocks.

        Other modes and every error are logged, never raised.
        """
        name = str(mode).upper()
        if name not in CHECKPOINT_MODES:
            _log.warning("checkpoint_wal: unknown mode %r (use one of %s)", mode, ", ".join(CHECKPOINT_MODES))
            return
        try:
            with self._write_lock:
                if self._closed:
                    raise sqlite3.ProgrammingError("the store is closed")
                busy, log_pages, done = self._conn.execute(f"PRAGMA wal_checkpoint({name})").fetchone()
            _log.debug("wal checkpoint %s: busy=%s log=%s checkpointed=%s", name, busy, log_pages, done)
        except Exception as exc:
            _log.warning("checkpoint_wal(%s) failed: %s", name, exc)

    # -- reads -----------------------------------------------------------------------------------
    def recent_steps(self, limit: int = 100) -> Sequence[Any]:
        """The newest stored steps as StepRecords, newest first (``newest_step_rows``: by time across
        streams, each stream's newest seq_id first on a tie). Any thread; no flush."""
        return tuple(step_from_row(decode_step(row[3:])) for row in newest_step_rows(self._reader(), int(limit)))

    def recent_episodes(self, limit: int = 20) -> Sequence[Any]:
        """The newest episodes by timestamp text, newest first, as EpisodeRollups. Any thread; no flush."""
        rows = self._reader().execute(
            f"SELECT {EPISODE_READ_COLUMNS} FROM episodes ORDER BY ts_iso DESC, rowid DESC LIMIT ?",
            (int(limit),)).fetchall()
        return tuple(episode_from_row(decode_episode(r)) for r in rows)

    def episode_steps(self, episode_id: str) -> Sequence[Any]:
        """Steps of one episode id (any run and agent) by step_index, as StepRecords. Any thread; no flush."""
        rows = record_sql.find_step_rows(self._reader(), episode_id)
        records = [decode_step(r[1:]) for r in rows]
        records.sort(key=lambda r: (r.step_index if r.step_index is not None else -1, r.seq_id))
        return tuple(step_from_row(r) for r in records)

    def episodes_for_run(self, run_id: str, *, agent_id: Optional[str] = None, limit: Optional[int] = None,
                         order_desc: bool = False) -> Sequence[Any]:
        """A run's episodes by timestamp (ASC, or DESC), as EpisodeRollups. Any thread; flushes first (blocks).

        The agent filter applies only when ``agent_id`` is truthy; LIMIT only when ``limit`` is given.
        (The event-based read is ``episode_records``.)
        """
        self.flush()
        sql = f"SELECT {EPISODE_READ_COLUMNS} FROM episodes WHERE run_id = ?"
        args: list[Any] = [run_id]
        if agent_id:
            sql += " AND agent_id = ?"
            args.append(agent_id)
        sql += " ORDER BY ts_iso DESC, rowid DESC" if order_desc else " ORDER BY ts_iso, rowid"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        rows = self._reader().execute(sql, args).fetchall()
        return tuple(episode_from_row(decode_episode(r)) for r in rows)

    def get_run_summary(self, run_id: str) -> dict[str, Any]:
        """Counts of a run: run_id, episodes, steps, total_reward, last_update, status, agent_id. Any thread.

        Reads what is committed now (no flush). ``status`` is ``deleted``/``archived`` when the run
        was deleted or archived, else ``unknown``.
        """
        conn = self._reader()
        conn.execute("BEGIN")
        try:
            episodes, step_sum, reward = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(length), 0), COALESCE(SUM(total_reward), 0.0) FROM episodes "
                "WHERE run_id = ?", (run_id,)).fetchone()
            step_rows, last = _count_and_last_ts(conn, run_id)
            agent = conn.execute("SELECT k.agent_id FROM stream_keys k JOIN step_rows s ON s.stream = k.stream "
                                 "WHERE k.run_id = ? AND k.agent_id != '' ORDER BY s.stream DESC, s.seq_id DESC "
                                 "LIMIT 1", (run_id,)).fetchone()
            status = conn.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        finally:
            conn.execute("COMMIT")
        return {
            "run_id": run_id,
            "episodes": int(episodes),
            "steps": max(int(step_sum), int(step_rows)),
            "total_reward": float(reward),
            "last_update": last or "",
            "status": status[0] if status is not None and status[0] in ("deleted", "archived") else "unknown",
            "agent_id": agent[0] if agent is not None else "",
        }

    def _run_status(self, run_id: str) -> str | None:
        row = self._reader().execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else row[0]

    def is_run_deleted(self, run_id: str) -> bool:
        """True when the run was deleted (``delete_run``). Any thread; reads at once (no flush)."""
        return self._run_status(run_id) == "deleted"

    def is_run_archived(self, run_id: str) -> bool:
        """True when the run was archived (``archive_run``). Any thread; reads at once (no flush)."""
        return self._run_status(run_id) == "archived"

    # -- context manager -------------------------------------------------------------------------
    def __enter__(self) -> "RecordStoreAPI":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()  # type: ignore[attr-defined]

    def __del__(self) -> None:
        try:
            if getattr(self, "_closed", True):
                return
            writer = self._records
            if writer is not None and threading.current_thread() is writer.thread:
                writer.close()  # collected by the writer thread itself (it may hold the write lock): only stop it
                return
            self.close()  # type: ignore[attr-defined]
        except Exception:
            pass


def newest_step_rows(conn: sqlite3.Connection, limit: int) -> list[tuple[Any, ...]]:
    """The ``limit`` newest step rows, newest first, each ``(ts_iso, stream, seq_id, *STEP_READ_COLUMNS)``:
    by time across streams (the step's ``ts_iso``), each stream's newest seq_id first on a tie. A
    version-4 file keeps no insertion order (version 3's ``rowid``); time orders interleaved streams
    the way they were written. Streams are visited by their newest event's time, and the walk stops
    once a stream can no longer reach the ``limit`` newest. Caller's thread; blocks for the reads."""
    if limit <= 0:
        return []
    streams = conn.execute(
        "SELECT k.stream, COALESCE(t.last_ts_iso, '') FROM stream_keys k LEFT JOIN streams t "
        "ON t.run_id = k.run_id AND t.agent_id = k.agent_id ORDER BY 2 DESC, k.stream DESC").fetchall()
    newest: list[tuple[Any, ...]] = []
    for stream, last_ts in streams:
        if len(newest) >= limit and last_ts < newest[limit - 1][0]:
            break  # every later stream's newest event is older than the limit-th step kept
        newest.extend(conn.execute(_NEWEST_OF_STREAM_SQL, (stream, limit)).fetchall())
        newest.sort(key=_ts_stream_seq, reverse=True)
        del newest[limit:]
    return newest


def _ts_stream_seq(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return row[:3]
