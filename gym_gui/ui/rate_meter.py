"""RateMeter: events per second over a sliding time window, from a running count (Qt-free)."""

from __future__ import annotations

import time
from collections import deque
from typing import Callable

__all__ = ["RateMeter"]


class RateMeter:
    """Keeps ``(time, running count)`` samples of the last ``window_s`` seconds.

    ``rate()`` is the count's growth per second across the window, or None until two samples at
    least ``min_span_s`` apart exist. One thread (the caller's); never blocks.
    """

    def __init__(self, window_s: float = 2.0, *, min_span_s: float = 0.2,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if window_s <= 0 or min_span_s < 0:
            raise ValueError("window_s must be > 0 and min_span_s >= 0")
        self._window_s = window_s
        self._min_span_s = min_span_s
        self._clock = clock
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, count: int) -> None:
        """Record the running ``count`` now. Owner's thread; never blocks."""
        now = self._clock()
        self._samples.append((now, count))
        while len(self._samples) > 2 and self._samples[1][0] <= now - self._window_s:
            self._samples.popleft()

    def rate(self) -> float | None:
        """Growth per second over the window, or None without enough samples. Owner's thread; never blocks."""
        if len(self._samples) < 2:
            return None
        (t0, n0), (t1, n1) = self._samples[0], self._samples[-1]
        span = t1 - t0
        if span < self._min_span_s or span <= 0:
            return None
        return (n1 - n0) / span

    def reset(self) -> None:
        """Forget every sample (e.g. after a stall). Owner's thread; never blocks."""
        self._samples.clear()
