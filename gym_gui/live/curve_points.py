"""One episode as the learning curves see it, and the pure rules that read it from a payload. Qt-free.

Success (``episode_success``): the worker's own boolean, if any, wins: ``success`` or ``is_success``
in the payload or in its ``metadata`` (Gymnasium's ``info["is_success"]`` convention). Else the
``outcome`` text our workers write: ``success`` counts 1, ``failure`` / ``failed`` / ``truncated``
count 0. Else a terminated episode with a positive return counts 1, another terminated or truncated
episode 0. An episode that says none of this is NaN and left out of the rate.
"""

from __future__ import annotations

import math
from datetime import datetime
from collections.abc import Mapping
from typing import Any, NamedTuple

__all__ = [
    "META_SKIP",
    "EpisodePoint",
    "episode_success",
    "iso_to_epoch_s",
    "num",
    "numeric_fields",
    "point_from_payload",
]

_NAN = math.nan
_SUCCESS_OUTCOMES = {"success": 1.0, "succeeded": 1.0, "failure": 0.0, "failed": 0.0, "truncated": 0.0}
#: Metadata numbers that are not worth a chart: ids and seeds.
META_SKIP = frozenset({"seed", "episode_seed", "env_seed", "pid", "worker_id", "episode_index"})


class EpisodePoint(NamedTuple):
    """One episode as the curves need it (NaN for a missing number)."""

    episode_index: int
    total_reward: float
    length: float
    success: float
    wall_s: float
    metadata: Mapping[str, float]


def num(value: Any) -> float:
    """A finite int/float as float, anything else (bools, NaN, text) NaN. Pure."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _NAN
    value = float(value)
    return value if math.isfinite(value) else _NAN


def numeric_fields(mapping: Any, *, skip: frozenset[str] = frozenset()) -> dict[str, float]:
    """The finite int/float values of a mapping's top-level keys (bools excluded). Pure."""
    if type(mapping) is not dict and not isinstance(mapping, Mapping):  # (a dict: no ABC check)
        return {}
    out: dict[str, float] = {}
    for key, value in mapping.items():
        if type(key) is str and key not in skip:
            number = num(value)
            if not math.isnan(number):
                out[key] = number
    return out


def iso_to_epoch_s(ts_iso: Any) -> float:
    """Epoch seconds of an ISO-8601 text (naive texts are taken as UTC), NaN if unreadable. Pure."""
    if type(ts_iso) is not str:
        return _NAN
    try:
        stamp = datetime.fromisoformat(ts_iso.replace("Z", "+00:00"))
    except ValueError:
        return _NAN
    if stamp.tzinfo is None:
        return (stamp - datetime(1970, 1, 1)).total_seconds()
    return stamp.timestamp()


def episode_success(payload: Mapping[str, Any]) -> float:
    """1.0, 0.0 or NaN (unknown) for an EPISODE_FINALIZED payload; rule in the module doc. Pure."""
    metadata = payload.get("metadata")
    for source in (payload, metadata if type(metadata) is dict or isinstance(metadata, Mapping) else {}):
        for key in ("success", "is_success"):
            value = source.get(key)
            if type(value) is bool:
                return 1.0 if value else 0.0
    outcome = payload.get("outcome")
    if isinstance(outcome, str) and outcome.lower() in _SUCCESS_OUTCOMES:
        return _SUCCESS_OUTCOMES[outcome.lower()]
    if payload.get("terminated") is True:
        total = num(payload.get("total_reward"))
        return 1.0 if total > 0 else 0.0
    if payload.get("truncated") is True:
        return 0.0
    return _NAN


def point_from_payload(payload: Mapping[str, Any], ts_iso: Any) -> EpisodePoint | None:
    """The curve point of an EPISODE_FINALIZED payload, None without an integer episode_index. Pure."""
    index = payload.get("episode_index")
    if type(index) is not int:
        return None
    return EpisodePoint(index, num(payload.get("total_reward")), num(payload.get("length")),
                        episode_success(payload), iso_to_epoch_s(ts_iso), numeric_fields(payload.get("metadata")))
