"""CountWaker: a batch consumer is woken by publishers only once enough is queued, by ``wake`` always."""

from __future__ import annotations

import threading
from typing import Any

from gym_gui.telemetry.batch_source import BusSource
from gym_gui.telemetry.events import Topic
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.telemetry.waker import CountWaker


def test_notify_wakes_only_at_the_count_the_consumer_waits_for() -> None:
    queued: list[int] = []
    waker = CountWaker()
    waker.count_with(queued.__len__)
    result: list[bool] = []
    consumer = threading.Thread(target=lambda: result.append(waker.wait_for(3, None)))
    waker.wake_at = 3  # (what wait_for sets first; set here so the checks below do not race its start)
    consumer.start()
    for n in (1, 2):
        queued.append(n)
        waker.notify()
        assert not waker.pending and not waker._event.is_set()  # below the count: nobody was woken
    queued.append(3)
    waker.notify()
    consumer.join(10)
    assert not consumer.is_alive() and result == [True]


def test_wake_wakes_however_little_is_queued_and_enough_queued_returns_at_once() -> None:
    queued: list[int] = []
    waker = CountWaker()
    waker.count_with(queued.__len__)
    waker.wake()
    assert waker.wait_for(100, 10)  # woken: returns though nothing is queued
    assert not waker.wait_for(100, 0.0)  # nothing since: times out
    queued.extend(range(5))  # queued while nobody waited (no notify): counted before sleeping
    assert waker.wait_for(5, None)


def test_a_waker_not_yet_counting_wakes_on_every_notify() -> None:
    waker = CountWaker()
    waker.wake_at = 1 << 40
    waker.notify()
    assert waker.pending and waker.wait_for(1 << 40, 0.0)


def test_a_bus_source_wakes_for_a_marker_and_for_a_full_batch(factory: Any) -> None:
    bus = RunBus()
    source = BusSource(bus, (Topic.STEP_APPENDED,), "sink")
    f = factory()
    source.waker.wake_at = 4
    for i in range(3):
        bus.publish(f.step(0, i))
    assert not source.waker._event.is_set()
    source.put_nowait(object())  # a flush marker is due at once
    assert source.waker.wait_for(4, 0.0)
    assert len(source.drain()) == 4
    source.waker.wake_at = 2
    bus.publish(f.step(0, 3))
    assert not source.waker._event.is_set()
    bus.publish(f.step(0, 4))
    assert source.waker._event.is_set()
    source.close()
