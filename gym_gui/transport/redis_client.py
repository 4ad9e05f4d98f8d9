"""Redis clients for the transport, and the backoff between reconnection attempts (Qt-free).

The transport handles connection loss itself (it must know, to count it and to keep its place),
so its clients never retry a command behind its back: ``make_client`` turns redis-py's implicit
retries off. ``CONNECTION_ERRORS`` are the errors that mean "the server is unreachable, try
again later"; any other RedisError is a reply about the data.
"""

from __future__ import annotations

import threading

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

__all__ = ["CONNECTION_ERRORS", "Backoff", "make_client"]

#: Errors after which a command may be retried once the server is reachable again.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (redis.ConnectionError, redis.TimeoutError, OSError)


def make_client(url: str, *, client_name: str | None = None, socket_timeout_s: float = 5.0,
                connect_timeout_s: float = 2.0) -> redis.Redis:
    """A client for ``url`` (``redis://host:port/db``) without implicit retries. Any thread; no I/O yet.

    ``socket_timeout_s`` bounds every reply (a blocking XREAD needs its block time on top);
    ``client_name`` is set on every connection (CLIENT LIST shows it).
    """
    return redis.Redis.from_url(
        url, socket_timeout=socket_timeout_s, socket_connect_timeout=connect_timeout_s,
        retry=Retry(NoBackoff(), 0), client_name=client_name,
    )


class Backoff:
    """Exponential delays between attempts: ``initial_s``, doubling up to ``max_s``; ``reset`` on success.

    Not thread-safe: one owner thread.
    """

    def __init__(self, initial_s: float = 0.05, max_s: float = 2.0) -> None:
        if not 0 < initial_s <= max_s:
            raise ValueError(f"need 0 < initial_s <= max_s, got {initial_s}, {max_s}")
        self.initial_s = initial_s
        self.max_s = max_s
        self._next_s = initial_s
        self.failures = 0

    def next_delay_s(self) -> float:
        """The delay before the next attempt; each call doubles the following one (up to ``max_s``).

        Owner thread; never blocks."""
        delay = self._next_s
        self._next_s = min(self.max_s, self._next_s * 2)
        self.failures += 1
        return delay

    def reset(self) -> None:
        """An attempt succeeded: the next failure waits ``initial_s`` again. Owner thread; never blocks."""
        self._next_s = self.initial_s
        self.failures = 0

    def sleep(self, stop: threading.Event) -> bool:
        """Wait the next delay unless ``stop`` is set first; True if stopped. Owner thread; blocks."""
        return stop.wait(self.next_delay_s())
