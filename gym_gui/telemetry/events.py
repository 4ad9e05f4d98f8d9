"""Telemetry event model shared by the live and the durable path (Qt-free)."""

from __future__ import annotations

import enum
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any, Mapping

import attrs

from gym_gui.telemetry.step_payload import StepPayload

__all__ = ["MAX_SEQ_ID", "Topic", "TelemetryEvent", "StreamKey", "utc_now_iso", "iso_from_unix_s"]

#: A stream is identified by ``(run_id, agent_id)``; seq_id is strictly increasing within one.
StreamKey = tuple[str, "str | None"]
#: The largest seq_id: what SQLite's INTEGER (and a Redis entry id's first part) holds.
MAX_SEQ_ID = (1 << 63) - 1

_EMPTY_PAYLOAD: Mapping[str, Any] = MappingProxyType({})


class Topic(enum.Enum):
    """What an event reports. The value is the name, so ``Topic["STEP_APPENDED"]`` round-trips."""

    RUN_STARTED = "RUN_STARTED"
    RUN_HEARTBEAT = "RUN_HEARTBEAT"
    RUN_COMPLETED = "RUN_COMPLETED"
    STEP_APPENDED = "STEP_APPENDED"
    EPISODE_FINALIZED = "EPISODE_FINALIZED"
    OVERFLOW = "OVERFLOW"

    # Members are singletons compared by identity, so the C identity hash is correct and much
    # cheaper than Enum's Python-level ``hash(self._name_)`` (topics key the bus's hot-path dicts).
    __hash__ = object.__hash__


def utc_now_iso() -> str:
    """Current UTC time as ISO-8601 with microseconds and a ``+00:00`` offset. Any thread."""
    return datetime.now(timezone.utc).isoformat()


def iso_from_unix_s(unix_s: float) -> str:
    """Unix seconds to an ISO-8601 UTC string. Any thread."""
    return datetime.fromtimestamp(unix_s, timezone.utc).isoformat()


def _shown(value: Any) -> str:
    """``repr(value)`` cut to 40 characters (an int of more than 4300 digits has no repr)."""
    try:
        return f"{value!r:.40}"
    except ValueError:
        return f"a {type(value).__name__} too long to show"


def _raise_for_bad_field(evt: TelemetryEvent) -> None:
    """Raise TypeError naming the first field of ``evt`` that failed ``TelemetryEvent``'s check."""
    topic, run_id, agent_id, seq_id, ts_iso, payload = (
        evt.topic, evt.run_id, evt.agent_id, evt.seq_id, evt.ts_iso, evt.payload)
    if type(topic) is not Topic:
        raise TypeError(f"TelemetryEvent.topic must be a Topic, got {type(topic).__name__}: {topic!r}")
    if type(run_id) is not str or not run_id:
        raise TypeError(f"TelemetryEvent.run_id must be a non-empty str, got {run_id!r}")
    if agent_id is not None and (type(agent_id) is not str or not agent_id):
        raise TypeError(f"TelemetryEvent.agent_id must be None or a non-empty str, got {agent_id!r}")
    if type(seq_id) is not int or not 0 <= seq_id <= MAX_SEQ_ID:
        raise TypeError(f"TelemetryEvent.seq_id must be an int in [0, 2**63 - 1], got {_shown(seq_id)}")
    if type(ts_iso) is not str or not ts_iso:
        raise TypeError(f"TelemetryEvent.ts_iso must be a non-empty ISO-8601 str, got {ts_iso!r}")
    raise TypeError(f"TelemetryEvent.payload must be a Mapping, got {type(payload).__name__}")


@attrs.frozen(slots=True, init=False)
class TelemetryEvent:
    """One record on the bus.

    Immutable and safe to share between threads. ``payload`` is treated as read-only by every
    consumer; producers must not mutate it after publishing. Field types are validated at
    construction (cheap ``type()`` checks); a wrong type raises ``TypeError`` naming the field.
    """

    topic: Topic
    run_id: str
    agent_id: str | None
    seq_id: int
    ts_iso: str
    payload: Mapping[str, Any] = _EMPTY_PAYLOAD

    def __init__(self, topic: Topic, run_id: str, agent_id: str | None, seq_id: int, ts_iso: str,
                 payload: Mapping[str, Any] = _EMPTY_PAYLOAD) -> None:
        # attrs' generated __init__ for a frozen class sets each slot through object.__setattr__;
        # the slots' own setters cost a third less, and one event is made per worker line.
        _set_topic(self, topic)
        _set_run_id(self, run_id)
        _set_agent_id(self, agent_id)
        _set_seq_id(self, seq_id)
        _set_ts_iso(self, ts_iso)
        _set_payload(self, payload)
        if not (  # cheap type() tests; the payload's two common types first (ABC checks are slow)
            type(topic) is Topic and type(run_id) is str and run_id
            and (agent_id is None or type(agent_id) is str and agent_id)
            and type(seq_id) is int and 0 <= seq_id <= MAX_SEQ_ID and type(ts_iso) is str and ts_iso
            and (type(payload) is dict or type(payload) is StepPayload or isinstance(payload, Mapping))
        ):
            _raise_for_bad_field(self)

    @property
    def stream(self) -> StreamKey:
        """The ``(run_id, agent_id)`` stream this event belongs to."""
        return (self.run_id, self.agent_id)


_set_topic = TelemetryEvent.topic.__set__  # type: ignore[attr-defined]
_set_run_id = TelemetryEvent.run_id.__set__  # type: ignore[attr-defined]
_set_agent_id = TelemetryEvent.agent_id.__set__  # type: ignore[attr-defined]
_set_seq_id = TelemetryEvent.seq_id.__set__  # type: ignore[attr-defined]
_set_ts_iso = TelemetryEvent.ts_iso.__set__  # type: ignore[attr-defined]
_set_payload = TelemetryEvent.payload.__set__  # type: ignore[attr-defined]
