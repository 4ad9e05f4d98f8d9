"""PendingEvents: the watermark keeps every commit a seq-ordered prefix of each stream."""

from __future__ import annotations

from typing import Any

from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.sink_pending import PendingEvents


def seqs(events: list[TelemetryEvent]) -> list[int]:
    return [e.seq_id for e in events]


def test_controls_drained_after_the_step_drain_wait_for_the_next_collect(factory: Any) -> None:
    f = factory()
    s0, s1 = f.step(0, 0), f.step(0, 1)
    ep = f.episode(0, 2)  # seq 2, drained by the late control drain
    pending = PendingEvents()
    pending.add_collected([], [s0, s1], [ep], now=0.0)
    assert pending.has_held and pending.eligible_count() == 2 and len(pending) == 3
    assert seqs(pending.take_batch(10)) == [0, 1]
    # A step published between the first control drain and the step drain of the next collect:
    s3 = f.step(1, 0)
    pending.add_collected([], [s3], [], now=1.0)
    assert not pending.has_held
    assert seqs(pending.take_batch(10)) == [2, 3]
    assert len(pending) == 0 and pending.take_batch(10) == []


def test_a_step_drained_late_is_merged_before_a_held_control(factory: Any) -> None:
    f = factory()
    s0 = f.step(0, 0)
    ep = f.episode(0, 2)  # seq 1 ...
    s2 = f.step(1, 0)     # ... while a step with a higher seq was already drained
    pending = PendingEvents()
    pending.add_collected([ep], [s0, s2], [], now=0.0)
    assert seqs(pending.take_batch(10)) == [0, 1, 2]


def test_only_events_up_to_the_watermark_are_eligible(factory: Any) -> None:
    f = factory()
    s0 = f.step(0, 0)
    ep = f.episode(0, 1)
    s2 = f.step(1, 0)
    late = f.heartbeat()  # seq 3
    pending = PendingEvents()
    pending.add_collected([], [s0], [ep, late], now=0.0)
    assert pending.eligible_count() == 1
    pending.add_collected([], [s2], [], now=0.0)  # the held controls count now
    assert pending.eligible_count() == 4
    assert seqs(pending.take_batch(2)) == [0, 1]
    assert seqs(pending.take_batch(2)) == [2, 3]


def test_batches_are_capped_and_rotate_between_streams(factory: Any) -> None:
    a, b = factory("run1", "a"), factory("run2", "b")
    pending = PendingEvents()
    pending.add_collected([], [a.step(0, i) for i in range(5)] + [b.step(0, i) for i in range(5)], [], now=0.0)
    first, second = pending.take_batch(4), pending.take_batch(4)
    assert len(first) == len(second) == 4
    first_runs, second_runs = {e.run_id for e in first}, {e.run_id for e in second}
    assert len(first_runs) == len(second_runs) == 1 and first_runs != second_runs  # each stream gets a turn
    rest = pending.take_batch(4)
    per_stream: dict[str, list[int]] = {}
    for e in first + second + rest:
        per_stream.setdefault(e.run_id, []).append(e.seq_id)
    assert per_stream == {"run1": [0, 1, 2, 3, 4], "run2": [0, 1, 2, 3, 4]}


def test_run_completed_is_taken_with_every_eligible_event_of_its_run(factory: Any) -> None:
    a, b, other = factory("run1", "a"), factory("run1", "b"), factory("run2", "c")
    a_steps = [a.step(0, i) for i in range(3)]
    done = a.completed()
    b_steps = [b.step(0, i) for i in range(4)]
    pending = PendingEvents()
    pending.add_collected([done], a_steps + b_steps + [other.step(0, 0)], [], now=0.0)
    batch = pending.take_batch(2)  # the cap would split the run: it is taken whole instead
    assert [e for e in batch if e.agent_id == "a"] == a_steps + [done]
    assert [e for e in batch if e.agent_id == "b"] == b_steps
    assert len(batch) == 8  # the run went first and filled the batch
    assert [e.run_id for e in pending.take_batch(10)] == ["run2"]


def test_several_completions_of_one_run_still_make_progress(factory: Any) -> None:
    a, b = factory("run1", "a"), factory("run1", "b")
    pending = PendingEvents()
    pending.add_collected([a.completed(), b.completed()], [], [], now=0.0)
    batch = pending.take_batch(1)
    assert [e.topic for e in batch] == [Topic.RUN_COMPLETED, Topic.RUN_COMPLETED]
    assert len(pending) == 0


def test_seal_makes_held_events_eligible(factory: Any) -> None:
    f = factory()
    pending = PendingEvents()
    pending.add_collected([], [f.step(0, 0)], [f.episode(0, 1)], now=5.0)
    assert pending.eligible_count() == 1 and pending.oldest_eligible_since() == 5.0
    pending.seal()
    assert pending.eligible_count() == 2 and not pending.has_held
    assert seqs(pending.take_batch(10)) == [0, 1]
    assert pending.oldest_eligible_since() is None
