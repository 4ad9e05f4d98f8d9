from __future__ import annotations

import threading
from typing import Any

import pytest

from gym_gui.telemetry import run_bus as run_bus_module
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.run_bus import RunBus, Subscription, Waker, get_bus

TS = "2026-01-01T00:00:00+00:00"


def evt(seq: int, *, topic: Topic = Topic.STEP_APPENDED, run: str = "run1", agent: str | None = "agent6") -> TelemetryEvent:
    return TelemetryEvent(topic=topic, run_id=run, agent_id=agent, seq_id=seq, ts_iso=TS, payload={"i": seq})


def seqs(events: list[TelemetryEvent]) -> list[int]:
    return [e.seq_id for e in events]


def test_drain_returns_oldest_first_and_respects_max_items() -> None:
    bus = RunBus()
    sub = bus.subscribe(Topic.STEP_APPENDED, "ui")
    for i in range(1, 6):
        bus.publish(evt(i))
    assert len(sub) == 5
    assert seqs(sub.drain(2)) == [1, 2]
    assert seqs(sub.drain()) == [3, 4, 5]
    assert sub.drain() == [] and len(sub) == 0
    assert sub.delivered == 5
    with pytest.raises(ValueError):
        sub.drain(-1)


def test_topics_are_delivered_only_to_their_subscribers() -> None:
    bus = RunBus()
    steps = bus.subscribe(Topic.STEP_APPENDED, "a")
    episodes = bus.subscribe(Topic.EPISODE_FINALIZED, "a")  # same id, other topic: allowed
    bus.publish(evt(1))
    bus.publish(evt(2, topic=Topic.EPISODE_FINALIZED))
    assert seqs(steps.drain()) == [1]
    assert seqs(episodes.drain()) == [2]


def test_run_and_agent_filters() -> None:
    bus = RunBus()
    everything = bus.subscribe(Topic.STEP_APPENDED, "all")
    run2 = bus.subscribe(Topic.STEP_APPENDED, "run2", run_id="run2")
    agent7 = bus.subscribe(Topic.STEP_APPENDED, "agent7", agent_id="agent7")
    exact = bus.subscribe(Topic.STEP_APPENDED, "run2-agent7", run_id="run2", agent_id="agent7")
    bus.publish(evt(1, run="run1", agent="agent6"))
    bus.publish(evt(2, run="run2", agent="agent6"))
    bus.publish(evt(3, run="run1", agent="agent7"))
    bus.publish(evt(4, run="run2", agent="agent7"))
    assert seqs(everything.drain()) == [1, 2, 3, 4]
    assert seqs(run2.drain()) == [2, 4]
    assert seqs(agent7.drain()) == [3, 4]
    assert seqs(exact.drain()) == [4]


def test_subscription_added_later_sees_only_later_events() -> None:
    bus = RunBus()
    bus.publish(evt(1))
    first = bus.subscribe(Topic.STEP_APPENDED, "first")
    bus.publish(evt(2))
    second = bus.subscribe(Topic.STEP_APPENDED, "second")
    bus.publish(evt(3))
    assert seqs(first.drain()) == [2, 3]
    assert seqs(second.drain()) == [3]


def test_resubscribing_replaces_unless_refused_and_unsubscribe_is_idempotent() -> None:
    bus = RunBus()
    first = bus.subscribe(Topic.STEP_APPENDED, "ui")
    bus.publish(evt(1))
    second = bus.subscribe(Topic.STEP_APPENDED, "ui")  # replaces: the old one keeps what it holds
    bus.publish(evt(2))
    assert first.closed and not second.closed
    assert seqs(first.drain()) == [1] and seqs(second.drain()) == [2]
    with pytest.raises(ValueError, match="STEP_APPENDED:ui"):
        bus.subscribe(Topic.STEP_APPENDED, "ui", replace=False)
    assert bus.subscriptions() == [second]
    bus.unsubscribe(Topic.STEP_APPENDED, "ui")
    bus.unsubscribe(Topic.STEP_APPENDED, "ui")
    bus.unsubscribe(Topic.OVERFLOW, "never-subscribed")
    again = bus.subscribe(Topic.STEP_APPENDED, "ui", replace=False)  # the id is free again
    bus.publish(evt(3))
    assert seqs(again.drain()) == [3]


@pytest.mark.parametrize("maxlen", [0, -3, 2.5])
def test_invalid_maxlen_is_rejected(maxlen: Any) -> None:
    with pytest.raises(ValueError):
        RunBus().subscribe(Topic.STEP_APPENDED, "ui", maxlen=maxlen)


def test_unsubscribed_subscription_gets_nothing_more_but_keeps_its_queue() -> None:
    bus = RunBus()
    sub = bus.subscribe(Topic.STEP_APPENDED, "ui")
    bus.publish(evt(1))
    bus.unsubscribe(Topic.STEP_APPENDED, "ui")
    bus.publish(evt(2))
    assert sub.closed
    assert seqs(sub.drain()) == [1]
    assert bus.queue_sizes() == {}


def test_drop_oldest_keeps_the_newest_and_reports_exact_lost_ranges() -> None:
    bus = RunBus()
    sub = bus.subscribe(Topic.STEP_APPENDED, "ui", maxlen=3)
    for i in range(1, 11):
        bus.publish(evt(i))
    assert seqs(sub.drain()) == [8, 9, 10]
    assert sub.dropped == 7
    assert sub.take_lost_ranges() == {("run1", "agent6"): [(1, 7)]}
    assert sub.take_lost_ranges() == {}  # reported once


def test_lost_ranges_never_span_a_delivered_event_and_are_kept_per_stream() -> None:
    bus = RunBus()
    sub = bus.subscribe(Topic.STEP_APPENDED, "ui", maxlen=2)
    for i in range(1, 5):  # 1, 2 dropped
        bus.publish(evt(i))
    assert seqs(sub.drain(1)) == [3]
    for i in range(5, 8):  # 4, 5 dropped; 4 follows the delivered 3, so a new range starts
        bus.publish(evt(i))
    bus.publish(evt(100, agent="agent7"))  # drops 6 of agent6
    bus.publish(evt(101, agent="agent7"))  # drops 7 of agent6
    bus.publish(evt(102, agent="agent7"))  # drops 100 of agent7
    assert seqs(sub.drain()) == [101, 102]
    assert sub.dropped == 7
    assert sub.take_lost_ranges() == {
        ("run1", "agent6"): [(1, 2), (4, 7)],
        ("run1", "agent7"): [(100, 100)],
    }


def test_lossless_subscription_never_drops() -> None:
    bus = RunBus()
    lossless = bus.subscribe(Topic.STEP_APPENDED, "db", maxlen=None)
    bounded = bus.subscribe(Topic.STEP_APPENDED, "ui", maxlen=10)
    for i in range(1, 20_001):
        bus.publish(evt(i))
    assert lossless.dropped == 0 and len(lossless) == 20_000
    assert seqs(lossless.drain()) == list(range(1, 20_001))
    assert bounded.dropped == 19_990
    assert bus.overflow_stats() == {"STEP_APPENDED:ui": 19_990}  # only counts > 0


def test_stats_are_keyed_topic_colon_subscriber() -> None:
    bus = RunBus()
    bus.subscribe(Topic.STEP_APPENDED, "ui-run1-agent6", maxlen=1)
    bus.subscribe(Topic.EPISODE_FINALIZED, "ui-run1-agent6")
    bus.publish(evt(1))
    bus.publish(evt(2))
    assert bus.queue_sizes() == {"STEP_APPENDED:ui-run1-agent6": 1, "EPISODE_FINALIZED:ui-run1-agent6": 0}
    assert bus.overflow_stats() == {"STEP_APPENDED:ui-run1-agent6": 1}


def test_overflow_notice_names_subscriber_stream_and_range() -> None:
    bus = RunBus(overflow_notice_interval_s=3600.0)
    notices = bus.subscribe(Topic.OVERFLOW, "debug-pane", maxlen=None)
    bus.subscribe(Topic.STEP_APPENDED, "ui", maxlen=2)
    for i in range(1, 6):
        bus.publish(evt(i))
    first = notices.drain()
    assert len(first) == 1  # the first drop is reported at once, the rest waits for the interval
    notice = first[0]
    assert notice.topic is Topic.OVERFLOW and notice.stream == ("run1", "agent6")
    assert notice.payload["subscription"] == "STEP_APPENDED:ui"
    assert notice.payload["subscriber_id"] == "ui"
    assert notice.payload["lost_ranges"] == [[1, 1]]
    # rate-limited: later drops are collected, not reported yet
    assert bus.flush_overflow_notices() == 0 and len(notices) == 0
    assert bus.flush_overflow_notices(force=True) == 1
    (second,) = notices.drain()
    assert second.payload["lost_ranges"] == [[2, 3]]
    assert second.payload["dropped_total"] == 3
    assert second.seq_id == 3


def test_overflow_notices_do_not_recurse_when_the_overflow_subscriber_overflows() -> None:
    bus = RunBus(overflow_notice_interval_s=0.0)
    notices = bus.subscribe(Topic.OVERFLOW, "tiny", maxlen=1)
    bus.subscribe(Topic.STEP_APPENDED, "ui", maxlen=1)
    for i in range(1, 50):
        bus.publish(evt(i, agent=f"a{i % 3}"))
    assert len(notices) == 1
    assert notices.dropped > 0
    assert bus.overflow_stats()["OVERFLOW:tiny"] == notices.dropped


def test_blinker_control_signals_and_a_failing_receiver_is_contained() -> None:
    bus = RunBus(overflow_notice_interval_s=0.0)
    seen: list[tuple[str, str]] = []

    def on_subscribed(sender: RunBus, subscription: Subscription) -> None:
        seen.append(("subscribed", subscription.key))
        raise RuntimeError("receiver bug")

    def on_unsubscribed(sender: RunBus, subscription: Subscription) -> None:
        seen.append(("unsubscribed", subscription.key))

    def on_overflow(sender: RunBus, subscription: Subscription, stream: Any, lost_ranges: Any) -> None:
        seen.append(("overflowed", f"{subscription.key} {stream} {lost_ranges}"))

    bus.subscribed.connect(on_subscribed)
    bus.unsubscribed.connect(on_unsubscribed)
    bus.overflowed.connect(on_overflow)
    bus.subscribe(Topic.STEP_APPENDED, "ui", maxlen=1)
    bus.publish(evt(1))
    bus.publish(evt(2))
    bus.unsubscribe(Topic.STEP_APPENDED, "ui")
    assert seen == [
        ("subscribed", "STEP_APPENDED:ui"),
        ("overflowed", "STEP_APPENDED:ui ('run1', 'agent6') [(1, 1)]"),
        ("unsubscribed", "STEP_APPENDED:ui"),
    ]


def test_streams_are_announced_once_each_in_order_of_first_event() -> None:
    bus = RunBus(overflow_notice_interval_s=0.0)
    opened: list[Any] = []
    bus.stream_opened.connect(lambda sender, stream: opened.append(stream), weak=False)
    bus.publish(evt(1))  # no subscriber at all: the stream is still seen
    bus.subscribe(Topic.STEP_APPENDED, "ui", maxlen=1)  # clears the route cache: a miss again, no repeat
    bus.publish(evt(2))
    bus.publish(evt(1, topic=Topic.EPISODE_FINALIZED, agent="agent7"))
    bus.publish(evt(3, run="run2", agent=None))
    bus.publish(evt(3))  # drops: the OVERFLOW notices name known streams and open none
    assert bus.flush_overflow_notices(force=True) == 0  # already sent by publish (interval 0)
    assert bus.overflow_stats()["STEP_APPENDED:ui"] == 2
    expected = [("run1", "agent6"), ("run1", "agent7"), ("run2", None)]
    assert opened == expected and bus.streams() == expected


def test_publish_rejects_what_is_not_an_event() -> None:
    with pytest.raises(TypeError, match="TelemetryEvent"):
        RunBus().publish({"topic": "STEP_APPENDED"})  # type: ignore[arg-type]


def test_wait_returns_when_another_thread_publishes() -> None:
    bus = RunBus()
    sub = bus.subscribe(Topic.STEP_APPENDED, "db", maxlen=None)
    assert sub.wait(0.01) is False
    waiting = threading.Event()
    result: list[bool] = []

    def consumer() -> None:
        waiting.set()
        result.append(sub.wait(30.0))

    thread = threading.Thread(target=consumer)
    thread.start()
    assert waiting.wait(5.0)
    bus.publish(evt(1))
    thread.join(10.0)
    assert not thread.is_alive()
    assert result == [True]
    assert sub.wait(0) is True  # data still queued


def test_shared_waker_wakes_on_any_of_its_subscriptions() -> None:
    bus = RunBus()
    waker = Waker()
    steps = bus.subscribe(Topic.STEP_APPENDED, "db", maxlen=None, waker=waker)
    done = bus.subscribe(Topic.RUN_COMPLETED, "db", maxlen=None, waker=waker)
    assert waker.wait(0.0) is False
    bus.publish(evt(1, topic=Topic.RUN_COMPLETED))
    assert waker.wait(5.0) is True
    assert seqs(done.drain()) == [1] and len(steps) == 0
    assert waker.wait(0.0) is False  # consumed
    waker.notify()  # a stop request wakes it too
    assert waker.wait(0.0) is True


def test_unsubscribe_while_another_thread_publishes() -> None:
    bus = RunBus()
    sub = bus.subscribe(Topic.STEP_APPENDED, "ui", maxlen=None)
    published = threading.Event()
    stop = threading.Event()
    count = [0]

    def publisher() -> None:
        seq = 0
        while not stop.is_set():
            seq += 1
            bus.publish(evt(seq))
            count[0] = seq
            if seq == 1000:
                published.set()

    thread = threading.Thread(target=publisher)
    thread.start()
    assert published.wait(10.0)
    bus.unsubscribe(Topic.STEP_APPENDED, "ui")
    frozen = len(sub)
    target = count[0] + 1000
    while count[0] < target and thread.is_alive():
        pass  # let the publisher make progress after the unsubscribe
    stop.set()
    thread.join(10.0)
    assert not thread.is_alive()
    assert len(sub) == frozen  # nothing queued after unsubscribe returned
    got = seqs(sub.drain())
    assert got == list(range(1, len(got) + 1))


def test_get_bus_is_a_process_wide_singleton() -> None:
    assert get_bus() is get_bus()
    assert isinstance(get_bus(), RunBus)
    assert run_bus_module.get_bus() is get_bus()


def test_subscribe_all_is_all_or_nothing() -> None:
    bus = RunBus()
    bus.subscribe(Topic.RUN_COMPLETED, "sink")
    with pytest.raises(ValueError, match="already subscribed"):
        bus.subscribe_all((Topic.STEP_APPENDED, Topic.EPISODE_FINALIZED, Topic.RUN_COMPLETED), "sink", maxlen=None,
                          replace=False)
    assert [s.key for s in bus.subscriptions()] == ["RUN_COMPLETED:sink"]  # the first two were undone
    subs = bus.subscribe_all((Topic.STEP_APPENDED, Topic.EPISODE_FINALIZED), "ui", maxlen=8, run_id="r")
    assert list(subs) == [Topic.STEP_APPENDED, Topic.EPISODE_FINALIZED]
    assert all(s.maxlen == 8 and s.run_id == "r" for s in subs.values())
    with pytest.raises(TypeError):  # arguments are checked before anything is subscribed or replaced
        bus.subscribe_all((Topic.STEP_APPENDED, "EPISODE_FINALIZED"), "ui")  # type: ignore[arg-type]
    assert [s.key for s in bus.subscriptions()] == ["RUN_COMPLETED:sink", "STEP_APPENDED:ui", "EPISODE_FINALIZED:ui"]
    assert all(not s.closed for s in subs.values())


def _bus_state(bus: RunBus, subs: list[Subscription]) -> tuple[Any, ...]:
    return tuple((seqs(s.drain()), s.dropped, s.take_lost_ranges()) for s in subs) + (bus.streams(),)


def test_publish_run_delivers_counts_and_warns_as_publishing_one_by_one(caplog: pytest.LogCaptureFixture) -> None:
    """A run of one stream's steps: lossless and bounded subscriptions, drops, lost ranges, the
    OVERFLOW notices, the streams seen and the gap warnings are those of ``publish`` in a loop."""
    runs = [[evt(i) for i in range(1, 6)], [evt(i) for i in (6, 7, 9, 12)], [evt(20, agent="agent7")],
            [evt(i, agent="agent7") for i in range(21, 30)], []]
    results = []
    for batched in (False, True):
        caplog.clear()
        bus = RunBus(overflow_notice_interval_s=0.0, gap_warning_interval_s=0.0)
        subs = [bus.subscribe(Topic.STEP_APPENDED, "all", maxlen=None), bus.subscribe(Topic.STEP_APPENDED, "ui", maxlen=4),
                bus.subscribe(Topic.OVERFLOW, "notices", maxlen=None)]
        for run in runs:
            if batched:
                bus.publish_run(run)
            else:
                for e in run:
                    bus.publish(e)
        gaps = [r.__dict__.get("gap", r.getMessage()) for r in caplog.records if "gap" in r.getMessage()]
        published = {e.seq_id for run in runs for e in run}
        noticed = sorted(seq for e in subs[2].drain() for low, high in e.payload.get("lost_ranges", ())  # what the
                         for seq in range(low, high + 1) if seq in published)  # notices name (one a run, not one an event)
        results.append((_bus_state(bus, subs[:2]), noticed, gaps))
    assert results[0] == results[1]
    state, notices, gaps = results[1]
    assert state[0][0] == [1, 2, 3, 4, 5, 6, 7, 9, 12, 20] + list(range(21, 30)) and state[1][1] == 15
    assert notices and len(gaps) == 2  # 7 -> 9 and 9 -> 12 (20 is another stream's first)
    with pytest.raises(TypeError):
        RunBus().publish_run([evt(1), "not an event"])  # type: ignore[list-item]


def test_a_streams_mixed_events_published_in_runs_arrive_as_published_one_by_one() -> None:
    """``publish_stream_events``: steps and episodes of one stream, in seq order, reach every
    subscription (lossless and bounded) exactly as ``publish`` in a loop delivers them, with the
    count of each topic; a bus without ``publish_run`` gets them one by one."""
    from gym_gui.telemetry.bus_publish import publish_stream_events

    ep = Topic.EPISODE_FINALIZED
    events = ([evt(i) for i in range(1, 11)] + [evt(11, topic=ep)] + [evt(i) for i in range(12, 15)]
              + [evt(15, topic=ep), evt(16, topic=ep), evt(17)])
    results = []
    for grouped in (False, True):
        bus = RunBus(overflow_notice_interval_s=0.0)
        subs = [bus.subscribe(t, name, maxlen=m) for t in (Topic.STEP_APPENDED, ep)
                for name, m in (("all", None), ("ui", 3))]
        if grouped:
            counts = publish_stream_events(bus, events)
        else:
            for e in events:
                bus.publish(e)
        results.append(_bus_state(bus, subs))
    assert results[0] == results[1]
    assert counts == {Topic.STEP_APPENDED: 14, ep: 3}

    class OneByOne:
        def __init__(self) -> None:
            self.got: list[TelemetryEvent] = []

        def publish(self, e: TelemetryEvent) -> None:
            self.got.append(e)

    plain = OneByOne()
    assert publish_stream_events(plain, events) == counts and plain.got == events
    assert publish_stream_events(RunBus(), []) == {}
