"""Keeps the last bytes a worker wrote to stderr, for failure reports (Qt-free)."""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import IO

from gym_gui.rate_limited_log import RateLimitedLog

__all__ = ["StderrTail"]

_log = logging.getLogger(__name__)


class StderrTail:
    """A bounded tail of a worker's stderr. ``consume`` runs on its own thread; ``text`` on any."""

    def __init__(self, max_bytes: int = 8192) -> None:
        self._max_bytes = max_bytes
        self._lines: deque[bytes] = deque()
        self._size = 0
        self._lock = threading.Lock()
        self._rlog = RateLimitedLog(_log, interval_s=1.0)

    def consume(self, stream: IO[bytes], name: str) -> None:
        """Read ``stream`` to EOF, keeping the tail. The stderr thread only; blocks on reads."""
        try:
            for line in iter(stream.readline, b""):
                self._keep(line)
                self._rlog.log(logging.DEBUG, "stderr", "%s stderr: %s", name, line.rstrip().decode("utf-8", "replace"))
        except (OSError, ValueError):  # the pipe was closed under us: nothing more to read
            pass

    def _keep(self, line: bytes) -> None:
        line = line[-self._max_bytes:]
        with self._lock:
            self._lines.append(line)
            self._size += len(line)
            while self._size > self._max_bytes:
                self._size -= len(self._lines.popleft())

    def text(self) -> str:
        """The tail as text (invalid UTF-8 replaced). Any thread; never blocks long."""
        with self._lock:
            return b"".join(self._lines).decode("utf-8", "replace")
