#!/usr/bin/env python3
"""Live-path benchmark: the whole window watching real workers at a fixed step rate (issue 13 #5).

Real Q-learning workers (FrozenLake, ``--step-rate-hz`` steps/s each, ``--runs`` of them) run
through the proxy, the RunBus and the DbSink while a MainWindow (offscreen) shows their Online
tabs, the Runs tab and the debug pane. Measured:

- publish-to-signal latency: from ``RunBus.publish`` (or ``publish_run``) of a step (the proxy's
  reader thread) to the ``batch_ready`` signal that carries it on the GUI thread, p50/p99/max
  (target p99 <= 20 ms);
- GUI thread blocked: the worst lateness of a 5 ms probe QTimer while the steps stream (target <=
  16 ms, one frame), from ``WARMUP_S`` after the first batch on; ``blocked_all_ms`` also counts the
  warm-up (the new tabs' first paint, the charts' creation);
- overflow: events the window's live subscriptions dropped (target 0);
- what the slowest 1% of steps waited for (medians over them): the frame (the pump's tick not due
  yet: at most one tick per 16 ms frame, so until one frame after the tick before), the GUI thread
  busy (the rest of the wait: the wake-up queued behind a paint, a collection, another view's
  work, or no core for the process),
  and the tick's own work until the signal;
- GUI wake-ups: ticks the window's pump ran per second;
- GUI-thread CPU in the pump's ticks (``time.thread_time``: what the live path itself costs the GUI
  thread, whatever else the machine runs): the worst tick and the milliseconds per second;
- GUI-thread CPU of everything (ticks, paints, the Runs tab and debug pane, reads delivered) per
  second of the steady state, and of opening the runs' tabs (``start_run`` for each run): CPU time,
  so comparable on a busy machine where the wall-clock figures are not;
- the cycle collector (``gc.callbacks``): the worst young and full collection of the steady state
  (CPU of the thread that ran it, which holds the GIL meanwhile) and, after the steady state with
  the runs still going, one full collection of the window's heap: its CPU and the objects it
  walked (what a full collection costs the GUI thread whenever it comes, load aside), then the
  collection of everything a tab's close runs (``thaw_and_collect``: the frozen objects too), its CPU.

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
       [--no-baseline] [--profile FILE] [--blocks] [--switch-tabs-ms MS]  (``--profile``: cProfile of the GUI thread, the pump's run only)
"""

from __future__ import annotations

import argparse
import bisect
import gc
import logging
import threading
import os
import statistics
import sys
import tempfile
import time
from array import array
from itertools import groupby, repeat
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qtpy.QtCore import QEvent, QObject, Qt, QTimer  # noqa: E402
from qtpy.QtWidgets import QApplication  # noqa: E402

from gym_gui.gc_tuning import (GUI_THRESHOLDS, freeze_startup_objects, freezing,  # noqa: E402
                               thaw_and_collect, tune_gc)
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
_TIMED_APP: Any = None  # with --blocks: the QApplication, kept alive here


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
    """A 5 ms precise timer on the GUI thread; its worst lateness is how long the thread was blocked, and
    the GUI thread's CPU between two firings (``time.thread_time``) how much of that was its own work."""

    def __init__(self) -> None:
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(PROBE_INTERVAL_MS)
        self.timer.timeout.connect(self._tick)
        self.last = 0.0
        self.worst_ms = 0.0
        self.late_ms: list[float] = []  # every firing's lateness
        self.last_cpu = 0.0
        self.gap_cpu_ms: list[float] = []  # the GUI thread's CPU between two firings

    def start(self) -> None:
        self.last = time.perf_counter()
        self.last_cpu = time.thread_time()
        self.timer.start()

    def _tick(self) -> None:
        now = time.perf_counter()
        late_ms = (now - self.last) * 1000 - PROBE_INTERVAL_MS
        self.worst_ms = max(self.worst_ms, late_ms)
        self.late_ms.append(late_ms)
        self.last = now
        cpu = time.thread_time()
        self.gap_cpu_ms.append((cpu - self.last_cpu) * 1000)  # the GUI thread's own work in the gap, load aside
        self.last_cpu = cpu


class GcPauses:
    """The collector's pauses by generation (``gc.callbacks``): wall and CPU time of each collection
    on the thread that ran it, holding the GIL (so a GUI-thread block whatever thread it was on)."""

    def __init__(self) -> None:
        self.counting = False
        self.wall_ms: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self.cpu_ms: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._started: dict[int, tuple[float, float]] = {}
        self.spans: list[tuple[float, float, int]] = []  # (perf_counter start, end, generation)

    def report_during(self, blocks: list[dict[str, Any]]) -> None:
        """Print the collections inside each block (``live_blocks.BlockSampler.blocks``)."""
        for block in sorted(blocks, key=lambda b: -b["wall_ms"]):
            start, end = block["at"], block["at"] + block["wall_ms"] / 1000
            inside = [(e - s) * 1000 for s, e, _g in self.spans if s < end and e > start]
            if inside:
                print(f"block {block['wall_ms']:.1f} ms: collections inside, wall ms {[round(x, 1) for x in inside]}")

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        ident = threading.get_ident()
        if phase == "start":
            self._started[ident] = (time.perf_counter(), time.thread_time())
            return
        begun = self._started.pop(ident, None)
        if begun is None or not self.counting:
            return
        generation = int(info.get("generation", 0))
        self.spans.append((begun[0], time.perf_counter(), generation))
        self.wall_ms[generation].append((time.perf_counter() - begun[0]) * 1000)
        self.cpu_ms[generation].append((time.thread_time() - begun[1]) * 1000)

    def worst(self, generations: tuple[int, ...], which: str = "cpu") -> float:
        values = [v for g in generations for v in (self.cpu_ms if which == "cpu" else self.wall_ms)[g]]
        return max(values) if values else 0.0


class _RepaintCounter(QObject):
    """Counts the UpdateRequest events a top-level window gets (each one repaints what was marked)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def eventFilter(self, _obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt name)
        if event.type() == QEvent.Type.UpdateRequest:
            self.count += 1
        return False


def threads_cpu_s() -> dict[str, float]:
    """CPU seconds (user + system) of each thread of this process, by ``tid:name`` (/proc, Linux)."""
    out: dict[str, float] = {}
    tick_hz = os.sysconf("SC_CLK_TCK")
    names = {str(t.native_id): t.name for t in threading.enumerate()}
    names[str(threading.main_thread().native_id)] = "GUI"
    for task in Path("/proc/self/task").iterdir():
        try:
            stat = (task / "stat").read_text()
            name = names.get(task.name) or (task / "comm").read_text().strip()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        out[f"{task.name}:{name}"] = (int(fields[11]) + int(fields[12])) / tick_hz
    return out


def full_collection() -> tuple[float, int]:
    """A full collection now: its CPU time (ms) and the objects it walked (tracked, not frozen).
    What any full collection of this heap would cost, measured where the load cannot stretch it."""
    walked = sum(len(gc.get_objects(generation)) for generation in range(3))
    t0 = time.thread_time()
    gc.collect()
    return (time.thread_time() - t0) * 1000, walked


def measure(step_rate_hz: float, runs: int, seconds: float, *, fixed_poll: bool,
            blocks: bool = False, switch_tabs_ms: int = 0) -> dict[str, Any]:
    """One window, ``runs`` runs of ``seconds * step_rate_hz`` steps each; returns the figures.
    ``blocks``: sample the GUI thread's stack during every block of the steady state and print them
    (``tools/live_blocks.py``). ``switch_tabs_ms``: during the steady state, make the next run's Online
    tab the current one every this many ms (a hidden tab's catch-up when shown is then measured too)."""
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
    real_publish_run = getattr(services.bus, "publish_run", None)
    if real_publish_run is not None:  # (the proxy's reader publishes a frame's steps of a stream at once)

        def timed_publish_run(evts: list[TelemetryEvent]) -> None:
            if evts and evts[0].topic is Topic.STEP_APPENDED:
                now = time.perf_counter()
                for evt in evts:
                    published_at[(evt.run_id, evt.seq_id)] = now
            real_publish_run(evts)

        services.bus.publish_run = timed_publish_run  # type: ignore[method-assign]
    tick_cpu_ms: list[float] = []
    real_tick = services.pump._tick  # noqa: SLF001 (measured, not changed)

    tick_starts: list[float] = [-1e9]  # perf_counter at the start of every tick, in order
    frame_s = services.pump.frame_interval_ms / 1000.0

    def timed_tick(*args: Any, **kwargs: Any) -> None:
        t0 = time.thread_time()
        tick_starts.append(time.perf_counter())
        real_tick(*args, **kwargs)
        if steady_from and time.perf_counter() >= steady_from[0]:
            tick_cpu_ms.append((time.thread_time() - t0) * 1000)

    services.pump._tick = timed_tick  # type: ignore[method-assign]  # noqa: SLF001
    tab_cpu: dict[str, list[float]] = {}
    if blocks:  # the Online tabs' own handlers, GUI-thread CPU each, by whether the tab is shown
        from gym_gui.ui.online_tab import AgentOnlineTab

        def timed(name: str, fn: Any) -> Any:
            def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
                t0 = time.thread_time()
                try:
                    return fn(self, *args, **kwargs)
                finally:
                    if pauses.counting:
                        key = f"{name} ({'shown' if self.isVisible() else 'hidden'})"
                        tab_cpu.setdefault(key, []).append((time.thread_time() - t0) * 1000)
            return wrapper

        from gym_gui.ui.plots.curve_panel import CurvePanel

        for name in ("on_batch", "on_heartbeat", "_fold_held", "_fold_held_in_turns", "_draw_curves", "_flush_texts",
                     "showEvent",
                     "_draw_curves_in_turns", "_refresh_panel", "_enable_chart_updates"):
            if hasattr(AgentOnlineTab, name):  # (the names of the commit measured)
                setattr(AgentOnlineTab, name, timed(name, getattr(AgentOnlineTab, name)))
        for name in ("_set_turn", "_end_spread", "_redraw", "_fill_chart", "_follow_charts", "_reveal_next"):
            if hasattr(CurvePanel, name):
                setattr(CurvePanel, name, timed(f"panel {name}", getattr(CurvePanel, name)))
    window = MainWindow(services)
    repaints = _RepaintCounter()
    window.installEventFilter(repaints)  # the window's repaints (UpdateRequest: one per batch of widget updates)
    freeze_startup_objects()  # as python -m gym_gui does
    services.start()
    window.resize(*DEFAULT_SIZE_PX)  # as python -m gym_gui opens it
    window.show()
    latencies_ms: list[float] = []
    # (latency, frame wait, GUI busy, tick to signal) of each step, flat: no container per step,
    # so the measurement adds no work of its own to the collector it measures
    parts_ms = array("d")
    probe, probe_all = Probe(), Probe()
    steady_cpu0: list[float] = []

    pauses = GcPauses()
    gc.callbacks.append(pauses)
    sampler = None
    if blocks:
        from live_blocks import BlockSampler

        sampler = BlockSampler(lambda: probe.last, probe_interval_ms=PROBE_INTERVAL_MS,
                               counting=lambda: pauses.counting)
        sampler.start()
        if hasattr(app, "deliveries"):
            app.deliveries.clear()
            app.recording = True

    threads_cpu0: dict[str, float] = {}

    def start_steady() -> None:
        repaints.count = 0
        threads_cpu0.update(threads_cpu_s())
        steady_cpu0.append(time.thread_time())
        pauses.counting = True
        probe.start()

    def on_batch(batch: Any) -> None:
        now = time.perf_counter()
        if not steady_from:
            steady_from.append(now + WARMUP_S)
            QTimer.singleShot(int(WARMUP_S * 1000), start_steady)
        stamps = [published_at.pop((step.run_id, step.seq_id), None) for step in batch.steps]  # (kept bounded)
        if now < steady_from[0]:
            return
        began = tick_starts[-1]
        for t, same in groupby(stamps):  # (a frame's steps, published together, share one stamp)
            if t is not None:
                n = sum(1 for _ in same)
                # what it waited for: the frame (the pump ticks at most once per frame: until one frame
                # after the last tick that began before the publish), the GUI thread busy (the rest of
                # the wait: the wake-up queued behind other work, the timer late, no core, a tick split
                # over its budget), the tick's own work until the signal
                wait_s = max(0.0, began - t)
                before = tick_starts[bisect.bisect_right(tick_starts, t) - 1]
                frame_wait_s = min(wait_s, max(0.0, before + frame_s - t))
                latency_ms = (now - t) * 1000
                latencies_ms.extend(repeat(latency_ms, n))
                parts_ms.extend((latency_ms, frame_wait_s * 1000, (wait_s - frame_wait_s) * 1000,
                                 (now - began) * 1000) * n)

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
    switch_timer = QTimer()
    switches = [0]
    if switch_tabs_ms > 0:
        tabs = [window.online_tab(run_id, spec.agent_id) for run_id in run_ids]

        def switch() -> None:
            if not pauses.counting:
                return
            switches[0] += 1
            tab = tabs[switches[0] % len(tabs)]
            if tab is not None:
                window.tabs.setCurrentWidget(tab)

        switch_timer.setInterval(switch_tabs_ms)
        switch_timer.timeout.connect(switch)
        switch_timer.start()
    target_steps = int(step_rate_hz * seconds) * runs
    deadline = time.monotonic() + seconds * 3 + 30

    def check_done() -> None:
        if len(latencies_ms) >= target_steps or time.monotonic() > deadline:
            app.exit(0)  # (not quit(): under Qt 6 it closes the window first, whose close asks about the runs)

    done_timer = QTimer()
    done_timer.setInterval(100)
    done_timer.timeout.connect(check_done)
    done_timer.start()
    started = time.perf_counter()
    polls_before = services.pump.polls
    probe_all.start()
    app.exec()  # the real event loop, as in the app
    gui_cpu_s = time.thread_time() - steady_cpu0[0] if steady_cpu0 else float("nan")
    threads_cpu1 = threads_cpu_s()
    pauses.counting = False
    if sampler is not None:
        sampler.stop()
        sampler.report()
        pauses.report_during(sampler.blocks)
        if hasattr(app, "deliveries"):
            from live_blocks import report_cpu, report_deliveries

            app.recording = False
            report_deliveries(sampler.blocks, app.deliveries)
            if steady_from:
                report_cpu([d for d in app.deliveries if d[0] >= steady_from[0]], time.perf_counter() - steady_from[0])
    gc.callbacks.remove(pauses)
    full_cpu_ms, full_walked = full_collection()  # the runs still going: the heap of the steady state
    thaw_cpu0 = time.thread_time()
    thaw_and_collect()  # what a tab's close costs: one collection of everything, the frozen included
    thaw_cpu_ms = (time.thread_time() - thaw_cpu0) * 1000 if freezing() else float("nan")
    probe.timer.stop()
    probe_all.timer.stop()
    done_timer.stop()
    switch_timer.stop()
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
    try:
        from gym_gui.ui.plots.gui_turns import gui_turns

        snap = getattr(gui_turns(), "snapshot", None)
        if blocks and callable(snap):
            print(f"plot turns: {snap()}")
    except ImportError:
        pass
    for key, values in sorted(tab_cpu.items()):
        values.sort()
        print(f"online tab {key}: {len(values)} calls, CPU ms median {statistics.median(values):.2f}, "
              f"p99 {values[int(0.99 * (len(values) - 1))]:.2f}, max {values[-1]:.2f}, total {sum(values):.0f}")
    if blocks and steady_s > 0:
        by_name: dict[str, float] = {}
        for key, cpu in threads_cpu1.items():
            name = key.split(":", 1)[1]
            name = name.rstrip("0123456789-") or name  # one line per kind of thread
            by_name[name] = by_name.get(name, 0.0) + cpu - threads_cpu0.get(key, 0.0)
        print("the window process's threads, CPU ms per second of the steady state: " + ", ".join(
            f"{name} {cpu * 1000 / steady_s:.0f}" for name, cpu in sorted(by_name.items(), key=lambda kv: -kv[1])))
    lat = sorted(latencies_ms)
    tail = [parts_ms[i:i + 4] for i in range(0, len(parts_ms), 4)
            if lat and parts_ms[i] >= lat[int(0.99 * (len(lat) - 1))]]

    def tail_median(i: int) -> float:
        return statistics.median(p[i] for p in tail) if tail else float("nan")
    return {
        "steps": len(lat),
        "steps_per_s": len(lat) / steady_s if steady_s > 0 else float("nan"),
        "dropped": dropped,
        "blocked_ms": probe.worst_ms,
        "blocked_all_ms": probe_all.worst_ms,
        "gap_cpu_max_ms": max(probe.gap_cpu_ms, default=float("nan")),
        "gaps_cpu_over": sum(1 for cpu in probe.gap_cpu_ms if cpu > ISSUE_BLOCKED_MS),
        "blocks_over": sum(1 for late in probe.late_ms if late > ISSUE_BLOCKED_MS),
        "blocked_ms_per_s": sum(late for late in probe.late_ms if late > ISSUE_BLOCKED_MS) / steady_s
        if steady_s > 0 else float("nan"),
        "p50_ms": statistics.median(lat) if lat else float("nan"),
        "p99_ms": lat[int(0.99 * (len(lat) - 1))] if lat else float("nan"),
        "max_ms": lat[-1] if lat else float("nan"),
        "p99_frame_ms": tail_median(1),
        "p99_busy_ms": tail_median(2),
        "p99_handling_ms": tail_median(3),
        "ticks_per_s": polls / elapsed_s if elapsed_s > 0 else float("nan"),
        "tick_cpu_max_ms": max(tick_cpu_ms) if tick_cpu_ms else float("nan"),
        "tick_cpu_ms_per_s": sum(tick_cpu_ms) / steady_s if tick_cpu_ms and steady_s > 0 else float("nan"),
        "gui_cpu_ms_per_s": gui_cpu_s * 1000 / steady_s if steady_s > 0 else float("nan"),
        "open_cpu_ms": open_cpu_ms,
        "gc_young_max_ms": pauses.worst((0, 1)),
        "gc_full_max_ms": pauses.worst((2,)),
        "gc_full_count": len(pauses.cpu_ms[2]),
        "gc_max_wall_ms": pauses.worst((0, 1, 2), "wall"),
        "full_gc_cpu_ms": full_cpu_ms,
        "full_gc_objects": full_walked,
        "thaw_cpu_ms": thaw_cpu_ms,
        "tab_switches": switches[0],
        "repaints_per_s": repaints.count / steady_s if steady_s > 0 else float("nan"),
        "load_before": load_before,
        "load_after": load_after,
        "child_nice": f"{nice.worker},{nice.ingest}",
    }


def case_name(step_rate_hz: float, runs: int) -> str:
    return f"{step_rate_hz:.0f}hz" if runs == 1 else f"{runs}x{step_rate_hz:.0f}hz"


def report(step_rate_hz: float, runs: int, seconds: float, *, baseline: bool = True,
           profile: str | None = None, blocks: bool = False,
           switch_tabs_ms: int = 0) -> tuple[list[dict[str, Any]], dict[str, bool]]:
    """Measure one case (baseline, then the pump); print its table; return its figures and targets.
    Without ``baseline`` the baseline's figures are NaN; ``profile``: write a cProfile of the GUI
    thread during the pump's run to this file."""
    base = (measure(step_rate_hz, runs, seconds, fixed_poll=True, switch_tabs_ms=switch_tabs_ms) if baseline
            else None)
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
        new = measure(step_rate_hz, runs, seconds, fixed_poll=False, blocks=blocks,
                      switch_tabs_ms=switch_tabs_ms)
        profiler.disable()
        profiler.dump_stats(profile)
    else:
        new = measure(step_rate_hz, runs, seconds, fixed_poll=False, blocks=blocks,
                      switch_tabs_ms=switch_tabs_ms)
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
                       ("blocks_over", f"  blocks > {ISSUE_BLOCKED_MS:.0f} ms (count)"),
                       ("blocked_ms_per_s", "  their ms per s"),
                       ("gap_cpu_max_ms", "GUI CPU in one gap, most"),
                       ("gaps_cpu_over", f"  gaps > {ISSUE_BLOCKED_MS:.0f} ms of CPU"),
                       ("p50_ms", "latency p50 (ms)"), ("p99_ms", "latency p99 (ms)"),
                       ("max_ms", "latency max (ms)"),
                       ("p99_frame_ms", "  p99 tail: frame wait"), ("p99_busy_ms", "  p99 tail: GUI busy"),
                       ("p99_handling_ms", "  p99 tail: tick to signal"), ("ticks_per_s", "GUI pump ticks/s"),
                       ("tick_cpu_max_ms", "tick CPU, worst (ms)"), ("tick_cpu_ms_per_s", "tick CPU (ms per s)"),
                       ("gui_cpu_ms_per_s", "GUI thread CPU (ms per s)"), ("open_cpu_ms", "opening the tabs CPU (ms)"),
                       ("gc_young_max_ms", "young collection CPU, worst"), ("gc_full_max_ms", "full collection CPU, worst"),
                       ("gc_full_count", "  full collections"), ("gc_max_wall_ms", "collection wall, worst (ms)"),
                       ("full_gc_cpu_ms", "full collection at end, CPU"), ("full_gc_objects", "  objects it walked"),
                       ("thaw_cpu_ms", "thaw and collect all, CPU"),
                       ("repaints_per_s", "window repaints/s"), ("tab_switches", "tab switches"),
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
        figure(f"live.{name}.blocks_over_16ms", f"GUI-thread blocks over {ISSUE_BLOCKED_MS:.0f} ms at {name}",
               new["blocks_over"], "blocks", "lower", baseline=base["blocks_over"], baseline_label=poll),
        figure(f"live.{name}.gap_cpu_max_ms", f"most GUI-thread CPU between two 5 ms probe firings at {name}",
               new["gap_cpu_max_ms"], "ms", "lower", baseline=base["gap_cpu_max_ms"], baseline_label=poll),
        figure(f"live.{name}.overflow", f"live overflow (events) at {name}", new["dropped"], "events", "lower",
               baseline=base["dropped"], baseline_label=poll, target=target("<=", 0, source="BRIEF 9")),
        figure(f"live.{name}.tick_cpu_max_ms", f"GUI-thread CPU of the worst pump tick at {name}",
               new["tick_cpu_max_ms"], "ms", "lower", baseline=base["tick_cpu_max_ms"], baseline_label=poll),
        figure(f"live.{name}.gui_cpu_ms_per_s", f"GUI-thread CPU per second (everything) at {name}",
               new["gui_cpu_ms_per_s"], "ms/s", "lower", baseline=base["gui_cpu_ms_per_s"], baseline_label=poll),
        figure(f"live.{name}.open_cpu_ms", f"GUI-thread CPU of opening the tabs at {name}",
               new["open_cpu_ms"], "ms", "lower", baseline=base["open_cpu_ms"], baseline_label=poll),
        figure(f"live.{name}.full_gc_cpu_ms", f"CPU of a full collection of the window's heap after {name}",
               new["full_gc_cpu_ms"], "ms", "lower", baseline=base["full_gc_cpu_ms"], baseline_label=poll),
        figure(f"live.{name}.gc_max_wall_ms", f"longest collector pause (wall) at {name}", new["gc_max_wall_ms"], "ms",
               "lower", baseline=base["gc_max_wall_ms"], baseline_label=poll),
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
    parser.add_argument("--blocks", action="store_true",
                        help="sample the GUI thread's stack during every block > 16 ms and print them")
    parser.add_argument("--switch-tabs-ms", type=int, default=0, metavar="MS",
                        help="with several runs: show the next run's Online tab every MS ms of the steady state")
    args = parser.parse_args(argv)
    if args.blocks:
        from live_blocks import timed_application_class

        global _TIMED_APP
        _TIMED_APP = timed_application_class()([])  # the QApplication measure() uses: it times every event delivery
    tune_gc(default=GUI_THRESHOLDS)  # the window's collector settings, as python -m gym_gui (gym_gui/gc_tuning.py)
    logging.basicConfig(level=logging.ERROR)
    cases = CASES if args.step_rate_hz is None else ((args.step_rate_hz, args.runs),)
    figures: list[dict[str, Any]] = []
    targets: dict[str, bool] = {}
    for rate, runs in cases:
        case_figures, case_targets = report(rate, runs, args.seconds, baseline=not args.no_baseline,
                                            profile=args.profile, blocks=args.blocks,
                                            switch_tabs_ms=args.switch_tabs_ms)
        figures += case_figures
        targets.update(case_targets)
    print_bench_json("live", figures)
    return 0 if all(targets.values()) or not args.check else 1


if __name__ == "__main__":
    raise SystemExit(main())
