"""RunBus: non-blocking fan-out of TelemetryEvents to bounded or lossless subscriptions (Qt-free).

Hot path: ``publish`` takes one lock per event, walks a cached route (the subscriptions that match
the event's topic, run and agent) and appends to each subscription's deque. A bounded deque drops
its oldest entry when full; the drop is counted and its seq_id recorded as an exact lost range.
The same route holds the stream's last seq_id, so the sequence-gap check costs a compare.
Nothing on the hot path calls consumer code, so a consumer can neither block nor break a publisher.
Control-plane notices (subscribed, unsubscribed, overflow) go through blinker signals. Beside it:
``overflow_notices.py`` (OVERFLOW notices), ``bus_stats.py`` (stats), ``default_bus.py`` (``get_bus``).

One subscription may take several topics (``subscribe_topics``): it sits in the route of each, and
since every append happens under the one bus lock its deque holds them in global publish order.

It also serves the existing gym_gui callers (EMBEDDING.md section 2): ``RunBus(max_queue)``,
``subscribe``/``subscribe_with_size`` returning a ``queue.Queue`` (our ``Subscription``),
re-subscribing replaces, ``overflow_stats`` / ``reset_overflow_stats`` / ``queue_sizes`` /
``sequence_stats``, the ``Sequence gap detected in RunBus`` warning, ``get_bus`` / ``reset_bus``.

About 410 lines: the publish closure and the route cache it reads must sit beside the subscribe /
unsubscribe code that invalidates it; stats, notices, the default bus and the waker are split out.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any, Iterable

from blinker import NamedSignal

from gym_gui.telemetry.bus_publish import make_publishers
from gym_gui.telemetry.bus_stats import BusStats
from gym_gui.telemetry.events import StreamKey, TelemetryEvent, Topic
from gym_gui.telemetry.overflow_notices import OVERFLOW_NOTICE_INTERVAL_S, OverflowNotices
from gym_gui.telemetry.seq_ranges import SeqGapWarner
from gym_gui.telemetry.subscription import Subscription, Waker

__all__ = [
    "BUS_DEFAULT", "DEFAULT_MAXLEN", "DEFAULT_MAX_QUEUE", "GAP_WARNING_INTERVAL_S", "OVERFLOW_NOTICE_INTERVAL_S",
    "RunBus", "Subscription", "Waker", "get_bus", "reset_bus",
]

_log = logging.getLogger(__name__)

#: Capacity of a subscription unless the bus (``RunBus(max_queue=)``) or the subscriber asks for another.
DEFAULT_MAX_QUEUE = 2048
DEFAULT_MAXLEN = DEFAULT_MAX_QUEUE  # the earlier name
#: At most one sequence-gap warning per stream in this interval (0: one per gap).
GAP_WARNING_INTERVAL_S = 1.0
#: Route cache entries kept before the cache is rebuilt from scratch.
_MAX_CACHED_ROUTES = 4096
#: The message of the sequence-gap warning, exactly as the existing callers know it.
GAP_MESSAGE = "Sequence gap detected in RunBus"

_RouteKey = tuple[Topic, str, "str | None"]
# One route entry per matching subscription: (queue, maxlen, waker, subscription).
_RouteEntry = tuple[deque[TelemetryEvent], "int | None", Waker, Subscription]
# A route: its entries and the stream's gap-tracker cell ([last seq_id], shared across topics).
_Route = tuple[tuple[_RouteEntry, ...], list[float]]


class _BusDefault:
    """The type of ``BUS_DEFAULT``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "BUS_DEFAULT"


#: ``subscribe(maxlen=BUS_DEFAULT)``: the bus's ``max_queue``.
BUS_DEFAULT = _BusDefault()


class _UntrackedCell(list):  # type: ignore[type-arg]
    """The gap cell of OVERFLOW routes: always "never seen", so the bus's own notices (whose seq_id
    is a lost range's end) neither warn nor move a stream's last seq_id."""

    def __setitem__(self, index: Any, value: Any) -> None:
        pass


def _checked_topics(topics: Iterable[Topic]) -> tuple[Topic, ...]:
    """``topics`` as a tuple; TypeError for a non-Topic, ValueError when empty or repeated."""
    checked = (topics,) if isinstance(topics, Topic) else tuple(topics)
    for topic in checked:
        if not isinstance(topic, Topic):
            raise TypeError(f"topic must be a Topic, got {topic!r}")
    if not checked:
        raise ValueError("subscribe_topics needs at least one topic")
    if len(set(checked)) != len(checked):
        raise ValueError(f"topics repeat: {[t.name for t in checked]}")
    return checked


class RunBus(BusStats):
    """Process-wide (or test-local) publish/subscribe hub for TelemetryEvents.

    ``max_queue`` is the capacity ``subscribe`` gives when the subscriber names none (``<= 0``:
    unbounded). Signals (blinker, control plane only, sent outside the bus lock from the calling
    thread): ``subscribed(bus, subscription=)``, ``unsubscribed(bus, subscription=)`` (also for a
    subscription replaced by a re-subscribe), ``overflowed(bus, subscription=, stream=,
    lost_ranges=)``, and ``stream_opened(bus, stream=)`` when a stream's first event is published
    (sent from the publishing thread; a Qt receiver must hand it to its own thread, or poll
    ``streams()``). Construct from any thread; logs one INFO line.
    """

    def __init__(
        self,
        max_queue: int = DEFAULT_MAX_QUEUE,
        *,
        overflow_notice_interval_s: float = OVERFLOW_NOTICE_INTERVAL_S,
        gap_warning_interval_s: float = GAP_WARNING_INTERVAL_S,
    ) -> None:
        if type(max_queue) is not int:
            raise TypeError(f"max_queue must be an int, got {max_queue!r}")
        self.max_queue = max_queue
        self._lock = threading.Lock()  # guards every queue, the route cache, the gap cells and the table
        self._subs: dict[tuple[Topic, str], Subscription] = {}
        self._routes: dict[_RouteKey, _Route] = {}
        self._seq_cells: dict[tuple[str, str], list[float]] = {}  # (run_id, agent or "default") -> [last]
        self._retired_drops: dict[str, int] = {}  # drops of unsubscribed / replaced subscriptions, per key
        self._notices = OverflowNotices(self, overflow_notice_interval_s)
        self._streams: dict[StreamKey, None] = {}  # insertion-ordered set of every stream published
        self._streams_lock = threading.Lock()
        self._gaps = SeqGapWarner(_log, GAP_MESSAGE, gap_warning_interval_s)
        self.subscribed = NamedSignal("subscribed")
        self.unsubscribed = NamedSignal("unsubscribed")
        self.overflowed = NamedSignal("overflowed")
        self.stream_opened = NamedSignal("stream_opened")
        self.publish, self.publish_run = make_publishers(self)  # type: ignore[method-assign, assignment]
        _log.info("RunBus created (max_queue=%d, %s)", max_queue,
                  "unbounded by default" if max_queue <= 0 else "drop-oldest when full")

    # -- control plane ---------------------------------------------------------------------------
    def subscribe(
        self,
        topic: Topic,
        subscriber_id: str,
        *,
        maxlen: int | None | _BusDefault = BUS_DEFAULT,
        run_id: str | None = None,
        agent_id: str | None = None,
        waker: Waker | None = None,
        replace: bool = True,
    ) -> Subscription:
        """Create a subscription (a ``queue.Queue``); ``maxlen=None`` is lossless, the default is the
        bus's ``max_queue``. Any thread; never blocks on publishers long.

        Subscribing an existing ``(topic, subscriber_id)`` replaces it: the old subscription is
        closed, keeps what it holds and receives nothing more; the key's overflow count is kept.
        With ``replace=False`` that raises ValueError instead. Raises ValueError if ``maxlen < 1``.
        Pass a shared ``waker`` to sleep on several subscriptions at once.
        """
        return self.subscribe_topics((topic,), subscriber_id, maxlen=maxlen, run_id=run_id, agent_id=agent_id,
                                     waker=waker, replace=replace)

    def subscribe_topics(
        self,
        topics: Iterable[Topic],
        subscriber_id: str,
        *,
        maxlen: int | None | _BusDefault = BUS_DEFAULT,
        run_id: str | None = None,
        agent_id: str | None = None,
        waker: Waker | None = None,
        replace: bool = True,
    ) -> Subscription:
        """One subscription (one deque, a ``queue.Queue``) receiving every one of ``topics``, in
        publish order. Any thread; never blocks on publishers long.

        A stream's events come out in seq_id order across the topics; lost ranges are per stream
        and the accounting holds per topic (``Subscription.dropped_by_topic`` etc.). It occupies
        the keys ``(t, subscriber_id)`` of every ``t``: subscribing any of them again (here or
        with ``subscribe``) replaces, i.e. retires, the whole subscription, and so does
        ``unsubscribe`` of any of them. With ``replace=False`` a taken key raises ValueError and
        nothing changes. Raises TypeError for a non-Topic, ValueError for no topic, a repeated
        topic, ``maxlen < 1`` or an empty subscriber_id; ``maxlen`` as in ``subscribe``.
        """
        if maxlen is BUS_DEFAULT:
            maxlen, maxsize = (self.max_queue if self.max_queue > 0 else None), self.max_queue
        elif maxlen is not None and (type(maxlen) is not int or maxlen < 1):
            raise ValueError(f"maxlen must be a positive int or None (lossless), got {maxlen!r}")
        else:
            maxsize = maxlen or 0
        return self._add(topics, subscriber_id, maxlen, maxsize, run_id, agent_id, waker, replace)  # type: ignore[arg-type]

    def subscribe_with_size(self, topic: Topic, subscriber_id: str, max_queue: int) -> Subscription:
        """``subscribe`` with capacity ``max_queue`` (``<= 0``: unbounded, lossless); ``maxsize`` is
        ``max_queue``. Replaces an existing subscription of that key. Any thread; never blocks long.
        """
        if type(max_queue) is not int:
            raise TypeError(f"max_queue must be an int, got {max_queue!r}")
        return self._add((topic,), subscriber_id, max_queue if max_queue > 0 else None, max_queue,
                         None, None, None, True)

    def _add(self, topics: Iterable[Topic], subscriber_id: str, maxlen: int | None, maxsize: int,
             run_id: str | None, agent_id: str | None, waker: Waker | None, replace: bool) -> Subscription:
        topics = _checked_topics(topics)
        if not isinstance(subscriber_id, str) or not subscriber_id:
            raise ValueError(f"subscriber_id must be a non-empty str, got {subscriber_id!r}")
        sub = Subscription(self._lock, topics, subscriber_id, maxlen, run_id, agent_id, waker or Waker(), maxsize)
        with self._lock:
            olds = list(dict.fromkeys(
                old for old in (self._subs.get((t, subscriber_id)) for t in topics) if old is not None))
            if olds and not replace:
                taken = next(f"{t.name}:{subscriber_id}" for t in topics if (t, subscriber_id) in self._subs)
                raise ValueError(f"{taken} is already subscribed")
            for old in olds:
                self._retire(old)
            for t in topics:
                self._subs[(t, subscriber_id)] = sub
            self._routes.clear()
        for old in olds:
            self._notices.forget(old)
            self._send_control(self.unsubscribed, subscription=old)
        self._send_control(self.subscribed, subscription=sub)
        return sub

    def subscribe_all(
        self,
        topics: Iterable[Topic],
        subscriber_id: str,
        *,
        maxlen: int | None | _BusDefault = BUS_DEFAULT,
        run_id: str | None = None,
        agent_id: str | None = None,
        waker: Waker | None = None,
        replace: bool = True,
    ) -> dict[Topic, Subscription]:
        """``subscribe`` to each of ``topics`` with the same options, all or nothing. Any thread.

        The arguments are checked before anything is subscribed; with ``replace=False``, if one key
        is taken (ValueError), those already made are undone and the error raised.
        """
        topics = list(topics)
        for topic in topics:
            if not isinstance(topic, Topic):
                raise TypeError(f"topic must be a Topic, got {topic!r}")
        subs: dict[Topic, Subscription] = {}
        try:
            for topic in topics:
                subs[topic] = self.subscribe(topic, subscriber_id, maxlen=maxlen, run_id=run_id,
                                             agent_id=agent_id, waker=waker, replace=replace)
        except BaseException:
            for topic in subs:
                self.unsubscribe(topic, subscriber_id)
            raise
        return subs

    def unsubscribe(self, topic: Topic, subscriber_id: str) -> None:
        """Stop delivering to ``(topic, subscriber_id)``; idempotent. Any thread; never blocks long.

        Once it returns no further event is queued for that subscription (all its topics, if it
        took several); what is queued can still be taken from the Subscription object. The key's
        overflow count is kept.
        """
        self.unsubscribe_topics((topic,), subscriber_id)

    def unsubscribe_topics(self, topics: Iterable[Topic], subscriber_id: str) -> None:
        """Retire every subscription holding one of the keys ``(t, subscriber_id)``, in one lock hold;
        idempotent. Once it returns nothing more is queued for them; what is queued can still be
        drained. Any thread; never blocks long."""
        with self._lock:
            olds = list(dict.fromkeys(
                old for old in (self._subs.get((t, subscriber_id)) for t in topics) if old is not None))
            if not olds:
                return
            for old in olds:
                self._retire(old)
            self._routes.clear()
        for old in olds:
            self._notices.forget(old)
            self._send_control(self.unsubscribed, subscription=old)

    def _retire(self, sub: Subscription) -> None:
        """Close ``sub``, free its keys and keep its drop counts per key; caller holds ``_lock``."""
        sub._closed = True
        for topic in sub.topics:
            if self._subs.get((topic, sub.subscriber_id)) is sub:
                del self._subs[(topic, sub.subscriber_id)]
        for key, drops in sub._drops_by_key().items():
            drops -= sub._stats_base.get(key, 0)
            if drops:
                self._retired_drops[key] = self._retired_drops.get(key, 0) + drops

    def subscriptions(self) -> list[Subscription]:
        """Snapshot of the live subscriptions (for stats views). Any thread; never blocks long."""
        with self._lock:
            return list(dict.fromkeys(self._subs.values()))

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

    # -- hot path --------------------------------------------------------------------------------
    def publish(self, evt: TelemetryEvent) -> None:
        """Queue ``evt`` for every matching subscription. Any thread; never blocks on a consumer.

        Also tracks the last seq_id per ``(run_id, agent_id or "default")``, every topic together
        except OVERFLOW, with or without subscribers, and warns (rate-limited) when one jumps
        forward. Raises TypeError only when ``evt`` is not a TelemetryEvent (a producer bug). The
        body is built once per bus by ``bus_publish.make_publishers`` (locals instead of attribute look-ups keep
        the hot path cheap); this method is replaced by it in ``__init__``.
        """
        raise AssertionError("replaced per instance by make_publishers")  # pragma: no cover

    def publish_run(self, evts: list[TelemetryEvent]) -> None:
        """``publish`` of each of ``evts`` in turn, under one lock hold: one stream's events of one
        topic, seq_id strictly increasing (the caller's guarantee; the proxy's reader publishes a
        frame's consecutive steps this way). A lossless subscription takes them with one
        ``deque.extend``, a bounded one event by event (drops counted as ``publish`` counts them);
        gaps are warned about as ``publish`` warns. Any thread; never blocks on a consumer. Raises
        TypeError, publishing nothing, when an item is not a TelemetryEvent. Replaced per instance
        like ``publish``.
        """
        raise AssertionError("replaced per instance by make_publishers")  # pragma: no cover

    def _build_route(self, key: _RouteKey) -> _Route:
        """Matching subscriptions and the gap cell for ``key``; caller holds ``_lock``."""
        topic, run_id, agent_id = key
        entries = tuple(
            (sub._queue, sub.maxlen, sub._waker, sub)
            for (sub_topic, _), sub in self._subs.items()
            if sub_topic is topic and sub.matches(run_id, agent_id)
        )
        if topic is Topic.OVERFLOW:
            cell: list[float] = _UntrackedCell([float("inf")])
        else:
            cell = self._seq_cells.setdefault((run_id, agent_id or "default"), [float("inf")])
        if len(self._routes) >= _MAX_CACHED_ROUTES:
            self._routes.clear()
        route = (entries, cell)
        self._routes[key] = route
        return route

    # -- overflow notices ------------------------------------------------------------------------
    def flush_overflow_notices(self, *, force: bool = False) -> int:
        """Publish pending OVERFLOW notices if the rate limit allows (or ``force``); returns how many.

        Publishing calls this itself; a periodic caller (e.g. a UI timer) makes sure the last
        drops of a burst are reported even when nothing more is published. Any thread; never blocks long.
        """
        return self._notices.flush(force=force)

    def _send_control(self, signal: NamedSignal, **kwargs: Any) -> None:
        """Send a control-plane blinker signal; a failing receiver is logged, never raised."""
        if not signal.receivers:
            return
        try:
            signal.send(self, **kwargs)
        except Exception:  # a receiver's bug must not break the bus
            _log.exception("RunBus %s receiver failed", signal.name)


# The process-wide bus lives in default_bus.py; its names stay importable from here.
from gym_gui.telemetry import default_bus as _default_bus_module  # noqa: E402

get_bus = _default_bus_module.get_bus
reset_bus = _default_bus_module.reset_bus
_reset_default_bus_for_tests = _default_bus_module._reset_default_bus_for_tests


def __getattr__(name: str) -> Any:
    """``run_bus._default_bus``: the process-wide bus or None (read through to default_bus)."""
    if name == "_default_bus":
        return _default_bus_module._default_bus
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
