"""What a BatchProcessor drains (Qt-free): the ``Source`` it reads, ``BusSource`` (one stream-ordered
lossless subscription of a RunBus), and ``Held``: what the processor has drained but not exported
yet, with the in-band flush markers among it.

A flush puts a ``Marker`` into the source behind everything published before it; once the marker
is at the front of what is held, everything before it has been exported, and the marker is
released (its ``done`` event set).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Iterable, Protocol

from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.telemetry.waker import CountWaker

__all__ = ["BusSource", "Held", "Marker", "Source"]

_COMPLETED = Topic.RUN_COMPLETED
#: Held items are compacted once this many at the front have been taken.
_COMPACT_AFTER = 65536


class Source(Protocol):
    """What a processor drains: one ordered queue (a stream-ordered subscription, or an adapter)."""

    def drain(self) -> list[Any]:
        """Everything queued now, oldest first. Processor thread; never blocks."""

    def __len__(self) -> int:
        """Items queued now. Any thread; never blocks."""

    def put_nowait(self, item: Any) -> None:
        """Queue ``item`` behind everything queued (a flush marker). Any thread; never blocks."""

    def wait(self, timeout_s: float | None, wake_at: int = 1) -> None:
        """Sleep until data may be there, ``wake`` or ``timeout_s``. ``wake_at``: the processor needs
        that many queued items before the time is up (a hint; a source may wake sooner). Processor
        thread; blocks."""

    def wake(self) -> None:
        """Make ``wait`` return now. Any thread; never blocks."""

    def close(self) -> None:
        """Nothing more arrives after this returns (unsubscribe); queued items can still be drained."""

    def give_up(self) -> Any:
        """Replace the source by one that only counts arrivals (``dropped + len``), or None. Processor thread."""


class BusSource:
    """A stream-ordered lossless subscription of ``bus`` to ``topics`` (``bus.subscribe_topics``)."""

    def __init__(self, bus: RunBus, topics: Iterable[Topic], subscriber_id: str) -> None:
        """Subscribe now. Any thread; never blocks."""
        self.bus = bus
        self.topics = tuple(topics)
        self.subscriber_id = subscriber_id
        self.waker = CountWaker()
        self.subscription = bus.subscribe_topics(self.topics, subscriber_id, maxlen=None, waker=self.waker)
        self.waker.count_with(self.subscription.__len__)
        self.drain = self.subscription.drain

    def __len__(self) -> int:
        return len(self.subscription)

    def put_nowait(self, item: Any) -> None:
        self.subscription.put_nowait(item)
        self.waker.wake()  # a flush marker is due at once, however little is queued

    def wait(self, timeout_s: float | None, wake_at: int = 1) -> None:
        self.waker.wait_for(wake_at, timeout_s)

    def wake(self) -> None:
        self.waker.wake()

    def close(self) -> None:
        self.bus.unsubscribe_topics(self.topics, self.subscriber_id)

    def give_up(self) -> Any:
        # replacing retires the old subscription atomically: each event is in exactly one of them
        return self.bus.subscribe_topics(self.topics, self.subscriber_id, maxlen=1)


class Marker:
    """A flush marker: put into the source, done once everything before it is exported."""

    __slots__ = ("done", "ok")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.ok = False


class Held:
    """Drained items in order (events and markers), and the markers not yet released.

    A batch that takes a RUN_COMPLETED also takes every held event of that run (of each of its
    streams, in order, beyond ``n`` if need be), so a run is complete when its completion commits:
    each stream's part stays a prefix of what it published, since what is held is.
    The processor's thread adds and takes; ``events``, ``queued_markers()`` may be read anywhere.
    """

    def __init__(self) -> None:
        self.completions = 0  # RUN_COMPLETED events held
        self._items: list[Any] = []
        self._off = 0
        self.events = 0
        self.markers = 0
        self.since = 0.0  # when the oldest held event was drained (monotonic s)
        self._lock = threading.Lock()
        self._open: set[Marker] = set()
        self._put = 0
        self._drained = 0

    def put_marker(self, source: Source) -> Marker:
        """A new marker, queued into ``source``. Any thread; never blocks."""
        marker = Marker()
        with self._lock:
            self._open.add(marker)
            self._put += 1
            source.put_nowait(marker)
        return marker

    def queued_markers(self) -> int:
        """Markers put into the source and not drained yet. Any thread."""
        return self._put - self._drained

    def add(self, items: list[Any]) -> None:
        """Hold what one drain returned (markers counted)."""
        if not items:
            return
        markers = 0
        if self._put != self._drained:  # read after the drain: a marker put before it is seen
            markers = sum(1 for item in items if type(item) is Marker)
            self._drained += markers
            self.markers += markers
        if not self.events:
            self.since = time.monotonic()
        completed = _COMPLETED
        self.completions += sum(1 for item in items if getattr(item, "topic", None) is completed)
        self._items += items
        self.events += len(items) - markers

    def take(self, n: int) -> list[TelemetryEvent]:
        """Remove up to ``n`` events from the front; markers found at the front are released first."""
        items, off = self._items, self._off
        if self.markers:
            while off < len(items) and type(items[off]) is Marker:
                self.markers -= 1
                self.release(items[off], ok=True)
                off += 1
            end, stop = off, min(len(items), off + n)
            while end < stop and type(items[end]) is not Marker:
                end += 1
        else:
            end = min(len(items), off + n)
        batch = items[off:end]
        self.events -= len(batch)
        if self.completions:
            batch = self._with_whole_runs(batch, end)
            if batch and self._items is not items:
                return batch
        if end >= len(items):
            self._items, self._off = [], 0
        elif end > _COMPACT_AFTER and end * 2 > len(items):
            self._items, self._off = items[end:], 0
        else:
            self._off = end
        return batch

    def _with_whole_runs(self, batch: list[Any], end: int) -> list[Any]:
        """``batch`` plus every held event (after ``end``) of each run it completes."""
        completed = _COMPLETED
        runs = {evt.run_id for evt in batch if getattr(evt, "topic", None) is completed}
        if not runs:
            return batch
        self.completions -= sum(1 for evt in batch if getattr(evt, "topic", None) is completed)
        rest: list[Any] = []
        for item in self._items[end:]:
            if type(item) is not Marker and getattr(item, "run_id", None) in runs:
                batch.append(item)
                self.events -= 1
                if getattr(item, "topic", None) is completed:
                    self.completions -= 1
            else:
                rest.append(item)
        self._items, self._off = rest, 0
        return batch

    def clear(self) -> None:
        """Forget every held item (the processor gave up); markers stay open until ``release_all``."""
        self._items, self._off, self.events, self.markers, self.completions = [], 0, 0, 0, 0

    def release(self, marker: Marker, *, ok: bool) -> None:
        """Mark ``marker`` done. Any thread."""
        with self._lock:
            self._open.discard(marker)
        marker.ok = ok
        marker.done.set()

    def release_all(self, *, ok: bool) -> None:
        """Mark every open marker done (the processor ended). Any thread."""
        with self._lock:
            markers, self._open = self._open, set()
        for marker in markers:
            marker.ok = ok
            marker.done.set()
