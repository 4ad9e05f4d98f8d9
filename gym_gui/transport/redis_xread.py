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
from gym_gui.transport.redis_packed import PACKED_FIELDS, Unpacked, decode_packed
from gym_gui.transport.redis_read_state import StreamReadState
from gym_gui.transport.redis_renumbered import RenumberedEntries
from gym_gui.transport.redis_wire import RawCall, ReplyError, RespMap, command

__all__ = ["Taken", "entry_fields", "take_entries", "xread"]

#: One entry of a reply: an ``Entry`` or ``PackedEntry`` tuple (the transport's shapes) or
#: ``[raw_id, [field, value, ...] | None]``.
RawEntry = Any
_V, _V2, _EVENTS = PACKED_FIELDS


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
    if type(entry) is tuple:  # an Entry, or a PackedEntry
        if len(entry) == 2:
            return entry[0], {_V: _V2, _EVENTS: entry[1]}
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
    """What one stream's reply gave: events to publish, rejected entries, events read (an entry of
    format 2 counts its events), events skipped as already taken (``repeated``)."""

    events: list[TelemetryEvent] = attrs.Factory(list)
    rejected: list[EntryRejected] = attrs.Factory(list)
    read: int = 0
    repeated: int = 0


def _packed_blob(entry: RawEntry) -> bytes | None:
    """The events of a v2 entry (``redis_packed``), None for any other entry. Pure."""
    if type(entry) is tuple:
        return entry[1] if len(entry) == 2 else None
    fields = _pairs(entry[1] if len(entry) > 1 else None)
    if fields.get(_V) == _V2:
        return fields.get(_EVENTS)
    return None


def take_entries(state: StreamReadState, entries: Iterable[RawEntry], renumbered: RenumberedEntries) -> Taken:
    """Walk one stream's entries (in id order): cursor, seq_ids, gaps, renumbered skips, decoding.

    An entry of format 2 is walked event by event, as if each were an entry of its own; its events
    at or below the highest seq_id taken are skipped (a re-sent or resumed entry). The reader
    thread; no I/O; never raises for an entry (a bad one is in ``rejected``).
    """
    out = Taken()
    events, rejected = out.events, out.rejected
    last = state.last_seq
    skipped: list[int] = []
    skip_upto = state.skip_upto
    stream = state.stream
    read = repeated = 0
    first: RawEntry = None
    cursor = state.cursor
    for entry in entries:
        if first is None:
            first = entry
        raw_id = entry[0]
        entry_seq = seq_from_entry_id(raw_id)
        cursor = raw_id
        fast = type(entry) is tuple and len(entry) == 4  # an Entry: (raw_id, topic, ts, payload)
        units: list[Unpacked] | None = None
        if not fast:
            blob = _packed_blob(entry)
            if blob is not None:
                try:
                    units = decode_packed(stream, raw_id, blob, entry_seq)
                except EntryRejected as exc:  # cannot be split: one rejected entry at its id's seq_id
                    units = [(entry_seq, exc)] if entry_seq is not None else None
                    if units is None:
                        read += 1
                        rejected.append(exc)
                        continue
        if units is None:
            seq = entry_seq
            try:
                if fast:
                    unit: TelemetryEvent | EntryRejected = decode_parts(stream, raw_id, entry[1], entry[2], entry[3], seq)
                else:
                    unit = decode_entry(stream, raw_id, _pairs(entry[1] if len(entry) > 1 else None), seq)
            except EntryRejected as exc:
                unit = exc
            if seq is None:  # (a bad id: rejected, it moves nothing but the cursor)
                read += 1
                rejected.append(unit)  # type: ignore[arg-type]
                continue
            units = [(seq, unit)]
        for seq, unit in units:
            read += 1
            if skip_upto is not None:
                if seq <= skip_upto:  # renumbered: its seq_id is taken by an event read before
                    skipped.append(seq)
                    continue
                if skipped:
                    renumbered.skipped(stream, skipped)
                    skipped = []
                renumbered.ended(stream, skip_upto)
                state.skip_upto = skip_upto = None
            if last is not None and seq <= last:  # an event of a v2 entry taken before (a re-send, a resume)
                repeated += 1
                continue
            low = 1 if last is None else last + 1
            if seq > low:
                state.gaps.append((low, seq - 1))
            last = seq
            if type(unit) is TelemetryEvent:
                events.append(unit)
            else:
                rejected.append(unit)  # type: ignore[arg-type]
    state.cursor = cursor
    state.last_seq = last
    if state.anchor is None and first is not None:  # the first entry read: an old anchor survives a lost tail too
        state.anchor = entry_fields(first)
    if skipped:
        renumbered.skipped(stream, skipped)
    out.read = read
    out.repeated = repeated
    return out
