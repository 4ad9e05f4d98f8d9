"""StallClock, the one stall rule (Qt-free, plain pytest): timeouts, deadline and silence."""

from __future__ import annotations

import pytest

from gym_gui.live.stall_clock import StallClock, positive_interval_s


def test_the_deadline_follows_the_newest_event_and_ends_with_a_stall_or_completion() -> None:
    clock = StallClock(1.0, 3)
    assert clock.deadline_s() is None and clock.silence_s(5.0) is None  # pending, not stalled
    clock.note_event(10.0)
    assert clock.deadline_s() == 13.0 and clock.silence_s(12.5) == 2.5 and clock.silence_s(9.0) == 0.0
    assert not clock.check(12.99) and clock.check(13.0) and not clock.check(14.0)  # reported once
    assert clock.stalled and clock.deadline_s() is None
    assert clock.note_event(20.0) and clock.deadline_s() == 23.0 and clock.last_event_at == 20.0
    clock.configure(10)
    assert clock.deadline_s() == 50.0
    clock.complete()
    assert clock.deadline_s() is None and not clock.check(1000.0)


def test_a_stream_without_lifecycle_uses_the_idle_timeout_until_it_sends_some() -> None:
    clock = StallClock(1.0, 3, idle_timeout_s=10.0)
    clock.note_event(0.0)
    assert clock.timeout_s == 10.0 and clock.deadline_s() == 10.0
    clock.note_lifecycle()
    assert clock.timeout_s == 3.0


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), True, "1", None])
def test_positive_interval_s_refuses_what_is_not_a_positive_number(bad: object) -> None:
    assert positive_interval_s(bad) is None
    with pytest.raises(ValueError):
        StallClock(bad, 3)  # type: ignore[arg-type]
