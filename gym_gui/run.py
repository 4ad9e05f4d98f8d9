"""Headless end-to-end run: a worker through the proxy, the RunBus and the sink (SinkCore) into SQLite, no Qt.

    python -m gym_gui.run --db runs/demo.sqlite --env FrozenLake-v1 --episodes 300
    python -m gym_gui.run --db runs/x.sqlite --default-agent-id agent6 -- python my_worker.py --flag

Without a command it runs the project's tabular Q-learning worker. It prints a live progress line
and a final summary. Exit codes:

- 0: the run completed and every line of it is stored;
- 1: the run failed (or its events could not all be stored: the database file was deleted during
  the run, or the last writes did not finish within ``--flush-timeout-s``; or its stream is written
  by another live process, so its records were refused as ``stream_owned``);
- 2: the run could not start (the worker cannot be started, or the database cannot be opened);
- 3: the run completed, but some of its lines were rejected or events not stored (the summary
  counts them by reason);
- 130: cancelled by SIGINT (Ctrl+C); 143: by SIGTERM; 129: by SIGHUP (the terminal closed). Each
  stops the worker (SIGTERM, so it can write its ``run_completed``), stores everything read, and
  prints the summary. A further signal while the worker stops is only noted; one while the last
  writes are waited for ends the wait, and what was not stored is counted lost (exit 1).

Output to a reader that went away (``| head``, a closed terminal) is dropped; the run goes on.
"""

from __future__ import annotations

import argparse
import logging
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any, Sequence, TextIO

from gym_gui.command_exit import command_exit
from gym_gui.gc_tuning import tune_gc
from gym_gui.ingest.proxy import DEFAULT_AGENT_ID, TelemetryProxy
from gym_gui.ingest.shown_ids import shown_id
from gym_gui.ingest.worker_specs import WorkerSpec
from gym_gui.run_output import (DEFAULT_DB_PATH, EXIT_CANNOT_START, EXIT_CODES, EXIT_DATA_LOSS, EXIT_FAILED,
                                DbFileWatch, StopSignals, Terminated, id_argument, mark_interrupted, open_store,
                                print_run, run_outcome, safe_output, store_the_rest, unstored_events)
from gym_gui.telemetry.events import Topic
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.telemetry.sink_core import SinkCore
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore
from gym_gui.workers.runtime import new_run_id

__all__ = ["build_parser", "main", "split_command", "worker_argv"]


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (also used by tools/demo)."""
    parser = argparse.ArgumentParser(
        prog="python -m gym_gui.run",
        description="Run a training worker headless: live progress, every event persisted to SQLite.",
        epilog="Anything after `--` is the worker command to run instead of the built-in Q-learning worker. "
               "With --redis-url URL it collects remote streams instead (--redis-url URL --help).",
    )
    parser.add_argument("--db", type=Path, default=DEFAULT_DB_PATH, help="SQLite file (created if missing)")
    parser.add_argument("--env", default="FrozenLake-v1", help="Gymnasium env of the built-in workers: ToyText (Q-learning) or CartPole-v1 (RGB frames)")
    parser.add_argument("--episodes", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--agent-id", default="agent-1", help="agent id of the built-in worker")
    parser.add_argument("--run-id", type=id_argument, default=None, help="run id (default: generated)")
    parser.add_argument("--step-rate-hz", type=float, default=0.0, help="built-in worker step rate limit, 0 = unlimited")
    parser.add_argument("--heartbeat-interval-s", type=float, default=1.0)
    parser.add_argument("--default-agent-id", default=DEFAULT_AGENT_ID, help="agent id for records without one")
    parser.add_argument("--progress-interval-s", type=float, default=0.5)
    parser.add_argument("--flush-timeout-s", type=float, default=120.0, help="how long to wait for the last writes")
    parser.add_argument("--log-level", default="WARNING")
    return parser


def worker_spec(args: argparse.Namespace) -> WorkerSpec:
    """The built-in worker's spec for these options."""
    return WorkerSpec(env_id=args.env, episodes=args.episodes, seed=args.seed, agent_id=args.agent_id,
                      step_rate_hz=args.step_rate_hz, heartbeat_interval_s=args.heartbeat_interval_s)


def worker_argv(args: argparse.Namespace, run_id: str) -> list[str]:
    """The built-in worker's command line for these options."""
    return worker_spec(args).argv(run_id)


def split_command(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Own options before ``--``, the worker command after it (also used by ``python -m gym_gui``)."""
    argv = list(argv)
    if "--" in argv:
        cut = argv.index("--")
        return argv[:cut], argv[cut + 1:]
    return argv, []


class _Progress:
    """Counts what the run has published, for the progress line (main thread only).

    Steps are counted from the proxy's published counts, not from a live subscription: at full
    speed a bounded step subscription drained twice a second drops most steps, and every drop costs
    the reader thread its accounting (a lost range, an OVERFLOW notice), about 2 us a step. The
    last episode's return comes from a bounded live subscription to the episodes.
    """

    def __init__(self, bus: RunBus, proxy: TelemetryProxy) -> None:
        self._proxy = proxy
        self.episodes = bus.subscribe(Topic.EPISODE_FINALIZED, "cli-progress", maxlen=4096)
        self.step_count = 0
        self.episode_count = 0
        self.last_return: float | None = None
        self.started = time.monotonic()
        self._last_t = self.started
        self._last_steps = 0
        self.steps_per_s = 0.0

    def update(self) -> None:
        published = self._proxy.stats()["events_published"]
        self.step_count = int(published.get(Topic.STEP_APPENDED.name, 0))
        self.episode_count = int(published.get(Topic.EPISODE_FINALIZED.name, 0))
        episodes = self.episodes.drain()
        if episodes:
            self.last_return = float(episodes[-1].payload.get("total_reward", 0.0))
        now = time.monotonic()
        if now > self._last_t:
            self.steps_per_s = (self.step_count - self._last_steps) / (now - self._last_t)
        self._last_t, self._last_steps = now, self.step_count

    @property
    def dropped(self) -> int:
        """Episodes the progress line's live subscription dropped (it has no step subscription)."""
        return self.episodes.dropped


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run one worker to completion (with ``--redis-url``: collect remote streams, ``redis_collect``).
    Main thread; blocks until the run is persisted."""
    own_args, command = split_command(sys.argv[1:] if argv is None else argv)
    if any(a == "--redis-url" or a.startswith("--redis-url=") for a in own_args):  # the collector, no Qt
        from gym_gui.redis_collect import main as collect
        return collect(own_args + (["--", *command] if command else []), out=out)
    out = safe_output(out or sys.stdout)
    args = build_parser().parse_args(own_args)
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.WARNING),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    tune_gc()  # collector thresholds for full-speed ingest (gym_gui/gc_tuning.py)
    run_id = args.run_id or new_run_id("run")
    argv_to_run = command or worker_argv(args, run_id)
    store = open_store(args.db, out)
    if store is None:
        return EXIT_CANNOT_START
    mark_interrupted(store, out)
    watch = DbFileWatch(args.db)
    bus = RunBus()
    sink = SinkCore(store, bus)  # its own plain thread: no Qt, no event loop
    proxy = TelemetryProxy(bus, default_agent_id=args.default_agent_id, run_id=run_id,
                           seq_floor=store.claim_stream, gate=sink.gate, name="worker")
    progress = _Progress(bus, proxy)
    sink.start()
    print(f"run {shown_id(run_id)}: {shown_id(' '.join(argv_to_run), 500)}", file=out)
    print(f"database: {shown_id(str(args.db.resolve()), 300)}", file=out)
    interactive = out.isatty()
    outcome: dict[str, Any] = {"signal_exit": None, "db_gone": None}
    with StopSignals() as signals:
        try:
            try:
                proxy.spawn(argv_to_run)
            except OSError as exc:
                print(f"cannot start the worker {shown_id(argv_to_run[0], 300)!r}: {shown_id(str(exc), 300)}", file=out)
                return EXIT_CANNOT_START
            try:
                signals.armed = signals.received is None
                if signals.received is not None:  # it came while starting: stop at once, as if it came now
                    raise Terminated(signals.received)
                _follow(out, progress, proxy, sink, interactive, watch, args.progress_interval_s, outcome)
            except Terminated as stop:
                outcome["signal_exit"] = stop.exit_code
                print(f"\n{stop.words}: stopping the worker", file=out, flush=True)
                proxy.stop(5.0)
            finally:
                signals.armed = False
        finally:
            flushed = _shut_down(out, proxy, sink, args.flush_timeout_s, signals)
    if watch.report_if_gone(out, "what was stored in it is gone"):  # (also after the last progress line)
        outcome["db_gone"] = watch.lost_part
    _print_progress(out, progress, proxy, sink, interactive, final=True)
    if interactive:
        print(file=out)
    try:
        code = _print_summary(out, store, proxy, sink, progress, args.db, flushed, db_gone=outcome["db_gone"])
        return outcome["signal_exit"] if outcome["signal_exit"] is not None and code != EXIT_FAILED else code
    finally:
        if not flushed:  # its runs may lack their end: the next open of the file marks them interrupted
            store.keep_claims()
        store.close()


#: ``DbFileWatch.lost_part`` in the summary.
_GONE = {"file": "the database file", "wal": "the database's write-ahead log (-wal)"}


def _refusals(proxy: TelemetryProxy) -> list[str]:
    """One line per stream another live process writes (its records were refused as stream_owned)."""
    return [f"ERROR: {shown_id(why, 400)}" for why in proxy.refused_streams().values()]


def _follow(out: TextIO, progress: _Progress, proxy: TelemetryProxy, sink: Any, interactive: bool,
            watch: DbFileWatch, interval_s: float, outcome: dict[str, Any]) -> None:
    """Print progress until the worker's output is all published, or a signal or a lost database stops it."""
    refused_shown = 0
    while not proxy.wait(interval_s):
        _print_progress(out, progress, proxy, sink, interactive)
        refused = _refusals(proxy)
        for line in refused[refused_shown:]:  # at once, not only in the summary
            print(("\n" if interactive else "") + line, file=out, flush=True)
        refused_shown = len(refused)
        if watch.report_if_gone(out, "what was stored in it is gone and nothing more can be stored; stopping "
                                     "the worker"):
            outcome["db_gone"] = watch.lost_part
            proxy.stop(5.0)
            return


def _shut_down(out: TextIO, proxy: TelemetryProxy, sink: Any, timeout_s: float, signals: StopSignals) -> bool:
    """Stop the worker, publish everything it wrote, store it; True if all of it was committed.

    The proxy finishes first (the worker's pipes drained into the bus) so that the sink's count of
    what it could not store covers everything read. A stop signal while the proxy drains or the
    sink stores ends the wait (``store_the_rest``); the rest is counted lost.
    """
    proxy.stop(5.0)
    drained = proxy.process is None or signals.wait_or_stop(lambda: proxy.wait(timeout_s))
    return store_the_rest(out, signals, sink, timeout_s, stop_now=not drained)


def _print_progress(out: TextIO, progress: _Progress, proxy: TelemetryProxy, sink: Any, interactive: bool,
                    *, final: bool = False) -> None:
    progress.update()
    if final:  # the whole run's average instead of the last interval's rate
        progress.steps_per_s = progress.step_count / max(time.monotonic() - progress.started, 1e-9)
    stats = proxy.stats()
    sink_stats = sink.stats()
    line = (
        f"episodes {progress.episode_count:>6}  steps/s {progress.steps_per_s:>9.0f}  "
        f"persisted {sink_stats.get('persisted', 0):>8}  backlog {sink_stats.get('backlog', 0):>6}  "
        f"dropped {progress.dropped:>5}  rejected {stats['rejected_total']:>4}"
    )
    if progress.last_return is not None:
        line += f"  last return {progress.last_return:.2f}"
    print(("\r" + line) if interactive else line, end="" if interactive else "\n", file=out, flush=True)


def _print_summary(out: TextIO, store: TelemetrySQLiteStore, proxy: TelemetryProxy, sink: Any,
                   progress: _Progress, db: Path, flushed: bool, *, db_gone: str | None = None) -> int:
    stats = proxy.stats()
    sink_stats = sink.stats()
    published = sum(stats["events_published"].values())
    lost, kept_aside = unstored_events(published, sink_stats)
    outcome = "failed"
    print("summary:", file=out)
    if db_gone:
        lost = published
        print(f"  run {shown_id(proxy.run_ids()[0] if proxy.run_ids() else '?')}: {_GONE[db_gone]} was deleted "
              "during the run; " + ("nothing of it is stored" if db_gone == "file" else
                                    "what was not yet copied from it into the file is gone"), file=out)
    else:
        refused_runs = {run for run, _agent in proxy.refused_streams()}  # another process's runs
        shown = [o for o in (print_run(out, store, run_id) for run_id in proxy.run_ids() if run_id not in refused_runs)
                 if o is not None]
        if "running" in shown:  # its end is not stored: the next open of the file marks it interrupted
            store.keep_claims()
        if shown:
            outcome = run_outcome(shown)
        else:
            print(f"  run {shown_id(proxy.run_ids()[0] if proxy.run_ids() else '?')}: nothing of it is stored", file=out)
    elapsed_s = time.monotonic() - progress.started
    print(f"  published: {progress.step_count} steps, {progress.episode_count} episodes in {elapsed_s:.1f} s", file=out)
    rejected = ", ".join(f"{k} {v}" for k, v in sorted(stats["rejected"].items())) or "none"
    print(f"  rejected lines: {rejected}; live view dropped {progress.dropped} events", file=out)
    print(
        f"  sink: {sink_stats['persisted']} events persisted in {sink_stats['batches']} batches, "
        f"{sink_stats['errors']} write errors ({sink_stats['retries']} retries), "
        f"{kept_aside} kept aside, {lost} lost; producer paused {sink_stats['gate_paused_s']:.2f} s",
        file=out,
    )
    not_stored = stats["rejected_total"] + kept_aside + lost
    print(f"  not stored: {not_stored} ({stats['rejected_total']} rejected lines, {kept_aside} events kept aside "
          f"as malformed in run_events, {lost} unstored events)" if not_stored else "  not stored: nothing", file=out)
    print(f"database: {shown_id(str(db.resolve()), 300)}", file=out)
    if db_gone:
        print(f"  ERROR: {_GONE[db_gone]} was deleted during the run; {'' if db_gone == 'file' else 'up to '}"
              f"{published} events are lost", file=out)
        return EXIT_FAILED
    if not flushed:
        print("  WARNING: not every event was persisted before the flush timeout", file=out)
        return EXIT_FAILED
    refusals = _refusals(proxy)
    if refusals:
        print("  " + "\n  ".join(refusals), file=out)
        print(f"  {stats['rejected'].get('stream_owned', 0)} records were refused (stream_owned): start this run "
              "under another run id, or after the other process has ended", file=out)
        return EXIT_FAILED
    code = EXIT_CODES.get(outcome, EXIT_FAILED)
    if code == 0 and not_stored:
        print(f"  WARNING: {stats['rejected_total']} lines rejected and {kept_aside + lost} events not stored",
              file=out)
        return EXIT_DATA_LOSS
    return code


if __name__ == "__main__":
    command_exit(main)
