"""Per-stream seq_id bookkeeping (Qt-free): exact lost ranges, and rate-limited gap warnings."""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from gym_gui.telemetry.events import StreamKey

__all__ = ["SeqGapWarner", "SeqRangeLog"]


class SeqRangeLog:
    """Collects lost seq_ids per stream as inclusive ``(first, last)`` ranges.

    A seq_id extends the stream's last range when it was added in the same ``epoch`` as that
    range's last seq_id (the caller bumps its epoch whenever events could have been delivered in
    between), so a range never spans an event that was delivered. Not thread-safe: the owner
    guards it with its own lock.
    """

    __slots__ = ("_ranges", "_epochs")

    def __init__(self) -> None:
        self._ranges: dict[StreamKey, list[list[int]]] = {}
        self._epochs: dict[StreamKey, int] = {}

    def __bool__(self) -> bool:
        return bool(self._ranges)

    def add(self, stream: StreamKey, seq_id: int, epoch: int) -> None:
        """Record ``seq_id`` of ``stream`` as lost during ``epoch``."""
        ranges = self._ranges.get(stream)
        if ranges is None:
            self._ranges[stream] = [[seq_id, seq_id]]
        elif self._epochs[stream] == epoch and ranges[-1][1] < seq_id:
            ranges[-1][1] = seq_id
        else:
            ranges.append([seq_id, seq_id])
        self._epochs[stream] = epoch

    def take(self) -> dict[StreamKey, list[tuple[int, int]]]:
        """Return every recorded range and forget them."""
        taken = {stream: [(a, b) for a, b in ranges] for stream, ranges in self._ranges.items()}
        self._ranges.clear()
        self._epochs.clear()
        return taken


class SeqGapWarner:
    """Logs one WARNING per sequence gap, at most once per stream per ``interval_s`` (0: every gap).

    The stream is ``(run_id, agent_id or "default")``. The message is fixed; ``extra`` carries
    ``run_id``, ``agent_id`` (as published), ``gap``, ``last_seq``, ``seq_id`` and ``suppressed``:
    how many warnings of that stream the rate limit held back since its previous line. Any
    thread; never blocks beyond a short lock (the log call runs outside it).
    """

    __slots__ = ("_logger", "_message", "_interval_s", "_clock", "_lock", "_next_at", "_held", "gaps", "suppressed")

    def __init__(self, logger: logging.Logger, message: str, interval_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._logger = logger
        self._message = message
        self._interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._next_at: dict[tuple[str, str], float] = {}
        self._held: dict[tuple[str, str], int] = {}
        #: Gaps seen, and warnings held back, since creation.
        self.gaps = 0
        self.suppressed = 0

    def warn(self, run_id: str, agent_id: str | None, last_seq: int, seq_id: int) -> bool:
        """Report that ``seq_id`` followed ``last_seq`` in the stream; True if a line was logged."""
        stream = (run_id, agent_id or "default")
        now = self._clock()
        with self._lock:
            self.gaps += 1
            if now < self._next_at.get(stream, 0.0):
                self._held[stream] = self._held.get(stream, 0) + 1
                self.suppressed += 1
                return False
            if self._interval_s > 0:
                self._next_at[stream] = now + self._interval_s
            held = self._held.pop(stream, 0)
        self._logger.warning(self._message, extra={
            "run_id": run_id, "agent_id": agent_id, "gap": seq_id - last_seq - 1,
            "last_seq": last_seq, "seq_id": seq_id, "suppressed": held,
        })
        return True
