"""FramePacedCollector: the cycle collector's young collections run between the GUI's ticks (Qt-free).

CPython starts a young collection when its *net* count of container allocations passes threshold
0. Objects made and freed in turn cancel out in that count, yet the new ones stay in the young
generation until a collection walks them. The window makes such objects at the step rate: a
tab's table keeps its newest 10,000 steps as flat tuples, one new row a step and the oldest one
freed, and the collector untracks a row only at its first collection. At 10,000-20,000 steps/s a
young collection found 15,000-20,000 rows and held the GIL, on whichever thread it started, for
10-20 ms of the GUI thread (docs/tuning.md, "Young collections paced by frames").

Collected every ``interval_ms`` instead (the pump calls ``__call__`` at the end of each tick, at
most once a frame), the young generation holds a couple of frames' rows, and a collection is a
small, regular part of a frame rather than a rare long block. The generations above it follow
CPython's own rules: the middle one is collected with the young one when its count passes
threshold 1; everything, when the oldest generation's count passes threshold 2 *and* the objects
moved into it since the last full collection are more than a quarter of those it held then (the
rule CPython applies to bound full collections by the heap's size). Collections CPython starts
on its own (a burst on another thread between two ticks) run as before.

Nothing runs while the collector is disabled (``gc.disable()``) or threshold 0 is 0, and nothing
runs while no tick comes: an idle window keeps CPython's automatic collections alone.
"""

from __future__ import annotations

import gc
import time

__all__ = ["DEFAULT_INTERVAL_MS", "FramePacedCollector"]

#: Two display frames: at 20,000 steps/s a young collection then walks about 700 rows.
DEFAULT_INTERVAL_MS = 32


class FramePacedCollector:
    """A pump tick listener (``GuiPump.add_tick_listener``) that collects the young generation at
    most every ``interval_ms``, and the older ones by CPython's rules. GUI thread; each call blocks
    for the collection it runs (well under a millisecond for a young one at 20,000 steps/s)."""

    def __init__(self, *, interval_ms: int = DEFAULT_INTERVAL_MS) -> None:
        if interval_ms < 0:
            raise ValueError("interval_ms must be >= 0")
        self.interval_s = interval_ms / 1000
        self.collections = [0, 0, 0]  # run by this collector, per generation
        self._last_s = -float("inf")
        self._long_lived_total = len(gc.get_objects(2))  # CPython's figure after a full collection
        self._long_lived_pending = 0  # moved into the oldest generation since

    def __call__(self) -> None:
        """Collect if ``interval_ms`` has passed since the last call that did. GUI thread; blocks
        for the collection."""
        now_s = time.perf_counter()
        if now_s - self._last_s < self.interval_s:
            return
        self._last_s = now_s
        self.collect_due()

    def collect_due(self) -> int:
        """Collect the generations due now (the young one at least); returns the generation
        collected, or -1 when the collector is off. GUI thread; blocks for the collection."""
        threshold0, threshold1, threshold2 = gc.get_threshold()
        if not gc.isenabled() or threshold0 == 0:
            return -1
        _count0, count1, count2 = gc.get_count()
        if count2 > threshold2 and self._long_lived_pending > self._long_lived_total // 4:
            generation = 2
        elif count1 > threshold1:
            generation = 1
        else:
            generation = 0
        if generation == 1:
            younger = len(gc.get_objects(0)) + len(gc.get_objects(1))
            self._long_lived_pending += max(0, younger - gc.collect(1))
        else:
            gc.collect(generation)
        if generation == 2:
            self._long_lived_total = len(gc.get_objects(2))
            self._long_lived_pending = 0
        self.collections[generation] += 1
        return generation
