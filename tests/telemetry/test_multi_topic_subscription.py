"""RunBus.subscribe_topics: one subscription, one deque, several topics in publish order."""

from __future__ import annotations

import queue
import threading
from typing import Any

import pytest

from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.run_bus import RunBus, Subscription, Waker

TS = "2026-01-01T00:00:00+00:00"
S, E, C = Topic.STEP_APPENDED, Topic.EPISODE_FINALIZED, Topic.RUN_COMPLETED


def evt(seq: int, topic: Topic = S, *, run: str = "run1", agent: str | None = "agent6") -> TelemetryEvent:
    return TelemetryEvent(topic=topic, run_id=run, agent_id=agent, seq_id=seq, ts_iso=TS, payload={"i": seq})


def tagged(items: list[Any]) -> list[Any]:
    return [(i.topic.name[0], i.seq_id) if isinstance(i, TelemetryEvent) else i for i in items]


def invariant_holds(sub: Subscription, published: dict[Topic, int]) -> bool:
    delivered, dropped, queued = sub.delivered_by_topic(), sub.dropped_by_topic(), sub.queued_by_topic()
    assert all(set(sub.topics) <= set(counts) for counts in (delivered, dropped, queued))  # 0s included
    topics = set(delivered) | set(dropped) | set(queued)  # plus topics of events put by hand
    return all(delivered.get(t, 0) + dropped.get(t, 0) + queued.get(t, 0) == published.get(t, 0) for t in topics)


def test_one_deque_holds_every_topic_in_publish_order() -> None:
    bus = RunBus()
    sub = bus.subscribe_topics([E, S], "sink", maxlen=None)
    assert sub.topics == (E, S) and sub.topic is E
    assert sub.keys == ("EPISODE_FINALIZED:sink", "STEP_APPENDED:sink")
    assert sub.key == "EPISODE_FINALIZED+STEP_APPENDED:sink"
    for seq, topic in enumerate([S, S, E, C, S, E], start=1):
        bus.publish(evt(seq, topic))
    assert tagged(sub.drain()) == [("S", 1), ("S", 2), ("E", 3), ("S", 5), ("E", 6)]  # C is not subscribed
    assert bus.subscriptions() == [sub]  # once, though it holds two keys
    assert isinstance(sub, queue.Queue)
    assert bus.subscribe_topics((S,), "solo").key == "STEP_APPENDED:solo"  # one topic: the key as before


def test_filters_apply_to_every_topic() -> None:
    bus = RunBus()
    sub = bus.subscribe_topics((S, E), "ui", run_id="run2", agent_id="a")
    bus.publish(evt(1, S, run="run2", agent="a"))
    bus.publish(evt(1, S, run="run1", agent="a"))
    bus.publish(evt(2, E, run="run2", agent="a"))
    bus.publish(evt(1, E, run="run2", agent="b"))
    assert tagged(sub.drain()) == [("S", 1), ("E", 2)]


@pytest.mark.parametrize("bad, error", [((), ValueError), ((S, S), ValueError), ((S, "E"), TypeError)])
def test_bad_topic_lists_are_refused_before_anything_changes(bad: Any, error: type[Exception]) -> None:
    bus = RunBus()
    first = bus.subscribe(S, "ui")
    with pytest.raises(error):
        bus.subscribe_topics(bad, "ui")
    assert bus.subscriptions() == [first] and not first.closed


def test_replacing_any_key_retires_the_whole_subscription_and_frees_its_other_keys() -> None:
    bus = RunBus()
    seen: list[tuple[str, str]] = []
    bus.subscribed.connect(lambda sender, subscription: seen.append(("sub", subscription.key)), weak=False)
    bus.unsubscribed.connect(lambda sender, subscription: seen.append(("unsub", subscription.key)), weak=False)
    multi = bus.subscribe_topics((S, E), "sink")
    bus.publish(evt(1, S))
    with pytest.raises(ValueError, match="EPISODE_FINALIZED:sink is already subscribed"):
        bus.subscribe_topics((C, E), "sink", replace=False)
    assert not multi.closed and bus.subscriptions() == [multi]
    only_e = bus.subscribe(E, "sink")  # one key of it: the whole of it goes
    assert multi.closed and tagged(multi.drain()) == [("S", 1)]
    bus.publish(evt(2, S))
    bus.publish(evt(3, E))
    assert len(multi) == 0 and tagged(only_e.drain()) == [("E", 3)]
    fresh_s = bus.subscribe(S, "sink", replace=False)  # its STEP_APPENDED key is free again
    assert bus.subscriptions() == [only_e, fresh_s]
    both = bus.subscribe_topics((S, E), "sink")  # replaces two subscriptions at once
    assert only_e.closed and fresh_s.closed and bus.subscriptions() == [both]
    both_key = "STEP_APPENDED+EPISODE_FINALIZED:sink"
    assert seen == [("sub", both_key), ("unsub", both_key), ("sub", "EPISODE_FINALIZED:sink"),
                    ("sub", "STEP_APPENDED:sink"), ("unsub", "STEP_APPENDED:sink"),
                    ("unsub", "EPISODE_FINALIZED:sink"), ("sub", both_key)]


def test_unsubscribe_topics_and_unsubscribe_retire_it_whole_and_are_idempotent() -> None:
    bus = RunBus()
    multi = bus.subscribe_topics((S, E, C), "sink", maxlen=None)
    other = bus.subscribe(S, "ui")
    bus.publish(evt(1, S))
    bus.unsubscribe(E, "sink")  # any one key retires all of it
    bus.publish(evt(2, S))
    bus.publish(evt(3, C))
    assert multi.closed and tagged(multi.drain()) == [("S", 1)]
    assert bus.subscriptions() == [other]
    again = bus.subscribe_topics((S, E, C), "sink", replace=False)
    bus.unsubscribe_topics((C, S, E), "sink")
    bus.unsubscribe_topics((C, S, E), "sink")
    bus.unsubscribe_topics((Topic.OVERFLOW,), "never")
    assert again.closed and bus.subscriptions() == [other]
    assert bus.queue_sizes() == {"STEP_APPENDED:ui": 2}


def test_per_topic_accounting_with_drops_gets_drains_and_hand_puts() -> None:
    bus = RunBus()
    sub = bus.subscribe_topics((S, E), "ui", maxlen=4)
    published = {S: 0, E: 0}

    def pub(seq: int, topic: Topic) -> None:
        bus.publish(evt(seq, topic))
        published[topic] += 1

    for seq in range(1, 7):  # S1 E2 S3 E4 S5 E6 into 4 slots: S1, E2 dropped
        pub(seq, S if seq % 2 else E)
    assert sub.dropped_by_topic() == {S: 1, E: 1} and sub.queued_by_topic() == {S: 2, E: 2}
    assert invariant_holds(sub, published)
    assert tagged([sub.get_nowait()]) == [("S", 3)]
    sub.put_nowait("marker")  # not an event: counted in put_count, delivered and dropped only
    assert invariant_holds(sub, published) and sub.queued_by_topic() == {S: 1, E: 2}
    for seq in range(7, 10):  # S7 E8 S9: drop E4, S5, E6
        pub(seq, S if seq % 2 else E)
    assert tagged(sub.drain(2)) == ["marker", ("S", 7)]
    pub(10, E)
    pub(11, S)
    pub(12, E)  # drops E8
    assert sub.delivered_by_topic() == {S: 2, E: 0}
    assert sub.dropped_by_topic() == {S: 2, E: 4}
    assert sub.full()
    with pytest.raises(queue.Full):  # a hand put never drops: it waits for room or raises
        sub.put(evt(99, C), timeout=0.01)
    assert tagged(sub.drain(1)) == [("S", 9)]
    sub.put(evt(99, C))  # an event put by hand counts under its own topic
    assert tagged(sub.drain()) == [("E", 10), ("S", 11), ("E", 12), ("R", 99)]
    assert invariant_holds(sub, {**published, C: 1})
    assert sub.delivered_by_topic() == {S: 4, E: 2, C: 1}
    assert sub.delivered + sub.dropped + len(sub) == sum(published.values()) + sub.put_count
    assert sub.take_lost_ranges() == {("run1", "agent6"): [(1, 2), (4, 6), (8, 8)]}


def test_one_topic_subscription_counts_per_topic_too_also_after_puts() -> None:
    bus = RunBus()
    sub = bus.subscribe(S, "ui", maxlen=2)
    for seq in range(1, 5):
        bus.publish(evt(seq))
    assert sub.drain(1) and sub.delivered_by_topic() == {S: 1} and sub.dropped_by_topic() == {S: 2}
    sub.put_nowait("stop")
    bus.publish(evt(5))  # drops S4, the marker waits
    bus.publish(evt(6))  # drops the marker
    assert sub.dropped == 4 and sub.dropped_by_topic() == {S: 3}
    assert sub.get() is not None and invariant_holds(sub, {S: 6})
    assert bus.overflow_stats() == {"STEP_APPENDED:ui": 4}  # the marker's drop is under the key as before


def test_stats_are_per_topic_key_and_survive_retirement() -> None:
    bus = RunBus()
    sub = bus.subscribe_topics((S, E), "ui", maxlen=2)
    for seq, topic in enumerate([S, E, S, E, S], start=1):  # drops S1, E2, S3
        bus.publish(evt(seq, topic))
    assert bus.overflow_stats() == {"STEP_APPENDED:ui": 2, "EPISODE_FINALIZED:ui": 1}
    assert bus.queue_sizes() == {"STEP_APPENDED:ui": 1, "EPISODE_FINALIZED:ui": 1}
    sub.drain()
    assert bus.queue_sizes() == {"STEP_APPENDED:ui": 0, "EPISODE_FINALIZED:ui": 0}
    bus.reset_overflow_stats()
    assert bus.overflow_stats() == {}
    for seq, topic in enumerate([E, E, E], start=6):  # drops E6
        bus.publish(evt(seq, topic))
    assert bus.overflow_stats() == {"EPISODE_FINALIZED:ui": 1}
    bus.subscribe(S, "ui")  # retires it: its counts stay under its keys
    assert bus.overflow_stats() == {"EPISODE_FINALIZED:ui": 1}
    assert sub.dropped_by_topic() == {S: 2, E: 2}  # the subscription's own counts are never reset


def test_lost_ranges_are_per_stream_across_topics() -> None:
    bus = RunBus()
    sub = bus.subscribe_topics((S, E), "ui", maxlen=3)
    for seq, topic in enumerate([S, S, E, S, S, E, S], start=1):
        bus.publish(evt(seq, topic))
    bus.publish(evt(1, S, agent="agent7"))  # drops 5 of agent6
    assert tagged(sub.drain()) == [("E", 6), ("S", 7), ("S", 1)]
    assert sub.take_lost_ranges() == {("run1", "agent6"): [(1, 5)]}  # one range spans both topics


def test_overflow_notices_name_the_topics_of_what_was_dropped() -> None:
    bus = RunBus(overflow_notice_interval_s=3600.0)
    notices = bus.subscribe(Topic.OVERFLOW, "debug-pane", maxlen=None)
    bus.subscribe_topics((S, E), "ui", maxlen=2)
    bus.publish(evt(1, S))
    bus.publish(evt(2, E))
    bus.publish(evt(3, S))  # drops S1: reported at once
    (first,) = notices.drain()
    assert first.payload["subscription"] == "STEP_APPENDED:ui"
    assert first.payload["topic"] == "STEP_APPENDED" and first.payload["topics"] == ["STEP_APPENDED"]
    assert first.payload["lost_ranges"] == [[1, 1]]
    for seq, topic in enumerate([S, E, S], start=4):  # drops E2, S3, S4 of agent6
        bus.publish(evt(seq, topic))
    bus.publish(evt(1, E, agent="agent7"))  # drops E5 of agent6
    bus.publish(evt(2, E, agent="agent7"))  # drops S6 of agent6
    bus.publish(evt(3, E, agent="agent7"))  # drops E1 of agent7
    assert bus.flush_overflow_notices(force=True) == 2
    by_stream = {n.stream: n.payload for n in notices.drain()}
    six = by_stream[("run1", "agent6")]
    assert six["subscription"] == "STEP_APPENDED+EPISODE_FINALIZED:ui"  # in the subscription's topic order
    assert six["topics"] == ["STEP_APPENDED", "EPISODE_FINALIZED"] and six["topic"] == "STEP_APPENDED"
    assert six["lost_ranges"] == [[2, 6]] and six["dropped_total"] == 7
    seven = by_stream[("run1", "agent7")]
    assert seven["subscription"] == "EPISODE_FINALIZED:ui" and seven["lost_ranges"] == [[1, 1]]


def test_a_shared_waker_wakes_for_every_topic_and_a_blocking_get_returns_any() -> None:
    bus = RunBus()
    waker = Waker()
    sub = bus.subscribe_topics((S, C), "db", maxlen=None, waker=waker)
    got: list[Any] = []
    started = threading.Event()

    def consumer() -> None:
        started.set()
        got.append(sub.get(timeout=30.0))

    thread = threading.Thread(target=consumer)
    thread.start()
    assert started.wait(5.0)
    bus.publish(evt(1, C))
    thread.join(10.0)
    assert not thread.is_alive() and tagged(got) == [("R", 1)]
    bus.publish(evt(2, S))
    assert waker.wait(5.0) is True and tagged(sub.drain()) == [("S", 2)]


def test_a_marker_sits_exactly_behind_everything_published_before_it_under_concurrent_publishers() -> None:
    bus = RunBus()
    topics = (S, E, C)
    sub = bus.subscribe_topics(topics, "sink", maxlen=None)
    streams = [("r0", "a0"), ("r0", "a1"), ("r1", None)]
    per_stream = 4000
    started = {s: 0 for s in streams}  # the last seq_id a publisher began to publish
    returned = {s: 0 for s in streams}  # the last seq_id whose publish() returned
    go = threading.Event()
    resume = threading.Event()  # publishers pause half-way once, so some markers surely land mid-run
    halfway = {s: threading.Event() for s in streams}

    def publisher(stream: tuple[str, str | None]) -> None:
        go.wait(10.0)
        for seq in range(1, per_stream + 1):
            if seq == per_stream // 2:
                halfway[stream].set()
                resume.wait(10.0)
            started[stream] = seq
            bus.publish(evt(seq, topics[seq % 3], run=stream[0], agent=stream[1]))
            returned[stream] = seq

    threads = [threading.Thread(target=publisher, args=(s,)) for s in streams]
    for t in threads:
        t.start()
    go.set()
    bounds: list[tuple[dict[Any, int], dict[Any, int]]] = []  # per marker: (returned before, started after)
    while (any(t.is_alive() for t in threads) and len(bounds) < 1_000_000) or not bounds:
        before = dict(returned)
        sub.put_nowait(("marker", len(bounds)))  # lossless: never blocks, never raises
        bounds.append((before, dict(started)))
        if not resume.is_set() and all(e.is_set() for e in halfway.values()):
            resume.set()
    for t in threads:
        t.join(30.0)
    items = sub.drain()
    ahead = {s: 0 for s in streams}  # events of each stream ahead of the current position
    markers_seen = interleaved = 0
    for item in items:
        if isinstance(item, TelemetryEvent):
            assert item.seq_id == ahead[item.stream] + 1  # each stream in order, nothing missing
            ahead[item.stream] = item.seq_id
            continue
        assert item == ("marker", markers_seen)  # markers in put order
        before, started_after = bounds[markers_seen]
        for stream in streams:  # every event published before the put is ahead of it; none begun after it
            assert before[stream] <= ahead[stream] <= started_after[stream]
        markers_seen += 1
        interleaved += 0 < sum(ahead.values()) < per_stream * len(streams)
    assert markers_seen == len(bounds) and interleaved > 0  # some markers landed mid-publishing
    events = [e for e in items if isinstance(e, TelemetryEvent)]
    assert len(events) == per_stream * len(streams) and sub.dropped == 0
    assert invariant_holds(sub, {t: sum(1 for e in events if e.topic is t) for t in topics})


def test_flush_by_marker_waits_for_what_was_published_before_it() -> None:
    """The pattern a consumer uses for flush(): put a marker, wait until its thread reaches it."""
    bus = RunBus()
    waker = Waker()
    sub = bus.subscribe_topics((S, E), "sink", maxlen=None, waker=waker)
    processed: list[TelemetryEvent] = []
    stop = threading.Event()

    class Flush:
        def __init__(self) -> None:
            self.done = threading.Event()

    def consumer() -> None:
        while not stop.is_set():
            waker.wait(5.0)
            for item in sub.drain():
                if isinstance(item, Flush):
                    item.done.set()
                else:
                    processed.append(item)

    thread = threading.Thread(target=consumer)
    thread.start()
    try:
        for seq in range(1, 501):
            bus.publish(evt(seq, S if seq % 5 else E))
        marker = Flush()
        sub.put_nowait(marker)
        assert marker.done.wait(10.0)
        assert [e.seq_id for e in processed] == list(range(1, 501))
    finally:
        stop.set()
        waker.notify()
        thread.join(10.0)
    assert not thread.is_alive()
