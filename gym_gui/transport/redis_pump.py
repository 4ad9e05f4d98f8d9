"""RedisPump: a bus's events into Redis, losslessly and in stream order, through connection loss (Qt-free).

A thin composition: a ``BatchProcessor`` (one stream-ordered lossless subscription to the
transported topics, so each stream's events leave in seq_id order, which Redis requires: it
refuses an id not greater than the last) around a ``RedisExporter``. A batch that fails on a
connection error stays in hand and is sent again after a backoff (the publisher's idempotent ids
make that safe); meanwhile events queue up, and ``gate`` (a BacklogGate on everything not yet in
Redis) pauses the producer once the backlog is high. The pump is stepped by its owner: one
thread, the owner, calls ``step`` and ``finish``; the other methods may be called from any thread.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from gym_gui.telemetry.backpressure import BacklogGate
from gym_gui.telemetry.batch_processor import BatchProcessor, BusSource
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.transport.redis_entries import STREAM_TOPICS
from gym_gui.transport.redis_exporter import RedisExporter
from gym_gui.transport.redis_publisher import RedisPublisher

__all__ = ["RedisPump"]

_log = logging.getLogger(__name__)


class RedisPump:
    """Moves what ``bus`` publishes on the transported topics into Redis through ``publisher``."""

    def __init__(self, bus: RunBus, publisher: RedisPublisher, *, subscriber_id: str = "redis-pump",
                 batch_size: int = 512, high_water: int = 20_000, low_water: int = 5_000,
                 retry_initial_s: float = 0.05, retry_max_s: float = 2.0) -> None:
        """Subscribe now (nothing published afterwards is missed). Any thread; never blocks."""
        self.publisher = publisher
        self.exporter = RedisExporter(publisher)
        self.processor = BatchProcessor(
            self.exporter, BusSource(bus, STREAM_TOPICS, subscriber_id), name=subscriber_id, batch_size=batch_size, max_delay_s=0.0,
            high_water=high_water, low_water=low_water, retry_initial_s=retry_initial_s,
            retry_max_s=retry_max_s, report_interval_s=2.0, logger=_log,
        )
        self.gate: BacklogGate = self.processor.gate

    # -- any thread ------------------------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        """Events per pipeline at most."""
        return self.processor.batch_size

    @property
    def outcomes(self) -> dict[str, str]:
        """run_id -> outcome of each RUN_COMPLETED that reached Redis. Any thread."""
        return self.exporter.outcomes

    @property
    def sent(self) -> int:
        """Events sent to Redis (duplicates included: they are there). Any thread."""
        return self.processor.exported

    @property
    def connection_errors(self) -> int:
        """Attempts that failed on a connection error. Any thread."""
        return self.processor.retries

    @property
    def reconnects(self) -> int:
        """Times Redis was reachable again after connection errors. Any thread."""
        return self.processor.recoveries

    @property
    def last_error(self) -> str | None:
        """The error of the last attempt while it is failing, else None. Any thread."""
        p = self.processor
        return p.last_error if p.failing else None

    def backlog(self) -> int:
        """Events published on the bus but not yet in Redis. Any thread; never blocks."""
        return self.processor.backlog()

    @property
    def connected(self) -> bool:
        """False while the last attempt failed on a connection error. Any thread."""
        return not self.processor.failing

    def stats(self) -> dict[str, Any]:
        """Sent, backlog, connection errors, reconnects, the publisher's counts, gate pauses. Any thread."""
        p = self.processor
        return {
            "sent": p.exported,
            "backlog": p.backlog(),
            "connected": self.connected,
            "connection_errors": p.retries,
            "reconnects": p.recoveries,
            "last_error": self.last_error,
            "lost": p.lost_count(),
            "lost_by_reason": p.lost_reasons(),
            "gate_paused_s": self.gate.paused_s,
            "gate_pauses": self.gate.pauses,
            "publisher": self.publisher.stats(),
        }

    def wake(self) -> None:
        """Make a ``step`` that is waiting return now. Any thread; never blocks."""
        self.processor.wake()

    # -- owner thread ----------------------------------------------------------------------------
    def step(self, max_wait_s: float) -> None:
        """Wait up to ``max_wait_s`` for events (or the retry time), then send what is ready.

        Owner thread; blocks up to ``max_wait_s`` plus one Redis round trip per batch.
        """
        self.processor.step(max_wait_s)

    def finish(self, timeout_s: float, *, abort: threading.Event | None = None) -> bool:
        """Unsubscribe, then send everything left, retrying until ``timeout_s`` or until ``abort`` is set
        (then call ``wake``); True if all is in Redis.

        Owner thread, once the producer is done; blocks up to ``timeout_s`` (plus one attempt).
        """
        return self.processor.finish(timeout_s, abort=abort)
