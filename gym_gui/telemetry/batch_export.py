"""The exporter side of the BatchProcessor: what an exporter is, what an export returns, how the
processor counts and reports it (Qt-free).

- ``Exporter``: ``export(batch, isolate=...) -> ExportResult`` (raises when nothing of the batch
  was written), ``is_retryable(exc)``, ``exported(batch, result)`` (follow-ups once counted) and a
  ``Wording`` for its reports. Implementations: ``sqlite_exporter.SqliteExporter``,
  ``sqlite_exporter.RecordExporter``, ``transport.redis_exporter.RedisExporter``.
- ``ExportCounts``: the processor's counters (exported, duplicates, batches, errors, retries,
  recoveries, rejected, conflicts by reason, lost by reason, failing, last error, rows per second).
- ``Reporter``: rate-limited report lines, also handed to an ``on_error`` callback.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any, Callable, Protocol, Sequence

import attrs

from gym_gui.telemetry.events import TelemetryEvent

__all__ = ["ExportCounts", "ExportResult", "Exporter", "Reporter", "Wording", "describe_event", "report_result"]

_RATE_WINDOW_S = 2.0
_Lost = tuple[tuple[TelemetryEvent, str], ...]


@attrs.frozen(slots=True)
class ExportResult:
    """What one export did. ``exported``: events that count as written (kept-aside ``rejected`` ones
    included); ``conflicts`` and ``lost`` are not in ``exported``; ``detail``: the exporter's own result."""

    exported: int
    duplicates: int = 0
    rejected: _Lost = ()
    conflicts: _Lost = ()
    lost: _Lost = ()
    detail: Any = None


@attrs.frozen(slots=True)
class Wording:
    """How a processor's reports read (``str.format`` fields: label, n, error, delay_s, backlog, failures)."""

    label: str
    retry: str = "{label}: writing {n} events failed ({error}); kept, retrying in {delay_s:.2f}s"
    retry_level: int = logging.ERROR
    recovered: str = "{label}: writes recovered after {failures} retries"


class Exporter(Protocol):
    """Writes batches somewhere (SQLite, Redis). Called on the processor's thread only."""

    wording: Wording

    def export(self, batch: Sequence[TelemetryEvent], *, isolate: bool) -> ExportResult:
        """Write ``batch`` (in order); with ``isolate`` event by event, so one bad event fails alone.
        Raises when the batch could not be written at all (nothing of it counts as written)."""

    def is_retryable(self, exc: BaseException) -> bool:
        """True if the same batch may succeed later (a locked database, a lost connection)."""

    def exported(self, batch: Sequence[TelemetryEvent], result: ExportResult) -> None:
        """Follow-ups of a batch once it is written and counted (e.g. ``on_run_persisted``)."""


def describe_event(evt: TelemetryEvent, limit: int = 300) -> str:
    """One event for a report line: topic, stream, seq_id and the start of its payload."""
    text = repr(dict(evt.payload))
    if len(text) > limit:
        text = text[:limit] + "..."
    return f"{evt.topic.name} run={evt.run_id} agent={evt.agent_id} seq={evt.seq_id} payload={text}"


def report_result(report: Reporter, label: str, result: ExportResult) -> None:
    """Report each event of a written batch that was kept aside, not stored in its stream, or lost."""
    for evt, reason in result.rejected:
        report("rejected", f"{label}: kept malformed event aside ({reason}): {describe_event(evt)}",
               level=logging.WARNING)
    for evt, reason in result.conflicts:
        report("conflict", f"{label}: not stored in its stream, kept aside ({reason}): {describe_event(evt)}")
    for evt, reason in result.lost:
        report("unstored", f"{label}: not stored ({reason}): {describe_event(evt)}", level=logging.WARNING)


class Reporter:
    """Rate-limited reports: at most one per ``interval_s`` and kind; repeats are counted. Any thread."""

    def __init__(self, log: logging.Logger, sink: Callable[[str], None] | None, interval_s: float) -> None:
        self._log = log
        self._sink = sink
        self._interval_s = interval_s
        self._lock = threading.Lock()
        self._next_at: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def __call__(self, kind: str, message: str, *, level: int = logging.ERROR) -> None:
        now = time.monotonic()
        with self._lock:
            if now < self._next_at.get(kind, 0.0):
                self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
                return
            self._next_at[kind] = now + self._interval_s
            skipped = self._suppressed.pop(kind, 0)
        if skipped:
            message = f"{message} (+{skipped} similar reports suppressed)"
        self._log.log(level, "%s", message)
        if self._sink is not None:
            try:
                self._sink(message)
            except Exception:  # a broken receiver must not stop the processor
                self._log.exception("error callback failed")


class ExportCounts:
    """The processor's counters. Written by the processor's thread; read from any thread."""

    def __init__(self) -> None:
        self._stats_lock = threading.Lock()
        self._recent: deque[tuple[float, int]] = deque()
        self._counter: Any = None  # after giving up: the one-slot subscription that counts arrivals
        self.exported = 0
        self.duplicates = 0
        self.batches = 0
        self.errors = 0
        self.retries = 0
        self.recoveries = 0
        self.rejected = 0
        self.conflicts = 0
        self.conflicts_by_reason: dict[str, int] = {}
        self.lost = 0
        self.lost_by_reason: dict[str, int] = {}
        self.failing = False
        self.last_error: str | None = None
        self._next_stats_at = 0.0
        self._on_stats: Callable[[dict[str, Any]], None] | None = None
        self._stats_view: Callable[[], dict[str, Any]] = dict

    def lost_count(self) -> int:
        """Events that will never be exported: failed ones, and after giving up everything held or
        published since. Any thread; never blocks."""
        counter = self._counter
        return self.lost + (counter.dropped + len(counter) if counter is not None else 0)

    def lost_reasons(self) -> dict[str, int]:
        """``lost_count()`` by reason (``failed``, ``gave_up``, the store's reasons). Any thread; never blocks."""
        reasons = dict(self.lost_by_reason)
        counted = self.lost_count() - self.lost
        if counted:
            reasons["gave_up"] = reasons.get("gave_up", 0) + counted
        return reasons

    def rows_per_s(self) -> float:
        """Events exported per second over the last two seconds. Any thread."""
        now = time.monotonic()
        with self._stats_lock:
            while self._recent and self._recent[0][0] < now - _RATE_WINDOW_S:
                self._recent.popleft()
            return sum(n for _t, n in self._recent) / _RATE_WINDOW_S

    def _count_lost(self, reason: str, n: int) -> None:
        self.lost += n
        self.lost_by_reason[reason] = self.lost_by_reason.get(reason, 0) + n

    def _count_result(self, result: ExportResult) -> None:
        """Count one written batch. Processor thread."""
        self.exported += result.exported
        self.duplicates += result.duplicates
        self.batches += 1
        self.rejected += len(result.rejected)
        for _evt, reason in result.lost:
            self._count_lost(reason.split(":", 1)[0], 1)
        if result.conflicts:
            self.conflicts += len(result.conflicts)
            for _evt, reason in result.conflicts:
                key = reason.split(":", 1)[0]
                self.conflicts_by_reason[key] = self.conflicts_by_reason.get(key, 0) + 1
        with self._stats_lock:
            self._recent.append((time.monotonic(), result.exported))

    def _emit_stats(self, *, force: bool = False) -> None:
        """Hand ``_stats_view()`` to ``_on_stats``, at most every ``stats_interval_s`` unless forced
        (the processor sets these three). Processor thread."""
        on_stats = getattr(self, "_on_stats", None)
        if on_stats is None:
            return
        now = time.monotonic()
        if not force and now < self._next_stats_at:
            return
        self._next_stats_at = now + getattr(self, "stats_interval_s", 0.0)
        try:
            on_stats(self._stats_view())
        except Exception:
            logging.getLogger(__name__).exception("stats callback failed")
