"""Telemetry event model shared by the live and the durable path (Qt-free)."""

from __future__ import annotations

import enum
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any, Mapping

import attrs

__all__ = ["Topic", "TelemetryEvent", "StreamKey", "utc_now_iso", "iso_from_unix_s"]

#: A stream is identified by ``(run_id, agent_id)``; seq_id is strictly increasing within one.
StreamKey = tuple[str, "str | None"]

_EMPTY_PAYLOAD: Mapping[str, Any] = MappingProxyType({})


class Topic(enum.Enum):
    """What an event reports. The value is the name, so ``Topic["STEP_APPENDED"]`` round-trips."""

    RUN_STARTED = "RUN_STARTED"
    RUN_HEARTBEAT = "RUN_HEARTBEAT"
    RUN_COMPLETED = "RUN_COMPLETED"
    STEP_APPENDED = "STEP_APPENDED"
    EPISODE_FINALIZED = "EPISODE_FINALIZED"
    OVERFLOW = "OVERFLOW"


def utc_now_iso() -> str:
    """Current UTC time as ISO-8601 with microseconds and a ``+00:00`` offset. Any thread."""
    return datetime.now(timezone.utc).isoformat()


def iso_from_unix_s(unix_s: float) -> str:
    """Unix seconds to an ISO-8601 UTC string. Any thread."""
    return datetime.fromtimestamp(unix_s, timezone.utc).isoformat()


def _check_topic(_inst: object, _attr: attrs.Attribute, value: object) -> None:
    if type(value) is not Topic:
        raise TypeError(f"TelemetryEvent.topic must be a Topic, got {type(value).__name__}: {value!r}")


def _check_run_id(_inst: object, _attr: attrs.Attribute, value: object) -> None:
    if type(value) is not str or not value:
        raise TypeError(f"TelemetryEvent.run_id must be a non-empty str, got {value!r}")


def _check_agent_id(_inst: object, _attr: attrs.Attribute, value: object) -> None:
    if value is not None and (type(value) is not str or not value):
        raise TypeError(f"TelemetryEvent.agent_id must be None or a non-empty str, got {value!r}")


def _check_seq_id(_inst: object, _attr: attrs.Attribute, value: object) -> None:
    if type(value) is not int or value < 0:
        raise TypeError(f"TelemetryEvent.seq_id must be an int >= 0, got {value!r}")


def _check_ts_iso(_inst: object, _attr: attrs.Attribute, value: object) -> None:
    if type(value) is not str or not value:
        raise TypeError(f"TelemetryEvent.ts_iso must be a non-empty ISO-8601 str, got {value!r}")


def _check_payload(_inst: object, _attr: attrs.Attribute, value: object) -> None:
    if type(value) is not dict and not isinstance(value, Mapping):  # dict first: ABC checks are slow
        raise TypeError(f"TelemetryEvent.payload must be a Mapping, got {type(value).__name__}")


@attrs.frozen(slots=True)
class TelemetryEvent:
    """One record on the bus.

    Immutable and safe to share between threads. ``payload`` is treated as read-only by every
    consumer; producers must not mutate it after publishing. Field types are validated at
    construction (cheap ``type()`` checks); a wrong type raises ``TypeError`` naming the field.
    """

    topic: Topic = attrs.field(validator=_check_topic)
    run_id: str = attrs.field(validator=_check_run_id)
    agent_id: str | None = attrs.field(validator=_check_agent_id)
    seq_id: int = attrs.field(validator=_check_seq_id)
    ts_iso: str = attrs.field(validator=_check_ts_iso)
    payload: Mapping[str, Any] = attrs.field(default=_EMPTY_PAYLOAD, validator=_check_payload)

    @property
    def stream(self) -> StreamKey:
        """The ``(run_id, agent_id)`` stream this event belongs to."""
        return (self.run_id, self.agent_id)
