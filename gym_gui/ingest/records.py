"""Normalises one worker JSONL record into the fields of a TelemetryEvent (Qt-free).

Accepts the canonical v1 records (docs/telemetry-jsonl.md) and the two envelopes of the existing
gym_gui workers (lifecycle ``{"event": ...}`` and data ``{"type": ...}``) with all their aliases.
Anything it cannot accept raises ``RecordRejected`` with a stable reason key.

Hot path (the ingest child, or the proxy's reader thread): ``normalize_line`` decodes with orjson
and takes a fast path for well-formed canonical steps, and one for the existing workers' data
steps (``data_steps``); anything unusual goes through the general
code (``record_payloads.normalize_general``, with the field rules of ``record_fields``), so both
give the same result for every line (see docs/performance.md, "End to end").
"""

from __future__ import annotations

import traceback
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs
import orjson

from gym_gui.ingest.data_steps import fast_data_step, fast_layout_data_step, strings_checked
from gym_gui.ingest.render_texts import cut as cut_render, remember as remember_render
from gym_gui.ingest.record_fields import (
    MAX_ID_CHARS,
    RecordRejected,
    RejectReason,
    _decode_json,
    _too_deep,
)
from gym_gui.ingest.record_payloads import (
    _FINITE_MAX,
    NormalizedFields,
    _completed_step_payload,
    _plain_step_fields,
    normalize_general,
)
from gym_gui.telemetry.events import Topic
from gym_gui.telemetry.json_text import MAX_JSON_DEPTH, decoded_keys, encode_json, may_hold_big_int, text_nesting_exceeds
from gym_gui.ingest.shared_ids import _STREAM_IDS, shared_id
from gym_gui.telemetry.step_payload import StepPayload, compact_step
from gym_gui.telemetry.utf8_text import storable_ids

__all__ = [
    "Normalized", "NormalizedFields", "RecordRejected", "RejectReason", "normalize_line", "normalize_record",
    "MAX_ID_CHARS", "normalize_line_at", "parse_line",
]

#: The reference normalisation under its former name (tests compare the fast paths with it).
_normalize_general = normalize_general
_orjson_loads = orjson.loads
_OrjsonError = orjson.JSONDecodeError


@attrs.frozen(slots=True)
class Normalized:
    """A record ready to become a TelemetryEvent once its stream's seq_id is assigned."""

    topic: Topic
    run_id: str
    agent_id: str
    seq: int | None  # the worker's own sequence number, if it sent one
    ts_iso: str
    payload: dict[str, Any]




def parse_line(line: bytes | str) -> dict[str, Any]:
    """Decode one line (without its newline) into a JSON object, or raise RecordRejected.

    orjson decodes; a line it refuses (invalid JSON or UTF-8, NaN/Infinity tokens, numbers out of
    double range, lone surrogate escapes, nesting deeper than 1024) or one that may hold an
    integer beyond 64 bits goes to the stdlib decoder, which accepts or classifies it exactly as
    before. Any thread; pure.
    """
    return _parse(line)[0]


def _parse(line: bytes | str) -> tuple[dict[str, Any], bytes | None]:
    """``parse_line``, and the line's bytes when orjson decoded them after the big-integer check
    found nothing (None when the stdlib decoded the line): see ``_strings_checked``."""
    if type(line) is bytes:
        raw: bytes = line
    else:
        try:
            raw = line.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates in a str: only the stdlib decoder keeps them
            return _parse_line_stdlib(line), None
    if may_hold_big_int(raw):
        return _parse_line_stdlib(line), None
    try:
        record = _orjson_loads(raw)
    except _OrjsonError:
        return _parse_line_stdlib(line), None
    if type(record) is not dict:
        raise RecordRejected(RejectReason.NOT_AN_OBJECT, f"a JSON {type(record).__name__}, not an object")
    if len(raw) > _SHALLOW_BYTES and text_nesting_exceeds(raw, record):
        raise _too_deep("the line")
    return record, raw


#: True when no string of the line ``raw`` (from ``_parse``) can hold a big integer.
_strings_checked = strings_checked

#: A line this short cannot nest deeper than MAX_JSON_DEPTH (each level takes two bytes).
_SHALLOW_BYTES = 2 * MAX_JSON_DEPTH



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
        if text.startswith("\ufeff"):
            raise RecordRejected(RejectReason.INVALID_JSON, "a UTF-8 byte order mark (U+FEFF) before the JSON; "
                                 "only the stream's first line may start with one") from None
        raise RecordRejected(RejectReason.INVALID_JSON, str(exc)[:200]) from None
    if type(record) is not dict:
        raise RecordRejected(RejectReason.NOT_AN_OBJECT, f"a JSON {type(record).__name__}, not an object")
    if text_nesting_exceeds(text, record):
        raise _too_deep("the line")
    return record


_STEP = Topic.STEP_APPENDED
_fromisoformat = datetime.fromisoformat
_shared_ids = _STREAM_IDS
_INT_MIN = -(1 << 63)
_INT_MAX = (1 << 63) - 1


def _fast_canonical_step(record: dict[str, Any], default_agent_id: str, owned: bool, raw: bytes | None = None,
                         cut_render_json: str | None = None) -> NormalizedFields | None:
    """A well-formed canonical v1 step with a ``+00:00`` time, or None to take the general path.

    Only records that the general path would accept unchanged qualify, so both give the same
    result. With ``owned`` (the proxy owns the dicts it decodes) the record may be consumed: a
    step in our workers' exact layout becomes a StepPayload straight from its values, any other
    becomes the payload itself (its envelope keys popped), which saves a copy. ``raw``: the line
    ``record`` was decoded from, whose render payload text is then remembered (``render_texts``);
    ``cut_render_json``: ``record`` is the head of a line that ``render_texts.cut`` took this
    render payload text from (only a StepPayload result then, else None: the line is decoded whole).
    """
    keys = tuple(record)
    if keys == _EMITTED_AS_DECODED if cut_render_json is None else keys == _EMITTED_HEAD_AS_DECODED:
        # exactly our workers' layout: no key to look for or drop
        if cut_render_json is None:
            (version, kind, run_id, agent_id, seq, ts, episode_index, step_index, _action, _observation, reward,
             terminated, truncated, info, render) = record.values()
        else:
            (version, kind, run_id, agent_id, seq, ts, episode_index, step_index, _action, _observation, reward,
             terminated, truncated, info) = record.values()
            render = _CUT
        if (
            type(version) is int and version == 1 and type(kind) is str and kind == "step"
            and type(run_id) is str and run_id and type(agent_id) is str and agent_id and type(seq) is int
            and len(run_id) <= MAX_ID_CHARS and len(agent_id) <= MAX_ID_CHARS
            and type(ts) is str and ts.endswith("+00:00")
            and type(episode_index) is int and type(step_index) is int
            and type(terminated) is bool and type(truncated) is bool
            and (type(reward) is float or type(reward) is int) and -_FINITE_MAX <= reward <= _FINITE_MAX
            and type(info) is dict and (render is None or type(render) is dict or render is _CUT)
            and (raw is not None or render is _CUT or storable_ids(run_id, agent_id))  # (orjson refuses surrogates)
        ):
            try:
                _fromisoformat(ts)  # validates; "+00:00" text is kept as the worker wrote it
            except ValueError:
                return None
            if owned and _INT_MIN <= episode_index <= _INT_MAX and _INT_MIN <= step_index <= _INT_MAX:
                # step_payload_of's StepPayload, its other checks made above (a finite float reward)
                try:
                    info_json = encode_json(info) if info else "{}"
                    if render is _CUT:
                        render_json = cut_render_json
                    elif render is None:
                        render_json = None
                    else:
                        render_json = encode_json(render)
                        if raw is not None:
                            remember_render(raw, render, render_json)
                except Exception:  # not encodable: the dict payload below, reported by the store
                    pass
                else:
                    return (_STEP, _shared_ids.get(run_id) or shared_id(run_id),
                            _shared_ids.get(agent_id) or shared_id(agent_id), seq, ts,
                            StepPayload((episode_index, step_index, _action, _observation,
                                         float(reward) if type(reward) is int else reward, terminated, truncated,
                                         info_json, render_json)))
            if render is _CUT:
                return None
            payload = record if owned else dict(record)
            del payload["v"], payload["kind"], payload["run_id"], payload["agent_id"], payload["seq"], payload["ts"]
            if type(reward) is int:
                payload["reward"] = float(reward)
            return (_STEP, shared_id(run_id), shared_id(agent_id), seq, ts, payload)
    elif owned and keys == _BARE_AS_DECODED:  # that layout without info and render_payload: a StepPayload or
        (version, kind, run_id, agent_id, seq, ts, episode_index, step_index, _action, _observation, reward,
         terminated, truncated) = record.values()  # the code below (which gives the same StepPayload)
        if (
            type(version) is int and version == 1 and type(kind) is str and kind == "step"
            and type(run_id) is str and run_id and type(agent_id) is str and agent_id and type(seq) is int
            and len(run_id) <= MAX_ID_CHARS and len(agent_id) <= MAX_ID_CHARS
            and type(ts) is str and ts.endswith("+00:00")
            and type(episode_index) is int and type(step_index) is int
            and _INT_MIN <= episode_index <= _INT_MAX and _INT_MIN <= step_index <= _INT_MAX
            and type(terminated) is bool and type(truncated) is bool
            and (type(reward) is float or type(reward) is int) and -_FINITE_MAX <= reward <= _FINITE_MAX
            and (raw is not None or storable_ids(run_id, agent_id))
        ):
            try:
                _fromisoformat(ts)
            except ValueError:
                return None
            return (_STEP, _shared_ids.get(run_id) or shared_id(run_id), _shared_ids.get(agent_id) or shared_id(agent_id),
                    seq, ts, StepPayload((episode_index, step_index, _action, _observation,
                                          float(reward) if type(reward) is int else reward, terminated, truncated,
                                          "{}", None)))
    if cut_render_json is not None:  # a head that is not of our workers' layout: the line is decoded whole
        return None
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
        or (raw is None and not storable_ids(run_id, agent_id))  # (normalize_general says why)
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
    return (_STEP, shared_id(run_id), shared_id(agent_id), seq, ts, _completed_step_payload(payload))


#: The keys of a step line as our workers write it (gym_gui.workers.jsonl_emitter and records), in order.
_EMITTED_STEP_KEYS = (
    "v", "kind", "run_id", "agent_id", "seq", "ts", "episode_index", "step_index", "action", "observation",
    "reward", "terminated", "truncated", "info", "render_payload",
)
#: Those keys without the optional ``info`` and ``render_payload`` (a scalar step of another emitter).
_BARE_STEP_KEYS = _EMITTED_STEP_KEYS[:-2]
#: All three as the objects orjson decodes them to (compared by identity: ``json_text.decoded_keys``);
#: the head is a line's keys without its render payload (``render_texts.cut``).
_EMITTED_AS_DECODED, _BARE_AS_DECODED, _EMITTED_HEAD_AS_DECODED = (
    decoded_keys(_EMITTED_STEP_KEYS), decoded_keys(_BARE_STEP_KEYS), decoded_keys(_EMITTED_STEP_KEYS[:-1]))
#: The render payload of a head: the text ``render_texts.cut`` took from the line.
_CUT: Any = object()


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
    return normalize_line_at(line, default_agent_id, default_run_id, now_iso)


def normalize_line_at(line: bytes | str, default_agent_id: str, default_run_id: str | None,
                      now_iso: str) -> NormalizedFields:
    """``normalize_line`` with positional arguments (a line decoder's loop calls it once a line). Any thread; pure."""
    try:
        if type(line) is bytes and line.endswith(b"}}"):
            cut = cut_render(line)  # a step line ending with a render payload decoded before: decode the rest
            if cut is not None and not may_hold_big_int(cut[0]):
                try:
                    head = _orjson_loads(cut[0])
                except _OrjsonError:
                    head = None
                if type(head) is dict:
                    fields = _fast_canonical_step(head, default_agent_id, True, None, cut[1])
                    if fields is not None:
                        return fields
        record, raw = _parse(line)
        fields = _fast_canonical_step(record, default_agent_id, True, raw) if "kind" in record else None
        if fields is None and record.get("type") == "step":  # (a canonical step needs "kind")
            fields = fast_layout_data_step(record, default_agent_id, raw)
            if fields is None:
                fields = fast_data_step(record, default_agent_id, default_run_id, now_iso, raw)
        if fields is None:
            fields = normalize_general(record, default_agent_id, default_run_id, now_iso)
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
        fields = normalize_general(record, default_agent_id, default_run_id, now_iso)
    topic, run_id, agent_id, seq, ts_iso, payload = fields
    return Normalized(topic=topic, run_id=run_id, agent_id=agent_id, seq=seq, ts_iso=ts_iso, payload=payload)


