"""Wire format 2 (several events per stream entry) against a real redis-server: written by the
publisher, read by the source in any mix with format 1, exact values, re-sends, resumes, bad entries."""

from __future__ import annotations

import math
from typing import Any

import pytest

from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore
from gym_gui.telemetry.step_payload import StepPayload, compact_step
from gym_gui.transport.redis_client import make_client
from gym_gui.transport.redis_entries import STREAM_TOPICS
from gym_gui.transport.redis_keys import stream_key
from gym_gui.transport.redis_packed import decode_packed, pack_events
from gym_gui.transport.redis_publisher import RedisPublisher
from gym_gui.transport.redis_source import RedisTelemetrySource
from gui_side import GuiSide, stored_seqs
from redis_helpers import RedisServer, wait_until


def as_proxy_publishes(events: list[TelemetryEvent]) -> list[TelemetryEvent]:
    """Steps as StepPayloads where they fit (as the proxy publishes them), the rest unchanged."""
    out = []
    for evt in events:
        payload = compact_step(evt.payload) if evt.topic is Topic.STEP_APPENDED else None
        out.append(evt if payload is None else TelemetryEvent(evt.topic, evt.run_id, evt.agent_id, evt.seq_id,
                                                              evt.ts_iso, payload))
    return out


def plain(evt: TelemetryEvent) -> tuple[Any, ...]:
    return evt.topic, evt.run_id, evt.agent_id, evt.seq_id, evt.ts_iso, dict(evt.payload)


class Reader:
    """A source on a bus with a lossless recorder of every transported topic."""

    def __init__(self, server: RedisServer, sources: list[RedisTelemetrySource], **kw: Any) -> None:
        self.bus = RunBus()
        self.subs = {t: self.bus.subscribe(t, "recorder", maxlen=None) for t in STREAM_TOPICS}
        self.source = RedisTelemetrySource(self.bus, url=server.url, block_ms=50, discover_interval_s=0.05,
                                           retry_max_s=0.2, **kw)
        sources.append(self.source)
        self.seen: list[TelemetryEvent] = []
        self.source.start()

    def received(self) -> list[TelemetryEvent]:
        for sub in self.subs.values():
            self.seen += sub.drain()
        return sorted(self.seen, key=lambda e: (e.run_id, e.agent_id or "", e.seq_id))


def packed_publisher(server: RedisServer, entry_events: int = 8, **kw: Any) -> RedisPublisher:
    return RedisPublisher(make_client(server.url), entry_events=entry_events, **kw)


def test_a_packed_batch_is_few_entries_and_reads_back_as_the_same_events(
        redis_server: RedisServer, factory: Any, sources: list[RedisTelemetrySource]) -> None:
    a, b = factory("run-p", "a1", first_seq=1), factory("run-p", "a2", first_seq=1)
    events_a = as_proxy_publishes(a.run(4, 9))  # started, steps and episodes, completed: 42 events
    events_b = as_proxy_publishes([b.started(), b.heartbeat(), *b.episodes(2, 3)])
    batch = [e for pair in zip(events_a, events_b) for e in pair] + events_a[len(events_b):]  # two streams interleaved
    pub = packed_publisher(redis_server, 8)
    result = pub.publish(batch)
    assert (result.added, result.duplicates, result.unencodable, result.refused) == (len(batch), 0, 0, 0)
    with redis_server.client() as c:
        entries = c.xrange(stream_key("run-p", "a1"))
    n = len(events_a)
    assert [raw for raw, _f in entries] == [f"{min(i, n)}-1".encode() for i in range(8, n + 8, 8)]  # ids: each's last
    assert all(fields[b"v"] == b"2" and set(fields) == {b"v", b"events"} for _raw, fields in entries)
    reader = Reader(redis_server, sources)
    wait_until(lambda: len(reader.received()) == len(batch), message="every event")
    assert [plain(e) for e in reader.received()] == sorted(
        (plain(e) for e in batch), key=lambda t: (t[1], t[2] or "", t[3]))
    stats = reader.source.stats()
    assert (stats["entries_read"], stats["rejected_total"], stats["repeated"], stats["lost"]) == (len(batch), 0, 0, 0)


def test_both_formats_mix_in_one_stream_and_resend_overlaps_are_taken_once(
        redis_server: RedisServer, factory: Any, sources: list[RedisTelemetrySource]) -> None:
    f = factory("run-m", "a1", first_seq=1)
    events = as_proxy_publishes(f.run(3, 9))  # 32 events
    single = RedisPublisher(make_client(redis_server.url))
    assert single.publish(events[:5]).added == 5  # format 1: seq 1..5
    pub = packed_publisher(redis_server, 16)
    result = pub.publish(events[:20])  # a batch re-sent packed: [1..16] is new to Redis (id 16-1 > 5-1), [17..20]
    assert result.added == 20 and result.duplicates == 0
    again = pub.publish(events[:20])  # the same batch once more: both entries refused, their events counted
    assert (again.added, again.duplicates) == (0, 20)
    assert single.publish(events[20:24]).added == 4  # format 1 again
    assert pub.publish(events[24:]).added == len(events) - 24
    reader = Reader(redis_server, sources)
    wait_until(lambda: len(reader.received()) == len(events), message="every event once")
    assert [plain(e) for e in reader.received()] == [plain(e) for e in events]
    stats = reader.source.stats()
    assert stats["repeated"] == 5 and stats["lost"] == 0 and stats["rejected_total"] == 0


def test_a_gui_resuming_inside_an_entry_stores_only_what_it_lacks(
        qtbot: Any, redis_server: RedisServer, store: TelemetrySQLiteStore, factory: Any,
        sources: list[RedisTelemetrySource]) -> None:
    f = factory("run-r", "a1", first_seq=1)
    events = as_proxy_publishes(f.run(5, 9))  # 52 events
    pub = packed_publisher(redis_server, 32)
    pub.publish(events[:30])
    first = GuiSide(store, redis_server.url, sources).start()
    wait_until(lambda: first.source.stats()["published_total"] == 30, message="the first part")
    assert first.sink.flush(5)
    first.close()
    pub.publish(events[30:])  # entry [31..52]; the floor is 30
    second = GuiSide(store, redis_server.url, sources).start()
    with qtbot.waitSignal(second.sink.run_persisted, timeout=10_000):
        pass
    assert second.sink.flush(5)
    assert second.received_seqs("run-r", "a1") == list(range(31, len(events) + 1))
    seqs = stored_seqs(store, "run-r", "a1")
    assert seqs == [e.seq_id for e in events] and len(seqs) == len(set(seqs))
    assert store.step_count("run-r", "a1") == 45
    second.close()
    # and a GUI whose floor is inside an entry: the entry's events up to the floor are skipped
    pub2 = packed_publisher(redis_server, 64)
    g = factory("run-f", "a1", first_seq=1)
    more = as_proxy_publishes(g.episodes(2, 9))  # one entry [1..20]
    pub2.publish(more)
    reader = Reader(redis_server, sources, seq_floor=lambda run, agent: 12 if run == "run-f" else None,
                    accept=lambda run, agent: run == "run-f")
    wait_until(lambda: len(reader.received()) == 8, message="the events after the floor")
    assert [e.seq_id for e in reader.received()] == list(range(13, 21))
    wait_until(lambda: reader.source.stats()["repeated"] == 12, message="the entry's events below the floor counted")


def test_values_survive_exactly_and_an_unencodable_event_costs_only_itself(
        redis_server: RedisServer, factory: Any, sources: list[RedisTelemetrySource]) -> None:
    f = factory("run-x", "a1", first_seq=1)
    events = [
        f.started(big=1 << 70, nan=math.nan, inf=-math.inf, text="Frözen-🧊"),
        f.step(0, 0, action=[0.25, -1e300], observation={"pos": 1 << 65}),  # not plain: the payload as JSON text
        f.step(0, 1, reward=math.inf),  # a StepPayload, but an infinite reward: as JSON text
        f.step(0, 2, info={"bad": object()}),  # not JSON: cannot be sent
        f.step(0, 3, action="left", observation=True),
        f.episode(0, 4, total_reward=math.nan),
    ]
    events = as_proxy_publishes(events)
    assert type(events[2].payload) is StepPayload and type(events[4].payload) is StepPayload
    pub = packed_publisher(redis_server, 8)
    result = pub.publish(events)
    assert (result.added, result.unencodable) == (5, 1)  # the group went one event per entry
    reader = Reader(redis_server, sources)
    wait_until(lambda: len(reader.received()) == 5, message="the five sendable events")
    got = {e.seq_id: e for e in reader.received()}
    assert sorted(got) == [1, 2, 3, 5, 6]
    started = got[1].payload
    assert started["big"] == 1 << 70 and math.isnan(started["nan"]) and started["inf"] == -math.inf
    assert got[2].payload["observation"] == {"pos": 1 << 65} and got[2].payload["action"] == [0.25, -1e300]
    assert got[3].payload["reward"] == math.inf
    assert math.isnan(got[6].payload["total_reward"])
    assert plain(got[5]) == plain(events[4])
    # packed directly, the exact values survive too (the stdlib decodes such an entry)
    units = decode_packed(("run-x", "a1"), b"6-1", pack_events([events[0], events[1], events[5]]), 6)
    assert [seq for seq, _e in units] == [1, 2, 6]
    assert units[0][1].payload["big"] == 1 << 70 and math.isnan(units[2][1].payload["total_reward"])


@pytest.mark.parametrize("blob, reason", [
    (b"not json", "bad_payload"),
    (b"[]", "bad_payload"),
    (b'[[3,"RUN_STARTED","2026-01-01T00:00:00+00:00",{}],[2,"RUN_STARTED","t",{}]]', "bad_id"),
    (b'[[1,"RUN_STARTED","2026-01-01T00:00:00+00:00",{}]]', "bad_id"),  # its last seq_id is not the entry's
])
def test_a_malformed_packed_entry_is_counted_and_the_stream_goes_on(
        redis_server: RedisServer, factory: Any, sources: list[RedisTelemetrySource], blob: bytes, reason: str) -> None:
    f = factory("run-b", "a1", first_seq=1)
    key = stream_key("run-b", "a1")
    pub = packed_publisher(redis_server, 4)
    pub.publish(f.episodes(1, 2))  # 1..3
    with redis_server.client() as c:
        c.xadd(key, {"v": "2", "events": blob}, id="5-1")
    f.seq = 5
    good = f.step(1, 0)
    pub.publish([good, f.step(0, 9, reward="much")])  # 6..7 (the second a dict payload: a generic event)
    with redis_server.client() as c:  # a step item that is not a step (reward a string): that event only
        c.xadd(key, {"v": "2", "events": b'[[8,"t",1,2,3,4,"x",false,false,{},null],'
                                         b'[9,"EPISODE_FINALIZED","2026-01-01T00:00:00+00:00",{"episode_index":1}]]'},
               id="9-1")
    reader = Reader(redis_server, sources)
    wait_until(lambda: reader.source.stats()["published_total"] == 6, message="the good events")
    assert [e.seq_id for e in reader.received()] == [1, 2, 3, 6, 7, 9]
    stats = reader.source.stats()
    assert stats["rejected"] == ({reason: 1, "bad_payload": 2} if reason == "bad_payload" else {reason: 1, "bad_payload": 1})


def test_a_step_s_info_and_render_texts_are_checked_before_they_are_kept() -> None:
    def step(seq: int, info: str, render: str | None) -> list[Any]:
        return [seq, "2026-01-01T00:00:00+00:00", 0, seq, 1, 2, 0.5, False, False, info, render]

    import orjson
    blob = orjson.dumps([step(1, '{"prob":NaN}', None), step(2, "not json", None), step(3, "[1]", None),
                         step(4, '{"a":1}', '{"grid":[["S"]]}'), step(5, '{"a":1}', '{"x":')])
    units = decode_packed(("r", "a"), b"5-1", blob, 5)
    kinds = [type(u).__name__ for _seq, u in units]
    assert kinds == ["TelemetryEvent", "EntryRejected", "EntryRejected", "TelemetryEvent", "EntryRejected"]
    first, fourth = units[0][1].payload, units[3][1].payload
    assert type(first) is StepPayload and first.fields[7] == '{"prob":NaN}' and math.isnan(first["info"]["prob"])
    assert fourth["render_payload"] == {"grid": [["S"]]} and fourth["action"] == 1 and fourth["reward"] == 0.5
