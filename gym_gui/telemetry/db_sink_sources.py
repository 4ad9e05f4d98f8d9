"""The subscriptions ``TelemetryDBSink`` drains: this project's RunBus, or any bus with queue.Queue-like ones (Qt-free).

``subscribe_source`` makes one subscription and wraps it in a ``SinkSource`` with one interface:
``drain()``, ``wait(timeout_s)``, ``depth()``, ``wake()``, ``close()``.

- On this project's ``RunBus``: ``bus.subscribe(topic, id, maxlen=..., waker=...)`` (which replaces
  a subscription of the same key, as the existing app's bus does), with a ``Waker`` shared by the
  sink's sources; lossless with ``lossless=True``, else bounded to ``writer_queue_size``
  (drop-oldest, ``maxsize`` = ``writer_queue_size``). The sink sleeps on the waker, so it wakes on
  data, not on a poll. ``close()`` unsubscribes (a
  lossless subscription left behind would grow without bound), but only while the bus still holds
  this very subscription, so a newer sink under the same ids keeps its own.
- On any other bus: ``bus.subscribe_with_size(topic, id, writer_queue_size)`` (else
  ``bus.subscribe(topic, id)``), the existing app's ``queue.Queue``; drained with ``get_nowait()``
  until ``queue.Empty``, waited on with ``get(timeout=...)``. ``close()`` leaves it subscribed, as
  the existing app's sink does (a restart's subscription replaces it).

``MultiSource`` puts the sink's sources together as the one ordered source its ``BatchProcessor`` drains.
``drain``/``wait`` run on the sink thread; ``depth``/``wake`` on any thread. None blocks except ``wait``.
"""

from __future__ import annotations

import queue
import time
from typing import Any, Callable

from gym_gui.telemetry.events import Topic
from gym_gui.telemetry.run_bus import RunBus, Waker

__all__ = ["DEPTH_WARNING_FRACTION", "MultiSource", "SinkSource", "subscribe_source"]
#: A subscription at least this full (of ``writer_queue_size``) is logged as a WARNING.
DEPTH_WARNING_FRACTION = 0.8
#: The most events one ``drain`` takes from a queue.Queue-like subscription.
_MAX_QUEUE_DRAIN = 65536


def _is_empty_error(exc: BaseException) -> bool:
    return isinstance(exc, queue.Empty) or type(exc).__name__ == "Empty"


class SinkSource:
    """One subscription of the sink, whatever kind the bus gave."""

    def __init__(self, bus: Any, topic: Any, subscriber_id: str, subscription: Any, waker: Waker | None) -> None:
        self.bus = bus
        self.topic = topic
        self.subscriber_id = subscriber_id
        self.subscription = subscription
        self.key = f"{getattr(topic, 'name', topic)}:{subscriber_id}"
        self._waker = waker
        self._carry: list[Any] = []  # an item ``wait`` took out of a queue.Queue
        self._has_drain = waker is not None and callable(getattr(subscription, "drain", None))

    @property
    def wakes_on_data(self) -> bool:
        """True when ``wait`` returns as soon as any of the sink's sources has data."""
        return self._has_drain

    def drain(self) -> list[Any]:
        """Everything queued now, oldest first. Sink thread; never blocks."""
        if self._has_drain:
            return list(self.subscription.drain())
        items, self._carry = self._carry, []
        get_nowait = self.subscription.get_nowait
        while len(items) < _MAX_QUEUE_DRAIN:
            try:
                items.append(get_nowait())
            except Exception as exc:
                if _is_empty_error(exc):
                    break
                raise
        return items

    def wait(self, timeout_s: float | None, wake_at: int = 1) -> None:
        """Block until data may be there, or ``timeout_s``. Sink thread; blocks."""
        if timeout_s is not None and timeout_s <= 0:
            return
        if self._has_drain:
            assert self._waker is not None
            self._waker.wait(timeout_s)
            return
        if self._carry:
            return
        try:
            self._carry.append(self.subscription.get(True, timeout_s))
        except Exception as exc:
            if not _is_empty_error(exc):
                raise

    def wake(self) -> None:
        """Make a waiting ``wait`` return (to see a stop request). Any thread; never blocks."""
        if self._waker is not None:
            self._waker.notify()

    def depth(self) -> int:
        """Events queued in the subscription now. Any thread; never blocks."""
        sub = self.subscription
        try:
            return len(sub) + len(self._carry) if self._has_drain else int(sub.qsize()) + len(self._carry)
        except Exception:
            return 0

    def close(self) -> None:
        """Unsubscribe from this project's bus while it still holds this subscription. Sink thread."""
        if not isinstance(self.bus, RunBus) or self.subscription.closed:  # closed: replaced by a newer one
            return
        if any(sub is self.subscription for sub in self.bus.subscriptions()):
            self.bus.unsubscribe(self.topic, self.subscriber_id)


def subscribe_source(bus: Any, topic: Topic, subscriber_id: str, writer_queue_size: int,
                     lossless: bool, waker: Waker | None = None) -> SinkSource:
    """Subscribe ``subscriber_id`` to ``topic`` on ``bus`` (see the module doc). Sink thread.

    An existing subscription under the same key is replaced (the existing app's re-subscribe semantics).
    """
    if isinstance(bus, RunBus):
        waker = waker or Waker()
        maxlen = None if lossless or writer_queue_size <= 0 else writer_queue_size
        sub = bus.subscribe(topic, subscriber_id, maxlen=maxlen, waker=waker)
        return SinkSource(bus, topic, subscriber_id, sub, waker)
    subscribe_with_size = getattr(bus, "subscribe_with_size", None)
    if callable(subscribe_with_size):
        sub = subscribe_with_size(topic, subscriber_id, writer_queue_size)
    else:
        sub = bus.subscribe(topic, subscriber_id)
    return SinkSource(bus, topic, subscriber_id, sub, None)


class MultiSource:
    """The sink's subscriptions as one ``batch_processor.Source`` (the BatchProcessor drains it).

    ``drain`` takes RUN_COMPLETED first (so every step and episode published before a completion is
    drained with it), then episodes, then steps, and returns them steps, episodes, completions: so
    steps drained together with an episode reach the store before it, and a completion after both.
    ``wait`` logs the queue depths every ``depth_log_interval_s`` (DEBUG; WARNING when one is at
    least ``DEPTH_WARNING_FRACTION`` of ``capacity``) and polls every ``poll_interval_s`` when the
    bus gives no waker. No flush markers (``put_nowait`` raises TypeError); nothing to count after
    giving up (``give_up`` returns None).
    """

    def __init__(self, steps: SinkSource, episodes: SinkSource, runs: SinkSource | None, *, capacity: int,
                 poll_interval_s: float, depth_log_interval_s: float, log: Callable[..., Any],
                 warn: Callable[..., Any]) -> None:
        self.sources = [s for s in (episodes, steps, runs) if s is not None]
        self.steps, self.episodes, self.runs = steps, episodes, runs
        self.capacity = capacity
        self.poll_interval_s = poll_interval_s
        self.depth_log_interval_s = depth_log_interval_s
        self._debug, self._warn = log, warn
        self._next_depth_log = time.monotonic() + depth_log_interval_s

    def __len__(self) -> int:
        return sum(source.depth() for source in self.sources)

    def depths(self) -> dict[str, int]:
        """Queued per subscription key. Any thread; never blocks."""
        return {source.key: source.depth() for source in self.sources}

    def drain(self) -> list[Any]:
        """Steps, episodes, completions queued now (completions drained first). Sink thread."""
        completions = self.runs.drain() if self.runs is not None else []
        episodes = self.episodes.drain()
        return self.steps.drain() + episodes + completions

    def put_nowait(self, item: Any) -> None:
        raise TypeError("TelemetryDBSink takes no flush markers")

    def wait(self, timeout_s: float | None, wake_at: int = 1) -> None:
        """Log the depths when due, then sleep until data (or a poll, or the next depth log). Sink thread."""
        now = time.monotonic()
        if now >= self._next_depth_log:
            self._log_depths()
            self._next_depth_log = now + self.depth_log_interval_s
        limit = self._next_depth_log - now
        if not self.steps.wakes_on_data:
            limit = min(limit, self.poll_interval_s)
        self.steps.wait(limit if timeout_s is None else min(timeout_s, limit))

    def _log_depths(self) -> None:
        depths = self.depths()
        capacity = self.capacity
        full = [key for key, depth in depths.items() if capacity > 0 and depth >= DEPTH_WARNING_FRACTION * capacity]
        if full:
            self._warn("depth", "TelemetryDBSink: queues %s of %d (>= 80%% full: %s)", depths, capacity, full)
        else:
            self._debug("TelemetryDBSink: queue depths %s (capacity %d)", depths, capacity)

    def wake(self) -> None:
        for source in self.sources:
            source.wake()

    def close(self) -> None:
        """Unsubscribe what this sink still holds (a newer sink's subscriptions are left alone). Sink thread."""
        for source in self.sources:
            source.close()

    def give_up(self) -> None:
        return None
