"""One subscriber's buffer on the RunBus: our deque design, usable as a ``queue.Queue`` (Qt-free).

A ``Subscription`` is a real ``queue.Queue`` subclass whose deque (``queue``) is the one
``RunBus.publish`` appends to, under the bus lock (which is also the queue's ``mutex``). So the
existing gym_gui consumers' ``get_nowait()`` / ``get(timeout=)`` / ``qsize()`` loops and our
``drain()`` / ``take_lost_ranges()`` read the same buffer with the same accounting: drop-oldest,
exact lost ranges and ``delivered + dropped + queued == matching events published + put_count``
hold whichever way a consumer takes events out, in total and per topic. A blocking ``get`` sleeps
on the subscription's ``Waker``, which ``publish`` sets; nothing polls.

One subscription may take several topics (``RunBus.subscribe_topics``): they share the one deque,
which the bus appends to under its one lock, so the deque order is the global publish order and a
stream's events (seq_ids are per stream across topics) come out in seq_id order. An item ``put``
by hand goes behind everything published before it, under the same lock: an in-band marker (see
``put``).
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter, deque
from typing import Any, Iterable

from gym_gui.telemetry.events import StreamKey, TelemetryEvent, Topic
from gym_gui.telemetry.seq_ranges import SeqRangeLog
from gym_gui.telemetry.topic_accounting import TopicAccounting
from gym_gui.telemetry.waker import Waker

__all__ = ["Subscription", "Waker"]


def _remaining_s(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.monotonic()


class Subscription(TopicAccounting, queue.Queue):  # type: ignore[type-arg]
    """One subscriber's buffer for one or several topics, optionally filtered to a run and/or agent.

    ``maxlen=None`` is lossless; otherwise the buffer keeps the newest ``maxlen`` events (the
    oldest is dropped, counted and its seq_id recorded as lost). ``maxsize`` is the ``queue.Queue``
    view of the same capacity (0, or the ``max_queue <= 0`` asked for, means unbounded).
    ``topics`` are the topics it takes, in the order subscribed; ``topic`` is ``topics[0]``;
    ``keys`` are its ``"TOPIC:subscriber_id"`` keys and ``key`` names it (``"A+B:id"`` when it
    takes several topics, exactly ``"TOPIC:subscriber_id"`` when one).

    Two ways to consume, freely mixed: ``drain()`` (a batch, oldest first) or the ``queue.Queue``
    methods (``get``, ``get_nowait``, ``qsize``, ``empty``, ``full``, ``task_done``/``join``).
    Items put by hand (``put``/``put_nowait``) queue behind the published events and come out as
    they went in; ``put_count`` counts them. A subscription is always truthy, also when empty
    (like a ``queue.Queue``, so ``if q:`` means "have a queue"); ``len()`` is the queued count.

    Per topic, ``delivered_by_topic()[t] + dropped_by_topic()[t] + queued_by_topic()[t]`` equals
    the events of ``t`` published to it while subscribed (plus TelemetryEvents of ``t`` put by
    hand); other items put by hand (markers) count in ``put_count``, ``delivered`` and
    ``dropped`` only.

    All methods may be called from any thread and never block, except ``wait``, ``join`` and
    ``get``/``put`` with ``block=True``.
    """

    __slots__ = (
        "topic", "topics", "subscriber_id", "maxlen", "run_id", "agent_id", "key", "keys",
        "_lock", "_queue", "_waker", "_dropped", "_delivered", "_drain_epoch",
        "_lost", "_unnoticed", "_unnoticed_topics", "_closed", "_stats_base", "_put_count", "_tasks_done",
        "_getters", "_putters", "_solo_topic", "_dropped_items", "_dropped_other", "_tally", "_delivered_by_topic",
    )

    def __init__(
        self,
        lock: threading.Lock,
        topic: Topic | Iterable[Topic],
        subscriber_id: str,
        maxlen: int | None,
        run_id: str | None,
        agent_id: str | None,
        waker: Waker,
        maxsize: int | None = None,
    ) -> None:
        # queue.Queue.__init__ is not called: the mutex is the bus lock and the deque is ours.
        topics = (topic,) if isinstance(topic, Topic) else tuple(topic)
        if not topics:
            raise ValueError("a subscription needs at least one topic")
        self.topics: tuple[Topic, ...] = topics
        self.topic = topics[0]
        self.subscriber_id = subscriber_id
        self.maxlen = maxlen
        self.run_id = run_id
        self.agent_id = agent_id
        self.keys: tuple[str, ...] = tuple(f"{t.name}:{subscriber_id}" for t in topics)
        self.key = f"{'+'.join(t.name for t in topics)}:{subscriber_id}"
        self._lock = lock
        self._queue: deque[TelemetryEvent] = deque(maxlen=maxlen)
        self._waker = waker
        self._dropped = 0
        self._delivered = 0
        self._drain_epoch = 0
        self._lost = SeqRangeLog()
        # Drops not yet reported by an OVERFLOW notice (notices about OVERFLOW itself would recurse).
        self._unnoticed: SeqRangeLog | None = SeqRangeLog() if topics != (Topic.OVERFLOW,) else None
        # Per stream, the topics of the unnoticed drops that are not ``_solo_topic``.
        self._unnoticed_topics: dict[StreamKey, set[Topic]] = {}
        self._closed = False
        self._stats_base: dict[str, int] = {}  # drops per key at the bus's last reset_overflow_stats()
        self._put_count = 0
        self._tasks_done = 0
        self._getters = 0  # threads blocked in get()
        self._putters = 0  # threads blocked in put()
        # Per-topic accounting kept off the common path: a one-topic subscription counts drops of
        # its topic in ``_dropped`` only (one identity compare per drop), and counts deliveries per
        # topic (``_tally``) only once it has several topics or an item was put by hand.
        self._solo_topic: Topic | None = topics[0] if len(topics) == 1 else None
        self._dropped_items = 0  # dropped items that are not TelemetryEvents (put by hand)
        self._dropped_other: dict[Topic, int] = {}  # dropped events whose topic is not ``_solo_topic``
        self._tally = len(topics) > 1
        self._delivered_by_topic: Counter[Topic] = Counter()
        # The queue.Queue attributes, for code that reads them.
        self.maxsize = (maxlen or 0) if maxsize is None else maxsize
        self.queue = self._queue
        self.mutex = lock
        self.not_empty = threading.Condition(lock)
        self.not_full = threading.Condition(lock)
        self.all_tasks_done = threading.Condition(lock)

    def __repr__(self) -> str:
        return f"<Subscription {self.key} maxlen={self.maxlen} queued={len(self._queue)} dropped={self._dropped}>"

    def __len__(self) -> int:
        """Events queued now. Any thread; never blocks."""
        return len(self._queue)

    def __bool__(self) -> bool:
        """Always True, also when empty (a ``queue.Queue`` has no ``len``, so ``if q:`` is True)."""
        return True

    @property
    def dropped(self) -> int:
        """Items dropped since subscribing (always 0 when lossless). Any thread."""
        return self._dropped

    @property
    def delivered(self) -> int:
        """Items handed out by ``drain``/``get``/``get_nowait`` since subscribing. Any thread."""
        return self._delivered

    @property
    def put_count(self) -> int:
        """Items put by hand (``put``/``put_nowait``), not published. Any thread."""
        return self._put_count

    @property
    def closed(self) -> bool:
        """True once unsubscribed or replaced; queued events can still be taken. Any thread."""
        return self._closed

    @property
    def waker(self) -> Waker:
        """The waker ``publish`` sets for this subscription (shared if one was passed). Any thread."""
        return self._waker

    def matches(self, run_id: str, agent_id: str | None) -> bool:
        """Whether events of stream ``(run_id, agent_id)`` pass this subscription's filter."""
        return (self.run_id is None or self.run_id == run_id) and (
            self.agent_id is None or self.agent_id == agent_id
        )

    # -- our API ---------------------------------------------------------------------------------
    def drain(self, max_items: int | None = None) -> list[TelemetryEvent]:
        """Remove and return up to ``max_items`` queued events, oldest first. Any thread; never blocks."""
        if max_items is not None and max_items < 0:
            raise ValueError(f"max_items must be >= 0 or None, got {max_items}")
        with self._lock:
            q = self._queue
            if max_items is None or max_items >= len(q):
                items = list(q)
                q.clear()
            else:
                popleft = q.popleft
                items = [popleft() for _ in range(max_items)]
            if items:
                self._delivered += len(items)
                self._drain_epoch += 1
                if self._tally:
                    self._tally_out(items)
                if self._putters:
                    self.not_full.notify(len(items))
        return items

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until data is queued or ``timeout_s`` passes; True if data is queued.

        The consumer thread of this subscription only; blocks. Subscriptions sharing a ``Waker``
        should wait on the waker instead.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not self._queue:
            remaining = _remaining_s(deadline)
            if remaining is not None and remaining <= 0:
                return False
            self._waker.wait(remaining)
        return True

    def take_lost_ranges(self) -> dict[StreamKey, list[tuple[int, int]]]:
        """Return and forget the seq_id ranges dropped since the last call, per stream.

        A range ``(a, b)`` means every event of this subscription's topics and stream with
        ``a <= seq_id <= b`` was dropped (inclusive); seq_ids are per stream across topics, so one
        range may hold events of several topics. Any thread; never blocks.
        """
        with self._lock:
            return self._lost.take()

    # -- queue.Queue API -------------------------------------------------------------------------
    def qsize(self) -> int:
        """Items queued now (not the capacity). Any thread; never blocks."""
        return len(self._queue)

    def empty(self) -> bool:
        """True if nothing is queued now. Any thread; never blocks."""
        return not self._queue

    def full(self) -> bool:
        """True if bounded and at capacity (the next publish drops the oldest). Any thread; never blocks."""
        return self.maxlen is not None and len(self._queue) >= self.maxlen

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """Remove and return the oldest item; ``queue.Empty`` if none (after ``timeout`` s when blocking).

        Any thread. Blocks only with ``block=True``: it sleeps on this subscription's waker, which
        ``publish`` sets, so it wakes as soon as an event arrives (several threads may get from one
        subscription; a waker shared with other subscriptions should have one consumer thread).
        """
        if block and timeout is not None and timeout < 0:
            raise ValueError("'timeout' must be a non-negative number")
        deadline = None if not block or timeout is None else time.monotonic() + timeout
        lock = self._lock
        while True:
            with lock:
                q = self._queue
                if q:
                    item = q.popleft()
                    self._delivered += 1
                    self._drain_epoch += 1
                    if self._tally:
                        self._tally_out((item,))
                    if self._putters:
                        self.not_full.notify()
                    if q and self._getters:  # pass the wake-up on to another blocked getter
                        self._waker.notify()
                    return item
                remaining = _remaining_s(deadline)
                if not block or (remaining is not None and remaining <= 0):
                    raise queue.Empty
                self._getters += 1
            try:
                self._waker.wait(remaining)
            finally:
                with lock:
                    self._getters -= 1

    def get_nowait(self) -> Any:
        """``get(block=False)``: the oldest item, or ``queue.Empty``. Any thread; never blocks."""
        return self.get(False)

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """Queue ``item`` behind the published events; when bounded and full, wait for room
        (``block``, up to ``timeout`` s) or raise ``queue.Full``. Never drops. Any thread.

        In-band marker: on a lossless subscription ``put_nowait(marker)`` never blocks, never
        raises and appends ``marker`` under the bus lock, so it sits exactly behind every event
        published to this subscription before the call (from any thread) and ahead of every later
        one; ``drain``/``get`` return it in place. A consumer flushes by putting a marker and
        waiting until its own thread has processed the marker: everything published before the
        flush began is then processed. (A bounded subscription may drop a marker when full, as any
        item; ``dropped`` counts it.)
        """
        if block and timeout is not None and timeout < 0:
            raise ValueError("'timeout' must be a non-negative number")
        deadline = None if not block or timeout is None else time.monotonic() + timeout
        with self._lock:
            maxlen = self.maxlen
            while maxlen is not None and len(self._queue) >= maxlen:
                remaining = _remaining_s(deadline)
                if not block or (remaining is not None and remaining <= 0):
                    raise queue.Full
                self._putters += 1
                try:
                    self.not_full.wait(remaining)
                finally:
                    self._putters -= 1
            if not self._put_count and not self._tally:  # from now on deliveries are counted per topic
                self._tally = True
                self._delivered_by_topic[self.topic] = self._delivered
            self._queue.append(item)
            self._put_count += 1
            self._waker.notify()

    def put_nowait(self, item: Any) -> None:
        """``put(item, block=False)``: queue ``item`` or raise ``queue.Full``. Any thread; never blocks."""
        self.put(item, False)

    @property
    def unfinished_tasks(self) -> int:  # type: ignore[override]
        """Items queued or handed out and not yet confirmed by ``task_done()`` (dropped ones excluded)."""
        return self._delivered + len(self._queue) - self._tasks_done

    def task_done(self) -> None:
        """Confirm that one item taken out earlier is processed (for ``join``). Any thread; never blocks.

        Raises ValueError when called more often than items were queued.
        """
        with self._lock:
            if self._delivered + len(self._queue) - self._tasks_done <= 0:
                raise ValueError("task_done() called too many times")
            self._tasks_done += 1
            if self._delivered + len(self._queue) == self._tasks_done:
                self.all_tasks_done.notify_all()

    def join(self) -> None:
        """Block until every item queued so far was taken out and confirmed by ``task_done()``
        (dropped items need no confirmation). Any thread; blocks."""
        with self.all_tasks_done:
            while self._delivered + len(self._queue) - self._tasks_done > 0:
                self.all_tasks_done.wait()

    def _qsize(self) -> int:  # queue.Queue's internal hook, for code that calls the base methods
        return len(self._queue)

    # -- called by RunBus under its lock -------------------------------------------------------
    def _record_drop(self, evicted: Any) -> None:
        self._dropped += 1
        if type(evicted) is not TelemetryEvent:  # an item put by hand: counted, no seq_id to record
            self._dropped_items += 1
            return
        stream = (evicted.run_id, evicted.agent_id)
        self._lost.add(stream, evicted.seq_id, self._drain_epoch)
        topic = evicted.topic
        if topic is self._solo_topic:  # the common case: one identity compare
            if self._unnoticed is not None:
                self._unnoticed.add(stream, evicted.seq_id, self._drain_epoch)
            return
        self._dropped_other[topic] = self._dropped_other.get(topic, 0) + 1
        if self._unnoticed is not None and topic is not Topic.OVERFLOW:
            self._unnoticed.add(stream, evicted.seq_id, self._drain_epoch)
            self._unnoticed_topics.setdefault(stream, set()).add(topic)
