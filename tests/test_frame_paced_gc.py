"""FramePacedCollector: young collections between the GUI's ticks, the older generations by CPython's
rules, nothing while the collector is off; AppServices hangs it on the pump while started."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gym_gui.frame_paced_gc import FramePacedCollector


@pytest.fixture(autouse=True)
def restore_collector() -> Iterator[list[tuple[str, int]]]:
    before, enabled = gc.get_threshold(), gc.isenabled()
    yield []
    gc.set_threshold(*before)
    if enabled:
        gc.enable()


class Started:
    """The generations of the collections that start while it is installed (gc.callbacks)."""

    def __init__(self) -> None:
        self.generations: list[int] = []

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.generations.append(int(info["generation"]))

    def __enter__(self) -> "Started":
        gc.callbacks.append(self)
        return self

    def __exit__(self, *_exc: object) -> None:
        gc.callbacks.remove(self)


def test_churned_rows_are_untracked_at_the_next_paced_collection_not_at_the_threshold() -> None:
    # Rows made and freed in turn (a bounded table) cancel out in CPython's net count: without a
    # collection they stay tracked in the young generation, however many there are.
    gc.set_threshold(1_000_000, 10, 10)
    collector = FramePacedCollector(interval_ms=0)
    table: list[tuple[int, float]] = [(i, 0.5) for i in range(100)]
    for i in range(5_000):
        table.append((i, float(i)))
        del table[0]
    assert all(gc.is_tracked(row) for row in table[-50:])  # (the threshold never came)
    collector()
    assert not any(gc.is_tracked(row) for row in table)  # one collection walked them once
    assert collector.collections[0] + collector.collections[1] + collector.collections[2] == 1


def test_calls_within_the_interval_collect_nothing() -> None:
    collector = FramePacedCollector(interval_ms=60_000)
    with Started() as started:
        collector()
        collector()
        collector()
    assert len(started.generations) == 1 and sum(collector.collections) == 1


def test_the_middle_generation_is_collected_when_its_count_passes_threshold_1() -> None:
    gc.set_threshold(1_000_000, 3, 1_000)
    gc.collect()
    collector = FramePacedCollector(interval_ms=0)
    with Started() as started:
        for _ in range(5):
            collector()
    assert started.generations == [0, 0, 0, 0, 1]  # counts 1, 2, 3 are not past 3; the 4th young one is
    assert collector.collections == [4, 1, 0]


def test_a_full_collection_needs_the_count_and_a_quarter_of_the_heap_moved_in() -> None:
    gc.set_threshold(1_000_000, 0, 0)
    gc.collect()
    collector = FramePacedCollector(interval_ms=0)
    assert [collector.collect_due(), collector.collect_due()] == [0, 1]
    # the oldest generation's count is past 0 now, but little moved into it: no full collection
    kept = [[i] for i in range(len(gc.get_objects(2)))]  # as many survivors as the heap: far over a quarter
    assert [collector.collect_due(), collector.collect_due()] == [0, 1]  # young, then into the oldest one
    assert collector.collect_due() == 2
    assert collector.collect_due() == 0  # counted again from the heap it left
    assert collector.collections == [3, 2, 1]
    del kept


def test_nothing_runs_while_the_collector_is_disabled_or_its_threshold_is_0() -> None:
    collector = FramePacedCollector(interval_ms=0)
    with Started() as started:
        gc.disable()
        assert collector.collect_due() == -1
        gc.enable()
        threshold = gc.get_threshold()
        gc.set_threshold(0, *threshold[1:])
        assert collector.collect_due() == -1
    assert started.generations == [] and collector.collections == [0, 0, 0]


def test_app_services_hang_the_collector_on_the_pump_while_started(qtbot: Any, tmp_path: Path) -> None:
    from gym_gui.qt.app_services import AppServices
    from gym_gui.telemetry.run_bus import RunBus

    services = AppServices(tmp_path / "t.sqlite", bus=RunBus())
    collector = services.collector
    assert collector is not None
    services.start()
    try:
        before = sum(collector.collections)
        collector.interval_s = 0.0
        services.pump.wake()
        qtbot.waitUntil(lambda: sum(collector.collections) > before, timeout=5_000)
    finally:
        assert services.stop(30)
    after = sum(collector.collections)
    services.pump.tick_now()  # (stopped: its listeners are gone)
    assert sum(collector.collections) == after
    off = AppServices(tmp_path / "u.sqlite", bus=RunBus(), young_collection_interval_ms=None)
    assert off.collector is None
    assert off.stop(30)
