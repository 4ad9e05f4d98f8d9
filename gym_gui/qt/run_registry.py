"""RunRegistry: the status of every run, from the bus (live) and from SQLite (history), as Qt signals.

A QTimer on the GUI thread drains the registry's lifecycle subscriptions and polls
``bus.streams()``; the state rules live in ``run_state_table.RunStateTable`` (Qt-free).

Subscriptions (subscriber id ``run-registry`` by default: the existing gym_gui's trainer registry
uses ``registry``, and a second subscription with its id would replace its queue): RUN_STARTED and RUN_COMPLETED are lossless
(one event per stream each, so the queue cannot grow, and a completion is never missed);
RUN_HEARTBEAT, EPISODE_FINALIZED and STEP_APPENDED are bounded (they only prove a run is alive,
so losing some under a burst changes nothing). Steps matter for streams without heartbeats (the
existing gym_gui's producers publish only steps and episodes): they are the only sign of life
there. A new stream is also seen through ``bus.streams()``.

Runs without lifecycle records are finished by ``update_run_outcome``, which publishes the
RUN_COMPLETED they never send: the registry, the live tabs and the DbSink (which persists it in
the ``runs`` table and then says ``run_persisted``) all treat it as the run's own.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any, Callable, Mapping

from qtpy.QtCore import QObject, QThread, QTimer, Signal

from gym_gui.qt.store_reader import StoreReader
from gym_gui.live.run_state import OUTCOMES, SEVERITY, RunState, RunStatus, status_for_outcome
from gym_gui.live.run_state_table import DEFAULT_IDLE_TIMEOUT_S, STATUS, Change, RunStateTable
from gym_gui.telemetry.events import TelemetryEvent, Topic, utc_now_iso
from gym_gui.telemetry.run_bus import RunBus, Subscription
from gym_gui.telemetry.sqlite_records import RunRecord
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore

__all__ = ["RunRegistry", "RunState", "RunStatus"]

_log = logging.getLogger(__name__)

#: Capacity of the bounded liveness subscriptions (per poll tick, all runs together).
HEARTBEAT_MAXLEN = 256
EPISODE_MAXLEN = 4096
STEP_MAXLEN = 16384
#: In drain order (RUN_COMPLETED last among the lifecycle topics: with equal seq_ids, e.g. the
#: existing daemon's 0, the stable sort keeps it after the rest); None is lossless.
_MAXLEN: dict[Topic, int | None] = {
    Topic.RUN_STARTED: None, Topic.RUN_HEARTBEAT: HEARTBEAT_MAXLEN, Topic.EPISODE_FINALIZED: EPISODE_MAXLEN,
    Topic.RUN_COMPLETED: None, Topic.STEP_APPENDED: STEP_MAXLEN,
}
#: The default bus subscriber id (not ``registry``: the existing gym_gui's trainer registry has it).
SUBSCRIBER_ID = "run-registry"
#: ``source`` of the RUN_COMPLETED payload ``update_run_outcome`` publishes.
OUTCOME_SOURCE = "update_run_outcome"

#: A stored run: its record and the highest stored seq_id per agent (non-terminal runs only).
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


class RunRegistry(QObject):
    """Run states (pending, running, stalled, completed, failed, cancelled) for the GUI thread.

    Signals (GUI thread): ``status_changed(run_id, status)`` on every change, also a run's first
    appearance; ``stream_added(run_id, agent_id)`` once per stream, after its run's first status;
    ``stored_runs_loaded(count)`` once the runs stored in SQLite are merged in.
    ``idle_timeout_s``: silence after which a run without heartbeats (no RUN_STARTED, no
    RUN_HEARTBEAT) is stalled. ``clock`` (monotonic seconds) and ``wall_clock`` (unix seconds) can
    be replaced in tests.
    """

    status_changed = Signal(str, str)
    stream_added = Signal(str, str)
    stored_runs_loaded = Signal(int)

    def __init__(
        self,
        bus: RunBus,
        *,
        reader: StoreReader | None = None,
        poll_interval_ms: int = 100,
        stall_missed_intervals: int = 3,
        default_heartbeat_interval_s: float = 1.0,
        idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
        subscriber_id: str = SUBSCRIBER_ID,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        parent: QObject | None = None,
    ) -> None:
        """Build the registry; nothing runs before ``start()``. GUI thread; does not block."""
        super().__init__(parent)
        self.bus = bus
        self.reader = reader
        self.subscriber_id = subscriber_id
        self._clock = clock
        self._wall_clock = wall_clock
        self._table = RunStateTable(stall_missed_intervals=stall_missed_intervals,
                                    default_heartbeat_interval_s=default_heartbeat_interval_s,
                                    idle_timeout_s=idle_timeout_s)
        self._subs: dict[Topic, Subscription] = {}
        self._streams_seen = 0
        self._started = False
        self._stopped = False
        self._stored_loaded = False
        self._polls = 0
        self._timer = QTimer(self)
        self._timer.setInterval(poll_interval_ms)
        self._timer.timeout.connect(self.poll)

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Subscribe, start polling and load the stored runs off the GUI thread; idempotent (a no-op
        after ``stop``). GUI thread; does not block."""
        if self._started or self._stopped:
            return
        self._started = True
        for topic, maxlen in _MAXLEN.items():
            self._subs[topic] = self.bus.subscribe(topic, self.subscriber_id, maxlen=maxlen)
        self._timer.start()
        if self.reader is None or not self.reader.submit(_read_runs, self._on_stored_runs, self._on_load_error):
            self._stored_loaded = True
            self.stored_runs_loaded.emit(0)
        self.poll()  # streams already on the bus are known at once

    def stop(self) -> None:
        """Stop polling and unsubscribe; idempotent. A stored-runs load still running is ignored.
        GUI thread; does not block."""
        self._stopped = True
        self._timer.stop()
        for topic in list(self._subs):
            self.bus.unsubscribe(topic, self.subscriber_id)
        self._subs.clear()

    def is_polling(self) -> bool:
        """True while the poll timer runs. GUI thread."""
        return self._timer.isActive()

    @property
    def poll_timer(self) -> QTimer:
        """The poll timer (tests prove it is stopped). GUI thread."""
        return self._timer

    @property
    def polls(self) -> int:
        """Poll ticks run so far. GUI thread."""
        return self._polls

    @property
    def stored_loaded(self) -> bool:
        """True once the stored runs are merged in (or there was no reader). GUI thread."""
        return self._stored_loaded

    # -- runs ------------------------------------------------------------------------------------
    def register_pending(self, run_id: str) -> None:
        """Announce a run the app launched whose worker has not spoken yet (``pending``); a no-op for
        a known run. GUI thread; does not block."""
        self._emit(self._table.register_pending(run_id, self._clock()))

    def status(self, run_id: str) -> RunStatus | None:
        """The run's status, or None if unknown. GUI thread."""
        state = self._table.state(run_id)
        return None if state is None else state.status

    def state(self, run_id: str) -> RunState | None:
        """The run's snapshot, or None if unknown. GUI thread."""
        return self._table.state(run_id)

    def states(self) -> list[RunState]:
        """Every known run's snapshot, in the order the registry learnt of them. GUI thread."""
        return self._table.states()

    def stall_timeout_s(self, run_id: str) -> float | None:
        """Seconds without an event after which the run counts as stalled, or None. GUI thread."""
        return self._table.stall_timeout_s(run_id)

    @property
    def idle_timeout_s(self) -> float:
        """Silence after which a run without heartbeats is stalled (seconds). GUI thread."""
        return self._table.idle_timeout_s

    def update_run_outcome(
        self,
        run_id: str,
        outcome: str,
        *,
        reason: str | None = None,
        summary: Mapping[str, Any] | None = None,
        exit_code: int | None = None,
        agent_id: str | None = None,
    ) -> TelemetryEvent | None:
        """Finish a run that will never send RUN_COMPLETED itself (e.g. the existing gym_gui's
        producers, which publish only steps and episodes; the trainer knows the run ended).

        ``outcome`` is ``completed``, ``failed`` or ``cancelled`` (else ValueError); ``reason`` (why,
        in words) and ``summary`` are kept with it (``summary["reason"]`` = ``reason``), as is
        ``exit_code``. Publishes a RUN_COMPLETED on the bus as the next event (``seq_id`` one above
        the highest seen) of ``agent_id``'s stream (default: the run's first agent, else the run's
        stream without agent id), with ``payload["source"] == "update_run_outcome"``. So the DbSink
        persists it in the ``runs`` table (a restarted registry reads it back) and then emits
        ``run_persisted``, the replay loads, the Online tabs show the outcome, and this registry's
        state turns terminal with ``status_changed`` before this call returns. Call it once the
        producer has stopped publishing the run; events it publishes later are still stored.

        Returns the event published, or None (nothing published) when the run is already terminal
        with an outcome at least as severe (failed > cancelled > completed). Also works before
        ``start`` and after ``stop`` (the state is then updated directly). The registry's (GUI)
        thread only (RuntimeError from another); never blocks.
        """
        if QThread.currentThread() != self.thread():
            raise RuntimeError("RunRegistry.update_run_outcome must be called on the registry's thread (the GUI "
                               "thread); from another thread, queue the call (a queued signal or QTimer.singleShot "
                               "on the registry's thread)")
        if type(run_id) is not str or not run_id:
            raise ValueError(f"run_id must be a non-empty str, got {run_id!r}")
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
        if reason is not None and type(reason) is not str:
            raise ValueError(f"reason must be a str or None, got {type(reason).__name__}")
        if exit_code is not None and type(exit_code) is not int:
            raise ValueError(f"exit_code must be an int or None, got {type(exit_code).__name__}")
        current = self.status(run_id)
        if current is not None and current.is_terminal and SEVERITY[status_for_outcome(outcome)] <= SEVERITY[current]:
            _log.info("run %s is already %s: outcome %s not published", run_id, current.value, outcome)
            return None
        if agent_id is None:
            agent_id = self._table.finishing_agent(run_id)
        payload: dict[str, Any] = {"outcome": outcome, "source": OUTCOME_SOURCE}
        if reason:
            payload["reason"] = reason
        if summary is not None or reason:
            payload["summary"] = {**dict(summary or {}), **({"reason": reason} if reason else {})}
        if exit_code is not None:
            payload["exit_code"] = exit_code
        evt = TelemetryEvent(topic=Topic.RUN_COMPLETED, run_id=run_id, agent_id=agent_id,
                             seq_id=self._table.next_seq_id(run_id, agent_id), ts_iso=utc_now_iso(),
                             payload=payload)
        _log.info("run %s finished by the app: %s%s", run_id, outcome, f" ({reason})" if reason else "")
        self.bus.publish(evt)
        if self._started and not self._stopped:
            self.poll()  # drains the event just published: the state changes before this returns
        else:
            self._emit(self._table.apply_event(evt, self._clock()))
        return evt

    # -- polling ---------------------------------------------------------------------------------
    def poll(self) -> None:
        """One tick: fold new lifecycle, heartbeat and episode events (in seq_id order), then the steps
        as activity, then new streams, then check for stalls. GUI thread (the timer calls it); does
        not block."""
        if self._stopped or not self._started:
            return
        self._polls += 1
        now = self._clock()
        events: list[TelemetryEvent] = []
        steps: list[TelemetryEvent] = []
        for topic, sub in self._subs.items():
            if topic is Topic.STEP_APPENDED:
                steps = sub.drain()
            else:
                events += sub.drain()
            if sub.maxlen is not None:
                sub.take_lost_ranges()  # losing liveness events is harmless; keep the log from growing
        events.sort(key=lambda e: e.seq_id)  # restores each stream's order across the lifecycle topics
        changes: list[Change] = []
        for evt in events:
            changes += self._table.apply_event(evt, now)
        if steps:  # activity only; a run finished in this tick stays finished
            changes += self._table.apply_activity(steps, now)
        streams = self.bus.streams()
        for run_id, agent_id in streams[self._streams_seen:]:
            changes += self._table.add_stream(run_id, agent_id, now)
        self._streams_seen = len(streams)
        changes += self._table.check_stalls(now)
        self._emit(changes)

    def _emit(self, changes: list[Change]) -> None:
        for kind, run_id, value in changes:
            if kind == STATUS:
                _log.debug("run %s: %s", run_id, value)
                self.status_changed.emit(run_id, value)
            else:
                self.stream_added.emit(run_id, value)

    # -- stored runs -----------------------------------------------------------------------------
    def _on_stored_runs(self, stored: list[StoredRun]) -> None:
        if self._stopped:
            return
        self.poll()  # live events queued so far go first: they are newer than anything stored
        now, wall_now = self._clock(), self._wall_clock()
        changes: list[Change] = []
        for record, max_seq_ids in stored:
            stored_at = max((t for t in (_unix_s(record.updated_at), _unix_s(record.last_heartbeat_at))
                             if t is not None), default=None)
            age_s = None if stored_at is None else wall_now - stored_at
            changes += self._table.merge_stored(record, now, age_s, max_seq_ids)
        self._stored_loaded = True
        _log.info("run registry: %d stored runs loaded", len(stored))
        self._emit(changes)
        self.stored_runs_loaded.emit(len(stored))

    def _on_load_error(self, error: BaseException) -> None:
        _log.warning("run registry: cannot read the stored runs: %s: %s", type(error).__name__, error)
        if self._stopped:
            return
        self._stored_loaded = True
        self.stored_runs_loaded.emit(0)


def _read_runs(store: TelemetrySQLiteStore) -> list[StoredRun]:
    """Every stored run, with its streams' highest seq_ids when it may still be finished (reader thread)."""
    out: list[StoredRun] = []
    for record in store.runs():
        seqs: dict[str | None, int] = {}
        if not record.is_terminal or record.status == "interrupted":  # (an interrupted run can still be finished)
            for agent_id in record.agent_ids:
                seq = store.max_seq_id(record.run_id, agent_id)
                if seq is not None:
                    seqs[agent_id] = seq
        out.append((record, seqs))
    return out
