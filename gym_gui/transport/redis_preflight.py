"""One PING to Redis with the standard library only, before redis-py is imported (Qt-free).

The bridge must not start a worker while Redis cannot be reached, and importing redis-py takes
longer than starting the worker (about 70 ms against the worker's first line; docs/performance.md).
``ping_once`` lets it do both in the right order: one plain-TCP connection sends what redis-py's
handshake sends -- ``AUTH`` (when the URL has a password), ``CLIENT SETNAME`` (the bridge's
connection name), ``SELECT`` (a database other than 0) -- and ``PING``, in one write, and reads the
replies. ``+PONG`` (after ``+OK``s): Redis answers, the worker may start, redis-py is
imported meanwhile. Anything else -- a URL form it does not handle (TLS, query options, a unix
socket, a user without a password), no connection, an error reply, a timeout -- gives None, and
the caller takes the redis-py path, which retries and reports exactly as before.
"""

from __future__ import annotations

import socket
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

__all__ = ["PreflightTarget", "ping_once", "preflight_target"]

#: The longest reply line read (a Redis error text is far shorter).
_MAX_REPLY_BYTES = 4096
_DEFAULT_PORT = 6379


class PreflightTarget(NamedTuple):
    """What a ``redis://`` URL names: host, port, database, credentials (None: no AUTH)."""

    host: str
    port: int
    db: int
    username: str | None
    password: str | None

    @property
    def where(self) -> str:
        """``host:port/db``, as the bridge prints where it sends. Any thread."""
        return f"{self.host}:{self.port}/{self.db}"


def preflight_target(url: str) -> PreflightTarget | None:
    """The target of a plain ``redis://[[user]:password@]host[:port][/db]`` URL, read as redis-py
    reads it; None for any other form (the caller then leaves it to redis-py). Any thread; pure."""
    try:
        parts = urlsplit(url)
        if parts.scheme != "redis" or parts.query or parts.fragment or not parts.hostname or "%" in parts.hostname:
            return None
        port = parts.port or _DEFAULT_PORT
    except ValueError:  # a port that is not a number, or out of range
        return None
    path = parts.path.strip("/")
    if path and not (path.isdigit() and path.isascii()):
        return None
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    if username is not None and password is None:
        return None
    return PreflightTarget(parts.hostname, port, int(path) if path else 0, username, password)


def ping_once(url: str, timeout_s: float, *, client_name: str | None = None) -> str | None:
    """``host:port/db`` of ``url`` if one connection to it answered ``PING`` with ``PONG`` after the
    handshake redis-py makes (``AUTH``, ``CLIENT SETNAME client_name``, ``SELECT``), else None (see the
    module's docstring). Any thread; blocks up to about ``timeout_s`` for the connection and again
    for the replies."""
    target = preflight_target(url)
    if target is None or timeout_s <= 0:
        return None
    commands: list[tuple[str, ...]] = []
    if target.password is not None:
        commands.append(("AUTH", target.password) if target.username is None
                        else ("AUTH", target.username, target.password))
    if client_name is not None:
        commands.append(("CLIENT", "SETNAME", client_name))
    if target.db:
        commands.append(("SELECT", str(target.db)))
    commands.append(("PING",))
    try:
        with socket.create_connection((target.host, target.port), timeout=timeout_s) as sock:
            sock.settimeout(timeout_s)
            sock.sendall(b"".join(_command(c) for c in commands))
            with sock.makefile("rb") as replies:
                for name, *_args in commands:
                    line = replies.readline(_MAX_REPLY_BYTES)
                    if line != (b"+PONG\r\n" if name == "PING" else b"+OK\r\n"):
                        return None
    except (OSError, UnicodeError):  # refused, unreachable, timed out, reset; a host name IDNA refuses
        return None
    return target.where


def _command(args: tuple[str, ...]) -> bytes:
    """One command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode("utf-8")  # (strict, as redis-py: a lone surrogate is its to report)
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)
