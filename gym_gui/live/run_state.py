"""RunStatus and RunState: what the RunRegistry knows about one run (Qt-free, immutable)."""

from __future__ import annotations

import enum
from typing import Any

import attrs

__all__ = ["OUTCOMES", "SEVERITY", "RunState", "RunStatus", "TERMINAL_STATUSES", "outcome_severity", "status_for_outcome"]


class RunStatus(str, enum.Enum):
    """Where a run stands. The value is the text the registry's ``status_changed`` signal carries."""

    PENDING = "pending"
    RUNNING = "running"
    STALLED = "stalled"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    #: Its writer ended without completing it (a killed GUI or CLI): found stale when the file was opened.
    INTERRUPTED = "interrupted"

    @property
    def is_terminal(self) -> bool:
        """True for completed, failed, cancelled and interrupted: such a run does not stall. Only an
        interrupted run changes back (to running) when a writer of it speaks again."""
        return self in TERMINAL_STATUSES

    def __str__(self) -> str:
        return self.value


TERMINAL_STATUSES = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.INTERRUPTED})

#: The outcomes a run can be finished with (``RunRegistry.update_run_outcome``, RUN_COMPLETED ``outcome``).
OUTCOMES = ("completed", "failed", "cancelled")

#: When several agents of one run complete, the most severe outcome wins (as in the store's runs row);
#: any completion replaces ``interrupted``.
SEVERITY = {RunStatus.INTERRUPTED: 0, RunStatus.COMPLETED: 1, RunStatus.CANCELLED: 2, RunStatus.FAILED: 3}


def outcome_severity(outcome: Any) -> int:
    """The ``SEVERITY`` of a RUN_COMPLETED ``outcome``: a later completion counts only when higher."""
    return SEVERITY[status_for_outcome(outcome)]


def status_for_outcome(outcome: Any) -> RunStatus:
    """The terminal status of a RUN_COMPLETED ``outcome``; a missing or unknown outcome is completed."""
    if outcome == "failed":
        return RunStatus.FAILED
    if outcome == "cancelled":
        return RunStatus.CANCELLED
    return RunStatus.COMPLETED


@attrs.frozen(slots=True)
class RunState:
    """A snapshot of one run. Timestamps are the events' ISO-8601 ``ts_iso`` texts.

    ``agent_ids`` lists the run's streams in the order the registry learnt of them (a stream
    without agent id is not listed: ``anonymous_stream`` says the run has one);
    ``last_event_at`` is the time of the newest event seen (for a run only known from SQLite: the
    stored row's latest lifecycle time). ``has_lifecycle`` is True once the run sent RUN_STARTED
    or a heartbeat (live or stored); a run without (e.g. the existing gym_gui's producers) is finished by
    ``RunRegistry.update_run_outcome`` and stalls after the idle timeout. ``reason`` is the
    reason given with the outcome, if any (``summary["reason"]`` once stored).
    """

    run_id: str
    status: RunStatus
    env_id: str | None = None
    agent_ids: tuple[str, ...] = ()
    outcome: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    last_event_at: str | None = None
    summary: Any = None
    has_lifecycle: bool = False
    reason: str | None = None
    anonymous_stream: bool = False
