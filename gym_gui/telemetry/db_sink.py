"""TelemetryDBSink: the existing gym_gui's durable-path sink at its seed path (Qt-free).

One plain daemon thread (``telemetry-db-sink``) drains the STEP_APPENDED and EPISODE_FINALIZED
subscriptions it makes itself and hands each event to the store as the existing application's
records: ``store.record_step(StepRecord(...))`` / ``store.record_episode(EpisodeRollup(...))``
(``sqlite_exporter.RecordExporter``: conversion in ``db_sink_records``, frames to ``gym_gui.replay`` in
``db_sink_replay``), through a ``BatchProcessor`` (batches, a partial batch after ``max_delay_s``,
order, stop) draining the subscriptions as one ``db_sink_sources.MultiSource``. With this
project's store and bus it also subscribes RUN_COMPLETED losslessly (``db-sink-runs``) and commits
each completion after the steps and episodes published before it (``on_run_persisted`` then
follows), so a run finished by ``RunRegistry.update_run_outcome`` is stored as finished. It needs no
Qt and no event loop: the existing app's trainer daemon runs it inside asyncio with no
``QCoreApplication``. Never stopped, it neither keeps the interpreter alive nor aborts at exit:
the thread is a daemon, and an exit hook hands what it still holds to the store (waiting at most
2 s) before the store's own exit hook commits its queue.

``DbSink``, this project's QThread shell around ``SinkCore`` (the event-based store API), lives in
``gym_gui.qt.db_sink_thread``; ``from gym_gui.telemetry.db_sink import DbSink`` still works and
imports Qt only then (PEP 562 module ``__getattr__``), so importing this module imports no Qt.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from pathlib import Path
from typing import Any, Callable

from gym_gui.rate_limited_log import RateLimitedLog
from gym_gui.telemetry.batch_processor import BatchProcessor
from gym_gui.telemetry.db_sink_sources import MultiSource, SinkSource, subscribe_source
from gym_gui.telemetry.events import Topic
from gym_gui.telemetry.run_bus import RunBus, Waker
from gym_gui.telemetry.sqlite_exporter import RecordExporter
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore

__all__ = ["TelemetryDBSink"]

_log = logging.getLogger(__name__)

THREAD_NAME = "telemetry-db-sink"
STEPS_SUBSCRIBER_ID = "db-sink-steps"
EPISODES_SUBSCRIBER_ID = "db-sink-episodes"
#: RUN_COMPLETED, subscribed only for this project's store (the existing app publishes none; our
#: ``RunRegistry.update_run_outcome`` does, for streams that carry no lifecycle records).
RUNS_SUBSCRIBER_ID = "db-sink-runs"
#: ``stop`` joins the thread for at most this long.
STOP_JOIN_TIMEOUT_S = 5.0
#: At interpreter exit a sink that was never stopped gets this long to hand over what it holds.
EXIT_JOIN_TIMEOUT_S = 2.0


class TelemetryDBSink:
    """Persists STEP_APPENDED / EPISODE_FINALIZED from ``bus`` into ``store`` on its own thread.

    ``store`` is duck-typed: ``record_step(record)``, ``record_episode(rollup)``, ``checkpoint_wal()``
    (and ``flush()``, called before the thread exits, when it has one). Records are the classes of
    ``data_model.record_classes()`` (the host app's, else ours); for this project's
    ``TelemetrySQLiteStore`` they carry three more attributes (``db_sink_records.producer_fields``):
    the event's original ``seq_id``, kept with the row (``producer_seq_id``) while the store assigns
    its own durable seq_id, so nothing is deduplicated away on the producers' repeated or constant
    (0) seq_ids; the payload's ``episode_index``, so a step without an episode_id still belongs to
    its episode; and every other payload key the record has no field for (``producer_extra``).

    Loop: wakes when data arrives (on this project's ``RunBus`` through a shared ``Waker``; on another
    bus by polling its queues every ``poll_interval_s``), hands ``batch_size`` events at a time to
    the store, and a partial batch once its oldest event waited ``max_delay_s``; calls
    ``store.checkpoint_wal()`` every ``checkpoint_interval`` writes; logs the queue depth every
    ``depth_log_interval_s`` (DEBUG; WARNING at >= 80 % of ``writer_queue_size`` or a batch taking
    >= 0.25 s); logs failures (rate-limited), counts them in ``stats()`` and carries on.

    Subscriptions (made by the thread, ids ``"db-sink-steps"`` / ``"db-sink-episodes"``): on this
    project's ``RunBus`` they share one ``Waker`` and are lossless when writing to this project's
    store (``lossless=None``; True/False force it; the depth is still measured against
    ``writer_queue_size``), otherwise bounded to ``writer_queue_size``, drop-oldest, as in the
    existing app. On a bus that is not ours: ``bus.subscribe_with_size(topic, id,
    writer_queue_size)``, polled. Steps drained together with an episode go to the store before it.
    """

    def __init__(
        self,
        store: Any,
        bus: Any,
        *,
        batch_size: int = 256,
        checkpoint_interval: int = 4096,
        writer_queue_size: int = 16384,
        replay_dir: Path | None = None,
        lossless: bool | None = None,
        max_delay_s: float = 0.05,
        poll_interval_s: float = 0.1,
        depth_log_interval_s: float = 2.0,
        on_run_persisted: Callable[[str], None] | None = None,
    ) -> None:
        """Keep the settings; no I/O, no subscription, no thread. Any thread; never blocks.

        ``on_run_persisted(run_id)`` (this project's store only) is called from the sink thread once a
        RUN_COMPLETED is committed after every step and episode the sink had received before it.
        """
        self.store = store
        self.bus = bus
        self.batch_size = max(1, int(batch_size))
        self.checkpoint_interval = int(checkpoint_interval)
        self.writer_queue_size = int(writer_queue_size)
        self.replay_dir = replay_dir
        self.lossless = lossless
        self.max_delay_s = max(0.0, float(max_delay_s))
        self.poll_interval_s = max(0.001, float(poll_interval_s))
        self.depth_log_interval_s = float(depth_log_interval_s)
        self.on_run_persisted = on_run_persisted
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop_event: threading.Event | None = None
        self._sources: list[SinkSource] = []
        self._rate_log = RateLimitedLog(_log, interval_s=1.0)
        self._counts_lock = threading.Lock()
        self._counts = {"steps_written": 0, "episodes_written": 0, "batches": 0, "checkpoints": 0,
                        "errors": 0, "conversion_issues": 0, "skipped": 0, "runs_completed": 0}
        self._processor: BatchProcessor | None = None

    # -- control (any thread) --------------------------------------------------------------------
    def start(self) -> None:
        """Start the sink thread (it subscribes); a logged no-op while running. Any thread; never blocks."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                _log.info("TelemetryDBSink.start: already running")
                return
            stop_event = threading.Event()
            thread = threading.Thread(target=self._run, args=(stop_event,), name=THREAD_NAME, daemon=True)
            self._thread, self._stop_event = thread, stop_event
            _started.add(self)
            thread.start()

    @property
    def running(self) -> bool:
        """True while the sink thread is alive. Any thread."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def stop(self) -> None:
        """Signal the thread, which writes what it holds and exits; join at most 5 s; forget it.

        A no-op if never started. Any thread but the sink's; blocks up to 5 s. The thread closes
        the replay writers before it exits; ``start()`` works again afterwards.
        """
        self._stop(STOP_JOIN_TIMEOUT_S)

    def _stop(self, timeout_s: float) -> None:
        with self._lock:
            thread, stop_event = self._thread, self._stop_event
            self._thread = self._stop_event = None
        if thread is None or stop_event is None:
            return
        stop_event.set()
        processor = self._processor
        if processor is not None:
            processor.request_stop()
        if thread is threading.current_thread():  # called from the sink thread: it ends after this round
            return
        thread.join(timeout_s)
        _started.discard(self)
        if thread.is_alive():
            _log.warning("TelemetryDBSink.stop: the sink thread is still running after %.1f s", timeout_s)

    def stats(self) -> dict[str, Any]:
        """Counters (written, batches, checkpoints, errors, conversion_issues, skipped) and the queue
        depths. Any thread; never blocks."""
        with self._counts_lock:
            counts: dict[str, Any] = dict(self._counts)
        processor = self._processor
        counts["pending"] = processor.held() if processor is not None else 0
        if processor is not None and processor.running:
            counts["errors"] += processor.errors  # added to the counts when its thread ends
        counts["queued"] = {source.key: source.depth() for source in list(self._sources)}
        counts["running"] = self.running
        return counts

    def _count(self, key: str, n: int = 1) -> None:
        if n:
            with self._counts_lock:
                self._counts[key] += n

    # -- the sink thread -------------------------------------------------------------------------
    def _run(self, stop_event: threading.Event) -> None:
        """Thread body: subscribe, then let a BatchProcessor drain and write until ``stop_event``.
        Sink thread only."""
        waker = Waker()  # shared by the sources on this project's bus
        lossless = self.lossless if self.lossless is not None else isinstance(self.store, TelemetrySQLiteStore)
        sources: list[SinkSource] = []
        try:
            for topic, subscriber_id in ((Topic.EPISODE_FINALIZED, EPISODES_SUBSCRIBER_ID),
                                         (Topic.STEP_APPENDED, STEPS_SUBSCRIBER_ID)):
                sources.append(subscribe_source(self.bus, topic, subscriber_id, self.writer_queue_size,
                                                lossless, waker))
            if isinstance(self.store, TelemetrySQLiteStore) and isinstance(self.bus, RunBus):
                sources.append(subscribe_source(self.bus, Topic.RUN_COMPLETED, RUNS_SUBSCRIBER_ID,
                                                self.writer_queue_size, True, waker))
            self._sources = sources
            exporter = RecordExporter(self.store, count=self._count, rate_log=self._rate_log,
                                      checkpoint_interval=self.checkpoint_interval, replay_dir=self.replay_dir,
                                      on_run_persisted=self.on_run_persisted)
        except Exception:
            self._count("errors")
            _log.exception("TelemetryDBSink: cannot start (subscribing or preparing the writer failed); "
                           "the sink thread ends")
            for source in sources:
                source.close()
            return
        source = MultiSource(sources[1], sources[0], sources[2] if len(sources) > 2 else None,
                             capacity=self.writer_queue_size, poll_interval_s=self.poll_interval_s,
                             depth_log_interval_s=self.depth_log_interval_s, log=_log.debug,
                             warn=lambda key, msg, *args: self._rate_log.log(logging.WARNING, key, msg, *args))
        processor = BatchProcessor(exporter, source, name=THREAD_NAME, batch_size=self.batch_size,
                                   max_delay_s=self.max_delay_s, retry_initial_s=self.poll_interval_s,
                                   retry_max_s=max(self.poll_interval_s, 2.0), spawn=_no_thread, logger=_log)
        self._processor = processor
        if stop_event.is_set():  # stopped while subscribing
            processor.request_stop()
        processor.start()  # marks it running; this thread runs it
        try:
            processor.run()
        finally:
            self._count("errors", processor.errors)  # loop failures (each logged, rate-limited)
            exporter.finish()


_started: weakref.WeakSet[TelemetryDBSink] = weakref.WeakSet()


def _stop_all_at_exit() -> None:
    """A sink never stopped (the existing app never stops its sinks) hands its partial batch to the
    store before the store's own exit hook (registered earlier, so it runs later) commits it."""
    for sink in list(_started):
        try:
            sink._stop(EXIT_JOIN_TIMEOUT_S)
        except Exception:  # never let one sink keep the others from stopping
            _log.exception("TelemetryDBSink: stopping at exit failed")


atexit.register(_stop_all_at_exit)


def _no_thread() -> None:
    """The processor's ``spawn``: the sink thread calls ``run`` itself."""


def __getattr__(name: str) -> Any:
    """``DbSink`` on first use, from the Qt shell module (imports qtpy); anything else: AttributeError."""
    if name == "DbSink":
        from gym_gui.qt.db_sink_thread import DbSink

        return DbSink
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
