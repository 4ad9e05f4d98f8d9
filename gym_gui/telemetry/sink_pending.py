"""Events drained by the sink but not yet committed, kept so that commits stay in stream order (Qt-free).

The sink drains its lossless subscriptions as: control topics, then STEP_APPENDED, then control
topics again. A producer publishes a stream's events from one thread in seq order, so once that
sequence is done every event published before the step drain has been drained. Hence, per stream,
every event with a seq_id up to the highest seq_id drained *before or by* the step drain is in hand:
that seq_id is the stream's **watermark**. Controls drained after the step drain are **held**; they
raise the watermark at the next collect (they were drained before its step drain).

Only events at or below the watermark are handed out, lowest seq_id first, so the committed events
of a stream always form a prefix of everything it published: no episode before its steps, and
RUN_COMPLETED (the last event of a stream) only after the rest. A batch that takes a RUN_COMPLETED
also takes every eligible event of every stream of that run, so the run is complete when it commits.
Not thread-safe: the sink thread owns it; ``count`` may be read from any thread.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from operator import attrgetter
from typing import Iterable

from gym_gui.telemetry.events import StreamKey, TelemetryEvent, Topic

__all__ = ["PendingEvents"]

_seq = attrgetter("seq_id")


def _group(events: Iterable[TelemetryEvent]) -> dict[StreamKey, list[TelemetryEvent]]:
    groups: dict[StreamKey, list[TelemetryEvent]] = {}
    run_id: str | None = None
    agent_id: str | None = None
    bucket: list[TelemetryEvent] = []
    for evt in events:
        if evt.run_id != run_id or evt.agent_id != agent_id:  # a stream's events come in runs
            run_id, agent_id = evt.run_id, evt.agent_id
            bucket = groups.setdefault((run_id, agent_id), [])
        bucket.append(evt)
    return groups


class PendingEvents:
    """Per-stream pending events in seq_id order, with the watermark that makes a prefix safe to commit."""

    def __init__(self) -> None:
        self._streams: dict[StreamKey, list[TelemetryEvent]] = {}
        self._watermark: dict[StreamKey, float] = {}
        self._held_max: dict[StreamKey, int] = {}
        self._since: dict[StreamKey, float] = {}
        self._completed_at: dict[StreamKey, int] = {}  # lowest pending RUN_COMPLETED seq_id per stream
        self._rotation = 0
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def add_collected(self, before_steps: list[TelemetryEvent], steps: list[TelemetryEvent],
                      after_steps: list[TelemetryEvent], now: float) -> None:
        """Add one collect's drains (controls before the step drain, steps, controls after it)."""
        for stream, top in self._held_max.items():  # drained before this collect's step drain
            self._raise(stream, top)
        self._held_max.clear()
        for group in (before_steps, steps):
            for stream, events in _group(group).items():
                self._merge(stream, events, now)
                self._raise(stream, events[-1].seq_id if group is steps else max(map(_seq, events)))
        for stream, events in _group(after_steps).items():
            self._merge(stream, events, now)
            top = max(map(_seq, events))
            if top > self._watermark.get(stream, -1):
                self._held_max[stream] = max(top, self._held_max.get(stream, -1))

    def seal(self) -> None:
        """No event will be added any more (the sink unsubscribed and drained): everything is eligible."""
        self._held_max.clear()
        for stream in self._streams:
            self._watermark[stream] = math.inf

    @property
    def has_held(self) -> bool:
        """True if some drained events wait for the next collect to become eligible."""
        return bool(self._held_max)

    def _raise(self, stream: StreamKey, seq_id: float) -> None:
        if seq_id > self._watermark.get(stream, -1):
            self._watermark[stream] = seq_id

    def _merge(self, stream: StreamKey, events: list[TelemetryEvent], now: float) -> None:
        queue = self._streams.get(stream)
        if queue is None:
            self._streams[stream] = queue = []
            self._since[stream] = now
        in_order = not queue or events[0].seq_id > queue[-1].seq_id
        if events[0].topic is not Topic.STEP_APPENDED:  # controls of several topics: maybe out of order
            in_order = in_order and len(events) == 1
            completions = [evt.seq_id for evt in events if evt.topic is Topic.RUN_COMPLETED]
            if completions:
                first = min(completions)
                self._completed_at[stream] = min(first, self._completed_at.get(stream, first))
        queue += events
        if not in_order:
            queue.sort(key=_seq)  # restore seq order
        self.count += len(events)

    def _eligible(self, stream: StreamKey, queue: list[TelemetryEvent]) -> int:
        wm = self._watermark.get(stream, -1)
        if queue[-1].seq_id <= wm:
            return len(queue)
        return bisect_right(queue, wm, key=_seq)

    def eligible_count(self) -> int:
        """Events that may be committed now."""
        return sum(self._eligible(s, q) for s, q in self._streams.items())

    def oldest_eligible_since(self) -> float | None:
        """When the oldest stream with eligible events got its first pending event (monotonic s), or None."""
        times = [self._since[s] for s, q in self._streams.items() if self._eligible(s, q)]
        return min(times) if times else None

    def take_batch(self, max_events: int) -> list[TelemetryEvent]:
        """Remove and return eligible events: a seq-ordered prefix per stream, normally at most ``max_events``.

        A run whose RUN_COMPLETED is eligible goes first and whole (every eligible event of each of
        its streams, even beyond ``max_events``), so RUN_COMPLETED commits with the rest of its run.
        """
        streams = list(self._streams)
        if not streams:
            return []
        self._rotation = (self._rotation + 1) % len(streams)
        streams = streams[self._rotation:] + streams[:self._rotation]  # fairness between streams
        completing = {
            stream[0] for stream, seq in self._completed_at.items() if seq <= self._watermark.get(stream, -1)
        }
        if completing:
            streams.sort(key=lambda stream: stream[0] not in completing)  # stable: keeps the rotation
        batch: list[TelemetryEvent] = []
        for stream in streams:
            queue = self._streams[stream]
            eligible = self._eligible(stream, queue)
            n = eligible if stream[0] in completing else min(eligible, max_events - len(batch))
            if n <= 0:
                continue
            batch += queue[:n]
            del queue[:n]
            self.count -= n
            if stream in self._completed_at:
                self._track_completion(stream, queue)
            if not queue:  # the watermark is re-derived from the next drains, so it can go too
                del self._streams[stream], self._since[stream]
                self._watermark.pop(stream, None)
        return batch

    def _track_completion(self, stream: StreamKey, queue: list[TelemetryEvent]) -> None:
        """Remember the lowest pending RUN_COMPLETED seq_id of ``stream`` (or forget the stream)."""
        for evt in queue:
            if evt.topic is Topic.RUN_COMPLETED:
                self._completed_at[stream] = evt.seq_id
                return
        self._completed_at.pop(stream, None)
