"""StepRecord / EpisodeRollup <-> rows of our steps and episodes tables (Qt-free, pure functions).

A record is written as the payload an event of the same step would carry, so the event-based
reads (``steps_for_episode``, ``events_after``, ``episode_records``) see record rows like any other
and the record reads see event rows as records:

- step columns: ``episode_index`` (parsed from ``episode_id``), ``step_index``, ``action``,
  ``observation``, ``reward``, ``terminated``, ``truncated``, ``info``, ``render_payload``;
- episode columns: ``episode_index``, ``total_reward``, ``length`` (= ``steps``), the flags, ``metadata``;
- a numpy array ``observation`` is stored as its list, with ``observation_array`` (dtype, shape)
  in ``extra_json``, and read back as an array of that dtype and shape;
- ``extra_json``: the record fields our columns lack, only when they differ from the default:
  ``episode_id`` (only when it is not ``format_episode_id(run_id, episode_index, worker_id)``),
  ``worker_id``, ``render_hint``, ``frame_ref``, ``obs_ref``, ``payload_version``, ``time_step``,
  ``space_signature``, ``vector_metadata``, an episode's ``game_id``, and a producer's ``seq_id``
  (an input object that has one) as ``producer_seq_id``; an input's ``producer_extra`` (the event
  payload's keys the record has no field for, from TelemetryDBSink) as it is.
- an input's ``producer_episode_index`` is the row's ``episode_index`` when its episode_id names none.

Numbers are normalised at this boundary (numpy ints and floats, and numeric strings as SQLite's
column affinity would read them, become int and float), so the typed columns hold them. Any input is duck-typed: any object with the record's attribute names.
"""

from __future__ import annotations

import functools
import logging
import numbers
import operator
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, NamedTuple

from gym_gui.telemetry.data_model import format_episode_id, parse_episode_id, record_classes
from gym_gui.telemetry.sqlite_records import EpisodeRecord as EventEpisodeRecord
from gym_gui.telemetry.sqlite_records import StepRecord as EventStepRecord
from gym_gui.telemetry.sqlite_rows import _dict_step_columns, dump_json, stored_agent

__all__ = [
    "EncodedEpisode",
    "EncodedStep",
    "effective_episode_id",
    "encode_episode_record",
    "encode_step_record",
    "episode_from_row",
    "iso_text",
    "parse_iso",
    "step_from_row",
]

_log = logging.getLogger(__name__)
_MISSING: Any = object()

#: Step record fields kept in ``extra_json`` (with their defaults: equal values are not stored).
_STEP_EXTRAS: tuple[tuple[str, Any], ...] = (
    ("worker_id", None), ("render_hint", None), ("frame_ref", None), ("obs_ref", None),
    ("payload_version", 0), ("time_step", None), ("space_signature", None), ("vector_metadata", None),
)


class EncodedStep(NamedTuple):
    """A step record ready to be written; ``seq_id`` is assigned in the write transaction.

    ``columns``: ``episode_index`` .. ``extra_json`` of the steps table, then ``ts_iso``.
    ``dedupe_id``: the episode id the (episode_id, step_index) rule applies to, or '' (never deduped).
    """

    run_id: str
    agent_id: str
    dedupe_id: str
    columns: tuple[Any, ...]
    size_bytes: int
    errors: int


class EncodedEpisode(NamedTuple):
    """An episode rollup ready to be written; the key index is settled in the write transaction."""

    run_id: str
    agent_id: str
    episode_id: str
    episode_index: int | None
    worker_id: str | None
    payload: dict[str, Any]
    ts_iso: str
    errors: int


def iso_text(value: Any) -> str:
    """Stored time text of a record timestamp: ``isoformat()`` of a datetime, a str as it is, else now (UTC)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if type(value) is str and value:
        return value
    return datetime.now(timezone.utc).isoformat()


def parse_iso(text: Any) -> datetime:
    """Read-back timestamp: ``fromisoformat`` (``Z`` accepted); empty or unreadable text gives naive UTC now."""
    if type(text) is str and text:
        try:
            return datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
        except ValueError:
            pass
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _text_or_none(value: Any) -> str | None:
    """A run or agent id as text; None and ``''`` are None."""
    if value is None or value == "":
        return None
    return value if type(value) is str else str(value)


def _as_int(value: Any) -> Any:
    """An integral value as int (numpy ints, digit strings as SQLite's INTEGER affinity reads them)."""
    if type(value) is int or isinstance(value, bool) or value is None:
        return value
    if type(value) is str:
        try:
            return int(value.strip())
        except ValueError:
            return value
    try:
        return operator.index(value)
    except TypeError:
        return value


def _as_float(value: Any) -> Any:
    """A real value as float (numpy floats, numeric strings as SQLite's REAL affinity reads them)."""
    if type(value) is float or isinstance(value, bool) or value is None:
        return value
    if isinstance(value, numbers.Real):
        return float(value)
    if type(value) is str:
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _as_bool(value: Any) -> Any:
    if type(value) is bool or value is None:
        return value
    dtype = getattr(value, "dtype", None)
    if isinstance(value, numbers.Integral) or getattr(dtype, "kind", None) == "b":
        return bool(value)
    return value


@functools.lru_cache(maxsize=1024)
def _parsed(episode_id: str, run_id: str | None) -> Any:
    """``parse_episode_id``, cached: consecutive steps share their episode id."""
    return parse_episode_id(episode_id, run_id)


def _step_columns(payload: dict[str, Any]) -> tuple[tuple[Any, ...], int]:
    """``_dict_step_columns`` of ``payload``; values JSON cannot encode are first replaced (``_checked``)."""
    try:
        return _dict_step_columns(payload), 0
    except (TypeError, ValueError, RecursionError):
        errors = _checked(payload)
        return _dict_step_columns(payload), errors


def _checked(payload: dict[str, Any]) -> int:
    """Replace values JSON cannot encode by a text naming them (counted, logged); returns how many."""
    errors = 0
    for key, value in payload.items():
        if value is None or type(value) in (int, float, str, bool):
            continue
        try:
            dump_json(value)
        except (TypeError, ValueError, RecursionError) as exc:
            payload[key] = f"<unencodable {type(value).__name__}: {value!r:.200}>"
            _log.warning("record field %r cannot be stored as JSON (%s); kept as its repr", key, exc)
            errors += 1
    return errors


def encode_step_record(record: Any, producer_seq_id: Any = None) -> EncodedStep:
    """The row parts of a step record (any object with StepRecord's attributes). Any thread; pure.

    ``producer_seq_id``: the producer's seq_id of the event (else the record's ``seq_id`` attribute, if any).
    """
    get = getattr
    episode_id = get(record, "episode_id", "")
    run_id = _text_or_none(get(record, "run_id", None))
    parsed = _parsed(episode_id, run_id) if type(episode_id) is str else None
    if run_id is None:
        run_id = parsed.run_id if parsed is not None else ""
    worker_id = get(record, "worker_id", None)
    payload: dict[str, Any] = {}
    episode_index = None
    if parsed is not None:
        episode_index = payload["episode_index"] = parsed.episode_index
    else:
        episode_index = _producer_episode_index(record)
        if episode_index is not None:
            payload["episode_index"] = episode_index
    payload["step_index"] = _as_int(get(record, "step_index", None))
    action = get(record, "action", None)
    payload["action"] = _as_int(action) if isinstance(action, numbers.Integral) else action
    observation = payload["observation"] = get(record, "observation", None)
    array = _array_form(observation)
    if array is not None:
        payload["observation_array"] = array
    payload["reward"] = _as_float(get(record, "reward", None))
    payload["terminated"] = _as_bool(get(record, "terminated", None))
    payload["truncated"] = _as_bool(get(record, "truncated", None))
    info = get(record, "info", None)
    payload["info"] = info if type(info) is dict else {} if info is None else dict(info) if isinstance(
        info, Mapping) else info
    payload["render_payload"] = get(record, "render_payload", None)
    if type(episode_id) is not str or episode_index is None or episode_id != format_episode_id(
            run_id, episode_index, worker_id):
        payload["episode_id"] = episode_id if type(episode_id) is str else "" if episode_id is None else str(episode_id)
    for name, default in _STEP_EXTRAS:
        value = get(record, name, default)
        if value is not default and value != default:
            payload[name] = value
    producer_seq = producer_seq_id if producer_seq_id is not None else get(record, "seq_id", None)
    if producer_seq is not None:
        payload["producer_seq_id"] = producer_seq
    producer_extra = get(record, "producer_extra", None)
    if producer_extra:
        payload["producer_extra"] = producer_extra
    columns, errors = _step_columns(payload)
    (ep, si, action_json, observation_json, reward, term, trunc, info_json, render_json, extra) = columns
    size = sum(len(t) for t in (action_json, observation_json, info_json, render_json, extra) if t is not None)
    dedupe = episode_id if type(episode_id) is str else ""
    return EncodedStep(
        run_id, stored_agent(_text_or_none(get(record, "agent_id", None))), dedupe,
        (ep, si, action_json, observation_json, reward, term, trunc, info_json, render_json, extra,
         iso_text(get(record, "timestamp", None))),
        size, errors,
    )


def _producer_episode_index(record: Any) -> int | None:
    """The ``producer_episode_index`` attribute (TelemetryDBSink's records: the event payload's
    ``episode_index``), used when the episode_id names no index. Pure."""
    value = getattr(record, "producer_episode_index", None)
    return value if type(value) is int else None


def _metadata_index(metadata: Any) -> int | None:
    if not isinstance(metadata, Mapping) or "episode_index" not in metadata:
        return None
    try:
        return int(metadata["episode_index"])
    except (TypeError, ValueError, OverflowError):
        return None


def encode_episode_record(rollup: Any, producer_seq_id: Any = None) -> EncodedEpisode:
    """The parts of an episode rollup (any object with EpisodeRollup's attributes). Any thread; pure.

    ``episode_index`` = ``int(metadata["episode_index"])``, else the index parsed from ``episode_id``;
    a missing ``run_id`` / ``worker_id`` is filled from the parsed id.
    """
    get = getattr
    episode_id = get(rollup, "episode_id", "")
    run_id = _text_or_none(get(rollup, "run_id", None))
    parsed = parse_episode_id(episode_id, run_id)
    if run_id is None:
        run_id = parsed.run_id if parsed is not None else ""
    worker_id = get(rollup, "worker_id", None) or (parsed.worker_id if parsed is not None else None)
    metadata = get(rollup, "metadata", None)
    index = _metadata_index(metadata)
    if index is None and parsed is not None:
        index = parsed.episode_index
    if index is None:
        index = _producer_episode_index(rollup)
    payload: dict[str, Any] = {
        "total_reward": _as_float(get(rollup, "total_reward", None)),
        "length": _as_int(get(rollup, "steps", None)),
        "terminated": _as_bool(get(rollup, "terminated", None)),
        "truncated": _as_bool(get(rollup, "truncated", None)),
        "metadata": {} if metadata is None else dict(metadata) if isinstance(metadata, Mapping) else metadata,
    }
    if worker_id is not None:
        payload["worker_id"] = worker_id
    game_id = get(rollup, "game_id", None)
    if game_id is not None:
        payload["game_id"] = game_id
    producer_seq = producer_seq_id if producer_seq_id is not None else get(rollup, "seq_id", None)
    if producer_seq is not None:
        payload["producer_seq_id"] = producer_seq
    producer_extra = get(rollup, "producer_extra", None)
    if producer_extra:
        payload["producer_extra"] = producer_extra
    errors = _checked(payload)
    return EncodedEpisode(
        run_id, stored_agent(_text_or_none(get(rollup, "agent_id", None))),
        episode_id if type(episode_id) is str else "",
        index, worker_id, payload, iso_text(get(rollup, "timestamp", None)), errors,
    )


def effective_episode_id(run_id: str, episode_index: int | None, payload: Mapping[str, Any]) -> str:
    """The episode id of a stored row: its kept ``episode_id``, else the canonical id, else ''."""
    kept = payload.get("episode_id", _MISSING)
    if kept is not _MISSING:
        return kept if type(kept) is str else "" if kept is None else str(kept)
    if type(episode_index) is int and episode_index >= 0:
        worker = payload.get("worker_id")
        return format_episode_id(run_id, episode_index, worker if worker else None)
    return ""


def _array_form(value: Any) -> dict[str, Any] | None:
    """``{"dtype", "shape"}`` of a numpy array (stored beside its list form, so it reads back as an array)."""
    dtype = getattr(value, "dtype", None)
    shape = getattr(value, "shape", None)
    if dtype is None or type(shape) is not tuple or type(value).__module__ != "numpy" or dtype.kind in "OVSUMm":
        return None
    return {"dtype": dtype.str, "shape": list(shape)}


def _observation(payload: Mapping[str, Any]) -> Any:
    observation = payload.get("observation")
    array = payload.get("observation_array")
    if not isinstance(array, dict):
        return observation
    try:
        import numpy

        return numpy.asarray(observation, dtype=numpy.dtype(array["dtype"])).reshape(array["shape"])
    except Exception:  # numpy missing, or not an array's form after all: the value as stored
        return observation


def _int_or(value: Any, default: int) -> int:
    return value if type(value) is int else default


def step_from_row(row: EventStepRecord) -> Any:
    """The StepRecord (the host's class when present) of a decoded steps row. Any thread; pure."""
    step_cls, _ = record_classes()
    p = row.payload
    info = p.get("info")
    reward = p.get("reward")
    version = p.get("payload_version")
    return step_cls(
        episode_id=effective_episode_id(row.run_id, row.episode_index, p),
        step_index=_int_or(p.get("step_index"), 0),
        action=p.get("action"),
        observation=_observation(p),
        reward=float(reward) if isinstance(reward, (int, float)) else 0.0,
        terminated=bool(p.get("terminated", False)),
        truncated=bool(p.get("truncated", False)),
        info=info if isinstance(info, dict) else {},
        timestamp=parse_iso(row.ts_iso),
        render_payload=p.get("render_payload"),
        agent_id=row.agent_id,
        render_hint=p.get("render_hint"),
        frame_ref=p.get("frame_ref"),
        obs_ref=None,
        payload_version=version if type(version) is int else 0,
        run_id=row.run_id,
        worker_id=p.get("worker_id"),
        time_step=p.get("time_step"),
        space_signature=p.get("space_signature"),
        vector_metadata=p.get("vector_metadata"),
    )


def episode_from_row(row: EventEpisodeRecord) -> Any:
    """The EpisodeRollup (the host's class when present) of a decoded episodes row. Any thread; pure."""
    _, rollup_cls = record_classes()
    p = row.payload
    metadata = p.get("metadata")
    reward = p.get("total_reward")
    return rollup_cls(
        episode_id=effective_episode_id(row.run_id, row.episode_index, p),
        total_reward=float(reward) if isinstance(reward, (int, float)) else 0.0,
        steps=_int_or(p.get("length"), 0),
        terminated=bool(p.get("terminated", False)),
        truncated=bool(p.get("truncated", False)),
        metadata=metadata if isinstance(metadata, dict) else {},
        timestamp=parse_iso(row.ts_iso),
        agent_id=row.agent_id,
        run_id=row.run_id,
        game_id=p.get("game_id"),
        worker_id=p.get("worker_id"),
    )
