"""The BatchProcessor's writers into SQLite (Qt-free): ``SqliteExporter`` (this project's event API,
behind ``SinkCore``) and ``RecordExporter`` (the existing app's record API, behind ``TelemetryDBSink``).

**SqliteExporter.** One ``store.write_batch`` transaction per batch (``isolate=True``: a savepoint per event, so an
event SQLite refuses is kept aside as rejected and the rest stored). Retryable: the SQLite errors
``is_retryable_error`` names (locked, busy, full, I/O). The store's ``WriteResult`` maps onto the
processor's counts: ``rejected`` events are kept aside in ``run_events`` and count as persisted;
``conflicts`` (the key is stored with other content: two writers numbered one stream) and ``lost``
do not. ``on_run_persisted(run_id)`` follows each RUN_COMPLETED's commit; since batches are
prefixes of the stream-ordered subscription, every event of the run published before its
completion is committed by then.

**RecordExporter.** Each event becomes a record for the store's ``record_step`` / ``record_episode``
(conversion in ``db_sink_records``, frames to ``gym_gui.replay`` in ``db_sink_replay``); a record
the store refuses is logged (rate-limited) and counted in ``errors``, and the rest of the batch goes
on, so an export never raises. RUN_COMPLETED events (this project's store only) are committed
through ``write_batch`` after ``store.flush()`` has committed every record handed over before them,
retried with backoff while the database is locked or busy; ``on_run_persisted`` follows. It counts
into its sink (``count(key, n)``): steps_written, episodes_written, batches, checkpoints, errors,
conversion_issues, skipped, runs_completed; ``store.checkpoint_wal()`` every ``checkpoint_interval``
records; a batch taking at least ``SLOW_EXPORT_S`` is logged as slow.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from gym_gui.rate_limited_log import RateLimitedLog
from gym_gui.telemetry import data_model
from gym_gui.telemetry.batch_export import ExportResult, Wording
from gym_gui.telemetry.db_sink_records import episode_fields, producer_fields, step_fields, with_producer_fields
from gym_gui.telemetry.db_sink_replay import ReplayFrames
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore, WriteResult, is_retryable_error

__all__ = ["RecordExporter", "SLOW_EXPORT_S", "SqliteExporter"]

_log = logging.getLogger(__name__)


class SqliteExporter:
    """Writes batches with ``store.write_batch``; the processor's thread only (``store`` is thread-safe)."""

    wording = Wording("db sink")

    def __init__(self, store: TelemetrySQLiteStore,
                 on_run_persisted: Callable[[str], None] | None = None) -> None:
        self.store = store
        self.on_run_persisted = on_run_persisted

    def export(self, batch: Sequence[TelemetryEvent], *, isolate: bool) -> ExportResult:
        """One transaction; raises the store's sqlite3 errors (rolled back). Processor thread; blocks."""
        result: WriteResult = self.store.write_batch(batch, isolate=isolate)
        return ExportResult(
            exported=len(batch) - len(result.lost) - len(result.conflicts),
            duplicates=result.duplicates,
            rejected=result.rejected,
            conflicts=result.conflicts,
            lost=result.lost,
            detail=result,
        )

    def is_retryable(self, exc: BaseException) -> bool:
        """Locked, busy, full, I/O: the same batch may commit later. Any thread."""
        return is_retryable_error(exc)

    def exported(self, batch: Sequence[TelemetryEvent], result: ExportResult) -> None:
        """``on_run_persisted`` for each run whose RUN_COMPLETED this batch committed. Processor thread."""
        callback = self.on_run_persisted
        if callback is None or result.detail is None:
            return
        for run_id in result.detail.completed_runs:
            try:
                callback(run_id)
            except Exception:
                _log.exception("run_persisted callback failed")


#: A batch taking at least this long to hand to the store is logged as slow.
SLOW_EXPORT_S = 0.25
_RECORD_LOG = logging.getLogger("gym_gui.telemetry.db_sink")


class RecordExporter:
    """Hands events to a record-API store (module doc); the sink thread only. Prepares its record
    classes and the replay writers when built (``ReplayFrames.open``)."""

    wording = Wording("TelemetryDBSink")

    def __init__(self, store: Any, *, count: Callable[[str, int], None], rate_log: RateLimitedLog,
                 checkpoint_interval: int, replay_dir: Path | None,
                 on_run_persisted: Callable[[str], None] | None) -> None:
        self.store = store
        self._count = count
        self._rate_log = rate_log
        self.checkpoint_interval = checkpoint_interval
        self.on_run_persisted = on_run_persisted
        step_type, rollup_type = data_model.record_classes()
        # Our store keeps what the records have no field for (the producer's seq_id, episode_index, ...).
        self.keep_producer_fields = isinstance(store, TelemetrySQLiteStore)
        if self.keep_producer_fields:
            step_type, rollup_type = with_producer_fields(step_type), with_producer_fields(rollup_type)
        self.step_type, self.rollup_type = step_type, rollup_type
        self.replay = ReplayFrames.open(replay_dir)
        self.since_checkpoint = 0

    def export(self, batch: Sequence[Any], *, isolate: bool) -> ExportResult:
        """Records in order (steps and episodes), then the completions; never raises. Sink thread; blocks."""
        started = time.monotonic()
        steps = episodes = 0
        completions: list[Any] = []
        for evt in batch:
            topic = getattr(evt, "topic", None)
            if not hasattr(evt, "payload"):  # the existing consumers skip what is not an event
                self._count("skipped", 1)
                self._rate_log.log(logging.WARNING, "skipped", "TelemetryDBSink: skipped a %s from the bus: "
                                   "not a TelemetryEvent", type(evt).__name__)
                continue
            if topic is Topic.RUN_COMPLETED:
                completions.append(evt)
                continue
            is_step = topic is Topic.STEP_APPENDED
            try:
                if is_step:
                    self._write_step(evt)
                    steps += 1
                else:
                    self._write_episode(evt)
                    episodes += 1
            except Exception as exc:
                self._count("errors", 1)
                self._rate_log.log(logging.ERROR, "write", "TelemetryDBSink: writing %s failed: %s: %s",
                                   "a step" if is_step else "an episode", type(exc).__name__, exc)
        self._count("steps_written", steps)
        self._count("episodes_written", episodes)
        self._count("batches", 1)
        elapsed_s = time.monotonic() - started
        if elapsed_s >= SLOW_EXPORT_S:
            self._rate_log.log(logging.WARNING, "slow", "TelemetryDBSink: slow flush, %d events took %.3f s",
                               len(batch), elapsed_s)
        self.since_checkpoint += steps + episodes
        if self.checkpoint_interval > 0 and self.since_checkpoint >= self.checkpoint_interval:
            self.since_checkpoint %= self.checkpoint_interval  # one per interval of writes
            self._checkpoint()
        if completions:
            self.finish_store_writes()
            self._write_completions(completions)
        return ExportResult(exported=steps + episodes + len(completions))

    def is_retryable(self, exc: BaseException) -> bool:
        """Never called: ``export`` does not raise."""
        return False

    def exported(self, batch: Sequence[Any], result: ExportResult) -> None:
        """Nothing more: the counts and ``on_run_persisted`` are done in ``export``."""

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

    def _issue(self, kind: str, message: str) -> None:
        self._count("conversion_issues", 1)
        self._rate_log.log(logging.WARNING, kind, "TelemetryDBSink: %s", message)

    def _checkpoint(self) -> None:
        try:
            self.store.checkpoint_wal()
            self._count("checkpoints", 1)
        except Exception as exc:
            self._count("errors", 1)
            self._rate_log.log(logging.ERROR, "checkpoint", "TelemetryDBSink: checkpoint_wal failed: %s", exc)

    def finish_store_writes(self) -> None:
        """Block until the store has committed what it was handed (``flush()``, when it has one)."""
        flush = getattr(self.store, "flush", None)
        if callable(flush):
            try:
                flush()
            except Exception as exc:
                self._count("errors", 1)
                _RECORD_LOG.error("TelemetryDBSink: store.flush() failed: %s", exc)

    def _write_completions(self, events: list[Any]) -> None:
        """Commit RUN_COMPLETED events through the store's event API (after ``finish_store_writes``),
        retried with backoff while the database is locked or busy; ``on_run_persisted`` follows."""
        delay_s = 0.05
        for _attempt in range(20):
            try:
                result = self.store.write_batch(events)
                break
            except Exception as exc:
                self._count("errors", 1)
                self._rate_log.log(logging.ERROR, "completion", "TelemetryDBSink: storing %d run "
                                   "completion(s) failed: %s: %s", len(events), type(exc).__name__, exc)
                if not is_retryable_error(exc):
                    return
                time.sleep(delay_s)  # the sink thread's own backoff; nothing else waits on it
                delay_s = min(1.0, delay_s * 2)
        else:
            return
        self._count("runs_completed", len(result.completed_runs))
        for run_id in result.completed_runs:
            if self.on_run_persisted is not None:
                try:
                    self.on_run_persisted(run_id)
                except Exception:
                    _RECORD_LOG.exception("TelemetryDBSink: on_run_persisted(%r) failed", run_id)

    def finish(self) -> None:
        """Flush the store if it can, close the replay writers. Sink thread, at its end."""
        self.finish_store_writes()
        if self.replay is not None:
            self.replay.close()
