"""BacklogGate: hysteresis between high and low water, woken by notify, with counted pauses.

The last test drives a real SinkCore with a slowed store and checks the producer-side loop the
ingest proxy uses: memory stays bounded, nothing is lost, the gate paused.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from gym_gui.telemetry.backpressure import BacklogGate
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.telemetry.sink_core import SinkCore
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore


class Backlog:
    """A settable backlog whose reads can be observed."""

    def __init__(self, value: int) -> None:
        self.value = value
        self.reads = 0
        self._cond = threading.Condition()

    def __call__(self) -> int:
        with self._cond:
            self.reads += 1
            self._cond.notify_all()
        return self.value

    def wait_reads(self, count: int, timeout_s: float = 5.0) -> bool:
        """Block until the gate has read the backlog ``count`` times in total."""
        with self._cond:
            return self._cond.wait_for(lambda: self.reads >= count, timeout_s)


def start_waiter(gate: BacklogGate, timeout_s: float | None = 10.0) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}
    done = threading.Event()
    out["done"] = done

    def run() -> None:
        out["result"] = gate.wait_until_open(timeout_s)
        done.set()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def test_open_at_or_below_high_water_without_pausing() -> None:
    backlog = Backlog(100)
    gate = BacklogGate(backlog, high_water=100, low_water=10)
    assert gate.wait_until_open(0) is True
    assert (gate.pauses, gate.paused_s, gate.is_paused) == (0, 0.0, False)


def test_pauses_above_high_water_until_low_water() -> None:
    backlog = Backlog(101)
    gate = BacklogGate(backlog, high_water=100, low_water=10)
    thread, out = start_waiter(gate)
    try:
        assert backlog.wait_reads(2)  # the fast check, then the first check as a paused waiter
        assert gate.is_paused and not out["done"].is_set()
        # Below high water but above low water: the producer stays paused (hysteresis).
        backlog.value = 50
        gate.notify()
        assert backlog.wait_reads(3)  # the waiter re-checked ...
        assert not out["done"].is_set() and gate.is_paused  # ... and kept waiting
        backlog.value = 10
        gate.notify()
        assert out["done"].wait(5) and out["result"] is True
    finally:
        backlog.value = 0
        gate.notify()
        thread.join(5)
    assert gate.pauses == 1 and gate.paused_s > 0 and not gate.is_paused


def test_timeout_returns_false_and_counts_the_pause() -> None:
    gate = BacklogGate(Backlog(5), high_water=1, low_water=0)
    assert gate.wait_until_open(0.05) is False
    assert gate.pauses == 1 and gate.paused_s >= 0.05 and not gate.is_paused


def test_release_opens_the_gate_for_good() -> None:
    backlog = Backlog(1000)
    gate = BacklogGate(backlog, high_water=10, low_water=5)
    thread, out = start_waiter(gate)
    assert backlog.wait_reads(2) and gate.is_paused
    gate.release()
    assert out["done"].wait(5) and out["result"] is True
    thread.join(5)
    assert gate.wait_until_open(0) is True


def test_water_marks_are_validated() -> None:
    with pytest.raises(ValueError):
        BacklogGate(lambda: 0, high_water=10, low_water=11)
    with pytest.raises(ValueError):
        BacklogGate(lambda: 0, high_water=10, low_water=-1)


def test_a_producer_honouring_the_sink_gate_keeps_the_backlog_bounded(tmp_path: Any, factory: Any) -> None:
    store = TelemetrySQLiteStore(tmp_path / "t.sqlite")
    bus = RunBus()
    core = SinkCore(store, bus, batch_size=50, max_delay_s=0.01, high_water=200, low_water=50, write_delay_s=0.01)
    core.start()
    f = factory("run1", "agent1")
    chunk = 20
    peak = 0
    try:
        for _ in range(60):  # 1200 steps, like a proxy reading chunks of lines
            assert core.gate.wait_until_open(10)
            for _ in range(chunk):
                bus.publish(f.step(0, f.seq + 1))
            peak = max(peak, core.backlog())
        assert core.flush(10)
    finally:
        assert core.stop(10)
        store.close()
    assert peak <= 200 + chunk
    assert core.gate.pauses > 0 and core.gate.paused_s > 0
    reopened = TelemetrySQLiteStore(tmp_path / "t.sqlite")
    assert len(reopened.steps_for_episode("run1", "agent1", 0)) == 1200
    reopened.close()



def test_a_deferred_gate_is_closed_until_attached_then_is_the_attached_gate() -> None:
    from gym_gui.telemetry.backpressure import DeferredGate

    gate = DeferredGate()
    assert gate.wait_until_open(0.01) is False  # nothing attached yet: closed
    opened: list[bool] = []
    waiter = threading.Thread(target=lambda: opened.append(gate.wait_until_open(None)), daemon=True)
    waiter.start()
    backlog = Backlog(0)
    real = BacklogGate(backlog, high_water=10, low_water=5)
    gate.attach(real)
    waiter.join(5)
    assert opened == [True] and not waiter.is_alive()  # the waiter went on to the real gate, which is open
    backlog.value = 11
    assert gate.wait_until_open(0.01) is False  # the real gate's answer from now on
    backlog.value = 5
    real.notify()
    assert gate.wait_until_open(0.01) is True
