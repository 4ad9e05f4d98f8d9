"""The headless commands' shared output and start-up helpers (Qt-free).

``gym_gui.run`` (a local worker) and ``gym_gui.redis_collect`` (remote streams) print the same
lines and end with the same exit codes: the exit codes, the ``--run-id`` check, SIGTERM handled
like Ctrl+C, the watch on the database file, opening the store with one clear line when it cannot
be, the runs a process that is gone left running, and one stored run's summary lines. Everything
here runs on the main thread of such a command.
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import time
from pathlib import Path
from types import FrameType
from typing import Any, Callable, TextIO

from gym_gui.ingest.records import MAX_ID_CHARS
from gym_gui.ingest.shown_ids import shown_id, shown_text
from gym_gui.telemetry.sqlite_store import SchemaVersionError, TelemetrySQLiteStore

__all__ = [
    "DEFAULT_DB_PATH", "EXIT_CANNOT_START", "EXIT_CODES", "EXIT_DATA_LOSS", "EXIT_FAILED", "EXIT_TERMINATED",
    "DbFileWatch", "StopSignals", "StopWaiting", "Terminated", "id_argument", "mark_interrupted", "open_store",
    "print_run", "run_outcome", "safe_output", "store_the_rest", "unstored_events",
]

EXIT_CODES = {"completed": 0, "failed": 1, "cancelled": 130}
EXIT_FAILED = 1
EXIT_CANNOT_START = 2
EXIT_DATA_LOSS = 3
EXIT_TERMINATED = 128 + signal.SIGTERM
DEFAULT_DB_PATH = Path("runs") / "telemetry.sqlite"


def id_argument(text: str) -> str:
    """An id given on the command line: text a database can store (argv bytes that are not UTF-8 are not)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise argparse.ArgumentTypeError(f"{shown_id(text)} is not valid UTF-8 text") from None
    if not text or len(text) > MAX_ID_CHARS:
        raise argparse.ArgumentTypeError(f"an id must have 1 to {MAX_ID_CHARS} characters")
    return text



class Terminated(BaseException):
    """Raised in the main thread by the first stop signal while a command follows its run."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """130 for SIGINT (Ctrl+C), 143 for SIGTERM, 129 for SIGHUP (the terminal closed)."""
        return 128 + self.signum

    @property
    def words(self) -> str:
        """What happened, for the line the command prints."""
        return _STOP_WORDS.get(self.signum, f"signal {self.signum}")


class StopWaiting(BaseException):
    """Raised in the main thread by a stop signal while a command waits for its last writes."""


#: The signals that stop a headless command, and how its output names them.
_STOP_WORDS = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated (SIGTERM)",
               signal.SIGHUP: "hung up (SIGHUP: the terminal closed)"}


class StopSignals:
    """SIGINT (Ctrl+C), SIGTERM and SIGHUP for a headless command, one rule for all three.

    While ``armed`` (following the run) the first raises ``Terminated`` in the main thread: the
    command stops its source, stores what was read and prints its summary. While ``waiting`` (for
    the last writes) one raises ``StopWaiting``: the command stops waiting, counts what is not
    stored and prints its summary. Otherwise (starting, stopping the worker) a signal is only noted
    (``received``), so a second Ctrl+C never cuts a shutdown short with a traceback. Main thread only.
    """

    def __init__(self) -> None:
        self.armed = False
        self.waiting = False
        self.received: int | None = None  # the first stop signal's number
        self._previous: dict[int, Any] = {}

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum
        if self.armed:
            self.armed = False
            raise Terminated(signum)
        if self.waiting:
            self.waiting = False
            raise StopWaiting()

    def wait_or_stop(self, wait: Callable[[], object]) -> bool:
        """Run ``wait()`` with a stop signal ending it (``waiting``); False if one did. Main thread;
        blocks as long as ``wait``."""
        self.waiting = True
        try:
            try:
                wait()
            finally:
                self.waiting = False
        except StopWaiting:  # (also one that came as the wait ended)
            return False
        return True

    def __enter__(self) -> StopSignals:
        for signum in _STOP_WORDS:
            try:
                self._previous[signum] = signal.signal(signum, self._on_signal)
            except ValueError:  # not the main thread: nothing to install
                break
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()


class DbFileWatch:
    """Notices when the database file, or its write-ahead log, is deleted or replaced under the open
    store (SQLite goes on writing into the deleted inode: those writes are gone). Main thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.wal_path = Path(f"{path}-wal")
        self._identity = self._stat(self.path)
        self._wal_identity = self._stat(self.wal_path)  # (None until SQLite has made it)
        #: What ``gone`` found: None, ``"file"`` or ``"wal"``.
        self.lost_part: str | None = None
        self.reported = False  # (``report_if_gone`` said so)

    @staticmethod
    def _stat(path: Path) -> tuple[int, int] | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return (st.st_dev, st.st_ino)

    def gone(self) -> bool:
        """True if the file the store opened, or the -wal file it writes, is no longer at its path."""
        if self._identity is not None and self._stat(self.path) != self._identity:
            self.lost_part = "file"
        elif self.lost_part is None:
            wal = self._stat(self.wal_path)
            if self._wal_identity is None:
                self._wal_identity = wal
            elif wal != self._wal_identity:
                self.lost_part = "wal"
        return self.lost_part is not None

    def report_if_gone(self, out: TextIO, consequence: str) -> bool:
        """``gone``, and once it is: one ERROR line naming the part and ``consequence``. Main thread."""
        if self.reported or not self.gone():
            return self.reported
        self.reported = True
        print(f"\nERROR: {self.what} was deleted or replaced during the run: {consequence}", file=out, flush=True)
        return True

    @property
    def what(self) -> str:
        """The part that ``gone`` found missing, for the command's ERROR line."""
        if self.lost_part == "wal":
            return f"the database's write-ahead log {shown_id(str(self.wal_path), 300)}"
        return f"the database file {shown_id(str(self.path), 300)}"


class _Output:
    """A command's output that never stops the command: text it cannot encode (a lone surrogate in
    an id) is escaped, and once the reader is gone (``| head``, a closed terminal) everything
    written is dropped. Main thread."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self.closed_by_reader = False

    def write(self, text: str) -> int:
        if not self.closed_by_reader:
            try:
                return self._out.write(text)
            except (OSError, ValueError):  # BrokenPipeError, EIO; ValueError: the file was closed
                self._gone()
        return len(text)

    def flush(self) -> None:
        if not self.closed_by_reader:
            try:
                self._out.flush()
            except (OSError, ValueError):
                self._gone()

    def isatty(self) -> bool:
        try:
            return not self.closed_by_reader and self._out.isatty()
        except (OSError, ValueError):
            return False

    def _gone(self) -> None:
        self.closed_by_reader = True
        try:  # what is still buffered would fail again at exit: send it, and all later output, nowhere
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._out.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass


def safe_output(out: TextIO) -> TextIO:
    """``out`` made unable to fail: escaped when it cannot encode a text, quiet once its reader is gone."""
    reconfigure = getattr(out, "reconfigure", None)
    if reconfigure is not None:
        try:
            reconfigure(errors="backslashreplace")
        except (ValueError, OSError):
            pass
    return out if isinstance(out, _Output) else _Output(out)  # type: ignore[return-value]


def open_store(db: Path, out: TextIO) -> TelemetrySQLiteStore | None:
    """The store, or None after printing one line that says why it cannot be opened."""
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
        if db.exists():
            open(db, "r+b").close()  # SQLite would fall back to read-only and fail on the first write
        return TelemetrySQLiteStore(db)
    except (OSError, sqlite3.Error, SchemaVersionError) as exc:  # (a foreign or newer file: SchemaVersionError)
        print(f"cannot open the database {shown_id(str(db), 300)}: {shown_id(str(exc), 300)}", file=out)
        return None
    except RuntimeError as exc:  # LOG622A: a damaged file (truncated, malformed) or a disk I/O error
        if not str(exc).startswith("LOG622A:"):
            raise
        print(f"cannot open the database {shown_id(str(db), 300)}: {shown_id(str(exc), 300)}", file=out)
        return None



def mark_interrupted(store: TelemetrySQLiteStore, out: TextIO) -> None:
    """Runs a process that is gone left ``running`` are ``interrupted``: say so (one line each)."""
    try:
        found = store.mark_interrupted_runs()
    except sqlite3.Error as exc:
        print(f"could not check for interrupted runs: {shown_id(str(exc), 300)}", file=out)
        return
    for run in found:
        print(f"run {shown_id(run.run_id)} was left running by a process that is gone: marked interrupted at "
              f"{shown_id(run.last_event_at)}, the time of its last stored event", file=out)



def print_run(out: TextIO, store: TelemetrySQLiteStore, run_id: str) -> str | None:
    """Print one run's stored state; its outcome (``failed`` when it cannot be read back, ``running``
    when its end is not stored, None if not stored at all). A command with a run still ``running``
    keeps its claims (``store.keep_claims``), so the next open of the file marks the run interrupted."""
    try:
        run = store.run(run_id)
        if run is None:
            return None
        episodes, steps = store.episode_count(run.run_id), store.step_count(run.run_id)
    except (sqlite3.Error, UnicodeError, ValueError) as exc:
        print(f"  run {shown_id(run_id)}: cannot be read back ({shown_id(str(exc), 200)})", file=out)
        return "failed"
    unended = run.outcome is None and run.status == "running"
    outcome = "running" if unended else run.outcome or "failed"
    summary = run.summary or {}
    shown = "none stored (still running in the file)" if unended else shown_id(outcome)
    print(f"  run {shown_id(run.run_id)} ({shown_id(run.env_id or 'unknown env')}): outcome {shown}", file=out)
    print(f"  stored: {episodes} episodes, {steps} steps", file=out)
    for key in ("greedy_success_rate", "mean_return", "duration_s", "reason"):
        if key in summary:
            print(f"  {key}: {shown_id(str(summary[key]), 300)}", file=out)
    if outcome != "completed":
        if run.exit_code is not None or run.signal is not None:
            print(f"  worker exit: {shown_id(str(run.signal or f'exit code {run.exit_code}'))}", file=out)
        if run.stderr_tail:
            tail = run.stderr_tail.strip().splitlines()[-5:]
            print("  stderr tail:\n    " + "\n    ".join(shown_text(line, 300) for line in tail), file=out)
    return outcome


def unstored_events(published: int, sink_stats: dict[str, Any]) -> tuple[int, int]:
    """``(lost, kept_aside)`` of the events a sink was given: ``lost`` are in no table (every
    published event is committed -- stored, kept aside or already there -- or lost);
    ``kept_aside`` are in ``run_events`` as malformed, with the reason, instead of their own rows."""
    return max(int(sink_stats["lost"]), published - int(sink_stats["persisted"])), int(sink_stats["rejected"])


def run_outcome(outcomes: list[str]) -> str:
    """The outcome a command exits with for the runs it shows: ``completed`` only when every one
    completed, else the first that failed (any outcome but the two below), else ``cancelled``."""
    if not outcomes:
        return "failed"
    for outcome in outcomes:
        if outcome not in ("completed", "cancelled"):
            return outcome
    return "cancelled" if "cancelled" in outcomes else "completed"


def store_the_rest(out: TextIO, signals: StopSignals, sink: Any, timeout_s: float, *, stop_now: bool = False) -> bool:
    """Wait until ``sink`` (a SinkCore) has committed everything published, then stop it, all
    within about ``timeout_s``; True when nothing is lost. Main thread; blocks.

    After a second without the end it says how many events are left; a stop signal meanwhile ends
    the wait (``StopSignals.waiting``), as ``stop_now`` does at once: the sink gives up and counts
    what it had not stored.
    """
    deadline = time.monotonic() + timeout_s

    def wait_for_the_sink() -> None:
        if not sink.flush(min(1.0, timeout_s)):
            left_s = max(0.0, deadline - time.monotonic())
            print(f"\nstoring the last {sink.backlog()} events (at most {left_s:.0f} s more; Ctrl+C stops waiting "
                  "and counts them lost)", file=out, flush=True)
            sink.flush(left_s)

    stopped_waiting = stop_now or not signals.wait_or_stop(wait_for_the_sink)
    if stopped_waiting:
        print(f"\nstopped waiting for the last writes: the {sink.backlog()} events not stored yet are counted lost",
              file=out, flush=True)
    return bool(sink.stop(0.1 if stopped_waiting else max(0.1, deadline - time.monotonic())))
