"""The reader's XREAD: one blocking read of every stream, and one stream's reply into events (Qt-free).

``xread`` sends ``XREAD COUNT c BLOCK ms STREAMS k... id...`` through ``redis_wire`` (its reply
parsed without redis-py's per-element Python work: a transport entry is one regular-expression
match) and returns the reply as ``(key, entries)`` pairs, whatever the protocol's shape (RESP2
arrays, RESP3 maps). ``take_entries`` walks one stream's entries in order: advances its cursor and
highest seq_id, notes gaps, skips (and counts) renumbered entries, decodes the rest
(``redis_entries.decode_parts``) and keeps the first entry read as the stream's anchor.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import attrs
import redis

from gym_gui.telemetry.events import TelemetryEvent
from gym_gui.transport.redis_entries import EntryRejected, decode_entry, decode_parts
from gym_gui.transport.redis_keys import seq_from_entry_id
from gym_gui.transport.redis_read_state import StreamReadState
from gym_gui.transport.redis_renumbered import RenumberedEntries
from gym_gui.transport.redis_wire import RawCall, ReplyError, RespMap, command

__all__ = ["Taken", "entry_fields", "take_entries", "xread"]

#: One entry of a reply: an ``Entry`` tuple (the transport's shape) or ``[raw_id, [field, value, ...] | None]``.
RawEntry = Any


def xread(raw: RawCall, cursors: Mapping[bytes, bytes | str], *, count: int,
          block_ms: int) -> list[tuple[bytes, Sequence[RawEntry]]]:
    """One ``XREAD COUNT count BLOCK block_ms`` of the streams ``cursors`` (key -> last id read).

    Any thread (one at a time per ``raw``); blocks up to ``block_ms`` plus a round trip. Raises
    ``redis.ResponseError`` for an error reply (e.g. WRONGTYPE) and the connection errors.
    """
    keys = list(cursors)
    packed = command(b"XREAD", b"COUNT", count, b"BLOCK", block_ms, b"STREAMS", *keys,
                     *(cursors[k] for k in keys))
    (reply,) = raw.call(packed, 1)
    return stream_replies(reply)


def stream_replies(reply: Any) -> list[tuple[bytes, Sequence[RawEntry]]]:
    """An XREAD reply as ``(key, entries)`` pairs (RESP2: ``[[key, entries], ...]``; RESP3: a map;
    None: nothing new). Raises ``redis.ResponseError`` for an error reply. Any thread; pure."""
    if reply is None:
        return []
    if type(reply) is ReplyError:
        raise redis.ResponseError(reply.message)
    if isinstance(reply, dict):  # a client's parsed RESP3 map
        return [(key, value) for key, value in reply.items()]
    if type(reply) is RespMap:  # flat [key, entries, key, entries, ...]
        return [(reply[i], reply[i + 1] or []) for i in range(0, len(reply) - 1, 2)]
    return [(pair[0], pair[1] or []) for pair in reply if isinstance(pair, list) and len(pair) == 2]


def entry_fields(entry: RawEntry) -> tuple[bytes, Mapping[bytes, bytes]]:
    """``(raw_id, fields)`` of a reply entry, as redis-py gives them (for anchors). Pure."""
    if type(entry) is tuple:  # an Entry
        return entry[0], {b"topic": entry[1], b"ts": entry[2], b"payload": entry[3]}
    raw_id, flat = entry[0], entry[1] if len(entry) > 1 else None
    return raw_id, _pairs(flat)


def _pairs(flat: Any) -> dict[bytes, bytes]:
    if not flat:
        return {}
    if isinstance(flat, dict):
        return flat
    return dict(zip(flat[::2], flat[1::2]))


@attrs.define(slots=True)
class Taken:
    """What one stream's reply gave: events to publish, rejected entries, entries read."""

    events: list[TelemetryEvent] = attrs.Factory(list)
    rejected: list[EntryRejected] = attrs.Factory(list)
    read: int = 0


def take_entries(state: StreamReadState, entries: Iterable[RawEntry], renumbered: RenumberedEntries) -> Taken:
    """Walk one stream's entries (in id order): cursor, seq_ids, gaps, renumbered skips, decoding.

    The reader thread; no I/O; never raises for an entry (a bad one is in ``rejected``).
    """
    out = Taken()
    events, rejected = out.events, out.rejected
    last = state.last_seq
    skipped: list[int] = []
    skip_upto = state.skip_upto
    stream = state.stream
    read = 0
    first: RawEntry = None
    cursor = state.cursor
    for entry in entries:
        read += 1
        if first is None:
            first = entry
        fast = type(entry) is tuple  # an Entry: (raw_id, topic, ts, payload)
        raw_id = entry[0]
        seq = seq_from_entry_id(raw_id)
        if skip_upto is not None and seq is not None:
            if seq <= skip_upto:  # renumbered: its seq_id is taken by an event read before
                skipped.append(seq)
                cursor = raw_id
                continue
            if skipped:
                renumbered.skipped(stream, skipped)
                skipped = []
            renumbered.ended(stream, skip_upto)
            state.skip_upto = skip_upto = None
        if seq is not None:
            low = 1 if last is None else last + 1
            if seq > low:
                state.gaps.append((low, seq - 1))
            if last is None or seq > last:
                last = seq
        cursor = raw_id
        try:
            if fast:
                events.append(decode_parts(stream, raw_id, entry[1], entry[2], entry[3], seq))
            else:
                events.append(decode_entry(stream, raw_id, _pairs(entry[1] if len(entry) > 1 else None), seq))
        except EntryRejected as exc:
            rejected.append(exc)
    state.cursor = cursor
    state.last_seq = last
    if state.anchor is None and first is not None:  # the first entry read: an old anchor survives a lost tail too
        state.anchor = entry_fields(first)
    if skipped:
        renumbered.skipped(stream, skipped)
    out.read = read
    return out
