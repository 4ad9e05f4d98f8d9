"""The existing gym_gui's STEP_APPENDED / EPISODE_FINALIZED events as StepRecord / EpisodeRollup fields (Qt-free).

``TelemetryDBSink`` converts every event it drains with ``step_fields`` / ``episode_fields`` and builds
the record from the returned keyword arguments. The mapping is EMBEDDING.md section 3's table; on
top of it the values the existing producers send in other shapes are normalised here, at the
durable path's boundary (section 6.3):

- uint64 fields that ``MessageToDict`` renders as str (``"step_index": "7"``, ``"steps": "10"``)
  become ints; a float field rendered as ``"NaN"``/``"Infinity"`` becomes that float;
- ``ts_iso`` may be RFC 3339 with a ``Z`` suffix (and 0 to 9 fraction digits), ``''``, or a
  ``google.protobuf.Timestamp``-like object (``seconds``/``nanos``; all zero means unset); when it
  gives no time the record's default (now, UTC) stays;
- an event without ``run_id`` takes the part of ``episode_id`` before the last ``"-ep"``.

A value that cannot be converted (``"step_index": "seven"``) keeps the field's default and is
reported through ``issue(kind, message)``; the event is still stored. All functions are pure and
may be called from any thread.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping

__all__ = ["episode_fields", "parse_timestamp", "producer_fields", "run_id_from", "step_fields",
           "with_producer_fields"]

#: ``issue(kind, message)``: how a conversion reports a value it had to replace by a default.
IssueSink = Callable[[str, str], None]

#: Step payload keys copied as they are (None when absent), EMBEDDING.md section 3.
_STEP_COPIED = ("action", "observation", "render_payload", "render_hint", "frame_ref", "worker_id",
                "space_signature", "vector_metadata")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_fromisoformat = datetime.fromisoformat
# RFC 3339 fraction longer than the 6 digits datetime keeps (protobuf writes 9 for nanoseconds).
_LONG_FRACTION = re.compile(r"(\.\d{6})\d+")


def _no_issue(kind: str, message: str) -> None:
    return None


def parse_timestamp(value: Any) -> datetime | None:
    """A datetime from an ISO-8601/RFC 3339 str, a datetime, or a protobuf Timestamp-like object.

    Returns None for ``''``, an unset Timestamp (0 s, 0 ns), or anything unparseable. Any thread.
    """
    if type(value) is str:
        try:
            return _fromisoformat(value)  # Python >= 3.11 reads "Z" and 9 fraction digits itself
        except ValueError:
            pass
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text[-1] in "Zz":
            text = text[:-1] + "+00:00"
        text = _LONG_FRACTION.sub(r"\1", text, count=1)
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            return None
    seconds, nanos = getattr(value, "seconds", None), getattr(value, "nanos", None)
    if isinstance(seconds, int) and isinstance(nanos, int) and not isinstance(seconds, bool):
        if seconds == 0 and nanos == 0:
            return None  # a Timestamp message that was never set
        try:
            return _EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000)
        except OverflowError:
            return None
    return None


def run_id_from(run_id: Any, episode_id: str) -> str | None:
    """The event's run_id, or if that is empty the part of ``episode_id`` before its last ``"-ep"``."""
    if run_id:
        return str(run_id)
    if "-ep" in episode_id:
        return episode_id.rsplit("-ep", 1)[0] or None
    return None


def _as_int(payload: Mapping[str, Any], key: str, default: int | None, issue: IssueSink) -> int | None:
    value = payload.get(key)
    if value is None or value == "":
        return default
    if type(value) is int:
        return value
    try:
        if isinstance(value, str):
            return int(value.strip())
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return int(value)  # bool, numpy integers
    except (TypeError, ValueError, OverflowError):
        issue("bad_int", f"payload[{key!r}] = {value!r:.60} is not an integer; stored as {default!r}")
        return default


def _as_float(payload: Mapping[str, Any], key: str, issue: IssueSink) -> float:
    value = payload.get(key)
    if value is None or value == "":
        return 0.0
    try:
        return float(value)  # also "NaN", "Infinity", "-Infinity" from MessageToDict
    except (TypeError, ValueError):
        issue("bad_float", f"payload[{key!r}] = {value!r:.60} is not a number; stored as 0.0")
        return 0.0


def _as_bool(payload: Mapping[str, Any], key: str) -> bool:
    value = payload.get(key)
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1")
    return bool(value)


def _payload_of(evt: Any) -> Mapping[str, Any]:
    payload = getattr(evt, "payload", None)
    return payload if type(payload) is dict or isinstance(payload, Mapping) else {}


def step_fields(evt: Any, issue: IssueSink = _no_issue) -> dict[str, Any]:
    """``StepRecord`` keyword arguments for a STEP_APPENDED event (``timestamp`` only when known)."""
    payload = _payload_of(evt)
    episode_id = str(payload.get("episode_id") or "")
    fields: dict[str, Any] = {key: payload.get(key) for key in _STEP_COPIED}
    fields.update(
        episode_id=episode_id,
        step_index=_as_int(payload, "step_index", 0, issue),
        reward=_as_float(payload, "reward", issue),
        terminated=_as_bool(payload, "terminated"),
        truncated=_as_bool(payload, "truncated"),
        info=payload.get("info") or {},
        agent_id=getattr(evt, "agent_id", None),
        payload_version=_as_int(payload, "payload_version", 0, issue),
        run_id=run_id_from(getattr(evt, "run_id", None), episode_id),
        time_step=_as_int(payload, "time_step", None, issue),
    )
    stamp = parse_timestamp(getattr(evt, "ts_iso", None))
    if stamp is not None:
        fields["timestamp"] = stamp
    return fields


def _metadata(payload: Mapping[str, Any], issue: IssueSink) -> Any:
    metadata = payload.get("metadata")
    if metadata:
        return metadata
    text = payload.get("metadata_json")
    if not isinstance(text, str) or not text:
        return {}
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        issue("bad_metadata_json", f"metadata_json is not JSON ({exc}); episode stored with metadata {{}}")
        return {}
    if not isinstance(parsed, dict):
        issue("bad_metadata_json", f"metadata_json is a {type(parsed).__name__}, not an object; "
                                   "episode stored with metadata {}")
        return {}
    return parsed


def episode_fields(evt: Any, issue: IssueSink = _no_issue) -> dict[str, Any]:
    """``EpisodeRollup`` keyword arguments for an EPISODE_FINALIZED event (``timestamp`` only when known)."""
    payload = _payload_of(evt)
    episode_id = str(payload.get("episode_id") or "")
    fields: dict[str, Any] = {
        "episode_id": episode_id,
        "total_reward": _as_float(payload, "total_reward", issue),
        "steps": _as_int(payload, "steps", 0, issue),
        "terminated": _as_bool(payload, "terminated"),
        "truncated": _as_bool(payload, "truncated"),
        "metadata": _metadata(payload, issue),
        "agent_id": getattr(evt, "agent_id", None),
        "run_id": run_id_from(getattr(evt, "run_id", None), episode_id),
    }
    stamp = parse_timestamp(getattr(evt, "ts_iso", None))
    if stamp is not None:
        fields["timestamp"] = stamp
    return fields


#: Payload keys a StepRecord / EpisodeRollup field takes (or that are the event's own fields); the
#: rest is kept with the row as ``producer_extra``. ``timestamp`` is the event's ts_iso again.
_STEP_MAPPED = frozenset(_STEP_COPIED) | {
    "episode_id", "step_index", "reward", "terminated", "truncated", "info", "payload_version", "run_id",
    "time_step", "agent_id", "timestamp", "episode_index"}
_EPISODE_MAPPED = frozenset({
    "episode_id", "total_reward", "steps", "terminated", "truncated", "metadata", "metadata_json", "agent_id",
    "run_id", "timestamp", "episode_index"})


def producer_fields(evt: Any, *, step: bool) -> dict[str, Any]:
    """What this project's store keeps of an event beyond the record's fields (EMBEDDING.md 6.3). Pure.

    ``seq_id``: the event's; ``producer_episode_index``: the payload's ``episode_index`` as an int
    (the existing payloads carry no episode_id, so without it a step would belong to no episode);
    ``producer_extra``: every other payload key with a value (e.g. the hub's ``action_json``,
    ``observation_json``, ``policy_label``), which the record has no field for.
    """
    payload = _payload_of(evt)
    mapped = _STEP_MAPPED if step else _EPISODE_MAPPED
    index = _as_int(payload, "episode_index", None, _no_issue)
    extra = {key: value for key, value in payload.items()
             if key not in mapped and value is not None and value != "" and type(key) is str}
    return {"seq_id": getattr(evt, "seq_id", None), "producer_episode_index": index,
            "producer_extra": extra or None}


@functools.lru_cache(maxsize=None)
def with_producer_fields(record_type: type) -> type:
    """A dataclass subclass of ``record_type`` with ``producer_fields``'s three fields (default None). Pure.

    This project's store keeps them with the row (``producer_seq_id``, the row's episode_index,
    ``producer_extra``): the sink builds its records from such a subclass so nothing the producer
    sent is lost (EMBEDDING.md section 6.3). Returns ``record_type`` itself if it cannot be subclassed so.
    """
    try:
        return dataclasses.make_dataclass(
            record_type.__name__,
            [("seq_id", "int | None", dataclasses.field(default=None)),
             ("producer_episode_index", "int | None", dataclasses.field(default=None)),
             ("producer_extra", "dict[str, Any] | None", dataclasses.field(default=None))],
            bases=(record_type,), slots=True, namespace={"__module__": __name__})
    except (TypeError, ValueError):
        return record_type
