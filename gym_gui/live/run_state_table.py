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
  event (or new stream) makes it ``running`` again. The rule is the live view's, one
  ``stall_clock.StallClock`` per run: ``stall_missed_intervals`` x the run's heartbeat interval
  (its ``config["heartbeat_interval_s"]`` from RUN_STARTED, else the latest heartbeat's
  ``interval_s``, else the default) for a run that sent RUN_STARTED or a heartbeat; a run that
  sent neither (steps and episodes only: no heartbeats to miss) stalls after ``idle_timeout_s``
  of silence instead. A pending run (launched, silent so far) never stalls;
- a stored run only fills in what live events have not said: live state always wins.

The table also keeps the highest seq_id seen per stream (``next_seq_id``), so an explicit finish
can be published as the stream's next event, and says when its next stall is due
(``next_deadline_s``), so its owner sleeps until then.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from gym_gui.live.run_state import SEVERITY, RunState, RunStatus, status_for_outcome
from gym_gui.live.stall_clock import StallClock, positive_interval_s
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.sqlite_records import RunRecord
from gym_gui.telemetry.topic_specs import lifecycle_topics, spec

__all__ = ["DEFAULT_IDLE_TIMEOUT_S", "STATUS", "STREAM", "Change", "RunStateTable", "reason_of"]

#: Silence after which a run without heartbeats (no RUN_STARTED, no RUN_HEARTBEAT) counts as stalled.
DEFAULT_IDLE_TIMEOUT_S = 10.0
#: Topics that say nothing about a run's own progress (a consumer's credit state, a bus notice).
_IGNORED = frozenset(t for t in Topic if not spec(t).durable)  # OVERFLOW, CONTROL
#: The lifecycle topics that say a run is alive (RUN_COMPLETED ends it instead).
_LIFECYCLE = tuple(t for t in lifecycle_topics() if t is not Topic.RUN_COMPLETED)

STATUS = "status"
STREAM = "stream"
#: ``(STATUS, run_id, status_text)`` or ``(STREAM, run_id, agent_id)``.
Change = tuple[str, str, str]

_STORED_TERMINAL = {"completed": RunStatus.COMPLETED, "failed": RunStatus.FAILED, "cancelled": RunStatus.CANCELLED,
                    "interrupted": RunStatus.INTERRUPTED}


def _final(status: RunStatus | None) -> bool:
    """A status later activity does not change (terminal, except interrupted)."""
    return status is not None and status.is_terminal and status is not RunStatus.INTERRUPTED


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
                 "last_event_at", "summary", "clock", "configured", "announced", "reason", "anonymous_stream",
                 "max_seq")

    def __init__(self, run_id: str, clock: StallClock) -> None:
        self.run_id = run_id
        self.status: RunStatus | None = None  # None until the first status is announced
        self.env_id: str | None = None
        self.agent_ids: list[str] = []
        self.outcome: str | None = None
        self.started_at: str | None = None
        self.completed_at: str | None = None
        self.last_event_at: str | None = None
        self.summary: Any = None
        self.clock = clock  # the stall rule: intervals, lifecycle seen, last activity
        self.configured = False  # an interval came from RUN_STARTED's config (live or stored)
        self.announced = False  # an interval came from a heartbeat (live or stored)
        self.reason: str | None = None
        self.anonymous_stream = False  # a stream whose agent_id is None
        self.max_seq: dict[str | None, int] = {}  # highest seq_id seen per agent (stream)

    def snapshot(self) -> RunState:
        assert self.status is not None
        return RunState(
            run_id=self.run_id, status=self.status, env_id=self.env_id, agent_ids=tuple(self.agent_ids),
            outcome=self.outcome, started_at=self.started_at, completed_at=self.completed_at,
            last_event_at=self.last_event_at, summary=self.summary, has_lifecycle=self.clock.has_lifecycle,
            reason=self.reason, anonymous_stream=self.anonymous_stream,
        )

    def configure(self, interval_s: Any) -> None:
        if positive_interval_s(interval_s) is not None:
            self.clock.configure(interval_s)
            self.configured = True

    def announce(self, interval_s: Any) -> None:
        if positive_interval_s(interval_s) is not None:
            self.clock.announce(interval_s)
            self.announced = True

    def note_seq(self, agent_id: str | None, seq_id: int) -> None:
        current = self.max_seq.get(agent_id)
        if current is None or seq_id > current:  # (the existing producers also send 0 and -1)
            self.max_seq[agent_id] = seq_id


class RunStateTable:
    """Run states keyed by run_id. One thread only (the registry's); no method blocks."""

    def __init__(self, *, stall_missed_intervals: int = 3, default_heartbeat_interval_s: float = 1.0,
                 idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S) -> None:
        """Raise ValueError unless ``stall_missed_intervals >= 1`` and both times are > 0 (StallClock's checks)."""
        if idle_timeout_s is None or positive_interval_s(idle_timeout_s) is None:
            raise ValueError(f"idle_timeout_s must be > 0, got {idle_timeout_s!r}")
        StallClock(default_heartbeat_interval_s, stall_missed_intervals, idle_timeout_s=idle_timeout_s)  # checks
        self.stall_missed_intervals = stall_missed_intervals
        self.default_heartbeat_interval_s = float(default_heartbeat_interval_s)
        self.idle_timeout_s = float(idle_timeout_s)
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
        return None if run is None else run.clock.timeout_s

    def next_deadline_s(self) -> float | None:
        """The earliest time (the callers' clock) at which ``check_stalls`` can mark a run stalled, or
        None when no run can stall (none running)."""
        deadlines = [d for d in (r.clock.deadline_s() for r in self._running.values()) if d is not None]
        return min(deadlines, default=None)

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
        run = self._runs[run_id] = self._new_run(run_id)
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
        run = self._run(evt.run_id)
        run.note_seq(evt.agent_id, evt.seq_id)
        if _final(run.status):
            if topic is Topic.RUN_COMPLETED:
                self._complete(run, evt, changes)
        else:
            run.clock.note_event(now)
            run.last_event_at = _later(run.last_event_at, evt.ts_iso)
            if topic is Topic.RUN_COMPLETED:
                self._complete(run, evt, changes)
            else:
                if topic is Topic.RUN_STARTED:
                    self._started(run, evt)
                elif topic is Topic.RUN_HEARTBEAT:
                    run.announce(payload.get("interval_s"))
                if topic in _LIFECYCLE:
                    run.clock.note_lifecycle()
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
            run = self._run(run_id)
            run.note_seq(agent_id, evt.seq_id)
            if not _final(run.status):
                run.clock.note_event(now)
                run.last_event_at = _later(run.last_event_at, evt.ts_iso)
                self._set_status(run, RunStatus.RUNNING, changes)
            self._add_agent(run, agent_id, changes)
        return changes

    def add_stream(self, run_id: str, agent_id: str | None, now: float) -> list[Change]:
        """A stream seen on the bus (its first event was published): activity of a live run."""
        changes: list[Change] = []
        run = self._run(run_id)
        if agent_id in run.agent_ids or agent_id is None and run.anonymous_stream:
            return changes
        if not _final(run.status):
            run.clock.note_event(now)
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
        run = self._run(record.run_id)
        run.env_id = run.env_id or record.env_id
        run.started_at = run.started_at or record.started_at
        if not run.configured and isinstance(record.config, dict):  # live news wins over the stored row
            run.configure(record.config.get("heartbeat_interval_s"))
        if not run.announced and isinstance(record.last_heartbeat, dict):
            run.announce(record.last_heartbeat.get("interval_s"))
        if record.started_at is not None or record.last_heartbeat_at is not None:
            run.clock.note_lifecycle()
        for agent_id, seq_id in (max_seq_ids or {}).items():
            run.note_seq(agent_id, seq_id)
        stored_terminal = _STORED_TERMINAL.get(record.status)
        if not known or run.status is None:
            run.last_event_at = _later(record.updated_at, record.last_heartbeat_at)
            if stored_terminal is not None:
                self._fill_completion(run, record)
                self._set_status(run, stored_terminal, changes)
            else:
                run.clock.note_event(now - max(0.0, age_s or 0.0))  # its last news, not now
                stalled = run.clock.check(now)
                self._set_status(run, RunStatus.STALLED if stalled else RunStatus.RUNNING, changes)
        elif run.status.is_terminal and stored_terminal is not None:
            self._fill_completion(run, record)
        for agent_id in record.agent_ids:
            self._add_agent(run, agent_id, changes)
        return changes

    def check_stalls(self, now: float) -> list[Change]:
        """Mark running runs without an event for their stall timeout as stalled."""
        changes: list[Change] = []
        for run in [r for r in self._running.values() if r.clock.check(now)]:
            self._set_status(run, RunStatus.STALLED, changes)
        return changes

    # -- helpers ---------------------------------------------------------------------------------
    def _run(self, run_id: str) -> _Run:
        run = self._runs.get(run_id)
        if run is None:
            run = self._runs[run_id] = self._new_run(run_id)
        return run

    def _new_run(self, run_id: str) -> _Run:
        return _Run(run_id, StallClock(self.default_heartbeat_interval_s, self.stall_missed_intervals,
                                       idle_timeout_s=self.idle_timeout_s))

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
            run.configure(config.get("heartbeat_interval_s"))
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

