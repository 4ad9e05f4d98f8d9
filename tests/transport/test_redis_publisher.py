"""RedisPublisher against a real redis-server: ids from seq_ids, the index set, idempotence, retention."""

from __future__ import annotations

import json

import pytest
import redis

from gym_gui.transport.redis_client import make_client
from gym_gui.transport.redis_keys import index_key, stream_key
from gym_gui.transport.redis_publisher import RedisPublisher
from redis_helpers import RedisServer


@pytest.fixture
def client(redis_server: RedisServer) -> redis.Redis:
    c = make_client(redis_server.url)
    yield c
    c.close()


def test_events_become_entries_with_seq_ids_and_the_stream_is_indexed(client: redis.Redis, factory) -> None:
    pub = RedisPublisher(client)
    a, b = factory("run1", "a1", first_seq=1), factory("run1", None, first_seq=1)
    events = a.run(2, 3) + b.run(1, 1)
    result = pub.publish(events)
    assert (result.added, result.duplicates, result.unencodable, result.refused) == (len(events), 0, 0, 0)
    key_a, key_b = stream_key("run1", "a1"), stream_key("run1", None)
    assert client.smembers(index_key()) == {key_a.encode(), key_b.encode()}
    entries = client.xrange(key_a)
    assert [e[0] for e in entries] == [f"{n}-1".encode() for n in range(1, a.seq + 1)]
    assert entries[1][1][b"topic"] == b"STEP_APPENDED"
    assert pub.last_seq_id("run1", "a1") == a.seq and pub.last_seq_id("run1", None) == b.seq
    assert pub.last_seq_id("run2", "a1") is None
    assert pub.stats()["streams"] == 2


def test_every_batch_re_indexes_its_streams_after_redis_lost_its_data(client: redis.Redis, factory) -> None:
    pub = RedisPublisher(client)
    a, b = factory("run1", "a1", first_seq=1), factory("run1", "a2", first_seq=1)
    pub.publish([a.started(), b.started()])
    client.flushall()  # what a Redis restarted without persistence holds
    pub.publish([a.step(0, 0)])
    assert client.smembers(index_key()) == {stream_key("run1", "a1").encode()}  # the stream written since
    pub.publish([b.step(0, 0), a.step(0, 1)])
    assert client.smembers(index_key()) == {stream_key("run1", "a1").encode(), stream_key("run1", "a2").encode()}
    assert [e[0] for e in client.xrange(stream_key("run1", "a1"))] == [b"2-1", b"3-1"]  # numbering goes on
    assert pub.stats()["streams"] == 2


def test_publishing_again_is_idempotent_and_counts_duplicates(client: redis.Redis, factory) -> None:
    pub = RedisPublisher(client)
    f = factory(first_seq=1)
    first = f.run(1, 4)
    pub.publish(first[:4])
    more = f.episodes(1, 2, first_episode=1)
    result = pub.publish(first + more)  # a retried batch: its first part is in Redis already
    assert (result.added, result.duplicates) == (len(first) - 4 + len(more), 4)
    assert client.xlen(stream_key(f.run_id, f.agent_id)) == len(first) + len(more)
    assert pub.stats()["duplicates"] == 4


def test_retention_bounds_the_stream_and_the_last_seq_id_survives_trimming(client: redis.Redis, factory) -> None:
    pub = RedisPublisher(client, retention=10, approximate_trim=False)
    f = factory(first_seq=1)
    pub.publish(f.episodes(5, 9))
    key = stream_key(f.run_id, f.agent_id)
    assert client.xlen(key) == 10
    assert client.xrange(key, count=1)[0][0] == f"{f.seq - 9}-1".encode()
    client.xtrim(key, maxlen=0)
    assert pub.last_seq_id(f.run_id, f.agent_id) == f.seq  # a restarted writer still continues after it


def test_unencodable_payloads_are_counted_and_the_rest_is_sent(client: redis.Redis, factory) -> None:
    pub = RedisPublisher(client)
    f = factory(first_seq=1)
    events = [f.started(), f.step(0, 0, info={"bad": object()}), f.step(0, 1)]
    result = pub.publish(events)
    assert (result.added, result.unencodable) == (2, 1)
    assert [e[0] for e in client.xrange(stream_key(f.run_id, f.agent_id))] == [b"1-1", b"3-1"]


def test_a_key_of_another_type_is_refused_not_retried(client: redis.Redis, factory) -> None:
    f = factory(first_seq=1)
    client.set(stream_key(f.run_id, f.agent_id), "not a stream")
    result = RedisPublisher(client).publish([f.started()])
    assert (result.added, result.refused) == (0, 1)


def test_a_dead_server_raises_a_connection_error(factory) -> None:
    from redis_helpers import free_port
    pub = RedisPublisher(make_client(f"redis://127.0.0.1:{free_port()}/0", connect_timeout_s=0.5))
    with pytest.raises(redis.ConnectionError):
        pub.publish([factory().started()])
    assert pub.stats()["added"] == 0


def test_text_beyond_ascii_is_sent_with_its_utf8_lengths(client: redis.Redis, factory) -> None:
    f = factory("rün-€", "agent:ü", first_seq=1)
    events = [f.started(env_id="Frözen-🧊", note="a\ud800b"), f.step(0, 0, info={"ß": "€" * 3})]
    pub = RedisPublisher(client, retention=None)
    assert pub.publish(events).added == 2
    entries = client.xrange(stream_key("rün-€", "agent:ü"))
    assert [json.loads(fields[b"payload"]) for _id, fields in entries] == [dict(e.payload) for e in events]
    assert entries[0][1][b"ts"].decode() == events[0].ts_iso
