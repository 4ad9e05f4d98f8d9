"""redis_preflight: one stdlib PING before redis-py is imported, against a real redis-server.

It must say "reachable" only when Redis answered PONG (after AUTH and SELECT), read a URL exactly
as redis-py reads it, and leave every other case (no server, a wrong password, not Redis, a URL
form it does not handle) to redis-py by answering None.
"""

from __future__ import annotations

import socket
import threading
from typing import Any, Callable

import pytest
import redis

from gym_gui.transport.redis_preflight import ping_once, preflight_target
from redis_helpers import RedisServer, free_port


def test_a_running_server_answers_with_where_the_url_points(redis_server: RedisServer) -> None:
    assert ping_once(redis_server.url, 2.0) == f"127.0.0.1:{redis_server.port}/0"
    assert ping_once(f"redis://127.0.0.1:{redis_server.port}/3", 2.0) == f"127.0.0.1:{redis_server.port}/3"
    assert ping_once(f"redis://127.0.0.1:{redis_server.port}/99999", 2.0) is None  # SELECT refused: redis-py says why


def test_nothing_listening_gives_none_at_once() -> None:
    assert ping_once(f"redis://127.0.0.1:{free_port()}/0", 2.0) is None
    assert ping_once(f"redis://127.0.0.1:{free_port()}/0", 0.0) is None


def test_the_password_is_sent_and_a_wrong_or_missing_one_gives_none(own_redis: Callable[..., RedisServer]) -> None:
    server = own_redis()
    with server.client() as c:
        c.config_set("requirepass", "s3:cr@t")
    try:
        port = server.port
        assert ping_once(f"redis://:s3%3Acr%40t@127.0.0.1:{port}/0", 2.0) == f"127.0.0.1:{port}/0"
        assert ping_once(f"redis://default:s3%3Acr%40t@127.0.0.1:{port}/2", 2.0) == f"127.0.0.1:{port}/2"
        assert ping_once(f"redis://:wrong@127.0.0.1:{port}/0", 2.0) is None
        assert ping_once(f"redis://127.0.0.1:{port}/0", 2.0) is None  # NOAUTH
    finally:
        with redis.Redis(host="127.0.0.1", port=server.port, password="s3:cr@t") as c:
            c.config_set("requirepass", "")


def test_a_user_who_may_not_name_its_connection_gives_none(own_redis: Callable[..., RedisServer]) -> None:
    """The preflight makes redis-py's handshake: a user whose ACL refuses ``CLIENT SETNAME`` (which the
    bridge's client sends on connect) is left to redis-py, which reports it, instead of reachable."""
    server = own_redis()
    with server.client() as c:
        c.execute_command("ACL", "SETUSER", "worker", "on", ">pw", "~*", "+@all", "-client")
    url = f"redis://worker:pw@127.0.0.1:{server.port}/0"
    assert ping_once(url, 2.0) == f"127.0.0.1:{server.port}/0"
    assert ping_once(url, 2.0, client_name="gym_gui-redis-bridge") is None


def test_a_server_that_is_not_redis_gives_none() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    served = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        served.set()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        assert ping_once(f"redis://127.0.0.1:{port}/0", 2.0) is None
        assert served.wait(5)
    finally:
        thread.join(5)
        listener.close()


@pytest.mark.parametrize("url", [
    "redis://localhost", "redis://127.0.0.1:6380", "redis://h:1/7", "redis://h:1/", "redis://:pw@h:2/1",
    "redis://user:p%40ss%3Aw@h:3/0", "redis://[::1]:6379/4", "redis://Example.COM/2",
])
def test_a_url_it_handles_is_read_as_redis_py_reads_it(url: str) -> None:
    target = preflight_target(url)
    assert target is not None
    kw: dict[str, Any] = redis.ConnectionPool.from_url(url).connection_kwargs
    assert (target.host, target.port, target.db, target.username, target.password) == (
        kw.get("host", "localhost"), kw.get("port", 6379), kw.get("db", 0), kw.get("username"), kw.get("password"))


@pytest.mark.parametrize("url", [
    "rediss://h:6379/0", "unix:///tmp/redis.sock", "redis://h:6379/0?socket_timeout=1", "redis://user@h:1/0",
    "redis://h:1/x", "redis://h:notaport/0", "redis://h:99999/0", "redis:///0", "http://h:1/0", "redis://h:1/0#f",
])
def test_other_url_forms_are_left_to_redis_py(url: str) -> None:
    assert preflight_target(url) is None
    assert ping_once(url, 0.5) is None
