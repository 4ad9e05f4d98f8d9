"""Telemetry event model shared by the live and the durable path (Qt-free).

Construction is strict and cheap for well-formed values (a handful of ``type()`` tests). When that
test fails, and only then, the values the existing gym_gui producers send are normalised instead
of refused (EMBEDDING.md section 1), because those producers lose a refused event silently:

- ``agent_id=''`` becomes ``None``;
- ``ts_iso`` of ``''``, or an unset protobuf ``Timestamp`` (``seconds == nanos == 0``), becomes
  now; a set ``Timestamp`` (anything with ``seconds``/``nanos``, or with ``ToDatetime()``) or a
  ``datetime`` becomes ISO-8601 UTC text (a naive datetime is taken as UTC);
- ``seq_id`` as a str of digits (``"7"``, ``"-1"``) becomes an int; any int in SQLite's signed
  64-bit range is accepted, 0 and negative ones included;
- str and int subclasses become plain str and int.

Whatever still makes no sense (a topic that is not a ``Topic``, a run_id that is not a str, a
float seq_id, a payload that is not a Mapping) raises TypeError naming the field. An empty
``run_id`` is accepted and kept as ``''``: the existing sink derives the run from the payload's
episode_id in that case, and our consumers treat it as an ordinary stream id.
"""

from __future__ import annotations

import enum
import re
from datetime import datetime, timedelta, timezone
from operator import index as _as_index
from types import MappingProxyType
from typing import Any, Mapping

import attrs

from gym_gui.telemetry.step_payload import StepPayload

__all__ = [
    "MAX_SEQ_ID", "MIN_SEQ_ID", "Topic", "TelemetryEvent", "StreamKey", "checked_event", "utc_now_iso",
    "iso_from_unix_s",
]

#: A stream is identified by ``(run_id, agent_id)``; seq_id is strictly increasing within one.
StreamKey = tuple[str, "str | None"]
#: The largest seq_id: what SQLite's INTEGER (and a Redis entry id's first part) holds.
MAX_SEQ_ID = (1 << 63) - 1
#: The smallest seq_id: SQLite's INTEGER is signed (the existing producers send 0 and -1).
MIN_SEQ_ID = -(1 << 63)

_EMPTY_PAYLOAD: Mapping[str, Any] = MappingProxyType({})
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_DIGITS = re.compile(r"[+-]?[0-9]+\Z", re.ASCII)


class Topic(enum.Enum):
    """What an event reports. The value is the name, so ``Topic["STEP_APPENDED"]`` round-trips."""

    RUN_STARTED = "RUN_STARTED"
    RUN_HEARTBEAT = "RUN_HEARTBEAT"
    RUN_COMPLETED = "RUN_COMPLETED"
    STEP_APPENDED = "STEP_APPENDED"
    EPISODE_FINALIZED = "EPISODE_FINALIZED"
    OVERFLOW = "OVERFLOW"
    #: Flow-control notices of the existing GUI hub (credits starved / resumed).
    CONTROL = "CONTROL"

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


def _seq_id_or_raise(seq_id: Any) -> int:
    """``seq_id`` as a plain int in the signed 64-bit range, or TypeError naming the field."""
    value: int | None = None
    if type(seq_id) is int:
        value = seq_id
    elif isinstance(seq_id, str):
        if len(seq_id) <= 21 and _DIGITS.match(seq_id):  # 19 digits, a sign, and slack for zeros
            value = int(seq_id)
    elif not isinstance(seq_id, bool) and hasattr(type(seq_id), "__index__"):  # int subclasses, numpy ints
        value = _as_index(seq_id)
    if value is None or not MIN_SEQ_ID <= value <= MAX_SEQ_ID:
        raise TypeError(
            f"TelemetryEvent.seq_id must be an int (or a str of digits) in [-2**63, 2**63 - 1], got {_shown(seq_id)}")
    return value


def _timestamp_iso(ts: Any) -> str | None:
    """ISO-8601 UTC text of a protobuf-Timestamp-like object (now if unset); None if it is not one."""
    seconds, nanos = getattr(ts, "seconds", None), getattr(ts, "nanos", None)
    if seconds is not None and nanos is not None:
        seconds, nanos = _as_index(seconds), _as_index(nanos)
        if seconds == 0 and nanos == 0:  # an unset Timestamp
            return utc_now_iso()
        return (_EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000)).isoformat()
    to_datetime = getattr(ts, "ToDatetime", None)
    if callable(to_datetime):
        dt = to_datetime()
        if not isinstance(dt, datetime):
            raise TypeError(f"ToDatetime() returned {type(dt).__name__}")
        dt = dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)
        return utc_now_iso() if dt == _EPOCH else dt.isoformat()
    return None


def _ts_iso_or_raise(ts_iso: Any) -> str:
    """``ts_iso`` as non-empty ISO-8601 text, or TypeError naming the field."""
    if isinstance(ts_iso, str):
        return str(ts_iso) if ts_iso else utc_now_iso()
    text: str | None = None
    try:
        if isinstance(ts_iso, datetime):
            dt = ts_iso.replace(tzinfo=timezone.utc) if ts_iso.tzinfo is None else ts_iso.astimezone(timezone.utc)
            text = dt.isoformat()
        elif ts_iso is not None:
            text = _timestamp_iso(ts_iso)
    except (TypeError, ValueError, OverflowError) as exc:
        raise TypeError(f"TelemetryEvent.ts_iso: cannot read the time of {_shown(ts_iso)}: {exc}") from None
    if text is None:
        raise TypeError(
            "TelemetryEvent.ts_iso must be an ISO-8601 str, a datetime or a protobuf Timestamp, "
            f"got {type(ts_iso).__name__}: {_shown(ts_iso)}")
    return text


def _normalise_or_raise(evt: TelemetryEvent) -> None:
    """Turn the producer values listed in the module doc into valid fields of ``evt``, or raise
    TypeError naming the first field that makes no sense. Only called when the fast check failed."""
    topic, run_id, agent_id, seq_id, ts_iso, payload = (
        evt.topic, evt.run_id, evt.agent_id, evt.seq_id, evt.ts_iso, evt.payload)
    if type(topic) is not Topic:
        raise TypeError(f"TelemetryEvent.topic must be a Topic, got {type(topic).__name__}: {_shown(topic)}")
    if not isinstance(run_id, str):
        raise TypeError(f"TelemetryEvent.run_id must be a str, got {type(run_id).__name__}: {_shown(run_id)}")
    if agent_id is not None and not isinstance(agent_id, str):
        raise TypeError(
            f"TelemetryEvent.agent_id must be None or a str, got {type(agent_id).__name__}: {_shown(agent_id)}")
    seq_id = _seq_id_or_raise(seq_id)
    ts_iso = _ts_iso_or_raise(ts_iso)
    if not isinstance(payload, Mapping):
        raise TypeError(f"TelemetryEvent.payload must be a Mapping, got {type(payload).__name__}")
    _set_run_id(evt, str(run_id))
    _set_agent_id(evt, str(agent_id) if agent_id else None)
    _set_seq_id(evt, seq_id)
    _set_ts_iso(evt, ts_iso)


@attrs.frozen(slots=True, init=False, repr=False)
class TelemetryEvent:
    """One record on the bus.

    Immutable and safe to share between threads. ``payload`` is the producer's own object (a dict
    is not copied) and is treated as read-only by every consumer; producers must not mutate it
    after publishing. Fields are checked at construction with cheap ``type()`` tests; values the
    existing producers send are normalised (module doc), anything else raises TypeError naming
    the field. Compares field by field. Construct from any thread.
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
            type(topic) is Topic and type(run_id) is str
            and (agent_id is None or type(agent_id) is str and agent_id)
            # the literals are MIN_SEQ_ID and MAX_SEQ_ID (constants, no global look-up)
            and type(seq_id) is int and -9223372036854775808 <= seq_id <= 9223372036854775807
            and type(ts_iso) is str and ts_iso
            and (type(payload) is dict or type(payload) is StepPayload or isinstance(payload, Mapping))
        ):
            _normalise_or_raise(self)

    def __repr__(self) -> str:
        """``TelemetryEvent(topic=STEP_APPENDED, run_id=r1, agent_id=None, seq_id=7)``: no time, no payload."""
        return (f"TelemetryEvent(topic={self.topic.name}, run_id={self.run_id}, "
                f"agent_id={self.agent_id}, seq_id={self.seq_id})")

    __str__ = __repr__

    @property
    def stream(self) -> StreamKey:
        """The ``(run_id, agent_id)`` stream this event belongs to."""
        return (self.run_id, self.agent_id)


_set_topic = TelemetryEvent.topic.__set__  # type: ignore[attr-defined, misc, union-attr]
_set_run_id = TelemetryEvent.run_id.__set__  # type: ignore[attr-defined, misc, union-attr]
_set_agent_id = TelemetryEvent.agent_id.__set__  # type: ignore[attr-defined, misc, union-attr]
_set_seq_id = TelemetryEvent.seq_id.__set__  # type: ignore[attr-defined, misc, union-attr]
_set_ts_iso = TelemetryEvent.ts_iso.__set__  # type: ignore[attr-defined, misc, union-attr]
_set_payload = TelemetryEvent.payload.__set__  # type: ignore[attr-defined, misc, union-attr]
_new_event = object.__new__


def checked_event(topic: Topic, run_id: str, agent_id: str | None, seq_id: int, ts_iso: str,
                  payload: Mapping[str, Any]) -> TelemetryEvent:
    """A TelemetryEvent of fields the caller has already checked as the constructor checks them (a
    ``Topic``; a plain str run_id; None or a non-empty plain str agent_id; a plain int seq_id in the
    signed 64-bit range; a non-empty plain str ts_iso; a dict, a StepPayload or another Mapping
    payload), made without checking them again (a third cheaper; the proxy's reader, for a step of
    a stream it has published before). Any thread; pure. Anything else must use the constructor.
    """
    evt = _new_event(TelemetryEvent)
    _set_topic(evt, topic)
    _set_run_id(evt, run_id)
    _set_agent_id(evt, agent_id)
    _set_seq_id(evt, seq_id)
    _set_ts_iso(evt, ts_iso)
    _set_payload(evt, payload)
    return evt
