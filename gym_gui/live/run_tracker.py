"""RunTracker: the RunRegistry's logic without Qt: its bus subscriptions, ticks, stored runs and
explicit finishes, folded into a ``RunStateTable``.

Driven by ``tick(now_s)`` from one thread (the GUI pump's, in the app; a test calls it directly).
Every method returns the changes it made, in order, as the table's ``(kind, run_id, value)``
tuples; the Qt shell (``gym_gui.qt.run_registry``) turns them into signals.

Subscriptions (subscriber id ``run-registry`` by default: the existing gym_gui's trainer registry
uses ``registry``, and a subscription with its id would replace that one's queue):

- *lifecycle* (``topic_specs.lifecycle_topics()``: RUN_STARTED, RUN_HEARTBEAT, RUN_COMPLETED) in
  ONE lossless stream-ordered subscription: a stream's lifecycle events arrive in publish order, so a completion is never
  missed nor folded before the RUN_STARTED it follows (no re-sorting). They are few (one start and
  one completion per stream, a heartbeat per interval), so the queue cannot grow.
- *activity* (the other durable topics: EPISODE_FINALIZED, STEP_APPENDED, and any declared later)
  in one bounded subscription (``ACTIVITY_MAXLEN``): they only prove that a stream is alive (the only sign of life of a stream
  without heartbeats, as the existing gym_gui's producers publish them), so dropping some under a
  burst changes nothing (their lost ranges are discarded each tick). One deque has one capacity:
  that is why the lossless and the bounded topics are two subscriptions.

A tick folds the activity first (each stream's last event: one dict update per event), then the
lifecycle events in stream order, then the streams new on ``bus.streams()``, then checks for
stalls. Activity first: a run whose steps and RUN_COMPLETED land in one tick (a worker that
dies at once) is ``running`` before it is ``failed``, as it was on the bus.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Iterable, Mapping

from gym_gui.live.run_state import OUTCOMES, SEVERITY, RunStatus, outcome_severity
from gym_gui.live.run_state_table import DEFAULT_IDLE_TIMEOUT_S, Change, RunStateTable
from gym_gui.telemetry.events import TelemetryEvent, Topic, utc_now_iso
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.telemetry.run_summaries import HIDDEN_STATUSES
from gym_gui.telemetry.sqlite_records import RunRecord
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore
from gym_gui.telemetry.subscription import Subscription, Waker
from gym_gui.telemetry.topic_specs import durable_topics, lifecycle_topics

__all__ = ["ACTIVITY_MAXLEN", "OUTCOME_SOURCE", "RunTracker", "StoredRun", "SUBSCRIBER_ID", "activity_topics",
           "read_stored_runs"]

_log = logging.getLogger(__name__)


def activity_topics() -> tuple[Topic, ...]:
    """The durable topics that are not lifecycle ones (a stream's data): they only prove it is alive."""
    lifecycle = set(lifecycle_topics())
    return tuple(t for t in durable_topics() if t not in lifecycle)

#: Capacity of the activity subscription (per tick, every run together).
ACTIVITY_MAXLEN = 16384
#: The default bus subscriber id (not ``registry``: the existing gym_gui's trainer registry has it).
SUBSCRIBER_ID = "run-registry"
#: ``source`` of the RUN_COMPLETED payload an explicit finish publishes.
OUTCOME_SOURCE = "update_run_outcome"

#: A stored run: its record and the highest stored seq_id per agent (runs that may still be finished).
StoredRun = tuple[RunRecord, dict[str | None, int]]


def _unix_s(ts_iso: str | None) -> float | None:
    """Unix seconds of an ISO-8601 text (RFC 3339 ``Z`` too, which Python 3.10 does not parse), else None."""
    if not ts_iso:
        return None
    if ts_iso.endswith(("Z", "z")):
        ts_iso = ts_iso[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(ts_iso).timestamp()
    except ValueError:
        return None


class RunTracker:
    """Run states from the bus (live) and SQLite (history). One owner thread calls everything; no
    method blocks. ``now_s`` is the owner's monotonic clock; ``wall_now_s`` unix seconds."""

    def __init__(
        self,
        bus: RunBus,
        *,
        stall_missed_intervals: int = 3,
        default_heartbeat_interval_s: float = 1.0,
        idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
        subscriber_id: str = SUBSCRIBER_ID,
    ) -> None:
        """Build the tracker; nothing is subscribed before ``subscribe``. Any thread; does not block.
        Raises ValueError for bad stall settings (``RunStateTable``'s checks)."""
        self.bus = bus
        self.subscriber_id = subscriber_id
        #: Lossless, stream-ordered: what changes a run's state (the declared topics, read once).
        self.lifecycle_topics = lifecycle_topics()
        #: Bounded: what only proves a stream is alive.
        self.activity_topics = activity_topics()
        self.table = RunStateTable(stall_missed_intervals=stall_missed_intervals,
                                   default_heartbeat_interval_s=default_heartbeat_interval_s,
                                   idle_timeout_s=idle_timeout_s)
        self._lifecycle: Subscription | None = None
        self._activity: Subscription | None = None
        self._streams_seen = 0
        self.ticks = 0

    # -- subscriptions ---------------------------------------------------------------------------
    def subscribe(self, waker: Waker | None = None) -> None:
        """Subscribe (replacing subscriptions of the same id); ``waker`` is told of every publish to
        them (the GUI pump's). Idempotent. Owner thread; never blocks long."""
        if self._lifecycle is not None:
            return
        self._lifecycle = self.bus.subscribe_topics(self.lifecycle_topics, self.subscriber_id, maxlen=None,
                                                    waker=waker)
        self._activity = self.bus.subscribe_topics(self.activity_topics, self.subscriber_id,
                                                   maxlen=ACTIVITY_MAXLEN, waker=waker)

    def unsubscribe(self) -> None:
        """Remove both subscriptions; idempotent. Owner thread; never blocks long."""
        if self._lifecycle is None:
            return
        self.bus.unsubscribe_topics(self.lifecycle_topics + self.activity_topics, self.subscriber_id)
        self._lifecycle = self._activity = None

    @property
    def subscribed(self) -> bool:
        """True between ``subscribe`` and ``unsubscribe``. Owner thread."""
        return self._lifecycle is not None

    # -- ticks -----------------------------------------------------------------------------------
    def tick(self, now_s: float) -> list[Change]:
        """Fold what arrived: activity, then lifecycle events in stream order, then new streams, then
        stalls. Owner thread; never blocks."""
        self.ticks += 1
        changes: list[Change] = []
        if self._activity is not None and self._lifecycle is not None:
            activity = self._activity.drain()
            self._activity.take_lost_ranges()  # losing liveness events is harmless; keep the log from growing
            if activity:
                changes += self.table.apply_activity(activity, now_s)
            for evt in self._lifecycle.drain():
                changes += self.table.apply_event(evt, now_s)
        streams = self.bus.streams()
        for run_id, agent_id in streams[self._streams_seen:]:
            changes += self.table.add_stream(run_id, agent_id, now_s)
        self._streams_seen = len(streams)
        changes += self.table.check_stalls(now_s)
        return changes

    def next_deadline_s(self) -> float | None:
        """When the next stall is due (the ``now_s`` clock), or None: only new events change a state then.
        Owner thread."""
        return self.table.next_deadline_s()

    def register_pending(self, run_id: str, now_s: float) -> list[Change]:
        """A run launched here whose worker has not spoken yet; no-op for a known run. Owner thread."""
        return self.table.register_pending(run_id, now_s)

    # -- stored runs -----------------------------------------------------------------------------
    def merge_stored(self, stored: Iterable[StoredRun], now_s: float, wall_now_s: float) -> list[Change]:
        """Fold runs read from SQLite (``read_stored_runs``); each one's age is counted from its last
        stored lifecycle event (``updated_at`` / ``last_heartbeat_at``) to ``wall_now_s``. Live state
        wins: call ``tick`` first. Owner thread; never blocks."""
        changes: list[Change] = []
        for record, max_seq_ids in stored:
            stored_at = max((t for t in (_unix_s(record.updated_at), _unix_s(record.last_heartbeat_at))
                             if t is not None), default=None)
            age_s = None if stored_at is None else wall_now_s - stored_at
            changes += self.table.merge_stored(record, now_s, age_s, max_seq_ids)
        return changes

    # -- explicit finish -------------------------------------------------------------------------
    def outcome_event(
        self,
        run_id: str,
        outcome: str,
        *,
        reason: str | None = None,
        summary: Mapping[str, Any] | None = None,
        exit_code: int | None = None,
        agent_id: str | None = None,
    ) -> TelemetryEvent | None:
        """The RUN_COMPLETED that finishes a run which never sends one (``finish_run`` publishes it),
        or None when the run is already terminal with an outcome at least as severe
        (failed > cancelled > completed).

        It is the next event of ``agent_id``'s stream (default: the run's first agent, else its stream
        without agent id): seq_id one above the highest seen live or stored. ``payload["source"]`` is
        ``OUTCOME_SOURCE``; ``reason`` is kept as ``payload["reason"]`` and ``summary["reason"]``.
        Raises ValueError for a bad argument. Owner thread; never blocks; publishes nothing itself.
        """
        if type(run_id) is not str or not run_id:
            raise ValueError(f"run_id must be a non-empty str, got {run_id!r}")
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
        if reason is not None and type(reason) is not str:
            raise ValueError(f"reason must be a str or None, got {type(reason).__name__}")
        if exit_code is not None and type(exit_code) is not int:
            raise ValueError(f"exit_code must be an int or None, got {type(exit_code).__name__}")
        state = self.table.state(run_id)
        current: RunStatus | None = None if state is None else state.status
        if current is not None and current.is_terminal and outcome_severity(outcome) <= SEVERITY[current]:
            _log.info("run %s is already %s: outcome %s not published", run_id, current.value, outcome)
            return None
        if agent_id is None:
            agent_id = self.table.finishing_agent(run_id)
        payload: dict[str, Any] = {"outcome": outcome, "source": OUTCOME_SOURCE}
        if reason:
            payload["reason"] = reason
        if summary is not None or reason:
            payload["summary"] = {**dict(summary or {}), **({"reason": reason} if reason else {})}
        if exit_code is not None:
            payload["exit_code"] = exit_code
        return TelemetryEvent(topic=Topic.RUN_COMPLETED, run_id=run_id, agent_id=agent_id,
                              seq_id=self.table.next_seq_id(run_id, agent_id), ts_iso=utc_now_iso(), payload=payload)


    def finish_run(
        self,
        run_id: str,
        outcome: str,
        now_s: float,
        *,
        reason: str | None = None,
        summary: Mapping[str, Any] | None = None,
        exit_code: int | None = None,
        agent_id: str | None = None,
    ) -> tuple[TelemetryEvent | None, list[Change]]:
        """Finish a run that will never send RUN_COMPLETED itself (e.g. the existing gym_gui's
        producers, which publish only steps and episodes; the trainer knows the run ended).

        Publishes ``outcome_event(...)`` on the bus (so the DbSink persists it in the ``runs`` table,
        where a restarted tracker reads it back, and then says ``run_persisted``; the replay loads and
        the live views show the outcome) and folds it at once: while subscribed, by a ``tick(now_s)``
        (which drains it with whatever else arrived), else straight into the table. Returns the event
        (None: nothing published, the run is already terminal with an outcome at least as severe)
        and the changes made. While subscribed, what is already on the bus is folded first, so the
        event's seq_id follows every event published before the call (and a completion already
        published counts for the severity). Call it once the producer has stopped publishing the run;
        events it publishes later are still stored. Raises ValueError for a bad argument. Owner
        thread; never blocks.
        """
        changes = self.tick(now_s) if self.subscribed else []
        evt = self.outcome_event(run_id, outcome, reason=reason, summary=summary, exit_code=exit_code,
                                 agent_id=agent_id)
        if evt is None:
            return None, changes
        _log.info("run %s finished by the app: %s%s", run_id, outcome, f" ({reason})" if reason else "")
        self.bus.publish(evt)
        return evt, changes + (self.tick(now_s) if self.subscribed else self.table.apply_event(evt, now_s))


def read_stored_runs(store: TelemetrySQLiteStore) -> list[StoredRun]:
    """Every stored run but the deleted and archived ones (``HIDDEN_STATUSES``), with its streams'
    highest seq_ids when it may still be finished. A reader thread (blocks on SQLite reads)."""
    out: list[StoredRun] = []
    for record in store.runs():
        if record.status in HIDDEN_STATUSES:  # removed through the store: no longer a run to show
            continue
        seqs: dict[str | None, int] = {}
        if not record.is_terminal or record.status == "interrupted":  # (an interrupted run can still be finished)
            for agent_id in record.agent_ids:
                seq = store.max_seq_id(record.run_id, agent_id)
                if seq is not None:
                    seqs[agent_id] = seq
        out.append((record, seqs))
    return out
