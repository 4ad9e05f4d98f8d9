"""Normalises one worker JSONL record into the fields of a TelemetryEvent (Qt-free).

Accepts the canonical v1 records (docs/telemetry-jsonl.md) and the two envelopes of the existing
gym_gui workers (lifecycle ``{"event": ...}`` and data ``{"type": ...}``) with all their aliases.
Anything it cannot accept raises ``RecordRejected`` with a stable reason key.

Hot path (the proxy's reader thread): ``normalize_line`` decodes with orjson and takes a fast path
for well-formed canonical steps; anything unusual goes through the general code, so both give the
same result for every line (see docs/performance.md, "End to end").
"""

from __future__ import annotations

import json
import math
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Union

import attrs
import orjson

from gym_gui.telemetry.events import Topic, iso_from_unix_s
from gym_gui.telemetry.json_text import MAX_JSON_DEPTH, may_hold_big_int, text_nesting_exceeds
from gym_gui.telemetry.step_payload import StepPayload, compact_step, step_payload_of

__all__ = [
    "Normalized", "NormalizedFields", "RecordRejected", "RejectReason", "normalize_line", "normalize_record",
    "MAX_ID_CHARS", "parse_line",
]

#: The longest run or agent id accepted: ids key every per-stream table, so this bounds their memory.
MAX_ID_CHARS = 1024


class RejectReason:
    """Stable keys for rejected lines (shown in the debug pane and the proxy's stats)."""

    INVALID_UTF8 = "invalid_utf8"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    NON_FINITE = "non_finite_number"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    UNKNOWN_TYPE = "unknown_record_type"
    UNSUPPORTED_VERSION = "unsupported_version"
    OUT_OF_RANGE = "out_of_range"
    OVERSIZED = "oversized_line"
    PARTIAL = "partial_last_line"
    TOO_DEEP = "nested_too_deeply"
    ID_TOO_LONG = "id_too_long"
    SEQ_EXHAUSTED = "seq_exhausted"
    TOO_MANY_STREAMS = "too_many_streams"
    INTERNAL_ERROR = "internal_error"

    ALL = (
        INVALID_UTF8, INVALID_JSON, NOT_AN_OBJECT, NON_FINITE, MISSING_FIELD, WRONG_TYPE,
        UNKNOWN_TYPE, UNSUPPORTED_VERSION, OUT_OF_RANGE, OVERSIZED, PARTIAL, TOO_DEEP, ID_TOO_LONG,
        SEQ_EXHAUSTED, TOO_MANY_STREAMS, INTERNAL_ERROR,
    )


class RecordRejected(ValueError):
    """A line or record that cannot become an event; ``reason`` is a RejectReason key."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@attrs.frozen(slots=True)
class Normalized:
    """A record ready to become a TelemetryEvent once its stream's seq_id is assigned."""

    topic: Topic
    run_id: str
    agent_id: str
    seq: int | None  # the worker's own sequence number, if it sent one
    ts_iso: str
    payload: dict[str, Any]


def _reject_constant(name: str) -> Any:
    raise RecordRejected(RejectReason.NON_FINITE, f"{name} is not a finite number")


_decode_json: Callable[[str], Any] = json.JSONDecoder(parse_constant=_reject_constant).decode
_orjson_loads = orjson.loads
_OrjsonError = orjson.JSONDecodeError



def parse_line(line: bytes | str) -> dict[str, Any]:
    """Decode one line (without its newline) into a JSON object, or raise RecordRejected.

    orjson decodes; a line it refuses (invalid JSON or UTF-8, NaN/Infinity tokens, numbers out of
    double range, lone surrogate escapes, nesting deeper than 1024) or one that may hold an
    integer beyond 64 bits goes to the stdlib decoder, which accepts or classifies it exactly as
    before. Any thread; pure.
    """
    if type(line) is bytes:
        raw: bytes = line
    else:
        try:
            raw = line.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates in a str: only the stdlib decoder keeps them
            return _parse_line_stdlib(line)
    if may_hold_big_int(raw):
        return _parse_line_stdlib(line)
    try:
        record = _orjson_loads(raw)
    except _OrjsonError:
        return _parse_line_stdlib(line)
    if type(record) is not dict:
        raise RecordRejected(RejectReason.NOT_AN_OBJECT, f"a JSON {type(record).__name__}, not an object")
    if len(raw) > _SHALLOW_BYTES and text_nesting_exceeds(raw, record):
        raise _too_deep("the line")
    return record


#: A line this short cannot nest deeper than MAX_JSON_DEPTH (each level takes two bytes).
_SHALLOW_BYTES = 2 * MAX_JSON_DEPTH


def _too_deep(what: str) -> RecordRejected:
    return RecordRejected(RejectReason.TOO_DEEP,
                          f"{what} nests arrays and objects deeper than {MAX_JSON_DEPTH} levels (the most stored)")


def _parse_line_stdlib(line: bytes | str) -> dict[str, Any]:
    """The stdlib decoder: the reference behaviour, and the classifier of every rejected line."""
    if isinstance(line, bytes):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RecordRejected(RejectReason.INVALID_UTF8, f"byte {exc.start} is not UTF-8") from None
    else:
        text = line
    try:
        record = _decode_json(text)
    except RecordRejected:
        raise
    except RecursionError:
        raise _too_deep("the line") from None
    except ValueError as exc:
        raise RecordRejected(RejectReason.INVALID_JSON, str(exc)[:200]) from None
    if type(record) is not dict:
        raise RecordRejected(RejectReason.NOT_AN_OBJECT, f"a JSON {type(record).__name__}, not an object")
    if text_nesting_exceeds(text, record):
        raise _too_deep("the line")
    return record


# -- field helpers ---------------------------------------------------------------------------------
_MISSING = object()


def _first(record: dict[str, Any], *names: str) -> Any:
    for name in names:
        value = record.get(name, _MISSING)
        if value is not _MISSING and value is not None:
            return value
    return _MISSING


def _require(record: dict[str, Any], *names: str) -> Any:
    value = _first(record, *names)
    if value is _MISSING:
        raise RecordRejected(RejectReason.MISSING_FIELD, f"needs {' or '.join(names)}")
    return value


def _int(value: Any, name: str) -> int:
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    raise RecordRejected(RejectReason.WRONG_TYPE, f"{name} must be an integer, got {value!r:.60}")


def _number(value: Any, name: str) -> float:
    if type(value) is float:
        if not math.isfinite(value):
            raise RecordRejected(RejectReason.NON_FINITE, f"{name} is {value}")
        return value
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:  # the number 1e400 written as an integer
            raise RecordRejected(RejectReason.NON_FINITE, f"{name} is an integer beyond a double's range") from None
    raise RecordRejected(RejectReason.WRONG_TYPE, f"{name} must be a number, got {value!r:.60}")


def _bool(value: Any, name: str) -> bool:
    if type(value) is bool:
        return value
    if type(value) is int and value in (0, 1):
        return bool(value)
    raise RecordRejected(RejectReason.WRONG_TYPE, f"{name} must be a boolean, got {value!r:.60}")


def _str(value: Any, name: str) -> str:
    if type(value) is str and value:
        return value
    raise RecordRejected(RejectReason.WRONG_TYPE, f"{name} must be a non-empty string, got {value!r:.60}")


def _id(value: Any, name: str) -> str:
    """A run or agent id: a non-empty string of at most MAX_ID_CHARS characters that UTF-8 can hold."""
    text = _str(value, name)
    if len(text) > MAX_ID_CHARS:
        raise RecordRejected(RejectReason.ID_TOO_LONG, f"{name} has {len(text)} characters; the most is {MAX_ID_CHARS}")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise RecordRejected(RejectReason.WRONG_TYPE, f"{name} holds a lone surrogate at character {exc.start} "
                                                          "(an id must be text a database can store)") from None
    return text


def _dict(value: Any, name: str) -> dict[str, Any]:
    if value is _MISSING:
        return {}
    if type(value) is dict:
        return value
    raise RecordRejected(RejectReason.WRONG_TYPE, f"{name} must be an object, got {type(value).__name__}")


def _json_value(value: Any, name: str) -> Any:
    """Decode a ``*_json`` string field; other types pass through."""
    if type(value) is not str:
        return value
    try:
        decoded = _decode_json(value)
    except RecordRejected:
        raise
    except RecursionError:
        raise _too_deep(name) from None
    except ValueError as exc:
        raise RecordRejected(RejectReason.WRONG_TYPE, f"{name} is not valid JSON: {exc}") from None
    if text_nesting_exceeds(value, decoded, MAX_JSON_DEPTH - 1):  # it is stored inside its payload
        raise _too_deep(name)
    return decoded


def _json_object(value: Any, name: str) -> dict[str, Any]:
    return _dict(_json_value(value, name), name)


def _iso_from_text(value: Any, name: str) -> str:
    text = _str(value, name)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise RecordRejected(RejectReason.WRONG_TYPE, f"{name} is not an ISO-8601 time: {text!r:.60}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc).isoformat()
    if text.endswith("+00:00"):
        return text  # already canonical: keep the worker's exact text
    try:
        return parsed.astimezone(timezone.utc).isoformat()
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is in year 0 in UTC
        raise RecordRejected(RejectReason.OUT_OF_RANGE, f"{name} {text!r:.60} is outside years 1-9999 in UTC") from None


def _iso_from_unix(seconds: float, name: str) -> str:
    """Unix seconds to ISO-8601 UTC, or OUT_OF_RANGE outside what a datetime holds (years 1-9999)."""
    try:
        return iso_from_unix_s(seconds)
    except (OverflowError, ValueError, OSError):
        raise RecordRejected(RejectReason.OUT_OF_RANGE, f"{name} {seconds!r:.30} is outside years 1-9999") from None


def _data_time(record: dict[str, Any], now_iso: str) -> str:
    ns = record.get("ts_unix_ns")
    if ns is not None:
        ns = _int(ns, "ts_unix_ns")
        if not -_MAX_UNIX_NS <= ns <= _MAX_UNIX_NS:  # also keeps ns / 1e9 from overflowing a float
            raise RecordRejected(RejectReason.OUT_OF_RANGE, "ts_unix_ns is outside years 1-9999")
        return _iso_from_unix(ns / 1e9, "ts_unix_ns")
    for name in ("ts", "timestamp"):
        value = record.get(name)
        if value is not None:
            if type(value) in (int, float):
                return _iso_from_unix(_number(value, name), name)
            return _iso_from_text(value, name)
    return now_iso


#: More than any time a datetime holds (year 9999 is about 2.5e11 s after 1970).
_MAX_UNIX_NS = 10**21


def _rest(record: dict[str, Any], used: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in used}


# -- payload builders ------------------------------------------------------------------------------
_STEP_FIELDS = frozenset({
    "v", "kind", "type", "run_id", "agent_id", "seq", "ts", "timestamp", "ts_unix_ns",
    "episode_index", "episode", "step_index", "step", "action", "action_json", "observation",
    "observation_json", "reward", "terminated", "truncated", "info", "render_payload",
    "render_hint_json",
})


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


#: ``(topic, run_id, agent_id, seq, ts_iso, payload)``: the fields of a Normalized, as a plain tuple.
NormalizedFields = tuple[Topic, str, str, Union[int, None], str, Union[dict[str, Any], StepPayload]]

_STEP = Topic.STEP_APPENDED
_fromisoformat = datetime.fromisoformat


def _fast_canonical_step(record: dict[str, Any], default_agent_id: str, owned: bool) -> NormalizedFields | None:
    """A well-formed canonical v1 step with a ``+00:00`` time, or None to take the general path.

    Only records that the general path would accept unchanged qualify, so both give the same
    result. With ``owned`` (the proxy owns the dicts it decodes) the record may be consumed: a
    step in our workers' exact layout becomes a StepPayload straight from its values, any other
    becomes the payload itself (its envelope keys popped), which saves a copy.
    """
    if tuple(record) == _EMITTED_STEP_KEYS:  # exactly our workers' layout: no key to look for or drop
        (version, kind, run_id, agent_id, seq, ts, episode_index, step_index, _action, _observation, reward,
         terminated, truncated, info, render) = record.values()
        if (
            type(version) is int and version == 1 and type(kind) is str and kind == "step"
            and type(run_id) is str and run_id and type(agent_id) is str and agent_id and type(seq) is int
            and len(run_id) <= MAX_ID_CHARS and len(agent_id) <= MAX_ID_CHARS
            and type(ts) is str and ts.endswith("+00:00")
            and type(episode_index) is int and type(step_index) is int
            and type(terminated) is bool and type(truncated) is bool
            and (type(reward) is float or type(reward) is int) and -_FINITE_MAX <= reward <= _FINITE_MAX
            and type(info) is dict and (render is None or type(render) is dict)
        ):
            try:
                _fromisoformat(ts)  # validates; "+00:00" text is kept as the worker wrote it
            except ValueError:
                return None
            if owned:
                compact = step_payload_of(episode_index, step_index, _action, _observation,
                                          float(reward) if type(reward) is int else reward,
                                          terminated, truncated, info, render)
                if compact is not None:
                    return (_STEP, _shared_id(run_id), _shared_id(agent_id), seq, ts, compact)
            payload = record if owned else dict(record)
            del payload["v"], payload["kind"], payload["run_id"], payload["agent_id"], payload["seq"], payload["ts"]
            if type(reward) is int:
                payload["reward"] = float(reward)
            return (_STEP, _shared_id(run_id), _shared_id(agent_id), seq, ts, payload)
    get = record.get
    version = get("v")
    kind = get("kind")
    run_id = get("run_id")
    agent_id = get("agent_id")
    seq = get("seq")
    ts = get("ts")
    if (
        type(version) is not int or version != 1 or type(kind) is not str or kind != "step"
        or type(run_id) is not str or not run_id or len(run_id) > MAX_ID_CHARS
        or (agent_id is not None and (type(agent_id) is not str or not agent_id or len(agent_id) > MAX_ID_CHARS))
        or (seq is not None and type(seq) is not int)
        or type(ts) is not str or not ts.endswith("+00:00") or get("ts_unix_ns") is not None
        or "action_json" in record or "observation_json" in record or "render_hint_json" in record
        or not _plain_step_fields(record)
    ):
        return None
    try:
        _fromisoformat(ts)  # validates; "+00:00" text is kept as the worker wrote it
    except ValueError:
        return None
    payload = record if owned else dict(record)
    pop = payload.pop
    del payload["v"], payload["kind"], payload["run_id"], payload["ts"]
    if agent_id is not None:
        del payload["agent_id"]
    else:
        pop("agent_id", None)
        agent_id = default_agent_id
    pop("seq", None)
    pop("type", None)
    pop("timestamp", None)
    pop("ts_unix_ns", None)
    return (_STEP, _shared_id(run_id), _shared_id(agent_id), seq, ts, _completed_step_payload(payload))


_EMPTY: dict[str, Any] = {}
#: The keys of a step line as our workers write it (gym_gui.workers.jsonl_emitter and records), in order.
_EMITTED_STEP_KEYS = (
    "v", "kind", "run_id", "agent_id", "seq", "ts", "episode_index", "step_index", "action", "observation",
    "reward", "terminated", "truncated", "info", "render_payload",
)
#: One str object per run/agent id, so the ids of a read's steps are one object (marshalled once per frame).
_STREAM_IDS: dict[str, str] = {}
_MAX_STREAM_IDS = 4096


def _shared_id(text: str) -> str:
    shared = _STREAM_IDS.get(text)
    if shared is not None:
        return shared
    if len(_STREAM_IDS) >= _MAX_STREAM_IDS:
        _STREAM_IDS.clear()
    return _STREAM_IDS.setdefault(text, text)


def normalize_line(
    line: bytes | str, *, default_agent_id: str, default_run_id: str | None, now_iso: str
) -> NormalizedFields:
    """``parse_line`` + ``normalize_record`` in one call, returning a plain tuple (the proxy's hot path).

    Same results and rejections as the two calls, except that a step payload of the common shape
    comes as a ``StepPayload`` (equal to the dict, with ``info`` and ``render_payload`` already JSON
    text for the store). Any other exception while reading a line (a bug here, never the worker's
    fault) becomes an ``internal_error`` rejection naming where it happened, so one line can never
    end the source. Any thread; pure.
    """
    try:
        record = parse_line(line)
        fields = _fast_canonical_step(record, default_agent_id, True)
        if fields is None:
            fields = _normalize_general(record, default_agent_id, default_run_id, now_iso)
        topic, run_id, agent_id, seq, ts_iso, payload = fields
        if topic is _STEP and type(payload) is not StepPayload:
            compact = compact_step(payload)
            if compact is not None:
                return (topic, run_id, agent_id, seq, ts_iso, compact)
        return fields
    except RecordRejected:
        raise
    except Exception as exc:
        raise RecordRejected(RejectReason.INTERNAL_ERROR, _where(exc)) from None


def _where(exc: BaseException) -> str:
    """``Type: message at file:line`` of the innermost frame: enough to report the bug."""
    frames = traceback.extract_tb(exc.__traceback__)
    place = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}: {str(exc)[:120]}{place}"


def normalize_record(
    record: dict[str, Any], *, default_agent_id: str, default_run_id: str | None, now_iso: str
) -> Normalized:
    """Turn one decoded record into a Normalized event, or raise RecordRejected.

    Records without ``agent_id`` get ``default_agent_id``; without ``run_id``,
    ``default_run_id`` (rejected when that is None too). ``now_iso`` is used when the record
    carries no time. ``record`` is not modified. Any thread; pure.
    """
    fields = _fast_canonical_step(record, default_agent_id, False)
    if fields is None:
        fields = _normalize_general(record, default_agent_id, default_run_id, now_iso)
    topic, run_id, agent_id, seq, ts_iso, payload = fields
    return Normalized(topic=topic, run_id=run_id, agent_id=agent_id, seq=seq, ts_iso=ts_iso, payload=payload)


def _normalize_general(
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
