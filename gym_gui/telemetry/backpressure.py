"""BacklogGate: high/low water back-pressure between a producer and a lossless consumer (Qt-free).

The producer (e.g. the proxy thread reading a worker's pipe) calls ``wait_until_open`` before each
read; while the consumer's backlog is above the high-water mark it pauses until the backlog falls to
the low-water mark (hysteresis). The consumer calls ``notify`` after each batch it commits. Nothing
polls: a paused producer sleeps on a condition that ``notify`` signals. The live path never touches
the gate, so it is never slowed by it.

``DeferredGate`` stands in for a gate whose consumer does not exist yet (the bridge's pump, built
once redis-py is imported after the worker started): closed until ``attach`` hands it the real one.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

__all__ = ["BacklogGate", "DeferredGate"]


class BacklogGate:
    """Pauses producers while ``backlog_fn()`` exceeds ``high_water`` until it is at most ``low_water``."""

    def __init__(self, backlog_fn: Callable[[], int], high_water: int, low_water: int) -> None:
        """``backlog_fn`` must be cheap and callable from any thread. ValueError unless 0 <= low <= high."""
        if not 0 <= low_water <= high_water:
            raise ValueError(f"need 0 <= low_water <= high_water, got low={low_water} high={high_water}")
        self._backlog_fn = backlog_fn
        self.high_water = high_water
        self.low_water = low_water
        self._cond = threading.Condition(threading.Lock())
        self._waiters = 0
        self._released = False
        self._paused_done_s = 0.0
        self._pause_starts: dict[object, float] = {}  # one token per waiting call -> when it paused
        self.pauses = 0

    def __repr__(self) -> str:
        return (f"<BacklogGate high={self.high_water} low={self.low_water} paused={self.is_paused} "
                f"pauses={self.pauses} paused_s={self.paused_s:.3f}>")

    @property
    def paused_s(self) -> float:
        """Total seconds producers spent paused, including pauses still going on. Any thread."""
        now = time.monotonic()
        return self._paused_done_s + sum(now - t for t in list(self._pause_starts.values()))

    @property
    def is_paused(self) -> bool:
        """True while at least one producer waits in ``wait_until_open``. Any thread."""
        return self._waiters > 0

    def wait_until_open(self, timeout_s: float | None = None) -> bool:
        """Return True at once if the backlog is <= high_water; else wait until it is <= low_water.

        Producer thread; blocks up to ``timeout_s`` (None: no limit). Returns False on timeout (the
        gate is still closed; call again to keep waiting). Paused time and pauses are counted.
        """
        if self._released or self._backlog_fn() <= self.high_water:
            return True
        started = time.monotonic()
        deadline = None if timeout_s is None else started + timeout_s
        token = object()
        with self._cond:
            self._waiters += 1
            self.pauses += 1
            self._pause_starts[token] = started
            try:
                while not self._released and self._backlog_fn() > self.low_water:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._cond.wait(remaining)
                return True
            finally:
                self._waiters -= 1
                del self._pause_starts[token]
                self._paused_done_s += time.monotonic() - started

    def notify(self) -> None:
        """Make paused producers re-check the backlog. Consumer thread (any thread); never blocks long."""
        if self._waiters:
            with self._cond:
                self._cond.notify_all()

    def release(self) -> None:
        """Open the gate for good (the consumer is gone; pausing would only stall producers). Any thread."""
        with self._cond:
            self._released = True
            self._cond.notify_all()


class DeferredGate:
    """A gate closed until ``attach(gate)``; from then on it is that gate."""

    def __init__(self) -> None:
        self._attached = threading.Event()
        self._gate: BacklogGate | None = None

    def attach(self, gate: BacklogGate) -> None:
        """Open to ``gate``: waiters go on waiting on it. Any thread, once; never blocks."""
        self._gate = gate
        self._attached.set()

    def wait_until_open(self, timeout_s: float | None = None) -> bool:
        """``gate.wait_until_open`` once attached; before, wait up to ``timeout_s`` (None: no limit) for
        ``attach`` and then for that gate in what is left. Producer thread; blocks up to ``timeout_s``."""
        gate = self._gate
        if gate is not None:
            return gate.wait_until_open(timeout_s)
        started = time.monotonic()
        if not self._attached.wait(timeout_s):
            return False
        gate = self._gate
        assert gate is not None
        return gate.wait_until_open(None if timeout_s is None else max(0.0, timeout_s - (time.monotonic() - started)))
