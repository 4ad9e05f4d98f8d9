"""GapTracker and read_gaps on a real store: paging, retry until persisted, give-up, once-only delivery."""

from __future__ import annotations

from typing import Any

from gym_gui.live.live_gaps import GapTracker, read_gaps
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore

STEP, EPISODE = Topic.STEP_APPENDED, Topic.EPISODE_FINALIZED


def read_once(gaps: GapTracker, store: TelemetrySQLiteStore, limit: int, *, run_completed: bool = False
              ) -> tuple[list[TelemetryEvent], bool]:
    plan = gaps.plan("run1", "agent1", limit)
    return gaps.apply(plan, read_gaps(store, plan), run_completed=run_completed)


def test_a_lost_range_is_read_in_pages_of_the_limit_and_only_its_topic(
        store: TelemetrySQLiteStore, factory: Any) -> None:
    events = factory("run1", "agent1").episodes(10, 4)  # seq 0..49: 4 steps then an episode, ten times
    store.write_events(events)
    gaps = GapTracker()
    assert gaps.add_lost(STEP, [(2, 43)]) == 42 and gaps.pending() == 42
    got: list[TelemetryEvent] = []
    pages = 0
    while gaps:
        page, moved = read_once(gaps, store, limit=7)
        assert moved and len(page) <= 7
        got += page
        pages += 1
    assert got == [e for e in events if e.topic is STEP and 2 <= e.seq_id <= 43]
    assert pages == 6 and gaps.pending() == 0 and gaps.unrecoverable == 0


def test_what_is_not_persisted_yet_stays_open_until_it_is(store: TelemetrySQLiteStore, factory: Any) -> None:
    events = factory("run1", "agent1").episodes(2, 9)  # seq 0..19
    gaps = GapTracker()
    gaps.add_lost(STEP, [(0, 15)])
    gaps.add_lost(EPISODE, [(9, 9)])
    assert read_once(gaps, store, limit=100) == ([], False)  # nothing stored
    store.write_events(events[:5])
    page, moved = read_once(gaps, store, limit=100)
    assert moved and page == events[:5] and gaps.pending() == 11 + 1
    store.write_events(events[5:])
    page, moved = read_once(gaps, store, limit=100)
    assert page == [e for e in events[5:16] if e.topic is STEP or e.seq_id == 9]
    assert not gaps and gaps.pending() == 0


def test_a_terminal_run_gives_up_what_is_beyond_the_stored_seq_ids(
        store: TelemetrySQLiteStore, factory: Any) -> None:
    a1 = factory("run1", "agent1")
    steps = [a1.step(0, i) for i in range(30)]
    store.write_events(steps[:10] + [factory("run1", "agent0").completed()])
    gaps = GapTracker()
    gaps.add_lost(STEP, [(5, 24)])
    page, _moved = read_once(gaps, store, limit=100)  # the owner has not seen the completion yet
    assert page == steps[5:10] and gaps.pending() == 15 and gaps.unrecoverable == 0
    assert read_once(gaps, store, limit=100, run_completed=True) == ([], True)
    assert not gaps and gaps.pending() == 0 and gaps.unrecoverable == 15


def test_a_stall_check_lets_each_event_through_once_live_or_from_sqlite(
        store: TelemetrySQLiteStore, factory: Any) -> None:
    events = factory("run1", "agent1").episodes(2, 4)  # seq 0..9
    store.write_events(events)
    gaps = GapTracker()
    gaps.add_check(2, 7)
    gaps.add_lost(STEP, [(3, 3)])  # a check may overlap a lost range
    assert gaps.pending() == 1  # checks are not losses
    assert gaps.admit([events[2]]) == [events[2]]  # still queued live when the stream resumed
    page, _moved = read_once(gaps, store, limit=100)
    assert page == [events[3], events[4], events[5], events[6], events[7]]  # 2 came live, 3 only once
    assert gaps.admit([events[4], events[8]]) == [events[8]]  # a late live copy of 4 is dropped
    assert gaps.checks_open == 1
    gaps.retire_checks(horizon=7)  # seq 7 may still come live
    assert gaps.checks_open == 1
    gaps.retire_checks(horizon=8)
    assert gaps.checks_open == 0 and gaps.admit([events[4]]) == [events[4]]


def test_without_a_reader_ranges_are_counted(factory: Any) -> None:
    gaps = GapTracker()
    assert gaps.count_unrecoverable([(1, 4), (9, 9)]) == 5
    assert gaps.unrecoverable == 5 and not gaps
