"""What the GUI thread does while it is blocked: stack samples taken while a heartbeat timer is late.

``BlockSampler`` is a daemon thread that every ``interval_s`` (1 ms) looks at a ``Probe`` (a precise
timer on the GUI thread that notes ``last``, the ``perf_counter`` of its latest firing): while the
probe is more than ``late_after_ms`` late, it records the GUI thread's Python stack
(``sys._current_frames``), the GUI thread's CPU clock and the wall time. When the probe fires
again the block ends; blocks longer than ``report_ms`` are kept with their samples. A stack whose
innermost frame is the event loop (``app.exec``) is Qt's own C++ work (layout, a widget's paint, a
timer's dispatch): the Python frames the sampler sees only name the Python code Qt called.

The sampler needs the GIL to take a sample: while the GUI thread runs Python, it gets it at the
interpreter's switch interval (5 ms), so a block holds a sample every 1-5 ms. Used by
``tools/bench_live.py --blocks``. Any thread may call ``report``; the sampler never blocks the GUI
thread longer than one ``sys._current_frames`` call.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from typing import Any, Callable

__all__ = ["BlockSampler"]

_OWN = ("gym_gui/", "pyqtgraph/", "tools/bench_live", "qtpy/")


def _where(code: Any, lineno: int) -> str:
    name = code.co_filename
    for mark in ("gym_gui/", "pyqtgraph/", "tools/"):
        at = name.rfind(mark)
        if at >= 0:
            name = name[at:]
            break
    else:
        name = name.rsplit("/", 1)[-1]
    return f"{name}:{lineno} {code.co_name}"


class BlockSampler(threading.Thread):
    """Samples the GUI thread's stack while ``probe_last()`` is stale. Start it on the GUI thread
    (it remembers that thread's id); ``stop()`` from any thread."""

    def __init__(self, probe_last: Callable[[], float], *, probe_interval_ms: float, late_after_ms: float = 3.0,
                 report_ms: float = 16.0, interval_s: float = 0.001, depth: int = 14,
                 counting: Callable[[], bool] = lambda: True) -> None:
        super().__init__(name="block-sampler", daemon=True)
        self._probe_last = probe_last
        self._interval_ms = probe_interval_ms
        self._late_s = late_after_ms / 1000.0
        self._report_ms = report_ms
        self._interval_s = interval_s
        self._depth = depth
        self._counting = counting
        self._gui_ident = threading.get_ident()
        self._gui_clock = time.pthread_getcpuclockid(threading.main_thread().ident)  # type: ignore[arg-type]
        self._halt = threading.Event()
        # key: probe.last at the block's start -> (wall start, gui cpu start, samples)
        self._open: tuple[float, float, list[tuple[float, tuple[str, ...]]]] | None = None
        self._open_key = 0.0
        self.blocks: list[dict[str, Any]] = []

    def stop(self) -> None:
        """Ask the thread to end and wait for it (at most 1 s). Any thread."""
        self._halt.set()
        self.join(1.0)

    def _stack(self) -> tuple[str, ...]:
        frame = sys._current_frames().get(self._gui_ident)  # noqa: SLF001
        out: list[str] = []
        while frame is not None and len(out) < self._depth:
            out.append(_where(frame.f_code, frame.f_lineno))
            frame = frame.f_back
        return tuple(out)

    def run(self) -> None:
        while not self._halt.wait(self._interval_s):
            last = self._probe_last()
            now = time.perf_counter()
            late = now - last - self._interval_ms / 1000.0
            if self._open is not None and last != self._open_key:
                self._close(last)
            if late > self._late_s and self._counting():
                if self._open is None:
                    self._open_key = last
                    self._open = (last + self._interval_ms / 1000.0, time.clock_gettime(self._gui_clock), [])
                self._open[2].append((now, self._stack()))

    def _close(self, new_last: float) -> None:
        assert self._open is not None
        start, cpu0, samples = self._open
        self._open = None
        wall_ms = (new_last - self._open_key) * 1000 - self._interval_ms
        if wall_ms < self._report_ms:
            return
        self.blocks.append({"at": start, "wall_ms": wall_ms,
                            "gui_cpu_ms": (time.clock_gettime(self._gui_clock) - cpu0) * 1000,
                            "samples": samples})

    def report(self, *, top: int = 6, out: Any = None) -> None:
        """Print each block: its wall and GUI-thread CPU, and its samples' stacks grouped by their
        innermost frames of ours (the project, pyqtgraph, the bench) with counts."""
        out = out or sys.stdout
        print(f"GUI-thread blocks > {self._report_ms:.0f} ms: {len(self.blocks)}", file=out)
        overall: collections.Counter[str] = collections.Counter()
        for block in sorted(self.blocks, key=lambda b: -b["wall_ms"]):
            print(f"- block {block['wall_ms']:.1f} ms wall, GUI thread CPU {block['gui_cpu_ms']:.1f} ms, "
                  f"{len(block['samples'])} samples", file=out)
            groups: collections.Counter[str] = collections.Counter()
            for _t, stack in block["samples"]:
                key = " <- ".join(stack[:5]) if stack else "(no Python frame)"
                groups[key] += 1
            for key, count in groups.most_common(top):
                print(f"    {count:3d} x {key}", file=out)
                overall[key] += count
        print("most sampled stacks over all blocks:", file=out)
        for key, count in overall.most_common(12):
            print(f"  {count:4d} x {key}", file=out)


def _describe(receiver: Any) -> str:
    try:
        name = receiver.objectName()
    except Exception:  # noqa: BLE001 (a deleted wrapper)
        return type(receiver).__name__
    what = type(receiver).__name__ + (f"#{name}" if name else "")
    parent = receiver.parent() if hasattr(receiver, "parent") else None
    hops = 0
    while parent is not None and hops < 4:  # the nearest ancestor of ours names the place
        module = type(parent).__module__
        if module.startswith(("gym_gui", "pyqtgraph")):
            return f"{what} in {type(parent).__name__}"
        parent = parent.parent()
        hops += 1
    return what


def timed_application_class() -> type:
    """A QApplication subclass whose ``notify`` notes every event delivery's wall time, exclusive of
    the deliveries nested in it (a top-level window's UpdateRequest holds its children's Paint
    events): what C++ work each widget's events cost, which stack samples cannot name. Records
    (start, wall s, exclusive s, receiver, event type, exclusive GUI-thread CPU s) of deliveries >=
    0.5 ms exclusive (wall or CPU)."""
    from qtpy.QtWidgets import QApplication

    class TimedApplication(QApplication):  # type: ignore[misc, valid-type]
        def __init__(self, argv: list[str]) -> None:
            super().__init__(argv)
            self.deliveries: list[tuple[float, float, float, str, int, float]] = []
            self._nested: list[float] = []
            self._nested_cpu: list[float] = []
            self.recording = False

        def notify(self, receiver: Any, event: Any) -> bool:  # noqa: D102 (Qt override)
            t0, c0 = time.perf_counter(), time.thread_time()
            self._nested.append(0.0)
            self._nested_cpu.append(0.0)
            try:
                return super().notify(receiver, event)
            finally:
                wall, cpu = time.perf_counter() - t0, time.thread_time() - c0
                inner, inner_cpu = self._nested.pop(), self._nested_cpu.pop()
                if self._nested:
                    self._nested[-1] += wall
                    self._nested_cpu[-1] += cpu
                if self.recording and (wall - inner >= 0.0005 or cpu - inner_cpu >= 0.0005):
                    try:
                        kind = event.type()
                        kind = int(getattr(kind, "value", kind))
                    except Exception:  # noqa: BLE001
                        kind = -1
                    self.deliveries.append((t0, wall, wall - inner, _describe(receiver), kind, cpu - inner_cpu))

    return TimedApplication


def _event_names() -> dict[int, str]:
    try:
        from qtpy.QtCore import QEvent

        names = {}
        for holder in (QEvent, QEvent.Type):
            for key in dir(holder):
                value = getattr(holder, key, None)
                if isinstance(value, QEvent.Type):
                    names[int(getattr(value, "value", value))] = key
    except Exception:  # noqa: BLE001
        names = {}
    return names


def report_cpu(deliveries: list[tuple[float, float, float, str, int, float]], seconds: float, *, top: int = 12,
               out: Any = None) -> None:
    """Over everything recorded (deliveries of >= 0.5 ms): exclusive GUI-thread CPU per second of the
    steady state by receiver and event, with the count, median and max of one delivery (ms)."""
    out = out or sys.stdout
    names = _event_names()
    per: dict[str, list[float]] = collections.defaultdict(list)
    for _t0, _wall, _excl, who, kind, cpu in deliveries:
        per[f"{who} {names.get(kind, kind)}"].append(cpu * 1000)
    print(f"event deliveries >= 0.5 ms over the steady state ({seconds:.1f} s), exclusive GUI-thread CPU:", file=out)
    for key, values in sorted(per.items(), key=lambda kv: -sum(kv[1]))[:top]:
        values.sort()
        print(f"  {sum(values) / seconds:7.1f} ms/s  {len(values):5d} x, median {values[len(values) // 2]:.2f}, "
              f"max {values[-1]:.2f}  {key}", file=out)


def report_deliveries(blocks: list[dict[str, Any]], deliveries: list[tuple[float, float, float, str, int, float]],
                      *, top: int = 8, out: Any = None) -> None:
    """Per block, the event deliveries inside it by exclusive time (ms), and over all blocks."""
    out = out or sys.stdout
    names = _event_names()
    overall: collections.Counter[str] = collections.Counter()
    for block in sorted(blocks, key=lambda b: -b["wall_ms"]):
        start, end = block["at"], block["at"] + block["wall_ms"] / 1000
        per: collections.Counter[str] = collections.Counter()
        for t0, wall, excl, who, kind, _cpu in deliveries:
            if t0 < end and t0 + wall > start:
                key = f"{who} {names.get(kind, kind)}"
                per[key] += excl * 1000
        print(f"- block {block['wall_ms']:.1f} ms: " + "; ".join(f"{k} {v:.1f}" for k, v in per.most_common(top)),
              file=out)
        overall.update(per)
    print("event deliveries over all blocks (exclusive ms):", file=out)
    for key, ms in overall.most_common(20):
        print(f"  {ms:7.1f} {key}", file=out)
