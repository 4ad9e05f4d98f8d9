"""Every record family the proxy reads, and all their aliases: the reference normalisation (Qt-free).

The canonical v1 records (docs/telemetry-jsonl.md) and the two envelopes of the existing gym_gui
workers (lifecycle ``{"event": ...}`` and data ``{"type": ...}``). ``normalize_general`` is the
behaviour every fast path in ``records`` must reproduce. Pure; any thread.
"""

from __future__ import annotations

from typing import Any, Union

from gym_gui.ingest.record_fields import (
    _MISSING,
    RecordRejected,
    RejectReason,
    _bool,
    _data_time,
    _dict,
    _first,
    _id,
    _int,
    _iso_from_unix,
    _json_object,
    _json_value,
    _number,
    _require,
    _rest,
    _str,
)
from gym_gui.telemetry.events import Topic
from gym_gui.telemetry.step_payload import StepPayload

__all__ = ["NormalizedFields", "normalize_general"]

#: ``(topic, run_id, agent_id, seq, ts_iso, payload)``: the fields of a Normalized, as a plain tuple.
NormalizedFields = tuple[Topic, str, str, Union[int, None], str, Union[dict[str, Any], StepPayload]]

# -- payload builders ------------------------------------------------------------------------------
_STEP_FIELDS = frozenset({
    "v", "kind", "type", "run_id", "agent_id", "seq", "ts", "timestamp", "ts_unix_ns",
    "episode_index", "episode", "step_index", "step", "action", "action_json", "observation",
    "observation_json", "reward", "terminated", "truncated", "info", "render_payload",
    "render_hint_json",
})


_EMPTY: dict[str, Any] = {}
_STEP_ENVELOPE = frozenset({"v", "kind", "type", "run_id", "agent_id", "seq", "ts", "timestamp", "ts_unix_ns"})
_FINITE_MAX = 1.7976931348623157e308


def _plain_step_fields(record: dict[str, Any]) -> bool:
    """True when a step's fields need no conversion: what the fast paths take as they are.

    int indices, bool flags, a finite int or float reward, ``info`` a dict or absent, ``action``
    and ``observation`` present, ``render_payload`` a dict, None or absent.
    """
    get = record.get
    reward = get("reward")
    render = get("render_payload")
    return (
        type(get("episode_index")) is int and type(get("step_index")) is int
        and type(get("terminated")) is bool and type(get("truncated")) is bool
        and (type(reward) is float or type(reward) is int) and -_FINITE_MAX <= reward <= _FINITE_MAX
        and type(get("info", _EMPTY)) is dict and (render is None or type(render) is dict)
        and "action" in record and "observation" in record
    )


def _completed_step_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """A plain step's payload in the general path's form: a float reward, ``info`` and ``render_payload`` present."""
    if type(payload["reward"]) is int:
        payload["reward"] = float(payload["reward"])
    if "info" not in payload:
        payload["info"] = {}
    if "render_payload" not in payload:
        payload["render_payload"] = None
    return payload


def _fast_step_payload(record: dict[str, Any]) -> dict[str, Any] | None:
    """The payload of a well-formed canonical step, or None to take the general path."""
    if not _plain_step_fields(record):
        return None
    return _completed_step_payload({k: v for k, v in record.items() if k not in _STEP_ENVELOPE})


def _step_payload(record: dict[str, Any]) -> dict[str, Any]:
    if "action_json" not in record and "observation_json" not in record and "render_hint_json" not in record:
        fast = _fast_step_payload(record)
        if fast is not None:
            return fast
    payload = _rest(record, _STEP_FIELDS)
    payload["episode_index"] = _int(_require(record, "episode_index", "episode"), "episode_index")
    payload["step_index"] = _int(_require(record, "step_index", "step"), "step_index")
    action = _first(record, "action")
    payload["action"] = _json_value(record.get("action_json"), "action_json") if action is _MISSING else action
    observation = _first(record, "observation")
    payload["observation"] = (
        _json_value(record.get("observation_json"), "observation_json") if observation is _MISSING else observation
    )
    payload["reward"] = _number(_require(record, "reward"), "reward")
    payload["terminated"] = _bool(record.get("terminated", False), "terminated")
    payload["truncated"] = _bool(record.get("truncated", False), "truncated")
    payload["info"] = _dict(_first(record, "info"), "info")
    render = _first(record, "render_payload")
    payload["render_payload"] = None if render is _MISSING else _json_object(render, "render_payload")
    hint = _first(record, "render_hint_json")
    if hint is not _MISSING:
        payload["render_hint"] = _json_value(hint, "render_hint_json")
    return payload


_EPISODE_FIELDS = frozenset({
    "v", "kind", "type", "run_id", "agent_id", "seq", "ts", "timestamp", "ts_unix_ns",
    "episode_index", "episode", "total_reward", "episode_return", "steps", "num_steps", "length",
    "terminated", "truncated", "metadata_json", "metadata", "outcome",
})


def _episode_payload(record: dict[str, Any]) -> dict[str, Any]:
    payload = _rest(record, _EPISODE_FIELDS)
    metadata_raw = _first(record, "metadata")
    metadata = _json_object(record.get("metadata_json", _MISSING) if metadata_raw is _MISSING else metadata_raw, "metadata")
    index = _first(record, "episode_index")
    if index is _MISSING:
        index = metadata.get("episode_index", _MISSING)
    if index is _MISSING or index is None:
        index = _require(record, "episode")
    payload["episode_index"] = _int(index, "episode_index")
    payload["total_reward"] = _number(_require(record, "total_reward", "episode_return"), "total_reward")
    payload["length"] = _int(_require(record, "length", "steps", "num_steps"), "length")
    payload["terminated"] = _bool(record.get("terminated", False), "terminated")
    payload["truncated"] = _bool(record.get("truncated", False), "truncated")
    outcome = _first(record, "outcome")
    payload["outcome"] = None if outcome is _MISSING else _str(outcome, "outcome")
    payload["metadata"] = metadata
    return payload


_LIFECYCLE_TOPICS = {
    "run_started": Topic.RUN_STARTED,
    "run_completed": Topic.RUN_COMPLETED,
    "run_failed": Topic.RUN_COMPLETED,
    "run_cancelled": Topic.RUN_COMPLETED,
    "heartbeat": Topic.RUN_HEARTBEAT,
    "checkpoint_saved": Topic.RUN_HEARTBEAT,
    "checkpoint_loaded": Topic.RUN_HEARTBEAT,
}
_OUTCOME_OF_EVENT = {"run_completed": "completed", "run_failed": "failed", "run_cancelled": "cancelled"}
_OUTCOMES = frozenset({"completed", "failed", "cancelled"})
_COMPLETION_FIELDS = frozenset({"exit_code", "signal", "stderr_tail"})


def _run_started_payload(fields: dict[str, Any]) -> dict[str, Any]:
    payload = dict(fields)
    env_id = payload.pop("env_id", None) or payload.pop("env", None)
    payload["env_id"] = None if env_id is None else str(env_id)
    payload["config"] = _dict(payload.get("config", _MISSING), "config")
    return payload


def _run_completed_payload(fields: dict[str, Any], outcome: str) -> dict[str, Any]:
    payload = dict(fields)
    payload["outcome"] = outcome
    payload.setdefault("exit_code", None)
    payload.setdefault("signal", None)
    payload.setdefault("stderr_tail", None)
    payload["summary"] = _dict(payload.get("summary", _MISSING), "summary")
    return payload


# -- the three record families ---------------------------------------------------------------------
_CANONICAL_KINDS = {
    "run_started": Topic.RUN_STARTED,
    "heartbeat": Topic.RUN_HEARTBEAT,
    "step": Topic.STEP_APPENDED,
    "episode": Topic.EPISODE_FINALIZED,
    "run_completed": Topic.RUN_COMPLETED,
}
_CANONICAL_COMMON = frozenset({"v", "kind", "run_id", "agent_id", "seq", "ts", "ts_unix_ns", "timestamp"})


def _canonical(record: dict[str, Any]) -> tuple[Topic, dict[str, Any]]:
    version = record["v"]
    if version != 1 or type(version) is not int:
        raise RecordRejected(RejectReason.UNSUPPORTED_VERSION, f"v={version!r:.20}; this proxy reads v=1")
    kind = _require(record, "kind")
    topic = _CANONICAL_KINDS.get(kind) if type(kind) is str else None
    if topic is None:
        raise RecordRejected(RejectReason.UNKNOWN_TYPE, f"kind={kind!r:.40}")
    if topic is Topic.STEP_APPENDED:
        return topic, _step_payload(record)
    if topic is Topic.EPISODE_FINALIZED:
        return topic, _episode_payload(record)
    fields = _rest(record, _CANONICAL_COMMON)
    if topic is Topic.RUN_STARTED:
        return topic, _run_started_payload(fields)
    if topic is Topic.RUN_COMPLETED:
        outcome = _str(_require(record, "outcome"), "outcome")
        if outcome not in _OUTCOMES:
            raise RecordRejected(RejectReason.WRONG_TYPE, f"outcome must be one of {sorted(_OUTCOMES)}, got {outcome!r:.30}")
        fields.pop("outcome")
        return topic, _run_completed_payload(fields, outcome)
    return topic, fields


def _lifecycle(record: dict[str, Any]) -> tuple[Topic, dict[str, Any]]:
    event = record["event"]
    topic = _LIFECYCLE_TOPICS.get(event) if type(event) is str else None
    if topic is None:
        raise RecordRejected(RejectReason.UNKNOWN_TYPE, f"event={event!r:.40}")
    fields = _dict(record.get("payload", _MISSING), "payload")
    if topic is Topic.RUN_STARTED:
        return topic, _run_started_payload(fields)
    if topic is Topic.RUN_COMPLETED:
        if "summary" not in fields:  # gym_gui workers put the summary itself in the payload
            fields = {"summary": {k: v for k, v in fields.items() if k not in _COMPLETION_FIELDS},
                      **{k: v for k, v in fields.items() if k in _COMPLETION_FIELDS}}
        return topic, _run_completed_payload(fields, _OUTCOME_OF_EVENT[event])
    payload = dict(fields)
    if event != "heartbeat":
        payload["event"] = event
    return topic, payload


def _data(record: dict[str, Any]) -> tuple[Topic, dict[str, Any]]:
    kind = record["type"]
    if kind == "step":
        return Topic.STEP_APPENDED, _step_payload(record)
    if kind == "episode":
        return Topic.EPISODE_FINALIZED, _episode_payload(record)
    if kind == "error":
        payload = _rest(record, frozenset({"type", "run_id", "agent_id", "ts", "timestamp", "ts_unix_ns", "seq"}))
        payload["event"] = "error"
        return Topic.RUN_HEARTBEAT, payload
    raise RecordRejected(RejectReason.UNKNOWN_TYPE, f"type={kind!r:.40}")


def normalize_general(
    record: dict[str, Any], default_agent_id: str, default_run_id: str | None, now_iso: str
) -> NormalizedFields:
    """Every record family and alias; the reference behaviour."""
    if "v" in record:
        topic, payload = _canonical(record)
        ts_iso = _data_time(record, now_iso)
    elif "event" in record:
        topic, payload = _lifecycle(record)
        stamp = record.get("timestamp")
        ts_iso = now_iso if stamp is None else _iso_from_unix(_number(stamp, "timestamp"), "timestamp")
    elif "type" in record:
        topic, payload = _data(record)
        ts_iso = _data_time(record, now_iso)
    else:
        raise RecordRejected(RejectReason.UNKNOWN_TYPE, "no 'v'/'kind', 'event' or 'type' field")
    run_id = record.get("run_id")
    if run_id is None:
        if default_run_id is None:
            raise RecordRejected(RejectReason.MISSING_FIELD, "needs run_id")
        run_id = default_run_id
    agent_id = record.get("agent_id")
    seq = record.get("seq")
    return (
        topic,
        _id(run_id, "run_id"),
        default_agent_id if agent_id is None else _id(agent_id, "agent_id"),
        None if seq is None else _int(seq, "seq"),
        ts_iso,
        payload,
    )

