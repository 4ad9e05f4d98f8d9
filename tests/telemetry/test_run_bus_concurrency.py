"""Many publishing threads, draining consumers and subscription churn: nothing is miscounted."""

from __future__ import annotations

import queue
import threading
from collections import defaultdict

from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.run_bus import RunBus, Subscription

TS = "2026-01-01T00:00:00+00:00"
PUBLISHERS = 8
EVENTS_PER_PUBLISHER = 6_000
RUNS = ("run-a", "run-b")


def publisher_stream(index: int) -> tuple[str, str]:
    return RUNS[index % 2], f"agent{index}"


def test_counts_and_order_hold_under_concurrent_publish_drain_and_churn() -> None:
    bus = RunBus(overflow_notice_interval_s=0.001)
    steady: dict[str, tuple[Subscription, str | None, str | None]] = {}
    for name, maxlen, run_id, agent_id in [
        ("lossless-all", None, None, None),
        ("bounded-all", 64, None, None),
        ("bounded-run-a", 32, "run-a", None),
        ("lossless-agent3", None, None, "agent3"),
        ("bounded-run-b-agent1", 8, "run-b", "agent1"),
    ]:
        sub = bus.subscribe(Topic.STEP_APPENDED, name, maxlen=maxlen, run_id=run_id, agent_id=agent_id)
        steady[name] = (sub, run_id, agent_id)
    overflow_notices = bus.subscribe(Topic.OVERFLOW, "debug", maxlen=None)

    drained: dict[str, list[TelemetryEvent]] = defaultdict(list)
    churn_seen: list[tuple[Subscription, list[TelemetryEvent]]] = []
    start = threading.Barrier(PUBLISHERS + 3)
    publishers_done = threading.Event()

    def publish(index: int) -> None:
        run_id, agent_id = publisher_stream(index)
        start.wait()
        for seq in range(1, EVENTS_PER_PUBLISHER + 1):
            bus.publish(TelemetryEvent(Topic.STEP_APPENDED, run_id, agent_id, seq, TS, {}))

    def consume() -> None:
        start.wait()
        while not publishers_done.is_set():
            for name, (sub, _, _) in steady.items():
                drained[name].extend(sub.drain(max_items=16))

    def churn() -> None:
        start.wait()
        n = 0
        while not publishers_done.is_set():
            n += 1
            sub = bus.subscribe(Topic.STEP_APPENDED, f"churn-{n}", maxlen=16 if n % 2 else None)
            got = sub.drain()
            bus.unsubscribe(Topic.STEP_APPENDED, sub.subscriber_id)
            got += sub.drain()
            churn_seen.append((sub, got))

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(PUBLISHERS)]
    helpers = [threading.Thread(target=consume), threading.Thread(target=churn)]
    for t in threads + helpers:
        t.start()
    start.wait()
    for t in threads:
        t.join(60.0)
    publishers_done.set()
    for t in helpers:
        t.join(60.0)
    assert not any(t.is_alive() for t in threads + helpers)

    published_per_stream = {publisher_stream(i): EVENTS_PER_PUBLISHER for i in range(PUBLISHERS)}
    for name, (sub, run_id, agent_id) in steady.items():
        drained[name].extend(sub.drain())
        matching = sum(
            n for (r, a), n in published_per_stream.items()
            if (run_id is None or r == run_id) and (agent_id is None or a == agent_id)
        )
        assert sub.delivered + sub.dropped + len(sub) == matching, name
        assert len(drained[name]) == sub.delivered, name
        if sub.maxlen is None:
            assert sub.dropped == 0, name
        lost = sub.take_lost_ranges()
        per_stream: dict[tuple[str, str | None], list[int]] = defaultdict(list)
        for e in drained[name]:
            assert sub.matches(e.run_id, e.agent_id), name
            per_stream[e.stream].append(e.seq_id)
        for stream in set(per_stream) | set(lost):
            got = per_stream.get(stream, [])
            assert got == sorted(got) and len(set(got)) == len(got), f"{name} order {stream}"
            lost_seqs = [s for a, b in lost.get(stream, []) for s in range(a, b + 1)]
            # delivered and lost are disjoint and together are exactly what was published
            assert sorted(got + lost_seqs) == list(range(1, EVENTS_PER_PUBLISHER + 1)), f"{name} {stream}"
    # a bounded subscription this small must have dropped under this load
    assert steady["bounded-run-b-agent1"][0].dropped > 0

    for sub, got in churn_seen:
        assert sub.delivered + sub.dropped + len(sub) <= PUBLISHERS * EVENTS_PER_PUBLISHER
        assert len(got) == sub.delivered
        per_stream_seqs: dict[tuple[str, str | None], list[int]] = defaultdict(list)
        for e in got:
            per_stream_seqs[e.stream].append(e.seq_id)
        for stream_seqs in per_stream_seqs.values():
            assert stream_seqs == sorted(stream_seqs)

    bus.flush_overflow_notices(force=True)
    notices = overflow_notices.drain()
    noticed: dict[str, int] = defaultdict(int)
    for notice in notices:
        noticed[notice.payload["subscription"]] += sum(b - a + 1 for a, b in notice.payload["lost_ranges"])
    for name, (sub, _, _) in steady.items():
        # each stream's events are contiguous seq_ids, so noticed ranges count the drops exactly
        assert noticed.get(sub.key, 0) == sub.dropped, name


def test_resubscribing_one_key_under_load_hands_each_event_to_exactly_one_generation() -> None:
    """Re-subscribing replaces atomically: every published event reaches exactly one of the key's
    subscriptions (delivered or counted as a lost seq_id there), and the key's overflow count is
    the sum of its generations' drops."""
    publishers, per_publisher = 4, 4_000
    bus = RunBus(max_queue=8)
    generations: list[Subscription] = [bus.subscribe(Topic.STEP_APPENDED, "live-ui")]
    start = threading.Barrier(publishers + 1)
    done = threading.Event()

    def publish(index: int) -> None:
        start.wait()
        for seq in range(1, per_publisher + 1):
            bus.publish(TelemetryEvent(Topic.STEP_APPENDED, "run-a", f"agent{index}", seq, TS, {}))

    taken: list[list[TelemetryEvent]] = [[]]

    def restart() -> None:  # a consumer that keeps restarting: takes a few, re-subscribes the same id
        start.wait()
        while not done.is_set():
            sub = generations[-1]
            taken[-1].extend(sub.drain(max_items=4))
            try:
                taken[-1].append(sub.get_nowait())
            except queue.Empty:
                pass
            generations.append(bus.subscribe(Topic.STEP_APPENDED, "live-ui"))
            taken.append([])
            taken[-2].extend(sub.drain())  # the old one keeps what it held

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(publishers)]
    churn = threading.Thread(target=restart)
    for t in threads + [churn]:
        t.start()
    for t in threads:
        t.join(60.0)
    done.set()
    churn.join(60.0)
    assert not any(t.is_alive() for t in threads + [churn])
    taken[-1].extend(generations[-1].drain())

    assert len(generations) > 2
    assert all(sub.closed for sub in generations[:-1]) and not generations[-1].closed
    per_stream: dict[tuple[str, str | None], list[int]] = defaultdict(list)
    for sub, got in zip(generations, taken):
        assert len(got) == sub.delivered and len(sub) == 0
        for e in got:
            per_stream[e.stream].append(e.seq_id)
        for stream, ranges in sub.take_lost_ranges().items():
            per_stream[stream].extend(s for a, b in ranges for s in range(a, b + 1))
    for i in range(publishers):
        assert sorted(per_stream[("run-a", f"agent{i}")]) == list(range(1, per_publisher + 1))
    assert bus.overflow_stats() == {"STEP_APPENDED:live-ui": sum(s.dropped for s in generations)}
