#!/usr/bin/env python3
"""Live-path benchmark: the whole window watching real workers at a fixed step rate (issue 13 #5).

Real Q-learning workers (FrozenLake, ``--step-rate-hz`` steps/s each, ``--runs`` of them) run
through the proxy, the RunBus and the DbSink while a MainWindow (offscreen) shows their Online
tabs, the Runs tab and the debug pane. Measured:

- publish-to-signal latency: from ``RunBus.publish`` of a step (the proxy's reader thread) to the
  ``batch_ready`` signal that carries it on the GUI thread, p50/p99/max (target p99 <= 20 ms);
- GUI thread blocked: the worst lateness of a 5 ms probe QTimer while the steps stream (target <=
  16 ms, one frame), from ``WARMUP_S`` after the first batch on; ``blocked_all_ms`` also counts the
  warm-up (the new tabs' first paint, the charts' creation);
- overflow: events the window's live subscriptions dropped (target 0);
- GUI wake-ups: ticks the window's pump ran per second;
- GUI-thread CPU in the pump's ticks (``time.thread_time``: what the live path itself costs the GUI
  thread, whatever else the machine runs): the worst tick and the milliseconds per second;
- GUI-thread CPU of everything (ticks, paints, the Runs tab and debug pane, reads delivered) per
  second of the steady state, and of opening the runs' tabs (``start_run`` for each run): CPU time,
  so comparable on a busy machine where the wall-clock figures are not.

The baseline, measured in the same run, is the old fixed poll: the same window, whose pump ticks
every view on a fixed 50 ms timer (data or not) and ignores the bus's wake-ups, as the
controllers' QTimers did. Ratios are new/baseline.

Without ``--step-rate-hz`` it runs the three cases of issue 13 #5: one run at 1,000 steps/s, one
at 20,000 steps/s and 8 runs at 1,000 steps/s each.

The machine's 1-minute load average before and after each run is printed and put in every
figure's ``note`` (the wall-clock figures move with it; the CPU figures much less), with the
priority increment of the window's workers and ingest children (``GYM_GUI_CHILD_NICE``,
docs/tuning.md) and the Qt binding.

Usage: .venv/bin/python tools/bench_live.py [--step-rate-hz 1000] [--runs 1] [--seconds 10] [--check]
       [--no-baseline] [--profile FILE]  (``--profile``: cProfile of the GUI thread, the pump's run only)
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qtpy.QtCore import Qt, QTimer  # noqa: E402
from qtpy.QtWidgets import QApplication  # noqa: E402

from gym_gui.gc_tuning import GUI_THRESHOLDS, freeze_startup_objects, tune_gc  # noqa: E402
from gym_gui.ingest.worker_process import child_nice  # noqa: E402
from gym_gui.ingest.worker_specs import WorkerSpec  # noqa: E402
from gym_gui.qt.app_services import AppServices  # noqa: E402
from gym_gui.qt.gui_pump import GuiPump  # noqa: E402
from gym_gui.telemetry.events import TelemetryEvent, Topic  # noqa: E402
from gym_gui.telemetry.run_bus import RunBus  # noqa: E402
from gym_gui.ui.telemetry_window import DEFAULT_SIZE_PX, MainWindow  # noqa: E402
from bench_figures import figure, print_bench_json, target  # noqa: E402

PROBE_INTERVAL_MS = 5
#: Seconds after the first batch before the steady-state probe and latencies count.
WARMUP_S = 1.0
OLD_POLL_MS = 50
#: issue 13 #5: p99 publish -> signal and the worst GUI block.
ISSUE_P99_MS = 20.0
ISSUE_BLOCKED_MS = 16.0
#: The three cases of issue 13 #5: (steps/s per run, runs).
CASES = ((1000.0, 1), (20000.0, 1), (1000.0, 8))


class FixedPollPump(GuiPump):
    """The old design, for the baseline: every view ticked on a fixed timer, data or not; the bus's
    wake-ups and the views' deadlines are ignored."""

    def __init__(self, interval_ms: int = OLD_POLL_MS) -> None:
        super().__init__(frame_interval_ms=interval_ms)
        self._poll = QTimer(self)
        self._poll.setTimerType(Qt.TimerType.PreciseTimer)
        self._poll.setInterval(interval_ms)
        self._poll.timeout.connect(self.tick_now)

    def start(self) -> None:
        super().start()
        self.waker._armed = False  # no wake-ups: the poll finds the data  # noqa: SLF001
        self._poll.start()

    def stop(self) -> None:
        self._poll.stop()
        super().stop()

    def _arm(self) -> None:  # the fixed timer is the only schedule
        return


class Probe:
    """A 5 ms precise timer on the GUI thread; its worst lateness is how long the thread was blocked."""

    def __init__(self) -> None:
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(PROBE_INTERVAL_MS)
        self.timer.timeout.connect(self._tick)
        self.last = 0.0
        self.worst_ms = 0.0

    def start(self) -> None:
        self.last = time.perf_counter()
        self.timer.start()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.worst_ms = max(self.worst_ms, (now - self.last) * 1000 - PROBE_INTERVAL_MS)
        self.last = now


def measure(step_rate_hz: float, runs: int, seconds: float, *, fixed_poll: bool) -> dict[str, Any]:
    """One window, ``runs`` runs of ``seconds * step_rate_hz`` steps each; returns the figures."""
    app = QApplication.instance() or QApplication([])
    load_before = os.getloadavg()[0]
    tmp = tempfile.TemporaryDirectory(prefix="bench-live-")
    services = AppServices(Path(tmp.name) / "live.sqlite", bus=RunBus(),
                           pump=FixedPollPump() if fixed_poll else None)
    steady_from: list[float] = []
    published_at: dict[tuple[str, int], float] = {}
    real_publish = services.bus.publish

    def timed_publish(evt: TelemetryEvent) -> None:
        if evt.topic is Topic.STEP_APPENDED:
            published_at[(evt.run_id, evt.seq_id)] = time.perf_counter()
        real_publish(evt)

    services.bus.publish = timed_publish  # type: ignore[method-assign]
    tick_cpu_ms: list[float] = []
    real_tick = services.pump._tick  # noqa: SLF001 (measured, not changed)

    def timed_tick(*args: Any, **kwargs: Any) -> None:
        t0 = time.thread_time()
        real_tick(*args, **kwargs)
        if steady_from and time.perf_counter() >= steady_from[0]:
            tick_cpu_ms.append((time.thread_time() - t0) * 1000)

    services.pump._tick = timed_tick  # type: ignore[method-assign]  # noqa: SLF001
    window = MainWindow(services)
    freeze_startup_objects()  # as python -m gym_gui does
    services.start()
    window.resize(*DEFAULT_SIZE_PX)  # as python -m gym_gui opens it
    window.show()
    latencies_ms: list[float] = []
    probe, probe_all = Probe(), Probe()
    steady_cpu0: list[float] = []

    def start_steady() -> None:
        steady_cpu0.append(time.thread_time())
        probe.start()

    def on_batch(batch: Any) -> None:
        now = time.perf_counter()
        if not steady_from:
            steady_from.append(now + WARMUP_S)
            QTimer.singleShot(int(WARMUP_S * 1000), start_steady)
        if now < steady_from[0]:
            return
        for step in batch.steps:
            t = published_at.get((step.run_id, step.seq_id))
            if t is not None:
                latencies_ms.append((now - t) * 1000)

    spec = WorkerSpec(env_id="FrozenLake-v1", episodes=1_000_000, step_rate_hz=step_rate_hz,
                      heartbeat_interval_s=1.0)
    run_ids: list[str] = []
    open_cpu0 = time.thread_time()
    for _ in range(runs):
        run_id = window.start_run(spec)
        assert run_id is not None
        controller = window.online_controller(run_id, spec.agent_id)
        assert controller is not None
        controller.batch_ready.connect(on_batch)
        run_ids.append(run_id)
    open_cpu_ms = (time.thread_time() - open_cpu0) * 1000
    target_steps = int(step_rate_hz * seconds) * runs
    deadline = time.monotonic() + seconds * 3 + 30

    def check_done() -> None:
        if len(latencies_ms) >= target_steps or time.monotonic() > deadline:
            app.quit()

    done_timer = QTimer()
    done_timer.setInterval(100)
    done_timer.timeout.connect(check_done)
    done_timer.start()
    started = time.perf_counter()
    polls_before = services.pump.polls
    probe_all.start()
    app.exec()  # the real event loop, as in the app
    gui_cpu_s = time.thread_time() - steady_cpu0[0] if steady_cpu0 else float("nan")
    probe.timer.stop()
    probe_all.timer.stop()
    done_timer.stop()
    ended = time.perf_counter()
    elapsed_s = ended - started
    steady_s = ended - steady_from[0] if steady_from else float("nan")
    polls = services.pump.polls - polls_before
    dropped = sum(v for k, v in services.bus.overflow_stats().items() if any(f":ui-{r}" in k for r in run_ids))
    load_after = os.getloadavg()[0]
    nice = child_nice()
    window.cancel_runs()
    window.shutdown(60)
    tmp.cleanup()
    lat = sorted(latencies_ms)
    return {
        "steps": len(lat),
        "steps_per_s": len(lat) / steady_s if steady_s > 0 else float("nan"),
        "dropped": dropped,
        "blocked_ms": probe.worst_ms,
        "blocked_all_ms": probe_all.worst_ms,
        "p50_ms": statistics.median(lat) if lat else float("nan"),
        "p99_ms": lat[int(0.99 * (len(lat) - 1))] if lat else float("nan"),
        "max_ms": lat[-1] if lat else float("nan"),
        "ticks_per_s": polls / elapsed_s if elapsed_s > 0 else float("nan"),
        "tick_cpu_max_ms": max(tick_cpu_ms) if tick_cpu_ms else float("nan"),
        "tick_cpu_ms_per_s": sum(tick_cpu_ms) / steady_s if tick_cpu_ms and steady_s > 0 else float("nan"),
        "gui_cpu_ms_per_s": gui_cpu_s * 1000 / steady_s if steady_s > 0 else float("nan"),
        "open_cpu_ms": open_cpu_ms,
        "load_before": load_before,
        "load_after": load_after,
        "child_nice": f"{nice.worker},{nice.ingest}",
    }


def case_name(step_rate_hz: float, runs: int) -> str:
    return f"{step_rate_hz:.0f}hz" if runs == 1 else f"{runs}x{step_rate_hz:.0f}hz"


def report(step_rate_hz: float, runs: int, seconds: float, *, baseline: bool = True,
           profile: str | None = None) -> tuple[list[dict[str, Any]], dict[str, bool]]:
    """Measure one case (baseline, then the pump); print its table; return its figures and targets.
    Without ``baseline`` the baseline's figures are NaN; ``profile``: write a cProfile of the GUI
    thread during the pump's run to this file."""
    base = measure(step_rate_hz, runs, seconds, fixed_poll=True) if baseline else None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
        new = measure(step_rate_hz, runs, seconds, fixed_poll=False)
        profiler.disable()
        profiler.dump_stats(profile)
    else:
        new = measure(step_rate_hz, runs, seconds, fixed_poll=False)
    if base is None:
        base = {key: float("nan") for key in new}
    name = case_name(step_rate_hz, runs)
    import qtpy

    loads = "load average " + (f"{base['load_before']:.1f} -> {base['load_after']:.1f} (baseline), " if baseline
                               else "") + f"{new['load_before']:.1f} -> {new['load_after']:.1f} (pump)"
    note = f"{loads}; {os.cpu_count()} cpus; children nice +{new['child_nice']}; {qtpy.API_NAME}"
    print(f"live path, {runs} run(s) at {step_rate_hz:.0f} steps/s each, {seconds:.0f} s; {note}")
    print(f"{'':26}{f'baseline ({OLD_POLL_MS} ms poll)':>22}{'GUI pump':>12}{'ratio':>8}")
    for key, label in (("dropped", "overflow (events)"), ("blocked_ms", "GUI blocked max (ms)"),
                       ("blocked_all_ms", "  with the warm-up (ms)"),
                       ("p50_ms", "latency p50 (ms)"), ("p99_ms", "latency p99 (ms)"),
                       ("max_ms", "latency max (ms)"), ("ticks_per_s", "GUI pump ticks/s"),
                       ("tick_cpu_max_ms", "tick CPU, worst (ms)"), ("tick_cpu_ms_per_s", "tick CPU (ms per s)"),
                       ("gui_cpu_ms_per_s", "GUI thread CPU (ms per s)"), ("open_cpu_ms", "opening the tabs CPU (ms)"),
                       ("steps", "steps seen"), ("steps_per_s", "steps seen/s")):
        ratio = new[key] / base[key] if base[key] and base[key] == base[key] else float("nan")
        print(f"{label:26}{base[key]:>22.1f}{new[key]:>12.1f}{ratio:>8.2f}")
    targets = {
        f"{name} overflow 0": new["dropped"] == 0,
        f"{name} GUI blocked <= {ISSUE_BLOCKED_MS:.0f} ms": new["blocked_ms"] <= ISSUE_BLOCKED_MS,
        f"{name} p99 latency <= {ISSUE_P99_MS:.0f} ms": new["p99_ms"] <= ISSUE_P99_MS,
    }
    for label, met in targets.items():
        print(f"target {label}: {'met' if met else 'MISSED'}")
    print()
    poll = f"the same window on the old fixed {OLD_POLL_MS} ms poll"
    src = "issue 13 #5"
    figures = [
        figure(f"live.{name}.p99_ms", f"publish -> Qt signal p99 at {name}", new["p99_ms"], "ms", "lower",
               baseline=base["p99_ms"], baseline_label=poll, target=target("<=", ISSUE_P99_MS, source=src)),
        figure(f"live.{name}.p50_ms", f"publish -> Qt signal p50 at {name}", new["p50_ms"], "ms", "lower",
               baseline=base["p50_ms"], baseline_label=poll),
        figure(f"live.{name}.blocked_ms", f"GUI thread blocked, max, at {name}", new["blocked_ms"], "ms", "lower",
               baseline=base["blocked_ms"], baseline_label=poll, target=target("<=", ISSUE_BLOCKED_MS, source=src)),
        figure(f"live.{name}.overflow", f"live overflow (events) at {name}", new["dropped"], "events", "lower",
               baseline=base["dropped"], baseline_label=poll, target=target("<=", 0, source="BRIEF 9")),
        figure(f"live.{name}.tick_cpu_max_ms", f"GUI-thread CPU of the worst pump tick at {name}",
               new["tick_cpu_max_ms"], "ms", "lower", baseline=base["tick_cpu_max_ms"], baseline_label=poll),
        figure(f"live.{name}.gui_cpu_ms_per_s", f"GUI-thread CPU per second (everything) at {name}",
               new["gui_cpu_ms_per_s"], "ms/s", "lower", baseline=base["gui_cpu_ms_per_s"], baseline_label=poll),
        figure(f"live.{name}.open_cpu_ms", f"GUI-thread CPU of opening the tabs at {name}",
               new["open_cpu_ms"], "ms", "lower", baseline=base["open_cpu_ms"], baseline_label=poll),
        figure(f"live.{name}.ticks_per_s", f"GUI pump ticks/s at {name}", new["ticks_per_s"], "ticks/s", "lower",
               baseline=base["ticks_per_s"], baseline_label=poll),
    ]
    for fig in figures:
        fig["note"] = note
    return figures, targets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step-rate-hz", type=float, default=None,
                        help="steps/s of each run (default: the three cases of issue 13 #5)")
    parser.add_argument("--runs", type=int, default=1, help="runs at once, each at --step-rate-hz")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--no-baseline", action="store_true", help="skip the fixed-poll baseline (its figures: nan)")
    parser.add_argument("--profile", metavar="FILE", default=None,
                        help="cProfile the GUI thread during the pump's run into FILE (one case: --step-rate-hz)")
    args = parser.parse_args(argv)
    tune_gc(default=GUI_THRESHOLDS)  # the window's collector settings, as python -m gym_gui (gym_gui/gc_tuning.py)
    logging.basicConfig(level=logging.ERROR)
    cases = CASES if args.step_rate_hz is None else ((args.step_rate_hz, args.runs),)
    figures: list[dict[str, Any]] = []
    targets: dict[str, bool] = {}
    for rate, runs in cases:
        case_figures, case_targets = report(rate, runs, args.seconds, baseline=not args.no_baseline,
                                            profile=args.profile)
        figures += case_figures
        targets.update(case_targets)
    print_bench_json("live", figures)
    return 0 if all(targets.values()) or not args.check else 1


if __name__ == "__main__":
    raise SystemExit(main())
