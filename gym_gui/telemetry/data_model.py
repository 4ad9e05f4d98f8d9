"""The existing gym_gui's telemetry records and episode ids, for the store's record API (Qt-free).

``StepRecord`` and ``EpisodeRollup`` have exactly the fields, order and defaults of the existing
application's ``gym_gui.core.data_model.telemetry_core`` classes (``slots=True`` dataclasses; callers
use ``dataclasses.replace`` on them). Inside that application the store takes and returns ITS
classes: ``record_classes()`` imports them on first use and falls back to the classes here when
that module does not exist. The event-based API has its own, different read records in
``sqlite_records`` (``sqlite_records.StepRecord`` / ``EpisodeRecord``); import this module
qualified (``from gym_gui.telemetry import data_model``) where both are in reach.

Episode ids: ``{run_id}-ep{index:06d}``, or ``{run_id}-w{worker}-ep{index:06d}`` with a worker.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
from datetime import datetime, timezone
from typing import Any, Mapping, NamedTuple

__all__ = [
    "EpisodeId",
    "EpisodeRollup",
    "StepRecord",
    "format_episode_id",
    "parse_episode_id",
    "record_classes",
]


def _now_utc() -> datetime:
    return datetime.now(timezone.utc)


@dataclasses.dataclass(slots=True)
class StepRecord:
    """One environment step as the existing gym_gui stores it (mutable; use ``dataclasses.replace``)."""

    episode_id: str
    step_index: int
    action: int | None
    observation: Any
    reward: float
    terminated: bool
    truncated: bool
    info: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    timestamp: datetime = dataclasses.field(default_factory=_now_utc)
    render_payload: Any | None = None
    agent_id: str | None = None
    render_hint: Mapping[str, Any] | None = None
    frame_ref: str | None = None
    obs_ref: str | None = None
    payload_version: int = 0
    run_id: str | None = None
    worker_id: str | None = None
    time_step: int | None = None
    space_signature: Mapping[str, Any] | None = None
    vector_metadata: Mapping[str, Any] | None = None


@dataclasses.dataclass(slots=True)
class EpisodeRollup:
    """One finished episode as the existing gym_gui stores it (mutable; use ``dataclasses.replace``)."""

    episode_id: str
    total_reward: float
    steps: int
    terminated: bool
    truncated: bool
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    timestamp: datetime = dataclasses.field(default_factory=_now_utc)
    agent_id: str | None = None
    run_id: str | None = None
    game_id: str | None = None
    worker_id: str | None = None


_HOST_MODULE = "gym_gui.core.data_model.telemetry_core"
_log = logging.getLogger(__name__)
_classes: tuple[type, type] | None = None
_classes_lock = threading.Lock()


def record_classes() -> tuple[type, type]:
    """``(StepRecord, EpisodeRollup)`` the store returns: the host app's, or this module's. Any thread.

    Imported lazily, on the first call (``gym_gui.core.data_model.telemetry_core`` imports the store's
    package in the host app, so importing it at module level would be a cycle), then cached. When
    the host module exists but fails to import (logged), this module's classes are returned and the
    import is tried again on the next call.
    """
    global _classes
    found = _classes
    if found is not None:
        return found
    with _classes_lock:
        if _classes is None:
            try:
                from gym_gui.core.data_model.telemetry_core import EpisodeRollup as HostRollup
                from gym_gui.core.data_model.telemetry_core import StepRecord as HostStep
            except ModuleNotFoundError as exc:
                if exc.name is not None and _HOST_MODULE.startswith(exc.name):  # no host app: ours, for good
                    _classes = (StepRecord, EpisodeRollup)
                    return _classes
                _log.warning("record classes: %s failed to import (%s); using gym_gui.telemetry.data_model's",
                             _HOST_MODULE, exc)
                return (StepRecord, EpisodeRollup)
            except ImportError as exc:  # e.g. a cycle while the host module is still importing: try again later
                _log.warning("record classes: %s failed to import (%s); using gym_gui.telemetry.data_model's",
                             _HOST_MODULE, exc)
                return (StepRecord, EpisodeRollup)
            _classes = (HostStep, HostRollup)
        return _classes


class EpisodeId(NamedTuple):
    """The parts of a canonical episode id."""

    run_id: str
    worker_id: str | None
    episode_index: int


def format_episode_id(run_id: str, episode_index: int, worker_id: str | None = None) -> str:
    """``{run_id}-ep{index:06d}``, or ``{run_id}-w{worker}-ep{index:06d}`` when ``worker_id`` is non-empty. Pure."""
    if worker_id:
        return f"{run_id}-w{worker_id}-ep{int(episode_index):06d}"
    return f"{run_id}-ep{int(episode_index):06d}"


_WORKER_FORM = re.compile(r"^(?P<run>.+)-w(?P<worker>[^-]+)-ep(?P<index>\d+)$")
_PLAIN_FORM = re.compile(r"^(?P<run>.+)-ep(?P<index>\d+)$")
_TAIL = re.compile(r"^(?:w(?P<worker>.+)-)?ep(?P<index>\d+)$")


def parse_episode_id(episode_id: Any, run_id: str | None = None) -> EpisodeId | None:
    """The parts of a canonical episode id, or None. Pure.

    With ``run_id`` the id must start with ``{run_id}-`` and the rest is parsed exactly (a run id may
    itself contain ``-w``). Without it, the worker form ``{run}-w{worker}-ep{index}`` (worker without
    ``-``) is tried first, then ``{run}-ep{index}``.
    """
    if type(episode_id) is not str or not episode_id:
        return None
    if run_id:
        prefix = run_id + "-"
        if not episode_id.startswith(prefix):
            return None
        tail = _TAIL.match(episode_id[len(prefix):])
        if tail is None:
            return None
        return EpisodeId(run_id, tail.group("worker"), int(tail.group("index")))
    found = _WORKER_FORM.match(episode_id)
    if found is not None:
        return EpisodeId(found.group("run"), found.group("worker"), int(found.group("index")))
    found = _PLAIN_FORM.match(episode_id)
    if found is not None:
        return EpisodeId(found.group("run"), None, int(found.group("index")))
    return None
