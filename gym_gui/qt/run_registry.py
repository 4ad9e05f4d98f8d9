"""RunRegistry: the status of every run, from the bus (live) and from SQLite (history), as Qt signals.

A thin shell on the GUI thread: ``gym_gui.live.run_tracker.RunTracker`` (Qt-free) holds the
subscriptions and the rules (``run_state_table.RunStateTable``); the app's GUI pump
(``gym_gui.qt.gui_pump``) ticks it when the bus has news and when a run's stall is due, and the
registry turns the tracker's changes into signals. Stored runs are read on a ``StoreReader`` thread.

Subscriptions (subscriber id ``run-registry`` by default: the existing gym_gui's trainer registry
uses ``registry``, and a second subscription with its id would replace its queue): RUN_STARTED,
RUN_HEARTBEAT and RUN_COMPLETED in one lossless stream-ordered subscription (a completion is never
missed); EPISODE_FINALIZED and STEP_APPENDED in one bounded one (they only prove a run is alive, so
losing some under a burst changes nothing; steps are the only sign of life of a stream without
heartbeats, as the existing gym_gui's producers publish them). A new stream is also seen through
``bus.streams()``.

Runs without lifecycle records are finished by ``update_run_outcome``, which publishes the
RUN_COMPLETED they never send: the registry, the live tabs and the DbSink (which persists it in
the ``runs`` table and then says ``run_persisted``) all treat it as the run's own.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Mapping

from qtpy.QtCore import QObject, QThread, QTimer, Signal

from gym_gui.live.run_state import RunState, RunStatus
from gym_gui.live.run_state_table import DEFAULT_IDLE_TIMEOUT_S, STATUS, Change
from gym_gui.live.run_tracker import (ACTIVITY_MAXLEN, OUTCOME_SOURCE, SUBSCRIBER_ID, RunTracker, StoredRun,
                                      read_stored_runs)
from gym_gui.qt.gui_pump import GuiPump
from gym_gui.qt.store_reader import StoreReader
from gym_gui.telemetry.events import TelemetryEvent
from gym_gui.telemetry.run_bus import RunBus

__all__ = ["ACTIVITY_MAXLEN", "OUTCOME_SOURCE", "RunRegistry", "RunState", "RunStatus", "SUBSCRIBER_ID"]

_log = logging.getLogger(__name__)


class RunRegistry(QObject):
    """Run states (pending, running, stalled, completed, failed, cancelled, interrupted) for the GUI thread.

    Signals (GUI thread): ``status_changed(run_id, status)`` on every change, also a run's first
    appearance; ``stream_added(run_id, agent_id)`` once per stream, after its run's first status;
    ``stored_runs_loaded(count)`` once the runs stored in SQLite are merged in.
    ``idle_timeout_s``: silence after which a run without heartbeats (no RUN_STARTED, no
    RUN_HEARTBEAT) is stalled. ``pump``: the app's GUI pump (without one the registry runs its own).
    ``poll_interval_ms`` is kept for callers and ignored: the pump ticks on news and stall deadlines.
    ``clock`` (monotonic seconds) and ``wall_clock`` (unix seconds) can be replaced in tests.
    """

    status_changed = Signal(str, str)
    stream_added = Signal(str, str)
    stored_runs_loaded = Signal(int)

    def __init__(
        self,
        bus: RunBus,
        *,
        reader: StoreReader | None = None,
        pump: GuiPump | None = None,
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
        del poll_interval_ms  # (the pump's deadlines replace the poll timer)
        self.bus = bus
        self.reader = reader
        self.subscriber_id = subscriber_id
        self._clock = clock
        self._wall_clock = wall_clock
        self._tracker = RunTracker(bus, stall_missed_intervals=stall_missed_intervals,
                                   default_heartbeat_interval_s=default_heartbeat_interval_s,
                                   idle_timeout_s=idle_timeout_s, subscriber_id=subscriber_id)
        self._table = self._tracker.table
        self._own_pump = pump is None
        self.pump = GuiPump(parent=self) if pump is None else pump
        self._started = False
        self._stopped = False
        self._stored_loaded = False

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Subscribe, join the pump and load the stored runs off the GUI thread; idempotent (a no-op
        after ``stop``). GUI thread; does not block."""
        if self._started or self._stopped:
            return
        self._started = True
        waker = self.pump.new_waker()  # its news ticks the registry alone
        self._tracker.subscribe(waker)
        self.pump.add(self, waker=waker)
        if self._own_pump:
            self.pump.start()
        if self.reader is None or not self.reader.submit(read_stored_runs, self._on_stored_runs, self._on_load_error):
            self._stored_loaded = True
            self.stored_runs_loaded.emit(0)
        self.poll()  # streams already on the bus are known at once

    def stop(self) -> None:
        """Leave the pump and unsubscribe; idempotent. A stored-runs load still running is ignored.
        GUI thread; does not block."""
        self._stopped = True
        self.pump.remove(self)
        if self._own_pump:
            self.pump.stop()
        self._tracker.unsubscribe()

    def is_polling(self) -> bool:
        """True while the pump ticks the registry. GUI thread."""
        return self._started and not self._stopped and self in self.pump and self.pump.is_running()

    @property
    def poll_timer(self) -> QTimer:
        """The pump's timer (tests prove it is stopped when the registry has its own pump). GUI thread."""
        return self.pump.poll_timer

    @property
    def polls(self) -> int:
        """Ticks run so far. GUI thread."""
        return self._tracker.ticks

    @property
    def stored_loaded(self) -> bool:
        """True once the stored runs are merged in (or there was no reader). GUI thread."""
        return self._stored_loaded

    # -- runs ------------------------------------------------------------------------------------
    def register_pending(self, run_id: str) -> None:
        """Announce a run the app launched whose worker has not spoken yet (``pending``); a no-op for
        a known run. GUI thread; does not block."""
        self._emit(self._tracker.register_pending(run_id, self._clock()))

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
        """Finish a run that will never send RUN_COMPLETED itself: ``RunTracker.finish_run`` (the one
        rule: ``outcome`` ``completed``, ``failed`` or ``cancelled``, the event's seq_id, ``source``,
        ``reason`` and ``summary``, severity; ValueError for a bad argument), whose changes are
        signalled here, so the state is terminal with ``status_changed`` before this returns.

        Returns the event published, or None (nothing published). Also works before ``start`` and
        after ``stop`` (the state is then updated directly). The registry's (GUI) thread only
        (RuntimeError from another); never blocks.
        """
        if QThread.currentThread() != self.thread():
            raise RuntimeError("RunRegistry.update_run_outcome must be called on the registry's thread (the GUI "
                               "thread); from another thread, queue the call (a queued signal or QTimer.singleShot "
                               "on the registry's thread)")
        evt, changes = self._tracker.finish_run(run_id, outcome, self._clock(), reason=reason, summary=summary,
                                                exit_code=exit_code, agent_id=agent_id)
        self._emit(changes)
        if evt is not None and self._started and not self._stopped:
            self.pump.reschedule()  # (a no-op inside the pump's own tick, which re-reads the deadline itself)
        return evt

    # -- ticks -----------------------------------------------------------------------------------
    def tick(self, now_s: float) -> None:
        """The pump's tick (``now_s`` is the pump's clock; the registry reads its own). GUI thread."""
        self.poll()

    def next_deadline_s(self, now_s: float) -> float | None:
        """When the next stall is due, on the pump's clock (``now_s``), or None. GUI thread."""
        if self._stopped or not self._started:
            return None
        due = self._tracker.next_deadline_s()
        return None if due is None else now_s + max(0.0, due - self._clock())

    def poll(self) -> None:
        """One tick now: fold new steps and episodes as activity, then lifecycle events in stream
        order, then new streams, then check for stalls. GUI thread (the pump calls it); does not block."""
        if self._stopped or not self._started:
            return
        self._emit(self._tracker.tick(self._clock()))
        self.pump.reschedule()  # (a no-op inside the pump's own tick, which re-reads the deadline itself)

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
        changes = self._tracker.merge_stored(stored, self._clock(), self._wall_clock())
        self._stored_loaded = True
        _log.info("run registry: %d stored runs loaded", len(stored))
        self._emit(changes)
        self.pump.reschedule()
        self.stored_runs_loaded.emit(len(stored))

    def _on_load_error(self, error: BaseException) -> None:
        _log.warning("run registry: cannot read the stored runs: %s: %s", type(error).__name__, error)
        if self._stopped:
            return
        self._stored_loaded = True
        self.stored_runs_loaded.emit(0)
