"""RedisPump: a bus's events into Redis, losslessly and in stream order, through connection loss (Qt-free).

The pump holds one lossless subscription per transported topic, all on one ``Waker``, and drains
them the way the DbSink does (``PendingEvents``: control topics, steps, control topics again), so
each stream's events leave in seq_id order, which Redis requires (it refuses an id not greater
than the last). A batch that fails on a connection error stays in hand and is sent again after a
backoff (the publisher's idempotent ids make that safe); meanwhile events queue up, and ``gate``
(a BacklogGate on everything not yet in Redis) pauses the producer once the backlog is high.
One thread, the owner, calls ``step`` and ``finish``; the other methods may be called from any thread.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from gym_gui.rate_limited_log import RateLimitedLog
from gym_gui.telemetry.backpressure import BacklogGate
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.run_bus import RunBus, Waker
from gym_gui.telemetry.sink_pending import PendingEvents
from gym_gui.transport.redis_client import CONNECTION_ERRORS, Backoff
from gym_gui.transport.redis_entries import STREAM_TOPICS
from gym_gui.transport.redis_publisher import RedisPublisher

__all__ = ["RedisPump"]

_log = logging.getLogger(__name__)

_CONTROL_TOPICS = tuple(t for t in STREAM_TOPICS if t is not Topic.STEP_APPENDED)


class RedisPump:
    """Moves what ``bus`` publishes on the transported topics into Redis through ``publisher``."""

    def __init__(self, bus: RunBus, publisher: RedisPublisher, *, subscriber_id: str = "redis-pump",
                 batch_size: int = 512, high_water: int = 20_000, low_water: int = 5_000,
                 retry_initial_s: float = 0.05, retry_max_s: float = 2.0) -> None:
        """Subscribe now (nothing published afterwards is missed). Any thread; never blocks."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.publisher = publisher
        self.batch_size = batch_size
        self._bus = bus
        self._subscriber_id = subscriber_id
        self._waker = Waker()
        subs = bus.subscribe_all(STREAM_TOPICS, subscriber_id, maxlen=None, waker=self._waker)
        self._controls = [subs[t] for t in _CONTROL_TOPICS]
        self._steps = subs[Topic.STEP_APPENDED]
        self._subs = list(subs.values())
        self._pending = PendingEvents()
        self._unsent: list[TelemetryEvent] = []
        self._backoff = Backoff(retry_initial_s, retry_max_s)
        self._retry_at = 0.0
        self._sealed = False
        self._rlog = RateLimitedLog(_log, interval_s=2.0)
        self.gate = BacklogGate(self.backlog, high_water, low_water)
        self.connection_errors = 0
        self.reconnects = 0
        self.sent = 0
        self.last_error: str | None = None
        #: run_id -> outcome of each RUN_COMPLETED that reached Redis
        self.outcomes: dict[str, str] = {}

    # -- any thread ------------------------------------------------------------------------------
    def backlog(self) -> int:
        """Events published on the bus but not yet in Redis. Any thread; never blocks."""
        return sum(len(s) for s in self._subs) + self._pending.count + len(self._unsent)

    @property
    def connected(self) -> bool:
        """False while the last attempt failed on a connection error. Any thread."""
        return self.last_error is None

    def stats(self) -> dict[str, Any]:
        """Sent, backlog, connection errors, reconnects, the publisher's counts, gate pauses. Any thread."""
        return {
            "sent": self.sent,
            "backlog": self.backlog(),
            "connected": self.connected,
            "connection_errors": self.connection_errors,
            "reconnects": self.reconnects,
            "last_error": self.last_error,
            "gate_paused_s": self.gate.paused_s,
            "gate_pauses": self.gate.pauses,
            "publisher": self.publisher.stats(),
        }

    def wake(self) -> None:
        """Make a ``step`` that is waiting return now. Any thread; never blocks."""
        self._waker.notify()

    # -- owner thread ----------------------------------------------------------------------------
    def step(self, max_wait_s: float) -> None:
        """Wait up to ``max_wait_s`` for events (or the retry time), then send what is ready.

        Owner thread; blocks up to ``max_wait_s`` plus one Redis round trip per batch.
        """
        now = time.monotonic()
        wait_s = max_wait_s if not self._unsent else min(max_wait_s, max(0.0, self._retry_at - now))
        if wait_s > 0 and not self._pending.has_held and not any(len(s) for s in self._subs):
            self._waker.wait(wait_s)
        self._collect()
        self._send_ready()

    def finish(self, timeout_s: float, *, abort: threading.Event | None = None) -> bool:
        """Unsubscribe, then send everything left, retrying until ``timeout_s`` or until ``abort`` is set
        (then call ``wake``); True if all is in Redis.

        Owner thread, once the producer is done; blocks up to ``timeout_s`` (plus one attempt).
        """
        if not self._sealed:
            for sub in self._subs:
                self._bus.unsubscribe(sub.topic, self._subscriber_id)
            self._collect()
            self._collect()
            self._pending.seal()
            self._sealed = True
            self.gate.release()
        deadline = time.monotonic() + timeout_s
        while self.backlog():
            self._send_ready()
            if not self.backlog():
                break
            remaining = deadline - time.monotonic()
            if abort is not None and abort.is_set():
                _log.error("%d events were not sent to Redis: the stop was forced (%s)", self.backlog(), self.last_error)
                return False
            if remaining <= 0:
                _log.error("%d events could not be sent to Redis within %.1f s (%s)",
                           self.backlog(), timeout_s, self.last_error)
                return False
            self._waker.wait(min(remaining, max(0.0, self._retry_at - time.monotonic())))
        return True

    def _collect(self) -> None:
        for _ in range(2):  # a second pass makes the controls drained after the steps eligible
            before = [e for sub in self._controls for e in sub.drain()]
            steps = self._steps.drain()
            after = [e for sub in self._controls for e in sub.drain()]
            if before or steps or after:
                self._pending.add_collected(before, steps, after, time.monotonic())
            if not self._pending.has_held:
                return

    def _send_ready(self) -> None:
        """Send eligible events batch by batch until none is left or a connection error defers the rest."""
        while True:
            if time.monotonic() < self._retry_at:
                return
            batch = self._unsent or self._pending.take_batch(self.batch_size)
            if not batch:
                return
            try:
                self.publisher.publish(batch)
            except CONNECTION_ERRORS as exc:
                self._unsent = batch
                self.connection_errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                delay = self._backoff.next_delay_s()
                self._retry_at = time.monotonic() + delay
                self._rlog.log(logging.WARNING, "conn", "Redis unavailable (%s); %d events wait, retrying in %.2f s",
                               self.last_error, self.backlog(), delay)
                return
            if self.last_error is not None:
                self.reconnects += 1
                _log.info("Redis reachable again after %d failed attempts", self._backoff.failures)
                self.last_error = None
            self._backoff.reset()
            self._unsent = []
            self.sent += len(batch)
            for evt in batch:
                if evt.topic is Topic.RUN_COMPLETED:
                    self.outcomes[evt.run_id] = str(evt.payload.get("outcome") or "failed")
            self.gate.notify()
