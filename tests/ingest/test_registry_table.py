"""RunStateTable (the registry's Qt-free rules): transitions, intervals, stored rows, argument checks."""

from __future__ import annotations

from typing import Any

import pytest

from gym_gui.live.run_state import RunStatus, status_for_outcome
from gym_gui.live.run_state_table import STATUS, STREAM, RunStateTable
from gym_gui.live.stall_clock import positive_interval_s
from gym_gui.telemetry.sqlite_records import RunRecord


def stored_run(run_id: str, status: str, **fields: Any) -> RunRecord:
    values: dict[str, Any] = dict(
        run_id=run_id, status=status, outcome=None, env_id="Taxi-v3", config=None, created_at="2027-01-01T00:00:00+00:00",
        started_at="2027-01-01T00:00:00+00:00", completed_at=None, last_heartbeat_at=None, last_heartbeat=None,
        exit_code=None, signal=None, stderr_tail=None, summary=None, updated_at="2027-01-01T00:00:00+00:00",
        agent_ids=("a1",))
    values.update(fields)
    return RunRecord(**values)


def test_outcomes_map_to_terminal_statuses() -> None:
    assert status_for_outcome("failed") is RunStatus.FAILED
    assert status_for_outcome("cancelled") is RunStatus.CANCELLED
    assert status_for_outcome("completed") is RunStatus.COMPLETED
    assert status_for_outcome(None) is RunStatus.COMPLETED and status_for_outcome("odd") is RunStatus.COMPLETED
    assert {s for s in RunStatus if s.is_terminal} == {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED,
                                                     RunStatus.INTERRUPTED}
    assert str(RunStatus.STALLED) == "stalled" and RunStatus("pending") is RunStatus.PENDING


def test_intervals_must_be_finite_positive_numbers() -> None:
    assert positive_interval_s(0.5) == 0.5 and positive_interval_s(2) == 2.0
    for bad in (0, -1, float("nan"), float("inf"), True, "1", None):
        assert positive_interval_s(bad) is None
    with pytest.raises(ValueError):
        RunStateTable(stall_missed_intervals=0)
    with pytest.raises(ValueError):
        RunStateTable(default_heartbeat_interval_s=0)


def test_events_fold_in_order_and_terminal_is_final(factory: Any) -> None:
    table = RunStateTable(stall_missed_intervals=2, default_heartbeat_interval_s=1.0)
    f = factory("r", "a1")
    assert table.register_pending("r", 0.0) == [(STATUS, "r", "pending")]
    assert table.apply_event(f.started(env_id="Taxi-v3"), 0.0) == [(STATUS, "r", "running"), (STREAM, "r", "a1")]
    assert table.apply_event(f.heartbeat(), 1.0) == []
    assert table.check_stalls(2.9) == [] and table.check_stalls(3.0) == [(STATUS, "r", "stalled")]
    assert table.check_stalls(10.0) == []  # announced once
    assert table.add_stream("r", "a1", 11.0) == []  # a known stream is not news
    assert table.apply_event(f.episode(0, 3), 11.0) == [(STATUS, "r", "running")]
    assert table.apply_event(f.completed("cancelled"), 12.0) == [(STATUS, "r", "cancelled")]
    assert table.apply_event(f.started(), 13.0) == [] and table.apply_event(f.heartbeat(), 13.0) == []
    assert table.check_stalls(1e9) == []
    assert table.apply_event(f.completed("completed"), 14.0) == []  # less severe: no change
    assert table.apply_event(f.completed("failed"), 14.0) == [(STATUS, "r", "failed")]
    state = table.state("r")
    assert state is not None and state.status is RunStatus.FAILED and state.outcome == "failed"
    assert state.env_id == "Taxi-v3" and len(table) == 1 and "r" in table


def test_stored_rows_create_unknown_runs_and_only_fill_in_known_ones() -> None:
    table = RunStateTable(stall_missed_intervals=3, default_heartbeat_interval_s=1.0)
    old = stored_run("old", "running", config={"heartbeat_interval_s": 2.0}, agent_ids=("a1", None))
    assert table.merge_stored(old, 100.0, age_s=5.9) == [(STATUS, "old", "running"), (STREAM, "old", "a1")]
    assert table.stall_timeout_s("old") == 6.0
    assert table.check_stalls(100.05) == [] and table.check_stalls(100.1) == [(STATUS, "old", "stalled")]
    hb = stored_run("hb", "running", last_heartbeat={"interval_s": 0.5})
    assert table.merge_stored(hb, 100.0, age_s=1.5) == [(STATUS, "hb", "stalled"), (STREAM, "hb", "a1")]
    assert table.stall_timeout_s("hb") == 1.5
    future = stored_run("future", "running")
    assert table.merge_stored(future, 100.0, age_s=-50.0)[0] == (STATUS, "future", "running")
    assert table.check_stalls(102.9) == [] and table.check_stalls(103.0) == [(STATUS, "future", "stalled")]
    table.register_pending("live", 100.0)
    done = stored_run("live", "failed", outcome="failed", summary={"x": 1}, agent_ids=("a1", "a2"))
    assert table.merge_stored(done, 100.0, age_s=0.0) == [(STREAM, "live", "a1"), (STREAM, "live", "a2")]
    live = table.state("live")
    assert live is not None and live.status is RunStatus.PENDING and live.env_id == "Taxi-v3" and live.summary is None


def test_a_run_of_steps_and_episodes_only_stalls_after_the_idle_timeout(factory: Any) -> None:
    table = RunStateTable(stall_missed_intervals=3, default_heartbeat_interval_s=1.0, idle_timeout_s=10.0)
    f = factory("r", "a1")
    # The first step makes the run known and running: no RUN_STARTED needed.
    assert table.apply_activity([f.step(0, 0), f.step(0, 1)], 0.0) == [(STATUS, "r", "running"), (STREAM, "r", "a1")]
    state = table.state("r")
    assert state is not None and not state.has_lifecycle and table.stall_timeout_s("r") == 10.0
    assert table.check_stalls(9.5) == []
    assert table.apply_activity([f.step(0, 2)], 9.5) == []  # steps are news: the window restarts
    assert table.check_stalls(19.0) == [] and table.check_stalls(19.5) == [(STATUS, "r", "stalled")]
    assert table.apply_activity([f.step(0, 3)], 20.0) == [(STATUS, "r", "running")]
    assert table.apply_event(f.episode(0, 4), 25.0) == []
    assert table.check_stalls(34.9) == [] and table.check_stalls(35.0) == [(STATUS, "r", "stalled")]
    # RUN_STARTED without an interval: the heartbeat rule with the default interval applies again.
    g = factory("with-start", "a1")
    table.apply_event(g.started(), 0.0)
    assert table.stall_timeout_s("with-start") == 3.0


def test_control_and_overflow_are_ignored_and_terminal_runs_ignore_activity(factory: Any) -> None:
    from gym_gui.telemetry.events import TelemetryEvent, Topic

    table = RunStateTable()
    f = factory("r", "a1")
    overflow = TelemetryEvent(Topic.OVERFLOW, "r", "a1", 3, f.step(0, 0).ts_iso, {"lost_ranges": [[1, 2]]})
    assert table.apply_event(overflow, 0.0) == [] and "r" not in table
    control_topic = getattr(Topic, "CONTROL", None)
    if control_topic is not None:  # the existing gym_gui's credit notices
        control = TelemetryEvent(control_topic, "r", "a1", 3, overflow.ts_iso, {"state": "STARVED"})
        assert table.apply_event(control, 0.0) == [] and "r" not in table
    table.apply_activity([f.step(0, 1)], 0.0)
    assert table.apply_event(f.completed("failed", reason="trainer said so"), 1.0) == [(STATUS, "r", "failed")]
    assert table.apply_activity([f.step(0, 2)], 2.0) == [] and table.check_stalls(1e9) == []
    state = table.state("r")
    assert state is not None and state.status is RunStatus.FAILED and state.reason == "trainer said so"


def test_a_stream_without_agent_id_is_noted_not_announced_and_seq_ids_are_tracked(factory: Any) -> None:
    table = RunStateTable()
    anon = factory("r", None, first_seq=5)
    assert table.apply_activity([anon.step(0, 0), anon.step(0, 1)], 0.0) == [(STATUS, "r", "running")]
    state = table.state("r")
    assert state is not None and state.anonymous_stream and state.agent_ids == ()
    assert table.add_stream("r", None, 1.0) == []
    assert table.finishing_agent("r") is None and table.next_seq_id("r", None) == 7
    named = factory("r", "a1", first_seq=100)
    table.apply_event(named.episode(0, 1), 2.0)
    assert table.finishing_agent("r") == "a1" and table.next_seq_id("r", "a1") == 101
    assert table.next_seq_id("unknown", None) == 1 and table.finishing_agent("unknown") is None
    # Stored seq_ids count too (a run finished after a restart continues its stream).
    stored = stored_run("old", "running", started_at=None, agent_ids=("a1",))
    table.merge_stored(stored, 0.0, age_s=0.0, max_seq_ids={"a1": 41})
    assert table.next_seq_id("old", "a1") == 42
    old = table.state("old")
    assert old is not None and not old.has_lifecycle and table.stall_timeout_s("old") == table.idle_timeout_s
    with pytest.raises(ValueError):
        RunStateTable(idle_timeout_s=0)


def test_the_next_stall_deadline_is_the_earliest_running_run_s_and_none_when_none_can_stall(factory: Any) -> None:
    table = RunStateTable(stall_missed_intervals=3, default_heartbeat_interval_s=1.0, idle_timeout_s=10.0)
    assert table.next_deadline_s() is None
    table.register_pending("quiet", 0.0)
    assert table.next_deadline_s() is None  # pending never stalls
    f, g = factory("hb", "a1"), factory("plain", "a1")
    table.apply_event(f.started(config={"heartbeat_interval_s": 0.5}), 1.0)
    table.apply_activity([g.step(0, 0)], 2.0)
    assert table.next_deadline_s() == 2.5  # 1.0 + 3 x 0.5, before the steps-only run's 2.0 + 10
    assert table.check_stalls(2.49) == [] and table.check_stalls(2.5) == [(STATUS, "hb", "stalled")]
    assert table.next_deadline_s() == 12.0  # a stalled run is not due again
    table.apply_event(f.heartbeat(), 5.0)
    assert table.next_deadline_s() == 6.5
    table.apply_event(f.completed(), 6.0)
    table.apply_event(g.completed(), 6.0)
    assert table.next_deadline_s() is None
