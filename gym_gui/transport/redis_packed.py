"""Wire format 2: several events of one stream in one stream entry, and back (Qt-free, pure functions).

A v1 entry holds one event (fields ``topic``, ``ts``, ``payload``; redis_entries.py). Redis spends
about 3 us of CPU per ``XADD`` whatever its size, and each entry costs the writer and the reader a
framing of their own, so the bridge packs up to ``entry_events`` consecutive events of a stream
into one entry:

- **id** ``{seq_id}-1`` of the entry's *last* event, as a v1 entry of that event would have: every
  rule on ids holds (idempotent re-sends, the stream's last-generated id is the last seq_id sent,
  a reader's cursor after an entry is after each of its events);
- **fields** ``v`` = ``2`` and ``events`` = one JSON array (orjson) of the events, seq_ids strictly
  ascending up to the entry id. A step of a ``StepPayload`` whose action and observation are plain
  JSON scalars is ``[seq_id, ts, episode_index, step_index, action, observation, reward,
  terminated, truncated, info, render_payload]`` (11 items; info and render_payload the JSON text
  the proxy made, as JSON strings: the reader makes the same ``StepPayload`` again without decoding
  them, after checking each text it has not seen valid yet); any other event ``[seq_id, topic, ts,
  payload]`` (4 items, the payload the JSON that ``payload_json`` writes). NaN, infinities and
  integers beyond 64 bits only ever appear inside that JSON, which the reader decodes exactly
  (``load_json_exact`` rules).

A reader of version 1 sees a v2 entry as one without ``topic`` (``missing_field``, counted): never
silent. The reader takes both versions in any mix. An entry may repeat events an earlier entry
holds (a batch re-sent packed differently after a connection loss) and a GUI may resume inside an
entry: events at or below the seq_ids already taken are skipped (counted ``repeated``).
"""

from __future__ import annotations

from typing import Any, Sequence, Union

import orjson

from gym_gui.telemetry.events import MAX_SEQ_ID, StreamKey, TelemetryEvent, Topic, checked_event
from gym_gui.telemetry.json_text import MAX_JSON_DEPTH, load_json, may_hold_big_int, text_nesting_exceeds
from gym_gui.telemetry.step_payload import StepPayload, fits_typed_columns
from gym_gui.transport.redis_entries import STREAM_TOPICS, EntryRejected, RejectReason, payload_json

__all__ = ["PACKED_FIELDS", "Unpacked", "decode_packed", "pack_events"]

#: The field names and version value of a v2 entry (``v``, ``2``, ``events``), as Redis returns them.
PACKED_FIELDS = (b"v", b"2", b"events")
_STEP = Topic.STEP_APPENDED
_TOPIC_NAME = {t: t.name for t in STREAM_TOPICS}
_TOPIC_BY_NAME = {t.name: t for t in STREAM_TOPICS}
_Fragment = orjson.Fragment
_dumps = orjson.dumps
_loads = orjson.loads
_OrjsonError = orjson.JSONDecodeError
_INT_MIN = -(1 << 63)
_INT_MAX = (1 << 63) - 1


def pack_events(events: Sequence[TelemetryEvent]) -> bytes:
    """The ``events`` field of an entry holding ``events`` (one stream's, seq_ids ascending). Any thread; pure.

    Raises TypeError or ValueError when one of them cannot be encoded (a lone surrogate, a payload
    ``dump_json`` refuses): the caller sends them one per entry, which finds and counts that one.
    """
    items: list[tuple[Any, ...]] = []
    append = items.append
    for evt in events:
        payload = evt.payload
        if type(payload) is StepPayload:
            ep, si, action, observation, reward, terminated, truncated, info_json, render_json = payload.fields
            if ((type(action) is int and _INT_MIN <= action <= _INT_MAX or _plain(action))  # (ints: the usual, inline)
                    and (type(observation) is int and _INT_MIN <= observation <= _INT_MAX or _plain(observation))
                    and (type(reward) is int or reward - reward == 0.0)):
                append((evt.seq_id, evt.ts_iso, ep, si, action, observation, reward, terminated, truncated,
                        info_json, render_json))
                continue
        append((evt.seq_id, _TOPIC_NAME[evt.topic], evt.ts_iso, _Fragment(payload_json(payload))))
    try:
        return _dumps(items)
    except orjson.JSONEncodeError as exc:
        raise ValueError(str(exc)) from None


def _plain(value: Any) -> bool:
    """A JSON scalar that orjson writes exactly (no NaN or infinity, no integer beyond 64 bits)."""
    kind = type(value)
    if kind is int:
        return _INT_MIN <= value <= _INT_MAX
    if kind is float:
        return value - value == 0.0
    return kind is str or kind is bool or value is None


#: One event of an entry, or why it was rejected, with its seq_id.
Unpacked = tuple[int, Union[TelemetryEvent, EntryRejected]]


def decode_packed(stream: StreamKey, raw_id: bytes, blob: bytes, entry_seq: int | None) -> list[Unpacked]:
    """The events of a v2 entry of ``stream`` (``entry_seq``: its id's seq_id), each with its seq_id;
    an event that is not valid comes as its ``EntryRejected``. Any thread; pure.

    Raises EntryRejected for an entry that cannot be split into events (not JSON, not a list of
    events, seq_ids not ascending up to the entry id): then none of them is taken.
    """
    if entry_seq is None:
        raise EntryRejected(RejectReason.BAD_ID, f"entry id {raw_id!r} is not '{{seq_id}}-1'")
    items = _load_items(raw_id, blob)
    run_id, agent_id = stream
    # a step's fields are checked below as TelemetryEvent checks them (seq_id: an int in 0..entry_seq,
    # which seq_from_entry_id bounds by MAX_SEQ_ID), so with a plain stream key it is made unchecked
    make_step = (checked_event if type(run_id) is str and (agent_id is None or type(agent_id) is str and agent_id)
                 else TelemetryEvent)
    valid = _VALID_TEXTS
    if len(valid) > _VALID_TEXTS_MAX:
        valid.clear()
    out: list[Unpacked] = []
    append = out.append
    previous = -1
    for item in items:
        if type(item) is not list or not item or type(item[0]) is not int:
            raise EntryRejected(RejectReason.BAD_PAYLOAD, f"entry {raw_id!r}: an item is not an event: {item!r}"[:300])
        seq = item[0]
        if not previous < seq <= entry_seq:
            raise EntryRejected(RejectReason.BAD_ID, f"entry {raw_id!r}: seq_id {seq} after {previous} "
                                                     f"(ascending up to the entry id)")
        previous = seq
        if len(item) == 11:
            _seq, ts, ep, si, action, observation, reward, terminated, truncated, info, render = item
            if (type(ts) is not str or not ts or type(info) is not str or not (render is None or type(render) is str)
                    or not fits_typed_columns(ep, si, reward, terminated, truncated)
                    or not (info in valid or _valid_object_text(info, valid))
                    or not (render is None or render in valid or _valid_object_text(render, valid))):
                append((seq, EntryRejected(RejectReason.BAD_PAYLOAD, f"entry {raw_id!r}: step {seq} is malformed")))
                continue
            payload = StepPayload((ep, si, action, observation, reward, terminated, truncated, info, render))
            append((seq, make_step(_STEP, run_id, agent_id, seq, ts, payload)))
        elif len(item) == 4:
            append((seq, _generic(run_id, agent_id, raw_id, item)))
        else:
            append((seq, EntryRejected(RejectReason.BAD_PAYLOAD, f"entry {raw_id!r}: event {seq} has {len(item)} items")))
    if previous != entry_seq:
        raise EntryRejected(RejectReason.BAD_ID, f"entry {raw_id!r}: its last event is seq_id {previous}")
    return out


def _load_items(raw_id: bytes, blob: bytes) -> list[Any]:
    """The decoded array, exact as ``load_json_exact`` is (orjson unless the text may hold an integer
    beyond 64 bits or NaN/Infinity, then the stdlib), nesting bounded as for a payload."""
    value: Any = None
    try:
        if not may_hold_big_int(blob):
            try:
                value = _loads(blob)
            except _OrjsonError:  # NaN/Infinity, lone surrogate escapes...: the stdlib decides
                value = None
        if value is None:
            value = load_json(blob)
    except (ValueError, RecursionError) as exc:
        raise EntryRejected(RejectReason.BAD_PAYLOAD, f"entry {raw_id!r}: events are not JSON ({exc})"[:300]) from None
    if type(value) is not list or not value:
        raise EntryRejected(RejectReason.BAD_PAYLOAD, f"entry {raw_id!r}: events are not a list")
    # an event's payload sits two levels down (the array, the event): the payload's own limit, plus those
    if text_nesting_exceeds(blob, value, MAX_JSON_DEPTH + 2):
        raise EntryRejected(RejectReason.BAD_PAYLOAD, f"entry {raw_id!r}: nested deeper than {MAX_JSON_DEPTH}")
    return value


#: JSON object texts of steps' info and render payloads already found valid (a run repeats few of
#: them: a ToyText grid has one per agent position), so most are checked by one lookup.
_VALID_TEXTS: set[str] = set()
_VALID_TEXTS_MAX = 4096
_VALID_TEXT_CHARS = 2048  # longer texts (a video frame) are checked every time, never kept


def _valid_object_text(text: str, valid: set[str]) -> bool:
    """Whether ``text`` is the JSON text of an object, as the store keeps it (``load_json`` reads it;
    nesting within the payload limit); remembered in ``valid``. Pure but for that set."""
    try:
        try:
            value = _loads(text)
        except _OrjsonError:  # NaN/Infinity: the stdlib decides
            value = load_json(text)
        if may_hold_big_int(text.encode("utf-8", "surrogatepass")):
            value = load_json(text)
    except (ValueError, RecursionError):
        return False
    if type(value) is not dict or text_nesting_exceeds(text, value, MAX_JSON_DEPTH - 1):
        return False
    if len(text) <= _VALID_TEXT_CHARS:
        valid.add(text)
    return True


def _generic(run_id: str, agent_id: str | None, raw_id: bytes, item: list[Any]) -> TelemetryEvent | EntryRejected:
    seq, topic_name, ts, payload = item
    topic = _TOPIC_BY_NAME.get(topic_name) if type(topic_name) is str else None
    if topic is None:
        return EntryRejected(RejectReason.UNKNOWN_TOPIC, f"entry {raw_id!r}: event {seq} has topic {topic_name!r}"[:300])
    if type(ts) is not str or not ts:
        return EntryRejected(RejectReason.BAD_TS, f"entry {raw_id!r}: event {seq} has ts {ts!r}"[:300])
    if type(payload) is not dict:
        return EntryRejected(RejectReason.BAD_PAYLOAD, f"entry {raw_id!r}: event {seq}'s payload is not an object")
    try:
        return TelemetryEvent(topic, run_id, agent_id, seq, ts, payload)
    except TypeError as exc:
        return EntryRejected(RejectReason.BAD_EVENT, f"entry {raw_id!r}: event {seq}: {exc}"[:300])


assert MAX_SEQ_ID == _INT_MAX  # seq_ids are 64-bit: orjson writes every one
