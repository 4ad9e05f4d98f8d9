"""A Redis that cannot take writes for now (a script running, a read-only replica) gets the batch again.

Real redis-servers only: ``BUSY`` comes from a Lua script that loops until ``SCRIPT KILL`` (with
``lua-time-limit`` at 1 ms the server answers every other command ``-BUSY`` at once), ``READONLY``
from a server made a replica (``REPLICAOF``) until it is promoted. Both take the publisher's path
for every such reply (``LOADING``, ``TRYAGAIN``, ... alike). The pump must count the
attempts as connection errors, keep every event and send them all once the server takes writes:
nothing refused, nothing lost, nothing twice.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

import pytest
import redis

from gym_gui.telemetry.run_bus import RunBus
from gym_gui.transport.redis_client import make_client
from gym_gui.transport.redis_keys import stream_key
from gym_gui.transport.redis_publisher import RedisPublisher
from gym_gui.transport.redis_pump import RedisPump
from redis_helpers import RedisServer, wait_until


def _step_until(pump: RedisPump, condition: Callable[[], bool], message: str, timeout_s: float = 30.0) -> None:
    """Step the pump (its owner thread: this one) until ``condition``; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {message}: {pump.stats()}")
        pump.step(0.02)


def _pump(server: RedisServer) -> tuple[RunBus, RedisPump]:
    bus = RunBus()
    pump = RedisPump(bus, RedisPublisher(make_client(server.url), retention=None),
                     retry_initial_s=0.01, retry_max_s=0.05)
    return bus, pump


def _published_and_refused(server: RedisServer, factory: Any, run_id: str,
                           reply: str) -> tuple[RunBus, RedisPump, list[Any]]:
    """A run's events published to a pump whose server refuses writes with ``reply``: stepped until
    two attempts were refused, every event kept (not counted refused or lost)."""
    bus, pump = _pump(server)
    events = factory(run_id, "a1", first_seq=1).run(3, 4)
    for evt in events:
        bus.publish(evt)
    _step_until(pump, lambda: pump.connection_errors >= 2, f"two attempts refused as {reply}")
    assert reply in str(pump.stats()["last_error"])
    assert pump.backlog() == len(events)
    assert pump.publisher.stats()["refused"] == 0
    return bus, pump, events


def _assert_all_sent_once(server: RedisServer, pump: RedisPump, run_id: str, count: int) -> None:
    with server.client() as c:
        ids = [raw for raw, _fields in c.xrange(stream_key(run_id, "a1"))]
    assert ids == [f"{n}-1".encode() for n in range(1, count + 1)]
    stats = pump.stats()
    assert (stats["backlog"], stats["lost"]) == (0, 0)
    assert stats["publisher"]["added"] == count
    assert (stats["publisher"]["refused"], stats["publisher"]["duplicates"], stats["publisher"]["unencodable"]) == (0, 0, 0)
    assert stats["reconnects"] >= 1 and stats["connected"]


def _busy(admin: redis.Redis) -> bool:
    try:
        admin.ping()
    except redis.ResponseError as exc:
        return str(exc).startswith("BUSY")
    return False


def test_a_server_busy_with_a_script_gets_the_batch_again_and_refuses_nothing(own_redis, factory) -> None:
    server = own_redis()
    admin = server.client()
    admin.config_set("lua-time-limit", 1)  # other clients get -BUSY 1 ms into a script
    script_ended = threading.Event()

    def run_script() -> None:
        with server.client(socket_timeout=60.0) as c:
            try:
                c.eval("while true do end", 0)
            except redis.ResponseError:  # "Script killed by user with SCRIPT KILL"
                pass
        script_ended.set()

    threading.Thread(target=run_script, name="lua-loop", daemon=True).start()
    wait_until(lambda: _busy(admin), message="the server answering -BUSY")
    bus, pump, events = _published_and_refused(server, factory, "run-busy", "BUSY")
    admin.script_kill()
    assert script_ended.wait(10.0)
    _step_until(pump, lambda: pump.backlog() == 0, "the batch sent once the script ended")
    _assert_all_sent_once(server, pump, "run-busy", len(events))
    admin.close()


def test_a_read_only_replica_gets_the_batch_again_once_it_is_a_primary(own_redis, factory) -> None:
    primary, server = own_redis(), own_redis()
    admin = server.client()
    admin.replicaof("127.0.0.1", primary.port)  # a replica answers writes -READONLY
    bus, pump, events = _published_and_refused(server, factory, "run-replica", "READONLY")
    admin.replicaof("NO", "ONE")  # promoted (a failover): it takes writes again
    _step_until(pump, lambda: pump.backlog() == 0, "the batch sent once it is a primary")
    _assert_all_sent_once(server, pump, "run-replica", len(events))
    admin.close()
