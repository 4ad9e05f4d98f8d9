"""The Redis protocol (RESP2 and RESP3) on a redis-py connection's socket, for the transport's hot paths (Qt-free).

redis-py packs every argument and parses every reply element in Python, with a response callback
on top: about 20 us per stream entry read and 15 us per entry written on this project's machine,
more than the rest of the transport together. The two hot calls, the publisher's batch of
``XADD``s and the reader's ``XREAD``, go through this module instead: the command bytes are made
in one formatting step per entry (``xadd_command``), sent with one ``sendall`` on a connection
checked out of the client's own pool (``RawCall``: redis-py still connects, authenticates,
selects the db and names the client), and the replies parsed by ``ReplyParser``: an iterative,
resumable parser of every RESP2/RESP3 type in which a stream entry of the transport's exact shape
(``[id, [topic, T, ts, TS, payload, P]]``) is recognised by one regular expression match and comes
out as one ``Entry`` tuple. Anything else is parsed element by element, so every reply Redis can
send is read exactly. Any other command still goes through redis-py.
"""

from __future__ import annotations

import re
import socket
import threading
from typing import Any, NamedTuple

import redis
from redis.connection import AbstractConnection

__all__ = ["Entry", "PackedEntry", "RawCall", "RawSession", "ReplyError", "RespMap", "ReplyParser", "command", "topic_text", "xadd_command", "xadd_head",
           "xadd_text"]

_CRLF = b"\r\n"
#: Bytes asked from the socket per read (a 512-entry XREAD reply of grid steps is about 200 KiB).
RECV_BYTES = 1 << 18


#: A stream entry of the transport's shape: ``(raw_id, topic, ts, payload)``, as bytes (a tuple: any
#: other array of a reply is a list).
Entry = tuple[bytes, bytes, bytes, bytes]
#: A v2 entry (several events, ``redis_packed``): ``(raw_id, events)``, as bytes.
PackedEntry = tuple[bytes, bytes]


class ReplyError(NamedTuple):
    """An error reply (``-ERR ...`` or a RESP3 blob error): its text."""

    message: str


class RespMap(list):  # type: ignore[type-arg]
    """A RESP3 map as its flat ``[key, value, key, value, ...]`` list (keys may be unhashable)."""


# [id, [topic, T, ts, TS, payload, P]] exactly, up to the payload's header. The captured contents
# cannot hold a CR, and each bulk string's content ends right before a CRLF, so a match is the true
# framing; the payload (any bytes) is then taken by its length.
_ENTRY = re.compile(
    rb"\*2\r\n\$\d+\r\n(\d+-\d+)\r\n\*6\r\n\$5\r\ntopic\r\n\$\d+\r\n([A-Z_]+)\r\n"
    rb"\$2\r\nts\r\n\$\d+\r\n([^\r]*)\r\n\$7\r\npayload\r\n\$(\d+)\r\n")
# [id, [v, 2, events, E]]: a v2 entry (redis_packed), up to the header of its events
_PACKED = re.compile(rb"\*2\r\n\$\d+\r\n(\d+-\d+)\r\n\*4\r\n\$1\r\nv\r\n\$1\r\n2\r\n\$6\r\nevents\r\n\$(\d+)\r\n")
_ENTRY_START = b"*2\r\n$"
_INCOMPLETE: Any = object()


class ReplyParser:
    """Turns the bytes of a connection into replies; resumable at any byte. One thread (its owner).

    Values: bulk and simple strings as bytes, integers as int, null as None, arrays and sets as
    lists, maps as flat lists (``RespMap``), doubles as float, booleans as bool, errors as
    ``ReplyError``; push messages (RESP3 ``>``) and attributes (``|``) are skipped. A transport
    stream entry is an ``Entry``, a v2 entry (``redis_packed``) a ``PackedEntry``. Raises ``redis.ConnectionError`` on bytes that are not RESP.
    """

    def __init__(self) -> None:
        self._buf = b""
        self._pos = 0
        self._stack: list[list[Any]] = []  # open aggregates: [items, remaining, kind]
        self._need = 0  # bytes from _pos that the value being read needs (0: unknown)
        self._held: list[bytes] = []  # bytes fed while _need is not reached: joined once, when it is
        self._held_bytes = 0

    def feed(self, data: bytes) -> None:
        """Add bytes read from the connection. Owner thread; a value of N bytes costs O(N) however
        many reads bring it (the bytes wait in a list until the value is whole)."""
        self._held.append(data)
        self._held_bytes += len(data)
        if len(self._buf) - self._pos + self._held_bytes < self._need:
            return
        rest = self._buf[self._pos:] if self._pos < len(self._buf) else b""
        self._buf = b"".join([rest, *self._held]) if rest or len(self._held) > 1 else self._held[0]
        self._pos = 0
        self._need = 0
        self._held.clear()
        self._held_bytes = 0

    @property
    def idle(self) -> bool:
        """True when no reply is half-read and no unparsed byte is left. Owner thread."""
        return not self._stack and self._pos >= len(self._buf) and not self._held

    def next(self) -> Any:
        """The next complete reply, or ``ReplyParser.INCOMPLETE`` until more bytes are fed. Owner thread."""
        buf, pos, stack = self._buf, self._pos, self._stack
        size = len(buf)
        match_entry = _ENTRY.match
        match_packed = _PACKED.match
        while True:
            value: Any = _INCOMPLETE
            if stack and buf.startswith(_ENTRY_START, pos):
                frame = stack[-1]  # entries in a row, each one match (the usual XREAD reply)
                items, remaining = frame[0], frame[1]
                append = items.append
                while remaining:
                    m = match_entry(buf, pos)
                    if m is None:
                        m = match_packed(buf, pos)
                        if m is None:
                            break
                        raw_id, length = m.groups()
                        topic = None
                    else:
                        raw_id, topic, ts, length = m.groups()
                    start = m.end()
                    stop = start + int(length)
                    if stop + 2 > size:
                        break
                    if not buf.startswith(_CRLF, stop):
                        raise redis.ConnectionError(f"not a RESP reply: {buf[stop:stop + 40]!r}")
                    append((raw_id, topic, ts, buf[start:stop]) if topic is not None else (raw_id, buf[start:stop]))
                    pos = stop + 2
                    remaining -= 1
                frame[1] = remaining
                if not remaining:
                    stack.pop()
                    value = items
            if value is _INCOMPLETE:
                end = buf.find(_CRLF, pos)
                if end < 0:
                    break
                kind = buf[pos]
                head = buf[pos + 1:end]
                if kind == 36 or kind == 61 or kind == 33:  # $ bulk, = verbatim, ! blob error
                    length_ = _int(head)
                    if length_ < 0:
                        value, pos = None, end + 2
                    else:
                        stop = end + 2 + length_
                        if stop + 2 > size:
                            self._need = stop + 2 - pos  # (from pos, where this reading resumes)
                            break
                        value, pos = buf[end + 2:stop], stop + 2
                        if kind == 61:
                            value = value[4:]  # "txt:" / "mkd:"
                        elif kind == 33:
                            value = ReplyError(value.decode("utf-8", "replace"))
                elif kind == 42 or kind == 126 or kind == 37 or kind == 62 or kind == 124:  # * ~ % > |
                    count = _int(head)
                    pos = end + 2
                    if count < 0:
                        value = None
                    else:
                        if kind == 37 or kind == 124:
                            count *= 2
                        if count:
                            stack.append([RespMap() if kind == 37 else [], count, kind])
                            continue
                        if kind == 62 or kind == 124:  # an empty push or attribute: nothing
                            continue
                        value = RespMap() if kind == 37 else []
                elif kind == 43:  # + simple string
                    value, pos = head, end + 2
                elif kind == 45:  # - error
                    value, pos = ReplyError(head.decode("utf-8", "replace")), end + 2
                elif kind == 58 or kind == 40:  # : integer, ( big number
                    value, pos = _int(head), end + 2
                elif kind == 95:  # _ null
                    value, pos = None, end + 2
                elif kind == 44:  # , double
                    value, pos = float(head), end + 2
                elif kind == 35:  # # boolean
                    value, pos = head == b"t", end + 2
                else:
                    raise redis.ConnectionError(f"not a RESP reply: {buf[pos:pos + 40]!r}")
            # a complete value: into its aggregate, closing the aggregates it completes
            while True:
                if not stack:
                    self._pos = pos
                    return value
                frame = stack[-1]
                frame[0].append(value)
                frame[1] -= 1
                if frame[1]:
                    break
                stack.pop()
                if frame[2] == 62 or frame[2] == 124:  # a push message or an attribute: skipped
                    break
                value = frame[0]
        self._pos = pos
        return _INCOMPLETE

    INCOMPLETE = _INCOMPLETE


def _int(text: bytes) -> int:
    try:
        return int(text)
    except ValueError:
        raise redis.ConnectionError(f"not a RESP length or integer: {text[:40]!r}") from None


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(value), value)


def command(*args: bytes | str | int) -> bytes:
    """One command as RESP bytes (str as UTF-8, int in decimal). Any thread; pure."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            arg = arg.encode("utf-8")
        elif isinstance(arg, int):
            arg = b"%d" % arg
        parts.append(_bulk(arg))
    return b"".join(parts)


def xadd_head(key: str, maxlen: int | None, approximate: bool, fields: int = 3) -> bytes:
    """``XADD key [MAXLEN [~] N]`` with the array header of an entry of ``fields`` fields. Any thread; pure."""
    args: list[bytes] = [b"XADD", key.encode("utf-8")]
    if maxlen is not None:
        args += [b"MAXLEN", b"~", b"%d" % maxlen] if approximate else [b"MAXLEN", b"%d" % maxlen]
    return b"*%d\r\n" % (len(args) + 1 + 2 * fields) + b"".join(_bulk(a) for a in args)


_TOPIC_FIELD = b"$5\r\ntopic\r\n"
_TS_FIELD = b"$2\r\nts\r\n"
_PAYLOAD_FIELD = b"$7\r\npayload\r\n"


def xadd_command(head: bytes, seq_id: int, topic: bytes, ts: bytes, payload: bytes) -> bytes:
    """``head`` (``xadd_head``) ``{seq_id}-1 topic T ts TS payload P``. Any thread; pure."""
    id_ = b"%d-1" % seq_id
    return b"%b$%d\r\n%b\r\n%b$%d\r\n%b\r\n%b$%d\r\n%b\r\n%b$%d\r\n%b\r\n" % (
        head, len(id_), id_, _TOPIC_FIELD, len(topic), topic, _TS_FIELD, len(ts), ts,
        _PAYLOAD_FIELD, len(payload), payload)


def topic_text(topic: str) -> str:
    """The ``topic T ts`` arguments of an XADD up to the ts value (``xadd_text``). Any thread; pure."""
    return f"$5\r\ntopic\r\n${len(topic.encode())}\r\n{topic}\r\n$2\r\nts\r\n"


def xadd_text(head: str, seq_id: int, topic: str, ts: str, payload: str) -> str:
    """``xadd_command`` as text, for a batch encoded to UTF-8 at once: ``head`` is ``xadd_head``
    decoded, ``topic`` a ``topic_text``; ``ts`` and ``payload`` must encode to UTF-8 (the caller
    checks text that is not ASCII). Any thread; pure."""
    id_ = f"{seq_id}-1"
    ts_bytes = len(ts) if ts.isascii() else len(ts.encode("utf-8"))
    payload_bytes = len(payload) if payload.isascii() else len(payload.encode("utf-8"))
    return (f"{head}${len(id_)}\r\n{id_}\r\n{topic}${ts_bytes}\r\n{ts}\r\n$7\r\npayload\r\n"
            f"${payload_bytes}\r\n{payload}\r\n")


class RawCall:
    """Sends packed commands on a connection of ``client``'s pool and reads their replies.

    One thread at a time per instance (the publisher's or the reader's); the connection is held
    only for the call. Any failure leaves no half-read connection behind: it is disconnected
    (redis-py reconnects it at its next use) and the error raised is a ``redis.ConnectionError``
    or ``redis.TimeoutError``. ``socket_timeout_s`` (None: the client's) bounds each read.
    ``cancel`` (any thread) ends a call blocked on Redis (an ``XREAD BLOCK``) at once.
    """

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._lock = threading.Lock()
        self._in_flight: socket.socket | None = None  # the socket of the call in progress
        self._cancelled = False

    def cancel(self) -> None:
        """End the call in progress now (its connection is shut down: it raises ``redis.ConnectionError``)
        and make every later ``call`` raise it at once. Any thread; never blocks."""
        with self._lock:
            self._cancelled = True
            sock = self._in_flight
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked recv with end of stream
            except OSError:  # already closed: the call has ended anyway
                pass

    def call(self, packed: bytes, replies: int, *, socket_timeout_s: float | None = None) -> list[Any]:
        """Send ``packed`` (``replies`` commands) and return their replies in order (errors as
        ``ReplyError``). Any thread; blocks on Redis."""
        return self._call(packed, replies, socket_timeout_s, False)  # type: ignore[return-value]

    def call_errors(self, packed: bytes, replies: int) -> list[tuple[int, str]]:
        """Send ``packed`` (``replies`` commands, each replying a bulk string, an integer or an error:
        XADD, SADD) and return ``(index, message)`` of each error reply. Any thread; blocks on Redis."""
        with self.session() as session:
            session.send(packed)
            return session.errors(replies)

    def session(self) -> "RawSession":
        """A connection held for several sends and one read of all their replies (a context manager).
        Any thread; the session is used by one thread."""
        return RawSession(self.client)

    def _call(self, packed: bytes, replies: int, socket_timeout_s: float | None,
              errors_only: bool) -> list[Any] | list[tuple[int, str]]:
        pool = self.client.connection_pool
        conn: AbstractConnection = pool.get_connection()
        ok = False
        try:
            if getattr(conn, "_sock", None) is None:
                conn.connect()
            sock: socket.socket = conn._sock  # type: ignore[attr-defined]
            with self._lock:
                if self._cancelled:
                    raise redis.ConnectionError("the call was cancelled")
                self._in_flight = sock
            previous = sock.gettimeout()
            if socket_timeout_s is not None:
                sock.settimeout(socket_timeout_s)
            sock.sendall(packed)
            if errors_only:
                result, ok = _read_counted(sock, replies)
            else:
                result, ok = _read_parsed(sock, replies, ReplyParser(), b"")
            if ok and socket_timeout_s is not None:
                sock.settimeout(previous)
            # not ok: bytes beyond the replies (a push message cut short): disconnected below
        except socket.timeout:  # (a subclass of OSError)
            raise redis.TimeoutError("Timeout reading from Redis") from None
        except OSError as exc:
            raise redis.ConnectionError(f"Error while talking to Redis: {exc}") from None
        finally:
            with self._lock:
                self._in_flight = None
            if not ok:
                conn.disconnect()
            pool.release(conn)
        return result


class RawSession:
    """One connection of a client's pool, held from ``__enter__`` to ``__exit__``: commands sent
    piece by piece (Redis executes the first while the next are being made), then every reply read
    at once by ``errors``. One thread; failures as in ``RawCall``."""

    def __init__(self, client: redis.Redis) -> None:
        self._pool = client.connection_pool
        self._conn: AbstractConnection | None = None
        self._sock: socket.socket | None = None
        self._clean = False

    def __enter__(self) -> "RawSession":
        self._conn = self._pool.get_connection()
        try:
            if getattr(self._conn, "_sock", None) is None:
                self._conn.connect()
            self._sock = self._conn._sock  # type: ignore[attr-defined]
        except BaseException:
            self._conn.disconnect()
            self._pool.release(self._conn)
            raise
        return self

    def send(self, packed: bytes) -> None:
        """Send commands. Blocks while the socket's buffer is full."""
        assert self._sock is not None
        try:
            self._sock.sendall(packed)
        except socket.timeout:
            raise redis.TimeoutError("Timeout writing to Redis") from None
        except OSError as exc:
            raise redis.ConnectionError(f"Error while writing to Redis: {exc}") from None

    def errors(self, replies: int) -> list[tuple[int, str]]:
        """Read the ``replies`` replies of what was sent (each a bulk string, an integer or an error:
        XADD, SADD); ``(index, message)`` of each error. Blocks on Redis.

        The usual replies are counted, not parsed: each is one line (an integer, an error) or a bulk
        header and its one data line (an id); when the lines' first bytes add up to exactly
        ``replies`` replies and nothing else, they are complete and none is an error. Anything else
        (errors, a null, a push message) is parsed reply by reply."""
        assert self._sock is not None
        try:
            found, self._clean = _read_counted(self._sock, replies)
        except socket.timeout:
            raise redis.TimeoutError("Timeout reading from Redis") from None
        except OSError as exc:
            raise redis.ConnectionError(f"Error while reading from Redis: {exc}") from None
        return found

    def __exit__(self, *exc_info: object) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if not self._clean:  # replies not read to their end: the connection's state is unknown
            conn.disconnect()
        self._pool.release(conn)


def _recv(sock: socket.socket) -> bytes:
    data = sock.recv(RECV_BYTES)
    if not data:
        raise redis.ConnectionError("Connection closed by server.")
    return data


def _read_parsed(sock: socket.socket, replies: int, parser: ReplyParser, data: bytes) -> tuple[list[Any], bool]:
    """``replies`` replies, parsed (``data``: bytes already received), and whether nothing is left
    over (else the connection must not be reused)."""
    out: list[Any] = []
    if data:
        parser.feed(data)
    while len(out) < replies:
        value = parser.next()
        if value is _INCOMPLETE:
            parser.feed(_recv(sock))
        else:
            out.append(value)
    return out, parser.idle


def _read_counted(sock: socket.socket, replies: int) -> tuple[list[tuple[int, str]], bool]:
    chunks: list[bytes] = []
    while True:
        chunks.append(_recv(sock))
        data = b"".join(chunks) if len(chunks) > 1 else chunks[0]
        if not data.endswith(_CRLF):
            continue
        probe = _CRLF + data
        bulks = probe.count(b"\r\n$")
        errors = probe.count(b"\r\n-")
        ints = probe.count(b"\r\n:")
        found = bulks + errors + ints
        if found < replies:
            continue
        if found == replies and data.count(_CRLF) == 2 * bulks + errors + ints and not errors:
            return [], True
        # errors to read, or not the usual replies (a null, a push message): parse them
        values, idle = _read_parsed(sock, replies, ReplyParser(), data)
        return [(i, v.message) for i, v in enumerate(values) if type(v) is ReplyError], idle
