"""Headless collector: remote workers' Redis streams persisted into SQLite, without Qt.

    python -m gym_gui.run --redis-url redis://host:6379/0 [--run-id RUN ...] [--db FILE]
                          [--until-complete | --idle-exit-s N]
    python -m gym_gui.redis_collect --redis-url URL ...      (the same command)

The window's wiring without the window: a RedisTelemetrySource publishes the streams' events on a
RunBus, a SinkCore (plain thread) stores them losslessly in seq order, its gate pauses the reading
while its backlog is high. Each stream is resumed after its stored seq_id and claimed for this
process (``store.claim_stream``: a stream another live process writes is left unread and reported,
and taken over once that process is gone); runs left ``running`` by a process that is gone are
marked ``interrupted`` when the file is opened. A live progress line, then a summary of what was
read, stored, reported lost, renumbered and rejected. Exit codes (docs/reliability.md):

- 0: everything read is stored and nothing was reported lost, renumbered or rejected;
- 1: failed: the database file was deleted, the last writes missed ``--flush-timeout-s``, a stream is
  written by another live process, or ``--until-complete`` ended by ``--idle-exit-s`` first;
- 2: could not start: a bad argument, Redis unreachable for ``--connect-timeout-s``, the database
  cannot be opened;
- 3: stored, but the source reported lost or renumbered entries, rejected entries, or events were
  not stored (the summary counts them);
- 130 / 143: stopped by SIGINT / SIGTERM, after storing everything read.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from pathlib import Path
from typing import Any, Sequence, TextIO

import redis

from gym_gui.command_exit import command_exit
from gym_gui.gc_tuning import tune_gc
from gym_gui.ingest.shown_ids import shown_id
from gym_gui.run_output import DbFileWatch as _DbFileWatch
from gym_gui.run_output import StopSignals as _StopSignals
from gym_gui.run_output import Terminated as _Terminated
from gym_gui.run_output import id_argument as _id_argument
from gym_gui.run_output import mark_interrupted as _mark_interrupted
from gym_gui.run_output import open_store as _open_store
from gym_gui.run_output import print_run as _print_run
from gym_gui.run_output import safe_output as _safe_output
from gym_gui.run_output import store_the_rest as _store_the_rest
from gym_gui.run_output import unstored_events as _unstored_events
from gym_gui.run_output import DEFAULT_DB_PATH, EXIT_CANNOT_START, EXIT_DATA_LOSS, EXIT_FAILED
from gym_gui.telemetry.events import StreamKey, Topic
from gym_gui.telemetry.run_bus import RunBus, Waker
from gym_gui.telemetry.sink_core import SinkCore
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore
from gym_gui.telemetry.stream_owners import StreamOwned
from gym_gui.transport.redis_client import CONNECTION_ERRORS, make_client
from gym_gui.transport.redis_keys import KEY_PREFIX
from gym_gui.transport.redis_source import SOURCE_CLIENT_NAME, RedisTelemetrySource

__all__ = ["Collector", "build_parser", "main"]

_FINISHED = ("completed", "failed", "cancelled")


def build_parser() -> argparse.ArgumentParser:
    """The collector's command line (``python -m gym_gui.run --redis-url ...`` delegates here)."""
    p = argparse.ArgumentParser(prog="python -m gym_gui.run --redis-url URL",
                                description="Persist remote workers' Redis streams into SQLite (headless).")
    p.add_argument("--redis-url", required=True, help="redis://host:port/db the bridges write to")
    p.add_argument("--run-id", type=_id_argument, action="append", default=[],
                   help="collect only this run (repeatable; default: every stream in Redis)")
    p.add_argument("--db", type=Path, default=DEFAULT_DB_PATH, help="SQLite file (created if missing)")
    p.add_argument("--until-complete", action="store_true",
                   help="exit once every stream seen (or of the --run-id runs) has its RUN_COMPLETED stored")
    p.add_argument("--idle-exit-s", type=float, default=None, help="exit after this long without a new entry")
    p.add_argument("--key-prefix", default=KEY_PREFIX)
    p.add_argument("--connect-timeout-s", type=float, default=10.0, help="how long to try reaching Redis at start")
    p.add_argument("--progress-interval-s", type=float, default=0.5)
    p.add_argument("--flush-timeout-s", type=float, default=120.0, help="how long to wait for the last writes")
    p.add_argument("--log-level", default="WARNING")
    return p


class Collector:
    """Bus, SinkCore and RedisTelemetrySource over one open store, plus what the summary needs.

    Built, started, watched and stopped by one thread (the main thread of ``main``); the floor
    callable runs on the source's thread, ``stats``-like reads from any thread.
    """

    def __init__(self, store: TelemetrySQLiteStore, url: str, *, run_ids: Sequence[str] = (),
                 key_prefix: str = KEY_PREFIX) -> None:
        """Wire everything; nothing runs before ``start``. Raises ValueError on a malformed URL."""
        self.store = store
        self.run_ids = tuple(dict.fromkeys(run_ids))
        self.bus = RunBus()
        self.sink = SinkCore(store, self.bus)
        self.waker = Waker()  # wakes the main thread when a completion is published
        self.completions = self.bus.subscribe(Topic.RUN_COMPLETED, "collector-completions", maxlen=None,
                                              waker=self.waker)
        self.completed: set[StreamKey] = set()  # a RUN_COMPLETED published (stored once flushed)
        self._lock = threading.Lock()
        self._refused: dict[StreamKey, str] = {}  # streams another live process writes (now)
        self.ever_refused: dict[StreamKey, str] = {}
        claim = getattr(store, "claim_stream", None)
        self._claim = claim if claim is not None else store.max_seq_id
        self.source = RedisTelemetrySource(self.bus, url=url, seq_floor=self._floor, gate=self.sink.gate,
                                           accept=self._accept if self.run_ids else None, key_prefix=key_prefix,
                                           block_ms=100, name="redis-collector")  # 100 ms: a prompt stop
        self.started = time.monotonic()

    def _accept(self, run_id: str, _agent_id: str | None) -> bool:
        return run_id in self.run_ids

    def _floor(self, run_id: str, agent_id: str | None) -> int | None:
        """The stream's stored seq_id, claiming it (source thread). StreamOwned is noted and re-raised:
        the source leaves the stream unread and asks again at its next discovery."""
        try:
            floor = self._claim(run_id, agent_id)
        except StreamOwned as exc:
            with self._lock:
                self._refused[(run_id, agent_id)] = self.ever_refused[(run_id, agent_id)] = str(exc)
            raise
        with self._lock:
            self._refused.pop((run_id, agent_id), None)
        return floor

    def refused(self) -> dict[StreamKey, str]:
        """Streams left unread because another live process writes them. Any thread."""
        with self._lock:
            return dict(self._refused)

    def start(self) -> None:
        """Start the sink thread, then the reader. Owner thread; never blocks."""
        self.sink.start()
        self.source.start()

    def note_completions(self) -> None:
        """Take the completions published since the last call. Owner thread."""
        for evt in self.completions.drain():
            self.completed.add((evt.run_id, evt.agent_id))

    def incomplete(self) -> list[StreamKey] | None:
        """The streams still without their completion (a finished stored run counts as complete), or
        None while a wanted run has no stream yet. Owner thread; reads the store."""
        self.note_completions()
        streams = self.source.streams()
        if not streams and not self.run_ids:
            return None
        if any(run not in {s[0] for s in streams} for run in self.run_ids):
            return None
        out = []
        for stream in streams:
            if stream in self.completed:
                continue
            run = self.store.run(stream[0])
            if run is None or run.status not in _FINISHED or stream in self.refused():
                out.append(stream)
        return out

    def stop(self, out: TextIO, signals: _StopSignals, timeout_s: float) -> bool:
        """Stop reading, then store everything read (``run_output.store_the_rest``: a stop signal
        ends the wait); True when all of it is committed. Owner (main) thread; blocks."""
        self.source.stop(10.0)
        stored = _store_the_rest(out, signals, self.sink, timeout_s)
        self.bus.unsubscribe(Topic.RUN_COMPLETED, "collector-completions")
        return stored


def _reach(url: str, timeout_s: float) -> str | None:
    """None once Redis answers PING, else why not (after ``timeout_s``). Blocks."""
    client = make_client(url, client_name=SOURCE_CLIENT_NAME, socket_timeout_s=2.0)
    deadline = time.monotonic() + timeout_s
    pause = threading.Event()
    try:
        while True:
            try:
                client.ping()
                return None
            except CONNECTION_ERRORS + (redis.RedisError,) as exc:
                if time.monotonic() >= deadline:
                    return f"{type(exc).__name__}: {exc}"
                pause.wait(0.1)
    finally:
        client.close()


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Collect until complete, idle or signalled. Main thread; blocks until everything read is stored."""
    out = _safe_output(out or sys.stdout)
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.WARNING),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    tune_gc()
    try:
        why = _reach(args.redis_url, args.connect_timeout_s)
    except ValueError as exc:  # a malformed URL
        print(f"bad --redis-url {shown_id(args.redis_url, 300)}: {shown_id(str(exc), 300)}", file=out)
        return EXIT_CANNOT_START
    if why is not None:
        print(f"cannot reach Redis at {shown_id(args.redis_url, 300)}: {shown_id(why, 300)}", file=out)
        return EXIT_CANNOT_START
    store = _open_store(args.db, out)
    if store is None:
        return EXIT_CANNOT_START
    try:
        _mark_interrupted(store, out)
        collector = Collector(store, args.redis_url, run_ids=args.run_id, key_prefix=args.key_prefix)
        watch = _DbFileWatch(args.db)
        runs = ", ".join(shown_id(r) for r in collector.run_ids) or "every stream"
        print(f"collecting {runs} from {shown_id(args.redis_url, 300)}", file=out)
        print(f"database: {shown_id(str(args.db.resolve()), 300)}", file=out)
        outcome: dict[str, Any] = {"signal_exit": None, "db_gone": False, "incomplete": None}
        with _StopSignals() as signals:
            try:
                collector.start()
                signals.armed = signals.received is None
                if signals.received is not None:
                    raise _Terminated(signals.received)
                _follow(out, collector, watch, args, outcome)
            except _Terminated as stop:
                outcome["signal_exit"] = stop.exit_code
                print(f"\n{stop.words}: storing what was read", file=out, flush=True)
            finally:
                signals.armed = False
                flushed = collector.stop(out, signals, args.flush_timeout_s)
        if watch.report_if_gone(out, "what was stored in it is gone"):  # (also after the last progress line)
            outcome["db_gone"] = True
        _print_progress(out, collector, out.isatty(), final=True)
        if out.isatty():
            print(file=out)
        code = _print_summary(out, collector, args.db, flushed, outcome)
        return outcome["signal_exit"] if outcome["signal_exit"] is not None and code != EXIT_FAILED else code
    finally:
        store.close()


def _follow(out: TextIO, c: Collector, watch: _DbFileWatch, args: argparse.Namespace,
            outcome: dict[str, Any]) -> None:
    """Print progress until complete (``--until-complete``), idle (``--idle-exit-s``), a lost database or a signal."""
    interactive = out.isatty()
    shown_refused: set[StreamKey] = set()
    last_read, last_change = -1, time.monotonic()
    next_progress = 0.0
    while True:
        c.waker.wait(max(0.01, min(args.progress_interval_s, next_progress - time.monotonic())))
        now = time.monotonic()
        if now >= next_progress:
            _print_progress(out, c, interactive)
            next_progress = now + args.progress_interval_s
        for stream, why in c.refused().items():
            if stream not in shown_refused:
                print(("\n" if interactive else "") + f"ERROR: {shown_id(why, 400)}; it is left unread", file=out,
                      flush=True)
                shown_refused.add(stream)
        if watch.report_if_gone(out, "nothing more can be stored; stopping"):
            outcome["db_gone"] = True
            return
        if args.until_complete:
            left = c.incomplete()
            if left == [] and c.sink.flush(args.flush_timeout_s):  # every completion committed
                return
        read = c.source.stats()["entries_read"]
        if read != last_read or c.sink.backlog():
            last_read, last_change = read, now
        elif args.idle_exit_s is not None and now - last_change >= args.idle_exit_s:
            if args.until_complete:
                left = c.incomplete()
                outcome["incomplete"] = left if left is not None else [(r, None) for r in c.run_ids] or [("(none seen)", None)]
            print(("\n" if interactive else "") + f"no new entry for {args.idle_exit_s:g} s: stopping", file=out,
                  flush=True)
            return


def _print_progress(out: TextIO, c: Collector, interactive: bool, *, final: bool = False) -> None:
    s = c.source.stats()
    k = c.sink.stats()
    elapsed_s = max(time.monotonic() - c.started, 1e-9)
    rate = k["persisted"] / elapsed_s if final else k["rows_per_s"]
    line = (f"streams {s['streams']:>3}  read {s['entries_read']:>8}  stored {k['persisted']:>8}  "
            f"stored/s {rate:>8.0f}  backlog {k['backlog']:>6}  lost {s['lost']:>4}  "
            f"renumbered {s['renumbered']:>4}  rejected {s['rejected_total']:>4}")
    if not s["connected"] and s["last_error"] and not final:  # (the source is disconnected once stopped)
        line += "  (Redis unreachable)"
    print(("\r" + line) if interactive else line, end="" if interactive else "\n", file=out, flush=True)


def _ranges(ranges: dict[str, list[Any]], limit: int = 5) -> str:
    parts = [f"{shown_id(stream)} {a}..{b}" for stream, rs in ranges.items() for a, b in rs]
    return ", ".join(parts[:limit]) + (f" and {len(parts) - limit} more" if len(parts) > limit else "")


def _print_summary(out: TextIO, c: Collector, db: Path, flushed: bool, outcome: dict[str, Any]) -> int:
    s = c.source.stats()
    k = c.sink.stats()
    published = int(s["published_total"])
    unstored, kept_aside = (published, 0) if outcome["db_gone"] else _unstored_events(published, k)
    print("summary:", file=out)
    if not outcome["db_gone"]:
        for run_id in dict.fromkeys(run for run, _agent in c.source.streams()):
            _print_run(out, c.store, run_id)
    print(f"  streams: {s['streams']} read, {s['entries_read']} entries read, {published} events published, "
          f"{k['persisted']} stored in {k['batches']} batches ({k['errors']} write errors, {k['retries']} retries, "
          f"{kept_aside} kept aside)",
          file=out)
    print(f"  lost in Redis (reported by the source): {s['lost']}" + (f" ({_ranges(s['lost_ranges'])})" if s["lost"] else ""),
          file=out)
    print(f"  renumbered (skipped): {s['renumbered']}"
          + (f" ({_ranges(s['renumbered_ranges'])})" if s["renumbered"] else ""), file=out)
    rejected = ", ".join(f"{r} {n}" for r, n in sorted(s["rejected"].items())) or "none"
    print(f"  rejected entries: {rejected}", file=out)
    if s["vanished"]:
        print(f"  vanished from Redis: " + ", ".join(f"{shown_id(k_)} after {v}" for k_, v in s["vanished"].items()),
              file=out)
    bad = int(s["lost"]) + int(s["renumbered"]) + int(s["rejected_total"]) + kept_aside + unstored
    print(f"  not stored: {bad} ({s['lost']} lost in Redis, {s['renumbered']} renumbered, {s['rejected_total']} "
          f"rejected, {kept_aside} kept aside as malformed in run_events, {unstored} unstored events)"
          if bad else "  not stored: nothing", file=out)
    print(f"database: {shown_id(str(db.resolve()), 300)}", file=out)
    if outcome["db_gone"]:
        print(f"  ERROR: the database file or its write-ahead log was deleted; up to {published} events are lost "
              "(a new collector reads them again from Redis while it keeps them)", file=out)
        return EXIT_FAILED
    if not flushed:
        print("  WARNING: not every event was stored before the flush timeout", file=out)
        return EXIT_FAILED
    refused = c.refused()
    if refused:
        print("  " + "\n  ".join(f"ERROR: {shown_id(why, 400)}" for why in refused.values()), file=out)
        return EXIT_FAILED
    if outcome["incomplete"]:
        print(f"  ERROR: {len(outcome['incomplete'])} streams did not complete: "
              + ", ".join(f"{shown_id(r)}/{shown_id(a or '')}" for r, a in outcome["incomplete"][:5]), file=out)
        return EXIT_FAILED
    if bad:
        print(f"  WARNING: {bad} events not stored (see above)", file=out)
        return EXIT_DATA_LOSS
    return 0


if __name__ == "__main__":
    command_exit(main)
