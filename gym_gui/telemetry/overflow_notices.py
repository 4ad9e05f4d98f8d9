"""The RunBus's OVERFLOW notices: drops reported as ``Topic.OVERFLOW`` events, rate-limited (Qt-free).

A publish that dropped events marks the subscriptions it dropped from; at most once per
``interval_s`` for the bus (or when forced) every marked subscription's unreported drops become one
OVERFLOW event per subscription and stream, published on the same bus. Drops of OVERFLOW events
themselves are counted but never noticed (that would recurse). Split out of ``run_bus.py``; the bus
owns one ``OverflowNotices`` and reaches it from its hot path only after a drop.
"""

from __future__ import annotations

import logging
import threading
import time
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Iterable

from gym_gui.telemetry.events import StreamKey, TelemetryEvent, Topic, utc_now_iso
from gym_gui.telemetry.subscription import Subscription

if TYPE_CHECKING:
    from gym_gui.telemetry.run_bus import RunBus

__all__ = ["OVERFLOW_NOTICE_INTERVAL_S", "OverflowNotices", "notice_payload"]

_log = logging.getLogger("gym_gui.telemetry.run_bus")

#: At most one OVERFLOW notice per subscription and stream in this interval.
OVERFLOW_NOTICE_INTERVAL_S = 0.5


def notice_payload(sub: Subscription, ranges: list[tuple[int, int]], topics: tuple[Topic, ...],
                   dropped_total: int) -> dict[str, Any]:
    """The payload of one OVERFLOW notice about ``sub``'s drops ``ranges`` of one stream.

    ``topics`` are the topics of the dropped events; ``subscription`` is
    ``"TOPIC:subscriber_id"`` (``"A+B:subscriber_id"`` when events of several topics were
    dropped), ``topic`` the first of them (for readers of one-topic subscriptions), ``topics``
    all of them. Pure function.
    """
    names = [t.name for t in topics] or [sub.topic.name]
    return {
        "subscription": f"{'+'.join(names)}:{sub.subscriber_id}",
        "topic": names[0],
        "topics": names,
        "subscriber_id": sub.subscriber_id,
        "lost_ranges": [list(r) for r in ranges],
        "lost_count_upper_bound": sum(b - a + 1 for a, b in ranges),
        "dropped_total": dropped_total,
    }


class OverflowNotices:
    """Collects the subscriptions with unreported drops and publishes their notices on ``bus``.

    ``pending`` (a set) is read by the bus's publish without a lock: a non-empty set makes it
    call ``flush()``. Every method may be called from any thread and never blocks long.
    """

    __slots__ = ("_bus", "_interval_s", "_next_at", "_lock", "pending")

    def __init__(self, bus: RunBus, interval_s: float = OVERFLOW_NOTICE_INTERVAL_S) -> None:
        self._bus = bus
        self._interval_s = interval_s
        self._next_at = 0.0
        self._lock = threading.Lock()
        self.pending: set[Subscription] = set()

    def note(self, entries: Iterable[tuple[Any, Any, Any, Subscription]]) -> None:
        """Mark the route entries' subscriptions that have unreported drops. Publisher's thread."""
        with self._lock:
            for _queue, _maxlen, _waker, sub in entries:
                if sub._unnoticed:
                    self.pending.add(sub)

    def forget(self, sub: Subscription) -> None:
        """Stop reporting ``sub`` (unsubscribed or replaced). Any thread."""
        with self._lock:
            self.pending.discard(sub)

    def flush(self, *, force: bool = False) -> int:
        """Publish pending notices if the rate limit allows (or ``force``); returns how many."""
        now = time.monotonic()
        with self._lock:
            if not self.pending or (not force and now < self._next_at):
                return 0
            self._next_at = now + self._interval_s
            subs = list(self.pending)
            self.pending.clear()
        bus = self._bus
        notices: list[tuple[Subscription, StreamKey, list[tuple[int, int]], tuple[Topic, ...], int]] = []
        with bus._lock:
            for sub in subs:
                for stream, ranges, topics in sub._take_unnoticed():
                    notices.append((sub, stream, ranges, topics, sub._dropped))
        ts_iso = utc_now_iso()
        for sub, (run_id, agent_id), ranges, topics, dropped_total in notices:
            payload = notice_payload(sub, ranges, topics, dropped_total)
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
                payload["subscription"], run_id, agent_id, ranges, dropped_total,
            )
            bus.publish(notice)
            bus._send_control(bus.overflowed, subscription=sub, stream=(run_id, agent_id), lost_ranges=ranges)
        return len(notices)
