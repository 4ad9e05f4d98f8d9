"""DebugModel: what the debug pane shows, gathered without Qt: the bus's subscriptions (one row per
topic of each, with that topic's queued, dropped and delivered counts), named stats sources (a
proxy's, the sink's, ...) and the bus's OVERFLOW notices (who lost which seq_ids of which stream).

Driven by ``tick(now_s)`` from one thread (the GUI pump's): a tick takes in the OVERFLOW notices
that arrived (they wake the pump through the subscription's waker), and every
``refresh_interval_s`` re-reads the stats, after ``bus.flush_overflow_notices()`` so the last drops
of a burst are reported even when nothing more is published. Rows are plain ``StatRow``s (cell
texts and a severity); ``version`` grows whenever a table changed, so a shell redraws only then.
"""

from __future__ import annotations

import json
import logging
import math
from collections import OrderedDict
from datetime import datetime
from typing import Any, Callable, Iterator, Mapping

import attrs

from gym_gui.live.stat_rows import ERROR, OK, WARN, StatRow
from gym_gui.rate_limited_log import RateLimitedLog
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.telemetry.subscription import Subscription, Waker

__all__ = ["DEFAULT_REFRESH_INTERVAL_S", "DebugModel", "ERROR", "MAX_NOTICE_ROWS", "NOTICE_HEADERS", "OK",
           "SOURCE_HEADERS", "SUBSCRIBER_ID", "SUBSCRIPTION_HEADERS", "StatRow", "StatsFn", "WARN"]

_log = logging.getLogger(__name__)
_rlog = RateLimitedLog(_log, interval_s=10.0)

StatsFn = Callable[[], Mapping[str, Any]]

SUBSCRIPTION_HEADERS = ("topic", "subscriber", "stream", "queued", "capacity", "dropped", "delivered")
SOURCE_HEADERS = ("source", "stat", "value")
NOTICE_HEADERS = ("subscription", "stream", "lost seq ranges", "lost", "notices", "last notice")
DEFAULT_REFRESH_INTERVAL_S = 0.5
#: The debug pane's own OVERFLOW subscription.
SUBSCRIBER_ID = "debug-pane"
#: OVERFLOW notices queued between two ticks at most (more are dropped and counted).
NOTICE_QUEUE_MAXLEN = 1024
#: Rows of the notice table: one per (subscription, stream); the oldest row goes first.
MAX_NOTICE_ROWS = 256
#: Lost ranges kept per row (the newest; the count still covers every one).
MAX_RANGES_KEPT = 8

#: Stats shown first, in this order (the proxy's rejects, the sink's backlog, rate and errors).
_FIRST = ("rejected_total", "rejected", "lines_read", "events_published", "published", "backlog",
          "rows_per_s", "persisted", "errors", "retries", "failing", "last_error")
#: Stats whose non-zero / non-empty value deserves a tint.
_WARN_IF_SET = frozenset({"rejected_total", "rejected", "errors", "retries", "failing", "last_error", "lost",
                          "gate_paused", "worker_errors", "last_rejected"})


def fmt_value(value: Any) -> str:
    """A stat value as a short text: ``-`` for None, ``yes``/``no``, one decimal for floats, JSON else."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.1f}" if math.isfinite(value) else str(value)
    if isinstance(value, (int, str)):
        return str(value)
    try:
        return json.dumps(value, default=str)[:300]
    except (TypeError, ValueError):
        return repr(value)[:300]


def _flatten(stats: Mapping[str, Any]) -> Iterator[tuple[str, str, Any]]:
    """``(top key, shown key, value)`` for every stat, nested dicts as ``key.sub``, ``_FIRST`` first."""
    keys = [k for k in _FIRST if k in stats] + [k for k in stats if k not in _FIRST]
    for key in keys:
        value = stats[key]
        if isinstance(value, Mapping):
            if not value:
                yield key, f"{key}", "none"
            for sub in sorted(value, key=str):
                yield key, f"{key}.{sub}", value[sub]
        else:
            yield key, str(key), value


def _severity(top: str, value: Any) -> int:
    if top in _WARN_IF_SET and value not in (None, 0, 0.0, False, "", "none"):
        return WARN
    return OK


def _stream_text(run_id: str | None, agent_id: str | None) -> str:
    return f"{run_id or '*'}/{agent_id or '*'}" if (run_id or agent_id) else "*"


def subscription_rows(sub: Subscription) -> list[StatRow]:
    """One row per topic of ``sub``: topic, subscriber, stream filter, queued, capacity (``lossless``,
    or shared by the subscription's topics: ``4096 shared``), dropped, delivered of that topic."""
    topics = sub.topics
    if len(topics) == 1:  # (the common case: the subscription's own counters)
        counts = {topics[0]: (len(sub), sub.dropped, sub.delivered)}
    else:
        queued, dropped, delivered = sub.queued_by_topic(), sub.dropped_by_topic(), sub.delivered_by_topic()
        counts = {t: (queued.get(t, 0), dropped.get(t, 0), delivered.get(t, 0)) for t in topics}
    capacity = "lossless" if sub.maxlen is None else str(sub.maxlen) + (" shared" if len(topics) > 1 else "")
    stream = _stream_text(sub.run_id, sub.agent_id)
    return [StatRow((t.name, sub.subscriber_id, stream, str(q), capacity, str(d), str(n)), WARN if d else OK)
            for t, (q, d, n) in counts.items()]


def source_rows(name: str, stats_fn: StatsFn) -> list[StatRow]:
    """One row per stat of ``stats_fn()`` (nested dicts flattened); one ERROR row when it raises or
    returns something other than a dict. Calls ``stats_fn`` on the caller's thread."""
    try:
        stats = stats_fn()
    except Exception as exc:  # the pane must keep showing the other sources
        _rlog.log(logging.WARNING, f"source:{name}", "debug pane source %s failed: %r", name, exc)
        return [StatRow((name, "error", f"{type(exc).__name__}: {exc}"), ERROR)]
    if not isinstance(stats, Mapping):
        return [StatRow((name, "error", f"stats returned {type(stats).__name__}, not a dict"), ERROR)]
    return [StatRow((name, shown, fmt_value(value)), _severity(top, value)) for top, shown, value in _flatten(stats)]


@attrs.define(slots=True)
class _NoticeRow:
    """The OVERFLOW notices of one (subscription, stream), merged."""

    subscription: str
    stream: str
    ranges: list[tuple[int, int]]
    ranges_total: int
    lost: int
    notices: int
    last_ts_iso: str

    def row(self) -> StatRow:
        shown = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in self.ranges)
        if self.ranges_total > len(self.ranges):
            shown = f"... {self.ranges_total - len(self.ranges)} earlier, " + shown
        return StatRow((self.subscription, self.stream, shown, str(self.lost), str(self.notices),
                        self.last_ts_iso[11:19] or self.last_ts_iso), WARN)


class DebugModel:
    """The debug pane's tables. One owner thread calls everything; stats functions must not block."""

    def __init__(self, bus: RunBus, *, refresh_interval_s: float = DEFAULT_REFRESH_INTERVAL_S,
                 sources: Mapping[str, StatsFn] | None = None, subscriber_id: str = SUBSCRIBER_ID) -> None:
        """Build the model; nothing is subscribed before ``start``. Any thread; never blocks.
        Raises ValueError unless ``refresh_interval_s > 0``."""
        if not (type(refresh_interval_s) in (int, float) and math.isfinite(refresh_interval_s)
                and refresh_interval_s > 0):
            raise ValueError(f"refresh_interval_s must be a positive number, got {refresh_interval_s!r}")
        self.bus = bus
        self.refresh_interval_s = float(refresh_interval_s)
        self.subscriber_id = subscriber_id
        self._sources: dict[str, StatsFn] = dict(sources or {})
        self._overflow: Subscription | None = None
        self._next_refresh_s: float | None = None
        self._notices: OrderedDict[tuple[str, str], _NoticeRow] = OrderedDict()
        self.subscription_rows: list[StatRow] = []
        self.source_rows: list[StatRow] = []
        self.notice_rows: list[StatRow] = []
        self.status_text = "not refreshed yet"
        self.version = 0  # grows when a table or the status text changed
        self.refreshes = 0
        self.notices_flushed = 0  # notices this model's refreshes made the bus publish
        self.notices_seen = 0  # OVERFLOW notices taken in
        self.notice_rows_evicted = 0

    # -- sources ---------------------------------------------------------------------------------
    def add_source(self, name: str, stats_fn: StatsFn) -> None:
        """Show ``stats_fn()`` (a dict) under ``name`` from the next refresh on; replaces a source of
        the same name. Owner thread; never blocks."""
        self._sources[name] = stats_fn

    def remove_source(self, name: str) -> None:
        """Stop showing ``name``; idempotent. Owner thread; never blocks."""
        self._sources.pop(name, None)

    def source_names(self) -> list[str]:
        """Names of the sources shown. Owner thread; never blocks."""
        return list(self._sources)

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, now_s: float, waker: Waker | None = None) -> None:
        """Subscribe to OVERFLOW (``waker`` is told of each notice: the pump's) and refresh now;
        idempotent. Owner thread; never blocks long."""
        if self._overflow is not None:
            return
        self._overflow = self.bus.subscribe(Topic.OVERFLOW, self.subscriber_id, maxlen=NOTICE_QUEUE_MAXLEN,
                                            waker=waker)
        self.refresh(now_s)

    def stop(self) -> None:
        """Unsubscribe; the tables keep what they show. Idempotent. Owner thread; never blocks long."""
        if self._overflow is None:
            return
        self.bus.unsubscribe(Topic.OVERFLOW, self.subscriber_id)
        self._overflow = None
        self._next_refresh_s = None

    @property
    def started(self) -> bool:
        """True between ``start`` and ``stop``. Owner thread."""
        return self._overflow is not None

    # -- ticks -----------------------------------------------------------------------------------
    def tick(self, now_s: float) -> None:
        """Take in the OVERFLOW notices that arrived; refresh the stats when due. Owner thread."""
        if self._overflow is None:
            return
        if self._next_refresh_s is not None and now_s >= self._next_refresh_s:
            self.refresh(now_s)
        elif self._take_notices():
            self._changed()

    def next_deadline_s(self, now_s: float) -> float | None:
        """The next refresh while started, else None. Owner thread."""
        return self._next_refresh_s

    def refresh(self, now_s: float | None = None) -> None:
        """Flush the bus's pending OVERFLOW notices, take them in, re-read every subscription and
        source. ``now_s`` (the owner's clock) schedules the next refresh. Owner thread; never blocks
        long (stats functions are called here)."""
        self.refreshes += 1
        try:
            self.notices_flushed += self.bus.flush_overflow_notices()
        except Exception as exc:  # the pane must keep showing what it can
            _rlog.log(logging.ERROR, "flush", "flushing overflow notices failed: %r", exc)
        self._take_notices()
        subs = sorted(self.bus.subscriptions(), key=lambda s: s.key)
        self.subscription_rows = [row for sub in subs for row in subscription_rows(sub)]
        self.source_rows = [row for name, fn in list(self._sources.items()) for row in source_rows(name, fn)]
        dropped = sum(s.dropped for s in subs)
        lost_notices = "" if self._overflow is None or not self._overflow.dropped else (
            f" ({self._overflow.dropped} not shown: the pane fell behind)")
        self.status_text = (f"{len(subs)} subscriptions, {dropped} events dropped in total, "
                            f"{self.notices_seen} overflow notices{lost_notices}, "
                            f"{self.notices_flushed} flushed by this pane; refreshed {datetime.now():%H:%M:%S}")
        if now_s is not None and self._overflow is not None:
            self._next_refresh_s = now_s + self.refresh_interval_s
        self._changed()

    # -- notices ---------------------------------------------------------------------------------
    def _take_notices(self) -> bool:
        if self._overflow is None:
            return False
        notices = self._overflow.drain()
        for evt in notices:
            self._add_notice(evt)
        if notices:
            self.notice_rows = [row.row() for row in reversed(self._notices.values())]  # newest first
        return bool(notices)

    def _add_notice(self, evt: TelemetryEvent) -> None:
        payload = evt.payload
        self.notices_seen += 1
        subscription = str(payload.get("subscription") or payload.get("subscriber_id") or "?")
        stream = _stream_text(evt.run_id, evt.agent_id)
        ranges = [(int(r[0]), int(r[1])) for r in payload.get("lost_ranges") or () if len(r) == 2]
        lost = payload.get("lost_count_upper_bound")
        lost = lost if type(lost) is int else sum(b - a + 1 for a, b in ranges)
        key = (subscription, stream)
        row = self._notices.pop(key, None)
        if row is None:
            row = _NoticeRow(subscription, stream, [], 0, 0, 0, evt.ts_iso)
        for a, b in ranges:  # adjacent ranges (one burst over several notices) are merged
            if row.ranges and row.ranges[-1][1] + 1 >= a:
                row.ranges[-1] = (row.ranges[-1][0], max(b, row.ranges[-1][1]))
            else:
                row.ranges.append((a, b))
                row.ranges_total += 1
        del row.ranges[:-MAX_RANGES_KEPT]
        row.lost += lost
        row.notices += 1
        row.last_ts_iso = evt.ts_iso
        self._notices[key] = row  # (moved to the end: the newest)
        while len(self._notices) > MAX_NOTICE_ROWS:
            self._notices.popitem(last=False)
            self.notice_rows_evicted += 1

    def notice_count(self) -> int:
        """Rows of the notice table (one per subscription and stream). Owner thread."""
        return len(self._notices)

    def _changed(self) -> None:
        self.version += 1
