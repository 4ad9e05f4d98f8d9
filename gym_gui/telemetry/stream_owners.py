"""Per-stream ownership: one live process writes a stream (Qt-free).

Two processes numbering one stream ``(run_id, agent_id)`` from the same stored maximum would make
the same seq_ids, and the durable path would keep only one of each pair. So the first process that
numbers a live stream owns it: a ``stream_owners`` row (schema version 3) names the process by
``pid``, ``host`` and its start time (``process_start``: field 22 of ``/proc/<pid>/stat``, clock
ticks since boot, with the kernel's ``boot_id``), so a pid reused by another process, or a machine
rebooted since, is not mistaken for the owner. The claim is taken where the stream's stored maximum
seq_id is read (``TelemetrySQLiteStore.claim_stream``, the proxy's ``seq_floor``), in the same write
transaction; it is released when the stream's run completes (its RUN_COMPLETED is committed) or the
store closes. A claim of a stream whose owner is alive raises ``StreamOwned`` (the proxy rejects the
stream's records as ``stream_owned``); an owner that is gone is taken over. An owner on another
host cannot be checked and counts as alive. See docs/schema.md ("stream_owners").

About 430 lines: the claim, takeover and release SQL and the process-identity checks (pid, host,
start time, boot id) belong to one rule and are tested together; splitting them would spread it.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
import threading
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

import attrs

from gym_gui.ingest.shown_ids import shown_id
from gym_gui.telemetry.events import utc_now_iso
from gym_gui.telemetry.sqlite_batch import is_retryable_error
from gym_gui.telemetry.sqlite_rows import stored_agent
from gym_gui.telemetry.sqlite_runs import INTERRUPTED

__all__ = [
    "STREAM_OWNED",
    "InterruptedRun",
    "ProcessIdentity",
    "StreamOwned",
    "StreamOwner",
    "StreamOwnersAPI",
    "claim",
    "current_process",
    "mark_interrupted",
    "owner_of",
    "owners_of_run",
    "process_alive",
    "release",
    "reopen_interrupted",
]

_log = logging.getLogger(__name__)


#: The rejection reason of a record of a stream another live process writes.
STREAM_OWNED = "stream_owned"

_OWNER_COLUMNS = "pid, host, process_start, boot_id, claimed_at"


@attrs.frozen(slots=True)
class ProcessIdentity:
    """A process, told apart from a later one with the same pid: ``process_start`` is its start
    time in clock ticks since boot (None where there is no /proc), ``boot_id`` the kernel's boot id."""

    pid: int
    host: str
    process_start: int | None
    boot_id: str | None


@attrs.frozen(slots=True)
class StreamOwner:
    """The ``stream_owners`` row of one stream: the owning process and when it claimed the stream."""

    run_id: str
    agent_id: str
    process: ProcessIdentity
    claimed_at: str

    def describe(self) -> str:
        """``pid N on host H (claimed at T)``, for messages."""
        return f"pid {self.process.pid} on host {self.process.host} (claimed at {self.claimed_at})"


class StreamOwned(RuntimeError):
    """A stream is written by another live process; ``owner`` says which."""

    reason = STREAM_OWNED

    def __init__(self, owner: StreamOwner, shown_stream: str) -> None:
        self.owner = owner
        super().__init__(
            f"stream {shown_stream} is being written by another live process, {owner.describe()}; "
            "its records are refused (two writers of one stream would make the same seq_ids)"
        )


def _read_text(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read().decode("ascii", "replace").strip()
    except OSError:
        return None


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start ticks) of ``pid`` from /proc, or None when there is no such process."""
    text = _read_text(f"/proc/{pid}/stat")
    if not text:
        return None
    try:  # "pid (comm) state ppid ..."; comm may hold spaces and parentheses
        fields = text.rsplit(")", 1)[1].split()
        return fields[0], int(fields[19])
    except (IndexError, ValueError):
        return None


_BOOT_ID: str | None = _read_text("/proc/sys/kernel/random/boot_id")
_current: ProcessIdentity | None = None


def current_process() -> ProcessIdentity:
    """This process's identity (made again after a fork). Any thread; never blocks."""
    global _current
    me = _current
    pid = os.getpid()
    if me is None or me.pid != pid:
        stat = _proc_stat(pid)
        me = _current = ProcessIdentity(pid, socket.gethostname(), None if stat is None else stat[1], _BOOT_ID)
    return me


def process_alive(process: ProcessIdentity) -> bool | None:
    """True if ``process`` still runs, False if it ended, None when it cannot be told (another host).

    On Linux: no ``/proc/<pid>``, a zombie, another start time or another boot id mean it ended.
    Without /proc only the pid is checked. Any thread; never blocks.
    """
    me = current_process()
    if process.host != me.host:
        return None
    if process == me:
        return True
    if process.boot_id is not None and me.boot_id is not None and process.boot_id != me.boot_id:
        return False  # the machine was rebooted since the claim
    if me.process_start is not None:  # /proc works here
        stat = _proc_stat(process.pid)
        if stat is None or stat[0] in ("Z", "X"):
            return False
        return process.process_start is None or stat[1] == process.process_start
    try:
        os.kill(process.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner(run_id: str, agent_id: str, row: Any) -> StreamOwner:
    pid, host, start, boot_id, claimed_at = row
    return StreamOwner(run_id, agent_id, ProcessIdentity(int(pid), str(host), start, boot_id), str(claimed_at))


def owner_of(conn: sqlite3.Connection, run_id: str, stored_agent: str) -> StreamOwner | None:
    """The owner row of a stream (``stored_agent``: '' for no agent), or None. Caller's connection."""
    row = conn.execute(f"SELECT {_OWNER_COLUMNS} FROM stream_owners WHERE run_id = ? AND agent_id = ?",
                       (run_id, stored_agent)).fetchone()
    return None if row is None else _owner(run_id, stored_agent, row)


def claim(conn: sqlite3.Connection, run_id: str, stored_agent: str, shown_stream: str) -> StreamOwner | None:
    """Make this process the stream's owner inside the caller's write transaction.

    Returns the previous owner when it was another process that is gone (taken over), else None.
    Raises StreamOwned when another live process (or one on another host) owns it.
    """
    me = current_process()
    found = owner_of(conn, run_id, stored_agent)
    taken_over: StreamOwner | None = None
    if found is not None and found.process != me:
        if process_alive(found.process) is not False:
            raise StreamOwned(found, shown_stream)
        taken_over = found
    conn.execute(
        f"INSERT OR REPLACE INTO stream_owners (run_id, agent_id, {_OWNER_COLUMNS}) VALUES (?,?,?,?,?,?,?)",
        (run_id, stored_agent, me.pid, me.host, me.process_start, me.boot_id, utc_now_iso()),
    )
    return taken_over


def release(conn: sqlite3.Connection, *, run_ids: Iterable[str] = (),
            streams: Iterable[tuple[str, str]] = ()) -> int:
    """Delete this process's owner rows of ``run_ids`` (every agent) and of ``streams``; returns how
    many. Inside the caller's transaction."""
    me = current_process()
    who = "pid = ? AND host = ? AND process_start IS ? AND boot_id IS ?"
    ident = (me.pid, me.host, me.process_start, me.boot_id)
    deleted = 0
    for run_id in run_ids:
        deleted += conn.execute(f"DELETE FROM stream_owners WHERE run_id = ? AND {who}", (run_id, *ident)).rowcount
    for run_id, agent in streams:
        deleted += conn.execute(f"DELETE FROM stream_owners WHERE run_id = ? AND agent_id = ? AND {who}",
                                (run_id, agent, *ident)).rowcount
    return deleted


def owners_of_run(conn: sqlite3.Connection, run_id: str) -> list[StreamOwner]:
    """Every owner row of a run. Caller's connection."""
    rows = conn.execute(f"SELECT agent_id, {_OWNER_COLUMNS} FROM stream_owners WHERE run_id = ?", (run_id,)).fetchall()
    return [_owner(run_id, r[0], r[1:]) for r in rows]


@attrs.frozen(slots=True)
class InterruptedRun:
    """A run ``mark_interrupted`` finished: when its last stored event was, and why."""

    run_id: str
    last_event_at: str
    reason: str


def _age_s(ts_iso: str | None, now: datetime) -> float:
    """Seconds from ``ts_iso`` to ``now`` (an unreadable time counts as long ago)."""
    try:
        then = datetime.fromisoformat(str(ts_iso))
    except ValueError:
        return float("inf")
    if then.tzinfo is None:
        then = then.replace(tzinfo=timezone.utc)
    return (now - then).total_seconds()


def mark_interrupted(conn: sqlite3.Connection, *, unowned_grace_s: float | None = None,
                     now: datetime | None = None) -> list[InterruptedRun]:
    """Finish every stale ``running``/``pending`` run as ``interrupted``, inside the caller's write
    transaction; returns them.

    A run is stale when it has stream owners and none of them is alive (a process on another host
    counts as alive). A run without any (written by a build before schema 3, or by a writer that
    does not claim its streams: the existing app's producers on the bus, the record API, a Redis
    source) is left alone -- nobody can tell whether its writer lives -- unless ``unowned_grace_s``
    is given and its last stored event is at least that old.
    ``completed_at`` (and ``updated_at`` when older) becomes the time of the run's last stored event
    (its streams' ``last_ts_iso``), ``outcome`` is ``interrupted``, a missing summary becomes
    ``{"reason": ..., "interrupted": true}``; the dead owners' rows are deleted.
    """
    now = now or datetime.now(timezone.utc)
    out: list[InterruptedRun] = []
    rows = conn.execute("SELECT run_id, updated_at FROM runs WHERE status IN ('running', 'pending') "
                        "ORDER BY created_at, run_id").fetchall()
    for run_id, updated_at in rows:
        owners = owners_of_run(conn, run_id)
        if any(process_alive(o.process) is not False for o in owners):
            continue
        last = conn.execute("SELECT MAX(last_ts_iso) FROM streams WHERE run_id = ?", (run_id,)).fetchone()[0]
        last = last or updated_at
        if owners:
            reason = ("interrupted: the process writing it (" + ", ".join(sorted({o.describe() for o in owners}))
                      + ") ended without completing it")
        elif unowned_grace_s is not None and _age_s(last, now) >= unowned_grace_s:
            reason = f"interrupted: no live process writes it and its last event is older than {unowned_grace_s:g} s"
        else:
            continue
        conn.execute(
            "UPDATE runs SET status = ?, outcome = ?, completed_at = ?, "
            "updated_at = CASE WHEN updated_at < ? THEN ? ELSE updated_at END, "
            "summary_json = COALESCE(summary_json, ?) WHERE run_id = ?",
            (INTERRUPTED, INTERRUPTED, last, last, last,
             json.dumps({"reason": reason, "interrupted": True}), run_id),
        )
        conn.execute("DELETE FROM stream_owners WHERE run_id = ?", (run_id,))
        out.append(InterruptedRun(run_id, last, reason))
    return out


def reopen_interrupted(conn: sqlite3.Connection, run_id: str, ts_iso: str) -> bool:
    """An ``interrupted`` run is ``running`` again (a process claimed one of its streams); True if it
    was interrupted. Inside the caller's write transaction."""
    return conn.execute(
        "UPDATE runs SET status = 'running', outcome = NULL, completed_at = NULL, "
        "summary_json = CASE WHEN json_valid(summary_json) AND json_extract(summary_json, '$.interrupted') = 1 "
        "THEN NULL ELSE summary_json END, updated_at = CASE WHEN updated_at < ? THEN ? ELSE updated_at END "
        "WHERE run_id = ? AND status = ?", (ts_iso, ts_iso, run_id, INTERRUPTED)).rowcount > 0


class StreamOwnersAPI:
    """Stream ownership and stale runs, mixed into TelemetrySQLiteStore (uses its write connection).

    Thread rules: every method may be called from any thread; the writing ones serialise on the
    store's write lock (and SQLite's), the reading ones use the caller's read connection.
    """

    _write_lock: threading.Lock
    _writer: Callable[[], sqlite3.Connection]
    _reader: Callable[[], sqlite3.Connection]
    _rollback: Callable[[sqlite3.Connection], None]
    max_seq_id: Callable[[str, str | None], int | None]
    _busy_timeout_s: float
    #: About the longest ``claim_stream`` waits for the write lock and then for SQLite's lock.
    claim_wait_s: float = 0.25

    def _init_owners(self) -> None:
        self._claimed: set[tuple[str, str]] = set()
        self._pending_claims: set[tuple[str, str]] = set()  # numbered before they could be claimed
        self.keep_claims_at_close = False

    def keep_claims(self) -> None:
        """Leave this store's stream claims in the file when it closes, as if its process had died:
        the next process that opens the file marks their runs interrupted (``mark_interrupted_runs``).
        For a writer that could not store all of its runs' events. Any thread; never blocks."""
        self.keep_claims_at_close = True

    def _owners_transaction(self, work: Callable[[sqlite3.Connection], Any], wait_s: float | None = None) -> Any:
        """Run ``work`` in one write transaction; with ``wait_s``, TimeoutError when the write lock is
        not free within it, and SQLite's busy wait shortened to it."""
        if not self._write_lock.acquire(timeout=-1 if wait_s is None else wait_s):
            raise TimeoutError(f"the store's writer is busy for more than {wait_s:.2f} s")
        try:
            conn = self._writer()
            if wait_s is not None:
                conn.execute(f"PRAGMA busy_timeout = {max(1, int(wait_s * 1000))}")
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = work(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    self._rollback(conn)
                    raise
            finally:
                if wait_s is not None:
                    conn.execute(f"PRAGMA busy_timeout = {max(0, int(self._busy_timeout_s * 1000))}")
        finally:
            self._write_lock.release()
        return result

    def claim_stream(self, run_id: str, agent_id: str | None) -> int | None:
        """Own stream ``(run_id, agent_id)`` for this process and return its highest stored seq_id
        (None: nothing stored), read in the same transaction: the proxy's ``seq_floor``.

        Any thread; blocks for at most about ``claim_wait_s`` (the proxy calls it under its feed
        lock, which the GUI's stats read takes too): when the write lock or the file is busy that
        long (another process locks it, the disk is full), it logs a warning and returns the stored
        maximum (a read, which never waits), and the claim is taken with the first batch of the
        stream the sink commits (``_claim_pending``). Raises StreamOwned when another live process
        owns the stream. An owner that is gone is taken over (logged); an ``interrupted`` run of the
        stream is ``running`` again.
        """
        agent = stored_agent(agent_id)
        shown = f"{shown_id(run_id)}/{shown_id(agent)}"

        def work(conn: sqlite3.Connection) -> tuple[StreamOwner | None, bool, Any]:
            previous = claim(conn, run_id, agent, shown)
            reopened = reopen_interrupted(conn, run_id, utc_now_iso())
            row = conn.execute("SELECT max_seq_id FROM streams WHERE run_id = ? AND agent_id = ?",
                               (run_id, agent)).fetchone()
            return previous, reopened, row

        try:
            previous, reopened, row = self._owners_transaction(work, wait_s=self.claim_wait_s)
        except (sqlite3.Error, TimeoutError) as exc:
            if isinstance(exc, sqlite3.Error) and not is_retryable_error(exc):
                raise
            self._pending_claims.add((run_id, agent))
            _log.warning("stream %s cannot be claimed yet (%s: %s); it is numbered after its stored seq_id and "
                         "claimed with its first stored batch", shown, type(exc).__name__, exc)
            return self.max_seq_id(run_id, agent_id)
        self._claimed.add((run_id, agent))
        self._pending_claims.discard((run_id, agent))
        if previous is not None:
            _log.warning("stream %s: its owner %s is gone; this process (pid %d) takes it over",
                         shown, previous.describe(), os.getpid())
        if reopened:
            _log.info("run %s was interrupted; a new writer of stream %s resumes it", shown_id(run_id), shown)
        return None if row is None else int(row[0])

    def _claim_pending(self, conn: sqlite3.Connection, streams: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """Inside a write transaction of these streams' events: take the claims ``claim_stream`` could
        not take; returns the streams dealt with (``_claims_committed`` once the transaction commits).
        A stream another live process owns by now is logged (ERROR): its numbering is already made,
        and a collision is reported as a ``seq_conflict`` by the write."""
        done: list[tuple[str, str]] = []
        for run_id, agent in [k for k in streams if k in self._pending_claims]:
            shown = f"{shown_id(run_id)}/{shown_id(agent)}"
            try:
                claim(conn, run_id, agent, shown)
                reopen_interrupted(conn, run_id, utc_now_iso())
            except StreamOwned as exc:
                _log.error("%s; this process numbered it before it could claim it: events that collide are "
                           "reported as seq_conflict", exc)
            done.append((run_id, agent))
        return done

    def _claims_committed(self, done: list[tuple[str, str]]) -> None:
        """The transaction of ``_claim_pending`` committed: its streams are no longer pending."""
        self._pending_claims.difference_update(done)
        self._claimed.update(done)

    def stream_owner(self, run_id: str, agent_id: str | None) -> StreamOwner | None:
        """The process that owns the stream, or None. Any thread; never waits for the writer."""
        return owner_of(self._reader(), run_id, stored_agent(agent_id))

    def release_streams(self) -> int:
        """Give up every stream this store claimed; returns how many rows were deleted. Any thread;
        blocks on the write lock. A failure is logged (a later claim takes the rows over once this
        process has ended)."""
        streams = list(self._claimed)
        if not streams:
            return 0
        try:
            deleted = int(self._owners_transaction(lambda conn: release(conn, streams=streams)))
        except sqlite3.Error as exc:
            _log.warning("could not release %d stream claims (%s: %s)", len(streams), type(exc).__name__, exc)
            return 0
        self._claimed.difference_update(streams)
        return deleted

    def _release_completed(self, conn: sqlite3.Connection, run_ids: Iterable[str]) -> None:
        """Inside a write transaction that commits these runs' RUN_COMPLETED: release their claims."""
        runs = [r for r in dict.fromkeys(run_ids)]
        if runs and conn.execute("SELECT 1 FROM stream_owners LIMIT 1").fetchone() is not None:
            release(conn, run_ids=runs)
            self._claimed.difference_update([k for k in self._claimed if k[0] in runs])

    def mark_interrupted_runs(self, *, unowned_grace_s: float | None = None) -> list[InterruptedRun]:
        """Finish the stale running runs as ``interrupted`` (see ``mark_interrupted``: runs whose stream
        owners are all gone), each logged (WARNING); returns them. Any thread; blocks on the write
        lock. The app (``AppServices``, ``gym_gui.run``) calls it when it opens a file."""
        found: list[InterruptedRun] = self._owners_transaction(
            lambda conn: mark_interrupted(conn, unowned_grace_s=unowned_grace_s))
        for run in found:
            _log.warning("run %s marked interrupted at %s, the time of its last stored event: %s",
                         shown_id(run.run_id), run.last_event_at, run.reason)
        return found
