"""RedisTelemetrySource against a real redis-server: Redis -> RunBus -> DbSink -> SQLite.

Disconnects, a server restart, a GUI restart, retention, malformed entries, the gate and the
thread's lifecycle, each checked against what is stored: no gap, no duplicate.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
import redis

from gym_gui.telemetry.backpressure import BacklogGate
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore
from gym_gui.transport.redis_client import make_client
from gym_gui.transport.redis_keys import announce_key, index_key, stream_key
from gym_gui.transport.redis_publisher import RedisPublisher
from gym_gui.transport.redis_source import SOURCE_CLIENT_NAME, RedisTelemetrySource
from gui_side import GuiSide, stored_seqs
from redis_helpers import RedisServer, client_ids, kill_clients, server_version, wait_until


def publisher(server: RedisServer) -> RedisPublisher:
    return RedisPublisher(make_client(server.url))


def stored_seqs_of(events: list[TelemetryEvent]) -> list[int]:
    return [e.seq_id for e in events if e.topic is not Topic.RUN_HEARTBEAT]


def assert_in_stream_order(events: list[TelemetryEvent]) -> None:
    """Each topic's events of a stream arrived in seq_id order (the recorder has one queue per topic)."""
    last: dict[tuple[Any, ...], int] = {}
    for evt in events:
        key = (evt.stream, evt.topic)
        assert evt.seq_id > last.get(key, -1), f"out of order: {key} {evt.seq_id}"
        last[key] = evt.seq_id


def test_remote_events_are_persisted_exactly_once_in_order(qtbot: Any, redis_server: RedisServer,
                                                          store: TelemetrySQLiteStore, factory: Any,
                                                          sources: list[RedisTelemetrySource]) -> None:
    gui = GuiSide(store, redis_server.url, sources).start()
    a, b = factory("run1", "a1", first_seq=1), factory("run1", "a2", first_seq=1)
    run_a, run_b = a.run(6, 5), [b.started(), b.heartbeat(), *b.episodes(3, 4)]
    pub = publisher(redis_server)
    with qtbot.waitSignal(gui.sink.run_persisted, timeout=10_000, check_params_cb=lambda r: r == "run1"):
        pub.publish(run_b)  # a stream discovered while the source runs
        pub.publish(run_a)
    assert gui.sink.flush(5)
    received = gui.received()
    assert_in_stream_order(received)
    assert gui.received_seqs("run1", "a1") == [e.seq_id for e in run_a]
    assert stored_seqs(store, "run1", "a1") == stored_seqs_of(run_a)
    assert stored_seqs(store, "run1", "a2") == stored_seqs_of(run_b)
    assert [e.episode_index for e in store.episode_records("run1", "a1")] == list(range(6))
    stats = gui.source.stats()
    assert stats["entries_read"] == stats["published_total"] == len(run_a) + len(run_b)
    assert stats["published"]["STEP_APPENDED"] == 30 + 12 and stats["published"]["RUN_HEARTBEAT"] == 1
    assert stats["rejected_total"] == 0 and stats["lost"] == 0 and stats["streams"] == 2
    assert sorted(gui.source.streams()) == [("run1", "a1"), ("run1", "a2")]
    run = store.run("run1")
    assert run is not None and run.outcome == "completed"
    gui.close()


def test_a_killed_connection_is_reopened_with_no_gap_and_no_duplicate(
        qtbot: Any, redis_server: RedisServer, store: TelemetrySQLiteStore, factory: Any,
        sources: list[RedisTelemetrySource]) -> None:
    gui = GuiSide(store, redis_server.url, sources, batch_count=25).start()
    f = factory("run-k", "a1", first_seq=1)
    events = f.run(60, 10)
    pub = publisher(redis_server)
    pub.publish(events[:200])
    wait_until(lambda: gui.source.stats()["published_total"] == 200, message="the first part")
    assert kill_clients(redis_server, SOURCE_CLIENT_NAME) >= 1  # killed while blocked in XREAD
    pub.publish(events[200:400])
    wait_until(lambda: gui.source.stats()["published_total"] > 200, message="reading again")
    kill_clients(redis_server, SOURCE_CLIENT_NAME)  # killed while it is reading the backlog, most likely
    with qtbot.waitSignal(gui.sink.run_persisted, timeout=10_000):
        pub.publish(events[400:])
    stats = gui.source.stats()
    assert stats["reconnects"] >= 1 and stats["connection_errors"] >= 1 and stats["connected"]
    assert gui.received_seqs("run-k", "a1") == [e.seq_id for e in events]  # each exactly once
    assert stats["published_total"] == len(events)
    assert stored_seqs(store, "run-k", "a1") == stored_seqs_of(events)
    gui.close()


def test_a_restarted_server_keeps_its_data_and_the_source_resumes(
        qtbot: Any, own_redis: Any, store: TelemetrySQLiteStore, factory: Any,
        sources: list[RedisTelemetrySource]) -> None:
    server = own_redis(appendonly=True)
    gui = GuiSide(store, server.url, sources).start()
    f = factory("run-r", "a1", first_seq=1)
    events = f.run(20, 10)
    publisher(server).publish(events[:100])
    wait_until(lambda: gui.source.stats()["published_total"] == 100, message="the first part")
    server.restart()  # the same port; the AOF brings the stream back
    with qtbot.waitSignal(gui.sink.run_persisted, timeout=10_000):
        publisher(server).publish(events[100:])
    stats = gui.source.stats()
    assert stats["connection_errors"] >= 1 and stats["reconnects"] >= 1
    assert gui.received_seqs("run-r", "a1") == [e.seq_id for e in events]
    assert stored_seqs(store, "run-r", "a1") == stored_seqs_of(events)
    gui.close()


def test_a_restarted_gui_resumes_after_the_last_persisted_seq_id(
        qtbot: Any, redis_server: RedisServer, store: TelemetrySQLiteStore, factory: Any,
        sources: list[RedisTelemetrySource]) -> None:
    f = factory("run-g", "a1", first_seq=1)
    events = f.run(30, 5)
    pub = publisher(redis_server)
    pub.publish(events[:70])
    first = GuiSide(store, redis_server.url, sources).start()
    wait_until(lambda: first.source.stats()["published_total"] == 70, message="the first GUI's part")
    first.close()  # the GUI quits: its sink stores everything it received
    assert store.max_seq_id("run-g", "a1") == events[69].seq_id

    pub.publish(events[70:])
    second = GuiSide(store, redis_server.url, sources)
    with qtbot.waitSignal(second.sink.run_persisted, timeout=10_000):
        second.start()
    received = second.received_seqs("run-g", "a1")
    assert received == [e.seq_id for e in events[70:]]  # nothing read twice
    assert second.source.stats()["entries_read"] == len(events) - 70
    seqs = stored_seqs(store, "run-g", "a1")
    assert seqs == stored_seqs_of(events) and len(seqs) == len(set(seqs))
    assert store.step_count("run-g", "a1") == 150
    second.close()


def test_entries_trimmed_before_they_were_read_are_reported_lost(
        qtbot: Any, redis_server: RedisServer, store: TelemetrySQLiteStore, factory: Any,
        sources: list[RedisTelemetrySource]) -> None:
    f = factory("run-t", "a1", first_seq=1)
    events = [f.started(), *f.episodes(10, 9)]  # seq 1..101
    pub = publisher(redis_server)
    pub.publish(events[:10])
    first = GuiSide(store, redis_server.url, sources).start()
    wait_until(lambda: first.source.stats()["published_total"] == 10, message="the first part")
    first.close()
    pub.publish(events[10:])
    with redis_server.client() as c:
        c.xtrim(stream_key("run-t", "a1"), maxlen=20, approximate=False)  # keeps seq 82..101
    f2 = factory("run-t2", "a1", first_seq=1)
    other = f2.episodes(3, 9)  # a fresh stream trimmed before anyone read it: seq 1..30, keeps 21..30
    pub.publish(other)
    with redis_server.client() as c:
        c.xtrim(stream_key("run-t2", "a1"), maxlen=10, approximate=False)

    second = GuiSide(store, redis_server.url, sources).start()
    wait_until(lambda: second.source.stats()["published_total"] == 30, message="what retention kept")
    assert second.received_seqs("run-t", "a1") == list(range(82, 102))
    assert second.received_seqs("run-t2", "a1") == list(range(21, 31))
    expected = {("run-t", "a1"): [(11, 81)], ("run-t2", "a1"): [(1, 20)]}
    # The source explains a gap (XINFO) on its thread after publishing what follows it.
    wait_until(lambda: second.source.lost_ranges() == expected, message="both lost ranges")
    stats = second.source.stats()
    assert stats["lost"] == 71 + 20 and stats["rejected_total"] == 0
    assert stats["lost_ranges"] == {"run-t/a1": [(11, 81)], "run-t2/a1": [(1, 20)]}
    second.close()


def test_seq_ids_a_writer_skipped_are_not_called_lost(redis_server: RedisServer, bus: RunBus, factory: Any,
                                                     sources: list[RedisTelemetrySource]) -> None:
    if server_version(redis_server) < (7,):
        pytest.skip("Redis < 7 keeps no trace of XDEL: every gap between entries is reported as lost")
    f = factory("run-s", "a1", first_seq=1)
    events = [f.started(), f.step(0, 0)]
    f.seq += 5  # the writer skipped 3..7 (nothing was trimmed)
    events += [f.step(0, 1), f.step(0, 2)]
    publisher(redis_server).publish(events)
    made: list[threading.Thread] = []

    def factory_on_the_thread() -> Any:
        made.append(threading.current_thread())
        return make_client(redis_server.url, socket_timeout_s=2.0)

    source = RedisTelemetrySource(bus, client_factory=factory_on_the_thread, block_ms=50, discover_interval_s=0.05)
    sources.append(source)
    source.start()
    wait_until(lambda: source.stats()["published_total"] == 4, message="all four")
    assert [t.name for t in made] == ["redis-source-reader"]
    assert source.lost_ranges() == {} and source.stats()["lost"] == 0


def test_entries_redis_lost_with_its_data_are_reported_lost_and_the_rest_delivered(
        redis_server: RedisServer, bus: RunBus, factory: Any, sources: list[RedisTelemetrySource]) -> None:
    backlog = [0]
    gate = BacklogGate(lambda: backlog[0], high_water=10, low_water=5)
    recorder = bus.subscribe(Topic.STEP_APPENDED, "recorder", maxlen=None)
    f = factory("run-e", "a1", first_seq=1)
    steps = [f.step(0, i) for i in range(40)]  # seq 1..40
    pub = publisher(redis_server)
    pub.publish(steps[:20])
    source = RedisTelemetrySource(bus, url=redis_server.url, gate=gate, block_ms=50, discover_interval_s=0.05)
    sources.append(source)
    source.start()
    wait_until(lambda: source.stats()["published_total"] == 20, message="the first part")
    backlog[0] = 100  # the GUI falls behind: the source parks before its next read
    wait_until(lambda: gate.is_paused, message="the source waiting on the gate")
    pub.publish(steps[20:30])
    redis_server.client().flushall()  # Redis loses its data (as when restarted without persistence)
    backlog[0] = 0
    gate.notify()
    wait_until(lambda: source.stats()["vanished"] == {"run-e/a1": 20}, message="the stream reported gone")
    assert source.lost_ranges() == {}  # nothing is known lost before the writer goes on
    pub.publish(steps[30:])  # the writer numbers on; its batch re-indexes the stream
    wait_until(lambda: source.lost_ranges() == {("run-e", "a1"): [(21, 30)]}, message="the lost range")
    # (the range is known from the first entry after it, which an XREAD may return alone: its
    # unblocking can come before the writer's other nine entries are in)
    wait_until(lambda: source.stats()["published_total"] == 30, message="the writer's ten new entries")
    stats = source.stats()
    assert stats["lost"] == 10 and stats["lost_ranges"] == {"run-e/a1": [(21, 30)]} and stats["vanished"] == {}
    assert [e.seq_id for e in recorder.drain()] == list(range(1, 21)) + list(range(31, 41))
    assert redis_server.client().smembers(index_key()) == {stream_key("run-e", "a1").encode()}


def test_a_gui_started_after_redis_lost_its_data_reports_the_gap_as_lost(
        redis_server: RedisServer, bus: RunBus, factory: Any, sources: list[RedisTelemetrySource]) -> None:
    f = factory("run-f", "a1", first_seq=1)
    steps = [f.step(0, i) for i in range(30)]
    pub = publisher(redis_server)
    pub.publish(steps[:20])
    redis_server.client().flushall()
    pub.publish(steps[20:])  # 21..30 in a stream that now begins there
    source = RedisTelemetrySource(bus, url=redis_server.url, seq_floor=lambda run, agent: 12, block_ms=50,
                                  discover_interval_s=0.05)
    sources.append(source)
    source.start()
    wait_until(lambda: source.lost_ranges() == {("run-f", "a1"): [(13, 20)]}, message="the lost range")
    assert source.stats()["published_total"] == 10 and source.stats()["lost"] == 8


def test_malformed_entries_are_counted_by_reason_and_the_valid_ones_delivered(
        redis_server: RedisServer, bus: RunBus, factory: Any, sources: list[RedisTelemetrySource]) -> None:
    f = factory("run-m", "a1", first_seq=1)
    key = stream_key("run-m", "a1")
    good = {"topic": "STEP_APPENDED", "ts": "2030-01-01T00:00:00+00:00", "payload": '{"episode_index":0}'}
    with redis_server.client() as c:
        RedisPublisher(c).publish([f.started()])  # 1-1, and the index
        c.xadd(key, {"ts": "t", "payload": "{}"}, id="2-1")  # missing topic
        c.xadd(key, {**good, "payload": "{not json"}, id="3-1")
        c.xadd(key, {**good, "topic": "NO_SUCH_TOPIC"}, id="4-1")
        c.xadd(key, good, id="5-0")  # an id that is not {seq_id}-1
        c.xadd(key, good, id="5-1")
        c.xadd(key, {**good, "payload": "[" * 100_000 + "]" * 100_000}, id="6-1")  # too deep to decode
        c.xadd(key, {**good, "topic": "OVERFLOW"}, id="7-1")
        c.xadd(key, good, id="8-1")
        c.sadd(index_key(), "not-our-key", "gym_gui:telemetry:run-x")
    received = bus.subscribe(Topic.STEP_APPENDED, "recorder", maxlen=None)
    started = bus.subscribe(Topic.RUN_STARTED, "recorder", maxlen=None)
    source = RedisTelemetrySource(bus, url=redis_server.url, block_ms=50, discover_interval_s=0.05)
    sources.append(source)
    source.start()
    wait_until(lambda: source.stats()["entries_read"] == 9, message="every entry")
    assert [e.seq_id for e in received.drain()] == [5, 8]
    assert [e.seq_id for e in started.drain()] == [1]
    stats = source.stats()
    assert stats["rejected"] == {"missing_field": 1, "bad_payload": 2, "unknown_topic": 2, "bad_id": 1, "bad_key": 2}
    assert stats["published_total"] == 3 and stats["lost"] == 0
    with redis_server.client() as c:  # the stream goes on after them
        RedisPublisher(c).publish([factory("run-m", "a1", first_seq=9).step(0, 3)])
    wait_until(lambda: source.stats()["published_total"] == 4, message="the entry after them")
    assert [e.seq_id for e in received.drain()] == [9]


def test_an_indexed_key_of_another_type_is_dropped_and_the_others_go_on(
        redis_server: RedisServer, bus: RunBus, factory: Any, sources: list[RedisTelemetrySource]) -> None:
    with redis_server.client() as c:
        c.set(stream_key("run-w", "a1"), "a string")
        c.sadd(index_key(), stream_key("run-w", "a1"))
        RedisPublisher(c).publish(factory("run-ok", "a1", first_seq=1).run(1, 3))
    source = RedisTelemetrySource(bus, url=redis_server.url, block_ms=50, discover_interval_s=0.05)
    sources.append(source)
    source.start()
    wait_until(lambda: source.stats()["published_total"] == 6, message="the good stream")
    assert source.stats()["rejected"] == {"not_a_stream": 1}
    assert source.streams() == [("run-ok", "a1")]


def test_a_stream_is_read_as_soon_as_its_writer_announces_it(
        redis_server: RedisServer, bus: RunBus, factory: Any, sources: list[RedisTelemetrySource]) -> None:
    """The index is looked at once (at start): streams written later are found by their announcement,
    while the source blocks on its streams, each announced once per writer."""
    source = RedisTelemetrySource(bus, url=redis_server.url, block_ms=500, discover_interval_s=600)
    sources.append(source)
    source.start()
    wait_until(lambda: source.stats()["connected"], message="the source's first look at the index")
    pub = publisher(redis_server)
    first, second = factory("run-n1", "a1", first_seq=1), factory("run-n2", "a1", first_seq=1)
    pub.publish(first.run(1, 3))  # while the source waits with no stream to read
    wait_until(lambda: source.stats()["published_total"] == 6, message="the first stream, announced")
    pub.publish(second.run(1, 3))  # while it blocks on the first one
    wait_until(lambda: source.stats()["published_total"] == 12, message="the second stream, announced")
    pub.publish(first.run(1, 3))
    wait_until(lambda: source.stats()["published_total"] == 18, message="more of the first stream")
    assert source.streams() == [("run-n1", "a1"), ("run-n2", "a1")]
    with redis_server.client() as c:
        assert [fields for _id, fields in c.xrange(announce_key())] == [
            {b"stream": stream_key("run-n1", "a1").encode()}, {b"stream": stream_key("run-n2", "a1").encode()}]
    assert source.stats()["rejected_total"] == 0


@pytest.mark.parametrize("when", ["before-start", "while-reading"])
def test_an_announcement_key_of_another_type_leaves_discovery_to_the_index(
        redis_server: RedisServer, bus: RunBus, factory: Any, sources: list[RedisTelemetrySource], when: str) -> None:
    pub = publisher(redis_server)
    if when == "before-start":
        with redis_server.client() as c:
            c.set(announce_key(), "a string")
    pub.publish(factory("run-s1", "a1", first_seq=1).run(1, 3))  # (its announcement refused: logged, not a loss)
    assert pub.refused == 0 and pub.added == 6
    source = RedisTelemetrySource(bus, url=redis_server.url, block_ms=50, discover_interval_s=0.05)
    sources.append(source)
    source.start()
    wait_until(lambda: source.stats()["published_total"] == 6, message="the first stream")
    if when == "while-reading":
        with redis_server.client() as c:
            c.delete(announce_key())
            c.set(announce_key(), "a string")
    pub.publish(factory("run-s2", "a1", first_seq=1).run(1, 3))
    wait_until(lambda: source.stats()["published_total"] == 12, message="a later stream, from the index")
    assert source.stats()["rejected"] == {"not_a_stream": 1}
    assert source.streams() == [("run-s1", "a1"), ("run-s2", "a1")]


def test_a_closed_gate_pauses_reading(redis_server: RedisServer, bus: RunBus, factory: Any,
                                      sources: list[RedisTelemetrySource]) -> None:
    backlog = [100]
    gate = BacklogGate(lambda: backlog[0], high_water=10, low_water=5)
    publisher(redis_server).publish(factory("run-p", "a1", first_seq=1).run(2, 3))
    source = RedisTelemetrySource(bus, url=redis_server.url, gate=gate, block_ms=50, discover_interval_s=0.05)
    sources.append(source)
    source.start()
    wait_until(lambda: gate.is_paused, message="the source waiting on the gate")
    # (paused long enough to count: the source leaves waits under 1 ms out of its paused_s)
    wait_until(lambda: gate.paused_s > 0.01, message="the source paused for 10 ms")
    assert source.stats()["entries_read"] == 0
    backlog[0] = 0
    gate.notify()
    wait_until(lambda: source.stats()["published_total"] == 10, message="reading after the gate opened")
    assert source.stats()["paused_s"] > 0


def test_a_source_started_before_the_server_connects_once_it_is_up(
        own_redis: Any, tmp_path: Any, bus: RunBus, factory: Any, sources: list[RedisTelemetrySource]) -> None:
    from redis_helpers import RedisServer, redis_server_binary
    server = RedisServer(redis_server_binary(), tmp_path / "late")
    source = RedisTelemetrySource(bus, url=server.url, block_ms=50, discover_interval_s=0.05, retry_max_s=0.1)
    sources.append(source)
    source.start()
    wait_until(lambda: source.stats()["connection_errors"] >= 2, message="failed attempts")
    assert not source.stats()["connected"] and source.is_running()
    server.start()
    try:
        publisher(server).publish(factory("run-l", "a1", first_seq=1).run(1, 2))
        wait_until(lambda: source.stats()["published_total"] == 5, message="events once the server is up")
        assert source.stats()["reconnects"] == 1 and source.stats()["connected"]
    finally:
        assert source.stop(5)
        server.stop()


def test_stop_is_idempotent_and_ends_the_thread(redis_server: RedisServer, bus: RunBus) -> None:
    never = RedisTelemetrySource(bus, url=redis_server.url)
    assert never.stop() and never.stop() and not never.is_running()
    source = RedisTelemetrySource(bus, url=redis_server.url, block_ms=200)
    source.start()
    source.start()  # idempotent: one thread
    wait_until(lambda: client_ids(redis_server, SOURCE_CLIENT_NAME), message="the source's connection")
    threads = [t for t in threading.enumerate() if t.name == "redis-source-reader"]
    assert len(threads) == 1
    assert source.stop(5.0)
    assert not threads[0].is_alive() and not source.is_running()
    assert source.stop(0.1) and not source.stats()["running"]
    source.start()  # a no-op after stop
    assert not source.is_running()
    wait_until(lambda: not client_ids(redis_server, SOURCE_CLIENT_NAME), message="its connection closed")


def test_stop_cancels_an_xread_in_progress(redis_server: RedisServer, bus: RunBus, factory: Any) -> None:
    """A source blocked in a 30 s XREAD (caught up with its stream) ends at ``stop`` within its
    timeout, counting no connection error for the call it cancelled; what it read stays published."""
    f = factory("run-c", "a1", first_seq=1)
    publisher(redis_server).publish([f.started(), f.step(0, 0), f.step(0, 1)])
    source = RedisTelemetrySource(bus, url=redis_server.url, block_ms=30_000, discover_interval_s=60.0)
    source.start()
    try:
        wait_until(lambda: source.stats()["published_total"] == 3, message="the stream read")
        wait_until(lambda: any(c.get("cmd") == "xread" for c in redis_server.client().client_list()),
                   message="the source blocked in XREAD")
    finally:
        stopped = source.stop(5.0)
    assert stopped and not source.is_running()
    stats = source.stats()
    assert stats["connection_errors"] == 0 and stats["published_total"] == 3


class CommandLog:
    """The arguments of every command Redis runs (MONITOR, on its own connection and thread)."""

    def __init__(self, server: RedisServer) -> None:
        self._client = redis.Redis.from_url(server.url, socket_timeout=0.1)
        self._monitor = self._client.monitor().__enter__()
        self.commands: list[list[str]] = []
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, name="command-log", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._halt.is_set():
            try:
                self.commands.append(self._monitor.next_command()["command"].split())
            except redis.TimeoutError:
                continue

    def stop(self) -> None:
        self._halt.set()
        self._thread.join(5)
        assert not self._thread.is_alive()
        self._monitor.__exit__(None, None, None)
        self._client.close()

    def xread_counts(self) -> list[int]:
        return [int(c[2]) for c in self.commands if c[:2] == ["XREAD", "COUNT"]]


def test_entries_of_many_events_are_read_a_few_at_a_time(redis_server: RedisServer, store: TelemetrySQLiteStore,
                                                          factory: Any, sources: list[RedisTelemetrySource]) -> None:
    f = factory("run-big", "a1", first_seq=1)
    events = [f.started(), *f.episodes(20, 9), f.completed()]  # 202 events, entries of 50 (wire format 2)
    RedisPublisher(make_client(redis_server.url), entry_events=50).publish(events)
    log = CommandLog(redis_server)
    try:
        gui = GuiSide(store, redis_server.url, sources, batch_count=512, batch_events=100)
        assert gui.source.xread_count() == 100  # nothing read yet: one event per entry assumed
        gui.start()
        wait_until(lambda: gui.source.stats()["published_total"] == len(events), message="every event")
        assert gui.sink.flush(5)
        assert stored_seqs(store, "run-big", "a1") == stored_seqs_of(events)
        assert gui.source.xread_count() == 2  # 100 events aimed at; 202 events in 5 entries: 41 an entry
        wait_until(lambda: log.xread_counts()[-1:] == [2], message="an XREAD with COUNT 2")
        counts = log.xread_counts()
        assert counts[0] == 100 and set(counts[1:]) == {2}, counts
        gui.close()
    finally:
        log.stop()


def test_bad_arguments_are_refused() -> None:
    bus = RunBus()
    with pytest.raises(ValueError):
        RedisTelemetrySource(bus)
    with pytest.raises(ValueError):
        RedisTelemetrySource(bus, url="redis://127.0.0.1:1/0", client_factory=lambda: make_client("redis://x"))
    with pytest.raises(ValueError):
        RedisTelemetrySource(bus, url="redis://127.0.0.1:1/0", block_ms=0)
    with pytest.raises(ValueError):
        RedisTelemetrySource(bus, url="redis://127.0.0.1:1/0", batch_events=0)
    with pytest.raises(ValueError):
        RedisTelemetrySource(bus, url="ftp://nowhere")
