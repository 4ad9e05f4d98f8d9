"""A logger wrapper that emits at most one line per key per interval and counts the rest (Qt-free)."""

from __future__ import annotations

import logging
import threading
import time

__all__ = ["RateLimitedLog"]


class RateLimitedLog:
    """Rate-limits log lines per key; the next line that passes says how many were suppressed.

    Safe from any thread; never blocks beyond a short lock.
    """

    def __init__(self, logger: logging.Logger, interval_s: float = 1.0) -> None:
        self._logger = logger
        self._interval_s = interval_s
        self._lock = threading.Lock()
        self._next_at: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def log(self, level: int, key: str, msg: str, *args: object) -> bool:
        """Log ``msg % args`` under ``key`` unless one was logged less than ``interval_s`` ago.

        Returns True when the line was written.
        """
        now = time.monotonic()
        with self._lock:
            if now < self._next_at.get(key, 0.0):
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return False
            self._next_at[key] = now + self._interval_s
            suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            msg += " (%d similar suppressed)"
            args = (*args, suppressed)
        self._logger.log(level, msg, *args)
        return True

    def flush(self, level: int, what: str) -> int:
        """Log one line per key with lines still suppressed (``N similar <what> suppressed``), so the
        end of a burst is never silent; returns how many lines were suppressed. Any thread."""
        with self._lock:
            pending, self._suppressed = self._suppressed, {}
            self._next_at.clear()
        for key, count in pending.items():
            self._logger.log(level, "%d similar %s suppressed (%s)", count, what, key)
        return sum(pending.values())
