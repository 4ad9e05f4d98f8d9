"""RedisPublisher: TelemetryEvents into their Redis streams, idempotently (Qt-free).

A batch goes out as one pipeline, packed and its replies read by ``redis_wire`` (redis-py's
per-argument packing and reply parsing cost more than everything else here): one ``SADD`` of the batch's stream keys to the index set (every
batch, so a Redis restarted without its data has its index back with the next batch and a GUI
started afterwards finds the stream; the cost is one command per batch), for a stream this
publisher has not indexed yet one ``XADD`` of its key to the announcement stream (readers blocked
on it discover the stream at once; ``redis_keys``), then one
``XADD key MAXLEN ~ N {seq_id}-1 topic ts payload`` per event, or (``entry_events`` > 1, wire
format 2, ``redis_packed``) one ``XADD key MAXLEN ~ N {seq_id}-1 v 2 events E`` per group of up to
``entry_events`` events of a stream, the id its last event's. Redis refuses an
id that is not greater than the stream's last one, so publishing a batch again (after a
connection loss left its fate unknown) stores each event at most once; the refusals are counted
as duplicates. A connection error leaves the whole batch to the caller, who retries it later.
"""

from __future__ import annotations

import logging
import threading
from typing import Mapping, Protocol, Sequence

import attrs
import redis

from gym_gui.rate_limited_log import RateLimitedLog
from gym_gui.telemetry.events import TelemetryEvent
from gym_gui.transport.redis_entries import STREAM_TOPICS, payload_json
from gym_gui.transport.redis_keys import (ANNOUNCE_MAXLEN, DEFAULT_RETENTION, KEY_PREFIX, announce_key, index_key,
                                          seq_of_any_id, stream_key)
from gym_gui.transport.redis_packed import pack_events
from gym_gui.transport.redis_wire import RawCall, command, topic_text, xadd_head

__all__ = ["DEFAULT_RETENTION", "PublishResult", "RedisPublisher", "SeqGuard", "stream_last_seq_id"]

_log = logging.getLogger(__name__)

_DUPLICATE_MARK = "equal or smaller"
#: Error replies of a server that cannot take writes for now (restarting and loading its data, a
#: busy script, a replica): the batch is retried like a lost connection (its ids make that safe),
#: never counted as refused.
_TRANSIENT_REPLIES = ("LOADING", "BUSY", "TRYAGAIN", "MASTERDOWN", "READONLY", "CLUSTERDOWN", "NOREPLICAS")
_TOPIC_TEXT = {topic: topic_text(topic.name) for topic in STREAM_TOPICS}


class SeqGuard(Protocol):
    """Told the highest seq_id per stream key of each batch before it goes out (``SeqState``)."""

    def reserve(self, maxima: Mapping[str, int]) -> None:
        """Returns once the batch may be sent; the publishing thread; never raises."""


@attrs.frozen(slots=True)
class PublishResult:
    """What one ``publish`` call did: events added, refused as already there, not sendable."""

    added: int = 0
    duplicates: int = 0
    unencodable: int = 0
    refused: int = 0  # refused for another reason (e.g. the key holds another type); logged


def stream_last_seq_id(client: redis.Redis, key: str) -> int | None:
    """The seq_id of the last entry ever added to stream ``key`` (kept when trimmed), or None.

    Any thread; one round trip. Raises the client's connection errors.
    """
    try:
        info = client.xinfo_stream(key)
    except redis.ResponseError as exc:
        if "no such key" in str(exc).lower():
            return None
        raise
    return seq_of_any_id(info.get("last-generated-id"))


class RedisPublisher:
    """Writes events to ``{prefix}:{run}:{agent}`` streams with bounded retention.

    ``retention``: events kept per stream (``MAXLEN ~``: entries; of v2 entries, ``retention /
    entry_events``), None for unbounded. ``entry_events``: events of a stream packed into one entry
    at most (wire format 2, ``redis_packed``; 1: one event per entry, format 1). ``seq_guard``: told
    each batch's highest seq_id per stream key before the batch is sent (the bridge's durable
    ``SeqState``, so a restarted bridge never reuses one). Any thread may call any method; ``publish`` calls are serialised (a stream's events must go out in order,
    from one caller).
    """

    def __init__(self, client: redis.Redis, *, key_prefix: str = KEY_PREFIX,
                 retention: int | None = DEFAULT_RETENTION, approximate_trim: bool = True,
                 seq_guard: SeqGuard | None = None, entry_events: int = 1) -> None:
        if retention is not None and retention < 1:
            raise ValueError(f"retention must be >= 1 or None, got {retention}")
        if entry_events < 1:
            raise ValueError(f"entry_events must be >= 1, got {entry_events}")
        self.entry_events = entry_events
        self.client = client
        self.key_prefix = key_prefix
        self.retention = retention
        self.approximate_trim = approximate_trim
        self.seq_guard = seq_guard
        self._index_key = index_key(key_prefix)
        self._announce_key = announce_key(key_prefix)
        self._lock = threading.Lock()
        self._indexed: set[str] = set()
        self._keys: dict[tuple[str, str | None], str] = {}
        self._heads: dict[str, str] = {}  # stream key -> its XADD command's head
        self._packed_heads: dict[str, str] = {}  # stream key -> the head of its v2 entries' XADD
        self._single_heads: dict[str, str] = {}  # stream key -> the head of a lone event's XADD when packing
        self._raw = RawCall(client)
        self._rlog = RateLimitedLog(_log, interval_s=2.0)
        self.added = 0
        self.duplicates = 0
        self.unencodable = 0
        self.refused = 0
        self.batches = 0

    def key_of(self, run_id: str, agent_id: str | None) -> str:
        """The stream key of ``(run_id, agent_id)`` under this publisher's prefix. Any thread; never blocks."""
        stream = (run_id, agent_id)
        key = self._keys.get(stream)
        if key is None:
            key = self._keys[stream] = stream_key(run_id, agent_id, prefix=self.key_prefix)
        return key

    def last_seq_id(self, run_id: str, agent_id: str | None) -> int | None:
        """The last seq_id stored in the stream of ``(run_id, agent_id)``, or None (a new stream).

        Any thread; one round trip; raises the client's connection errors.
        """
        return stream_last_seq_id(self.client, self.key_of(run_id, agent_id))

    def publish(self, events: Sequence[TelemetryEvent]) -> PublishResult:
        """XADD ``events`` (each stream's in seq_id order) in one pipeline. Any thread; blocks on Redis.

        Raises the client's connection errors (redis.ConnectionError, redis.TimeoutError): then the
        outcome of each event is unknown and the caller publishes the same events again later.
        """
        if not events:
            return PublishResult()
        with self._lock:
            return self._publish(events)

    def _publish(self, events: Sequence[TelemetryEvent]) -> PublishResult:
        keys: dict[str, int] = {}  # every stream of the batch, in order (each batch re-registers them): its top seq_id
        key_of = self.key_of
        run = agent = key = None
        for evt in events:  # (runs of one stream: its key looked up once)
            if evt.run_id is not run or evt.agent_id is not agent:
                run, agent = evt.run_id, evt.agent_id
                key = key_of(run, agent)
            if evt.seq_id > keys.get(key, -1):  # type: ignore[arg-type]
                keys[key] = evt.seq_id  # type: ignore[index]
        if self.seq_guard is not None:
            self.seq_guard.reserve(keys)  # before any of the batch goes out
        # the index first: a reader that sees an entry finds its stream; then the announcements of
        # the streams new to this publisher, which wake the readers blocked on them
        piece: list[str] = [command(b"SADD", self._index_key, *keys).decode("utf-8")]
        piece += [command(b"XADD", self._announce_key, b"MAXLEN", b"~", ANNOUNCE_MAXLEN, b"*", b"stream", key
                          ).decode("utf-8") for key in keys if key not in self._indexed]
        announced = len(piece) - 1
        counts: list[int] = [0] * len(piece)  # events per command (the SADD and announcements: none)
        if self.entry_events > 1 and len(events) > 1:
            unencodable = self._append_packed(events, piece, counts)
        else:
            unencodable = self._append_single(events, piece)
            counts += [1] * (len(piece) - len(counts))
        sent = sum(counts)
        # one send and one read: each blocking call lets the other busy thread of the process (the
        # proxy's reader) take the GIL, for up to a switch interval (5 ms) before this one has it back
        errors = self._raw.call_errors("".join(piece).encode("utf-8"), len(piece))
        for _index, message in errors:
            if message.startswith(_TRANSIENT_REPLIES):  # the server cannot take writes yet: retry it all
                raise redis.exceptions.BusyLoadingError(f"Redis is not ready: {message}")
        if errors and errors[0][0] == 0:
            self._rlog.log(logging.ERROR, "index", "Redis refused to index %d streams: %s", len(keys), errors[0][1])
        else:
            self._indexed.update(keys)
        duplicates = refused = 0
        for index, message in errors:
            if index == 0:
                continue
            if index <= announced:  # readers find the stream at their next look at the index instead
                self._rlog.log(logging.WARNING, "announce", "Redis refused an announcement: %s", message)
                continue
            if _DUPLICATE_MARK in message:
                duplicates += counts[index]
            else:
                refused += counts[index]
                self._rlog.log(logging.ERROR, "refused", "Redis refused an entry of %d events: %s", counts[index], message)
        added = sent - duplicates - refused
        self.added += added
        self.duplicates += duplicates
        self.unencodable += unencodable
        self.refused += refused
        self.batches += 1
        return PublishResult(added, duplicates, unencodable, refused)

    def _append_single(self, events: Sequence[TelemetryEvent], piece: list[str], heads: dict[str, str] | None = None,
                       maxlen: int | None = None) -> int:
        """One v1 ``XADD`` per event into ``piece`` (``heads``/``maxlen``: those of a packed stream);
        returns the events that cannot be encoded (counted, logged)."""
        unencodable = 0
        if heads is None:
            heads, maxlen = self._heads, self.retention
        key_of = self.key_of
        append = piece.append
        run = agent = head = None
        for evt in events:
            try:
                text = payload_json(evt.payload)
                ts = evt.ts_iso
                if text.isascii() and ts.isascii():
                    ts_bytes, text_bytes = len(ts), len(text)
                else:  # raises for a lone surrogate, before the batch's text is encoded
                    ts_bytes, text_bytes = len(ts.encode("utf-8")), len(text.encode("utf-8"))
                topic = _TOPIC_TEXT[evt.topic]
            except (TypeError, ValueError, RecursionError, KeyError) as exc:
                unencodable += 1
                self._rlog.log(logging.ERROR, "unencodable", "cannot send %s seq %d of %s/%s: %s",
                               evt.topic.name, evt.seq_id, evt.run_id, evt.agent_id, exc)
                continue
            if evt.run_id is not run or evt.agent_id is not agent:
                run, agent = evt.run_id, evt.agent_id
                key = key_of(run, agent)
                head = heads.get(key)
                if head is None:
                    head = heads[key] = xadd_head(key, maxlen, self.approximate_trim).decode("utf-8")
            seq = str(evt.seq_id)  # the entry id "{seq_id}-1" (redis_keys.entry_id), as in redis_wire.xadd_text
            append(f"{head}${len(seq) + 2}\r\n{seq}-1\r\n{topic}${ts_bytes}\r\n{ts}\r\n$7\r\npayload\r\n"
                   f"${text_bytes}\r\n{text}\r\n")
        return unencodable

    def _append_packed(self, events: Sequence[TelemetryEvent], piece: list[str], counts: list[int]) -> int:
        """Each stream's events of the batch (in their order) in v2 entries of up to ``entry_events``
        into ``piece``, their event counts into ``counts``; a lone event, or a group that cannot be
        packed, as v1 entries. Returns the events that cannot be encoded."""
        streams: dict[tuple[str, str | None], list[TelemetryEvent]] = {}
        run = agent = None
        group: list[TelemetryEvent] = []
        for evt in events:
            if evt.run_id is not run or evt.agent_id is not agent:
                run, agent = evt.run_id, evt.agent_id
                group = streams.setdefault((run, agent), [])
            group.append(evt)
        size = self.entry_events
        heads = self._packed_heads
        maxlen = None if self.retention is None else max(1, -(-self.retention // size))  # entries of up to size events
        unencodable = 0
        for (run_id, agent_id), stream_events in streams.items():
            key = self.key_of(run_id, agent_id)
            head = heads.get(key)
            if head is None:
                head = heads[key] = xadd_head(key, maxlen, self.approximate_trim, fields=2).decode("utf-8")
            for i in range(0, len(stream_events), size):
                chunk = stream_events[i:i + size]
                packed = None
                if len(chunk) > 1:
                    try:
                        packed = pack_events(chunk)
                    except (TypeError, ValueError, RecursionError, KeyError):
                        packed = None  # one per entry: finds and counts the event that cannot be sent
                if packed is None:
                    before = len(piece)
                    unencodable += self._append_single(chunk, piece, self._single_heads, maxlen)
                    counts += [1] * (len(piece) - before)
                    continue
                seq = str(chunk[-1].seq_id)
                piece.append(f"{head}${len(seq) + 2}\r\n{seq}-1\r\n$1\r\nv\r\n$1\r\n2\r\n$6\r\nevents\r\n"
                             f"${len(packed)}\r\n{packed.decode('utf-8')}\r\n")
                counts.append(len(chunk))
        return unencodable

    def stats(self) -> dict[str, int]:
        """Events added, duplicates refused, unencodable, refused otherwise; batches; streams.

        Any thread; never blocks (counters of a ``publish`` in progress show up once it returns)."""
        return {"added": self.added, "duplicates": self.duplicates, "unencodable": self.unencodable,
                "refused": self.refused, "batches": self.batches, "streams": len(self._indexed)}
