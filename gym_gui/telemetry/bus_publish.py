"""The RunBus's two publish paths, built once per bus (Qt-free; the hot path of both the live and
the durable path).

``make_publishers(bus)`` returns ``(publish, publish_run)`` closures over the bus's lock, route
cache, overflow notices and gap warner (locals instead of attribute look-ups keep the hot path
cheap); ``RunBus.__init__`` installs them as the instance's ``publish`` and ``publish_run``, whose
docstrings (``run_bus.RunBus``) say what they guarantee. Kept apart from ``run_bus`` so each module
holds one concept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

from gym_gui.telemetry.events import TelemetryEvent, Topic

if TYPE_CHECKING:
    from gym_gui.telemetry.run_bus import RunBus

__all__ = ["make_publishers", "publish_stream_events"]


def make_publishers(bus: RunBus) -> tuple[Callable[[TelemetryEvent], None], Callable[[list[TelemetryEvent]], None]]:
    """The ``publish`` and ``publish_run`` of ``bus`` (its constructor's thread, once)."""
    lock = bus._lock
    routes = bus._routes
    build_route = bus._build_route
    note_overflow = bus._notices.note
    unnoticed_subs = bus._notices.pending
    flush_notices = bus._notices.flush
    note_stream = bus._note_stream
    warn_gap = bus._gaps.warn
    overflow_topic = Topic.OVERFLOW
    event_type = TelemetryEvent

    def publish(evt: TelemetryEvent) -> None:
        if type(evt) is not event_type:
            raise TypeError(f"publish() takes a TelemetryEvent, got {type(evt).__name__}")
        key = (evt.topic, evt.run_id, evt.agent_id)
        seq = evt.seq_id
        dropped = missed = False
        lock.acquire()
        try:
            route = routes.get(key)
            if route is None:
                route = build_route(key)
                missed = True
            entries, cell = route
            last = cell[0]
            cell[0] = seq
            for queue, maxlen, waker, sub in entries:
                if len(queue) == maxlen:
                    sub._record_drop(queue[0])
                    dropped = True
                queue.append(evt)
                if not waker.pending:
                    waker.notify()
        finally:
            lock.release()
        if seq - last > 1:  # never for a stream's first event: its cell starts at +inf
            warn_gap(evt.run_id, evt.agent_id, last, seq)  # type: ignore[arg-type]  # an int here
        if missed and evt.topic is not overflow_topic:  # a new route may be a new stream (rare)
            note_stream((evt.run_id, evt.agent_id))
        if dropped:
            note_overflow(entries)
        if unnoticed_subs:
            flush_notices()

    def publish_run(evts: list[TelemetryEvent]) -> None:
        if not evts:
            return
        first = evts[0]
        if set(map(type, evts)) != {event_type}:
            raise TypeError("publish_run() takes a list of TelemetryEvents, got "
                            + ", ".join(sorted({type(e).__name__ for e in evts if type(e) is not event_type})))
        topic, run_id, agent_id = key = (first.topic, first.run_id, first.agent_id)
        first_seq, last_seq = first.seq_id, evts[-1].seq_id
        dropped = missed = False
        lock.acquire()
        try:
            route = routes.get(key)
            if route is None:
                route = build_route(key)
                missed = True
            entries, cell = route
            last = cell[0]
            cell[0] = last_seq
            for queue, maxlen, waker, sub in entries:
                if maxlen is None:  # lossless: nothing to evict
                    queue.extend(evts)
                else:
                    for evt in evts:
                        if len(queue) == maxlen:
                            sub._record_drop(queue[0])
                            dropped = True
                        queue.append(evt)
                if not waker.pending:
                    waker.notify()
        finally:
            lock.release()
        if first_seq - last > 1:
            warn_gap(run_id, agent_id, last, first_seq)  # type: ignore[arg-type]  # an int here
        if last_seq - first_seq != len(evts) - 1:  # a gap inside the run (seqs only increase here)
            before = first_seq
            for evt in evts:
                if evt.seq_id - before > 1:
                    warn_gap(run_id, agent_id, before, evt.seq_id)
                before = evt.seq_id
        if missed and topic is not overflow_topic:
            note_stream((run_id, agent_id))
        if dropped:
            note_overflow(entries)
        if unnoticed_subs:
            flush_notices()

    publish.__doc__ = type(bus).publish.__doc__
    publish_run.__doc__ = type(bus).publish_run.__doc__
    return publish, publish_run


def publish_stream_events(bus: Any, evts: Sequence[TelemetryEvent]) -> dict[Topic, int]:
    """Publish one stream's events (seq_ids strictly increasing, any topics) in order: each run of
    consecutive events of one topic with one ``publish_run`` (``publish`` for a single event, or on a
    bus without ``publish_run``). Returns how many of each topic were published. The caller's thread;
    never blocks on a consumer; raises what ``publish`` raises."""
    counts: dict[Topic, int] = {}
    publish = bus.publish
    publish_run = getattr(bus, "publish_run", None)
    n = len(evts)
    start = 0
    while start < n:
        topic = evts[start].topic
        end = start + 1
        while end < n and evts[end].topic is topic:
            end += 1
        if end - start == 1 or publish_run is None:
            for evt in evts[start:end]:
                publish(evt)
        else:
            publish_run(list(evts[start:end]))
        counts[topic] = counts.get(topic, 0) + end - start
        start = end
    return counts
