"""RunStateTable: folds bus events, new streams and stored runs into run states (Qt-free).

The RunRegistry owns one table and calls it from the GUI thread; the table itself is plain,
single-threaded Python with the clock passed in, so its rules are testable without Qt. Every
method returns the changes it made, in order, as ``(kind, run_id, value)`` tuples:
``(STATUS, run_id, status_text)`` or ``(STREAM, run_id, agent_id)``.

Rules:
- the first event of a run (any topic but CONTROL and OVERFLOW, which are ignored), or a new
  stream of it, makes it ``running``; RUN_COMPLETED makes it ``completed`` / ``failed`` /
  ``cancelled`` per its ``outcome``. RUN_STARTED is never required;
- terminal states are final: later events do not revive a run. Only a more severe RUN_COMPLETED
  of another agent escalates it (failed > cancelled > completed), as the store's runs row does;
- ``interrupted`` (a stored run whose writer ended without completing it, see
  ``stream_owners.mark_interrupted``) is terminal too (it never stalls), but it is the one that
  changes back: a new event or stream of it makes it ``running`` (a writer resumed the stream),
  and any RUN_COMPLETED finishes it;
- a running run with no event for its stall timeout is ``stalled`` (quiet, not failed); its next
  event (or new stream) makes it ``running`` again. The timeout is ``stall_missed_intervals`` x
  the run's heartbeat interval: its ``config["heartbeat_interval_s"]`` from RUN_STARTED, else the
  latest heartbeat's ``interval_s``, else the default for a run that sent RUN_STARTED or a
  heartbeat. A run that sent neither (steps and episodes only: it has no heartbeats to miss)
  stalls after ``idle_timeout_s`` of silence instead. A pending run (launched, silent so far)
  never stalls;
- a stored run only fills in what live events have not said: live state always wins.

The table also keeps the highest seq_id seen per stream (``next_seq_id``), so an explicit finish
can be published as the stream's next event.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

from gym_gui.live.run_state import SEVERITY, RunState, RunStatus, status_for_outcome
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.sqlite_records import RunRecord

__all__ = ["DEFAULT_IDLE_TIMEOUT_S", "STATUS", "STREAM", "Change", "RunStateTable", "positive_interval_s",
           "reason_of"]

#: Silence after which a run without heartbeats (no RUN_STARTED, no RUN_HEARTBEAT) counts as stalled.
DEFAULT_IDLE_TIMEOUT_S = 10.0
#: Topics that say nothing about a run's own progress (a consumer's credit state, a bus notice).
_IGNORED = frozenset(t for t in (getattr(Topic, "CONTROL", None), Topic.OVERFLOW) if t is not None)
_LIFECYCLE = (Topic.RUN_STARTED, Topic.RUN_HEARTBEAT)

STATUS = "status"
STREAM = "stream"
#: ``(STATUS, run_id, status_text)`` or ``(STREAM, run_id, agent_id)``.
Change = tuple[str, str, str]

_STORED_TERMINAL = {"completed": RunStatus.COMPLETED, "failed": RunStatus.FAILED, "cancelled": RunStatus.CANCELLED,
                    "interrupted": RunStatus.INTERRUPTED}


def _final(status: RunStatus | None) -> bool:
    """A status later activity does not change (terminal, except interrupted)."""
    return status is not None and status.is_terminal and status is not RunStatus.INTERRUPTED


def positive_interval_s(value: Any) -> float | None:
    """``value`` as a finite positive number of seconds, else None."""
    if type(value) not in (int, float) or not math.isfinite(value) or value <= 0:
        return None
    return float(value)


def _later(a: str | None, b: str | None) -> str | None:
    return b if a is None or (b is not None and b > a) else a


def reason_of(payload: Mapping[str, Any] | None, summary: Any = None) -> str | None:
    """The finish reason of a RUN_COMPLETED payload (``reason``), else of its ``summary["reason"]``."""
    reason = payload.get("reason") if payload is not None else None
    if type(reason) is str and reason:
        return reason
    if isinstance(summary, dict):
        reason = summary.get("reason")
        if type(reason) is str and reason:
            return reason
    return None


class _Run:
    """Mutable per-run state inside the table."""

    __slots__ = ("run_id", "status", "env_id", "agent_ids", "outcome", "started_at", "completed_at",
                 "last_event_at", "summary", "config_interval_s", "heartbeat_interval_s", "last_active",
                 "has_lifecycle", "reason", "anonymous_stream", "max_seq")

    def __init__(self, run_id: str, now: float) -> None:
        self.run_id = run_id
        self.status: RunStatus | None = None  # None until the first status is announced
        self.env_id: str | None = None
        self.agent_ids: list[str] = []
        self.outcome: str | None = None
        self.started_at: str | None = None
        self.completed_at: str | None = None
        self.last_event_at: str | None = None
        self.summary: Any = None
        self.config_interval_s: float | None = None
        self.heartbeat_interval_s: float | None = None
        self.last_active = now
        self.has_lifecycle = False  # RUN_STARTED or a heartbeat seen (live or stored)
        self.reason: str | None = None
        self.anonymous_stream = False  # a stream whose agent_id is None
        self.max_seq: dict[str | None, int] = {}  # highest seq_id seen per agent (stream)

    def snapshot(self) -> RunState:
        assert self.status is not None
        return RunState(
            run_id=self.run_id, status=self.status, env_id=self.env_id, agent_ids=tuple(self.agent_ids),
            outcome=self.outcome, started_at=self.started_at, completed_at=self.completed_at,
            last_event_at=self.last_event_at, summary=self.summary, has_lifecycle=self.has_lifecycle,
            reason=self.reason, anonymous_stream=self.anonymous_stream,
        )

    def note_seq(self, agent_id: str | None, seq_id: int) -> None:
        current = self.max_seq.get(agent_id)
        if current is None or seq_id > current:  # (the existing producers also send 0 and -1)
            self.max_seq[agent_id] = seq_id


class RunStateTable:
    """Run states keyed by run_id. One thread only (the registry's); no method blocks."""

    def __init__(self, *, stall_missed_intervals: int = 3, default_heartbeat_interval_s: float = 1.0,
                 idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S) -> None:
        if stall_missed_intervals < 1:
            raise ValueError(f"stall_missed_intervals must be >= 1, got {stall_missed_intervals}")
        default = positive_interval_s(default_heartbeat_interval_s)
        if default is None:
            raise ValueError(f"default_heartbeat_interval_s must be > 0, got {default_heartbeat_interval_s!r}")
        idle = positive_interval_s(idle_timeout_s)
        if idle is None:
            raise ValueError(f"idle_timeout_s must be > 0, got {idle_timeout_s!r}")
        self.stall_missed_intervals = stall_missed_intervals
        self.default_heartbeat_interval_s = default
        self.idle_timeout_s = idle
        self._runs: dict[str, _Run] = {}
        self._running: dict[str, _Run] = {}  # runs whose status is RUNNING: the only ones that can stall

    # -- reads -----------------------------------------------------------------------------------
    def __contains__(self, run_id: object) -> bool:
        return run_id in self._runs

    def __len__(self) -> int:
        return len(self._runs)

    def state(self, run_id: str) -> RunState | None:
        """The run's snapshot, or None if unknown."""
        run = self._runs.get(run_id)
        return None if run is None or run.status is None else run.snapshot()

    def states(self) -> list[RunState]:
        """Every run's snapshot, in the order the table learnt of them."""
        return [run.snapshot() for run in self._runs.values() if run.status is not None]

    def stall_timeout_s(self, run_id: str) -> float | None:
        """Seconds without an event after which the run is stalled, or None if unknown."""
        run = self._runs.get(run_id)
        return None if run is None else self._timeout_s(run)

    def _timeout_s(self, run: _Run) -> float:
        interval = run.config_interval_s or run.heartbeat_interval_s
        if interval is None and not run.has_lifecycle:
            return self.idle_timeout_s  # no heartbeats to miss: silence for the idle timeout
        return self.stall_missed_intervals * (interval or self.default_heartbeat_interval_s)

    def next_seq_id(self, run_id: str, agent_id: str | None) -> int:
        """One more than the highest seq_id seen of stream ``(run_id, agent_id)`` (live or stored), else 1."""
        run = self._runs.get(run_id)
        seen = None if run is None else run.max_seq.get(agent_id)
        return 1 if seen is None else seen + 1

    def finishing_agent(self, run_id: str) -> str | None:
        """The stream an explicit finish of the run is published on: its first agent, else None."""
        run = self._runs.get(run_id)
        if run is None or not run.agent_ids:
            return None
        return run.agent_ids[0]

    # -- changes ---------------------------------------------------------------------------------
    def register_pending(self, run_id: str, now: float) -> list[Change]:
        """A run the app launched whose worker has not spoken yet; no-op for a known run."""
        if run_id in self._runs:
            return []
        run = self._runs[run_id] = _Run(run_id, now)
        changes: list[Change] = []
        self._set_status(run, RunStatus.PENDING, changes)
        return changes

    def apply_event(self, evt: TelemetryEvent, now: float) -> list[Change]:
        """Fold one event seen at ``now``: lifecycle topics by their rules, any other stream event as
        activity; CONTROL and OVERFLOW are ignored (they say nothing about the run's progress)."""
        topic, payload = evt.topic, evt.payload
        if topic in _IGNORED:
            return []
        changes: list[Change] = []
        run = self._run(evt.run_id, now)
        run.note_seq(evt.agent_id, evt.seq_id)
        if _final(run.status):
            if topic is Topic.RUN_COMPLETED:
                self._complete(run, evt, changes)
        else:
            run.last_active = now
            run.last_event_at = _later(run.last_event_at, evt.ts_iso)
            if topic is Topic.RUN_COMPLETED:
                self._complete(run, evt, changes)
            else:
                if topic is Topic.RUN_STARTED:
                    self._started(run, evt)
                elif topic is Topic.RUN_HEARTBEAT:
                    run.heartbeat_interval_s = positive_interval_s(payload.get("interval_s")) or run.heartbeat_interval_s
                if topic in _LIFECYCLE:
                    run.has_lifecycle = True
                self._set_status(run, RunStatus.RUNNING, changes)
        self._add_agent(run, evt.agent_id, changes)
        return changes

    def apply_activity(self, events: Iterable[TelemetryEvent], now: float) -> list[Change]:
        """Fold data events (e.g. one tick's STEP_APPENDED) as activity only: each stream's run is
        ``running`` at ``now`` (a new run, a stalled one again; never a terminal one). Only each
        stream's last event is looked at, so a burst costs one dict update per event."""
        last: dict[tuple[str, str | None], TelemetryEvent] = {(e.run_id, e.agent_id): e for e in events}
        changes: list[Change] = []
        for (run_id, agent_id), evt in last.items():
            run = self._run(run_id, now)
            run.note_seq(agent_id, evt.seq_id)
            if not _final(run.status):
                run.last_active = now
                run.last_event_at = _later(run.last_event_at, evt.ts_iso)
                self._set_status(run, RunStatus.RUNNING, changes)
            self._add_agent(run, agent_id, changes)
        return changes

    def add_stream(self, run_id: str, agent_id: str | None, now: float) -> list[Change]:
        """A stream seen on the bus (its first event was published): activity of a live run."""
        changes: list[Change] = []
        run = self._run(run_id, now)
        if agent_id in run.agent_ids or agent_id is None and run.anonymous_stream:
            return changes
        if not _final(run.status):
            run.last_active = now
            self._set_status(run, RunStatus.RUNNING, changes)
        self._add_agent(run, agent_id, changes)
        return changes

    def merge_stored(self, record: RunRecord, now: float, age_s: float | None,
                     max_seq_ids: Mapping[str | None, int] | None = None) -> list[Change]:
        """Fold a run read from SQLite; ``age_s`` is how long ago its last stored lifecycle event was;
        ``max_seq_ids``: the highest stored seq_id per agent (for ``next_seq_id``).

        An unknown run takes the stored status; a stored non-terminal run that is not live here is
        ``running`` for what is left of its stall window since that event (``stalled`` at once when
        the window is over). A run already known from the bus keeps its status; the stored row only
        fills in fields and streams not seen live.
        """
        changes: list[Change] = []
        known = record.run_id in self._runs
        run = self._run(record.run_id, now)
        run.env_id = run.env_id or record.env_id
        run.started_at = run.started_at or record.started_at
        if run.config_interval_s is None and isinstance(record.config, dict):
            run.config_interval_s = positive_interval_s(record.config.get("heartbeat_interval_s"))
        if run.heartbeat_interval_s is None and isinstance(record.last_heartbeat, dict):
            run.heartbeat_interval_s = positive_interval_s(record.last_heartbeat.get("interval_s"))
        if record.started_at is not None or record.last_heartbeat_at is not None:
            run.has_lifecycle = True
        for agent_id, seq_id in (max_seq_ids or {}).items():
            run.note_seq(agent_id, seq_id)
        stored_terminal = _STORED_TERMINAL.get(record.status)
        if not known or run.status is None:
            run.last_event_at = _later(record.updated_at, record.last_heartbeat_at)
            if stored_terminal is not None:
                self._fill_completion(run, record)
                self._set_status(run, stored_terminal, changes)
            else:
                run.last_active = now - max(0.0, age_s or 0.0)
                stalled = now - run.last_active >= self._timeout_s(run)
                self._set_status(run, RunStatus.STALLED if stalled else RunStatus.RUNNING, changes)
        elif run.status.is_terminal and stored_terminal is not None:
            self._fill_completion(run, record)
        for agent_id in record.agent_ids:
            self._add_agent(run, agent_id, changes)
        return changes

    def check_stalls(self, now: float) -> list[Change]:
        """Mark running runs without an event for their stall timeout as stalled."""
        changes: list[Change] = []
        for run in [r for r in self._running.values() if now - r.last_active >= self._timeout_s(r)]:
            self._set_status(run, RunStatus.STALLED, changes)
        return changes

    # -- helpers ---------------------------------------------------------------------------------
    def _run(self, run_id: str, now: float) -> _Run:
        run = self._runs.get(run_id)
        if run is None:
            run = self._runs[run_id] = _Run(run_id, now)
        return run

    def _set_status(self, run: _Run, status: RunStatus, changes: list[Change]) -> None:
        if run.status is status:
            return
        run.status = status
        if status is RunStatus.RUNNING:
            self._running[run.run_id] = run
        else:
            self._running.pop(run.run_id, None)
        changes.append((STATUS, run.run_id, status.value))

    def _add_agent(self, run: _Run, agent_id: str | None, changes: list[Change]) -> None:
        if agent_id is None:  # a stream without agent id (the existing producers' ''): noted, not announced
            run.anonymous_stream = True
        elif agent_id not in run.agent_ids:
            run.agent_ids.append(agent_id)
            changes.append((STREAM, run.run_id, agent_id))

    @staticmethod
    def _started(run: _Run, evt: TelemetryEvent) -> None:
        payload = evt.payload
        env_id = payload.get("env_id")
        if type(env_id) is str:
            run.env_id = env_id
        config = payload.get("config")
        if isinstance(config, dict):
            run.config_interval_s = positive_interval_s(config.get("heartbeat_interval_s")) or run.config_interval_s
        if run.started_at is None or evt.ts_iso < run.started_at:
            run.started_at = evt.ts_iso

    def _complete(self, run: _Run, evt: TelemetryEvent, changes: list[Change]) -> None:
        payload = evt.payload
        status = status_for_outcome(payload.get("outcome"))
        run.completed_at = _later(run.completed_at, evt.ts_iso)
        if run.status is not None and run.status.is_terminal and SEVERITY[status] <= SEVERITY[run.status]:
            return
        outcome = payload.get("outcome")
        run.outcome = outcome if type(outcome) is str else None
        run.summary = payload.get("summary")
        run.reason = reason_of(payload, run.summary)
        self._set_status(run, status, changes)

    @staticmethod
    def _fill_completion(run: _Run, record: RunRecord) -> None:
        run.outcome = run.outcome or record.outcome
        run.completed_at = run.completed_at or record.completed_at
        if run.summary is None:
            run.summary = record.summary
        run.reason = run.reason or reason_of(None, record.summary)

