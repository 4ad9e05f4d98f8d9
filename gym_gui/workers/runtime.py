"""Process plumbing shared by the workers: CLI options, stdout ownership, cancellation, pacing,
and the run lifecycle (run_started ... run_completed) with exit codes. Qt-free.

Exit codes (documented in docs/telemetry-jsonl.md):

- 0: the run ended and ``run_completed`` was written (outcome ``completed`` or ``cancelled``:
  SIGTERM and SIGINT are handled by finishing the current step, writing an ``episode`` record for
  the partial episode and ``run_completed`` with outcome ``cancelled``);
- 1: the run failed. An unexpected error writes ``run_completed`` with outcome ``failed``; the
  ``--fail-after-steps`` test hook simulates a crash and writes no ``run_completed``;
- 2: bad arguments or an unknown/unsupported environment (message on stderr).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
import traceback
import uuid
from typing import Any, BinaryIO, Callable, Mapping

from gym_gui.signal_relay import SignalRelay
from gym_gui.workers.jsonl_emitter import DEFAULT_BATCH_LINES, DEFAULT_MAX_DELAY_MS, JsonlEmitter

__all__ = [
    "EXIT_OK",
    "PACED_MAX_DELAY_MS",
    "EXIT_FAILED",
    "EXIT_USAGE",
    "UsageError",
    "SimulatedCrash",
    "CancelToken",
    "StepPacer",
    "RunResult",
    "Progress",
    "add_common_arguments",
    "claim_stdout",
    "configure_logging",
    "new_run_id",
    "run_session",
    "run_session_for_args",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

#: The longest a paced worker's line (``--step-rate-hz`` > 0) waits in its batch: an eighth of a
#: display frame, so a step shows in the window's next frame, while at 1,000-20,000 steps/s a
#: write carries 2-40 lines instead of one (a write, an ingest read and a frame a line cost the
#: worker, the ingest child and the window's reader thread more than the line itself).
PACED_MAX_DELAY_MS = 2.0

log = logging.getLogger(__name__)


class UsageError(Exception):
    """Bad arguments or an unsupported environment: reported on stderr, exit code 2."""


class SimulatedCrash(RuntimeError):
    """Raised by the ``--fail-after-steps`` hook: the worker dies without ``run_completed``."""


def add_common_arguments(parser: argparse.ArgumentParser, *, default_episodes: int) -> None:
    """Add the options every worker understands. Main thread, never blocks."""
    g = parser.add_argument_group("run")
    g.add_argument("--episodes", type=_positive_int, default=default_episodes, help="training episodes")
    g.add_argument("--seed", type=int, default=0, help="seed of the environment and the learner")
    g.add_argument(
        "--max-steps-per-episode",
        type=_positive_int,
        default=None,
        help="truncate an episode after this many steps (default: the env's own limit, else 200)",
    )
    g.add_argument(
        "--step-rate-hz",
        type=_non_negative_float,
        default=0.0,
        help="limit the step rate to this many steps per second (0 = as fast as possible)",
    )
    g.add_argument(
        "--heartbeat-interval-s",
        type=_non_negative_float,
        default=1.0,
        help="seconds between heartbeat records (0 = none)",
    )
    g.add_argument("--agent-id", default="agent-1", type=_non_empty, help="agent_id of every record")
    g.add_argument("--run-id", default=None, type=_non_empty, help="run_id of every record (default: generated)")
    g.add_argument(
        "--fail-after-steps",
        type=_positive_int,
        default=None,
        help="test hook: crash after N steps (traceback on stderr, exit 1, no run_completed)",
    )
    g.add_argument("--log-level", default="WARNING", help="stderr log level (DEBUG, INFO, WARNING, ...)")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _non_empty(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def new_run_id(prefix: str) -> str:
    """A fresh run id such as ``qlearn-20240102T030405-1a2b3c4d``. Any thread, never blocks."""
    return f"{prefix}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"


def configure_logging(level: str) -> None:
    """Send ``logging`` to stderr at ``level``. Main thread, never blocks."""
    logging.basicConfig(
        level=getattr(logging, str(level).upper(), logging.WARNING),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def claim_stdout() -> BinaryIO:
    """Take file descriptor 1 for JSONL and point everything else that prints at stderr.

    Main thread, before anything else is imported that may print (pygame greets on import).
    Returns a binary writer on a duplicate of the original stdout; afterwards fd 1 and
    ``sys.stdout`` both go to stderr, so no stray print or C library message can corrupt the
    JSONL stream. Never blocks.
    """
    sys.stdout.flush()
    fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(fd, "wb", buffering=1 << 16)


class CancelToken:
    """Set by SIGTERM/SIGINT (or by code); the training loop polls it between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal_name: str | None = None

    def relay_signals(self) -> SignalRelay:
        """A :class:`SignalRelay` (not yet installed) routing SIGTERM and SIGINT to :meth:`cancel`.
        Any thread; never blocks. The callback runs on the relay's thread, not in the handler: setting
        the event inside a handler deadlocks when the signal lands in the loop's own ``wait``."""
        return SignalRelay(self._on_signal)

    def _on_signal(self, signum: int) -> None:
        if self.signal_name is None:
            self.signal_name = signal.Signals(signum).name
        self._event.set()

    def cancel(self) -> None:
        """Request cancellation. Any thread, never blocks."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        """Whether cancellation was requested. Any thread, never blocks."""
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds, waking early on cancel; return :attr:`cancelled`."""
        return self._event.wait(timeout)


class StepPacer:
    """Keeps a loop at ``rate_hz`` steps per second on an absolute schedule (no drift).

    ``rate_hz == 0`` never waits. After a stall longer than one second the schedule restarts
    instead of bursting to catch up.
    """

    def __init__(self, rate_hz: float, cancel: CancelToken) -> None:
        self._period = 1.0 / rate_hz if rate_hz > 0 else 0.0
        self._cancel = cancel
        self._t0 = time.monotonic()
        self._n = 0

    def wait(self) -> bool:
        """Block until the next step is due; return False if cancelled. Loop thread."""
        if self._period == 0.0:
            return not self._cancel.cancelled
        self._n += 1
        due = self._t0 + self._n * self._period
        now = time.monotonic()
        if now - due > 1.0:
            self._t0, self._n = now, 0
            return not self._cancel.cancelled
        if due > now:
            return not self._cancel.wait(due - now)
        return not self._cancel.cancelled


class RunResult:
    """What a training body returns: the run outcome and its summary."""

    __slots__ = ("outcome", "summary")

    def __init__(self, outcome: str, summary: Mapping[str, Any]) -> None:
        self.outcome = outcome
        self.summary = summary


Body = Callable[[JsonlEmitter, CancelToken], RunResult]
StatsFn = Callable[[], Mapping[str, Any]]


def run_session(
    *,
    out: BinaryIO,
    run_id: str,
    agent_id: str,
    run_started: Mapping[str, Any],
    body: Body,
    stats_fn: StatsFn,
    heartbeat_interval_s: float,
    unthrottled: bool,
    cancel: CancelToken,
) -> int:
    """Run one worker lifecycle and return the process exit code. Main thread; blocks for the run.

    Writes ``run_started`` (the given fields plus ``pid``), starts the heartbeat thread, calls
    ``body`` and writes ``run_completed`` from its :class:`RunResult`. A :class:`SimulatedCrash`
    prints its traceback and returns 1 with no ``run_completed``; any other exception writes
    ``run_completed`` with outcome ``failed`` and the error, prints the traceback, returns 1.
    A broken stdout pipe (the reader went away) returns 1 quietly.
    """
    emitter = JsonlEmitter(
        out,
        run_id=run_id,
        agent_id=agent_id,
        batch_lines=DEFAULT_BATCH_LINES,
        max_delay_ms=DEFAULT_MAX_DELAY_MS if unthrottled else PACED_MAX_DELAY_MS,
    )
    started = time.monotonic()
    try:
        emitter.emit("run_started", {**run_started, "pid": os.getpid()}, flush=True)
        emitter.start_heartbeat(heartbeat_interval_s, stats_fn)
        try:
            result = body(emitter, cancel)
        except SimulatedCrash:
            emitter.close()
            traceback.print_exc(file=sys.stderr)
            log.error("worker crashed on purpose (--fail-after-steps); no run_completed written")
            return EXIT_FAILED
        except (BrokenPipeError, ConnectionResetError):
            raise
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            emitter.stop_heartbeat()
            summary = {
                "error": f"{type(exc).__name__}: {exc}",
                "duration_s": round(time.monotonic() - started, 6),
                **dict(stats_fn()),
            }
            emitter.emit("run_completed", {"outcome": "failed", "summary": summary}, flush=True)
            emitter.close()
            return EXIT_FAILED
        emitter.stop_heartbeat()
        summary = {**dict(result.summary), "duration_s": round(time.monotonic() - started, 6)}
        if cancel.signal_name:
            summary["cancelled_by"] = cancel.signal_name
        emitter.emit("run_completed", {"outcome": result.outcome, "summary": summary}, flush=True)
        emitter.close()
        return EXIT_OK
    except (BrokenPipeError, ConnectionResetError) as exc:
        log.error("stdout reader went away (%s); stopping", exc)
        cancel.cancel()
        emitter.stop_heartbeat()
        _silence_stdout(out)
        return EXIT_FAILED


def run_session_for_args(
    args: argparse.Namespace, *, out: BinaryIO, run_id: str, run_started: Mapping[str, Any], body: Body,
    progress: Progress, cancel: CancelToken,
) -> int:
    """``run_session`` with the common command-line options (agent id, heartbeat, step rate), with
    SIGTERM and SIGINT cancelling the run through ``cancel``. Main thread; blocks for the run."""
    with cancel.relay_signals():
        return run_session(
            out=out,
            run_id=run_id,
            agent_id=args.agent_id,
            run_started=run_started,
            body=body,
            stats_fn=progress.snapshot,
            heartbeat_interval_s=args.heartbeat_interval_s,
            unthrottled=args.step_rate_hz == 0,
            cancel=cancel,
        )


def _silence_stdout(out: BinaryIO) -> None:
    """After a broken pipe, make the interpreter's final flush of ``out`` harmless."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, out.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # pragma: no cover - best effort
        pass


class Progress:
    """Counters the training loop updates and the heartbeat thread reads.

    ``steps_done`` is a plain int written by the loop thread only; per-episode updates and
    :meth:`snapshot` take a lock. Cheap: no per-step locking.
    """

    def __init__(self, window: int = 100) -> None:
        self.steps_done = 0
        self.episodes_done = 0
        self.extra: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._returns: list[float] = []
        self._window = window
        self._t0 = time.monotonic()
        self._last_t = self._t0
        self._last_steps = 0

    def episode_finished(self, total_reward: float, **extra: Any) -> None:
        """Record one finished episode. Loop thread, never blocks (short lock)."""
        with self._lock:
            self.episodes_done += 1
            self._returns.append(float(total_reward))
            if len(self._returns) > 4 * self._window:
                del self._returns[: -self._window]
            self.extra.update(extra)

    def mean_return(self, last: int | None = None) -> float | None:
        """Mean of the last ``last`` (default: window) episode returns, None before any. Any thread."""
        with self._lock:
            values = self._returns[-(last or self._window):]
        return sum(values) / len(values) if values else None

    def snapshot(self) -> dict[str, Any]:
        """Heartbeat stats; ``steps_per_s`` is measured since the previous snapshot. Any thread."""
        now = time.monotonic()
        steps = self.steps_done
        with self._lock:
            dt = now - self._last_t
            rate = (steps - self._last_steps) / dt if dt > 0 else 0.0
            self._last_t, self._last_steps = now, steps
            values = self._returns[-self._window:]
            extra = dict(self.extra)
            episodes = self.episodes_done
        return {
            "episodes_done": episodes,
            "steps_done": steps,
            "steps_per_s": round(rate, 3),
            "mean_return_last_100": (sum(values) / len(values)) if values else None,
            "elapsed_s": round(now - self._t0, 6),
            **extra,
        }
