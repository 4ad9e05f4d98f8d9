"""Headless end-to-end run: a worker through the proxy, the RunBus and the DbSink into SQLite.

    python -m gym_gui.run --db runs/demo.sqlite --env FrozenLake-v1 --episodes 300
    python -m gym_gui.run --db runs/x.sqlite --default-agent-id agent6 -- python my_worker.py --flag

Without a command it runs the project's tabular Q-learning worker. It prints a live progress line
and a final summary; the exit code reflects the run outcome (0 completed, 1 failed, 130 cancelled;
2 when the worker cannot be started).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any, Sequence, TextIO

from gym_gui.gc_tuning import tune_gc
from gym_gui.ingest.proxy import DEFAULT_AGENT_ID, TelemetryProxy
from gym_gui.ingest.worker_specs import WorkerSpec
from gym_gui.workers.runtime import new_run_id
from gym_gui.telemetry.events import Topic
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore

__all__ = ["build_parser", "main", "split_command", "worker_argv"]

EXIT_CODES = {"completed": 0, "failed": 1, "cancelled": 130}
DEFAULT_DB_PATH = Path("runs") / "telemetry.sqlite"


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (also used by tools/demo)."""
    parser = argparse.ArgumentParser(
        prog="python -m gym_gui.run",
        description="Run a training worker headless: live progress, every event persisted to SQLite.",
        epilog="Anything after `--` is the worker command to run instead of the built-in Q-learning worker.",
    )
    parser.add_argument("--db", type=Path, default=DEFAULT_DB_PATH, help="SQLite file (created if missing)")
    parser.add_argument("--env", default="FrozenLake-v1", help="Gymnasium env of the built-in workers: ToyText (Q-learning) or CartPole-v1 (RGB frames)")
    parser.add_argument("--episodes", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--agent-id", default="agent-1", help="agent id of the built-in worker")
    parser.add_argument("--run-id", default=None, help="run id (default: generated)")
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
    """Counts what the live path sees, for the progress line (main thread only)."""

    def __init__(self, bus: RunBus) -> None:
        self.steps = bus.subscribe(Topic.STEP_APPENDED, "cli-progress", maxlen=4096)
        self.episodes = bus.subscribe(Topic.EPISODE_FINALIZED, "cli-progress", maxlen=4096)
        self.step_count = 0
        self.episode_count = 0
        self.last_return: float | None = None
        self.started = time.monotonic()
        self._last_t = self.started
        self._last_steps = 0
        self.steps_per_s = 0.0

    def update(self) -> None:
        self.step_count += len(self.steps.drain())
        episodes = self.episodes.drain()
        self.episode_count += len(episodes)
        if episodes:
            self.last_return = float(episodes[-1].payload.get("total_reward", 0.0))
        now = time.monotonic()
        seen = self.step_count + self.steps.dropped
        if now > self._last_t:
            self.steps_per_s = (seen - self._last_steps) / (now - self._last_t)
        self._last_t, self._last_steps = now, seen

    @property
    def dropped(self) -> int:
        return self.steps.dropped + self.episodes.dropped


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run one worker to completion. Main thread; blocks until the run is persisted."""
    from qtpy.QtCore import QCoreApplication

    from gym_gui.qt.db_sink_thread import DbSink

    out = out or sys.stdout
    own_args, command = split_command(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(own_args)
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.WARNING),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    tune_gc()  # collector thresholds for full-speed ingest (gym_gui/gc_tuning.py)
    app = QCoreApplication.instance() or QCoreApplication([])  # the sink's QThread wants one
    run_id = args.run_id or new_run_id("run")
    argv_to_run = command or worker_argv(args, run_id)

    args.db.parent.mkdir(parents=True, exist_ok=True)
    store = TelemetrySQLiteStore(args.db)
    bus = RunBus()
    sink = DbSink(store, bus)
    progress = _Progress(bus)
    proxy = TelemetryProxy(bus, default_agent_id=args.default_agent_id, run_id=run_id,
                           seq_floor=store.max_seq_id, gate=sink.ingest_gate, name="worker")
    sink.start()
    print(f"run {run_id}: {' '.join(argv_to_run)}", file=out)
    print(f"database: {args.db.resolve()}", file=out)
    interactive = out.isatty()
    try:
        try:
            proxy.spawn(argv_to_run)
        except OSError as exc:
            print(f"cannot start the worker {argv_to_run[0]!r}: {exc}", file=out)
            return 2
        try:
            while not proxy.wait(args.progress_interval_s):
                _print_progress(out, progress, proxy, sink, interactive)
        except KeyboardInterrupt:
            print("\ninterrupted: stopping the worker", file=out)
            proxy.stop(5.0)
    finally:
        proxy.stop(5.0)
        flushed = sink.flush(args.flush_timeout_s)
        sink.stop(args.flush_timeout_s)
    _print_progress(out, progress, proxy, sink, interactive, final=True)
    if interactive:
        print(file=out)
    try:
        return _print_summary(out, store, proxy, sink, progress, args.db, flushed)
    finally:
        store.close()
        del app  # kept alive until the sink's QThread is gone


def _print_progress(out: TextIO, progress: _Progress, proxy: TelemetryProxy, sink: Any, interactive: bool,
                    *, final: bool = False) -> None:
    progress.update()
    if final:  # the whole run's average instead of the last interval's rate
        progress.steps_per_s = (progress.step_count + progress.steps.dropped) / max(time.monotonic() - progress.started, 1e-9)
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
                   progress: _Progress, db: Path, flushed: bool) -> int:
    stats = proxy.stats()
    sink_stats = sink.stats()
    runs = [r for r in (store.run(run_id) for run_id in proxy.run_ids()) if r is not None]
    outcome = "failed"
    print("summary:", file=out)
    for run in runs:
        outcome = run.outcome or "failed"
        summary = run.summary or {}
        print(f"  run {run.run_id} ({run.env_id or 'unknown env'}): outcome {outcome}", file=out)
        print(f"  stored: {len(store.episode_records(run.run_id))} episodes, {store.step_count(run.run_id)} steps", file=out)
        for key in ("greedy_success_rate", "mean_return", "duration_s", "reason"):
            if key in summary:
                print(f"  {key}: {summary[key]}", file=out)
        if outcome != "completed":
            if run.exit_code is not None or run.signal is not None:
                print(f"  worker exit: {run.signal or f'exit code {run.exit_code}'}", file=out)
            if run.stderr_tail:
                tail = run.stderr_tail.strip().splitlines()[-5:]
                print("  stderr tail:\n    " + "\n    ".join(tail), file=out)
    elapsed_s = time.monotonic() - progress.started
    print(f"  live view: {progress.step_count} steps, {progress.episode_count} episodes in {elapsed_s:.1f} s", file=out)
    rejected = ", ".join(f"{k} {v}" for k, v in sorted(stats["rejected"].items())) or "none"
    print(f"  rejected lines: {rejected}; live view dropped {progress.dropped} events", file=out)
    print(
        f"  sink: {sink_stats['persisted']} events persisted in {sink_stats['batches']} batches, "
        f"{sink_stats['errors']} write errors ({sink_stats['retries']} retries), "
        f"{sink_stats['lost']} lost; producer paused {sink_stats['gate_paused_s']:.2f} s",
        file=out,
    )
    print(f"database: {db.resolve()}", file=out)
    if not flushed:
        print("  WARNING: not every event was persisted before the flush timeout", file=out)
        return 1
    return EXIT_CODES.get(outcome, 1)


if __name__ == "__main__":
    raise SystemExit(main())
