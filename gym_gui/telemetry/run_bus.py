"""RunBus: non-blocking fan-out of TelemetryEvents to bounded or lossless subscriptions (Qt-free).

Hot path: ``publish`` takes one lock per event, walks a cached route (the subscriptions that match
the event's topic, run and agent) and appends to each subscription's deque. A bounded deque drops
its oldest entry when full; the drop is counted and its seq_id recorded as an exact lost range.
Nothing on the hot path calls consumer code, so a consumer can neither block nor break a publisher.
Control-plane notices (subscribed, unsubscribed, overflow) go through blinker signals.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from types import MappingProxyType
from typing import Any, Callable, Iterable

from blinker import NamedSignal

from gym_gui.telemetry.events import StreamKey, TelemetryEvent, Topic, utc_now_iso
from gym_gui.telemetry.seq_ranges import SeqRangeLog

__all__ = ["DEFAULT_MAXLEN", "OVERFLOW_NOTICE_INTERVAL_S", "RunBus", "Subscription", "Waker", "get_bus"]

_log = logging.getLogger(__name__)

#: Capacity of a live subscription unless the subscriber asks for another.
DEFAULT_MAXLEN = 4096
#: At most one OVERFLOW notice per subscription and stream in this interval.
OVERFLOW_NOTICE_INTERVAL_S = 0.5
#: Route cache entries kept before the cache is rebuilt from scratch.
_MAX_CACHED_ROUTES = 4096

_RouteKey = tuple[Topic, str, "str | None"]
# One route entry per matching subscription: (queue, maxlen, waker, subscription).
_RouteEntry = tuple["deque[TelemetryEvent]", "int | None", "Waker", "Subscription"]


class Waker:
    """Wakes one consumer thread when any of the subscriptions attached to it receives data.

    Publishers pay one attribute read per event while the waker is already pending, so waking is
    cheap on the hot path. Spurious wakeups are possible: after waking, always drain.
    """

    __slots__ = ("pending", "_event")

    def __init__(self) -> None:
        self.pending = False
        self._event = threading.Event()

    def notify(self) -> None:
        """Wake the waiting consumer (also used to make it re-check a stop flag). Any thread; never blocks."""
        self.pending = True
        self._event.set()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until notified since the last wait, or until ``timeout_s``; True if notified.

        Consumer thread only; blocks. Drain every attached subscription after it returns.
        """
        woken = self._event.wait(timeout_s)
        self._event.clear()
        self.pending = False
        return woken


class Subscription:
    """One subscriber's buffer for one topic, optionally filtered to a run and/or agent.

    ``maxlen=None`` is lossless; otherwise the buffer keeps the newest ``maxlen`` events. All
    methods may be called from any thread and never block, except ``wait``.
    """

    __slots__ = (
        "topic", "subscriber_id", "maxlen", "run_id", "agent_id", "key",
        "_bus", "_queue", "_waker", "_dropped", "_delivered", "_drain_epoch",
        "_lost", "_unnoticed", "_closed",
    )

    def __init__(
        self,
        bus: RunBus,
        topic: Topic,
        subscriber_id: str,
        maxlen: int | None,
        run_id: str | None,
        agent_id: str | None,
        waker: Waker,
    ) -> None:
        self.topic = topic
        self.subscriber_id = subscriber_id
        self.maxlen = maxlen
        self.run_id = run_id
        self.agent_id = agent_id
        self.key = f"{topic.name}:{subscriber_id}"
        self._bus = bus
        self._queue: deque[TelemetryEvent] = deque(maxlen=maxlen)
        self._waker = waker
        self._dropped = 0
        self._delivered = 0
        self._drain_epoch = 0
        self._lost = SeqRangeLog()
        # Drops not yet reported by an OVERFLOW notice (notices about OVERFLOW itself would recurse).
        self._unnoticed: SeqRangeLog | None = SeqRangeLog() if topic is not Topic.OVERFLOW else None
        self._closed = False

    def __repr__(self) -> str:
        return f"<Subscription {self.key} maxlen={self.maxlen} queued={len(self._queue)} dropped={self._dropped}>"

    def __len__(self) -> int:
        """Events queued now. Any thread; never blocks."""
        return len(self._queue)

    @property
    def dropped(self) -> int:
        """Events dropped since subscribing (always 0 when lossless). Any thread."""
        return self._dropped

    @property
    def delivered(self) -> int:
        """Events handed out by ``drain`` since subscribing. Any thread."""
        return self._delivered

    @property
    def closed(self) -> bool:
        """True once unsubscribed; queued events can still be drained. Any thread."""
        return self._closed

    def matches(self, run_id: str, agent_id: str | None) -> bool:
        """Whether events of stream ``(run_id, agent_id)`` pass this subscription's filter."""
        return (self.run_id is None or self.run_id == run_id) and (
            self.agent_id is None or self.agent_id == agent_id
        )

    def drain(self, max_items: int | None = None) -> list[TelemetryEvent]:
        """Remove and return up to ``max_items`` queued events, oldest first. Any thread; never blocks."""
        if max_items is not None and max_items < 0:
            raise ValueError(f"max_items must be >= 0 or None, got {max_items}")
        with self._bus._lock:
            queue = self._queue
            if max_items is None or max_items >= len(queue):
                items = list(queue)
                queue.clear()
            else:
                popleft = queue.popleft
                items = [popleft() for _ in range(max_items)]
            if items:
                self._delivered += len(items)
                self._drain_epoch += 1
        return items

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until data is queued or ``timeout_s`` passes; True if data is queued.

        The consumer thread of this subscription only; blocks. Subscriptions sharing a ``Waker``
        should wait on the waker instead.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not self._queue:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            self._waker.wait(remaining)
        return True

    def take_lost_ranges(self) -> dict[StreamKey, list[tuple[int, int]]]:
        """Return and forget the seq_id ranges dropped since the last call, per stream.

        A range ``(a, b)`` means every event of this subscription's topic and stream with
        ``a <= seq_id <= b`` was dropped (inclusive). Any thread; never blocks.
        """
        with self._bus._lock:
            return self._lost.take()

    # -- called by RunBus under its lock -------------------------------------------------------
    def _record_drop(self, evicted: TelemetryEvent) -> None:
        self._dropped += 1
        stream = (evicted.run_id, evicted.agent_id)
        self._lost.add(stream, evicted.seq_id, self._drain_epoch)
        if self._unnoticed is not None:
            self._unnoticed.add(stream, evicted.seq_id, self._drain_epoch)


class RunBus:
    """Process-wide (or test-local) publish/subscribe hub for TelemetryEvents.

    Signals (blinker, control plane only, sent outside the bus lock from the calling thread):
    ``subscribed(bus, subscription=)``, ``unsubscribed(bus, subscription=)``,
    ``overflowed(bus, subscription=, stream=, lost_ranges=)``, and
    ``stream_opened(bus, stream=)`` when a stream's first event is published (sent from the
    publishing thread; a Qt receiver must hand it to its own thread, or poll ``streams()``).
    """

    def __init__(self, *, overflow_notice_interval_s: float = OVERFLOW_NOTICE_INTERVAL_S) -> None:
        self._lock = threading.Lock()  # guards every queue, the route cache and the subscription table
        self._subs: dict[tuple[Topic, str], Subscription] = {}
        self._routes: dict[_RouteKey, tuple[_RouteEntry, ...]] = {}
        self._notice_interval_s = overflow_notice_interval_s
        self._next_notice_at = 0.0
        self._unnoticed_subs: set[Subscription] = set()
        self._notice_lock = threading.Lock()
        self._streams: dict[StreamKey, None] = {}  # insertion-ordered set of every stream published
        self._streams_lock = threading.Lock()
        self.subscribed = NamedSignal("subscribed")
        self.unsubscribed = NamedSignal("unsubscribed")
        self.overflowed = NamedSignal("overflowed")
        self.stream_opened = NamedSignal("stream_opened")
        self.publish = self._make_publish()  # type: ignore[method-assign]

    # -- control plane ---------------------------------------------------------------------------
    def subscribe(
        self,
        topic: Topic,
        subscriber_id: str,
        *,
        maxlen: int | None = DEFAULT_MAXLEN,
        run_id: str | None = None,
        agent_id: str | None = None,
        waker: Waker | None = None,
    ) -> Subscription:
        """Create a subscription; ``maxlen=None`` is lossless. Any thread; never blocks on publishers long.

        Raises ValueError if ``subscriber_id`` is already subscribed to ``topic`` or ``maxlen < 1``.
        Pass a shared ``waker`` to sleep on several subscriptions at once.
        """
        if not isinstance(topic, Topic):
            raise TypeError(f"topic must be a Topic, got {topic!r}")
        if not isinstance(subscriber_id, str) or not subscriber_id:
            raise ValueError(f"subscriber_id must be a non-empty str, got {subscriber_id!r}")
        if maxlen is not None and (not isinstance(maxlen, int) or maxlen < 1):
            raise ValueError(f"maxlen must be a positive int or None (lossless), got {maxlen!r}")
        sub = Subscription(self, topic, subscriber_id, maxlen, run_id, agent_id, waker or Waker())
        with self._lock:
            if (topic, subscriber_id) in self._subs:
                raise ValueError(f"{sub.key} is already subscribed")
            self._subs[(topic, subscriber_id)] = sub
            self._routes.clear()
        self._send_control(self.subscribed, subscription=sub)
        return sub

    def subscribe_all(
        self,
        topics: Iterable[Topic],
        subscriber_id: str,
        *,
        maxlen: int | None = DEFAULT_MAXLEN,
        run_id: str | None = None,
        agent_id: str | None = None,
        waker: Waker | None = None,
    ) -> dict[Topic, Subscription]:
        """``subscribe`` to each of ``topics`` with the same options, all or nothing. Any thread.

        If one subscription fails (ValueError), those already made are undone and the error raised.
        """
        subs: dict[Topic, Subscription] = {}
        try:
            for topic in topics:
                subs[topic] = self.subscribe(topic, subscriber_id, maxlen=maxlen, run_id=run_id,
                                             agent_id=agent_id, waker=waker)
        except BaseException:
            for topic in subs:
                self.unsubscribe(topic, subscriber_id)
            raise
        return subs

    def unsubscribe(self, topic: Topic, subscriber_id: str) -> None:
        """Stop delivering to ``(topic, subscriber_id)``; idempotent. Any thread; never blocks long.

        Once it returns no further event is queued for that subscription; what is queued can
        still be drained from the Subscription object.
        """
        with self._lock:
            sub = self._subs.pop((topic, subscriber_id), None)
            if sub is None:
                return
            sub._closed = True
            self._routes.clear()
        with self._notice_lock:
            self._unnoticed_subs.discard(sub)
        self._send_control(self.unsubscribed, subscription=sub)

    def subscriptions(self) -> list[Subscription]:
        """Snapshot of the live subscriptions (for stats views). Any thread; never blocks long."""
        with self._lock:
            return list(self._subs.values())

    def streams(self) -> list[StreamKey]:
        """Every stream ``(run_id, agent_id)`` published so far, in order of first event. Any thread."""
        with self._streams_lock:
            return list(self._streams)

    def _note_stream(self, stream: StreamKey) -> None:
        """Record a stream seen on a route-cache miss; announce it the first time. Publisher's thread."""
        with self._streams_lock:
            if stream in self._streams:
                return
            self._streams[stream] = None
        self._send_control(self.stream_opened, stream=stream)

    def overflow_stats(self) -> dict[str, int]:
        """Dropped count per subscription, keyed ``"TOPIC:subscriber_id"``. Any thread."""
        return {sub.key: sub.dropped for sub in self.subscriptions()}

    def queue_sizes(self) -> dict[str, int]:
        """Queued count per subscription, keyed ``"TOPIC:subscriber_id"``. Any thread."""
        return {sub.key: len(sub) for sub in self.subscriptions()}

    # -- hot path --------------------------------------------------------------------------------
    def publish(self, evt: TelemetryEvent) -> None:
        """Queue ``evt`` for every matching subscription. Any thread; never blocks on a consumer.

        Raises TypeError only when ``evt`` is not a TelemetryEvent (a producer bug). The body is
        built once per bus by ``_make_publish`` (locals instead of attribute look-ups keep the hot
        path cheap); this method is replaced by it in ``__init__``.
        """
        raise AssertionError("replaced per instance by _make_publish")  # pragma: no cover

    def _make_publish(self) -> Callable[[TelemetryEvent], None]:
        lock = self._lock
        routes = self._routes
        build_route = self._build_route
        note_overflow = self._note_overflow
        unnoticed_subs = self._unnoticed_subs
        flush_notices = self.flush_overflow_notices
        note_stream = self._note_stream
        overflow_topic = Topic.OVERFLOW
        event_type = TelemetryEvent

        def publish(evt: TelemetryEvent) -> None:
            if type(evt) is not event_type:
                raise TypeError(f"publish() takes a TelemetryEvent, got {type(evt).__name__}")
            key = (evt.topic, evt.run_id, evt.agent_id)
            dropped = missed = False
            lock.acquire()
            try:
                route = routes.get(key)
                if route is None:
                    route = build_route(key)
                    missed = True
                for queue, maxlen, waker, sub in route:
                    if len(queue) == maxlen:
                        sub._record_drop(queue[0])
                        dropped = True
                    queue.append(evt)
                    if not waker.pending:
                        waker.notify()
            finally:
                lock.release()
            if missed and evt.topic is not overflow_topic:  # a new route may be a new stream (rare)
                note_stream((evt.run_id, evt.agent_id))
            if dropped:
                note_overflow(route)
            if unnoticed_subs:
                flush_notices()

        publish.__doc__ = RunBus.publish.__doc__
        return publish

    def _build_route(self, key: _RouteKey) -> tuple[_RouteEntry, ...]:
        """Matching subscriptions for ``key``; caller holds ``_lock``."""
        topic, run_id, agent_id = key
        route = tuple(
            (sub._queue, sub.maxlen, sub._waker, sub)
            for (sub_topic, _), sub in self._subs.items()
            if sub_topic is topic and sub.matches(run_id, agent_id)
        )
        if len(self._routes) >= _MAX_CACHED_ROUTES:
            self._routes.clear()
        self._routes[key] = route
        return route

    # -- overflow notices ------------------------------------------------------------------------
    def _note_overflow(self, route: tuple[_RouteEntry, ...]) -> None:
        with self._notice_lock:
            for _queue, _maxlen, _waker, sub in route:
                if sub._unnoticed:
                    self._unnoticed_subs.add(sub)

    def flush_overflow_notices(self, *, force: bool = False) -> int:
        """Publish pending OVERFLOW notices if the rate limit allows (or ``force``); returns how many.

        Publishing calls this itself; a periodic caller (e.g. a UI timer) makes sure the last
        drops of a burst are reported even when nothing more is published. Any thread; never blocks long.
        """
        now = time.monotonic()
        with self._notice_lock:
            if not self._unnoticed_subs or (not force and now < self._next_notice_at):
                return 0
            self._next_notice_at = now + self._notice_interval_s
            subs = list(self._unnoticed_subs)
            self._unnoticed_subs.clear()
        notices: list[tuple[Subscription, StreamKey, list[tuple[int, int]], int]] = []
        with self._lock:
            for sub in subs:
                assert sub._unnoticed is not None
                for stream, ranges in sub._unnoticed.take().items():
                    notices.append((sub, stream, ranges, sub._dropped))
        ts_iso = utc_now_iso()
        for sub, (run_id, agent_id), ranges, dropped_total in notices:
            payload: dict[str, Any] = {
                "subscription": sub.key,
                "topic": sub.topic.name,
                "subscriber_id": sub.subscriber_id,
                "lost_ranges": [list(r) for r in ranges],
                "lost_count_upper_bound": sum(b - a + 1 for a, b in ranges),
                "dropped_total": dropped_total,
            }
            notice = TelemetryEvent(
                topic=Topic.OVERFLOW,
                run_id=run_id,
                agent_id=agent_id,
                seq_id=ranges[-1][1],
                ts_iso=ts_iso,
                payload=MappingProxyType(payload),
            )
            _log.warning(
                "subscription %s dropped events of stream %s/%s, seq ranges %s (total dropped %d)",
                sub.key, run_id, agent_id, ranges, dropped_total,
            )
            self.publish(notice)
            self._send_control(self.overflowed, subscription=sub, stream=(run_id, agent_id), lost_ranges=ranges)
        return len(notices)

    def _send_control(self, signal: NamedSignal, **kwargs: Any) -> None:
        """Send a control-plane blinker signal; a failing receiver is logged, never raised."""
        if not signal.receivers:
            return
        try:
            signal.send(self, **kwargs)
        except Exception:  # a receiver's bug must not break the bus
            _log.exception("RunBus %s receiver failed", signal.name)


_default_bus: RunBus | None = None
_default_bus_lock = threading.Lock()


def get_bus() -> RunBus:
    """The process-wide RunBus, created on first use. Any thread."""
    global _default_bus
    bus = _default_bus
    if bus is None:
        with _default_bus_lock:
            if _default_bus is None:
                _default_bus = RunBus()
            bus = _default_bus
    return bus


def _reset_default_bus_for_tests(factory: Callable[[], RunBus] | None = None) -> RunBus:
    """Replace the process-wide bus (tests only). Returns the new bus."""
    global _default_bus
    with _default_bus_lock:
        _default_bus = (factory or RunBus)()
        return _default_bus
