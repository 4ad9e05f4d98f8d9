"""TelemetryDBSink: the existing gym_gui's durable-path sink at its seed path (Qt-free).

One plain daemon thread (``telemetry-db-sink``) drains the STEP_APPENDED and EPISODE_FINALIZED
subscriptions it makes itself and hands each event to the store as the existing application's
records: ``store.record_step(StepRecord(...))`` / ``store.record_episode(EpisodeRollup(...))``
(conversion in ``db_sink_records``; frames to ``gym_gui.replay`` in ``db_sink_replay``). With this
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
import time
import weakref
from pathlib import Path
from typing import Any, Callable

from gym_gui.rate_limited_log import RateLimitedLog
from gym_gui.telemetry import data_model
from gym_gui.telemetry.db_sink_records import episode_fields, producer_fields, step_fields, with_producer_fields
from gym_gui.telemetry.db_sink_replay import ReplayFrames
from gym_gui.telemetry.db_sink_sources import SinkSource, subscribe_source
from gym_gui.telemetry.events import Topic
from gym_gui.telemetry.run_bus import RunBus, Waker
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore, is_retryable_error

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
#: A batch taking at least this long to hand to the store is logged as slow.
SLOW_FLUSH_S = 0.25
#: A subscription at least this full (of ``writer_queue_size``) is logged as a WARNING.
DEPTH_WARNING_FRACTION = 0.8


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
        self._pending_count = 0

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
        for source in list(self._sources):
            source.wake()
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
        counts["pending"] = self._pending_count
        counts["queued"] = {source.key: source.depth() for source in list(self._sources)}
        counts["running"] = self.running
        return counts

    def _count(self, key: str, n: int = 1) -> None:
        with self._counts_lock:
            self._counts[key] += n

    # -- the sink thread -------------------------------------------------------------------------
    def _run(self, stop_event: threading.Event) -> None:
        """Thread body: subscribe, then drain and write until ``stop_event``. Sink thread only."""
        waker = Waker()  # shared by both sources on this project's bus
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
            writer = _BatchWriter(self)
        except Exception:
            self._count("errors")
            _log.exception("TelemetryDBSink: cannot start (subscribing or preparing the writer failed); "
                           "the sink thread ends")
            for source in sources:
                source.close()
            return
        try:
            self._loop(stop_event, sources, writer)
        finally:
            for source in sources:
                source.close()
            runs_tail = sources[2].drain() if len(sources) > 2 else []
            episodes_tail = sources[0].drain()  # what arrived since the last round
            writer.write_all(sources[1].drain(), episodes_tail)
            writer.finish()
            writer.write_completions(runs_tail)

    def _loop(self, stop_event: threading.Event, sources: list[SinkSource], writer: _BatchWriter) -> None:
        state = _LoopState(time.monotonic() + self.depth_log_interval_s)
        while True:
            try:
                if self._iteration(stop_event, sources, writer, state):
                    return
            except Exception as exc:  # a bug must not end the durable path
                self._count("errors")
                self._rate_log.log(logging.ERROR, "loop", "TelemetryDBSink: unexpected %s: %s",
                                   type(exc).__name__, exc)
                stop_event.wait(self.poll_interval_s)

    def _iteration(self, stop_event: threading.Event, sources: list[SinkSource], writer: _BatchWriter,
                   state: _LoopState) -> bool:
        """One drain / write / wait round; True when the sink is done (after a stop request)."""
        pending = state.pending
        episodes, steps = sources[0], sources[1]
        stopping = stop_event.is_set()
        # Completions first: every step and episode published before one is then drained with it.
        completions = sources[2].drain() if len(sources) > 2 else []
        drained_episodes = episodes.drain()
        drained_steps = steps.drain()
        if drained_steps or drained_episodes:
            if not pending:
                state.oldest_at = time.monotonic()
            pending.extend((True, e) for e in drained_steps)
            pending.extend((False, e) for e in drained_episodes)
        while len(pending) >= self.batch_size:
            batch = pending[:self.batch_size]
            del pending[:self.batch_size]  # the rest arrived no earlier than oldest_at
            writer.write(batch)
        now = time.monotonic()
        if pending and (stopping or completions or now - state.oldest_at >= self.max_delay_s):
            batch = pending[:]
            pending.clear()
            writer.write(batch)
        self._pending_count = len(pending)
        if completions:
            writer.finish_store_writes()
            writer.write_completions(completions)
        if stopping:
            return True
        if now >= state.next_depth_log:
            self._log_depth(sources)
            state.next_depth_log = now + self.depth_log_interval_s
        timeout_s = state.next_depth_log - now
        if pending:
            timeout_s = min(timeout_s, max(0.0, state.oldest_at + self.max_delay_s - now))
        steps.wait(timeout_s if steps.wakes_on_data else min(timeout_s, self.poll_interval_s))
        return False

    def _log_depth(self, sources: list[SinkSource]) -> None:
        depths = {source.key: source.depth() for source in sources}
        capacity = self.writer_queue_size
        full = [key for key, depth in depths.items() if capacity > 0 and depth >= DEPTH_WARNING_FRACTION * capacity]
        if full:
            self._rate_log.log(logging.WARNING, "depth", "TelemetryDBSink: queues %s of %d (>= 80%% full: %s)",
                               depths, capacity, full)
        else:
            _log.debug("TelemetryDBSink: queue depths %s (capacity %d)", depths, capacity)


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


class _LoopState:
    """What the sink thread carries between rounds."""

    __slots__ = ("pending", "oldest_at", "next_depth_log")

    def __init__(self, next_depth_log: float) -> None:
        self.pending: list[tuple[bool, Any]] = []  # (is_step, event), in the order they are written
        self.oldest_at = 0.0
        self.next_depth_log = next_depth_log


class _BatchWriter:
    """Converts and hands events to the store; counts, checkpoints, replay frames. Sink thread only."""

    def __init__(self, sink: TelemetryDBSink) -> None:
        self.sink = sink
        store = sink.store
        self.store = store
        step_type, rollup_type = data_model.record_classes()
        # Our store keeps what the records have no field for (the producer's seq_id, episode_index, ...).
        self.keep_producer_fields = isinstance(store, TelemetrySQLiteStore)
        if self.keep_producer_fields:
            step_type, rollup_type = with_producer_fields(step_type), with_producer_fields(rollup_type)
        self.step_type, self.rollup_type = step_type, rollup_type
        self.replay = ReplayFrames.open(sink.replay_dir)
        self.since_checkpoint = 0

    def _issue(self, kind: str, message: str) -> None:
        self.sink._count("conversion_issues")
        self.sink._rate_log.log(logging.WARNING, kind, "TelemetryDBSink: %s", message)

    def write_all(self, steps: list[Any], episodes: list[Any]) -> None:
        """Write events drained at exit, steps before episodes, ``batch_size`` at a time."""
        batch = [(True, e) for e in steps] + [(False, e) for e in episodes]
        for start in range(0, len(batch), self.sink.batch_size):
            self.write(batch[start:start + self.sink.batch_size])

    def write(self, batch: list[tuple[bool, Any]]) -> None:
        """Hand one batch to the store in order; count, time, checkpoint."""
        sink = self.sink
        started = time.monotonic()
        steps = episodes = 0
        for is_step, evt in batch:
            if not hasattr(evt, "payload"):  # the existing consumers skip what is not an event
                sink._count("skipped")
                sink._rate_log.log(logging.WARNING, "skipped", "TelemetryDBSink: skipped a %s from the bus: "
                                   "not a TelemetryEvent", type(evt).__name__)
                continue
            try:
                if is_step:
                    self._write_step(evt)
                    steps += 1
                else:
                    self._write_episode(evt)
                    episodes += 1
            except Exception as exc:
                sink._count("errors")
                sink._rate_log.log(logging.ERROR, "write", "TelemetryDBSink: writing %s failed: %s: %s",
                                   "a step" if is_step else "an episode", type(exc).__name__, exc)
        with sink._counts_lock:
            sink._counts["steps_written"] += steps
            sink._counts["episodes_written"] += episodes
            sink._counts["batches"] += 1
        elapsed_s = time.monotonic() - started
        if elapsed_s >= SLOW_FLUSH_S:
            sink._rate_log.log(logging.WARNING, "slow", "TelemetryDBSink: slow flush, %d events took %.3f s",
                               len(batch), elapsed_s)
        self.since_checkpoint += steps + episodes
        if sink.checkpoint_interval > 0 and self.since_checkpoint >= sink.checkpoint_interval:
            self.since_checkpoint %= sink.checkpoint_interval  # one per interval of writes
            self._checkpoint()

    def _write_step(self, evt: Any) -> None:
        fields = step_fields(evt, self._issue)
        if self.replay is not None:
            self.replay.take_arrays(fields)
        if self.keep_producer_fields:
            fields.update(producer_fields(evt, step=True))
        self.store.record_step(self.step_type(**fields))

    def _write_episode(self, evt: Any) -> None:
        fields = episode_fields(evt, self._issue)
        if self.keep_producer_fields:
            fields.update(producer_fields(evt, step=False))
        self.store.record_episode(self.rollup_type(**fields))

    def _checkpoint(self) -> None:
        try:
            self.store.checkpoint_wal()
            self.sink._count("checkpoints")
        except Exception as exc:
            self.sink._count("errors")
            self.sink._rate_log.log(logging.ERROR, "checkpoint", "TelemetryDBSink: checkpoint_wal failed: %s", exc)

    def finish_store_writes(self) -> None:
        """Block until the store has committed what it was handed (``flush()``, when it has one)."""
        flush = getattr(self.store, "flush", None)
        if callable(flush):
            try:
                flush()
            except Exception as exc:
                self.sink._count("errors")
                _log.error("TelemetryDBSink: store.flush() failed: %s", exc)

    def write_completions(self, events: list[Any]) -> None:
        """Commit RUN_COMPLETED events through the store's event API, after ``finish_store_writes``.

        Retried with backoff while the database is locked or busy (never dropped silently: a failure
        that is not retryable is counted and logged); ``on_run_persisted`` follows each commit.
        """
        if not events:
            return
        delay_s = 0.05
        for _attempt in range(20):
            try:
                result = self.store.write_batch(events)
                break
            except Exception as exc:
                self.sink._count("errors")
                self.sink._rate_log.log(logging.ERROR, "completion", "TelemetryDBSink: storing %d run "
                                        "completion(s) failed: %s: %s", len(events), type(exc).__name__, exc)
                if not is_retryable_error(exc):
                    return
                time.sleep(delay_s)  # the sink thread's own backoff; nothing else waits on it
                delay_s = min(1.0, delay_s * 2)
        else:
            return
        self.sink._count("runs_completed", len(result.completed_runs))
        callback = self.sink.on_run_persisted
        for run_id in result.completed_runs:
            if callback is not None:
                try:
                    callback(run_id)
                except Exception:
                    _log.exception("TelemetryDBSink: on_run_persisted(%r) failed", run_id)

    def finish(self) -> None:
        """Flush the store if it can, close the replay writers."""
        self.finish_store_writes()
        if self.replay is not None:
            self.replay.close()


def __getattr__(name: str) -> Any:
    """``DbSink`` on first use, from the Qt shell module (imports qtpy); anything else: AttributeError."""
    if name == "DbSink":
        from gym_gui.qt.db_sink_thread import DbSink

        return DbSink
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
