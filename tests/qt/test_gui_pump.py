"""GuiPump on a real Qt event loop and a real RunBus: woken by publishes, coalesced per frame, timed by
deadlines, idle when nothing is pending, and provably stopped."""

from __future__ import annotations

import threading
import time
from typing import Any, Iterator

import pytest
from qtpy.QtWidgets import QApplication

from gym_gui.qt.gui_pump import GuiPump, GuiWaker
from gym_gui.telemetry.events import Topic
from gym_gui.telemetry.run_bus import RunBus


class View:
    """A minimal pumped view: drains one subscription per tick, optionally asks for a deadline."""

    def __init__(self, sub: Any = None) -> None:
        self.sub = sub
        self.ticks: list[float] = []
        self.got: list[Any] = []
        self.deadline_s: float | None = None
        self.fail = False

    def tick(self, now_s: float) -> None:
        self.ticks.append(now_s)
        if self.sub is not None:
            self.got += self.sub.drain()
        if self.fail:
            raise RuntimeError("boom")

    def next_deadline_s(self, now_s: float) -> float | None:
        if self.deadline_s is not None and self.deadline_s <= now_s:
            self.deadline_s = None  # served
        return self.deadline_s


@pytest.fixture
def pump(qtbot: Any) -> Iterator[GuiPump]:
    p = GuiPump()
    p.start()
    yield p
    p.stop()
    assert not p.timer_active() and not p.poll_timer.isActive()


def test_a_publish_wakes_one_tick_and_then_the_pump_is_idle(qtbot: Any, bus: RunBus, factory: Any,
                                                           pump: GuiPump) -> None:
    view = View(bus.subscribe(Topic.STEP_APPENDED, "v", waker=pump.waker))
    pump.add(view)
    assert isinstance(pump.waker, GuiWaker) and view in pump and not pump.timer_active()  # idle
    f = factory("run1", "agent1")
    bus.publish(f.step(0, 0))
    qtbot.waitUntil(lambda: len(view.got) == 1, timeout=5000)
    assert pump.polls == 1 and not pump.timer_active() and not pump.waker.pending
    QApplication.processEvents()
    assert pump.polls == 1  # nothing pending: no timer, no tick


def test_a_burst_from_another_thread_is_coalesced_to_about_one_tick_per_frame(
        qtbot: Any, bus: RunBus, factory: Any, pump: GuiPump) -> None:
    view = View(bus.subscribe(Topic.STEP_APPENDED, "v", maxlen=None, waker=pump.waker))
    pump.add(view)
    f = factory("run1", "agent1")
    events = [f.step(0, i) for i in range(20_000)]
    posted_before = pump.wakeups

    def produce() -> None:
        for evt in events:
            bus.publish(evt)

    started = time.monotonic()
    thread = threading.Thread(target=produce)
    thread.start()
    qtbot.waitUntil(lambda: len(view.got) == len(events), timeout=10_000)
    thread.join(5)
    elapsed_s = time.monotonic() - started
    assert view.got == events
    gaps = [b - a for a, b in zip(view.ticks, view.ticks[1:])]
    assert all(g >= pump.frame_interval_ms / 1000 - 0.002 for g in gaps)  # never two ticks in one frame
    assert pump.polls <= elapsed_s / (pump.frame_interval_ms / 1000) + 2
    assert pump.wakeups - posted_before <= pump.polls + 1  # one wake-up per tick at most


def test_deadlines_tick_without_data_and_the_earliest_wins(qtbot: Any, pump: GuiPump) -> None:
    late, soon = View(), View()
    now = time.monotonic()
    late.deadline_s = now + 0.3
    soon.deadline_s = now + 0.05
    pump.add(late)
    pump.add(soon)
    assert pump.timer_active()
    qtbot.waitUntil(lambda: soon.ticks != [], timeout=5000)
    assert soon.ticks[0] >= soon_deadline(now, 0.05)  # (a loaded machine may serve both in one tick)
    qtbot.waitUntil(lambda: late.deadline_s is None, timeout=5000)
    assert max(late.ticks) >= now + 0.3 - 0.002
    qtbot.waitUntil(lambda: not pump.timer_active(), timeout=5000)  # both served: idle again
    polls = pump.polls
    qtbot.wait(50)
    assert pump.polls == polls


def soon_deadline(now: float, delay_s: float) -> float:
    return now + delay_s - 0.002  # a precise timer may fire a hair early on the clock's rounding


def test_a_failing_view_is_counted_and_the_others_still_tick(qtbot: Any, bus: RunBus, factory: Any,
                                                            pump: GuiPump) -> None:
    bad, good = View(), View(bus.subscribe(Topic.STEP_APPENDED, "good", waker=pump.waker))
    bad.fail = True
    pump.add(bad)
    pump.add(good)
    bus.publish(factory("run1", "agent1").step(0, 0))
    qtbot.waitUntil(lambda: len(good.got) == 1, timeout=5000)
    assert pump.view_errors == 1 and len(bad.ticks) == 1


def test_remove_and_wake_from_any_thread(qtbot: Any, pump: GuiPump) -> None:
    kept, gone = View(), View()
    pump.add(kept)
    pump.add(gone)
    pump.add(kept)  # idempotent
    pump.remove(gone)
    pump.remove(gone)
    assert pump.views() == [kept]
    thread = threading.Thread(target=pump.wake)
    thread.start()
    thread.join(5)
    qtbot.waitUntil(lambda: len(kept.ticks) == 1, timeout=5000)
    assert gone.ticks == []


def test_stop_leaves_no_timer_and_processes_no_wake_up(qtbot: Any, bus: RunBus, factory: Any) -> None:
    pump = GuiPump(frame_interval_ms=10)
    view = View(bus.subscribe(Topic.STEP_APPENDED, "v", waker=pump.waker))
    view.deadline_s = time.monotonic() + 60
    pump.add(view)
    assert not pump.is_running() and not pump.timer_active()  # not started: nothing armed
    pump.start()
    assert pump.is_running() and pump.is_polling() and pump.timer_active()  # armed for the deadline
    pump.wake()  # posted to the event queue...
    pump.stop()  # ... and stopped before the GUI thread sees it
    assert not pump.timer_active() and not pump.is_polling()
    QApplication.processEvents()
    assert pump.polls == 0 and pump.wakeups == 0 and pump.wakeups_ignored == 1
    bus.publish(factory("run1", "agent1").step(0, 0))  # a stopped pump's waker posts nothing
    QApplication.processEvents()
    qtbot.wait(30)
    assert pump.polls == 0 and not pump.timer_active() and view.ticks == []
    pump.start()  # a pump may run again
    pump.wake()
    qtbot.waitUntil(lambda: len(view.got) == 1, timeout=5000)
    pump.stop()
    pump.stop()  # idempotent
    assert not pump.timer_active()


def test_tick_now_runs_at_once_and_bad_arguments_are_refused(qtbot: Any, pump: GuiPump) -> None:
    view = View()
    pump.add(view)
    pump.tick_now()
    assert len(view.ticks) == 1 and pump.ticks == 1
    with pytest.raises(ValueError):
        GuiPump(frame_interval_ms=0)


def test_a_views_own_waker_ticks_that_view_alone_and_shared_views_tick_every_time(
        qtbot: Any, bus: RunBus, factory: Any, pump: GuiPump) -> None:
    wa, wb = pump.new_waker(), pump.new_waker()
    a = View(bus.subscribe(Topic.STEP_APPENDED, "a", run_id="run-a", waker=wa))
    b = View(bus.subscribe(Topic.STEP_APPENDED, "b", run_id="run-b", waker=wb))
    shared = View()
    pump.add(a, waker=wa)
    pump.add(b, waker=wb)
    pump.add(shared)  # no waker of its own: ticked at every tick
    bus.publish(factory("run-a", "agent1").step(0, 0))
    qtbot.waitUntil(lambda: len(a.got) == 1, timeout=5000)
    assert len(a.ticks) == 1 and b.ticks == [] and len(shared.ticks) == 1
    b.deadline_s = time.monotonic() + 0.03  # a deadline ticks its view without news
    pump.reschedule()
    qtbot.waitUntil(lambda: len(b.ticks) == 1, timeout=5000)
    assert len(a.ticks) == 1 and len(shared.ticks) == 2
    pump.remove(b)
    bus.publish(factory("run-b", "agent1").step(0, 0))  # b left: its waker posts nothing
    assert not wb.pending
    pump.wake()  # the shared waker: every view
    qtbot.waitUntil(lambda: len(shared.ticks) == 3, timeout=5000)
    assert len(a.ticks) == 2 and len(b.ticks) == 1 and b.got == []


class SlowView(View):
    """A view whose tick keeps the GUI thread busy for ``busy_s`` (a stand-in for a heavy first batch)."""

    def __init__(self, busy_s: float, order: list[str], name: str) -> None:
        super().__init__()
        self.busy_s, self.order, self.name = busy_s, order, name

    def tick(self, now_s: float) -> None:
        super().tick(now_s)
        self.order.append(self.name)
        end = time.monotonic() + self.busy_s
        while time.monotonic() < end:
            pass


def test_a_tick_over_its_budget_yields_to_the_event_loop_and_the_rest_follow_at_once(qtbot: Any) -> None:
    pump = GuiPump(tick_budget_ms=8)
    order: list[str] = []
    views = [SlowView(0.012, order, name) for name in "abc"]
    wakers = [pump.new_waker() for _ in views]
    for view, waker in zip(views, wakers):
        pump.add(view, waker=waker)
    pump.start()
    try:
        for waker in wakers:
            waker.notify()
        qtbot.waitUntil(lambda: len(order) == 3, timeout=5000)
        assert order == ["a", "b", "c"] and pump.ticks_split == 2  # one view per turn of the event loop
        assert [len(v.ticks) for v in views] == [1, 1, 1]
        wakers[2].notify()  # only c has news: only c is ticked, within its frame
        qtbot.waitUntil(lambda: len(order) == 4, timeout=5000)
        assert order[-1] == "c" and [len(v.ticks) for v in views] == [1, 1, 2]
    finally:
        pump.stop()
    assert not pump.timer_active()


class Opener(View):
    """A view whose tick adds another view to the pump (as the registry's news opens a tab)."""

    def __init__(self, pump: GuiPump, child: View) -> None:
        super().__init__()
        self.pump, self.child = pump, child

    def tick(self, now_s: float) -> None:
        super().tick(now_s)
        if self.child not in self.pump:
            # due soon (e.g. a history read to start); set here, not when the test began, so that a
            # tick that came late on a loaded machine does not find it passed (the View calls a passed
            # deadline served)
            self.child.deadline_s = now_s + 0.02
            self.pump.add(self.child, waker=self.pump.new_waker())


def test_a_view_added_during_a_tick_gets_its_deadline_served(qtbot: Any, pump: GuiPump) -> None:
    child = View()
    opener = Opener(pump, child)
    pump.add(opener)
    pump.wake()
    qtbot.waitUntil(lambda: len(child.ticks) == 1, timeout=5000)



def test_the_frame_left_before_the_next_tick_and_the_tick_listeners(qtbot: Any) -> None:
    now = [100.0]
    pump = GuiPump(clock=lambda: now[0])
    assert pump.frame_left_s() is None  # stopped
    pump.start()  # a start counts as the last tick: the next may come one frame (16 ms) after it
    calls: list[float] = []

    def listener() -> None:
        calls.append(now[0])

    def broken() -> None:
        raise RuntimeError("a listener's bug")

    pump.add_tick_listener(listener)
    pump.add_tick_listener(listener)  # once only
    pump.add_tick_listener(broken)
    try:
        now[0] = 100.010
        assert pump.frame_left_s() == pytest.approx(0.006)
        now[0] = 100.030  # a tick overdue while ticks stream: it may run at once
        assert pump.frame_left_s() == 0.0
        pump.tick_now()
        assert calls == [100.030] and pump.view_errors == 1  # after the tick; the broken one counted
        now[0] = 100.034
        assert pump.frame_left_s() == pytest.approx(0.012)
        now[0] = 101.0  # no tick for a second and nothing armed: idle, only a wake-up starts the next
        assert pump.frame_left_s() is None
        pump.remove_tick_listener(broken)
        pump.remove_tick_listener(listener)
        pump.tick_now()
        assert calls == [100.030] and pump.view_errors == 1
    finally:
        pump.stop()
    assert pump.frame_left_s() is None
