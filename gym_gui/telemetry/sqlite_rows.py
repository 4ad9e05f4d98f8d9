"""Mapping between TelemetryEvents and table rows (Qt-free, pure functions, hot path of the sink).

Rule that keeps every payload lossless: a typed column (an index, reward, a flag, outcome) holds a
payload value only when the value has the column's type; JSON columns hold any value that is
present (``NULL`` means the key was absent). Whatever does not fit a column -- unknown keys and
values of the wrong type -- goes to ``extra_json``. Decoding merges the columns and the extras back,
so a stored event comes back with its original payload (JSON round-tripped).

A reward (or total_reward) of ``-0.0`` keeps ``0.0`` in its column, which is what SQLite stores for
it, and its sign in ``extra_json`` (``{"reward":-0.0}``), so raw SQL sums stay right and the value
reads back as ``-0.0``.

``agent_id`` is stored as ``''`` when the event had none (TelemetryEvent forbids ``''`` as an id,
so the mapping is exact); keys stay NOT NULL and idempotent.

JSON text is made by ``json_text`` (orjson when it can say the same thing as the stdlib encoder,
which remains the reference).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import orjson

from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.json_text import dump_json, load_json, load_json_exact, may_hold_big_int, quarantine_text
from gym_gui.telemetry.json_text import encode_json as _encode
from gym_gui.telemetry.sqlite_records import EpisodeRecord, StepRecord
from gym_gui.telemetry.step_payload import StepPayload, fits_typed_columns
from gym_gui.telemetry.tables import EPISODES, STEPS, Column

__all__ = [
    "EPISODE_READ_COLUMNS",
    "NO_AGENT",
    "RUN_EVENT_READ",
    "STEP_READ_COLUMNS",
    "decode_episode",
    "decode_run_event",
    "decode_step",
    "dump_json",
    "encode_episode",
    "encode_step",
    "load_json",
    "loaded_agent",
    "quarantine_json",
    "stored_agent",
]

#: Stored agent_id of events without an agent id.
NO_AGENT = ""

_copysign = math.copysign
_NEG_ZERO_REWARD = '{"reward":-0.0}'

_INT_MIN = -(1 << 63)
_INT_MAX = (1 << 63) - 1
_MISSING: Any = object()

STEP_KEYS = frozenset(
    ("episode_index", "step_index", "action", "observation", "reward", "terminated", "truncated",
     "info", "render_payload")
)
_N_STEP_KEYS = len(STEP_KEYS)
EPISODE_KEYS = frozenset(
    ("episode_index", "total_reward", "length", "terminated", "truncated", "outcome", "metadata")
)


def quarantine_json(payload: Mapping[str, Any]) -> str:
    """JSON of a payload that failed normal encoding: unknown objects become their ``repr``. Never raises."""
    return quarantine_text(payload)  # (json_text: also for a payload nested too deeply for repr)


def stored_agent(agent_id: str | None) -> str:
    """The stored form of ``agent_id`` (``''`` for None)."""
    return NO_AGENT if agent_id is None else agent_id


def loaded_agent(agent_id: str) -> str | None:
    """The event form of a stored agent_id (None for ``''``)."""
    return None if agent_id == NO_AGENT else agent_id


def _is_int(value: Any) -> bool:
    return type(value) is int and _INT_MIN <= value <= _INT_MAX


def _is_real(value: Any) -> bool:
    kind = type(value)
    if kind is float:
        return not math.isnan(value)  # SQLite stores NaN as NULL: keep it in the extras instead
    return kind is int and _INT_MIN <= value <= _INT_MAX


def _is_negative_zero(value: Any) -> bool:
    """True for the float ``-0.0`` (SQLite stores it as 0, losing the sign)."""
    return type(value) is float and value == 0.0 and _copysign(1.0, value) < 0.0


def _is_bool(value: Any) -> bool:
    return type(value) is bool


def _is_str(value: Any) -> bool:
    return type(value) is str


def _typed(payload: Mapping[str, Any], key: str, ok: Any, misfit: dict[str, Any]) -> Any:
    value = payload.get(key, _MISSING)
    if value is _MISSING:
        return None
    if ok(value):
        return value
    misfit[key] = value
    return None


def _json_col(payload: Mapping[str, Any], key: str) -> str | None:
    value = payload.get(key, _MISSING)
    return None if value is _MISSING else dump_json(value)


def _extras(payload: Mapping[str, Any], known: frozenset[str], misfit: dict[str, Any] | None) -> str | None:
    if not payload.keys() <= known:
        misfit = dict(misfit or ())
        for key, value in payload.items():
            if key not in known:
                misfit[key] = value
    return _encode(misfit) if misfit else None


def encode_step(evt: TelemetryEvent) -> tuple[Any, ...]:
    """Row of ``steps`` for a STEP_APPENDED event, in column order. Raises on an unencodable payload.

    Hot path of the sink: a StepPayload's columns come from its fields (its JSON was made by the
    proxy); a dict's from ``_dict_step_columns``.
    """
    p = evt.payload
    if type(p) is StepPayload:  # checked when it was made; info and render payload are JSON text already
        ep, si, action, observation, reward, term, trunc, info_json, render_json = p.fields
        action_json = int.__repr__(action) if type(action) is int else dump_json(action)
        observation_json = int.__repr__(observation) if type(observation) is int else dump_json(observation)
        term = 1 if term else 0  # bind flags as INTEGER 0/1 (what SQLite stores for a bool): sqlite3 adapts bool slowly
        trunc = 1 if trunc else 0
        if render_json is None:
            render_json = "null"
        extra = None
        if reward == 0.0 and type(reward) is float and _copysign(1.0, reward) < 0.0:
            extra = _NEG_ZERO_REWARD  # the column keeps 0.0; the sign lives in the extras
    else:
        (ep, si, action_json, observation_json, reward, term, trunc, info_json, render_json,
         extra) = _dict_step_columns(p)
    return (
        evt.run_id, NO_AGENT if evt.agent_id is None else evt.agent_id, evt.seq_id, ep, si,
        action_json, observation_json, reward, term, trunc, info_json, render_json, extra, evt.ts_iso,
    )


def _with_generic(row: tuple[Any, ...], payload: Mapping[str, Any], columns: tuple[Column, ...],
                  extra_at: int) -> tuple[Any, ...]:
    """``row`` with the values of the declared generic ``columns`` appended (``tables``). A value that
    fits its column moves there out of the extras (the hand-written encoder kept it there as an
    unknown key); one that does not fit stays in the extras and its column is NULL."""
    values: list[Any] = []
    moved: list[str] = []
    for col in columns:
        value = payload.get(col.key, _MISSING)  # type: ignore[arg-type]
        if value is not _MISSING and col.codec.fits(value):  # type: ignore[union-attr]
            values.append(col.codec.encode(value))  # type: ignore[union-attr]
            moved.append(col.key)  # type: ignore[arg-type]
        else:
            values.append(None)
    if moved:
        extras = load_json(row[extra_at])
        for key in moved:
            del extras[key]
        row = row[:extra_at] + ((_encode(extras) if extras else None),) + row[extra_at + 1:]
    return row + tuple(values)


def _generic_payload(payload: dict[str, Any], columns: tuple[Column, ...], stored: tuple[Any, ...]) -> None:
    """Put the non-NULL values of the declared generic ``columns`` back into ``payload``."""
    for col, value in zip(columns, stored):
        if value is not None:
            payload[col.key] = col.codec.decode(value)  # type: ignore[index, union-attr]


def _dict_step_columns(p: Mapping[str, Any]) -> tuple[Any, ...]:
    """The payload columns of a step given as a mapping, ``episode_index`` through ``extra_json``.

    The common shapes (int or absent action/observation, dict info and render payload, no extra
    keys) take one combined type test; everything else goes through the per-column helpers.
    """
    get = p.get
    ep = get("episode_index")
    si = get("step_index")
    reward = get("reward")
    term = get("terminated")
    trunc = get("truncated")
    misfit: dict[str, Any] | None = None
    if fits_typed_columns(ep, si, reward, term, trunc):
        term = 1 if term else 0
        trunc = 1 if trunc else 0
    else:  # slow path: some value is missing or of the wrong type
        misfit = {}
        ep = _typed(p, "episode_index", _is_int, misfit)
        si = _typed(p, "step_index", _is_int, misfit)
        reward = _typed(p, "reward", _is_real, misfit)
        term = _typed(p, "terminated", _is_bool, misfit)
        trunc = _typed(p, "truncated", _is_bool, misfit)
        if term is not None:
            term = 1 if term else 0
        if trunc is not None:
            trunc = 1 if trunc else 0
    if reward == 0.0 and type(reward) is float and _copysign(1.0, reward) < 0.0:
        misfit = {} if misfit is None else misfit
        misfit["reward"] = reward  # the column keeps 0.0; the sign lives in the extras
    action = get("action", _MISSING)
    observation = get("observation", _MISSING)
    info = get("info", _MISSING)
    render = get("render_payload", _MISSING)
    if type(info) is dict:
        info_json = _encode(info) if info else "{}"
    else:
        info_json = None if info is _MISSING else dump_json(info)
    if type(render) is dict:
        render_json = _encode(render)
    else:
        render_json = "null" if render is None else None if render is _MISSING else dump_json(render)
    return (
        ep,
        si,
        int.__repr__(action) if type(action) is int else None if action is _MISSING else dump_json(action),
        int.__repr__(observation) if type(observation) is int else (
            None if observation is _MISSING else dump_json(observation)),
        reward,
        term,
        trunc,
        info_json,
        render_json,
        None if misfit is None and (
            len(p) == _N_STEP_KEYS and action is not _MISSING and observation is not _MISSING
            and info is not _MISSING and render is not _MISSING or p.keys() <= STEP_KEYS
        ) else _extras(p, STEP_KEYS, misfit),
    )


def encode_episode(evt: TelemetryEvent) -> tuple[Any, ...]:
    """Row of ``episodes`` for an EPISODE_FINALIZED event; ValueError without an int episode_index."""
    p = evt.payload
    misfit: dict[str, Any] = {}  # filled by _typed
    ep = p.get("episode_index")
    if not _is_int(ep):
        raise ValueError(f"EPISODE_FINALIZED needs an integer episode_index, got {ep!r}")
    total_reward = _typed(p, "total_reward", _is_real, misfit)
    if _is_negative_zero(total_reward):
        misfit["total_reward"] = total_reward  # the column keeps 0.0; the sign lives in the extras
    return (
        evt.run_id,
        NO_AGENT if evt.agent_id is None else evt.agent_id,
        ep,
        evt.seq_id,
        total_reward,
        _typed(p, "length", _is_int, misfit),
        _typed(p, "terminated", _is_bool, misfit),
        _typed(p, "truncated", _is_bool, misfit),
        _typed(p, "outcome", _is_str, misfit),
        _json_col(p, "metadata"),
        _extras(p, EPISODE_KEYS, misfit),
        evt.ts_iso,
    )


#: Columns read by ``decode_step``, in order (checked against ``tables.STEPS``), then the generic ones.
_STEP_GENERIC = STEPS.generic()
_STEP_EXTRA_AT = STEPS.insert_names().index("extra_json")
_STEP_READ = STEPS.names(
    "run_id", "agent_id", "seq_id", "ts_iso", "episode_index", "step_index", "reward", "terminated", "truncated",
    "action_json", "observation_json", "info_json", "render_payload_json", "extra_json",
)
STEP_READ_COLUMNS = ", ".join(_STEP_READ + tuple(c.name for c in _STEP_GENERIC))
#: Columns read by ``decode_episode``, in order (checked against ``tables.EPISODES``), then the generic ones.
_EPISODE_GENERIC = EPISODES.generic()
_EPISODE_EXTRA_AT = EPISODES.insert_names().index("extra_json")
_EPISODE_READ = EPISODES.names(
    "run_id", "agent_id", "episode_index", "seq_id", "ts_iso", "total_reward", "length", "terminated", "truncated",
    "outcome", "metadata_json", "extra_json",
)
EPISODE_READ_COLUMNS = ", ".join(_EPISODE_READ + tuple(c.name for c in _EPISODE_GENERIC))
_N_STEP_READ, _N_EPISODE_READ = len(_STEP_READ), len(_EPISODE_READ)


_orjson_loads = orjson.loads
#: Texts (repeated ones: interned info/render payloads) that orjson reads exactly as the stdlib does.
_ORJSON_EXACT: dict[str, bool] = {}
_MAX_EXACT_CACHED, _MAX_EXACT_CHARS = 8192, 2048


def read_json(text: str) -> Any:
    """A stored JSON text decoded as ``load_json`` decodes it, faster: small integers and the
    commonest texts directly, the rest by orjson where it gives the same (``json_text.load_json_exact``;
    a text seen before that orjson reads exactly goes to orjson at once). A value that is not a
    text (a BLOB put there by raw SQL) raises ValueError, as a text that is not JSON does. Any thread."""
    if len(text) < 19 and text.isdigit() and text.isascii() and (text[0] != "0" or len(text) == 1):
        return int(text)
    if text == "{}":
        return {}
    if text == "null":
        return None
    if _ORJSON_EXACT.get(text):
        return _orjson_loads(text)
    try:
        raw = text.encode()
    except UnicodeEncodeError:  # a lone surrogate (only the stdlib reads it)
        return load_json(text)
    except AttributeError:  # not a text: only raw SQL stores a BLOB (or a number) in a JSON column
        raise ValueError(f"a stored JSON value is a {type(text).__name__}, not a text") from None
    try:
        value = load_json_exact(raw)
    except ValueError:  # not JSON, or nested deeper than the writers' limit: what the stdlib says
        return load_json(text)
    if len(text) <= _MAX_EXACT_CHARS:
        if len(_ORJSON_EXACT) >= _MAX_EXACT_CACHED:
            _ORJSON_EXACT.clear()
        _ORJSON_EXACT[text] = _exact_by_orjson(raw, value)
    return value


def _exact_by_orjson(raw: bytes, value: Any) -> bool:
    """orjson reads ``raw`` to ``value`` (what the stdlib reads): no big integer, no NaN, nesting within bounds."""
    if may_hold_big_int(raw):
        return False
    try:
        return _orjson_loads(raw) == value
    except orjson.JSONDecodeError:
        return False


def _bool(value: int | None) -> bool | None:
    return None if value is None else bool(value)


def _payload(fields: tuple[tuple[str, Any, Callable[[Any], Any] | None], ...], extra: str | None) -> dict[str, Any]:
    """A stored event's payload: its non-NULL columns in order (each through its decoder), then the extras."""
    payload = {key: value if decode is None else decode(value) for key, value, decode in fields if value is not None}
    if extra is not None:
        payload.update(load_json(extra))
    return payload


def decode_step(row: tuple[Any, ...]) -> StepRecord:
    """StepRecord from a row selected with ``STEP_READ_COLUMNS``."""
    (run_id, agent_id, seq_id, ts_iso, ep, si, reward, term, trunc,
     action, observation, info, render, extra) = row
    payload: dict[str, Any] = {}  # the non-NULL columns in order, then the extras (as ``_payload``)
    if ep is not None:
        payload["episode_index"] = ep
    if si is not None:
        payload["step_index"] = si
    if action is not None:
        payload["action"] = read_json(action)
    if observation is not None:
        payload["observation"] = read_json(observation)
    if reward is not None:
        payload["reward"] = reward
    if term is not None:
        payload["terminated"] = term = bool(term)
    if trunc is not None:
        payload["truncated"] = trunc = bool(trunc)
    if info is not None:
        payload["info"] = read_json(info)
    if render is not None:
        payload["render_payload"] = read_json(render)
    if extra is not None:
        payload.update(load_json(extra))
        if reward == 0.0:
            reward = payload.get("reward", reward)  # -0.0 keeps its sign in the extras
    return StepRecord(run_id, loaded_agent(agent_id), seq_id, ts_iso, ep, si, reward, term, trunc, payload)


def decode_episode(row: tuple[Any, ...]) -> EpisodeRecord:
    """EpisodeRecord from a row selected with ``EPISODE_READ_COLUMNS``."""
    (run_id, agent_id, ep, seq_id, ts_iso, total_reward, length, term, trunc,
     outcome, metadata, extra) = row
    payload = _payload((
        ("episode_index", ep, None), ("total_reward", total_reward, None), ("length", length, None),
        ("terminated", term, bool), ("truncated", trunc, bool), ("outcome", outcome, None),
        ("metadata", metadata, load_json),
    ), extra)
    if extra is not None and total_reward == 0.0:
        total_reward = payload.get("total_reward", total_reward)  # -0.0 keeps its sign in the extras
    return EpisodeRecord(
        run_id, loaded_agent(agent_id), ep, seq_id, ts_iso, total_reward, length, _bool(term), _bool(trunc),
        outcome, payload,
    )



# The declared generic columns (``tables``), when there are any: the hand-written encoders and
# decoders above handle the columns before them, and these wrappers the rest. Chosen once at
# import, so a table without generic columns (today's) pays nothing on the hot path.
_encode_step_core, _encode_episode_core = encode_step, encode_episode
_decode_step_core, _decode_episode_core = decode_step, decode_episode

if _STEP_GENERIC:
    def encode_step(evt: TelemetryEvent) -> tuple[Any, ...]:  # noqa: F811
        """Row of ``steps`` for a STEP_APPENDED event, the declared generic columns at the end."""
        return _with_generic(_encode_step_core(evt), evt.payload, _STEP_GENERIC, _STEP_EXTRA_AT)

    def decode_step(row: tuple[Any, ...]) -> StepRecord:  # noqa: F811
        """StepRecord from a row selected with ``STEP_READ_COLUMNS`` (generic columns included)."""
        record = _decode_step_core(row[:_N_STEP_READ])
        _generic_payload(record.payload, _STEP_GENERIC, row[_N_STEP_READ:])  # type: ignore[arg-type]
        return record

if _EPISODE_GENERIC:
    def encode_episode(evt: TelemetryEvent) -> tuple[Any, ...]:  # noqa: F811
        """Row of ``episodes`` for an EPISODE_FINALIZED event, the declared generic columns at the end."""
        return _with_generic(_encode_episode_core(evt), evt.payload, _EPISODE_GENERIC, _EPISODE_EXTRA_AT)

    def decode_episode(row: tuple[Any, ...]) -> EpisodeRecord:  # noqa: F811
        """EpisodeRecord from a row selected with ``EPISODE_READ_COLUMNS`` (generic columns included)."""
        record = _decode_episode_core(row[:_N_EPISODE_READ])
        _generic_payload(record.payload, _EPISODE_GENERIC, row[_N_EPISODE_READ:])  # type: ignore[arg-type]
        return record

#: Columns read by ``decode_run_event``, in order.
RUN_EVENT_READ = "run_id, agent_id, seq_id, topic, ts_iso, payload_json"


def decode_run_event(row: tuple[Any, ...]) -> TelemetryEvent:
    """The event of a ``run_events`` row selected with ``RUN_EVENT_READ`` (more columns may follow).

    A payload that is not a JSON object (a quarantined one) comes back as ``{"value": ...}``.
    """
    run_id, agent_id, seq_id, topic, ts_iso, payload_json = row[:6]
    value = load_json(payload_json)
    return TelemetryEvent(Topic[topic], run_id, loaded_agent(agent_id), seq_id, ts_iso,
                          value if isinstance(value, dict) else {"value": value})
