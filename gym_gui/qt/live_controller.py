"""LiveTelemetryController: the Qt shell of one stream's live view (see docs/qt-layer.md).

The logic (subscriptions, batching, stall detection, gaps and backfill, latest frame) is
``gym_gui.live.live_view.LiveView``, Qt-free and driven by ``tick(now_s)``; this QObject turns its
news into signals and registers it on a ``GuiPump``: the window's (``pump=``, shared by every view
of the window) or, without one, a pump of its own whose shortest interval between ticks is
``poll_interval_ms``. Either way the GUI thread is woken when data arrives (at most one tick per
frame) and at the view's deadlines, and is idle otherwise. Nothing here waits on SQLite or on a
worker.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from qtpy.QtCore import QObject, QTimer, Signal

from gym_gui.live.live_batch import LiveBatch
from gym_gui.live.live_view import LiveView
from gym_gui.qt.gui_pump import GuiPump
from gym_gui.qt.store_reader import StoreReader
from gym_gui.telemetry.events import TelemetryEvent
from gym_gui.telemetry.run_bus import RunBus

__all__ = ["LiveTelemetryController"]


class _Emitter:
    """The LiveView's listener: each call becomes the controller's signal."""

    __slots__ = ("_ctl",)

    def __init__(self, ctl: "LiveTelemetryController") -> None:
        self._ctl = ctl

    def on_batch(self, batch: LiveBatch) -> None:
        self._ctl.batch_ready.emit(batch)

    def on_run_started(self, evt: TelemetryEvent) -> None:
        self._ctl.run_started.emit(evt)

    def on_heartbeat(self, evt: TelemetryEvent) -> None:
        self._ctl.heartbeat.emit(evt)

    def on_stall_changed(self, stalled: bool) -> None:
        self._ctl.stall_changed.emit(stalled)

    def on_run_completed(self, evt: TelemetryEvent) -> None:
        self._ctl.run_completed.emit(evt)


class LiveTelemetryController(QObject):
    """The live view of stream ``(run_id, agent_id)`` on the GUI thread.

    Signals (GUI thread): ``batch_ready(LiveBatch)``, ``run_started(evt)``, ``heartbeat(evt)``
    (newest RUN_HEARTBEAT of a tick), ``stall_changed(bool)``, ``run_completed(evt)``.
    The lifecycle topics are subscribed for the whole run (any agent: a worker's lifecycle records
    carry its default agent), the data topics for this stream only. ``clock`` is the monotonic
    time in seconds of the controller's own pump (a test hook; a shared pump has its own clock).
    """

    batch_ready = Signal(object)
    run_started = Signal(object)
    heartbeat = Signal(object)
    stall_changed = Signal(bool)
    run_completed = Signal(object)

    def __init__(
        self,
        bus: RunBus,
        run_id: str,
        agent_id: str,
        *,
        reader: StoreReader | None = None,
        pump: GuiPump | None = None,
        poll_interval_ms: int = 50,
        buffer_maxlen: int = 4096,
        max_batch: int = 4096,
        heartbeat_interval_s: float = 1.0,
        stall_missed_intervals: int = 3,
        idle_timeout_s: float | None = None,
        history_after_seq_id: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        parent: QObject | None = None,
    ) -> None:
        """Create the controller; nothing is subscribed until ``start()``. GUI thread; never blocks.

        ``pump``: the window's GuiPump (None: the controller makes and runs its own, ticking at most
        every ``poll_interval_ms``). ``history_after_seq_id``: for a stream that began before this
        controller, also deliver (from SQLite, as backfill) its events after this seq_id that precede
        the first one seen live; ``-1`` means from its very beginning. None (the default) starts with
        what is published after ``start()``. ``idle_timeout_s``: a stream whose run sent no
        RUN_STARTED and no heartbeat is stalled after this much silence (None: after
        ``stall_missed_intervals`` x ``heartbeat_interval_s``, as any other).
        """
        super().__init__(parent)
        if type(poll_interval_ms) is not int or poll_interval_ms < 1:
            raise ValueError(f"poll_interval_ms must be an int >= 1, got {poll_interval_ms!r}")
        self._own_pump = pump is None
        self._pump = pump if pump is not None else GuiPump(frame_interval_ms=poll_interval_ms, clock=clock,
                                                           parent=self)
        self._waker = self._pump.new_waker()  # this view's own: its news ticks it alone
        self._view = LiveView(bus, run_id, agent_id, _Emitter(self), reader=reader, waker=self._waker,
                              buffer_maxlen=buffer_maxlen, max_batch=max_batch,
                              heartbeat_interval_s=heartbeat_interval_s,
                              stall_missed_intervals=stall_missed_intervals, idle_timeout_s=idle_timeout_s,
                              history_after_seq_id=history_after_seq_id,
                              retry_delay_s=poll_interval_ms / 1000.0)
        self.bus = bus
        self.run_id = run_id
        self.agent_id = agent_id

    # -- lifecycle ---------------------------------------------------------------------------------
    @property
    def subscriber_id(self) -> str:
        """``ui-{run_id}-{agent_id}``: the bus subscriber id of every subscription. Any thread."""
        return self._view.subscriber_id

    @property
    def view(self) -> LiveView:
        """The Qt-free view this controller shells. GUI thread."""
        return self._view

    @property
    def pump(self) -> GuiPump:
        """The pump that ticks the view (the window's, or the controller's own). GUI thread."""
        return self._pump

    def start(self) -> None:
        """Subscribe and register on the pump (starting the controller's own pump); idempotent, a
        no-op after ``stop()``. GUI thread; never blocks.

        Raises ValueError (and subscribes nothing) if the subscriber id is already in use on the bus.
        """
        if self._view.started or self._view.stopped:
            return
        self._view.start()
        self._pump.add(self._view, waker=self._waker)
        if self._own_pump:
            self._pump.start()

    def stop(self) -> None:
        """Leave the pump (stopping the controller's own) and unsubscribe; idempotent. Results of a
        backfill still running are dropped. GUI thread; never blocks. No restart after it."""
        self._pump.remove(self._view)
        if self._own_pump:
            self._pump.stop()
        self._view.stop()

    def is_polling(self) -> bool:
        """True while the view is registered on a running pump (it is ticked when data or a deadline
        comes; the pump's timer itself runs only then). GUI thread."""
        return self._view.started and self._pump.is_running() and self._view in self._pump

    @property
    def poll_timer(self) -> QTimer:
        """The pump's one timer (shared with the pump's other views). GUI thread."""
        return self._pump.poll_timer

    # -- state -------------------------------------------------------------------------------------
    @property
    def ticks(self) -> int:
        """Ticks of this view so far (``batch_ready`` handlers see the tick that emitted it). GUI thread."""
        return self._view.ticks

    @property
    def polls(self) -> int:
        """Alias of ``ticks``. GUI thread."""
        return self._view.ticks

    @property
    def backfill_queries(self) -> int:
        """Backfill queries submitted to the reader so far. GUI thread."""
        return self._view.backfill_queries

    def is_stalled(self) -> bool:
        """True while the stream is stalled. GUI thread."""
        return self._view.is_stalled()

    def stall_timeout_s(self) -> float:
        """Seconds without an event after which the stream is stalled (from the run's interval). GUI thread."""
        return self._view.stall.timeout_s

    def stats(self) -> dict[str, Any]:
        """Running totals: ``steps_total``, ``episodes_total``, ``dropped_total`` (steps and episodes the
        live buffers dropped), ``backfilled_total`` (events delivered from SQLite), ``pending_backfill``
        (lost seq_ids not delivered yet), ``unrecoverable`` (lost seq_ids given up), ``stalled``.
        GUI thread; never blocks.
        """
        return self._view.stats()
