"""The Redis fixtures: real redis-servers on loopback, sources proven stopped.

Used by tests/transport/conftest.py and imported by other test folders that need a Redis
(``from redis_fixtures import own_redis, sources``, with tests/transport on sys.path).
A uniquely named module (not conftest) so it can be imported without package clashes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest

from gym_gui.transport.redis_source import RedisTelemetrySource
from redis_helpers import RedisServer, redis_server_binary

__all__ = ["bridge_state_home", "own_redis", "redis_server", "shared_redis", "sources"]


@pytest.fixture(autouse=True)
def bridge_state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private ``XDG_STATE_HOME`` per test (inherited by bridge subprocesses through ``child_env``):
    the bridges' seq_id state never leaks between tests or into the home directory."""
    home = tmp_path / "xdg-state"
    monkeypatch.setenv("XDG_STATE_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def shared_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One server for the session (no persistence); tests get it emptied through ``redis_server``."""
    server = RedisServer(redis_server_binary(), tmp_path_factory.mktemp("redis-shared"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_server(shared_redis: RedisServer) -> RedisServer:
    """The shared server, running and empty."""
    if shared_redis.proc is None or shared_redis.proc.poll() is not None:
        shared_redis.start()
    with shared_redis.client() as c:
        c.flushall()
    return shared_redis


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Starts a dedicated server (e.g. with ``appendonly=True``, to restart it with its data)."""
    binary = redis_server_binary()
    started: list[RedisServer] = []

    def start(*, appendonly: bool = False) -> RedisServer:
        server = RedisServer(binary, tmp_path / f"redis-{len(started)}", appendonly=appendonly)
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def sources() -> Iterator[list[RedisTelemetrySource]]:
    """Sources made by a test; each is stopped and its thread proven ended afterwards."""
    made: list[RedisTelemetrySource] = []
    yield made
    for source in made:
        assert source.stop(10.0)
        assert not source.is_running()
