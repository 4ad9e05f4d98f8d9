"""RedisTelemetrySource: the GUI machine's reader of remote workers' Redis streams (Qt-free).

One thread discovers streams from the index set (at start, then every ``discover_interval_s``,
and at once when a writer announces a new stream on the announcement stream, which the same
``XREAD BLOCK`` waits on), reads them with ``XREAD BLOCK`` from a cursor per stream, decodes each entry into a
TelemetryEvent (its seq_id from the entry id) and publishes it on the RunBus, where the durable
path persists it like any local event. A stream's cursor starts after ``seq_floor(run_id,
agent_id)`` (``store.max_seq_id``: the last persisted seq_id), so a restarted GUI resumes with
no gap and no duplicate; after a connection loss the thread backs off, reconnects and goes on
from the cursor of the last entry it read (whatever it published, the lossless path persists).

Malformed entries are counted by reason, logged (rate-limited) and skipped. When Redis no longer
holds entries the cursor had not reached, the missing seq_id range is counted and logged as lost
(an upper bound: a worker may also have skipped seq_ids): entries before the first one a stream
holds (trimmed by retention, or gone with a Redis restarted without its data, after which the
writer's next entries begin beyond the cursor) and entries ``XDEL`` removed. A stream whose key
vanished from Redis (and from the index) is reported in ``stats()["vanished"]`` until it is
written again; its gap is then reported as lost like any other. A stream written anew below
the seq_ids already taken (deleted and recreated, or lost by Redis and numbered from 1 again by
its writer; ``redis_renumbered``) is read again from its start: its entries up to the highest
seq_id taken cannot be stored (those seq_ids exist) and are counted as ``renumbered`` (exact
ranges, and a warning), the ones after it are published as usual. Reading pauses while ``gate``
(``DbSink.ingest_gate``) is closed, so the sink's backlog stays bounded.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Sequence

import redis

from gym_gui.rate_limited_log import RateLimitedLog
from gym_gui.ingest.proxy import IngestGate
from gym_gui.telemetry.bus_publish import publish_stream_events
from gym_gui.telemetry.events import StreamKey
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.transport.redis_client import CONNECTION_ERRORS, Backoff, make_client
from gym_gui.transport.redis_removed import removed_upper
from gym_gui.transport.redis_read_state import StreamReadState
from gym_gui.transport.redis_renumbered import RenumberedEntries, find_renumbered
from gym_gui.transport.redis_source_counts import SourceCounts
from gym_gui.transport.redis_keys import KEY_PREFIX, announce_key, index_key, parse_stream_key
from gym_gui.transport.redis_wire import RawCall
from gym_gui.transport.redis_xread import take_entries, xread

__all__ = ["RedisTelemetrySource", "SOURCE_CLIENT_NAME"]

_log = logging.getLogger(__name__)

#: CLIENT SETNAME of the source's connections (made by ``url``).
SOURCE_CLIENT_NAME = "gym_gui-redis-source"
_GATE_RECHECK_S = 0.25
#: Reasons counted for keys of the index set, next to the entry RejectReasons.
BAD_KEY = "bad_key"
NOT_A_STREAM = "not_a_stream"
#: ``TYPE`` replies of a key that XREAD can read (a stream, or no key yet), as bytes or text.
_STREAM_OR_NOTHING = (b"stream", b"none", "stream", "none")


class RedisTelemetrySource:
    """Reads ``{prefix}:{run}:{agent}`` streams from Redis and publishes their events on ``bus``.

    Lifecycle: ``start()`` starts the reader thread, ``stop()`` ends it; both idempotent, any
    thread. ``stats()``, ``streams()`` and ``lost_ranges()`` may be called from any thread.
    """

    def __init__(
        self,
        bus: RunBus,
        *,
        url: str | None = None,
        client_factory: Callable[[], redis.Redis] | None = None,
        seq_floor: Callable[[str, str | None], int | None] | None = None,
        gate: IngestGate | None = None,
        accept: Callable[[str, str | None], bool] | None = None,
        key_prefix: str = KEY_PREFIX,
        block_ms: int = 500,
        batch_count: int = 512,
        batch_events: int = 16_384,
        discover_interval_s: float = 1.0,
        retry_initial_s: float = 0.05,
        retry_max_s: float = 2.0,
        name: str = "redis-source",
    ) -> None:
        """Give ``url`` (``redis://host:port/db``) or ``client_factory`` (called once, on the thread;
        its client must allow a reply time above ``block_ms`` and keep ``decode_responses=False``,
        the default: entries are decoded here). ``seq_floor(run_id, agent_id)``
        returns the last persisted seq_id of a stream (``store.max_seq_id``), None to read from its
        start. ``accept(run_id, agent_id)``: False leaves a stream unread (e.g. other runs).
        ``batch_count``: XREAD COUNT (entries per stream) at most; ``batch_events``: the events per
        stream one XREAD aims at, so entries of many events (wire format 2) are read fewer at a time
        (COUNT = ``batch_events`` / the events per entry of the last reply, at least 1): what one
        read holds in memory stays bounded, and the sink starts on it sooner. Any thread; no I/O.
        """
        if (url is None) == (client_factory is None):
            raise ValueError("give exactly one of url and client_factory")
        if block_ms < 1 or batch_count < 1 or batch_events < 1 or discover_interval_s <= 0:
            raise ValueError("need block_ms >= 1, batch_count >= 1, batch_events >= 1 and discover_interval_s > 0")
        self._bus = bus
        self._client_factory = client_factory
        self._client: redis.Redis | None = None
        self._raw: RawCall | None = None  # XREAD without redis-py's reply parsing (redis_wire)
        if url is not None:  # no I/O yet; a malformed URL fails here, not on the thread
            self._client = make_client(url, client_name=SOURCE_CLIENT_NAME, socket_timeout_s=block_ms / 1000 + 5.0)
        self._seq_floor = seq_floor
        self._accept = accept
        self._gate = gate
        self._prefix = key_prefix
        self._index_key = index_key(key_prefix)
        self._announce_key = announce_key(key_prefix).encode("utf-8")
        #: the last announcement seen (read before each look at the index), None: not read yet, or
        #: the key is not a stream (then discovery waits for the interval)
        self._announce_cursor: bytes | None = None
        self.block_ms = block_ms
        self.batch_count = batch_count
        self.batch_events = batch_events
        self._entry_events = 1  # events per entry in the last reply's fullest stream (source thread)
        self.discover_interval_s = discover_interval_s
        self.name = name
        self._backoff = Backoff(retry_initial_s, retry_max_s)
        self._rlog = RateLimitedLog(_log, interval_s=2.0)

        self._states: dict[bytes, StreamReadState] = {}  # source thread only
        self._bad_keys: set[bytes] = set()
        self._next_discover_at = 0.0
        self._failing = False

        self._counts = SourceCounts()  # what other threads read
        self._renumbered = RenumberedEntries(name)

        self._state_lock = threading.Lock()
        self._state = "new"  # new -> running -> stopped
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the reader thread; idempotent, a no-op after ``stop``. Any thread; never blocks."""
        with self._state_lock:
            if self._state != "new":
                return
            self._state = "running"
            self._thread = threading.Thread(target=self._run, name=f"{self.name}-reader", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> bool:
        """End the reader thread and join it; idempotent. True once it has ended.

        Any thread but the reader's; blocks up to ``timeout_s`` (an ``XREAD BLOCK`` in progress is
        cancelled: the thread ends within a round trip, not ``block_ms`` later). What was published
        stays published.
        """
        with self._state_lock:
            self._state = "stopped"
            thread = self._thread
        self._stop.set()
        raw = self._raw
        if raw is not None:
            raw.cancel()  # an XREAD BLOCK in progress returns now, not block_ms later
        if thread is None:
            return True
        thread.join(timeout_s)
        return not thread.is_alive()

    def is_running(self) -> bool:
        """True while the reader thread is alive. Any thread."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    # -- stats -----------------------------------------------------------------------------------
    def streams(self) -> list[StreamKey]:
        """The streams being read, in order of discovery. Any thread."""
        return self._counts.stream_list()

    def lost_ranges(self) -> dict[StreamKey, list[tuple[int, int]]]:
        """Per stream, the seq_id ranges (inclusive) Redis removed before they were read (retention, XDEL,
        a restart without persistence). Any thread; never blocks."""
        return self._counts.lost_copy()

    def renumbered_ranges(self) -> dict[StreamKey, list[tuple[int, int]]]:
        """Per stream, the seq_id ranges (inclusive) of entries skipped because the stream was written anew
        below the seq_ids already taken (each entry counted once). Any thread; never blocks."""
        return self._renumbered.ranges()

    def stats(self) -> dict[str, Any]:
        """Counters for the debug pane (``SourceCounts.snapshot`` lists them). Any thread; never blocks."""
        return self._counts.snapshot(self._renumbered, self.is_running())

    # -- reader thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self._cycle()
                except Exception as exc:  # nothing may end the transport but stop()
                    self._failed(exc)
        finally:
            client, self._client = self._client, None
            if client is not None:
                try:
                    client.close()
                except Exception:  # closing a dead connection may fail; nothing to keep
                    pass
            with self._counts.lock:
                self._counts.connected = False

    def _cycle(self) -> None:
        """One round: discover if due, wait for the gate, one XREAD, publish what it returned."""
        client = self._client
        if client is None:
            assert self._client_factory is not None
            client = self._client = self._client_factory()
        if time.monotonic() >= self._next_discover_at:
            self._discover(client)
            self._next_discover_at = time.monotonic() + self.discover_interval_s
        self._resolve_gaps(client)
        if not self._wait_for_gate():
            return
        cursors: dict[bytes, bytes | str] = {s.key: s.cursor for s in self._states.values()}
        if self._announce_cursor is not None:
            cursors[self._announce_key] = self._announce_cursor
        if not cursors:
            self._stop.wait(max(0.0, self._next_discover_at - time.monotonic()))
            return
        raw = self._raw
        if raw is None or raw.client is not client:
            raw = self._raw = RawCall(client)
            if self._stop.is_set():  # ``stop`` looked at ``_raw`` before it was this one
                raw.cancel()
        replies = xread(raw, cursors, count=self.xread_count(), block_ms=self.block_ms)
        self._reachable()
        entry_events = 0
        for key, entries in replies:
            state = self._states.get(key)
            if state is not None and entries:
                entry_events = max(entry_events, self._take(state, entries))
            elif key == self._announce_key and entries:
                self._announce_cursor = entries[-1][0]
                self._next_discover_at = 0.0  # a new stream: look at the index now
        if entry_events:
            self._entry_events = entry_events
        self._resolve_gaps(client)

    def xread_count(self) -> int:
        """The COUNT of the next XREAD: ``batch_events`` / the events per entry last read, within
        1..``batch_count``. Any thread; never blocks."""
        return max(1, min(self.batch_count, self.batch_events // self._entry_events))

    def _discover(self, client: redis.Redis) -> None:
        self._announce_cursor = self._last_announcement(client)  # before the index: no announcement missed
        members = client.smembers(self._index_key)
        self._reachable()
        self._check_vanished(client, members)
        self._check_renumbered(client)
        for key in sorted(members):
            if key in self._states or key in self._bad_keys:
                continue
            stream = parse_stream_key(key, prefix=self._prefix)
            if stream is None:
                self._bad_keys.add(key)
                self._count_rejected(BAD_KEY, f"index member {key[:120]!r} is not a stream key under {self._prefix!r}")
                continue
            if self._accept is not None and not self._accept(*stream):
                self._bad_keys.add(key)  # not counted: left unread on purpose
                continue
            try:
                floor = self._seq_floor(*stream) if self._seq_floor is not None else None
            except Exception as exc:  # retried at the next discovery; starting at 0 would duplicate
                self._rlog.log(logging.ERROR, "floor", "%s: cannot read the stored seq_id of %s/%s (%s); will retry",
                               self.name, *stream, exc)
                continue
            self._states[key] = StreamReadState(key, stream, floor)
            with self._counts.lock:
                self._counts.streams.append(stream)
            _log.info("%s: reading stream %s/%s after seq_id %s", self.name, *stream, floor)

    def _last_announcement(self, client: redis.Redis) -> bytes | None:
        """The id of the announcement stream's last entry (``0-0``: none yet), or None when the key
        holds another type (counted once, then discovery relies on the interval)."""
        try:
            last = client.xrevrange(self._announce_key, count=1)
        except redis.ResponseError as exc:
            if "WRONGTYPE" not in str(exc):
                raise
            if self._announce_key not in self._bad_keys:
                self._bad_keys.add(self._announce_key)
                self._count_rejected(NOT_A_STREAM, f"key {self._announce_key[:120]!r} is not a stream: new streams "
                                                   f"are found every {self.discover_interval_s:g} s")
            return None
        return last[0][0] if last else b"0-0"

    def _check_vanished(self, client: redis.Redis, members: set[bytes]) -> None:
        """Mark the known streams whose key is gone from Redis (not indexed, not there). May raise connection errors.

        Every batch a writer sends re-indexes its stream, so a known key missing from the index means
        the index was lost (a Redis restarted without its data) or the stream was deleted.
        """
        missing = [state for key, state in self._states.items() if key not in members and not state.vanished]
        if not missing:
            return
        pipe = client.pipeline(transaction=False)
        for state in missing:
            pipe.exists(state.key)
        for state, exists in zip(missing, pipe.execute()):
            if exists:
                continue
            state.vanished = True
            with self._counts.lock:
                self._counts.vanished[state.stream] = state.last_seq
            _log.warning("%s: stream %s/%s is gone from Redis after seq_id %s (deleted, or Redis restarted "
                         "without its data): entries after it that were not read are lost; if the writer goes "
                         "on, the missing range is reported", self.name, *state.stream, state.last_seq)

    def _take(self, state: StreamReadState, entries: Sequence[Any]) -> int:
        """Decode, publish and advance the cursor over one stream's reply; the events per entry in
        it (rounded up). Never raises a RedisError."""
        if state.vanished:  # written again: a gap before its new entries is explained like any other
            state.vanished = False
            with self._counts.lock:
                self._counts.vanished.pop(state.stream, None)
        taken = take_entries(state, entries, self._renumbered)
        per_topic = publish_stream_events(self._bus, taken.events)
        with self._counts.lock:  # one update: entries_read never runs ahead of what they were counted as
            self._counts.entries_read += taken.read
            self._counts.repeated += taken.repeated
            published = self._counts.published
            for topic, count in per_topic.items():
                published[topic.name] += count
            for exc in taken.rejected:
                self._counts.rejected[exc.reason] += 1
        for exc in taken.rejected:
            self._log_rejected(exc.reason, f"stream {state.stream[0]}/{state.stream[1]}: {exc.detail}")
        return -(-len(taken.events) // len(entries))

    def _check_renumbered(self, client: redis.Redis) -> None:
        """Read the streams written anew below the seq_ids taken again from their start. May raise connection errors."""
        for state in find_renumbered(client, self._states.values()):
            self._renumbered.started(state.stream, state.read_anew())
            with self._counts.lock:
                self._counts.vanished.pop(state.stream, None)

    def _resolve_gaps(self, client: redis.Redis) -> None:
        """Tell lost ranges (removed by Redis) from seq_ids the writer skipped. May raise connection errors."""
        for state in self._states.values():
            if not state.gaps:
                continue
            if any(b > state.removed_upper for _, b in state.gaps):
                state.removed_upper = max(state.removed_upper, removed_upper(client, state.key))
            upper = state.removed_upper
            for a, b in state.gaps:
                if upper >= a:
                    self._note_lost(state.stream, a, min(b, upper))
            state.gaps.clear()

    def _note_lost(self, stream: StreamKey, first: int, last: int) -> None:
        with self._counts.lock:
            self._counts.lost.setdefault(stream, []).append((first, last))
        self._rlog.log(logging.WARNING, f"lost:{stream}",
                       "%s: stream %s/%s lost seq_ids %d..%d (%d events at most): Redis no longer held them when "
                       "they were to be read (retention, XDEL, or a restart without persistence)",
                       self.name, stream[0], stream[1], first, last, last - first + 1)

    def _count_rejected(self, reason: str, detail: str) -> None:
        with self._counts.lock:
            self._counts.rejected[reason] += 1
        self._log_rejected(reason, detail)

    def _log_rejected(self, reason: str, detail: str) -> None:
        self._rlog.log(logging.WARNING, f"rejected:{reason}", "%s: entry skipped (%s): %s", self.name, reason, detail)

    def _wait_for_gate(self) -> bool:
        """Block while the gate is closed; False if stop was requested meanwhile."""
        gate = self._gate
        if gate is None:
            return True
        started = time.monotonic()
        while not gate.wait_until_open(_GATE_RECHECK_S):
            if self._stop.is_set():
                return False
        waited = time.monotonic() - started
        if waited > 0.001:
            with self._counts.lock:
                self._counts.paused_s += waited
        return not self._stop.is_set()

    def _reachable(self) -> None:
        if self._failing:
            self._failing = False
            _log.info("%s: Redis reachable again after %d failed attempts", self.name, self._backoff.failures)
            with self._counts.lock:
                self._counts.reconnects += 1
        self._backoff.reset()
        with self._counts.lock:
            self._counts.connected = True

    def _note_error(self, exc: BaseException) -> None:
        with self._counts.lock:
            self._counts.last_error = f"{type(exc).__name__}: {exc}"

    def _failed(self, exc: Exception) -> None:
        """Handle what ``_cycle`` raised: back off (and count) before the next round. After ``stop``
        nothing is counted: its cancelled ``XREAD`` fails by design, and nothing is read any more."""
        if self._stop.is_set():
            return
        try:
            if isinstance(exc, CONNECTION_ERRORS):
                self._connection_lost(exc)
            elif isinstance(exc, redis.ResponseError):
                self._response_error(exc)
            else:
                raise exc
        except CONNECTION_ERRORS as again:
            self._connection_lost(again)
        except Exception as other:  # a bug or a surprise: say it, wait, go on
            self._note_error(other)
            if self._rlog.log(logging.ERROR, "unexpected", "%s: unexpected error (%s: %s); retrying",
                              self.name, type(other).__name__, other):
                _log.debug("%s: traceback of the unexpected error", self.name, exc_info=other)
            self._backoff.sleep(self._stop)

    def _connection_lost(self, exc: BaseException) -> None:
        self._failing = True
        self._note_error(exc)
        with self._counts.lock:
            self._counts.connection_errors += 1
            self._counts.connected = False
        delay_s = self._backoff.next_delay_s()
        self._rlog.log(logging.WARNING, "conn", "%s: Redis unavailable (%s); retrying in %.2f s", self.name, exc, delay_s)
        self._next_discover_at = 0.0  # streams may have appeared meanwhile
        self._stop.wait(delay_s)

    def _response_error(self, exc: redis.ResponseError) -> None:
        """A reply error (e.g. an indexed key holds another type): drop the offending keys, else back off."""
        self._note_error(exc)
        client = self._client
        dropped = 0
        if client is not None and "WRONGTYPE" in str(exc):
            for key in list(self._states):
                kind = client.type(key)
                if kind not in _STREAM_OR_NOTHING:
                    state = self._states.pop(key)
                    self._bad_keys.add(key)
                    with self._counts.lock:
                        self._counts.streams.remove(state.stream)
                    self._count_rejected(NOT_A_STREAM, f"key {key[:120]!r} holds a {kind!r}, not a stream")
                    dropped += 1
            if self._announce_cursor is not None and client.type(self._announce_key) not in _STREAM_OR_NOTHING:
                self._announce_cursor = self._last_announcement(client)  # None now: counted, left out
                dropped += 1
        if not dropped:
            self._rlog.log(logging.ERROR, "reply", "%s: Redis replied with an error: %s", self.name, exc)
            self._backoff.sleep(self._stop)
