"""Read-side records returned by TelemetrySQLiteStore (Qt-free, immutable, safe to pass between threads).

Each record carries the typed column values (``None`` where the payload had no valid value) and
``payload``: the event payload as the worker sent it (JSON round-tripped), so nothing is lost.
"""

from __future__ import annotations

from typing import Any, Mapping

import attrs

from gym_gui.telemetry.events import TelemetryEvent, Topic

__all__ = ["EpisodeRecord", "RunRecord", "StepRecord", "StepRecordBuilder"]

_STEP_FIELDS = ("run_id", "agent_id", "seq_id", "ts_iso", "episode_index", "step_index", "reward", "terminated",
                "truncated", "payload")


class _StepSlots:
    """The storage of ``StepRecord``: its fields' slots (and a weak reference slot), shared with
    ``StepRecordBuilder`` so that a built record can become a ``StepRecord``."""

    __slots__ = (*_STEP_FIELDS, "__weakref__")


@attrs.frozen(slots=True)
class StepRecord(_StepSlots):
    """One stored STEP_APPENDED event."""

    run_id: str
    agent_id: str | None
    seq_id: int
    ts_iso: str
    episode_index: int | None
    step_index: int | None
    reward: float | None
    terminated: bool | None
    truncated: bool | None
    payload: Mapping[str, Any]

    @property
    def action(self) -> Any:
        """The step's action (decoded JSON), or None."""
        return self.payload.get("action")

    @property
    def observation(self) -> Any:
        """The step's observation (decoded JSON), or None."""
        return self.payload.get("observation")

    @property
    def info(self) -> Any:
        """The step's info dict, or None."""
        return self.payload.get("info")

    @property
    def render_payload(self) -> Any:
        """The step's render payload (dict), or None."""
        return self.payload.get("render_payload")

    def to_event(self) -> TelemetryEvent:
        """The STEP_APPENDED event this row was stored from."""
        return TelemetryEvent(Topic.STEP_APPENDED, self.run_id, self.agent_id, self.seq_id, self.ts_iso, self.payload)


class StepRecordBuilder(_StepSlots):
    """A ``StepRecord`` being made by the hot reads: its slots set by plain attribute stores (which
    the frozen record refuses), then ``obj.__class__ = StepRecord``; the record is the one
    ``StepRecord(...)`` gives for those values (``step_reads`` checks it at import and uses
    ``StepRecord(...)`` otherwise). Any thread, on its own objects."""

    __slots__ = ()


@attrs.frozen(slots=True)
class EpisodeRecord:
    """One stored EPISODE_FINALIZED event; ``agent_id`` is never NULL in the table."""

    run_id: str
    agent_id: str | None
    episode_index: int
    seq_id: int
    ts_iso: str
    total_reward: float | None
    length: int | None
    terminated: bool | None
    truncated: bool | None
    outcome: str | None
    payload: Mapping[str, Any]

    @property
    def metadata(self) -> Any:
        """The episode's metadata dict, or None."""
        return self.payload.get("metadata")

    def to_event(self) -> TelemetryEvent:
        """The EPISODE_FINALIZED event this row was stored from."""
        return TelemetryEvent(
            Topic.EPISODE_FINALIZED, self.run_id, self.agent_id, self.seq_id, self.ts_iso, self.payload
        )


@attrs.frozen(slots=True)
class RunRecord:
    """One run: lifecycle state folded from RUN_STARTED / RUN_HEARTBEAT / RUN_COMPLETED and data events.

    ``status`` is ``running`` (started, or data seen), ``completed``, ``failed`` or ``cancelled``.
    Timestamps are the events' ISO-8601 ``ts_iso``; ``created_at`` is the first event's time.
    """

    run_id: str
    status: str
    outcome: str | None
    env_id: str | None
    config: Any
    created_at: str
    started_at: str | None
    completed_at: str | None
    last_heartbeat_at: str | None
    last_heartbeat: Any
    exit_code: int | None
    signal: str | None
    stderr_tail: str | None
    summary: Any
    updated_at: str
    agent_ids: tuple[str | None, ...]

    @property
    def is_terminal(self) -> bool:
        """True once a RUN_COMPLETED was stored, or the run was found ``interrupted`` (its writer ended)."""
        return self.status in ("completed", "failed", "cancelled", "interrupted")
