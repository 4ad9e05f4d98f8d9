"""How fast this machine runs plain Python right now: a reference loop, in ns per iteration.

``tools/bench`` measures it before and after its benchmarks and writes both next to the figures,
so two runs can be told apart by machine as well as by commit: when the reference loops of two
runs differ, their absolute figures do too, and only the ratios to in-run baselines compare; when
the two measurements of one run differ, the machine's speed drifted during it.

The loop is interpreter work of the kind the telemetry hot paths do (integer arithmetic, a dict
store and load, a tuple made and unpacked, a method call), single-threaded, with no I/O and no
allocation that outlives an iteration. Main thread; blocks for about ``rounds`` x 50 ms.
"""

from __future__ import annotations

import time

__all__ = ["reference_loop_ns"]


def _loop(iterations: int) -> int:
    seen: dict[int, int] = {}
    total = 0
    for i in range(iterations):
        pair = (i, i & 7)
        a, b = pair
        seen[b] = a
        total += seen[b] - a + len(seen)
    return total


def reference_loop_ns(iterations: int = 200_000, rounds: int = 5) -> float:
    """The fastest of ``rounds`` runs of the reference loop, in ns per iteration. Main thread; blocks."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter_ns()
        _loop(iterations)
        best = min(best, (time.perf_counter_ns() - started) / iterations)
    return best
