"""TelemetryDBSink against EMBEDDING.md section 3: lifecycle, subscriptions, conversion of the existing
gym_gui's producer values into the real TelemetrySQLiteStore, and life without Qt or stop()."""

from __future__ import annotations

import json
import logging
import math
import queue
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from gym_gui.telemetry import db_sink as db_sink_module
from gym_gui.telemetry.db_sink import TelemetryDBSink
from gym_gui.telemetry.db_sink_records import episode_fields, parse_timestamp, step_fields
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore
from polling import wait_until

SINK_KEYS = {"STEP_APPENDED:db-sink-steps", "EPISODE_FINALIZED:db-sink-episodes"}
#: With this project's store and bus the sink also stores run completions.
OUR_SINK_KEYS = SINK_KEYS | {"RUN_COMPLETED:db-sink-runs"}



def sink_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "telemetry-db-sink"]


@pytest.fixture
def made() -> Any:
    """Sinks a test made; each is stopped afterwards, and no sink thread is left behind."""
    sinks: list[TelemetryDBSink] = []
    yield sinks
    for sink in sinks:
        sink.stop()
    wait_until(lambda: not sink_threads())


def started(made: list[TelemetryDBSink], store: Any, bus: RunBus, **kwargs: Any) -> TelemetryDBSink:
    sink = TelemetryDBSink(store, bus, **kwargs)
    made.append(sink)
    sink.start()
    wait_until(lambda: SINK_KEYS <= set(bus.queue_sizes()))
    return sink


@dataclass
class ProtoTimestamp:
    """What google.protobuf.Timestamp offers the sink: seconds and nanos (truthy even when unset)."""

    seconds: int = 0
    nanos: int = 0


@dataclass
class UpstreamEvent:
    """The existing gym_gui's TelemetryEvent: a mutable, unvalidated dataclass of six fields."""

    topic: Topic
    run_id: str
    agent_id: str | None
    seq_id: int
    ts_iso: Any
    payload: dict[str, Any]


def hub_step(run_id: str, step_index: int, **extra: Any) -> dict[str, Any]:
    """A RunStep as the GUI hub's MessageToDict gives it: every field, uint64 as str."""
    payload: dict[str, Any] = {
        "run_id": run_id, "agent_id": "", "episode_index": "0", "step_index": str(step_index),
        "action_json": "", "observation_json": "", "reward": 0.25, "terminated": False, "truncated": False,
        "policy_label": "", "backend": "", "render_hint_json": "", "frame_ref": "", "payload_version": 0,
        "render_payload_json": "", "episode_seed": "0", "worker_id": "",
    }
    payload.update(extra)
    return payload


def step_event(run_id: str, payload: dict[str, Any], *, ts_iso: Any = "2025-01-01T00:00:00.123456Z",
               agent_id: str = "", seq_id: int = 0) -> TelemetryEvent:
    return TelemetryEvent(topic=Topic.STEP_APPENDED, run_id=run_id, agent_id=agent_id, seq_id=seq_id,
                          ts_iso=ts_iso, payload=payload)


def episode_event(run_id: str, payload: dict[str, Any], *, ts_iso: Any = "2025-01-01T00:00:01Z",
                  agent_id: str = "", seq_id: int = 0) -> TelemetryEvent:
    return TelemetryEvent(topic=Topic.EPISODE_FINALIZED, run_id=run_id, agent_id=agent_id, seq_id=seq_id,
                          ts_iso=ts_iso, payload=payload)


def rows(store: TelemetrySQLiteStore, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    store.flush()
    return store._reader().execute(sql, args).fetchall()


# -- lifecycle -----------------------------------------------------------------------------------

def test_constructor_does_no_io_subscribes_nothing_and_starts_no_thread(tmp_path: Path, bus: RunBus) -> None:
    replay_dir = tmp_path / "replay"
    sink = TelemetryDBSink(object(), bus, batch_size=64, checkpoint_interval=1000, writer_queue_size=512,
                           replay_dir=replay_dir)  # a store without any method: none is called
    assert bus.subscriptions() == [] and bus.queue_sizes() == {}
    assert not sink_threads() and not sink.running
    assert not replay_dir.exists() and list(tmp_path.iterdir()) == []
    sink.stop()  # never started: a no-op
    assert bus.subscriptions() == [] and "TelemetryDBSink" in db_sink_module.__all__


def test_start_returns_at_once_and_its_daemon_thread_subscribes(store: TelemetrySQLiteStore, bus: RunBus,
                                                                 made: list[TelemetryDBSink],
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    sink = TelemetryDBSink(store, bus, writer_queue_size=512)
    made.append(sink)
    subscribed_by: list[str] = []
    bus.subscribed.connect(lambda _bus, subscription: subscribed_by.append(threading.current_thread().name),
                           weak=False)
    sink.start()
    wait_until(lambda: OUR_SINK_KEYS <= set(bus.queue_sizes()))
    assert subscribed_by == ["telemetry-db-sink"] * 3
    (thread,) = sink_threads()
    assert thread.daemon
    assert {s.key for s in bus.subscriptions()} == OUR_SINK_KEYS
    with caplog.at_level(logging.INFO, logger="gym_gui.telemetry.db_sink"):
        sink.start()
    assert "already running" in caplog.text
    assert sink_threads() == [thread]


def test_stop_writes_the_partial_batch_and_start_works_again(store: TelemetrySQLiteStore, bus: RunBus,
                                                             made: list[TelemetryDBSink]) -> None:
    sink = started(made, store, bus, batch_size=10_000, max_delay_s=3600.0)  # nothing written before stop
    for i in range(5):
        bus.publish(step_event("r1", hub_step("r1", i, episode_id="r1-ep000000")))
    sink.stop()
    assert not sink_threads() and not sink.running
    assert bus.subscriptions() == []  # the lossless subscriptions are not left to grow
    assert rows(store, "SELECT COUNT(*) FROM steps") == [(5,)]
    sink.start()
    wait_until(lambda: SINK_KEYS <= set(bus.queue_sizes()))
    for i in range(5, 8):
        bus.publish(step_event("r1", hub_step("r1", i, episode_id="r1-ep000000")))
    sink.stop()
    assert rows(store, "SELECT COUNT(*) FROM steps") == [(8,)]
    sink.stop()  # twice: still fine


def test_partial_batches_are_written_after_a_short_delay(store: TelemetrySQLiteStore, bus: RunBus,
                                                         made: list[TelemetryDBSink]) -> None:
    sink = started(made, store, bus, batch_size=256, max_delay_s=0.02)
    for i in range(3):
        bus.publish(step_event("r1", hub_step("r1", i, episode_id="r1-ep000000")))
    wait_until(lambda: sink.stats()["steps_written"] == 3)
    assert sink.running and sink.stats()["batches"] >= 1


def test_checkpoint_wal_every_checkpoint_interval_writes(db_path: Path, bus: RunBus,
                                                         made: list[TelemetryDBSink]) -> None:
    class CountingStore(TelemetrySQLiteStore):
        checkpoints = 0

        def checkpoint_wal(self, mode: str = "TRUNCATE") -> None:
            type(self).checkpoints += 1
            super().checkpoint_wal(mode)

    store = CountingStore(db_path)
    try:
        sink = started(made, store, bus, batch_size=10, checkpoint_interval=25)
        for i in range(100):
            bus.publish(step_event("r1", hub_step("r1", i, episode_id="r1-ep000000")))
        wait_until(lambda: sink.stats()["steps_written"] == 100 and sink.stats()["checkpoints"] == 4)
        assert CountingStore.checkpoints == 4  # one per 25 writes
        sink.stop()
    finally:
        store.close()


def test_a_store_error_is_logged_and_the_sink_carries_on(db_path: Path, bus: RunBus, made: list[TelemetryDBSink],
                                                         caplog: pytest.LogCaptureFixture) -> None:
    class FailingOnce(TelemetrySQLiteStore):
        failed = False

        def record_step(self, record: Any, **kwargs: Any) -> None:
            if record.step_index == 1 and not type(self).failed:
                type(self).failed = True
                raise OSError("disk on fire")
            super().record_step(record, **kwargs)

    store = FailingOnce(db_path)
    try:
        with caplog.at_level(logging.ERROR, logger="gym_gui.telemetry.db_sink"):
            sink = started(made, store, bus)
            for i in range(3):
                bus.publish(step_event("r1", hub_step("r1", i, episode_id="r1-ep000000")))
            wait_until(lambda: sink.stats()["errors"] == 1 and sink.stats()["steps_written"] == 2)
        assert "disk on fire" in caplog.text and sink.running
        sink.stop()
        assert rows(store, "SELECT step_index FROM steps ORDER BY step_index") == [(0,), (2,)]
    finally:
        store.close()


def test_lossless_for_our_store_bounded_to_writer_queue_size_otherwise(store: TelemetrySQLiteStore, bus: RunBus,
                                                                       made: list[TelemetryDBSink]) -> None:
    def sizes() -> dict[str, tuple[int | None, int]]:
        return {s.key: (s.maxlen, s.maxsize) for s in bus.subscriptions()}

    sink = started(made, store, bus, writer_queue_size=512)
    assert sizes() == {key: (None, 0) for key in OUR_SINK_KEYS}  # lossless: our store keeps everything
    sink.stop()
    sink = started(made, store, bus, writer_queue_size=512, lossless=False)
    completions = {"RUN_COMPLETED:db-sink-runs": (None, 0)}  # always lossless: one event per run
    assert sizes() == {key: (512, 512) for key in SINK_KEYS} | completions  # the existing app's drop-oldest queues
    sink.stop()

    class OtherStore:  # any object with the record API: bounded by default, as in the existing app
        def record_step(self, record: Any) -> None: ...
        def record_episode(self, rollup: Any) -> None: ...
        def checkpoint_wal(self) -> None: ...

    started(made, OtherStore(), bus, writer_queue_size=512)
    assert sizes() == {key: (512, 512) for key in SINK_KEYS}


def test_a_newer_sink_under_the_same_ids_replaces_and_keeps_its_subscriptions(
        store: TelemetrySQLiteStore, bus: RunBus, made: list[TelemetryDBSink]) -> None:
    first = started(made, store, bus)
    old = set(bus.subscriptions())
    second = TelemetryDBSink(store, bus)
    made.append(second)
    second.start()
    wait_until(lambda: not (set(bus.subscriptions()) & old))
    first.stop()  # must not unsubscribe the second sink's subscriptions
    assert {s.key for s in bus.subscriptions()} == OUR_SINK_KEYS
    bus.publish(step_event("r1", hub_step("r1", 0, episode_id="r1-ep000000")))
    wait_until(lambda: second.stats()["steps_written"] == 1)


def test_a_full_queue_and_a_slow_flush_are_logged_as_warnings(db_path: Path, bus: RunBus,
                                                             made: list[TelemetryDBSink],
                                                             caplog: pytest.LogCaptureFixture) -> None:
    entered, release = threading.Event(), threading.Event()

    class SlowStore(TelemetrySQLiteStore):
        def record_step(self, record: Any, **kwargs: Any) -> None:
            if record.step_index == 0:  # a disk that stalls on the first write: >= 0.3 s, until released
                entered.set()
                threading.Event().wait(0.3)
                release.wait(10)
            super().record_step(record, **kwargs)

    store = SlowStore(db_path)
    try:
        with caplog.at_level(logging.WARNING, logger="gym_gui.telemetry.db_sink"):
            sink = started(made, store, bus, batch_size=1, writer_queue_size=10, depth_log_interval_s=0.01)
            bus.publish(step_event("r1", hub_step("r1", 0, episode_id="r1-ep000000")))
            assert entered.wait(5)  # the sink thread is inside the slow write
            for i in range(1, 10):
                bus.publish(step_event("r1", hub_step("r1", i, episode_id="r1-ep000000")))
            release.set()
            wait_until(lambda: sink.stats()["steps_written"] == 10)
        assert "slow flush, 1 events took" in caplog.text
        assert "(>= 80% full: ['STEP_APPENDED:db-sink-steps'])" in caplog.text
    finally:
        release.set()
        for sink in made:
            sink.stop()
        store.close()


def test_stop_gives_up_joining_a_stuck_thread_logs_it_and_forgets_it(db_path: Path, bus: RunBus,
                                                                    made: list[TelemetryDBSink],
                                                                    caplog: pytest.LogCaptureFixture,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db_sink_module, "STOP_JOIN_TIMEOUT_S", 0.1)  # 5 s in production
    entered, release = threading.Event(), threading.Event()

    class StuckStore(TelemetrySQLiteStore):
        def record_step(self, record: Any, **kwargs: Any) -> None:
            if record.step_index == 0:
                entered.set()
                release.wait(10)
            super().record_step(record, **kwargs)

    store = StuckStore(db_path)
    try:
        sink = started(made, store, bus, batch_size=1)
        bus.publish(step_event("r1", hub_step("r1", 0, episode_id="r1-ep000000")))
        assert entered.wait(5)
        (stuck,) = sink_threads()
        with caplog.at_level(logging.WARNING, logger="gym_gui.telemetry.db_sink"):
            sink.stop()
        assert "still running after 0.1 s" in caplog.text and stuck.is_alive() and not sink.running
        sink.start()  # forgotten: a new thread starts and takes over the subscriptions
        wait_until(lambda: len(sink_threads()) == 2 and all(not s.closed for s in bus.subscriptions()))
        bus.publish(step_event("r1", hub_step("r1", 1, episode_id="r1-ep000000")))
        release.set()
        stuck.join(5)
        assert not stuck.is_alive()
        wait_until(lambda: sink.stats()["steps_written"] == 2)
        assert {s.key for s in bus.subscriptions()} == OUR_SINK_KEYS  # the old thread left the new ones alone
    finally:
        release.set()
        for s in made:
            s.stop()
        store.close()


def test_the_daemon_starts_it_inside_asyncio_without_blocking_the_loop(store: TelemetrySQLiteStore, bus: RunBus,
                                                                      made: list[TelemetryDBSink]) -> None:
    import asyncio

    async def daemon() -> float:
        sink = TelemetryDBSink(store, bus, batch_size=64, checkpoint_interval=1000, writer_queue_size=512)
        made.append(sink)
        t0 = time.monotonic()
        sink.start()
        took_s = time.monotonic() - t0
        while len(bus.queue_sizes()) < 2:
            await asyncio.sleep(0.001)
        for i in range(20):
            bus.publish(step_event("rd", hub_step("rd", i, episode_id="rd-ep000000")))
            await asyncio.sleep(0)
        while sink.stats()["steps_written"] < 20:
            await asyncio.sleep(0.001)
        return took_s

    took_s = asyncio.run(daemon())
    assert took_s < 0.1
    assert rows(store, "SELECT COUNT(*) FROM steps WHERE run_id = 'rd'") == [(20,)]


def test_a_bus_it_cannot_subscribe_to_is_an_error_not_a_crash(store: TelemetrySQLiteStore,
                                                               made: list[TelemetryDBSink],
                                                               caplog: pytest.LogCaptureFixture) -> None:
    sink = TelemetryDBSink(store, object())
    made.append(sink)
    with caplog.at_level(logging.ERROR, logger="gym_gui.telemetry.db_sink"):
        sink.start()
        wait_until(lambda: not sink.running)
    assert "cannot start" in caplog.text and sink.stats()["errors"] == 1
    sink.stop()


class QueueBus:
    """The existing gym_gui's RunBus in miniature: queue.Queue per (topic, id), replaced on re-subscribe,
    drop-oldest on a full queue (no waker, no drain: consumers poll)."""

    def __init__(self) -> None:
        self.queues: dict[tuple[Topic, str], queue.Queue[Any]] = {}
        self.sizes: dict[str, int] = {}

    def subscribe_with_size(self, topic: Topic, subscriber_id: str, max_queue: int) -> queue.Queue[Any]:
        q: queue.Queue[Any] = queue.Queue(maxsize=max(0, max_queue))
        self.queues[(topic, subscriber_id)] = q
        self.sizes[f"{topic.name}:{subscriber_id}"] = max_queue
        return q

    def publish(self, evt: Any) -> None:
        for (topic, _), q in list(self.queues.items()):
            if topic is evt.topic:
                if q.full():
                    q.get_nowait()
                q.put_nowait(evt)


def test_a_bus_with_queue_subscriptions_is_polled(store: TelemetrySQLiteStore, made: list[TelemetryDBSink]) -> None:
    bus = QueueBus()
    sink = TelemetryDBSink(store, bus, writer_queue_size=512, poll_interval_s=0.01)
    made.append(sink)
    sink.start()
    wait_until(lambda: len(bus.queues) == 2)
    assert bus.sizes == {key: 512 for key in SINK_KEYS}
    for i in range(4):
        bus.publish(UpstreamEvent(Topic.STEP_APPENDED, "r9", "", 0, ProtoTimestamp(1_700_000_000, 5_000),
                                  hub_step("r9", i, episode_id="r9-ep000000")))
    bus.publish(UpstreamEvent(Topic.EPISODE_FINALIZED, "r9", "", 0, ProtoTimestamp(),
                              {"episode_id": "r9-ep000000", "steps": "4", "total_reward": 1.0}))
    wait_until(lambda: sink.stats()["steps_written"] == 4 and sink.stats()["episodes_written"] == 1)
    sink.stop()
    assert rows(store, "SELECT COUNT(*) FROM steps WHERE run_id = 'r9'") == [(4,)]
    (rollup,) = store.episodes_for_run("r9")
    assert rollup.steps == 4 and rollup.total_reward == 1.0 and rollup.agent_id in ("", None)  # '' as None


# -- conversion ----------------------------------------------------------------------------------

def test_conversion_of_the_daemons_values() -> None:
    stamp = ProtoTimestamp(seconds=1_735_689_600, nanos=123_456_789)
    evt = UpstreamEvent(Topic.STEP_APPENDED, "", "", 0, stamp, {
        "run_id": "run-a", "agent_id": "", "episode_index": 3, "step_index": "7", "reward": "NaN",
        "terminated": True, "truncated": False, "timestamp": stamp, "action": None, "worker_id": "2",
        "episode_id": "run-a-w2-ep000003", "time_step": "11", "payload_version": "1"})
    fields = step_fields(evt)
    assert fields["step_index"] == 7 and fields["time_step"] == 11 and fields["payload_version"] == 1
    assert math.isnan(fields["reward"]) and fields["terminated"] is True and fields["truncated"] is False
    assert fields["run_id"] == "run-a-w2"  # from episode_id, before the last "-ep"
    assert fields["agent_id"] == "" and fields["worker_id"] == "2" and fields["info"] == {}
    assert fields["timestamp"] == datetime(2025, 1, 1, 0, 0, 0, 123456, tzinfo=timezone.utc)
    unset = step_fields(UpstreamEvent(Topic.STEP_APPENDED, "r", "", 0, ProtoTimestamp(), {}))
    assert "timestamp" not in unset and unset["episode_id"] == "" and unset["step_index"] == 0
    assert unset["run_id"] == "r" and unset["reward"] == 0.0 and unset["action"] is None


def test_timestamps_in_every_shape_the_producers_send() -> None:
    utc = timezone.utc
    assert parse_timestamp("2025-01-01T00:00:00.123456Z") == datetime(2025, 1, 1, 0, 0, 0, 123456, tzinfo=utc)
    assert parse_timestamp("2025-01-01T00:00:00.123456789Z") == datetime(2025, 1, 1, 0, 0, 0, 123456, tzinfo=utc)
    assert parse_timestamp("2025-01-01T00:00:00Z") == datetime(2025, 1, 1, tzinfo=utc)
    assert parse_timestamp("2025-01-01T01:00:00+01:00") == datetime(2025, 1, 1, tzinfo=utc)
    assert parse_timestamp(ProtoTimestamp(1_735_689_600, 0)) == datetime(2025, 1, 1, tzinfo=utc)
    for nothing in ("", "not a time", None, ProtoTimestamp(), 12.5, object()):
        assert parse_timestamp(nothing) is None


def test_episode_metadata_from_metadata_or_metadata_json(caplog: pytest.LogCaptureFixture) -> None:
    def meta(payload: dict[str, Any]) -> Any:
        return episode_fields(UpstreamEvent(Topic.EPISODE_FINALIZED, "r", "", 0, "", payload))["metadata"]

    assert meta({"metadata": {"a": 1}, "metadata_json": '{"b": 2}'}) == {"a": 1}
    assert meta({"metadata": {}, "metadata_json": '{"b": 2}'}) == {"b": 2}
    assert meta({"metadata_json": ""}) == {} and meta({}) == {}
    issues: list[tuple[str, str]] = []
    fields = episode_fields(UpstreamEvent(Topic.EPISODE_FINALIZED, "r", "", 0, "",
                                          {"metadata_json": "{oops", "steps": "ten"}),
                            lambda kind, msg: issues.append((kind, msg)))
    assert fields["metadata"] == {} and fields["steps"] == 0
    assert sorted(kind for kind, _ in issues) == ["bad_int", "bad_metadata_json"]


def test_upstream_payloads_round_trip_through_the_real_store(store: TelemetrySQLiteStore, bus: RunBus,
                                                             made: list[TelemetryDBSink],
                                                             caplog: pytest.LogCaptureFixture) -> None:
    sink = started(made, store, bus)
    for i in range(3):
        bus.publish(step_event("run-h", hub_step("run-h", i, episode_id="run-h-ep000000",
                                                 info={"prob": 1.0}, observation=[i, i])))
    bus.publish(step_event("run-d", {"run_id": "run-d", "episode_index": 0, "step_index": 0, "reward": 1.5,
                                     "terminated": True, "truncated": False, "action": None, "worker_id": "",
                                     "episode_id": "run-d-ep000000", "timestamp": ProtoTimestamp(1, 0)},
                           ts_iso=ProtoTimestamp(1_735_689_600, 0)))
    with caplog.at_level(logging.WARNING, logger="gym_gui.telemetry.db_sink"):
        bus.publish(episode_event("run-h", {"episode_id": "run-h-ep000000", "total_reward": 0.75, "steps": "3",
                                            "terminated": True, "truncated": False,
                                            "metadata_json": json.dumps({"episode_index": 0, "seed": 7})}))
        bus.publish(episode_event("run-d", {"episode_id": "run-d-ep000000", "total_reward": 1.5, "steps": "1",
                                            "terminated": True, "metadata_json": "{broken"}, ts_iso=""))
        wait_until(lambda: sink.stats()["episodes_written"] == 2)
    assert "metadata_json is not JSON" in caplog.text
    store.flush()  # the store's reads do not wait for its queue
    steps = store.episode_steps("run-h-ep000000")
    assert [s.step_index for s in steps] == [0, 1, 2]
    assert steps[1].reward == 0.25 and steps[1].info == {"prob": 1.0} and steps[1].run_id == "run-h"
    assert steps[1].timestamp == datetime(2025, 1, 1, 0, 0, 0, 123456, tzinfo=timezone.utc)
    (daemon_step,) = store.episode_steps("run-d-ep000000")
    assert daemon_step.terminated is True and daemon_step.reward == 1.5
    assert daemon_step.timestamp == datetime(2025, 1, 1, tzinfo=timezone.utc)
    (h,) = store.episodes_for_run("run-h")
    assert (h.steps, h.total_reward, h.terminated, h.metadata) == (3, 0.75, True, {"episode_index": 0, "seed": 7})
    (d,) = store.episodes_for_run("run-d")
    assert d.metadata == {} and d.steps == 1


def test_an_event_without_run_id_takes_it_from_the_episode_id(store: TelemetrySQLiteStore, bus: RunBus,
                                                              made: list[TelemetryDBSink]) -> None:
    sink = started(made, store, bus)
    bus.publish(step_event("", hub_step("", 4, episode_id="run-x-w1-ep000002", worker_id="1")))
    bus.publish(episode_event("", {"episode_id": "run-x-w1-ep000002", "steps": "5", "worker_id": "1"}))
    wait_until(lambda: sink.stats()["episodes_written"] == 1)
    sink.stop()
    (step,) = store.episode_steps("run-x-w1-ep000002")
    assert (step.run_id, step.step_index) == ("run-x-w1", 4)  # the part before the last "-ep", as upstream
    assert [e.steps for e in store.episodes_for_run("run-x-w1")] == [5]


def test_every_event_is_stored_though_every_seq_id_is_0(store: TelemetrySQLiteStore, bus: RunBus,
                                                       made: list[TelemetryDBSink]) -> None:
    sink = started(made, store, bus, batch_size=16)
    for run_id in ("ra", "rb"):
        for ep in range(3):
            episode_id = f"{run_id}-ep{ep:06d}"
            for i in range(10):
                bus.publish(step_event(run_id, hub_step(run_id, i, episode_id=episode_id), seq_id=0))
            bus.publish(episode_event(run_id, {"episode_id": episode_id, "steps": "10",
                                               "metadata_json": json.dumps({"episode_index": ep})}, seq_id=0))
    wait_until(lambda: sink.stats()["steps_written"] == 60 and sink.stats()["episodes_written"] == 6)
    sink.stop()
    assert rows(store, "SELECT run_id, COUNT(*) FROM steps GROUP BY run_id ORDER BY run_id") == [("ra", 30), ("rb", 30)]
    assert [len(store.episodes_for_run(r)) for r in ("ra", "rb")] == [3, 3]
    assert sink.stats()["errors"] == 0


# -- no Qt, never stopped ------------------------------------------------------------------------

def test_a_process_without_qt_exits_cleanly_with_a_running_sink(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import importlib.abc, sys

        class BlockQt(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {{"PyQt5", "PyQt6", "PySide2", "PySide6", "qtpy"}}:
                    raise ImportError(name + " is blocked in this test")
                return None

        sys.meta_path.insert(0, BlockQt())
        import threading, time
        from pathlib import Path
        from gym_gui.telemetry.db_sink import TelemetryDBSink
        from gym_gui.telemetry.events import TelemetryEvent, Topic
        from gym_gui.telemetry.run_bus import RunBus
        from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore

        store = TelemetrySQLiteStore(Path({str(tmp_path / "daemon.sqlite")!r}))
        bus = RunBus()
        sink = TelemetryDBSink(store, bus, batch_size=64, checkpoint_interval=1000, writer_queue_size=512,
                               max_delay_s=3600.0)  # the last partial batch waits for the exit
        sink.start()
        deadline = time.monotonic() + 10
        while len(bus.queue_sizes()) < 2 and time.monotonic() < deadline:
            time.sleep(0.002)
        for i in range(100):
            bus.publish(TelemetryEvent(topic=Topic.STEP_APPENDED, run_id="r", agent_id="", seq_id=0,
                                       ts_iso="", payload={{"episode_id": "r-ep000000", "step_index": str(i)}}))
        while (sink.stats()["steps_written"], sink.stats()["pending"]) != (64, 36) and time.monotonic() < deadline:
            time.sleep(0.002)
        assert any(t.name == "telemetry-db-sink" and t.daemon for t in threading.enumerate())
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in {{"PyQt5", "PyQt6", "PySide2", "PySide6", "qtpy"}})
        assert not loaded, loaded
        print("written", sink.stats()["steps_written"], "pending", sink.stats()["pending"], flush=True)
        # no sink.stop(), no store.close(): the interpreter must still exit, without an abort
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "written 64 pending 36" in result.stdout
    assert "Traceback" not in result.stderr and "Fatal" not in result.stderr
    store = TelemetrySQLiteStore(tmp_path / "daemon.sqlite")
    try:  # the partial batch was handed to the store at exit, and the store committed it
        assert rows(store, "SELECT COUNT(*) FROM steps") == [(100,)]
    finally:
        store.close()


def test_dbsink_is_still_served_at_the_seed_path_from_the_qt_shell() -> None:
    from gym_gui.qt.db_sink_thread import DbSink as Shell
    from gym_gui.telemetry.db_sink import DbSink

    assert DbSink is Shell
    with pytest.raises(AttributeError):
        db_sink_module.NoSuchName  # noqa: B018


# -- replay files ----------------------------------------------------------------------------------

def test_without_gym_gui_replay_the_arrays_stay_in_the_row_and_one_warning_says_so(
        tmp_path: Path, store: TelemetrySQLiteStore, bus: RunBus, made: list[TelemetryDBSink],
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    from gym_gui.telemetry import db_sink_replay

    monkeypatch.setattr(db_sink_replay, "_warned_unavailable", False)
    monkeypatch.setitem(sys.modules, "gym_gui.replay", None)  # not importable, as in this project
    with caplog.at_level(logging.WARNING, logger="gym_gui.telemetry.db_sink_replay"):
        sink = started(made, store, bus, replay_dir=tmp_path / "replay")
        bus.publish(step_event("r1", hub_step("r1", 0, episode_id="r1-ep000000", observation=[1, 2])))
        wait_until(lambda: sink.stats()["steps_written"] == 1)
        sink.stop()
        started(made, store, bus, replay_dir=tmp_path / "replay").stop()
    assert caplog.text.count("gym_gui.replay.ReplayWriter is not importable") == 1
    (step,) = store.episode_steps("r1-ep000000")
    assert step.observation == [1, 2] and step.frame_ref == ""  # as the hub sent it
    assert not (tmp_path / "replay").exists()


class FileReplayWriter:
    """The existing app's ReplayWriter contract, writing real .npy files: (run_id, replay_dir),
    start(), record_step(frame=, observation=, action=, reward=, done=) -> frame_ref, close()."""

    made: list[FileReplayWriter] = []

    def __init__(self, run_id: str, replay_dir: Path) -> None:
        self.root = Path(replay_dir) / run_id
        self.count = 0
        self.closed = False
        FileReplayWriter.made.append(self)

    def start(self) -> None:
        (self.root / "frames").mkdir(parents=True)
        (self.root / "observations").mkdir()

    def record_step(self, *, frame: Any, observation: Any, action: Any, reward: Any, done: bool) -> str:
        import numpy as np

        name = f"{self.count:06d}.npy"
        self.count += 1
        if frame is not None:
            np.save(self.root / "frames" / name, frame)
        if observation is not None:
            np.save(self.root / "observations" / name, observation)
        return f"{self.root}/frames/{name}"

    def close(self) -> None:
        self.closed = True


def test_numpy_frames_and_observations_go_to_the_replay_writer(
        tmp_path: Path, store: TelemetrySQLiteStore, bus: RunBus, made: list[TelemetryDBSink],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    import numpy as np

    module = types.ModuleType("gym_gui.replay")
    module.ReplayWriter = FileReplayWriter  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "gym_gui.replay", module)
    FileReplayWriter.made = []
    frame = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    sink = started(made, store, bus, replay_dir=tmp_path / "replay")
    bus.publish(step_event("r1", hub_step("r1", 0, episode_id="r1-ep000000", observation=np.array([3, 4]),
                                          render_payload={"rgb_array": frame, "mode": "rgb"})))
    bus.publish(step_event("r1", hub_step("r1", 1, episode_id="r1-ep000000", observation=5)))
    wait_until(lambda: sink.stats()["steps_written"] == 2)
    sink.stop()
    (writer,) = FileReplayWriter.made
    assert writer.closed
    assert np.array_equal(np.load(writer.root / "frames" / "000000.npy"), frame)
    assert np.array_equal(np.load(writer.root / "observations" / "000000.npy"), [3, 4])
    first, second = store.episode_steps("r1-ep000000")
    assert first.frame_ref == f"{writer.root}/frames/000000.npy"
    assert first.observation is None and first.render_payload == {"mode": "rgb"}
    assert second.frame_ref == "" and second.observation == 5  # no array: nothing to the writer (hub sent "")


def test_the_producers_seq_id_is_kept_with_each_row(store: TelemetrySQLiteStore, bus: RunBus,
                                                    made: list[TelemetryDBSink]) -> None:
    """The GUI hub repeats and renumbers seq_ids, the daemon sends 0: every row is stored, with its own."""
    sink = started(made, store, bus)
    sent = [(5, 0), (5, 1), (3, 0), (0, 0), (-1, 2)]  # (seq_id, step_index), upstream payloads: no episode_id
    for seq_id, step_index in sent:
        bus.publish(step_event("r1", hub_step("r1", step_index), seq_id=seq_id))
    bus.publish(episode_event("r1", {"episode_index": "0", "steps": "5"}, seq_id=0))
    wait_until(lambda: sink.stats()["steps_written"] == 5 and sink.stats()["episodes_written"] == 1)
    sink.stop()
    kept = [json.loads(extra)["producer_seq_id"]
            for (extra,) in rows(store, "SELECT extra_json FROM steps WHERE run_id = 'r1' ORDER BY seq_id")]
    assert kept == [seq for seq, _ in sent]
    assert [s.step_index for s in reversed(store.recent_steps(10))] == [i for _, i in sent]
    ((extra,),) = rows(store, "SELECT extra_json FROM episodes WHERE run_id = 'r1'")
    assert json.loads(extra)["producer_seq_id"] == 0


def test_what_the_records_have_no_field_for_is_kept_with_the_row(store: TelemetrySQLiteStore, bus: RunBus,
                                                                 made: list[TelemetryDBSink]) -> None:
    """The hub's payloads carry no episode_id and hold their data in keys such as action_json: the
    step keeps its episode_index, and those keys stay with the row (EMBEDDING.md 6.3)."""
    sink = started(made, store, bus)
    bus.publish(step_event("run-p", hub_step("run-p", 3, episode_index="2", action_json="3",
                                             observation_json="[1, 2]", policy_label="eps-greedy")))
    bus.publish(episode_event("run-p", {"run_id": "run-p", "episode_index": "2", "steps": "4",
                                        "total_reward": 1.5, "backend": "cleanrl"}))
    wait_until(lambda: sink.stats()["episodes_written"] == 1)
    sink.stop()
    ((episode_index, extra_json),) = rows(store, "SELECT episode_index, extra_json FROM steps WHERE run_id = ?",
                                          "run-p")
    assert episode_index == 2
    extra = json.loads(extra_json)
    assert extra["producer_extra"] == {"action_json": "3", "observation_json": "[1, 2]",
                                       "policy_label": "eps-greedy", "episode_seed": "0"}
    assert extra["episode_id"] == ""  # the record's own episode_id reads back as it came
    ((ep_index, ep_extra),) = rows(store, "SELECT episode_index, extra_json FROM episodes WHERE run_id = ?", "run-p")
    assert ep_index == 2 and json.loads(ep_extra)["producer_extra"] == {"backend": "cleanrl"}
    assert [s.step_index for s in store.steps_for_episode("run-p", None, 2)] == [3]


def test_a_run_completion_is_committed_after_the_steps_before_it(store: TelemetrySQLiteStore, bus: RunBus,
                                                                 made: list[TelemetryDBSink]) -> None:
    """Streams without lifecycle records are finished by a RUN_COMPLETED published for them (our
    RunRegistry.update_run_outcome): the sink stores it after the run's steps and says so."""
    persisted: list[str] = []
    done = threading.Event()

    def on_persisted(run_id: str) -> None:
        persisted.append(run_id)
        done.set()

    sink = TelemetryDBSink(store, bus, on_run_persisted=on_persisted)
    made.append(sink)
    sink.start()
    wait_until(lambda: "RUN_COMPLETED:db-sink-runs" in bus.queue_sizes())
    for step in range(300):
        bus.publish(step_event("run-c", hub_step("run-c", step), seq_id=step + 1))
    bus.publish(TelemetryEvent(topic=Topic.RUN_COMPLETED, run_id="run-c", agent_id=None, seq_id=301,
                               ts_iso="2025-01-01T00:00:05+00:00", payload={"outcome": "completed"}))
    assert done.wait(10)
    assert persisted == ["run-c"]
    run = store.run("run-c")
    assert run is not None and run.status == "completed"
    assert rows(store, "SELECT COUNT(*) FROM steps WHERE run_id = ?", "run-c") == [(300,)]
    assert sink.stats()["runs_completed"] == 1
