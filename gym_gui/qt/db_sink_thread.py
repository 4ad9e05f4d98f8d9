"""DbSink: the QThread that persists the durable subscriptions (thin Qt shell around SinkCore).

All batching, ordering, retry and back-pressure logic lives in ``sink_core.SinkCore`` (Qt-free: a
``BatchProcessor`` around a ``SqliteExporter``); this class only runs it on a QThread and turns its
callbacks into Qt signals, which reach GUI-thread slots as queued connections.
"""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import QObject, QThread, Signal

from gym_gui.telemetry.backpressure import BacklogGate
from gym_gui.telemetry.run_bus import RunBus, get_bus
from gym_gui.telemetry.sink_core import SinkCore
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore

__all__ = ["DbSink"]


class DbSink(QThread):
    """Drains STEP_APPENDED, EPISODE_FINALIZED and the run lifecycle topics losslessly into ``store``.

    Signals (emitted from the sink thread):
    - ``run_persisted(run_id)``: a RUN_COMPLETED of the run is committed, together with every event
      of the run the sink had received before it;
    - ``error(message)``: a write failed (it is retried), or an event was malformed (kept aside in
      ``run_events``); rate-limited;
    - ``stats_changed(stats)``: ``stats()`` after commits, at most every ``stats_interval_s``.

    ``tuning`` keywords go to SinkCore: ``batch_size``, ``max_delay_s``, ``high_water``, ``low_water``,
    ``retry_initial_s``, ``retry_max_s``, ``write_delay_s``, ``abort_grace_s``, ``stats_interval_s``,
    ``subscriber_id``. Subscriptions are made here, so nothing published after construction is missed.
    """

    run_persisted = Signal(str)
    error = Signal(str)
    stats_changed = Signal(dict)

    def __init__(
        self,
        store: TelemetrySQLiteStore,
        bus: RunBus | None = None,
        parent: QObject | None = None,
        **tuning: Any,
    ) -> None:
        """Subscribe to the bus (``None``: ``get_bus()``). Any thread; never blocks."""
        super().__init__(parent)
        self.setObjectName("DbSink")
        self._priority = QThread.Priority.InheritPriority
        self.core = SinkCore(
            store,
            bus if bus is not None else get_bus(),
            on_run_persisted=self.run_persisted.emit,
            on_error=self.error.emit,
            on_stats=self.stats_changed.emit,
            spawn=lambda: QThread.start(self, self._priority),
            **tuning,
        )

    @property
    def store(self) -> TelemetrySQLiteStore:
        """The store written to."""
        return self.core.store

    @property
    def ingest_gate(self) -> BacklogGate:
        """Back-pressure for producers: the proxy calls ``ingest_gate.wait_until_open()`` before reading."""
        return self.core.gate

    def run(self) -> None:
        """QThread body: the SinkCore loop. Sink thread only."""
        self.core.run()

    def start(self, priority: QThread.Priority = QThread.Priority.InheritPriority) -> None:  # type: ignore[override]
        """Start the sink thread; idempotent, a no-op after ``stop``. Any thread; never blocks."""
        self._priority = priority
        self.core.start()

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Block until every event published before the call is committed; False on timeout.

        Blocks (test and shutdown tool): do not call from the GUI thread during normal operation.
        """
        return self.core.flush(timeout_s)

    def stop(self, timeout_s: float = 10.0) -> bool:
        """Store everything queued, then end the thread; idempotent. True if nothing was lost.

        Blocks up to ``timeout_s`` (+ ``abort_grace_s`` if the store keeps failing). Call from the
        thread that owns the sink (the GUI thread) at shutdown.
        """
        ok = self.core.stop(timeout_s)
        if self.isRunning():
            self.wait(int(max(1.0, self.core.abort_grace_s) * 1000))
        return ok

    def backlog(self) -> int:
        """Events queued in the sink's subscription or drained but not yet committed. Any thread."""
        return self.core.backlog()

    def stats(self) -> dict[str, Any]:
        """Persisted, duplicates, batches, backlog, errors, retries, rejected, lost, last_error,
        rows_per_s, gate state. Any thread; never blocks."""
        return self.core.stats()
