"""Per-topic accounting of a Subscription (Qt-free): the ``TopicAccounting`` mixin.

A subscription may take several topics into one deque; these methods split its counts by topic
so that, per topic, ``delivered + dropped + queued == published to it`` (TelemetryEvents put by
hand count under their own topic; other items put by hand, markers, count in the totals only),
and give the bus its per-key (``"TOPIC:subscriber_id"``) drop and queue counts. The counting on
the hot path stays in ``Subscription._record_drop`` (one identity compare per drop of a one-topic
subscription); everything here runs on a consumer's or a stats reader's call.
"""

from __future__ import annotations

from collections import Counter
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Iterable

from gym_gui.telemetry.events import StreamKey, TelemetryEvent, Topic

if TYPE_CHECKING:
    import threading
    from collections import deque

    from gym_gui.telemetry.seq_ranges import SeqRangeLog

__all__ = ["TopicAccounting"]

_topic_of = attrgetter("topic")


class TopicAccounting:
    """Mixin of ``Subscription``: per-topic counts over the attributes it keeps."""

    __slots__ = ()

    if TYPE_CHECKING:
        topic: Topic
        topics: tuple[Topic, ...]
        key: str
        keys: tuple[str, ...]
        _lock: threading.Lock
        _queue: deque[Any]
        _dropped: int
        _delivered: int
        _put_count: int
        _solo_topic: Topic | None
        _dropped_items: int
        _dropped_other: dict[Topic, int]
        _tally: bool
        _delivered_by_topic: Counter[Topic]
        _unnoticed: SeqRangeLog | None
        _unnoticed_topics: dict[StreamKey, set[Topic]]

    def dropped_by_topic(self) -> dict[Topic, int]:
        """Events dropped per topic since subscribing, every subscribed topic present (0 included).

        Items put by hand that are not TelemetryEvents count in ``dropped`` only. Any thread; never
        blocks long.
        """
        with self._lock:
            return self._dropped_by_topic()

    def delivered_by_topic(self) -> dict[Topic, int]:
        """Events handed out per topic (``drain``/``get``) since subscribing, every subscribed topic
        present. Markers put by hand count in ``delivered`` only. Any thread; never blocks long."""
        with self._lock:
            return self._delivered_by_topic_now()

    def queued_by_topic(self) -> dict[Topic, int]:
        """Events queued now per topic, every subscribed topic present; markers are not counted.
        Any thread; never blocks long (it counts the queue under the bus lock)."""
        with self._lock:
            return self._queued_by_topic()

    def _dropped_by_topic(self) -> dict[Topic, int]:
        counts = dict.fromkeys(self.topics, 0)
        solo = self._solo_topic
        if solo is not None:
            counts[solo] = self._dropped - self._dropped_items - sum(self._dropped_other.values())
        counts.update(self._dropped_other)
        return counts

    def _delivered_by_topic_now(self) -> dict[Topic, int]:
        counts = dict.fromkeys(self.topics, 0)
        if self._tally:
            counts.update(self._delivered_by_topic)
        else:  # one topic, nothing ever put: everything delivered is an event of it
            counts[self.topic] = self._delivered
        return counts

    def _queued_by_topic(self) -> dict[Topic, int]:
        counts = dict.fromkeys(self.topics, 0)
        q = self._queue
        if not self._put_count:
            if self._solo_topic is not None:
                counts[self.topic] = len(q)
            else:
                counts.update(Counter(map(_topic_of, q)))
        else:
            counts.update(Counter(e.topic for e in q if type(e) is TelemetryEvent))
        return counts

    def _drops_by_key(self) -> dict[str, int]:
        """Drops per ``"TOPIC:subscriber_id"`` key (markers and foreign topics under ``keys[0]``);
        caller holds the lock."""
        by_topic = self._dropped_by_topic()
        counts = {key: by_topic.pop(topic) for topic, key in zip(self.topics, self.keys)}
        counts[self.keys[0]] += self._dropped_items + sum(by_topic.values())
        return counts

    def _sizes_by_key(self) -> dict[str, int]:
        """Queued items per key (markers and foreign topics under ``keys[0]``); caller holds the lock."""
        if self._solo_topic is not None:
            return {self.key: len(self._queue)}
        by_topic = self._queued_by_topic()
        counts = {key: by_topic.pop(topic) for topic, key in zip(self.topics, self.keys)}
        counts[self.keys[0]] += len(self._queue) - sum(counts.values())
        return counts

    def _tally_out(self, items: Iterable[Any]) -> None:
        """Count delivered events per topic; caller holds the lock."""
        if self._put_count:
            self._delivered_by_topic.update(e.topic for e in items if type(e) is TelemetryEvent)
        else:
            self._delivered_by_topic.update(map(_topic_of, items))

    def _take_unnoticed(self) -> list[tuple[StreamKey, list[tuple[int, int]], tuple[Topic, ...]]]:
        """Drops not yet noticed: per stream its lost ranges and the topics they hold (in
        ``topics`` order); forgets them. Caller holds the lock."""
        if self._unnoticed is None:
            return []
        other = self._unnoticed_topics
        taken = []
        for stream, ranges in self._unnoticed.take().items():
            topics = other.get(stream, set())
            if self._solo_topic is not None:
                topics = topics | {self._solo_topic}
            ordered = tuple(t for t in self.topics if t in topics) + tuple(
                sorted((t for t in topics if t not in self.topics), key=lambda t: t.name))
            taken.append((stream, ranges, ordered))
        other.clear()
        return taken
