"""SinkCore: drains the lossless durable subscription into TelemetrySQLiteStore (Qt-free).

The whole durable-path logic behind ``DbSink`` and ``gym_gui.run``: a ``BatchProcessor`` (one
stream-ordered lossless subscription to ``DURABLE_TOPICS``, batches, retry with backoff, error
isolation, flush markers, give-up accounting) around a ``SqliteExporter`` (``store.write_batch``).
It runs on any thread (``start`` spawns a plain thread unless given another spawner) and needs no
Qt event loop, so tests drive it directly.

Loop: sleep on the subscription's ``Waker`` (no polling) -> drain -> when ``batch_size`` events
are held or the oldest waited ``max_delay_s``, take a batch from the front (a seq-ordered prefix of
every stream) -> one transaction -> report. A batch that fails with a retryable SQLite error
(locked, busy, full, I/O) is kept and retried with exponential backoff; any other failure is
retried event by event so the offending event is reported and kept aside (``run_events.error``)
while the rest is stored. The thread never dies on an error. An event whose key is already stored
with other content (two writers numbered one stream) is not counted as persisted: it is a
``conflicts`` count by reason (``seq_conflict``), reported, and kept aside.

Giving up (``stop`` timed out while the store kept failing): what was queued or being written is
counted in ``lost``, and so is every event published afterwards, since a source may still be
reading what its worker wrote into the pipes: the subscription is replaced by a one-slot counting
one (its ``delivered + dropped + queued`` is exactly what arrived), so the count stays honest with
bounded memory.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from gym_gui.telemetry.backpressure import BacklogGate
from gym_gui.telemetry.batch_processor import BatchProcessor, BusSource
from gym_gui.telemetry.batch_tuning import BatchTuning
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.telemetry.sqlite_exporter import SqliteExporter
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore
from gym_gui.telemetry.topic_specs import check_durable_rows, durable_topics

__all__ = ["DURABLE_TOPICS", "SinkCore"]

_log = logging.getLogger(__name__)

#: Everything the durable path stores (topic_specs.durable_topics() when this module was imported).
DURABLE_TOPICS = durable_topics()


class SinkCore:
    """Lossless, ordered, batched writer from a RunBus to a TelemetrySQLiteStore.

    Subscribes (``maxlen=None``, one subscription for every durable topic) in the constructor, so
    nothing published after construction is missed. Tuning: the processor's ``BatchTuning``
    (``batch_tuning.py``), as a ``tuning`` object and/or its fields as keywords (``batch_size``,
    ``max_delay_s``, ``high_water``/``low_water`` of ``gate``, ``write_delay_s``, ...). Callbacks
    run on the sink thread. ``spawn`` starts a thread that calls ``run()`` (DbSink passes
    QThread.start); by default ``start`` uses a daemon ``threading.Thread``.
    """

    def __init__(
        self,
        store: TelemetrySQLiteStore,
        bus: RunBus,
        *,
        subscriber_id: str = "db-sink",
        tuning: BatchTuning | None = None,
        on_run_persisted: Callable[[str], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        on_stats: Callable[[dict[str, Any]], None] | None = None,
        spawn: Callable[[], None] | None = None,
        **overrides: Any,
    ) -> None:
        """Subscribe now. Any thread; never blocks. ``tuning`` and ``overrides`` (its fields as
        keywords) go to the BatchProcessor as they are. TypeError for an unknown keyword, ValueError
        on bad tuning; TopicSpecError when a durable topic has no row kind (it would be counted lost)."""
        check_durable_rows()
        self.store = store
        self.subscriber_id = subscriber_id
        self.exporter = SqliteExporter(store, on_run_persisted)
        self.processor = BatchProcessor(
            self.exporter, BusSource(bus, DURABLE_TOPICS, subscriber_id), name=subscriber_id, tuning=tuning,
            on_error=on_error, on_stats=on_stats, stats_view=self.stats, spawn=spawn, logger=_log, **overrides,
        )
        self.gate: BacklogGate = self.processor.gate

    # -- tuning, read back (the benches and tests print them) -----------------------------------
    @property
    def batch_size(self) -> int:
        """Events per transaction at most."""
        return self.processor.batch_size

    @property
    def max_delay_s(self) -> float:
        """The longest an event waits for a batch."""
        return self.processor.max_delay_s

    @property
    def abort_grace_s(self) -> float:
        """How long ``stop`` waits after giving up."""
        return self.processor.abort_grace_s

    # -- control (any thread) --------------------------------------------------------------------
    def start(self) -> None:
        """Start the sink thread; idempotent, and a no-op after ``stop``. Any thread; never blocks."""
        self.processor.start()

    @property
    def running(self) -> bool:
        """True from ``start`` until the sink thread has exited. Any thread."""
        return self.processor.running

    @property
    def _thread(self) -> Any:
        """The default sink thread (None with a custom ``spawn``)."""
        return self.processor._thread

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Block until every event published before the call is committed; False on timeout.

        Any thread except the sink's; blocks up to ``timeout_s``. Returns False at once if the sink
        is not running and something is still queued (nothing would store it).
        """
        return self.processor.flush(timeout_s)

    def stop(self, timeout_s: float = 10.0) -> bool:
        """Unsubscribe, store everything queued, end the thread; idempotent. True if nothing was lost.

        Any thread except the sink's; blocks up to ``timeout_s`` (+``abort_grace_s`` if the store
        keeps failing: then the sink gives up, reports how many events were not stored, and exits).
        A sink that was never started is started first when events are queued, so they are stored.
        """
        return self.processor.stop(timeout_s)

    def backlog(self) -> int:
        """Events queued in the subscription plus drained but not yet committed. Any thread; never blocks."""
        return self.processor.backlog()

    def lost_count(self) -> int:
        """Events that will never be stored: failed ones, and after giving up everything received
        or published since. Any thread; never blocks."""
        return self.processor.lost_count()

    def rows_per_s(self) -> float:
        """Events committed per second over the last two seconds. Any thread."""
        return self.processor.rows_per_s()

    def stats(self) -> dict[str, Any]:
        """Counters for the debug pane (plain dict; see docs/performance.md). Any thread; never blocks long."""
        p = self.processor
        gate = p.gate
        return {
            "running": p.running,
            "persisted": p.exported,
            "duplicates": p.duplicates,
            "batches": p.batches,
            "backlog": p.backlog(),
            "errors": p.errors,
            "retries": p.retries,
            "rejected": p.rejected,
            "conflicts": p.conflicts,
            "conflicts_by_reason": dict(p.conflicts_by_reason),
            "lost": p.lost_count(),
            "lost_by_reason": p.lost_reasons(),
            "failing": p.failing,
            "last_error": p.last_error,
            "rows_per_s": p.rows_per_s(),
            "gate_paused": gate.is_paused,
            "gate_pauses": gate.pauses,
            "gate_paused_s": gate.paused_s,
            "high_water": gate.high_water,
            "low_water": gate.low_water,
        }

    def run(self) -> None:
        """Body of the sink thread: loops until ``stop``. Sink thread only; blocks until stopped."""
        self.processor.run()
