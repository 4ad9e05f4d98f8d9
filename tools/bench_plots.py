#!/usr/bin/env python3
"""Plot benchmark: a run of 1,000,000 episodes plotted with the GUI thread never blocked > 50 ms.

A SQLite file holds one stream of ``--episodes`` stored episodes (return, length, outcome and an
``epsilon`` in the metadata). A CurvePanel (offscreen, 1200x800, shown) then goes through four
phases while a 5 ms precise QTimer on the GUI thread (the heartbeat) records its worst lateness,
which is how long the GUI thread was blocked (target: at most 50 ms in every phase):

1. load: the stream's curves are read on a StoreReader thread (``load_stream_curves``), merged
   into the panel's live CurveData, and decimated on the panel's worker thread, until shown;
2. live: every 50 ms (a LiveTelemetryController's tick) ``--batch`` new episodes are appended,
   the panel refreshed and painted at once (so drawing counts too), for ``--seconds``;
3. zoom: live ticks go on while the return chart is zoomed in step by step down to 100 episodes,
   panned, zoomed out and set back to the whole view, each step's re-decimation (on the worker)
   awaited and painted, each step an event of its own (as a person's wheel turns are);
4. controls: the x-axis switched to steps and back, the rolling window changed (both on the
   worker for a long run), live ticks still going.

In-run baselines: ``--plots-of REV --repeat N`` runs this bench N times alternately in this tree
and in a copy of it whose plot modules (``PLOT_MODULES``) are REV's, each run in a process of its
own on the same file, and prints every run's figures side by side (the before/after of a plots
change on a shared machine). ``--old-commit REV`` runs that commit's tools/bench_plots.py (its CurvePanel, and
its naive plot: no downsampling, full arrays from Python lists at every tick) in a copy of that
commit's tree (``git archive``) right after ours, and reports its figures beside ours. It reads the
same episodes from its own file (``--old-db``, made by that tree when missing): the store's file
format may have changed since.

"Painted at once" is what the event loop's next turn does (``paint_now``): the scene's queued
processing of its changed items paints them, once; a ``viewport().repaint()`` there would paint
the whole view and the scene's processing paint the changed items again (two paints a tick, and
in the zoom phase a paint, the next zoom and another paint in one gap, none of which the window
does). The collector runs with the window's thresholds (``GUI_THRESHOLDS``, as ``gym_gui.app``).
Beside the heartbeat, the cycle collector's longest pause in each phase is recorded (``gc.callbacks``:
a collection on any thread holds the GIL, so it blocks the GUI thread too), with each collection's
generation and CPU time and the young generation's count at each phase's end (``gc.get_count()``:
a young collection runs when it passes the window's threshold).

``--young-run TICKS`` measures the live window's case instead (``young_run_paints``): a panel fed
from an empty run, the GUI-thread CPU of each tick's paint with and without an axis laid out.

Usage: .venv/bin/python tools/bench_plots.py [--episodes 1000000] [--seconds 5] [--batch 20]
       [--db FILE] [--plots-of REV [--repeat N]] [--old-commit REV [--old-db FILE]] [--check]
       .venv/bin/python tools/bench_plots.py --young-run 400 [--young-batch 2]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import qtpy  # noqa: E402  (first: pyqtgraph follows the binding qtpy chose)
from qtpy.QtCore import QCoreApplication, QEvent, Qt, QTimer  # noqa: E402
from qtpy.QtWidgets import QApplication  # noqa: E402

import numpy as np  # noqa: E402

from gym_gui.gc_tuning import GUI_THRESHOLDS, freeze_startup_objects, tune_gc  # noqa: E402
from gym_gui.live.curves import CurveData, EpisodePoint  # noqa: E402
from gym_gui.qt.store_reader import StoreReader  # noqa: E402
from gym_gui.telemetry.events import TelemetryEvent, Topic, iso_from_unix_s  # noqa: E402
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore  # noqa: E402
from gym_gui.ui.plots.curve_loader import load_stream_curves  # noqa: E402
from gym_gui.ui.plots.curve_panel import CurvePanel  # noqa: E402
from bench_figures import BENCH_JSON_PREFIX, figure, print_bench_json, target  # noqa: E402

PROBE_INTERVAL_MS = 5
TICK_MS = 50
MAX_BLOCKED_MS = 50.0
RUN, AGENT = "bench-plots", "agent-1"
T0 = 1_800_000_000.0
PHASES = ("load", "live", "zoom", "controls")


class Probe:
    """A 5 ms precise timer on the GUI thread; its worst lateness is how long the thread was blocked.
    Beside it, the GUI thread's own CPU time in its worst gap and the most CPU time it spent in any
    gap: a gap much longer than its CPU time is the thread waiting (for a core on a loaded machine,
    or for the GIL), not working."""

    def __init__(self) -> None:
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(PROBE_INTERVAL_MS)
        self.timer.timeout.connect(self._tick)
        self.last = 0.0
        self.last_cpu = 0.0
        self.worst_ms = 0.0
        self.worst_gap_cpu_ms = 0.0  # the GUI thread's CPU time within the worst gap
        self.worst_cpu_ms = 0.0  # the most GUI-thread CPU time within any gap

    def start(self) -> None:
        self.last, self.last_cpu = time.perf_counter(), time.thread_time()
        self.take()
        self.timer.start()

    def take(self) -> tuple[float, float, float]:
        """(worst lateness, CPU in that gap, most CPU in a gap) since the last take, and start over."""
        out = (self.worst_ms, self.worst_gap_cpu_ms, self.worst_cpu_ms)
        self.worst_ms = self.worst_gap_cpu_ms = self.worst_cpu_ms = 0.0
        return out

    def stop(self) -> None:
        self.timer.stop()

    def _tick(self) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        late_ms, cpu_ms = (now - self.last) * 1000 - PROBE_INTERVAL_MS, (cpu - self.last_cpu) * 1000
        if late_ms > self.worst_ms:
            self.worst_ms, self.worst_gap_cpu_ms = late_ms, cpu_ms
        self.worst_cpu_ms = max(self.worst_cpu_ms, cpu_ms)
        self.last, self.last_cpu = now, cpu


class GcPauses:
    """The cycle collector's longest pause (any thread) since the last ``take``, and each
    collection's generation and CPU time (the collecting thread's: comparable on a busy machine)."""

    def __init__(self) -> None:
        self.started = 0.0
        self.started_cpu = 0.0
        self.worst_ms = 0.0
        self.collections: list[tuple[int, float]] = []  # (generation, CPU ms) since the last take
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.started, self.started_cpu = time.perf_counter(), time.thread_time()
        elif self.started:
            self.worst_ms = max(self.worst_ms, (time.perf_counter() - self.started) * 1000)
            self.collections.append((info["generation"], (time.thread_time() - self.started_cpu) * 1000))
            self.started = 0.0

    def take(self) -> float:
        out, self.worst_ms = self.worst_ms, 0.0
        return out

    def take_collections(self) -> str:
        """The collections since the last call, as ``gen G: CPU ms`` texts ("none" when none ran)."""
        done, self.collections = self.collections, []
        return ", ".join(f"g{gen} {cpu_ms:.1f}" for gen, cpu_ms in done) or "none"

    def close(self) -> None:
        gc.callbacks.remove(self._callback)


def episode_payload(i: int) -> dict[str, Any]:
    ret = float(np.tanh(i / 200_000) + 0.3 * np.sin(i * 0.37))
    return {"episode_index": i, "total_reward": ret, "length": 20 + i % 17, "terminated": True, "truncated": False,
            "outcome": "success" if i % 3 else "failure", "metadata": {"epsilon": max(0.05, 1.0 - i / 500_000)}}


def build_store(path: Path, episodes: int) -> float:
    """Write ``episodes`` EPISODE_FINALIZED events of one stream; returns the seconds it took."""
    started = time.perf_counter()
    store = TelemetrySQLiteStore(path)
    try:
        chunk = 50_000
        for first in range(0, episodes, chunk):
            events = [TelemetryEvent(Topic.EPISODE_FINALIZED, RUN, AGENT, i + 1, iso_from_unix_s(T0 + i * 0.01),
                                     episode_payload(i)) for i in range(first, min(episodes, first + chunk))]
            store.write_batch(events)
    finally:
        store.close()
    return time.perf_counter() - started


def live_points(first: int, count: int) -> list[EpisodePoint]:
    out = []
    for i in range(first, first + count):
        p = episode_payload(i)
        out.append(EpisodePoint(i, p["total_reward"], float(p["length"]), 1.0 if i % 3 else 0.0, T0 + i * 0.01,
                                {"epsilon": p["metadata"]["epsilon"]}))
    return out


def wait(app: QApplication, done: Callable[[], bool], timeout_s: float = 600.0) -> bool:
    """Run the event loop until ``done()`` (or the timeout)."""
    deadline = time.perf_counter() + timeout_s
    while not done():
        if time.perf_counter() > deadline:
            return False
        app.processEvents()
        time.sleep(0.001)
    return True


def measure(db_path: Path, seconds: float, batch: int) -> dict[str, Any]:
    app = QApplication.instance() or QApplication([])
    store = TelemetrySQLiteStore(db_path)
    reader = StoreReader(store)
    probe = Probe()
    pauses = GcPauses()
    panel = CurvePanel(CurveData())
    panel.resize(1200, 800)
    panel.show()
    app.processEvents()
    out: dict[str, Any] = {"ticks": 0}
    state: dict[str, Any] = {"live": False, "next": 0, "tick_ms": [], "paint_ms": [], "tick_cpu_ms": [],
                             "paint_cpu_ms": [], "history": None}

    def tick() -> None:
        if not state["live"]:
            return
        t, cpu = time.perf_counter(), time.thread_time()
        panel.data.add_points(live_points(state["next"], batch))
        state["next"] += batch
        panel.refresh()
        t_paint, cpu_paint = time.perf_counter(), time.thread_time()
        paint_now(panel)
        state["paint_ms"].append((time.perf_counter() - t_paint) * 1000)
        state["tick_ms"].append((time.perf_counter() - t) * 1000)
        state["paint_cpu_ms"].append((time.thread_time() - cpu_paint) * 1000)
        state["tick_cpu_ms"].append((time.thread_time() - cpu) * 1000)
        out["ticks"] += 1

    def on_history(data: CurveData) -> None:
        t = time.perf_counter()
        panel.data.merge_from(data)
        panel.refresh()
        out["merge_ms"] = (time.perf_counter() - t) * 1000
        state["next"] = int(data.column("index")[-1]) + 1 if data.episode_count else 0
        state["history"] = data.episode_count

    ticker = QTimer()
    ticker.setInterval(TICK_MS)
    ticker.timeout.connect(tick)
    probe.start()
    pauses.take()
    pauses.take_collections()
    out["young_start"] = gc.get_count()[0]
    ticker.start()
    started = time.perf_counter()
    # 1. load: read, merge, decimate on the worker, shown
    load_stream_curves(reader, RUN, AGENT, on_history)
    wait(app, lambda: state["history"] is not None and not panel.busy()
         and len(panel.curve_data("return")[0]) > 0 and not ranges_pending(panel))
    paint_now(panel)
    out["history_s"] = time.perf_counter() - started
    out["blocked_load_ms"], out["gap_cpu_load_ms"], out["cpu_load_ms"] = probe.take()
    out["gc_load_ms"] = pauses.take()
    out["gcs_load"], out["young_load"] = pauses.take_collections(), gc.get_count()[0]
    # 2. live appends
    state["live"] = True
    live_until = time.perf_counter() + seconds
    wait(app, lambda: time.perf_counter() >= live_until)
    out["blocked_live_ms"], out["gap_cpu_live_ms"], out["cpu_live_ms"] = probe.take()
    out["gc_live_ms"] = pauses.take()
    out["gcs_live"], out["young_live"] = pauses.take_collections(), gc.get_count()[0]
    out["tick_p50_ms"] = float(np.median(state["tick_ms"])) if state["tick_ms"] else None
    out["tick_max_ms"] = max(state["tick_ms"]) if state["tick_ms"] else None
    out["paint_p50_ms"] = float(np.median(state["paint_ms"])) if state["paint_ms"] else None
    # the GUI thread's own CPU time in them (comparable on a busy machine, where wall time is not)
    out["tick_cpu_p50_ms"] = float(np.median(state["tick_cpu_ms"])) if state["tick_cpu_ms"] else None
    out["paint_cpu_p50_ms"] = float(np.median(state["paint_cpu_ms"])) if state["paint_cpu_ms"] else None
    # 3. zoom and pan the return chart (live ticks go on); each step's re-decimation awaited
    view_box = panel.plot_item("return").getViewBox()
    end = float(state["next"])
    steps = [(end - end / 2 ** k, end) for k in range(1, 14)]  # zoom in towards the newest episodes
    steps += [(lo - (hi - lo) * 3, hi - (hi - lo) * 3) for lo, hi in steps[-1:]]  # pan left
    steps += [(end / 4, end * 3 / 4), (0.0, end)]  # zoom out
    land_ms = []
    for lo, hi in steps:
        app.processEvents()  # a person's next zoom is an event of its own, after the last one's paint
        t = time.perf_counter()
        view_box.setXRange(lo, hi, padding=0)
        wait(app, lambda: not panel.worker.pending(("view", "return")))
        land_ms.append((time.perf_counter() - t) * 1000)
        paint_now(panel)
    out["zoom_rows"] = len(panel.curve_data("return")[0])
    view_box.enableAutoRange()  # the whole view again: follows the data
    wait(app, lambda: not panel.busy())
    out["zoom_land_p50_ms"] = float(np.median(land_ms))
    out["zoom_land_max_ms"] = max(land_ms)
    out["blocked_zoom_ms"], out["gap_cpu_zoom_ms"], out["cpu_zoom_ms"] = probe.take()
    out["gc_zoom_ms"] = pauses.take()
    out["gcs_zoom"], out["young_zoom"] = pauses.take_collections(), gc.get_count()[0]
    # 4. controls: x-axis to steps and back, another rolling window (on the worker for a long run)
    t = time.perf_counter()
    for action in (lambda: panel.set_axis("step"), lambda: panel.set_axis("episode"),
                   lambda: panel.window_box.setValue(50)):
        app.processEvents()
        action()
        wait(app, lambda: not panel.busy())
        paint_now(panel)
    out["controls_s"] = time.perf_counter() - t
    out["window_after"] = panel.data.window
    out["blocked_controls_ms"], out["gap_cpu_controls_ms"], out["cpu_controls_ms"] = probe.take()
    out["gc_controls_ms"] = pauses.take()
    out["gcs_controls"], out["young_controls"] = pauses.take_collections(), gc.get_count()[0]
    ticker.stop()
    probe.stop()
    out["episodes"] = panel.data.episode_count
    out["blocked_ms"] = max(out[f"blocked_{phase}_ms"] for phase in PHASES)
    out["cpu_ms"] = max(out[f"cpu_{phase}_ms"] for phase in PHASES)
    out["gc_ms"] = max(out[f"gc_{phase}_ms"] for phase in PHASES)
    pauses.close()
    panel.stop(10)
    panel.close()
    panel.deleteLater()  # deleted while the QApplication exists (as gym_gui/app.py does its window)
    QCoreApplication.sendPostedEvents(None, int(QEvent.Type.DeferredDelete))
    reader.stop(10)
    store.close()
    return out


def young_run_paints(ticks: int, per_tick: int) -> dict[str, Any]:
    """A shown panel fed from an empty run, ``per_tick`` episodes (with an ``epsilon``) a tick, each
    tick refreshed and painted (``paint_now``), the follow and reveal turns run between ticks: the
    GUI thread's CPU of each tick's paint, and which paints laid out an axis (pyqtgraph's
    ``AxisItem.drawPicture`` ran, after the layout's ``generateDrawSpecs``, ours or pyqtgraph's: a
    range step, a widening of the tick texts). The live
    window's case (issue 13 #5: no block over 16 ms), where a young run's ranges step often."""
    from pyqtgraph.graphicsItems.AxisItem import AxisItem

    app = QApplication.instance() or QApplication([])
    layouts = [0]
    original = AxisItem.drawPicture

    def counted(self: AxisItem, painter: Any, *specs: Any) -> Any:
        layouts[0] += 1
        return original(self, painter, *specs)

    AxisItem.drawPicture = counted  # type: ignore[method-assign]
    try:
        panel = CurvePanel(CurveData())
        panel.resize(885, 500)  # the Online tab's chart area at the window's start
        panel.show()
        wait(app, lambda: not ranges_pending(panel), 30.0)
        plain, laid_out = [], []
        for tick in range(ticks):
            panel.data.add_points(live_points(tick * per_tick, per_tick))
            panel.refresh()
            layouts[0] = 0
            cpu = time.thread_time()
            paint_now(panel)
            (laid_out if layouts[0] else plain).append((time.thread_time() - cpu) * 1000)
            until = time.perf_counter() + 0.01
            wait(app, lambda: time.perf_counter() >= until)  # the follow and reveal turns
        panel.stop(10)
        panel.close()
        panel.deleteLater()
        QCoreApplication.sendPostedEvents(None, int(QEvent.Type.DeferredDelete))
    finally:
        AxisItem.drawPicture = original  # type: ignore[method-assign]
    every = plain + laid_out
    return {"ticks": ticks, "paint_cpu_p50_ms": float(np.median(every)), "paint_cpu_max_ms": max(every),
            "laid_out_ticks": len(laid_out), "laid_out_p50_ms": float(np.median(laid_out)) if laid_out else None,
            "laid_out_max_ms": max(laid_out) if laid_out else None,
            "plain_p50_ms": float(np.median(plain)) if plain else None}


def paint_now(panel: CurvePanel) -> None:
    """Paint what changed now, as the event loop's next turn would: the scene's queued processing of
    its changed items (a posted call) redraws them, once. (``viewport().repaint()`` would paint the
    whole view first and the scene's queued processing paint the changed items a second time.)"""
    QCoreApplication.sendPostedEvents(panel.graphics.scene(), int(QEvent.Type.MetaCall))


def ranges_pending(panel: CurvePanel) -> bool:
    """True while a chart waits for its turn to step its ranges (False for a panel without turns)."""
    pending = getattr(panel, "ranges_pending", None)
    return bool(pending()) if pending is not None else False


def old_figures(commit: str, db_path: Path, seconds: float, batch: int, episodes: int) -> dict[str, Any] | None:
    """Run ``commit``'s tools/bench_plots.py on ``db_path`` (made by it when missing) in a copy of
    that commit's tree; its BENCH_JSON figures by name ({"value", "baseline"}), or None when it
    could not run."""
    with tempfile.TemporaryDirectory(prefix="bench-plots-old-") as tree:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "gym_gui", "tools"],
                                 capture_output=True, check=False)
        if archive.returncode != 0:
            print(f"old tree {commit}: git archive failed: {archive.stderr.decode(errors='replace').strip()}")
            return None
        subprocess.run(["tar", "-x", "-C", tree], input=archive.stdout, check=True)
        env = dict(os.environ, PYQTGRAPH_QT_LIB={"pyqt5": "PyQt5", "pyqt6": "PyQt6"}.get(qtpy.API_NAME, "PyQt5"),
                   QT_API=qtpy.API_NAME)
        run = subprocess.run([sys.executable, str(Path(tree) / "tools" / "bench_plots.py"), "--db", str(db_path),
                              "--seconds", str(seconds), "--batch", str(batch), "--episodes", str(episodes)],
                             capture_output=True, text=True, env=env, check=False, timeout=1800)
    for line in run.stdout.splitlines():
        if line.startswith(BENCH_JSON_PREFIX):
            data = json.loads(line[len(BENCH_JSON_PREFIX):])
            return {f["name"]: f for f in data["figures"]}
    print(f"old tree {commit}: no BENCH_JSON line (exit {run.returncode}): {run.stderr[-500:]}")
    return None


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"


PLOT_MODULES = ("gym_gui/ui/plots", *(f"gym_gui/live/{name}.py" for name in (
    "curve_points", "curve_columns", "curve_jobs", "compare_curves", "follow_range", "plot_jobs", "decimate", "smoothing")))
RAW_JSON_PREFIX = "BENCH_PLOTS_RAW "


def child_figures(tree: Path, db_path: Path, seconds: float, batch: int) -> dict[str, Any] | None:
    """``tree``'s tools/bench_plots.py run once in a process of its own on ``db_path``: every figure
    of ``measure`` (None when it could not run)."""
    run = subprocess.run([sys.executable, str(tree / "tools" / "bench_plots.py"), "--db", str(db_path),
                          "--seconds", str(seconds), "--batch", str(batch), "--raw"],
                         capture_output=True, text=True, env=dict(os.environ), check=False, timeout=1800)
    for line in run.stdout.splitlines():
        if line.startswith(RAW_JSON_PREFIX):
            return dict(json.loads(line[len(RAW_JSON_PREFIX):]))
    print(f"{tree}: no figures (exit {run.returncode}): {run.stderr[-800:]}")
    return None


def tree_with_plots_of(commit: str, tree: Path) -> bool:
    """Copy this tree (gym_gui, tools) into ``tree`` with ``commit``'s plot modules (``PLOT_MODULES``)."""
    for name in ("gym_gui", "tools"):
        shutil.copytree(ROOT / name, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.rmtree(tree / "gym_gui" / "ui" / "plots")
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, *PLOT_MODULES], capture_output=True, check=False)
    if archive.returncode != 0:
        print(f"plots of {commit}: git archive failed: {archive.stderr.decode(errors='replace').strip()}")
        return False
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    return True


def print_runs(runs: list[tuple[str, dict[str, Any]]]) -> None:
    """The figures of several runs side by side (one column per run, in the order run)."""
    def cell(out: dict[str, Any], key: str) -> str:
        if key.startswith("phase:"):
            phase = key[6:]
            return f"{out[f'blocked_{phase}_ms']:.1f} ({out[f'gap_cpu_{phase}_ms']:.1f}/{out[f'cpu_{phase}_ms']:.1f})"
        if key == "cpu:tick":
            tick, paint = out.get("tick_cpu_p50_ms"), out.get("paint_cpu_p50_ms")
            return "-" if tick is None or paint is None else f"{tick:.1f} / {paint:.1f}"
        if key == "young:":
            return f"{_fmt(out.get('young_start'))} / {_fmt(out.get('young_load'))}"
        return _fmt(out.get(key))

    rows = [("GUI thread blocked, worst of all phases (ms)", "blocked_ms"),
            ("most GUI-thread CPU in one gap, any phase (ms)", "cpu_ms"),
            *[(f"  {text}: blocked (CPU in it / most CPU in a gap)", f"phase:{phase}")
              for phase, text in (("load", "1. load"), ("live", "2. live"), ("zoom", "3. zoom/pan"),
                                  ("controls", "4. axis/window"))],
            ("live tick, median (ms)", "tick_p50_ms"), ("live tick, worst (ms)", "tick_max_ms"),
            ("  of which the repaint, median (ms)", "paint_p50_ms"),
            ("live tick / its repaint, GUI-thread CPU, median (ms)", "cpu:tick"),
            ("zoom step until re-decimated, median (ms)", "zoom_land_p50_ms"),
            ("history read and shown (s)", "history_s"), ("history merge on the GUI thread (ms)", "merge_ms"),
            ("cycle collector's longest pause (ms)", "gc_ms"),
            *[(f"  collections in {phase} (gen CPU-ms)", f"gcs_{phase}") for phase in PHASES],
            ("young objects at the start / after load", "young:"),
            ("live ticks done", "ticks")]
    print(f"{'':52}" + "".join(f"{label:>22}" for label, _out in runs))
    for text, key in rows:
        print(f"{text:52}" + "".join(f"{cell(out, key):>22}" for _label, out in runs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=5.0, help="live appends after the history is shown")
    parser.add_argument("--batch", type=int, default=20, help="live episodes per 50 ms tick")
    parser.add_argument("--db", type=Path, default=None,
                        help="keep the stored episodes in this file (made once, reused when it exists)")
    parser.add_argument("--old-commit", default=None,
                        help="also run this commit's bench_plots.py on the same episodes (the in-run baseline)")
    parser.add_argument("--old-db", type=Path, default=None,
                        help="the old tree's own file of the same episodes (made by it once, reused when it exists; "
                             "default: beside --db, else temporary)")
    parser.add_argument("--plots-of", default=None, metavar="REV",
                        help="also run this bench with REV's plot modules in a copy of this tree, on the same file, "
                             "alternating with ours --repeat times (the in-run baseline of a plots change)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of ours (and of --plots-of), alternated")
    parser.add_argument("--raw", action="store_true", help=argparse.SUPPRESS)  # one run, every figure as JSON
    parser.add_argument("--young-run", type=int, default=0, metavar="TICKS",
                        help="instead: a live run from empty for TICKS ticks of --young-batch episodes, the GUI-thread "
                             "CPU of each tick's paint, with and without an axis laid out (the live window's case)")
    parser.add_argument("--young-batch", type=int, default=2, help="episodes per tick of --young-run")
    parser.add_argument("--check", action="store_true", help=f"exit 1 if the GUI thread blocked > {MAX_BLOCKED_MS} ms")
    args = parser.parse_args(argv)
    tune_gc(default=GUI_THRESHOLDS)  # the window's collector settings, as the app does (gym_gui/app.py)
    freeze_startup_objects()
    if args.young_run:
        young = young_run_paints(args.young_run, args.young_batch)
        print(f"Qt binding {qtpy.API_NAME}; load average {os.getloadavg()[0]:.1f}; a run from empty, "
              f"{args.young_batch} episodes a tick, {young['ticks']} ticks; GUI-thread CPU of a tick's paint:")
        print(f"  every tick: median {_fmt(young['paint_cpu_p50_ms'])} ms, worst {_fmt(young['paint_cpu_max_ms'])} ms")
        print(f"  ticks whose paint laid out an axis: {young['laid_out_ticks']}, median {_fmt(young['laid_out_p50_ms'])} ms, "
              f"worst {_fmt(young['laid_out_max_ms'])} ms; the others' median {_fmt(young['plain_p50_ms'])} ms")
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-plots-") as tmp:
        db_path = args.db or Path(tmp) / "plots.sqlite"
        if not db_path.exists():
            build_s = build_store(db_path, args.episodes)
            print(f"stored {args.episodes:,} episodes in {build_s:.1f} s")
        if args.raw:
            print(RAW_JSON_PREFIX + json.dumps(measure(db_path, args.seconds, args.batch)))
            return 0
        print(f"Qt binding {qtpy.API_NAME}; load average before the runs: {os.getloadavg()[0]:.1f} (2 cores)")
        runs: list[tuple[str, dict[str, Any]]] = []
        base_tree = Path(tmp) / "plots-of"
        if args.plots_of and not tree_with_plots_of(args.plots_of, base_tree):
            args.plots_of = None
        for i in range(max(1, args.repeat)):
            # with a baseline, ours runs in a process of its own too (the same conditions)
            now = child_figures(ROOT, db_path, args.seconds, args.batch) if args.plots_of else measure(
                db_path, args.seconds, args.batch)
            if now is not None:
                runs.append((f"now #{i + 1}", now))
            print(f"load average after now #{i + 1}: {os.getloadavg()[0]:.1f}")
            if args.plots_of:
                theirs = child_figures(base_tree, db_path, args.seconds, args.batch)
                if theirs is not None:
                    runs.append((f"{args.plots_of} #{i + 1}", theirs))
                print(f"load average after {args.plots_of} #{i + 1}: {os.getloadavg()[0]:.1f}")
        if not runs or not runs[0][0].startswith("now"):
            print("no run of ours finished")
            return 1
        ours = runs[0][1]
        old_db = args.old_db or (db_path.with_name(f"{db_path.stem}-{args.old_commit}{db_path.suffix}")
                                 if args.old_commit else None)
        old = old_figures(args.old_commit, old_db, args.seconds, args.batch, args.episodes) if args.old_commit else None
    if len(runs) > 1:
        print_runs(runs)
    old = old or {}

    def old_value(name: str, key: str = "value") -> Any:
        return old.get(name, {}).get(key)

    rows: list[tuple[str, Any, Any, Any]] = [
        ("GUI thread blocked, worst of all phases (ms)", ours["blocked_ms"], old_value("plots.blocked_ms"),
         old_value("plots.blocked_ms", "baseline")),
        *[row for phase, text in (("load", "1. load: read + merge + decimate"), ("live", "2. live appends"),
                                  ("zoom", "3. zoom / pan with live appends"), ("controls", "4. x-axis and window changes"))
          for row in ((f"  {text} (ms)", ours[f"blocked_{phase}_ms"], None, None),
                      ("    GUI-thread CPU in that gap / most in a gap (ms)",
                       f"{ours[f'gap_cpu_{phase}_ms']:.1f} / {ours[f'cpu_{phase}_ms']:.1f}", None, None))],
        ("cycle collector's longest pause, any phase (ms)", ours["gc_ms"], None, None),
        *[(f"  collections in {phase} (generation, CPU ms)", ours.get(f"gcs_{phase}"), None, None) for phase in PHASES],
        ("young objects at the start, after each phase", " / ".join(
            _fmt(ours.get(f"young_{phase}")) for phase in ("start", *PHASES)), None, None),
        ("history read and shown (s)", ours["history_s"], old_value("plots.history_s"),
         old_value("plots.history_s", "baseline")),
        ("history merge on the GUI thread (ms)", ours.get("merge_ms"), None, None),
        ("live tick, median (ms)", ours["tick_p50_ms"], None, None),
        ("live tick, worst (ms)", ours["tick_max_ms"], old_value("plots.tick_ms"), old_value("plots.tick_ms", "baseline")),
        ("  of which the repaint, median (ms)", ours["paint_p50_ms"], None, None),
        ("live tick / its repaint, GUI-thread CPU, median (ms)",
         f"{ours['tick_cpu_p50_ms']:.1f} / {ours['paint_cpu_p50_ms']:.1f}" if ours.get("tick_cpu_p50_ms") is not None
         else None, None, None),
        ("zoom step until re-decimated, median (ms)", ours["zoom_land_p50_ms"], None, None),
        ("zoom step until re-decimated, worst (ms)", ours["zoom_land_max_ms"], None, None),
        ("axis and window changes, until shown (s)", ours["controls_s"], None, None),
        ("live ticks done", ours["ticks"], None, None),
        ("episodes plotted at the end", ours["episodes"], None, None),
    ]
    print(f"{'':46} {'CurvePanel':>12} {'old ' + (args.old_commit or '-'):>14} {'naive':>10}")
    for label, a, b, c in rows:
        print(f"{label:46} {_fmt(a):>12} {_fmt(b):>14} {_fmt(c):>10}")
    ok = ours["blocked_ms"] <= MAX_BLOCKED_MS
    print(f"target: GUI thread blocked at most {MAX_BLOCKED_MS:.0f} ms with {args.episodes:,} episodes: "
          f"{'met' if ok else 'MISSED'}")
    baseline_label = f"CurvePanel of {args.old_commit}" if args.old_commit else ""
    print_bench_json("plots", [
        figure("plots.blocked_ms", f"GUI thread blocked, {args.episodes:,} episodes loaded, live, zoomed",
               ours["blocked_ms"], "ms", "lower", baseline=old_value("plots.blocked_ms"), baseline_label=baseline_label,
               target=target("<=", MAX_BLOCKED_MS, source="issue 12 #1")),
        figure("plots.gui_cpu_ms", "most GUI-thread CPU time between two 5 ms heartbeats", ours["cpu_ms"], "ms", "lower"),
        figure("plots.tick_ms", "live tick (append + refresh + repaint), worst", ours["tick_max_ms"], "ms", "lower",
               baseline=old_value("plots.tick_ms"), baseline_label=baseline_label),
        figure("plots.history_s", "history read and shown", ours["history_s"], "s", "lower",
               baseline=old_value("plots.history_s"), baseline_label=baseline_label),
    ])
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
