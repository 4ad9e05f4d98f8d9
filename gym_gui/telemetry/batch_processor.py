"""BatchProcessor: one lossless, ordered, batched loop from a source to a pluggable exporter (Qt-free).

The OpenTelemetry ``BatchProcessor`` / exporter shape, written once for the durable path's writers
(``sqlite_exporter.SqliteExporter`` behind ``SinkCore``, ``sqlite_exporter.RecordExporter`` behind
``TelemetryDBSink``, ``transport.redis_exporter.RedisExporter`` behind ``RedisPump``); what an
exporter is and how exports are counted: ``batch_export``; what it drains: ``batch_source``.

- **Order.** A ``BusSource`` is one stream-ordered lossless subscription (``bus.subscribe_topics``):
  every topic in one deque, in publish order. A stream is published from one thread in seq order,
  so taking batches from the front keeps each stream's commits a prefix of what it published, and
  RUN_COMPLETED (a stream's last event) commits with or after the rest of its stream.
- **Batches.** ``batch_size`` events at a time, a partial batch once its oldest event waited
  ``max_delay_s``; ``write_delay_s`` pauses before every export (a test knob for a slow disk).
- **Retry and isolation.** An error the exporter calls retryable keeps the batch in hand and
  retries it after an exponential backoff (``retry_initial_s`` doubling up to ``retry_max_s``);
  meanwhile ``gate`` (a ``BacklogGate`` on everything not yet exported) pauses the producer. Any
  other error retries the batch event by event (``export(batch, isolate=True)``) so one bad event
  is reported and the rest exported; a batch that fails even so is counted lost (``failed``).
- **Flush.** ``flush`` puts an in-band marker into the source and waits until the loop reaches it
  with everything before it exported.
- **Give-up.** When ``stop`` times out, what was queued or in hand is counted lost (``gave_up``)
  and the source is replaced by a one-slot counting subscription, so every event published
  afterwards is counted too, with bounded memory: ``lost_count()`` stays exact.
- **Reports.** Logged and handed to ``on_error``, at most one per ``report_interval_s`` and kind;
  ``on_stats`` gets ``stats_view()`` after exports, at most every ``stats_interval_s``.

It runs on its own thread (``start`` / ``flush`` / ``stop``; ``spawn`` lets a QThread host ``run``)
or is stepped by an owner thread (``step`` / ``finish``, as the Redis bridge does).

About 400 lines: the loop, its lifecycle (start / flush / stop / give-up) and the stepped mode
share one state machine; exports and sources are apart (``batch_export``, ``batch_source``).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from gym_gui.telemetry.backpressure import BacklogGate
from gym_gui.telemetry.batch_export import (ExportCounts, ExportResult, Exporter, Reporter, Wording, describe_event,
                                            report_result)
from gym_gui.telemetry.batch_source import BusSource, Held, Source
from gym_gui.telemetry.batch_tuning import BatchTuning
from gym_gui.telemetry.events import TelemetryEvent

__all__ = ["BatchProcessor", "BatchTuning", "BusSource", "ExportResult", "Exporter", "Source", "Wording"]


_DEFAULT_TUNING = BatchTuning()


class BatchProcessor(ExportCounts):
    """Exports what ``source`` holds through ``exporter``, losslessly and in stream order.

    ``source``: a ``BusSource`` (made before, so nothing published afterwards is missed), or any
    ``Source``. ``name`` labels the default thread (``sink-{name}``). Tuning: a ``BatchTuning``
    (``batch_tuning.py``: batch size, delay, the ``gate``'s marks, backoff, ...). Callbacks run on the processor's thread. The counters (``exported``,
    ``errors``, ...) may be read from any thread.
    """

    def __init__(
        self,
        exporter: Exporter,
        source: Source,
        *,
        name: str = "processor",
        tuning: BatchTuning | None = None,
        on_error: Callable[[str], None] | None = None,
        on_stats: Callable[[dict[str, Any]], None] | None = None,
        stats_view: Callable[[], dict[str, Any]] | None = None,
        spawn: Callable[[], None] | None = None,
        logger: logging.Logger | None = None,
        **overrides: Any,
    ) -> None:
        """``tuning`` (default ``BatchTuning()``) with any of its fields given as keywords instead
        (``batch_size=64``). TypeError for an unknown keyword, ValueError for a bad value."""
        super().__init__()
        self.tuning = tuning = (tuning or _DEFAULT_TUNING).with_overrides(overrides)
        self.exporter = exporter
        self.source = source
        self.name = name
        self.batch_size = tuning.batch_size
        self.max_delay_s = tuning.max_delay_s
        self.retry_initial_s = tuning.retry_initial_s
        self.retry_max_s = tuning.retry_max_s
        self.write_delay_s = tuning.write_delay_s
        self.abort_grace_s = tuning.abort_grace_s
        self.stats_interval_s = tuning.stats_interval_s
        self._log = logger or logging.getLogger(__name__)
        self._report = Reporter(self._log, on_error, tuning.report_interval_s)
        self._on_stats = on_stats
        self._stats_view = stats_view or self.stats
        self._next_stats_at = 0.0
        self._spawn = spawn
        self._sub = source
        self._held = Held()  # drained, not yet exported (flush markers among it)
        self._unsent: list[TelemetryEvent] = []  # the batch in hand
        self._isolate = False
        self._retry_at = 0.0
        self._next_delay_s = tuning.retry_initial_s
        self._failures = 0
        self.gate = BacklogGate(self.backlog, tuning.high_water, tuning.low_water)
        #: Held events that make a batch due before its delay: a full batch, or the gate's high-water
        #: mark when that is lower (else producers paused by the gate would wait out the delay).
        self._due_at = max(1, min(self.batch_size, tuning.high_water))
        # lifecycle
        self._state_lock = threading.Lock()
        self._state = "new"  # new -> running -> stopped
        self._thread: threading.Thread | None = None
        self._stop_requested = False
        self._sealed = False
        self._aborted = False
        self._interrupt = threading.Event()  # wakes backoff / write_delay waits on abort
        self._exited = threading.Event()

    # -- any thread ------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True from ``start`` until the processor's thread has exited. Any thread."""
        return self._state == "running" and not self._exited.is_set()

    def backlog(self) -> int:
        """Events published but not yet exported (queued, drained, in hand). Any thread; never blocks."""
        held = self._held
        return max(0, len(self._sub) - held.queued_markers()) + held.events + len(self._unsent)

    def stats(self) -> dict[str, Any]:
        """The processor's counters as a plain dict. Any thread; never blocks long."""
        gate = self.gate
        return {
            "running": self.running, "exported": self.exported, "duplicates": self.duplicates,
            "batches": self.batches, "backlog": self.backlog(), "errors": self.errors, "retries": self.retries,
            "recoveries": self.recoveries, "rejected": self.rejected, "conflicts": self.conflicts,
            "conflicts_by_reason": dict(self.conflicts_by_reason), "lost": self.lost_count(),
            "lost_by_reason": self.lost_reasons(), "failing": self.failing, "last_error": self.last_error,
            "rows_per_s": self.rows_per_s(), "gate_paused": gate.is_paused, "gate_pauses": gate.pauses,
            "gate_paused_s": gate.paused_s, "high_water": gate.high_water, "low_water": gate.low_water,
        }

    def held(self) -> int:
        """Events drained (or in hand) but not yet exported. Any thread; never blocks."""
        return self._held.events + len(self._unsent)

    def wake(self) -> None:
        """Make a waiting loop (``step``, the thread) look again now. Any thread; never blocks."""
        self._sub.wake()

    def request_stop(self) -> None:
        """Ask the thread to export everything left and exit (``stop`` without waiting). Any thread;
        never blocks."""
        self._stop_requested = True
        self._sub.wake()

    # -- own thread: start / flush / stop (any thread but the processor's) ---------------------
    def start(self) -> None:
        """Start the processor's thread; idempotent, and a no-op after ``stop``. Any thread; never blocks."""
        with self._state_lock:
            if self._state != "new":
                return
            self._state = "running"
        spawn = self._spawn
        if spawn is None:
            self._thread = threading.Thread(target=self.run, name=f"sink-{self.name}", daemon=True)
            spawn = self._thread.start
        spawn()

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Block until every event published before the call is exported; False on timeout.

        Any thread except the processor's; blocks up to ``timeout_s``. Returns at once if the
        processor is not running: True when nothing is queued (else nothing would export it).
        """
        if not self.running:
            return self.backlog() == 0
        marker = self._held.put_marker(self._sub)  # in band: behind everything published before this call
        if self._exited.is_set():  # exited meanwhile: ``run`` released what it found
            self._held.release_all(ok=self._sealed and not self._aborted)
        return marker.done.wait(timeout_s) and marker.ok

    def stop(self, timeout_s: float = 10.0) -> bool:
        """Unsubscribe, export everything queued, end the thread; idempotent. True if nothing was lost.

        Any thread except the processor's; blocks up to ``timeout_s`` (+``abort_grace_s`` if the
        exporter keeps failing: then it gives up, reports how many events were not exported, and
        exits). A processor never started is started first when events are queued, so they are written.
        """
        if self._state == "new":
            if self.backlog() == 0:
                with self._state_lock:
                    self._state = "stopped"
                self._sub.close()
                self._sealed = True
                self._exited.set()
                self.gate.release()
                return True
            self.start()
        self._stop_requested = True
        self._sub.wake()
        if self._exited.wait(timeout_s):
            return self.lost_count() == 0
        self._report("abort", f"stop: {self.exporter.wording.label} still failing after {timeout_s:.1f}s; "
                              f"giving up on {self.backlog()} events")
        self._aborted = True
        self._interrupt.set()
        self._sub.wake()
        if not self._exited.wait(self.abort_grace_s):
            self._log.error("%s thread did not exit within %.1fs after abort", self.exporter.wording.label,
                            self.abort_grace_s)
        return False

    def run(self) -> None:
        """Body of the processor's thread: loops until ``stop``. That thread only; blocks until stopped."""
        try:
            while not self._aborted:
                try:
                    if self._round():
                        break
                except Exception as exc:  # a bug must not end the durable path
                    self.errors += 1
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    self._report("loop", f"{self.exporter.wording.label}: unexpected {self.last_error}")
                    self._log.debug("processor loop failure", exc_info=True)
                    self._interrupt.wait(self.retry_initial_s)
        finally:
            if self._aborted:
                self._give_up()
            else:
                self._sub.close()
            with self._state_lock:
                self._state = "stopped"
            self._exited.set()
            self.gate.release()
            self._held.release_all(ok=self._sealed and not self._aborted)
            self._emit_stats(force=True)

    def _round(self) -> bool:
        """One loop iteration of the thread; True when it is done."""
        if self._stop_requested:
            self._seal()
            self._export_all()
            return self._aborted or not self._held.events
        self._collect()
        if self._held.markers:
            self._export_all()  # through the markers: everything before each is exported first
        now = time.monotonic()
        while self._due(now) and not self._aborted:
            self._write(self._take())
            now = time.monotonic()
        self._sub.wait(self._sleep_s(now), self._wake_at())
        return False

    def _write(self, batch: list[TelemetryEvent]) -> None:
        """Export one batch, waiting out retries, until it is done with (or the processor aborts)."""
        if not batch:
            return
        self._unsent, self._isolate = batch, False
        while not self._attempt() and not self._aborted:
            self._interrupt.wait(max(0.0, self._retry_at - time.monotonic()))

    def _export_all(self) -> None:
        """Export everything held, ``batch_size`` at a time, releasing the markers met on the way."""
        while (self._held.events or self._held.markers) and not self._aborted:
            self._write(self._take())

    # -- stepped by an owner thread -----------------------------------------------------------
    def step(self, max_wait_s: float) -> None:
        """Wait up to ``max_wait_s`` for events (or the retry time), then export what is ready.

        Owner thread; blocks up to ``max_wait_s`` plus one export per batch.
        """
        wait_s = max_wait_s if not self._unsent else min(max_wait_s, max(0.0, self._retry_at - time.monotonic()))
        if wait_s > 0 and not self._held.events and not len(self._sub):
            self._sub.wait(wait_s)
        self._collect()
        self._export_ready()

    def finish(self, timeout_s: float, *, abort: threading.Event | None = None) -> bool:
        """Unsubscribe, then export everything left, retrying until ``timeout_s`` or until ``abort`` is
        set (then call ``wake``); True if all is exported.

        Owner thread, once the producer is done; blocks up to ``timeout_s`` (plus one attempt).
        """
        if not self._sealed:
            self._seal()
            self.gate.release()
        deadline = time.monotonic() + timeout_s
        while self.backlog():
            self._export_ready()
            remaining = deadline - time.monotonic()
            forced = abort is not None and abort.is_set()
            if self.backlog() and (forced or remaining <= 0):
                why = "the stop was forced" if forced else f"not exported within {timeout_s:.1f} s"
                self._log.error("%s: %d events were not sent: %s (%s)", self.exporter.wording.label, self.backlog(),
                                why, self.last_error)
                return False
            if self.backlog():
                self._sub.wait(min(remaining, max(0.0, self._retry_at - time.monotonic())))
        return True

    def _export_ready(self) -> None:
        """Export batch by batch until nothing is held or a retryable error defers the rest."""
        while time.monotonic() >= self._retry_at:
            if not self._unsent:
                batch = self._take()
                if not batch:
                    if not self._held.markers:
                        return
                    continue
                self._unsent, self._isolate = batch, False
            if not self._attempt():
                return

    # -- shared ----------------------------------------------------------------------------------
    def _collect(self) -> None:
        """Move everything queued into what is held."""
        self._held.add(self._sub.drain())

    def _take(self) -> list[TelemetryEvent]:
        return self._held.take(self.batch_size)

    def _due(self, now: float) -> bool:
        n = self._held.events
        return n >= self._due_at or (n > 0 and now - self._held.since >= self.max_delay_s)

    def _wake_at(self) -> int:
        """Queued events that make a batch due before its delay (``_due``): any one while nothing is
        held (its arrival starts the delay), else as many as ``_due_at`` needs."""
        held = self._held.events
        return 1 if not held else max(1, self._due_at - held)

    def _sleep_s(self, now: float) -> float | None:
        if not self._held.events:
            return None  # idle: wait for data, a flush or a stop
        return max(0.0, self._held.since + self.max_delay_s - now)

    def _seal(self) -> None:
        """Unsubscribe and take in what is left: nothing more arrives."""
        if self._sealed:
            return
        self._sub.close()
        self._collect()
        self._sealed = True

    def _attempt(self) -> bool:
        """Try the batch in hand once; True when done with it (exported or lost), False: retry at ``_retry_at``."""
        batch = self._unsent
        if self.write_delay_s > 0:
            self._interrupt.wait(self.write_delay_s)
        label = self.exporter.wording.label
        try:
            result = self.exporter.export(batch, isolate=self._isolate)
        except Exception as exc:
            self.errors += 1
            self.failing = True
            self.last_error = error = f"{type(exc).__name__}: {exc}"
            if self.exporter.is_retryable(exc):
                self.retries += 1
                self._failures += 1
                delay_s, self._next_delay_s = self._next_delay_s, min(self._next_delay_s * 2, self.retry_max_s)
                self._retry_at = time.monotonic() + delay_s
                wording = self.exporter.wording
                self._report("retry", wording.retry.format(label=label, n=len(batch), error=error, delay_s=delay_s,
                                                           backlog=self.backlog()), level=wording.retry_level)
                self._emit_stats(force=True)
                return False
            if not self._isolate:
                self._isolate = True
                self._report("isolate", f"{label}: batch of {len(batch)} events failed ({error}); "
                                        "storing its events one by one")
                return self._attempt()
            self._count_lost("failed", len(batch))
            self._unsent = []
            self._report("lost", f"{label}: could not store {len(batch)} events ({error}); "
                                 f"first: {describe_event(batch[0])}")
            return True
        self._unsent = []
        self._exported(batch, result)
        return True

    def _exported(self, batch: list[TelemetryEvent], result: ExportResult) -> None:
        label = self.exporter.wording.label
        if self._failures:
            self.recoveries += 1
            self._log.info("%s", self.exporter.wording.recovered.format(label=label, failures=self._failures))
        self.failing, self._failures, self._next_delay_s = False, 0, self.retry_initial_s
        self._count_result(result)
        self.gate.notify()
        report_result(self._report, label, result)
        try:
            self.exporter.exported(batch, result)
        except Exception:
            self._log.exception("%s: a follow-up of an exported batch failed", label)
        self._emit_stats()

    def _give_up(self) -> None:
        """Count everything not exported as lost and keep counting what arrives (at exit, after abort)."""
        try:
            self._counter = self._sub.give_up()
        except Exception:  # pragma: no cover - a bus without replacing subscribe
            self._sub.close()
            self._log.exception("%s: cannot count the events published after giving up", self.exporter.wording.label)
        self._sealed = True
        left = self.backlog()
        self._sub.drain()  # let go of what cannot be exported any more
        self._held.clear()
        self._unsent = []
        if left:
            self._count_lost("gave_up", left)
            self._report("stopped-with-backlog", f"{self.exporter.wording.label} stopped without storing {left} events")
