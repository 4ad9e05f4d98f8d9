"""DebugModel (the debug pane's Qt-free model) over a real RunBus, ticked by hand: subscriptions per
topic, sources, OVERFLOW notices listed per subscription and stream, refresh deadlines."""

from __future__ import annotations

from typing import Any

import pytest

from event_factory import EventFactory
from gym_gui.live.debug_model import ERROR, MAX_RANGES_KEPT, OK, WARN, DebugModel
from gym_gui.telemetry.events import Topic
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.telemetry.subscription import Waker


def test_subscriptions_are_rows_per_topic_with_their_counts(bus: RunBus, factory: type[EventFactory]) -> None:
    ui = bus.subscribe(Topic.STEP_APPENDED, "ui-run1-agent1", maxlen=4, run_id="run1", agent_id="agent1")
    bus.subscribe_topics((Topic.RUN_STARTED, Topic.STEP_APPENDED), "both", maxlen=3)
    f = factory("run1", "agent1")
    bus.publish(f.started())
    for i in range(10):
        bus.publish(f.step(0, i))
    ui.drain(max_items=1)
    model = DebugModel(bus)
    model.refresh()
    rows = {(r.cells[0], r.cells[1]): r for r in model.subscription_rows}
    assert rows[("STEP_APPENDED", "ui-run1-agent1")].cells[2:] == ("run1/agent1", "3", "4", "6", "1")
    assert rows[("STEP_APPENDED", "ui-run1-agent1")].severity == WARN
    # One subscription of two topics: a row per topic, its own counts, the capacity shared.
    assert rows[("RUN_STARTED", "both")].cells[2:] == ("*", "0", "3 shared", "1", "0")
    assert rows[("STEP_APPENDED", "both")].cells[2:] == ("*", "3", "3 shared", "7", "0")
    assert model.status_text.startswith("2 subscriptions, 14 events dropped in total")


def test_sources_are_flattened_rejects_first_and_a_broken_one_is_an_error_row(bus: RunBus) -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("proxy gone")

    model = DebugModel(bus, sources={"proxy": lambda: {"lines_read": 4, "rejected": {"b": 1, "a": 2},
                                                        "rejected_total": 3, "rate": 2.345, "ok": True}})
    model.add_source("broken", broken)
    model.add_source("weird", lambda: [1])  # type: ignore[arg-type, return-value]
    model.refresh()
    cells = [r.cells for r in model.source_rows]
    assert cells[:5] == [("proxy", "rejected_total", "3"), ("proxy", "rejected.a", "2"), ("proxy", "rejected.b", "1"),
                         ("proxy", "lines_read", "4"), ("proxy", "rate", "2.3")]
    severities = {r.cells[:2]: r.severity for r in model.source_rows}
    assert severities[("proxy", "rejected_total")] == WARN and severities[("proxy", "lines_read")] == OK
    assert severities[("broken", "error")] == ERROR and severities[("weird", "error")] == ERROR
    assert ("broken", "error", "RuntimeError: proxy gone") in cells
    model.remove_source("broken")
    model.remove_source("broken")
    assert model.source_names() == ["proxy", "weird"]


def test_overflow_notices_are_listed_per_subscription_and_stream_with_their_lost_ranges(
        factory: type[EventFactory]) -> None:
    bus = RunBus(overflow_notice_interval_s=0.0)
    waker = Waker()
    model = DebugModel(bus)
    model.start(0.0, waker=waker)
    assert any(s.subscriber_id == "debug-pane" and s.topics == (Topic.OVERFLOW,) for s in bus.subscriptions())
    bus.subscribe(Topic.STEP_APPENDED, "slow", maxlen=2)
    f, g = factory("run1", "agent1", first_seq=1), factory("run2", "agent1", first_seq=1)
    for i in range(5):
        bus.publish(f.step(0, i))  # seq 1..5: 1, 2 and 3 are evicted, one notice each (no rate limit)
    bus.publish(g.step(0, 0))  # evicts run1's seq 4
    assert waker.pending  # a notice wakes the pump
    version = model.version
    model.tick(0.1)  # before the refresh is due: the notices are taken in anyway
    assert model.version > version
    rows = {r.cells[:2]: r for r in model.notice_rows}
    run1 = rows[("STEP_APPENDED:slow", "run1/agent1")]
    assert run1.cells[2:5] == ("1-4", "4", "4")  # four notices of one burst: one range and run1.severity == WARN
    assert model.notice_rows[0].cells[1] == "run1/agent1" and model.notice_count() == 1
    assert model.notices_seen == 4


def test_a_long_burst_keeps_the_newest_ranges_and_counts_all(factory: type[EventFactory]) -> None:
    bus = RunBus(overflow_notice_interval_s=0.0)
    model = DebugModel(bus)
    model.start(0.0)
    sub = bus.subscribe(Topic.STEP_APPENDED, "slow", maxlen=1)
    f = factory("run1", "agent1", first_seq=1)
    for i in range(30):
        bus.publish(f.step(0, i))
        if i % 3 == 0:
            sub.drain()  # breaks the lost seq_ids into separate ranges
    model.tick(0.1)
    (row,) = model.notice_rows
    shown = row.cells[2]
    assert shown.startswith("... ") and shown.count(",") == MAX_RANGES_KEPT  # the earlier ones are summed up
    assert int(row.cells[3]) == sub.dropped


def test_refreshes_are_due_every_interval_and_flush_what_a_burst_left_pending(factory: type[EventFactory]) -> None:
    bus = RunBus(overflow_notice_interval_s=60.0)  # only the first drop is noticed at once
    model = DebugModel(bus, refresh_interval_s=0.5)
    assert model.next_deadline_s(0.0) is None  # not started: no deadline
    model.start(10.0)
    assert model.refreshes == 1 and model.next_deadline_s(10.0) == 10.5
    bus.subscribe(Topic.STEP_APPENDED, "slow", maxlen=2)
    f = factory("run1", "agent1", first_seq=1)
    for i in range(8):
        bus.publish(f.step(0, i))
    model.tick(10.2)
    assert model.refreshes == 1 and [r.cells[2] for r in model.notice_rows] == ["1"]
    model.tick(10.5)  # due: a refresh (the bus's rate limit still holds the rest back)
    assert model.refreshes == 2 and model.next_deadline_s(10.5) == 11.0
    bus.flush_overflow_notices(force=True)  # (as the rate limit would allow later)
    model.tick(10.6)
    assert [r.cells[2:5] for r in model.notice_rows] == [("1-6", "6", "2")]
    model.stop()
    model.stop()
    assert model.next_deadline_s(11.0) is None and not model.started
    assert not any(s.subscriber_id == "debug-pane" for s in bus.subscriptions())


def test_bad_settings_are_refused(bus: RunBus) -> None:
    for bad in (0, -1.0, float("nan"), "1"):
        with pytest.raises(ValueError):
            DebugModel(bus, refresh_interval_s=bad)  # type: ignore[arg-type]
