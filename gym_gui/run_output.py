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
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from gym_gui.ingest.records import MAX_ID_CHARS
from gym_gui.ingest.shown_ids import shown_id, shown_text
from gym_gui.telemetry.sqlite_store import SchemaVersionError, TelemetrySQLiteStore

__all__ = [
    "DEFAULT_DB_PATH", "EXIT_CANNOT_START", "EXIT_CODES", "EXIT_DATA_LOSS", "EXIT_FAILED", "EXIT_TERMINATED",
    "DbFileWatch", "SigtermLikeSigint", "Terminated", "id_argument", "mark_interrupted", "open_store",
    "print_run", "run_outcome", "safe_output", "unstored_events",
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
    """Raised in the main thread by the first SIGTERM: handled like Ctrl+C."""


class SigtermLikeSigint:
    """SIGTERM handled like Ctrl+C: while ``armed`` (following the run) the first one raises
    Terminated in the main thread; otherwise (starting, storing the backlog) it is only noted, so
    the shutdown that stores the backlog is never cut short. Main thread only."""

    def __init__(self) -> None:
        self.armed = False
        self.received = False
        self._previous: Any = None

    def _on_sigterm(self, _signum: int, _frame: FrameType | None) -> None:
        first = not self.received
        self.received = True
        if first and self.armed:
            self.armed = False
            raise Terminated()

    def __enter__(self) -> SigtermLikeSigint:
        try:
            self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        except ValueError:  # not the main thread: nothing to install
            self._previous = None
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


class DbFileWatch:
    """Notices when the database file is deleted or replaced under the open store. Main thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._identity = self._stat()

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_dev, st.st_ino)

    def gone(self) -> bool:
        """True if the file the store opened is no longer at its path."""
        return self._identity is not None and self._stat() != self._identity



def safe_output(out: TextIO) -> TextIO:
    """``out`` made unable to fail on text it cannot encode (a lone surrogate in an id)."""
    reconfigure = getattr(out, "reconfigure", None)
    if reconfigure is not None:
        try:
            reconfigure(errors="backslashreplace")
        except (ValueError, OSError):
            pass
    return out


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
    """Print one run's stored state; its outcome (``failed`` when it cannot be read back, None if not stored)."""
    try:
        run = store.run(run_id)
        if run is None:
            return None
        episodes, steps = store.episode_count(run.run_id), store.step_count(run.run_id)
    except (sqlite3.Error, UnicodeError, ValueError) as exc:
        print(f"  run {shown_id(run_id)}: cannot be read back ({shown_id(str(exc), 200)})", file=out)
        return "failed"
    outcome = run.outcome or "failed"
    summary = run.summary or {}
    print(f"  run {shown_id(run.run_id)} ({shown_id(run.env_id or 'unknown env')}): outcome {shown_id(outcome)}", file=out)
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
