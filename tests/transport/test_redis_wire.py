"""redis_wire: the RESP parser (every reply type, any split of the bytes, the entry shortcut) and raw
calls on real connections (RESP2 and RESP3), compared with what redis-py reads."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import redis

from gym_gui.transport.redis_client import make_client
from gym_gui.transport.redis_publisher import RedisPublisher
from gym_gui.transport.redis_wire import RawCall, ReplyError, ReplyParser, RespMap, command
from gym_gui.transport.redis_xread import entry_fields, stream_replies, xread
from redis_helpers import RedisServer, wait_until


def _parse_all(data: bytes, cut: int | None = None) -> list[Any]:
    """Every reply in ``data``, fed in pieces of ``cut`` bytes (None: at once)."""
    parser = ReplyParser()
    out: list[Any] = []
    pieces = [data] if cut is None else [data[i:i + cut] for i in range(0, len(data), cut)]
    for piece in pieces:
        parser.feed(piece)
        while (value := parser.next()) is not ReplyParser.INCOMPLETE:
            out.append(value)
    assert parser.idle
    return out


ENTRY = (b"*2\r\n$3\r\n7-1\r\n*6\r\n$5\r\ntopic\r\n$13\r\nSTEP_APPENDED\r\n$2\r\nts\r\n$5\r\n2026Z\r\n"
         b"$7\r\npayload\r\n$11\r\n{\"a\":\"\r\n\"}x\r\n")  # a payload holding CR LF: taken by its length
ODD_ENTRY = b"*2\r\n$3\r\n8-1\r\n*2\r\n$1\r\nx\r\n$1\r\ny\r\n"  # another shape: parsed element by element
REPLIES = (
    b"+OK\r\n-ERR no\r\n:42\r\n$-1\r\n$0\r\n\r\n*-1\r\n*0\r\n_\r\n,1.5\r\n#t\r\n(123456789012345678901\r\n"
    b"=8\r\ntxt:abcd\r\n!3\r\nbad\r\n>2\r\n$4\r\npush\r\n:1\r\n%1\r\n$1\r\nk\r\n:2\r\n~1\r\n:3\r\n"
    b"|1\r\n$3\r\nkey\r\n$3\r\nval\r\n:9\r\n"
    b"*1\r\n*2\r\n$1\r\nk\r\n*2\r\n" + ENTRY + ODD_ENTRY
)
EXPECTED = [
    b"OK", ReplyError("ERR no"), 42, None, b"", None, [], None, 1.5, True, 123456789012345678901,
    b"abcd", ReplyError("bad"), RespMap([b"k", 2]), [3], 9,  # the push message and the attribute are skipped
    [[b"k", [(b"7-1", b"STEP_APPENDED", b"2026Z", b'{"a":"\r\n"}x'), [b"8-1", [b"x", b"y"]]]]],
]


def _plain(value: Any) -> Any:
    """``value`` with each Entry tuple written as the array it stands for."""
    if type(value) is tuple:
        raw_id, topic, ts, payload = value
        return [raw_id, [b"topic", topic, b"ts", ts, b"payload", payload]]
    if isinstance(value, list):
        return type(value)(_plain(v) for v in value)
    return value


@pytest.mark.parametrize("cut", [None, 1, 2, 3, 7, 64])
def test_every_reply_type_parses_the_same_whatever_the_split(cut: int | None) -> None:
    replies = _parse_all(REPLIES, cut)
    assert _plain(replies) == _plain(EXPECTED)
    if cut is None:  # all there at once: the transport's entry is one match, one tuple
        assert replies == EXPECTED


def test_bytes_that_are_not_resp_are_a_connection_error() -> None:
    parser = ReplyParser()
    parser.feed(b"?what\r\n")
    with pytest.raises(redis.ConnectionError):
        parser.next()


def test_command_packs_str_bytes_and_ints() -> None:
    assert command("GET", b"k\xff", 12) == b"*3\r\n$3\r\nGET\r\n$2\r\nk\xff\r\n$2\r\n12\r\n"


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def client(request: Any, redis_server: RedisServer) -> Any:
    c = redis.Redis(host="127.0.0.1", port=redis_server.port, protocol=request.param, socket_timeout=5.0)
    c.flushall()
    yield c
    c.close()


def test_raw_calls_read_what_redis_py_reads_and_leave_the_connection_usable(client: redis.Redis, factory: Any) -> None:
    RedisPublisher(client, retention=None).publish(factory("r", "a", first_seq=1).run(3, 4))
    key = b"gym_gui:telemetry:r:a"
    RedisPublisher(client, retention=None, entry_events=4).publish(factory("r", "a", first_seq=30).run(2, 4))
    client.xadd(key, {"odd": "fields"}, id="100-1")  # another shape, beside the transport's
    raw = RawCall(client)
    replies = stream_replies(raw.call(command(b"XREAD", b"COUNT", 1000, b"STREAMS", key, b"0-0"), 1)[0])
    ours = [entry_fields(e) if type(e) is tuple else (e[0], dict(zip(e[1][::2], e[1][1::2])))
            for _key, entries in replies for e in entries]
    assert sum(1 for _key, entries in replies for e in entries if type(e) is tuple and len(e) == 2) == 3  # format 2
    assert [k for k, _ in replies] == [key]
    assert ours == [(i, dict(f)) for i, f in client.xrange(key)]
    assert client.ping()  # the pooled connection is clean after the raw call
    assert xread(raw, {key: b"100-1"}, count=10, block_ms=1) == []  # nothing new: a null reply
    errors = raw.call_errors(command(b"XADD", key, b"1-1", b"f", b"v") + command(b"SADD", b"set", b"m")
                             + command(b"XADD", key, b"101-1", b"f", b"v"), 3)
    assert [i for i, _ in errors] == [0] and "equal or smaller" in errors[0][1]
    client.set(b"plain", b"x")
    with pytest.raises(redis.ResponseError):
        xread(raw, {b"plain": b"0-0"}, count=1, block_ms=1)
    assert client.ping()


def test_a_lost_server_is_a_connection_error_and_the_next_call_reconnects(own_redis: Any) -> None:
    server = own_redis()
    client = make_client(server.url, client_name="wire-test")
    raw = RawCall(client)
    assert raw.call(command(b"PING"), 1) == [b"PONG"]
    server.stop()
    with pytest.raises(redis.ConnectionError):
        raw.call(command(b"PING"), 1)
    with pytest.raises(redis.ConnectionError):
        raw.call_errors(command(b"SADD", b"s", b"m"), 1)
    server.start()
    assert raw.call(command(b"PING"), 1) == [b"PONG"]
    assert raw.call_errors(command(b"SADD", b"s", b"m"), 1) == []
    client.close()


def test_cancel_ends_a_blocked_call_and_every_later_one(client: redis.Redis, redis_server: RedisServer) -> None:
    """``cancel`` from another thread ends an ``XREAD BLOCK`` of 30 s with a ConnectionError (not
    the client's 5 s read timeout); later calls fail at once; the client's other calls go on."""
    raw = RawCall(client)
    outcome: list[BaseException | None] = []

    def blocked() -> None:
        try:
            xread(raw, {b"gym_gui:telemetry:nothing:a": b"0-0"}, count=1, block_ms=30_000)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 (what the call raised is the result)
            outcome.append(exc)

    thread = threading.Thread(target=blocked, daemon=True)
    thread.start()
    with redis_server.client() as probe:
        wait_until(lambda: any(c.get("cmd") == "xread" for c in probe.client_list()), message="the XREAD blocked")
    raw.cancel()
    thread.join(5)
    assert not thread.is_alive() and len(outcome) == 1 and isinstance(outcome[0], redis.ConnectionError)
    with pytest.raises(redis.ConnectionError):
        raw.call(command(b"PING"), 1)
    assert client.ping()


def test_a_value_of_many_reads_is_held_until_whole_and_read_exactly() -> None:
    """A big entry arrives in many reads: its bytes wait in the parser until the value is whole (one
    join, not a copy of the whole buffer per read), then it is read like any other."""
    payload = bytes(range(256)) * 40_000  # 10 MB, every byte value, CR LF included
    big = (b"*2\r\n$3\r\n9-1\r\n*6\r\n$5\r\ntopic\r\n$13\r\nSTEP_APPENDED\r\n$2\r\nts\r\n$5\r\n2026Z\r\n"
           b"$7\r\npayload\r\n$%d\r\n%b\r\n" % (len(payload), payload))
    data = b"*1\r\n*2\r\n$1\r\nk\r\n*3\r\n" + ENTRY + big + ENTRY
    parser = ReplyParser()
    pieces = [data[i:i + 65536] for i in range(0, len(data), 65536)]
    for piece in pieces[:-1]:
        parser.feed(piece)
        assert parser.next() is ReplyParser.INCOMPLETE and not parser.idle
    assert len(parser._held) > 100  # (the reads of the big value are held, not joined one by one)
    parser.feed(pieces[-1])
    (reply,) = [parser.next()]
    assert parser.next() is ReplyParser.INCOMPLETE and parser.idle
    for parsed in (reply, _parse_all(data)[0], _parse_all(data, cut=7919)[0]):
        (_key, entries), = parsed
        fields = [entry_fields(e) for e in entries]  # (an entry split over reads may come element by element)
        assert [raw_id for raw_id, _f in fields] == [b"7-1", b"9-1", b"7-1"]
        assert fields[1][1] == {b"topic": b"STEP_APPENDED", b"ts": b"2026Z", b"payload": payload}
