"""What the Redis source's reader thread counts, for any thread to read (Qt-free).

The reader thread updates these fields holding ``lock``; ``snapshot`` (the source's ``stats()``),
``stream_list`` and ``lost_copy`` read them from any thread.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from gym_gui.telemetry.events import StreamKey
from gym_gui.transport.redis_renumbered import RenumberedEntries

__all__ = ["SourceCounts"]


def _shown(stream: StreamKey) -> str:
    run, agent = stream
    return f"{run}/{agent or ''}"


class SourceCounts:
    """The source's counters and lists; ``lock`` guards every field. Writers: the reader thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.streams: list[StreamKey] = []
        self.entries_read = 0
        self.repeated = 0
        self.published: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.lost: dict[StreamKey, list[tuple[int, int]]] = {}
        self.vanished: dict[StreamKey, int | None] = {}  # stream -> last seq_id read before its key vanished
        self.reconnects = 0
        self.connection_errors = 0
        self.connected = False
        self.last_error: str | None = None
        self.paused_s = 0.0

    def stream_list(self) -> list[StreamKey]:
        """The streams being read, in order of discovery. Any thread; never blocks for long."""
        with self.lock:
            return list(self.streams)

    def lost_copy(self) -> dict[StreamKey, list[tuple[int, int]]]:
        """The lost seq_id ranges per stream (a copy). Any thread; never blocks for long."""
        with self.lock:
            return {stream: list(ranges) for stream, ranges in self.lost.items()}

    def snapshot(self, renumbered: RenumberedEntries, running: bool) -> dict[str, Any]:
        """The source's ``stats()``. Any thread; never blocks for long.

        ``entries_read`` (events: an entry of format 2 counts its events), ``repeated`` (events of
        such entries at or below the seq_ids already taken, skipped: a re-sent batch, a resume inside
        an entry), ``published`` (per topic name) and ``published_total``, ``rejected`` (per
        reason) and ``rejected_total``, ``lost_ranges`` (``{"run_id/agent_id": [(a, b), ...]}``, for
        display; the source's ``lost_ranges()`` has exact keys) and ``lost`` (their event count, an
        upper bound), ``vanished`` (``{"run_id/agent_id": last seq_id read}`` of streams whose key is
        gone from Redis and not written since), ``renumbered`` (entries skipped because their stream
        was written anew below the seq_ids already taken: exact) and ``renumbered_ranges``
        (``{"run_id/agent_id": [(a, b), ...]}``; ``renumbered_ranges()`` has exact keys),
        ``reconnects``, ``connection_errors``, ``connected``, ``last_error``, ``streams``,
        ``paused_s`` (waiting on the gate), ``running``.
        """
        with self.lock:
            return {
                "entries_read": self.entries_read,
                "repeated": self.repeated,
                "published": dict(self.published),
                "published_total": sum(self.published.values()),
                "rejected": dict(self.rejected),
                "rejected_total": sum(self.rejected.values()),
                "lost_ranges": {_shown(stream): list(r) for stream, r in self.lost.items()},
                "lost": sum(b - a + 1 for ranges in self.lost.values() for a, b in ranges),
                "vanished": {_shown(stream): seq for stream, seq in self.vanished.items()},
                "renumbered": renumbered.total,
                "renumbered_ranges": {_shown(stream): r for stream, r in renumbered.ranges().items()},
                "reconnects": self.reconnects,
                "connection_errors": self.connection_errors,
                "connected": self.connected,
                "last_error": self.last_error,
                "streams": len(self.streams),
                "paused_s": self.paused_s,
                "running": running,
            }
