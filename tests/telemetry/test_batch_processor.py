"""BatchProcessor with a scripted exporter: order across topics, retry with backoff, isolation, in-band
flush markers, the stepped form (the Redis bridge's), give-up accounting.

The exporter here is the plugin interface itself (the real ones, SQLite and Redis, are tested through
SinkCore and RedisPump): it records what it is given and fails when the test says so.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import pytest

from gym_gui.telemetry.batch_processor import BatchProcessor, BusSource, ExportResult, Wording
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.run_bus import RunBus
from polling import wait_until  # tests/polling.py

TOPICS = (Topic.RUN_STARTED, Topic.STEP_APPENDED, Topic.EPISODE_FINALIZED, Topic.RUN_COMPLETED)


class Busy(Exception):
    """A retryable failure (like a locked database)."""


class ScriptedExporter:
    """Records exported batches; ``fail(batch, isolate)`` may raise to script a failure."""

    wording = Wording("test exporter")

    def __init__(self, fail: Callable[[Sequence[TelemetryEvent], bool], None] | None = None) -> None:
        self.fail = fail
        self.batches: list[list[TelemetryEvent]] = []
        self.attempts: list[tuple[float, bool]] = []
        self.followed: list[int] = []
        self._cond = threading.Condition()

    def export(self, batch: Sequence[TelemetryEvent], *, isolate: bool) -> ExportResult:
        self.attempts.append((time.monotonic(), isolate))
        if self.fail is not None:
            self.fail(batch, isolate)
        lost = tuple((e, "bad: scripted") for e in batch if isolate and e.payload.get("bad"))
        kept = [e for e in batch if not (isolate and e.payload.get("bad"))]
        with self._cond:
            self.batches.append(kept)
            self._cond.notify_all()
        return ExportResult(exported=len(kept), lost=lost)

    def is_retryable(self, exc: BaseException) -> bool:
        return isinstance(exc, Busy)

    def exported(self, batch: Sequence[TelemetryEvent], result: ExportResult) -> None:
        self.followed.append(result.exported)

    @property
    def events(self) -> list[TelemetryEvent]:
        return [e for b in self.batches for e in b]


def make(bus: RunBus, exporter: ScriptedExporter, **kw: Any) -> BatchProcessor:
    kw.setdefault("max_delay_s", 0.0)
    return BatchProcessor(exporter, BusSource(bus, TOPICS, "proc"), name="proc", **kw)


def test_one_ordered_subscription_exports_every_stream_in_publish_order(bus: RunBus, factory: Any) -> None:
    exporter = ScriptedExporter()
    proc = make(bus, exporter, batch_size=7)
    a, b = factory("ra", "x"), factory("rb", "y")
    events: list[TelemetryEvent] = []
    for ev in (a.started(), b.started()):
        events.append(ev)
    for ep in range(5):
        for f in (a, b):
            events += [f.step(ep, i) for i in range(3)] + [f.episode(ep, 3)]
    events += [a.completed(), b.completed()]
    for e in events:
        bus.publish(e)
    proc.start()
    assert proc.flush(5)
    assert exporter.events == events  # one deque: publish order, hence each stream in seq order
    assert all(len(batch) <= 7 for batch in exporter.batches)
    assert proc.exported == len(events) and exporter.followed == [len(b) for b in exporter.batches]
    assert proc.stop(5) and bus.subscriptions() == []


def test_a_flush_marker_waits_for_exactly_what_was_published_before_it(bus: RunBus, factory: Any) -> None:
    gate = threading.Event()
    exporter = ScriptedExporter(lambda batch, isolate: gate.wait(5))
    proc = make(bus, exporter, batch_size=1000, max_delay_s=30.0)
    proc.start()
    f = factory()
    first = [f.step(0, i) for i in range(50)]
    for e in first:
        bus.publish(e)
    done: list[bool] = []
    flusher = threading.Thread(target=lambda: done.append(proc.flush(5)))
    flusher.start()
    wait_until(lambda: proc._held._put == 1, message="the flush marker put")
    bus.publish(f.step(0, 50))  # after the marker
    assert not done
    gate.set()
    flusher.join(5)
    assert done == [True]
    assert exporter.events[:50] == first  # the flush did not wait for the 30 s delay
    assert proc.backlog() in (0, 1)
    assert proc.stop(5) and exporter.events[-1].seq_id == 50


def test_retryable_errors_keep_the_batch_and_back_off_exponentially(bus: RunBus, factory: Any) -> None:
    failures = [4]

    def fail(batch: Sequence[TelemetryEvent], isolate: bool) -> None:
        if failures[0]:
            failures[0] -= 1
            raise Busy("locked")

    errors: list[str] = []
    exporter = ScriptedExporter(fail)
    proc = make(bus, exporter, retry_initial_s=0.02, retry_max_s=0.08, on_error=errors.append,
                report_interval_s=0.0)
    f = factory()
    events = [f.step(0, i) for i in range(10)]
    for e in events:
        bus.publish(e)
    proc.start()
    assert proc.flush(5)
    assert exporter.events == events and proc.retries == 4 and proc.recoveries == 1 and not proc.failing
    gaps = [b[0] - a[0] for a, b in zip(exporter.attempts, exporter.attempts[1:])]
    assert [g >= d * 0.9 for g, d in zip(gaps, (0.02, 0.04, 0.08, 0.08))] == [True] * 4
    assert not any(isolate for _t, isolate in exporter.attempts)
    assert len([e for e in errors if "kept, retrying in" in e]) == 4
    assert proc.stop(5)


def test_a_batch_that_fails_otherwise_is_retried_event_by_event(bus: RunBus, factory: Any) -> None:
    def fail(batch: Sequence[TelemetryEvent], isolate: bool) -> None:
        if not isolate and any(e.payload.get("bad") for e in batch):
            raise ValueError("cannot encode")

    errors: list[str] = []
    exporter = ScriptedExporter(fail)
    proc = make(bus, exporter, on_error=errors.append, report_interval_s=0.0)
    f = factory()
    events = [f.step(0, 0), f.step(0, 1, bad=True), f.step(0, 2)]
    for e in events:
        bus.publish(e)
    proc.start()
    assert proc.flush(5)
    assert [e.seq_id for e in exporter.events] == [0, 2]
    assert proc.lost_count() == 1 and proc.lost_reasons() == {"bad": 1} and proc.exported == 2
    assert any("one by one" in e for e in errors) and any("seq=1" in e for e in errors)
    assert proc.stop(5) is False  # something was lost


def test_a_batch_that_fails_even_event_by_event_is_counted_lost(bus: RunBus, factory: Any) -> None:
    def fail(batch: Sequence[TelemetryEvent], isolate: bool) -> None:
        if any(e.seq_id == 1 for e in batch):
            raise ValueError("broken")

    exporter = ScriptedExporter(fail)
    proc = make(bus, exporter, batch_size=2)
    f = factory()
    for i in range(4):
        bus.publish(f.step(0, i))
    proc.start()
    assert proc.flush(5)
    assert [e.seq_id for e in exporter.events] == [2, 3]
    assert proc.lost_reasons() == {"failed": 2} and proc.stats()["lost"] == 2
    proc.stop(5)


def test_the_stepped_form_sends_what_is_ready_and_finish_reports_what_is_left(bus: RunBus, factory: Any) -> None:
    down = threading.Event()

    def fail(batch: Sequence[TelemetryEvent], isolate: bool) -> None:
        if down.is_set():
            raise Busy("connection refused")

    exporter = ScriptedExporter(fail)
    proc = make(bus, exporter, batch_size=3, retry_initial_s=0.01, retry_max_s=0.02)
    f = factory()
    for i in range(5):
        bus.publish(f.step(0, i))
    proc.step(0.0)
    assert [e.seq_id for e in exporter.events] == [0, 1, 2, 3, 4] and proc.backlog() == 0
    down.set()
    for i in range(5, 8):
        bus.publish(f.step(0, i))
    proc.step(0.0)
    assert proc.backlog() == 3 and proc.failing and proc.retries == 1
    assert proc.finish(0.05) is False and proc.backlog() == 3  # Redis still down: kept, reported
    abort = threading.Event()
    abort.set()
    assert proc.finish(5.0, abort=abort) is False
    down.clear()
    assert proc.finish(1.0) is True and proc.backlog() == 0 and proc.recoveries == 1
    assert [e.seq_id for e in exporter.events] == list(range(8)) and bus.subscriptions() == []


def test_giving_up_counts_what_was_held_and_everything_published_afterwards(bus: RunBus, factory: Any) -> None:
    def fail(batch: Sequence[TelemetryEvent], isolate: bool) -> None:
        raise Busy("locked")

    errors: list[str] = []
    proc = make(bus, ScriptedExporter(fail), retry_initial_s=0.01, retry_max_s=0.02, on_error=errors.append)
    proc.start()
    f = factory()
    for i in range(6):
        bus.publish(f.step(0, i))
    assert proc.flush(0.2) is False
    assert proc.stop(0.2) is False
    assert not proc.running and proc.lost_count() == 6 and proc.backlog() == 0
    for i in range(6, 10):  # a source still reading its worker's pipes
        bus.publish(f.step(0, i))
    assert proc.lost_count() == 10 and proc.lost_reasons() == {"gave_up": 10}
    assert [s.maxlen for s in bus.subscriptions()] == [1]  # bounded memory
    assert any("without storing 6 events" in e for e in errors)


def test_bad_tuning_is_refused(bus: RunBus) -> None:
    with pytest.raises(ValueError):
        make(bus, ScriptedExporter(), batch_size=0)
    with pytest.raises(ValueError):
        make(bus, ScriptedExporter(), retry_initial_s=0.5, retry_max_s=0.1)


def test_a_batch_that_completes_a_run_takes_every_held_event_of_that_run(bus: RunBus, factory: Any) -> None:
    exporter = ScriptedExporter()
    proc = make(bus, exporter, batch_size=4)
    a2, a1, other = factory("run1", "agent2"), factory("run1", "agent1"), factory("run2", "x")
    first = [a2.started(), a2.step(0, 0), a2.completed()]  # agent2 ends before agent1 speaks
    rest = [other.step(0, 0), a1.started(), other.step(0, 1)] + [a1.step(0, i) for i in range(6)] + [a1.completed()]
    for e in first + rest:
        bus.publish(e)
    proc.start()
    assert proc.flush(5)
    batches = exporter.batches
    assert batches[0][:3] == first  # the completing batch holds all of run1 that was held ...
    assert [e for e in batches[0] if e.run_id == "run1"] == first + [e for e in rest if e.run_id == "run1"]
    run2 = [e for b in batches for e in b if e.run_id == "run2"]
    assert run2 == [e for e in rest if e.run_id == "run2"] and run2[-1] not in batches[0]  # ... in stream order
    assert proc.backlog() == 0 and proc.stop(5)


def test_one_tuning_declaration_serves_the_processor_and_the_sink(tmp_path: Path) -> None:
    from gym_gui.telemetry.batch_tuning import BatchTuning
    from gym_gui.telemetry.sink_core import SinkCore
    from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore

    bus = RunBus()
    store = TelemetrySQLiteStore(tmp_path / "t.sqlite")
    try:
        default = SinkCore(store, bus, subscriber_id="default")
        assert default.processor.tuning == BatchTuning()
        tuned = SinkCore(store, bus, subscriber_id="tuned", tuning=BatchTuning(batch_size=64, high_water=500, low_water=100),
                         max_delay_s=0.5)
        assert tuned.processor.tuning == BatchTuning(batch_size=64, high_water=500, low_water=100, max_delay_s=0.5)
        assert (tuned.batch_size, tuned.max_delay_s, tuned.gate.high_water) == (64, 0.5, 500)
        with pytest.raises(TypeError, match="batch_sise"):
            SinkCore(store, bus, subscriber_id="typo", batch_sise=10)
        with pytest.raises(ValueError):
            SinkCore(store, bus, subscriber_id="bad", batch_size=0)
    finally:
        store.close()
