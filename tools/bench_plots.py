#!/usr/bin/env python3
"""Plot benchmark: a run of 1,000,000 episodes plotted with the GUI thread never blocked > 50 ms.

A SQLite file holds one stream of ``--episodes`` stored episodes (return, length, outcome and an
``epsilon`` in the metadata). A CurvePanel (offscreen, 1200x800, shown) then:

1. loads the stream's curves from SQLite on a StoreReader thread (``load_stream_curves``) and
   merges them into the live CurveData on the GUI thread;
2. keeps receiving live episodes: every 50 ms (a LiveTelemetryController's tick) a batch of
   ``--batch`` new episodes is appended and the panel refreshed (``setData`` with views of the
   buffers; curves downsampled ``peak`` to the pixels shown and clipped to the view), and the
   plot is repainted at once, so drawing counts too;

for ``--seconds`` after the history landed. Measured: the worst lateness of a 5 ms probe QTimer
on the GUI thread (how long the thread was blocked; target at most 50 ms), the history load time,
the live ticks done. The baseline, in the same run on the same file: the naive plot, the same
charts without downsampling or clip-to-view, every tick handing setData the full arrays rebuilt
from Python lists (a redraw from scratch).

Usage: .venv/bin/python tools/bench_plots.py [--episodes 1000000] [--seconds 5] [--batch 20] [--check]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pyqtgraph as pg  # noqa: E402
from qtpy.QtCore import Qt, QTimer  # noqa: E402
from qtpy.QtWidgets import QApplication  # noqa: E402

from gym_gui.gc_tuning import freeze_startup_objects, tune_gc  # noqa: E402
from gym_gui.live.curves import CurveData, EpisodePoint  # noqa: E402
from gym_gui.qt.store_reader import StoreReader  # noqa: E402
from gym_gui.telemetry.events import TelemetryEvent, Topic, iso_from_unix_s  # noqa: E402
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore  # noqa: E402
from gym_gui.ui.plots.curve_loader import load_stream_curves  # noqa: E402
from gym_gui.ui.plots.curve_panel import CurvePanel  # noqa: E402
from bench_figures import figure, print_bench_json, target  # noqa: E402

PROBE_INTERVAL_MS = 5
TICK_MS = 50
MAX_BLOCKED_MS = 50.0
RUN, AGENT = "bench-plots", "agent-1"
T0 = 1_800_000_000.0


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
        self.worst_ms = 0.0
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.worst_ms = max(self.worst_ms, (now - self.last) * 1000 - PROBE_INTERVAL_MS)
        self.last = now


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


class NaivePlot:
    """The baseline: the same four charts, no downsampling or clipping, full arrays from lists each tick."""

    def __init__(self) -> None:
        self.widget = pg.GraphicsLayoutWidget()
        self.widget.setBackground("w")
        self.curves = []
        for i, title in enumerate(("Episode return", "Episode length", "Success", "epsilon")):
            plot = self.widget.addPlot(row=i // 2, col=i % 2, title=title)
            self.curves.append(plot.plot(pen=pg.mkPen((20, 90, 200), width=1)))
        self.columns: list[list[float]] = [[], [], [], [], []]

    def add(self, xs: list[float], series: list[list[float]]) -> None:
        self.columns[0].extend(xs)
        for col, values in zip(self.columns[1:], series):
            col.extend(values)

    def refresh(self) -> None:
        x = np.array(self.columns[0])
        for curve, col in zip(self.curves, self.columns[1:]):
            curve.setData(x, np.array(col))


def measure(db_path: Path, seconds: float, batch: int, *, naive: bool) -> dict[str, Any]:
    app = QApplication.instance() or QApplication([])
    store = TelemetrySQLiteStore(db_path)
    reader = StoreReader(store)
    probe = Probe()
    if naive:
        view = NaivePlot()
        widget = view.widget
    else:
        panel = CurvePanel(CurveData())
        widget = panel
    widget.resize(1200, 800)
    widget.show()
    app.processEvents()
    state: dict[str, Any] = {"history_s": None, "ticks": 0, "next": 0, "tick_ms": [], "loaded_at": None}
    started = time.perf_counter()

    def on_history(data: CurveData) -> None:
        state["blocked_reading_ms"] = probe.worst_ms  # while the reader thread read the history
        probe.worst_ms = 0.0
        t = time.perf_counter()
        if naive:
            view.add(data.column("index").tolist(), [data.column("return").tolist(), data.column("length").tolist(),
                                                     data.column("success").tolist(), data.column("meta:epsilon").tolist()])
            view.refresh()
        else:
            panel.data.merge_from(data)
            panel.refresh()
        state["merge_ms"] = (time.perf_counter() - t) * 1000
        state["history_s"] = time.perf_counter() - started
        state["loaded_at"] = time.perf_counter()
        state["next"] = int(data.column("index")[-1]) + 1 if data.episode_count else 0

    def tick() -> None:
        if state["loaded_at"] is None:
            return
        t = time.perf_counter()
        points = live_points(state["next"], batch)
        state["next"] += batch
        if naive:
            view.add([float(p.episode_index) for p in points],
                     [[p.total_reward for p in points], [p.length for p in points], [p.success for p in points],
                      [p.metadata["epsilon"] for p in points]])
            view.refresh()
            view.widget.viewport().repaint()
        else:
            panel.data.add_points(points)
            panel.refresh()
            t_paint = time.perf_counter()
            panel.graphics.viewport().repaint()
            state.setdefault("paint_ms", []).append((time.perf_counter() - t_paint) * 1000)
        state["tick_ms"].append((time.perf_counter() - t) * 1000)
        state["ticks"] += 1

    ticker = QTimer()
    ticker.setInterval(TICK_MS)
    ticker.timeout.connect(tick)
    probe.start()
    ticker.start()
    load_stream_curves(reader, RUN, AGENT, on_history)
    deadline = started + 600
    while time.perf_counter() < deadline:
        app.processEvents()
        loaded = state["loaded_at"]
        if loaded is not None and time.perf_counter() - loaded >= seconds:
            break
        time.sleep(0.001)
    ticker.stop()
    probe.stop()
    episodes = panel.data.episode_count if not naive else len(view.columns[0])
    widget.close()
    reader.stop(10)
    store.close()
    ticks = state["tick_ms"]
    blocked_live = probe.worst_ms
    return {"blocked_ms": max(blocked_live, state.get("blocked_reading_ms", 0.0)),
            "blocked_reading_ms": state.get("blocked_reading_ms"), "blocked_live_ms": blocked_live, "history_s": state["history_s"], "merge_ms": state.get("merge_ms"),
            "ticks": state["ticks"], "episodes": episodes,
            "tick_p50_ms": float(np.median(ticks)) if ticks else None,
            "paint_p50_ms": float(np.median(state["paint_ms"])) if state.get("paint_ms") else None, "tick_max_ms": max(ticks) if ticks else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=5.0, help="live appends after the history landed")
    parser.add_argument("--batch", type=int, default=20, help="live episodes per 50 ms tick")
    parser.add_argument("--db", type=Path, default=None,
                        help="keep the stored episodes in this file (made once, reused when it exists)")
    parser.add_argument("--check", action="store_true", help=f"exit 1 if the GUI thread blocked > {MAX_BLOCKED_MS} ms")
    args = parser.parse_args(argv)
    tune_gc()  # as the app does (gym_gui/app.py)
    freeze_startup_objects()
    with tempfile.TemporaryDirectory(prefix="bench-plots-") as tmp:
        db_path = args.db or Path(tmp) / "plots.sqlite"
        if not db_path.exists():
            build_s = build_store(db_path, args.episodes)
            print(f"stored {args.episodes:,} episodes in {build_s:.1f} s")
        load = os.getloadavg()[0]
        print(f"load average before the runs: {load:.1f} (2 cores)")
        ours = measure(db_path, args.seconds, args.batch, naive=False)
        base = measure(db_path, args.seconds, args.batch, naive=True)
    rows: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
        ("GUI thread blocked, worst (ms)", lambda m: m["blocked_ms"]),
        ("  while the history is read (ms)", lambda m: m["blocked_reading_ms"]),
        ("  from the merge on, live (ms)", lambda m: m["blocked_live_ms"]),
        ("history read + merge, until shown (s)", lambda m: m["history_s"]),
        ("history merge on the GUI thread (ms)", lambda m: m["merge_ms"]),
        ("live tick, median (ms)", lambda m: m["tick_p50_ms"]),
        ("live tick, worst (ms)", lambda m: m["tick_max_ms"]),
        ("  of which the repaint, median (ms)", lambda m: m.get("paint_p50_ms")),
        ("live ticks done", lambda m: m["ticks"]),
        ("episodes plotted at the end", lambda m: m["episodes"]),
    ]
    print(f"{'':42} {'CurvePanel':>14} {'naive baseline':>16}")
    for label, get in rows:
        a, b = get(ours), get(base)
        fa = f"{a:,.1f}" if isinstance(a, float) else f"{a:,}" if a is not None else "-"
        fb = f"{b:,.1f}" if isinstance(b, float) else f"{b:,}" if b is not None else "-"
        print(f"{label:42} {fa:>14} {fb:>16}")
    ok = ours["blocked_ms"] <= MAX_BLOCKED_MS
    print(f"target: GUI thread blocked at most {MAX_BLOCKED_MS:.0f} ms with {args.episodes:,} episodes: "
          f"{'met' if ok else 'MISSED'}")
    print_bench_json("plots", [
        figure("plots.blocked_ms", f"GUI thread blocked, {args.episodes:,} episodes plotted + live", ours["blocked_ms"],
               "ms", "lower", baseline=base["blocked_ms"], baseline_label="naive setData, no downsampling",
               target=target("<=", MAX_BLOCKED_MS, source="issue 12 #1")),
        figure("plots.tick_ms", "live tick (append + refresh + repaint), worst", ours["tick_max_ms"], "ms", "lower",
               baseline=base["tick_max_ms"], baseline_label="naive setData, no downsampling"),
        figure("plots.history_s", "history read and shown", ours["history_s"], "s", "lower",
               baseline=base["history_s"], baseline_label="naive setData, no downsampling"),
    ])
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
