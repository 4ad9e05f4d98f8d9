"""Stream keys and entry ids of the Redis transport, and the entry field codec (no server needed)."""

from __future__ import annotations

import math

import pytest

from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.transport.redis_entries import EntryRejected, RejectReason, decode_entry, encode_fields
from gym_gui.transport.redis_keys import (
    cursor_after, entry_id, index_key, parse_stream_key, seq_from_entry_id, seq_of_any_id, stream_key,
)


@pytest.mark.parametrize("run_id, agent_id", [
    ("run1", "agent-1"),
    ("run:with:colons", "a:b"),
    ("100% sure", "agent 6"),
    ("rün-ü", "ágent"),
    ("run1", None),
    ("%3A", "%"),
])
def test_stream_key_round_trips(run_id: str, agent_id: str | None) -> None:
    key = stream_key(run_id, agent_id)
    assert key.startswith("gym_gui:telemetry:")
    assert key.count(":") == 3
    assert parse_stream_key(key) == (run_id, agent_id)
    assert parse_stream_key(key.encode()) == (run_id, agent_id)
    assert parse_stream_key(stream_key(run_id, agent_id, prefix="p"), prefix="p") == (run_id, agent_id)


def test_distinct_streams_get_distinct_keys() -> None:
    keys = {stream_key(r, a) for r, a in [("a:b", "c"), ("a", "b:c"), ("a", None), ("a", "b"), ("a%3Ab", "c")]}
    assert len(keys) == 5


@pytest.mark.parametrize("key", [
    index_key(), "gym_gui:telemetry:", "gym_gui:telemetry:run", "other:prefix:run:agent",
    "gym_gui:telemetry::agent", "gym_gui:telemetry:a:b:c", "gym_gui:telemetry:a%zz:b", b"gym_gui:telemetry:\xff:a",
    "gym_gui:telemetry:a%3a:b",  # lower-case escape: not our canonical form
    "gym_gui:telemetry:" + "r" * 1025 + ":a", "gym_gui:telemetry:r:" + "a" * 1025,  # an id the proxy refuses
])
def test_foreign_keys_are_not_stream_keys(key: str | bytes) -> None:
    assert parse_stream_key(key) is None


def test_entry_ids_carry_the_seq_id() -> None:
    assert entry_id(0) == "0-1" and entry_id(42) == "42-1"
    assert cursor_after(None) == "0-0" and cursor_after(41) == "41-1"
    assert seq_from_entry_id(b"42-1") == 42 and seq_from_entry_id("0-1") == 0
    for bad in (b"42-0", b"42-2", b"x-1", b"-1", b"042-1", b"4 2-1", "٤-1", b"1-1-1"):
        assert seq_from_entry_id(bad) is None, bad
    assert seq_of_any_id(b"1700000000000-0") == 1_700_000_000_000 and seq_of_any_id("7-3") == 7
    assert seq_of_any_id(None) is None and seq_of_any_id("x-1") is None
    assert seq_from_entry_id(b"9223372036854775807-1") == 2**63 - 1  # the largest seq_id the store holds
    assert seq_from_entry_id(b"9223372036854775808-1") is None
    assert seq_from_entry_id(b"1" * 5000 + b"-1") is None and seq_of_any_id("1" * 5000 + "-0") is None  # no int() limit error
    with pytest.raises(ValueError):
        entry_id(-1)


def test_fields_round_trip_an_event(factory) -> None:
    f = factory("run:1", None)
    for evt in [f.started(), f.step(0, 0, info={"x": math.inf, "ü": [1, 2]}), f.episode(0, 1), f.completed()]:
        fields = {k.encode(): v.encode() for k, v in encode_fields(evt).items()}
        back = decode_entry(evt.stream, entry_id(evt.seq_id).encode(), fields)
        assert (back.topic, back.run_id, back.agent_id, back.seq_id, back.ts_iso) == (
            evt.topic, evt.run_id, evt.agent_id, evt.seq_id, evt.ts_iso)
        assert back.payload == dict(evt.payload)


def _fields(topic: bytes = b"STEP_APPENDED", ts: bytes = b"2030-01-01T00:00:00+00:00",
            payload: bytes = b'{"a":1}') -> dict[bytes, bytes]:
    return {b"topic": topic, b"ts": ts, b"payload": payload}


@pytest.mark.parametrize("raw_id, fields, reason", [
    (b"abc", _fields(), RejectReason.BAD_ID),
    (b"5-0", _fields(), RejectReason.BAD_ID),
    (b"5-1", {b"ts": b"t", b"payload": b"{}"}, RejectReason.MISSING_FIELD),
    (b"5-1", {b"topic": b"STEP_APPENDED", b"payload": b"{}"}, RejectReason.MISSING_FIELD),
    (b"5-1", {b"topic": b"STEP_APPENDED", b"ts": b"t"}, RejectReason.MISSING_FIELD),
    (b"5-1", _fields(topic=b"NOPE"), RejectReason.UNKNOWN_TOPIC),
    (b"5-1", _fields(topic=b"OVERFLOW"), RejectReason.UNKNOWN_TOPIC),
    (b"5-1", _fields(ts=b""), RejectReason.BAD_TS),
    (b"5-1", _fields(ts=b"\xff"), RejectReason.BAD_TS),
    (b"5-1", _fields(payload=b"{not json"), RejectReason.BAD_PAYLOAD),
    (b"5-1", _fields(payload=b"[1, 2]"), RejectReason.BAD_PAYLOAD),
    (b"5-1", _fields(payload=b"\xff\xfe"), RejectReason.BAD_PAYLOAD),
    (b"5-1", _fields(payload=b"[" * 100_000 + b"]" * 100_000), RejectReason.BAD_PAYLOAD),  # too deep for any decoder
    (b"5-1", _fields(payload=b'{"a":' * 50_000 + b"1" + b"}" * 50_000), RejectReason.BAD_PAYLOAD),
])
def test_malformed_entries_are_rejected_with_a_reason(raw_id: bytes, fields: dict[bytes, bytes], reason: str) -> None:
    with pytest.raises(EntryRejected) as info:
        decode_entry(("run1", "a1"), raw_id, fields)
    assert info.value.reason == reason


def test_payload_with_nan_and_big_ints_decodes() -> None:
    evt = decode_entry(("r", "a"), b"3-1", _fields(payload=b'{"x": NaN, "big": 123456789012345678901234567890}'))
    assert isinstance(evt, TelemetryEvent) and evt.topic is Topic.STEP_APPENDED and evt.seq_id == 3
    assert math.isnan(evt.payload["x"]) and evt.payload["big"] == 123456789012345678901234567890
    exact = decode_entry(("r", "a"), b"4-1", _fields(payload=b'{"big": 123456789012345678901234567890, "neg": -9223372036854775809}'))
    assert exact.payload == {"big": 123456789012345678901234567890, "neg": -9223372036854775809}  # not rounded floats
