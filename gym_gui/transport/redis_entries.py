"""One TelemetryEvent as the fields of a Redis stream entry, and back (Qt-free, pure functions).

Fields: ``topic`` (the Topic name), ``ts`` (the event's ISO-8601 time) and ``payload`` (the
payload as JSON text, made by the store's ``dump_json``). The stream key carries run_id and
agent_id, the entry id carries seq_id (redis_keys.py). Decoding never trusts an entry: anything
malformed raises ``EntryRejected`` with a short reason, counted by the reader.
"""

from __future__ import annotations

from typing import Any, Mapping

from gym_gui.telemetry.events import StreamKey, TelemetryEvent, Topic
from gym_gui.telemetry.json_text import load_json_exact
from gym_gui.telemetry.sqlite_rows import dump_json
from gym_gui.telemetry.step_payload import StepPayload
from gym_gui.telemetry.topic_specs import transported_topics
from gym_gui.transport.redis_keys import seq_from_entry_id

__all__ = ["EntryRejected", "RejectReason", "STREAM_TOPICS", "decode_entry", "decode_parts", "encode_fields", "encode_parts",
           "payload_json"]

#: Topics a stream carries (OVERFLOW notices are local to one bus, never transported).
STREAM_TOPICS: tuple[Topic, ...] = transported_topics()
_TOPIC_BY_NAME: dict[bytes, Topic] = {t.name.encode(): t for t in STREAM_TOPICS}
_F_TOPIC = b"topic"
_F_TS = b"ts"
_F_PAYLOAD = b"payload"


class RejectReason:
    """Why an entry was skipped (the keys of the reader's ``rejected`` counts)."""

    BAD_ID = "bad_id"  # the entry id is not "{seq_id}-1"
    MISSING_FIELD = "missing_field"  # topic, ts or payload absent
    UNKNOWN_TOPIC = "unknown_topic"  # not a transported Topic name
    BAD_TS = "bad_ts"  # empty or not UTF-8
    BAD_PAYLOAD = "bad_payload"  # not JSON, or JSON but not an object
    BAD_EVENT = "bad_event"  # the fields do not make a valid TelemetryEvent


class EntryRejected(Exception):
    """A stream entry that is not a valid event: ``reason`` (a RejectReason) and ``detail``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def encode_fields(evt: TelemetryEvent) -> dict[str, str]:
    """The entry fields of ``evt``. Any thread. Raises TypeError if the payload is not JSON-encodable."""
    return {"topic": evt.topic.name, "ts": evt.ts_iso, "payload": payload_json(evt.payload)}


def payload_json(payload: Mapping[str, Any]) -> str:
    """A payload's JSON text, as the entry's ``payload`` field carries it (``dump_json``'s text; a
    StepPayload's written from its fields without decoding them). Any thread; pure; raises TypeError."""
    if type(payload) is not StepPayload:
        return dump_json(payload)
    ep, si, action, observation, reward, terminated, truncated, info_json, render_json = payload.fields
    if type(action) is int and type(observation) is int and type(reward) is float and reward - reward == 0.0:
        # the common ToyText step (ints, a finite float reward) formatted inline: StepPayload.to_json's text
        return (f'{{"episode_index":{ep},"step_index":{si},"action":{action},"observation":{observation},'
                f'"reward":{reward!r},"terminated":{"true" if terminated else "false"},'
                f'"truncated":{"true" if truncated else "false"},"info":{info_json},'
                f'"render_payload":{"null" if render_json is None else render_json}}}')
    return payload.to_json()


_TOPIC_BYTES: dict[Topic, bytes] = {t: t.name.encode() for t in STREAM_TOPICS}


def encode_parts(evt: TelemetryEvent) -> tuple[bytes, bytes, bytes]:
    """The entry's ``topic``, ``ts`` and ``payload`` values as the bytes sent. Any thread; pure.

    Raises TypeError (a payload that is not JSON-encodable), ValueError (text that is not UTF-8:
    a lone surrogate), KeyError (a topic that is not transported)."""
    return _TOPIC_BYTES[evt.topic], evt.ts_iso.encode("utf-8"), payload_json(evt.payload).encode("utf-8")


def decode_entry(stream: StreamKey, raw_id: bytes | str, fields: Mapping[bytes, bytes],
                 seq_id: int | None = None) -> TelemetryEvent:
    """The event an entry of ``stream`` encodes (``seq_id``: ``raw_id`` already decoded, if the caller did).

    Any thread. Raises EntryRejected.
    """
    topic_raw = fields.get(_F_TOPIC)
    ts_raw = fields.get(_F_TS)
    payload_raw = fields.get(_F_PAYLOAD)
    if topic_raw is None or ts_raw is None or payload_raw is None:
        if seq_id is None and seq_from_entry_id(raw_id) is None:
            raise EntryRejected(RejectReason.BAD_ID, f"entry id {raw_id!r} is not '{{seq_id}}-1'")
        missing = [name.decode() for name, v in ((_F_TOPIC, topic_raw), (_F_TS, ts_raw), (_F_PAYLOAD, payload_raw))
                   if v is None]
        raise EntryRejected(RejectReason.MISSING_FIELD, f"entry {raw_id!r} lacks {', '.join(missing)}")
    return decode_parts(stream, raw_id, topic_raw, ts_raw, payload_raw, seq_id)


def decode_parts(stream: StreamKey, raw_id: bytes | str, topic_raw: bytes, ts_raw: bytes, payload_raw: bytes,
                 seq_id: int | None = None) -> TelemetryEvent:
    """The event of an entry of ``stream`` given its three field values. Any thread. Raises EntryRejected.

    The payload is the dict the text decodes to (a StepPayload would cost more to make here than it
    saves the store).
    """
    if seq_id is None:
        seq_id = seq_from_entry_id(raw_id)
    if seq_id is None:
        raise EntryRejected(RejectReason.BAD_ID, f"entry id {raw_id!r} is not '{{seq_id}}-1'")
    topic = _TOPIC_BY_NAME.get(topic_raw)
    if topic is None:
        raise EntryRejected(RejectReason.UNKNOWN_TOPIC, f"entry {raw_id!r} has topic {topic_raw[:80]!r}")
    try:
        ts_iso = ts_raw.decode("utf-8")
    except UnicodeDecodeError:
        ts_iso = ""
    if not ts_iso:
        raise EntryRejected(RejectReason.BAD_TS, f"entry {raw_id!r} has ts {ts_raw[:80]!r}")
    try:
        payload = load_json_exact(payload_raw)
    except (ValueError, RecursionError) as exc:  # (UnicodeDecodeError is a ValueError)
        raise EntryRejected(RejectReason.BAD_PAYLOAD, f"entry {raw_id!r}: payload is not JSON ({exc})"[:300]) from None
    if type(payload) is not dict:
        raise EntryRejected(RejectReason.BAD_PAYLOAD, f"entry {raw_id!r}: payload is {type(payload).__name__}, not an object")
    run_id, agent_id = stream
    try:
        return TelemetryEvent(topic, run_id, agent_id, seq_id, ts_iso, payload)
    except TypeError as exc:
        raise EntryRejected(RejectReason.BAD_EVENT, f"entry {raw_id!r}: {exc}") from None
