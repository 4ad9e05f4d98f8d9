"""BatchProcessor: one lossless, ordered, batched loop from a RunBus to a pluggable exporter (Qt-free).

The OpenTelemetry ``BatchProcessor`` / exporter shape, written once for the durable path's two
writers (``sqlite_exporter.SqliteExporter`` behind ``SinkCore``, ``transport.redis_exporter.
RedisExporter`` behind ``RedisPump``):

- **Source.** One stream-ordered lossless subscription (``bus.subscribe_topics``) takes every
  exported topic into one deque in publish order. A stream is published from one thread in seq
  order, so a prefix of that deque is a seq-ordered prefix of every stream: taking batches from its
  front keeps each stream's commits a prefix of what it published, RUN_COMPLETED (a stream's last
  event) commits with or after the rest of its stream, and nothing needs re-sorting.
- **Batches.** ``batch_size`` events at a time, a partial batch once its oldest event waited
  ``max_delay_s``; ``write_delay_s`` pauses before every export (a test knob for a slow disk).
- **Retry and isolation.** An export that raises an error the exporter calls retryable
  (``exporter.is_retryable``) keeps the batch in hand and retries it after an exponential backoff
  (``retry_initial_s`` doubling up to ``retry_max_s``); meanwhile events queue up and ``gate`` (a
  ``BacklogGate`` on everything not yet exported) pauses the producer. Any other error retries the
  batch event by event (``export(batch, isolate=True)``) so one bad event is reported and the rest
  exported; a batch that fails even so is counted lost (reason ``failed``).
- **Flush.** ``flush`` puts an in-band marker into the subscription, behind everything published
  before the call, and waits until the loop reaches it with everything before it exported.
- **Give-up.** When ``stop`` times out (the exporter kept failing), what was queued or in hand is
  counted lost (``gave_up``) and the subscription is replaced by a one-slot counting one, so every
  event published afterwards (a source may still be reading its worker's pipes) is counted too,
  with bounded memory: ``lost_count()`` stays exact.
- **Reports.** Errors are logged and handed to ``on_error``, at most one per ``report_interval_s``
  and kind (repeats counted); ``on_stats`` gets ``stats_view()`` after exports, at most every
  ``stats_interval_s``.

Two ways to run it: on its own thread (``start`` / ``flush`` / ``stop``; ``spawn`` lets a QThread
host ``run``), or stepped by an owner thread (``step`` / ``finish``, as the Redis bridge does).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any, Callable, Iterable, Protocol, Sequence

import attrs

from gym_gui.telemetry.backpressure import BacklogGate
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.run_bus import RunBus, Waker

__all__ = ["BatchProcessor", "BusSource", "ExportResult", "Exporter", "Source", "Wording", "describe_event"]

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


class _Reporter:
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


class Source(Protocol):
    """What a processor drains: one ordered queue (a stream-ordered subscription, or an adapter)."""

    def drain(self) -> list[Any]:
        """Everything queued now, oldest first. Processor thread; never blocks."""

    def __len__(self) -> int:
        """Items queued now. Any thread; never blocks."""

    def put_nowait(self, item: Any) -> None:
        """Queue ``item`` behind everything queued (a flush marker). Any thread; never blocks."""

    def wait(self, timeout_s: float | None) -> None:
        """Sleep until data may be there, ``wake`` or ``timeout_s``. Processor thread; blocks."""

    def wake(self) -> None:
        """Make ``wait`` return now. Any thread; never blocks."""

    def close(self) -> None:
        """Nothing more arrives after this returns (unsubscribe); queued items can still be drained."""

    def give_up(self) -> Any:
        """Replace the source by one that only counts arrivals (``dropped + len``), or None. Processor thread."""


class BusSource:
    """A stream-ordered lossless subscription of ``bus`` to ``topics`` (``bus.subscribe_topics``)."""

    def __init__(self, bus: RunBus, topics: Iterable[Topic], subscriber_id: str) -> None:
        """Subscribe now. Any thread; never blocks."""
        self.bus = bus
        self.topics = tuple(topics)
        self.subscriber_id = subscriber_id
        self.waker = Waker()
        self.subscription = bus.subscribe_topics(self.topics, subscriber_id, maxlen=None, waker=self.waker)
        self.drain = self.subscription.drain
        self.put_nowait = self.subscription.put_nowait

    def __len__(self) -> int:
        return len(self.subscription)

    def wait(self, timeout_s: float | None) -> None:
        self.waker.wait(timeout_s)

    def wake(self) -> None:
        self.waker.notify()

    def close(self) -> None:
        self.bus.unsubscribe_topics(self.topics, self.subscriber_id)

    def give_up(self) -> Any:
        # replacing retires the old subscription atomically: each event is in exactly one of them
        return self.bus.subscribe_topics(self.topics, self.subscriber_id, maxlen=1)


class _Marker:
    """A flush marker: put into the subscription, done once everything before it is exported."""

    __slots__ = ("done", "ok")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.ok = False


class BatchProcessor:
    """Exports what ``source`` holds through ``exporter``, losslessly and in stream order.

    ``source``: a ``BusSource`` (made before, so nothing published afterwards is missed), or any
    ``Source``. ``name`` labels the default thread (``sink-{name}``). Tuning as in the module
    doc; ``high_water``/``low_water`` are the ``gate``'s marks, ``abort_grace_s`` how long ``stop``
    waits after giving up. Callbacks run on the processor's thread. The counters (``exported``,
    ``errors``, ...) may be read from any thread.
    """

    def __init__(
        self,
        exporter: Exporter,
        source: Source,
        *,
        name: str = "processor",
        batch_size: int = 2000,
        max_delay_s: float = 0.05,
        high_water: int = 10_000,
        low_water: int = 2_000,
        retry_initial_s: float = 0.05,
        retry_max_s: float = 2.0,
        write_delay_s: float = 0.0,
        abort_grace_s: float = 3.0,
        stats_interval_s: float = 0.5,
        report_interval_s: float = 1.0,
        on_error: Callable[[str], None] | None = None,
        on_stats: Callable[[dict[str, Any]], None] | None = None,
        stats_view: Callable[[], dict[str, Any]] | None = None,
        spawn: Callable[[], None] | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if max_delay_s < 0 or retry_initial_s <= 0 or retry_max_s < retry_initial_s:
            raise ValueError("need max_delay_s >= 0 and 0 < retry_initial_s <= retry_max_s")
        self.exporter = exporter
        self.source = source
        self.name = name
        self.batch_size = batch_size
        self.max_delay_s = max_delay_s
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.write_delay_s = write_delay_s
        self.abort_grace_s = abort_grace_s
        self.stats_interval_s = stats_interval_s
        self._log = logger or logging.getLogger(__name__)
        self._report = _Reporter(self._log, on_error, report_interval_s)
        self._on_stats = on_stats
        self._stats_view = stats_view or self.stats
        self._spawn = spawn
        self._sub = source
        self._counter: Any = None  # after giving up: the one-slot subscription that counts arrivals
        # what the loop holds: drained items from ``_off`` on (events and markers), the batch in hand
        self._pending: list[Any] = []
        self._off = 0
        self._pending_events = 0
        self._pending_markers = 0
        self._since = 0.0
        self._unsent: list[TelemetryEvent] = []
        self._isolate = False
        self._retry_at = 0.0
        self._next_delay_s = retry_initial_s
        self._failures = 0
        # flush markers
        self._marker_lock = threading.Lock()
        self._markers: set[_Marker] = set()
        self._markers_put = 0
        self._markers_drained = 0
        self.gate = BacklogGate(self.backlog, high_water, low_water)
        # lifecycle
        self._state_lock = threading.Lock()
        self._state = "new"  # new -> running -> stopped
        self._thread: threading.Thread | None = None
        self._stop_requested = False
        self._sealed = False
        self._aborted = False
        self._interrupt = threading.Event()  # wakes backoff / write_delay waits on abort
        self._exited = threading.Event()
        # stats
        self._stats_lock = threading.Lock()
        self._recent: deque[tuple[float, int]] = deque()
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

    # -- any thread ------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True from ``start`` until the processor's thread has exited. Any thread."""
        return self._state == "running" and not self._exited.is_set()

    @property
    def sealed(self) -> bool:
        """True once unsubscribed for good (``stop`` or ``finish``). Any thread."""
        return self._sealed

    def backlog(self) -> int:
        """Events published but not yet exported (queued, drained, in hand). Any thread; never blocks."""
        markers = self._markers_put - self._markers_drained
        return max(0, len(self._sub) - markers) + self._pending_events + len(self._unsent)

    def lost_count(self) -> int:
        """Events that will never be exported: failed ones, and after giving up everything held or
        published since. Any thread; never blocks."""
        counter = self._counter
        return self.lost + (counter.dropped + len(counter) if counter is not None else 0)

    def rows_per_s(self) -> float:
        """Events exported per second over the last two seconds. Any thread."""
        now = time.monotonic()
        with self._stats_lock:
            while self._recent and self._recent[0][0] < now - _RATE_WINDOW_S:
                self._recent.popleft()
            return sum(n for _t, n in self._recent) / _RATE_WINDOW_S

    def lost_reasons(self) -> dict[str, int]:
        """``lost_count()`` by reason (``failed``, ``gave_up``, the store's reasons). Any thread; never blocks."""
        reasons = dict(self.lost_by_reason)
        counted = self.lost_count() - self.lost
        if counted:
            reasons["gave_up"] = reasons.get("gave_up", 0) + counted
        return reasons

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
        return self._pending_events + len(self._unsent)

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
        marker = _Marker()
        with self._marker_lock:
            self._markers.add(marker)
            self._markers_put += 1
            self._sub.put_nowait(marker)  # in band: behind everything published before this call
        if self._exited.is_set():  # exited meanwhile: ``run`` released what it found
            self._release_markers(ok=self._sealed and not self._aborted)
        return marker.done.wait(timeout_s) and marker.ok

    def stop(self, timeout_s: float = 10.0) -> bool:
        """Unsubscribe, export everything queued, end the thread; idempotent. True if nothing was lost.

        Any thread except the processor's; blocks up to ``timeout_s`` (+``abort_grace_s`` if the
        exporter keeps failing: then it gives up, reports how many events were not exported, and
        exits). A processor never started is started first when events are queued, so they are written.
        """
        with self._state_lock:
            state = self._state
        if state == "new":
            if self.backlog() == 0:
                with self._state_lock:
                    self._state = "stopped"
                self._unsubscribe()
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
                self._unsubscribe()
            with self._state_lock:
                self._state = "stopped"
            self._exited.set()
            self.gate.release()
            self._release_markers(ok=self._sealed and not self._aborted)
            self._emit_stats(force=True)

    def _round(self) -> bool:
        """One loop iteration of the thread; True when it is done."""
        if self._stop_requested:
            self._seal()
            self._export_all()
            return self._aborted or not self._pending_events
        self._collect()
        if self._pending_markers:
            self._export_all()  # through the markers: everything before each is exported first
        now = time.monotonic()
        while self._due(now) and not self._aborted:
            self._write(self._take())
            now = time.monotonic()
        self._sub.wait(self._sleep_s(now))
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
        while (self._pending_events or self._pending_markers) and not self._aborted:
            self._write(self._take())

    # -- stepped by an owner thread -----------------------------------------------------------
    def step(self, max_wait_s: float) -> None:
        """Wait up to ``max_wait_s`` for events (or the retry time), then export what is ready.

        Owner thread; blocks up to ``max_wait_s`` plus one export per batch.
        """
        wait_s = max_wait_s if not self._unsent else min(max_wait_s, max(0.0, self._retry_at - time.monotonic()))
        if wait_s > 0 and not self._pending_events and not len(self._sub):
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
        label = self.exporter.wording.label
        deadline = time.monotonic() + timeout_s
        while self.backlog():
            self._export_ready()
            if not self.backlog():
                break
            remaining = deadline - time.monotonic()
            if abort is not None and abort.is_set():
                self._log.error("%s: %d events were not exported: the stop was forced (%s)", label, self.backlog(),
                                self.last_error)
                return False
            if remaining <= 0:
                self._log.error("%s: %d events could not be exported within %.1f s (%s)", label, self.backlog(),
                                timeout_s, self.last_error)
                return False
            self._sub.wait(min(remaining, max(0.0, self._retry_at - time.monotonic())))
        return True

    def _export_ready(self) -> None:
        """Export batch by batch until nothing is held or a retryable error defers the rest."""
        while time.monotonic() >= self._retry_at:
            if not self._unsent:
                batch = self._take()
                if not batch:
                    if not self._pending_markers:
                        return
                    continue
                self._unsent, self._isolate = batch, False
            if not self._attempt():
                return

    # -- shared ----------------------------------------------------------------------------------
    def _collect(self) -> None:
        """Move everything queued into the held list (markers counted)."""
        items = self._sub.drain()
        if not items:
            return
        markers = 0
        if self._markers_put != self._markers_drained:  # read after the drain: a marker put before it is seen
            markers = sum(1 for item in items if type(item) is _Marker)
            self._markers_drained += markers
            self._pending_markers += markers
        if not self._pending_events:
            self._since = time.monotonic()
        self._pending += items
        self._pending_events += len(items) - markers

    def _take(self) -> list[TelemetryEvent]:
        """Remove up to ``batch_size`` events from the front; markers at the front are released first."""
        pending, off, n = self._pending, self._off, self.batch_size
        if self._pending_markers:
            while off < len(pending) and type(pending[off]) is _Marker:
                self._pending_markers -= 1
                self._release(pending[off], ok=True)
                off += 1
            end = off
            stop = min(len(pending), off + n)
            while end < stop and type(pending[end]) is not _Marker:
                end += 1
        else:
            end = min(len(pending), off + n)
        batch = pending[off:end]
        self._pending_events -= len(batch)
        if end >= len(pending):
            self._pending, self._off = [], 0
        elif end > 65536 and end * 2 > len(pending):
            self._pending, self._off = pending[end:], 0
        else:
            self._off = end
        return batch

    def _due(self, now: float) -> bool:
        n = self._pending_events
        return n >= self.batch_size or (n > 0 and now - self._since >= self.max_delay_s)

    def _sleep_s(self, now: float) -> float | None:
        if not self._pending_events:
            return None  # idle: wait for data, a flush or a stop
        return max(0.0, self._since + self.max_delay_s - now)

    def _seal(self) -> None:
        """Unsubscribe and take in what is left: nothing more arrives."""
        if self._sealed:
            return
        self._unsubscribe()
        self._collect()
        self._sealed = True

    def _unsubscribe(self) -> None:
        self._sub.close()

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
        if self.failing or self._failures:
            if self._failures:
                self.recoveries += 1
                self._log.info("%s", self.exporter.wording.recovered.format(label=label, failures=self._failures))
            self.failing = False
        self._failures, self._next_delay_s = 0, self.retry_initial_s
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
        self.gate.notify()
        for evt, reason in result.rejected:
            self._report("rejected", f"{label}: kept malformed event aside ({reason}): {describe_event(evt)}",
                         level=logging.WARNING)
        for evt, reason in result.conflicts:
            self._report("conflict", f"{label}: not stored in its stream, kept aside ({reason}): {describe_event(evt)}")
        for evt, reason in result.lost:
            self._report("unstored", f"{label}: not stored ({reason}): {describe_event(evt)}", level=logging.WARNING)
        try:
            self.exporter.exported(batch, result)
        except Exception:
            self._log.exception("%s: a follow-up of an exported batch failed", label)
        self._emit_stats()

    def _count_lost(self, reason: str, n: int) -> None:
        self.lost += n
        self.lost_by_reason[reason] = self.lost_by_reason.get(reason, 0) + n

    def _give_up(self) -> None:
        """Count everything not exported as lost and keep counting what arrives (at exit, after abort)."""
        try:
            self._counter = self._sub.give_up()
        except Exception:  # pragma: no cover - a bus without replacing subscribe
            self._unsubscribe()
            self._log.exception("%s: cannot count the events published after giving up", self.exporter.wording.label)
        self._sealed = True
        left = self.backlog()
        self._sub.drain()  # let go of what cannot be exported any more
        self._pending, self._off, self._pending_events, self._pending_markers = [], 0, 0, 0
        self._unsent = []
        if left:
            self._count_lost("gave_up", left)
            self._report("stopped-with-backlog", f"{self.exporter.wording.label} stopped without storing {left} events")

    def _release(self, marker: _Marker, *, ok: bool) -> None:
        with self._marker_lock:
            self._markers.discard(marker)
        marker.ok = ok
        marker.done.set()

    def _release_markers(self, *, ok: bool) -> None:
        with self._marker_lock:
            markers, self._markers = self._markers, set()
        for marker in markers:
            marker.ok = ok
            marker.done.set()

    def _emit_stats(self, *, force: bool = False) -> None:
        if self._on_stats is None:
            return
        now = time.monotonic()
        if not force and now < self._next_stats_at:
            return
        self._next_stats_at = now + self.stats_interval_s
        try:
            self._on_stats(self._stats_view())
        except Exception:
            self._log.exception("stats callback failed")
