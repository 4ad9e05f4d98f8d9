"""EMBEDDING.md section 2 (run_bus): the API and behaviour the existing gym_gui callers rely on."""

from __future__ import annotations

import logging
import queue
import threading
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest

from gym_gui.telemetry import run_bus as run_bus_module
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.run_bus import RunBus, Subscription, get_bus, reset_bus
from gym_gui.telemetry.seq_ranges import SeqGapWarner

TS = "2025-01-01T00:00:00Z"
LOGGER = "gym_gui.telemetry.run_bus"
GAP = "Sequence gap detected in RunBus"


def evt(seq: int, *, topic: Topic = Topic.STEP_APPENDED, run: str = "r1", agent: str | None = "") -> TelemetryEvent:
    return TelemetryEvent(topic=topic, run_id=run, agent_id=agent, seq_id=seq, ts_iso=TS, payload={"seq": seq})


def gap_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.getMessage() == GAP]


def take_all_nowait(q: queue.Queue[Any]) -> list[Any]:
    items = []
    while True:
        try:
            items.append(q.get_nowait())
        except queue.Empty:
            return items


@pytest.fixture
def fresh_singleton() -> Iterator[None]:
    reset_bus()
    yield
    reset_bus()


# -- construction and subscriptions ---------------------------------------------------------------
def test_run_bus_takes_max_queue_positionally_and_logs_one_info_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger=LOGGER):
        bus = RunBus(16)
    assert [r.levelno for r in caplog.records if r.name == LOGGER] == [logging.INFO]
    assert bus.max_queue == 16 and RunBus().max_queue == 2048 and RunBus(max_queue=5).max_queue == 5
    q = bus.subscribe(Topic.STEP_APPENDED, "live-ui")
    assert q.maxsize == 16


def test_subscribe_returns_a_real_queue_that_is_also_our_subscription() -> None:
    bus = RunBus()
    q = bus.subscribe(Topic.STEP_APPENDED, "live-ui")
    assert isinstance(q, queue.Queue) and isinstance(q, Subscription)
    assert q.maxsize == 2048 and q.maxlen == 2048
    assert q.empty() and q.qsize() == 0 and not q.full()
    assert q  # truthy when empty, like a queue.Queue (`if q:` means "have a queue")
    with pytest.raises(queue.Empty) as raised:
        q.get_nowait()
    assert type(raised.value).__name__ == "Empty"  # consumers also test the class name


def test_subscribe_uses_the_bus_max_queue_and_drops_the_oldest() -> None:
    bus = RunBus(max_queue=3)
    q = bus.subscribe(Topic.STEP_APPENDED, "live-ui")
    for i in range(1, 6):
        bus.publish(evt(i))
    assert q.full() and q.qsize() == 3
    assert [e.seq_id for e in take_all_nowait(q)] == [3, 4, 5]
    assert bus.overflow_stats() == {"STEP_APPENDED:live-ui": 2}


@pytest.mark.parametrize("max_queue", [0, -1])
def test_subscribe_with_size_of_zero_or_less_is_unbounded(max_queue: int) -> None:
    bus = RunBus()
    q = bus.subscribe_with_size(Topic.STEP_APPENDED, "db-sink-steps", max_queue)
    assert q.maxsize == max_queue and q.maxlen is None
    for i in range(1, 5001):
        bus.publish(evt(i))
    assert q.qsize() == 5000 and not q.full() and bus.overflow_stats() == {}


def test_subscribe_with_size_bounds_the_queue_and_sizes_are_per_key() -> None:
    bus = RunBus()
    steps = bus.subscribe_with_size(Topic.STEP_APPENDED, "live-ui", 64)
    episodes = bus.subscribe_with_size(Topic.EPISODE_FINALIZED, "live-ui", 64)  # same id, other topic
    control = bus.subscribe_with_size(Topic.CONTROL, "live-ui-control", 32)
    assert (steps.maxsize, episodes.maxsize, control.maxsize) == (64, 64, 32)
    for i in range(1, 101):
        bus.publish(evt(i))
    bus.publish(evt(7, topic=Topic.CONTROL))
    assert bus.queue_sizes() == {"STEP_APPENDED:live-ui": 64, "EPISODE_FINALIZED:live-ui": 0,
                                 "CONTROL:live-ui-control": 1}
    assert bus.overflow_stats() == {"STEP_APPENDED:live-ui": 36}


def test_resubscribing_a_key_silently_replaces_it() -> None:
    bus = RunBus(max_queue=2)
    old = bus.subscribe(Topic.STEP_APPENDED, "db-sink-steps")
    for i in range(1, 4):  # one drop
        bus.publish(evt(i))
    new = bus.subscribe(Topic.STEP_APPENDED, "db-sink-steps")  # never raises
    assert new is not old and new.qsize() == 0
    bus.publish(evt(4))
    assert [e.seq_id for e in take_all_nowait(old)] == [2, 3]  # keeps what it held, nothing new
    assert [e.seq_id for e in take_all_nowait(new)] == [4]
    assert bus.overflow_stats() == {"STEP_APPENDED:db-sink-steps": 1}  # the key's count is kept
    assert list(bus.queue_sizes()) == ["STEP_APPENDED:db-sink-steps"]
    replaced = bus.subscribe_with_size(Topic.STEP_APPENDED, "db-sink-steps", 16384)
    assert replaced.maxsize == 16384 and bus.subscriptions() == [replaced]


def test_unsubscribe_forgets_the_key_keeps_the_queue_and_the_count() -> None:
    bus = RunBus(max_queue=1)
    q = bus.subscribe(Topic.RUN_COMPLETED, "registry")
    bus.publish(evt(1, topic=Topic.RUN_COMPLETED))
    bus.publish(evt(2, topic=Topic.RUN_COMPLETED))
    bus.unsubscribe(Topic.RUN_COMPLETED, "registry")
    bus.unsubscribe(Topic.RUN_COMPLETED, "registry")  # unknown key: no-op
    bus.unsubscribe(Topic.OVERFLOW, "nobody")
    bus.publish(evt(3, topic=Topic.RUN_COMPLETED))
    assert q.qsize() == 1 and q.get_nowait().seq_id == 2
    assert bus.queue_sizes() == {} and bus.overflow_stats() == {"RUN_COMPLETED:registry": 1}
    again = bus.subscribe(Topic.RUN_COMPLETED, "registry")
    bus.publish(evt(4, topic=Topic.RUN_COMPLETED))
    bus.publish(evt(5, topic=Topic.RUN_COMPLETED))
    assert again.qsize() == 1 and bus.overflow_stats() == {"RUN_COMPLETED:registry": 2}  # counts add up
    bus.reset_overflow_stats()
    assert bus.overflow_stats() == {}
    bus.publish(evt(6, topic=Topic.RUN_COMPLETED))
    assert bus.overflow_stats() == {"RUN_COMPLETED:registry": 1}
    assert again.dropped == 2  # the subscription's own accounting is not reset


def test_publish_delivers_by_topic_only_without_run_or_agent_filter() -> None:
    bus = RunBus()
    steps = bus.subscribe(Topic.STEP_APPENDED, "live-ui")
    episodes = bus.subscribe(Topic.EPISODE_FINALIZED, "live-ui")
    bus.publish(evt(1, run="r1", agent="a1"))
    bus.publish(evt(2, run="r2", agent=""))
    bus.publish(evt(3, topic=Topic.EPISODE_FINALIZED, run="r3"))
    assert [(e.run_id, e.seq_id) for e in take_all_nowait(steps)] == [("r1", 1), ("r2", 2)]
    assert [e.seq_id for e in take_all_nowait(episodes)] == [3]


# -- queue.Queue behaviour ------------------------------------------------------------------------
def test_get_with_a_timeout_raises_empty_and_is_woken_by_publish() -> None:
    bus = RunBus()
    q = bus.subscribe(Topic.STEP_APPENDED, "live-ui")
    with pytest.raises(queue.Empty):
        q.get(timeout=0.01)
    with pytest.raises(queue.Empty):
        q.get(block=False)
    waiting = threading.Event()
    got: list[TelemetryEvent] = []

    def consumer() -> None:
        waiting.set()
        got.append(q.get(timeout=30.0))  # would take 30 s if publish did not wake it

    thread = threading.Thread(target=consumer)
    thread.start()
    assert waiting.wait(5.0)
    bus.publish(evt(1))
    thread.join(10.0)
    assert not thread.is_alive() and [e.seq_id for e in got] == [1]
    assert q.delivered == 1


def test_several_blocked_getters_each_get_an_event() -> None:
    bus = RunBus()
    q = bus.subscribe(Topic.STEP_APPENDED, "workers", maxlen=None)
    results: list[int] = []
    lock = threading.Lock()
    started = threading.Barrier(5)

    def consumer() -> None:
        started.wait()
        item = q.get(timeout=30.0)
        with lock:
            results.append(item.seq_id)

    threads = [threading.Thread(target=consumer) for _ in range(4)]
    for t in threads:
        t.start()
    started.wait()
    for i in range(1, 5):
        bus.publish(evt(i))
    for t in threads:
        t.join(30.0)
    assert not any(t.is_alive() for t in threads)
    assert sorted(results) == [1, 2, 3, 4]


def test_put_task_done_and_join() -> None:
    bus = RunBus()
    q = bus.subscribe_with_size(Topic.STEP_APPENDED, "db-sink-steps", 2)
    bus.publish(evt(1))
    q.put_nowait("sentinel")  # a consumer may put its own items (e.g. a stop marker)
    assert q.full() and q.put_count == 1
    with pytest.raises(queue.Full):
        q.put_nowait("more")
    with pytest.raises(queue.Full):
        q.put("more", timeout=0.01)
    assert q.unfinished_tasks == 2
    assert q.get_nowait().seq_id == 1 and q.get_nowait() == "sentinel"
    joined = threading.Event()
    joiner = threading.Thread(target=lambda: (q.join(), joined.set()))
    joiner.start()
    q.task_done()
    assert not joined.is_set() and q.unfinished_tasks == 1
    q.task_done()
    joiner.join(10.0)
    assert joined.is_set()
    with pytest.raises(ValueError):
        q.task_done()


def test_a_blocked_put_is_released_by_a_consumer() -> None:
    bus = RunBus()
    q = bus.subscribe_with_size(Topic.STEP_APPENDED, "live-ui", 1)
    bus.publish(evt(1))
    done = threading.Event()
    putter = threading.Thread(target=lambda: (q.put("x", timeout=30.0), done.set()))
    putter.start()
    assert q.get(timeout=5.0).seq_id == 1
    putter.join(10.0)
    assert done.is_set() and q.get_nowait() == "x"


def test_a_drop_of_an_item_put_by_hand_is_counted() -> None:
    bus = RunBus()
    q = bus.subscribe_with_size(Topic.STEP_APPENDED, "live-ui", 1)
    q.put_nowait("mine")
    bus.publish(evt(1))
    assert q.dropped == 1 and q.take_lost_ranges() == {} and bus.overflow_stats() == {"STEP_APPENDED:live-ui": 1}
    assert q.delivered + q.dropped + q.qsize() == 1 + q.put_count


def test_queue_style_and_drain_consumers_side_by_side_under_concurrent_publishers() -> None:
    publishers, per_publisher = 4, 3000
    bus = RunBus(max_queue=64, overflow_notice_interval_s=0.001)
    queue_style = bus.subscribe(Topic.STEP_APPENDED, "live-ui")  # bounded 64: drops
    lossless = bus.subscribe_with_size(Topic.STEP_APPENDED, "db-sink-steps", 0)
    drained = bus.subscribe(Topic.STEP_APPENDED, "ui-drain", maxlen=32)
    mixed = bus.subscribe(Topic.STEP_APPENDED, "mixed", maxlen=16)
    got: dict[str, list[TelemetryEvent]] = defaultdict(list)
    start = threading.Barrier(publishers + 4)
    done = threading.Event()

    def publish(i: int) -> None:
        start.wait()
        for seq in range(1, per_publisher + 1):
            bus.publish(evt(seq, agent=f"a{i}"))

    def queue_consumer(q: Subscription, name: str) -> None:  # the existing app's loop, without sleeps
        start.wait()
        while not done.is_set():
            try:
                got[name].append(q.get(timeout=0.05))
                got[name].extend(take_all_nowait(q))
            except queue.Empty:
                pass

    def drain_consumer() -> None:
        start.wait()
        while not done.is_set():
            if drained.wait(0.05):
                got["ui-drain"].extend(drained.drain(max_items=8))

    def mixed_consumer() -> None:
        start.wait()
        n = 0
        while not done.is_set():
            n += 1
            try:
                got["mixed"].append(mixed.get_nowait() if n % 2 else mixed.get(timeout=0.01))
            except queue.Empty:
                pass
            got["mixed"].extend(mixed.drain(max_items=3))

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(publishers)]
    consumers = [threading.Thread(target=queue_consumer, args=(queue_style, "live-ui")),
                 threading.Thread(target=queue_consumer, args=(lossless, "db-sink-steps")),
                 threading.Thread(target=drain_consumer), threading.Thread(target=mixed_consumer)]
    for t in threads + consumers:
        t.start()
    for t in threads:
        t.join(60.0)
    done.set()
    for t in consumers:
        t.join(60.0)
    assert not any(t.is_alive() for t in threads + consumers)

    subs = {"live-ui": queue_style, "db-sink-steps": lossless, "ui-drain": drained, "mixed": mixed}
    got["live-ui"] += take_all_nowait(queue_style)
    got["db-sink-steps"] += take_all_nowait(lossless)
    got["ui-drain"] += drained.drain()
    got["mixed"] += mixed.drain()
    total = publishers * per_publisher
    assert lossless.dropped == 0 and len(got["db-sink-steps"]) == total
    for name, sub in subs.items():
        assert sub.delivered + sub.dropped + sub.qsize() == total, name
        assert len(got[name]) == sub.delivered, name
        lost = sub.take_lost_ranges()
        for i in range(publishers):
            stream = ("r1", f"a{i}")
            seen = [e.seq_id for e in got[name] if e.agent_id == f"a{i}"]
            assert seen == sorted(seen), f"{name}: per-stream order"
            lost_seqs = [s for a, b in lost.get(stream, []) for s in range(a, b + 1)]
            assert sorted(seen + lost_seqs) == list(range(1, per_publisher + 1)), f"{name} {stream}"
    assert bus.overflow_stats() == {f"STEP_APPENDED:{n}": s.dropped for n, s in subs.items() if s.dropped}
    assert queue_style.dropped > 0


# -- sequence tracking ----------------------------------------------------------------------------
def test_gap_warning_text_logger_and_extra(caplog: pytest.LogCaptureFixture) -> None:
    bus = RunBus()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        bus.publish(evt(5, agent="a1"))  # first event of the key: never logs
        bus.publish(evt(9, agent="a1"))
    (record,) = gap_records(caplog)
    assert record.levelno == logging.WARNING and record.name == LOGGER
    assert record.getMessage() == GAP
    assert (record.run_id, record.agent_id, record.gap, record.last_seq, record.seq_id) == ("r1", "a1", 3, 5, 9)
    assert record.suppressed == 0
    assert bus.sequence_stats() == {"r1:a1": 9}


def test_gap_tracking_rules(caplog: pytest.LogCaptureFixture) -> None:
    bus = RunBus(gap_warning_interval_s=0)  # every gap, as the existing bus does
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        bus.publish(evt(-1))  # first of r1/default, negative: no log; no subscriber: still tracked
        bus.publish(evt(0))  # +1: no gap
        bus.publish(evt(0))  # equal: nothing
        bus.publish(evt(-1))  # lower: nothing, and last goes backwards
        bus.publish(evt(1, topic=Topic.EPISODE_FINALIZED))  # topic ignored: -1 -> 1 is a gap of 1
        bus.publish(evt(1, agent=None))  # None and '' are both "default": 1 -> 1, nothing
        bus.publish(evt(0, run="r2"))  # first of r2: nothing
        bus.publish(evt(100, run="r2", topic=Topic.CONTROL))
    gaps = [(r.run_id, r.last_seq, r.seq_id, r.gap) for r in gap_records(caplog)]
    assert gaps == [("r1", -1, 1, 1), ("r2", 0, 100, 99)]
    assert bus.sequence_stats() == {"r1:default": 1, "r2:default": 100}
    assert bus.sequence_gaps == 2 and bus.gap_warnings_suppressed == 0


def test_gap_warnings_are_rate_limited_per_stream(caplog: pytest.LogCaptureFixture) -> None:
    bus = RunBus(gap_warning_interval_s=3600.0)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for seq in range(0, 100, 10):  # nine gaps on r1
            bus.publish(evt(seq))
        bus.publish(evt(0, run="r2"))
        bus.publish(evt(5, run="r2"))  # another stream has its own limit
    assert [(r.run_id, r.seq_id) for r in gap_records(caplog)] == [("r1", 10), ("r2", 5)]
    assert bus.sequence_gaps == 10 and bus.gap_warnings_suppressed == 8
    assert bus.sequence_stats() == {"r1:default": 90, "r2:default": 5}


def test_the_next_gap_warning_reports_how_many_were_suppressed(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    warner = SeqGapWarner(logging.getLogger(LOGGER), GAP, 1.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert warner.warn("r1", None, 1, 3)
        assert not warner.warn("r1", None, 3, 5) and not warner.warn("r1", None, 5, 9)
        now[0] = 1.5
        assert warner.warn("r1", None, 9, 11)
    assert [(r.seq_id, r.suppressed) for r in gap_records(caplog)] == [(3, 0), (11, 2)]
    assert (warner.gaps, warner.suppressed) == (4, 2)


def test_overflow_notices_of_the_bus_do_not_feed_the_gap_tracker(caplog: pytest.LogCaptureFixture) -> None:
    bus = RunBus(max_queue=1, overflow_notice_interval_s=0.0)
    notices = bus.subscribe(Topic.OVERFLOW, "watch", maxlen=None)
    bus.subscribe(Topic.STEP_APPENDED, "live-ui")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for seq in range(1, 30):
            bus.publish(evt(seq))
    assert len(notices) > 1  # the bus published notices for the same stream, with older seq_ids
    assert gap_records(caplog) == [] and bus.sequence_stats() == {"r1:default": 29}


# -- the singleton --------------------------------------------------------------------------------
def test_get_bus_is_lazy_and_reset_bus_forgets_it(fresh_singleton: None) -> None:
    assert run_bus_module._default_bus is None
    bus = get_bus()
    assert get_bus() is bus and bus.max_queue == 2048
    held = bus.subscribe(Topic.STEP_APPENDED, "live-ui")
    reset_bus()
    fresh = get_bus()
    assert fresh is not bus and fresh.queue_sizes() == {}
    bus.publish(evt(1))  # whoever holds the old bus keeps it
    assert held.qsize() == 1
