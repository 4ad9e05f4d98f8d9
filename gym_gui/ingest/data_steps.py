"""Steps in the existing gym_gui workers' data envelope: the line decoder's fast paths for them (Qt-free, pure).

Such a step (docs/telemetry-jsonl.md section 7) carries ``episode``/``step``, ``action_json`` and
``observation_json`` strings, the render payload as a JSON string and ``ts_unix_ns``. Both paths
here give exactly what ``record_payloads.normalize_general`` followed by ``compact_step`` gives
(a rejection included: the fields are read in the general path's order with its helpers, and
anything it would convert or carry as an extra is left to it, by returning None):

- ``fast_layout_data_step``: the keys in the order those workers write them (with or without
  ``agent_id``, ``info`` and ``render_payload``), read in one C call instead of one lookup each;
- ``fast_data_step``: any other data step made only of known keys.

The render payload arrives as JSON text. ``render_text`` keeps, per distinct text, the text the
store writes for it (``json_text.encode_json`` of its value): a ToyText grid has a few dozen
distinct payloads, so each is validated, decoded and encoded once, not on every step.
"""

from __future__ import annotations

from itertools import combinations
from operator import itemgetter
from typing import Any, Callable

from gym_gui.ingest.record_fields import (
    MAX_ID_CHARS,
    _MAX_UNIX_NS,
    _checked_json_value,
    _data_time,
    _dict,
)
from gym_gui.ingest.record_payloads import _FINITE_MAX, NormalizedFields
from gym_gui.ingest.shared_ids import _STREAM_IDS, shared_id
from gym_gui.ingest.unix_time import iso_from_unix_ns
from gym_gui.telemetry.events import Topic
from gym_gui.telemetry.json_text import decoded_keys, encode_json
from gym_gui.telemetry.step_payload import StepPayload, fits_typed_columns

__all__ = ["fast_data_step", "fast_layout_data_step", "render_text", "strings_checked"]

_STEP = Topic.STEP_APPENDED

# -- render payload texts --------------------------------------------------------------------------
#: Render payload text as it arrived -> the JSON text the store writes for it (a valid object).
_RENDER_TEXTS: dict[str, str] = {}
#: Texts longer than this (an RGB frame) are not kept: they seldom repeat.
MAX_CACHED_RENDER_CHARS = 4096
#: Characters of arrived and stored texts kept at most; the table is emptied when it would hold more.
MAX_RENDER_CACHE_CHARS = 4 << 20
_cached_chars = 0


def render_text(value: str, strings_checked: bool) -> str | None:
    """The stored JSON text of a render payload that arrived as the JSON text ``value``.

    Raises RecordRejected as ``_dict(_checked_json_value(value, "render_payload", ...))`` does
    (not JSON, not an object, nested too deeply...); None when its value cannot be encoded (the
    caller then leaves the step to the general path). The text is ``encode_json`` of the value,
    so it reads back (``json_text.load_json``) to exactly what decoding ``value`` gives.
    ``strings_checked``: see ``strings_checked``. Any thread (a benign, bounded cache).
    """
    global _cached_chars
    text = _RENDER_TEXTS.get(value)
    if text is not None:
        return text
    decoded = _dict(_checked_json_value(value, "render_payload", strings_checked), "render_payload")
    try:
        text = encode_json(decoded)
    except Exception:  # not encodable: the general path reports it as it does for any payload
        return None
    size = len(value)
    if size <= MAX_CACHED_RENDER_CHARS:
        size += len(text)
        if _cached_chars + size > MAX_RENDER_CACHE_CHARS:
            _RENDER_TEXTS.clear()
            _cached_chars = 0
        _RENDER_TEXTS[value] = text
        _cached_chars += size
    return text


def _step_payload(episode_index: Any, step_index: Any, action: Any, observation: Any, reward: Any,
                  terminated: Any, truncated: Any, info: dict[str, Any], render_json: str | None) -> StepPayload | None:
    """``step_payload.step_payload_of`` for a render payload that is JSON text already."""
    if not fits_typed_columns(episode_index, step_index, reward, terminated, truncated):
        return None
    try:
        info_json = encode_json(info)
    except Exception:  # not encodable: the general path reports it
        return None
    return StepPayload((episode_index, step_index, action, observation, reward, terminated, truncated,
                        info_json, render_json))


# -- the workers' own layouts ----------------------------------------------------------------------
#: The keys of a data step as the existing gym_gui workers write them, in order; the optional ones
#: may be missing.
_WORKER_KEYS = ("type", "run_id", "agent_id", "episode", "step", "action_json", "observation_json", "reward",
                "terminated", "truncated", "info", "render_payload", "ts_unix_ns")
_OPTIONAL_KEYS = ("agent_id", "info", "render_payload")
#: The values read from a layout, in this order (the type is known to be "step").
_READ_KEYS = ("run_id", "agent_id", "episode", "step", "action_json", "observation_json", "reward", "terminated",
              "truncated", "info", "render_payload", "ts_unix_ns")


def _layouts() -> dict[tuple[str, ...], Callable[[tuple[Any, ...]], tuple[Any, ...]]]:
    """Layout (the record's keys in order) -> a getter of ``_READ_KEYS`` from its values plus a None."""
    out: dict[tuple[str, ...], Callable[[tuple[Any, ...]], tuple[Any, ...]]] = {}
    for n in range(len(_OPTIONAL_KEYS) + 1):
        for missing in combinations(_OPTIONAL_KEYS, n):
            keys = tuple(k for k in _WORKER_KEYS if k not in missing)
            pad = len(keys)  # the None appended to the values
            out[keys] = itemgetter(*(keys.index(k) if k in keys else pad for k in _READ_KEYS))
    return out


_LAYOUTS = _layouts()
#: The workers' keys without the optional info and render payload.
_BARE_WORKER_KEYS = tuple(k for k in _WORKER_KEYS if k not in ("info", "render_payload"))
#: Both as the objects orjson decodes them to (compared by identity: ``json_text.decoded_keys``).
_WORKER_AS_DECODED, _BARE_WORKER_AS_DECODED = decoded_keys(_WORKER_KEYS), decoded_keys(_BARE_WORKER_KEYS)
_INT_MIN = -(1 << 63)
_INT_MAX = (1 << 63) - 1
#: ``*_json`` texts of small non-negative integers -> their value: what decoding them gives (the
#: general path reads "7" as 7; "07", " 7" or "7.0" are not keys here and take the decoder).
_INT_TEXTS: dict[str, int] = {str(i): i for i in range(1024)}
_shared_ids = _STREAM_IDS


def strings_checked(raw: bytes | None) -> bool:
    """True when no string of the line ``raw`` can hold a big integer: orjson read it after
    ``may_hold_big_int`` found nothing (``raw`` is None when the stdlib decoded the line) and it
    holds no ``\\u`` escape (``record_fields._checked_json_value``). Any thread; pure."""
    return raw is not None and b"\\u" not in raw


def fast_layout_data_step(record: dict[str, Any], default_agent_id: str, raw: bytes | None) -> NormalizedFields | None:
    """A data step in one of the workers' own layouts, or None to take ``fast_data_step``/the general path.

    Everything the general path would reject or convert before the ``*_json`` strings returns
    None; the strings are then decoded in the general path's order, so a bad one raises the
    general path's RecordRejected. ``raw``: the line as ``records._parse`` gives it (looked at
    only when a string must be decoded, see ``strings_checked``). Any thread; pure.
    """
    keys = tuple(record)
    if keys == _WORKER_AS_DECODED:  # the workers' usual layout: the values in order, no getter
        (_, run_id, agent_id, episode_index, step_index, action, observation, reward, terminated, truncated, info,
         render, ns) = record.values()
        if info is None:
            info = {}
    elif keys == _BARE_WORKER_AS_DECODED:  # a scalar step: no info, no render payload
        (_, run_id, agent_id, episode_index, step_index, action, observation, reward, terminated, truncated,
         ns) = record.values()
        info = {}
        render = None
    else:
        getter = _LAYOUTS.get(keys)
        if getter is None:
            return None
        (run_id, agent_id, episode_index, step_index, action, observation, reward, terminated, truncated, info,
         render, ns) = getter((*record.values(), None))
        if info is None:
            info = {}
    if agent_id is None:
        agent_id = default_agent_id
    if not (
        type(run_id) is str and run_id and len(run_id) <= MAX_ID_CHARS and run_id.isascii()
        and type(agent_id) is str and agent_id and len(agent_id) <= MAX_ID_CHARS and agent_id.isascii()
        and type(episode_index) is int and type(step_index) is int
        and type(action) is str and type(observation) is str
        and type(reward) is float and -_FINITE_MAX <= reward <= _FINITE_MAX
        and type(terminated) is bool and type(truncated) is bool and type(info) is dict
        and (render is None or type(render) is str)
        and type(ns) is int and -_MAX_UNIX_NS <= ns <= _MAX_UNIX_NS
    ):
        return None
    checked: bool | None = None  # strings_checked(raw), worked out the first time a string needs it
    value = _INT_TEXTS.get(action)
    if value is None:
        checked = strings_checked(raw)
        value = _checked_json_value(action, "action_json", checked)
    action = value
    value = _INT_TEXTS.get(observation)
    if value is None:
        if checked is None:
            checked = strings_checked(raw)
        value = _checked_json_value(observation, "observation_json", checked)
    observation = value
    render_json = None
    if render is not None:
        render_json = _RENDER_TEXTS.get(render)
        if render_json is None:
            render_json = render_text(render, strings_checked(raw) if checked is None else checked)
            if render_json is None:
                return None
    try:
        ts_iso = iso_from_unix_ns(ns)
    except (OverflowError, ValueError, OSError):
        return None  # the general path rejects it
    if not (_INT_MIN <= episode_index <= _INT_MAX and _INT_MIN <= step_index <= _INT_MAX):
        return None  # (fits_typed_columns: the rest is checked above) the general path stores extras
    if info:
        try:
            info_json = encode_json(info)
        except Exception:  # not encodable: the general path reports it
            return None
    else:
        info_json = "{}"
    return (_STEP, _shared_ids.get(run_id) or shared_id(run_id), _shared_ids.get(agent_id) or shared_id(agent_id),
            None, ts_iso, StepPayload((episode_index, step_index, action, observation, reward, terminated, truncated,
                                       info_json, render_json)))


# -- any other data step of known keys -------------------------------------------------------------
#: The keys a gym_gui data step may have for ``fast_data_step`` (no extras, no render hint).
_DATA_STEP_KEYS = frozenset({
    "type", "run_id", "agent_id", "seq", "ts", "timestamp", "ts_unix_ns", "episode_index", "episode",
    "step_index", "step", "action", "action_json", "observation", "observation_json", "reward", "terminated",
    "truncated", "info", "render_payload",
})


def fast_data_step(record: dict[str, Any], default_agent_id: str, default_run_id: str | None,
                   now_iso: str, raw: bytes | None = None) -> NormalizedFields | None:
    """A step in the existing gym_gui workers' data envelope, or None to take the general path.

    ``record_payloads.normalize_general`` made shorter for the common case (docs/telemetry-jsonl.md
    section 7): the same fields read in the same order with the same helpers, so a rejection is the
    one the general path gives; anything the general path would convert (a str index, an integral
    float, a 0/1 flag, an odd id) or carry as an extra takes the general path instead. The payload
    is a StepPayload when ``compact_step`` would make one, else the general path's dict.
    ``raw``: the line as ``records._parse`` gives it; when it passed the big-integer check
    (``strings_checked``), its ``*_json`` strings need not be checked again. Any thread; pure.
    """
    if not record.keys() <= _DATA_STEP_KEYS:
        return None
    checked = strings_checked(raw)
    get = record.get
    episode_index = get("episode_index")
    if episode_index is None:
        episode_index = get("episode")
    step_index = get("step_index")
    if step_index is None:
        step_index = get("step")
    if type(episode_index) is not int or type(step_index) is not int:
        return None
    action = get("action")
    if action is None:
        action = _checked_json_value(get("action_json"), "action_json", checked)
    observation = get("observation")
    if observation is None:
        observation = _checked_json_value(get("observation_json"), "observation_json", checked)
    reward = get("reward")
    terminated = get("terminated", False)
    truncated = get("truncated", False)
    info = get("info")
    if info is None:
        info = {}
    if (
        type(reward) is not float or not -_FINITE_MAX <= reward <= _FINITE_MAX
        or type(terminated) is not bool or type(truncated) is not bool or type(info) is not dict
    ):
        return None
    render = get("render_payload")
    render_json: str | None = None
    if type(render) is str:
        render_json = render_text(render, checked)
        if render_json is None:
            return None
    elif render is not None:
        render = _dict(render, "render_payload")
        try:
            render_json = encode_json(render)
        except Exception:  # not encodable: the general path reports it
            return None
    ns = get("ts_unix_ns")
    ts_iso = None
    if type(ns) is int and -_MAX_UNIX_NS <= ns <= _MAX_UNIX_NS:  # _data_time's common case, inline
        try:
            ts_iso = iso_from_unix_ns(ns)
        except (OverflowError, ValueError, OSError):
            pass  # _data_time rejects it as it does
    if ts_iso is None:
        ts_iso = _data_time(record, now_iso)
    run_id = get("run_id")
    if run_id is None:
        run_id = default_run_id
    agent_id = get("agent_id")
    if agent_id is None:
        agent_id = default_agent_id
    seq = get("seq")
    if (
        type(run_id) is not str or not run_id or len(run_id) > MAX_ID_CHARS or not run_id.isascii()
        or type(agent_id) is not str or not agent_id or len(agent_id) > MAX_ID_CHARS or not agent_id.isascii()
        or (seq is not None and type(seq) is not int)
    ):
        return None
    payload = _step_payload(episode_index, step_index, action, observation, reward, terminated, truncated, info,
                            render_json)
    if payload is None:
        return None  # the general path makes its dict payload (and reports what cannot be encoded)
    return (_STEP, shared_id(run_id), shared_id(agent_id), seq, ts_iso, payload)
