"""SinkCore: drains the lossless durable subscriptions into TelemetrySQLiteStore (Qt-free).

This is the whole durable-path logic behind ``DbSink``; it runs on any thread (``start`` spawns a
plain thread unless given another spawner) and needs no Qt event loop, so tests drive it directly.

Loop: sleep on the shared ``Waker`` (no polling) -> collect (controls, steps, controls; see
``sink_pending``) -> when ``batch_size`` events are eligible or the oldest waited ``max_delay_s``,
take a batch (a seq-ordered prefix per stream) -> one transaction -> report. A batch that fails
with a retryable SQLite error (locked, busy, full, I/O) is kept and retried with exponential backoff;
any other failure is retried event by event so the offending event is reported and kept aside
(``run_events.error``) while the rest is stored. The thread never dies on an error. An event whose
key is already stored with other content (two writers numbered one stream) is not counted as
persisted: it is a ``conflicts`` count by reason (``seq_conflict``), reported, and kept aside.

Giving up (``stop`` timed out while the store kept failing): what was queued or being written is
counted in ``lost``, and so is every event published afterwards, since a source may still be
reading what its worker wrote into the pipes: the subscriptions are replaced by one-slot counting
ones (``delivered + dropped + queued`` of each is exactly what arrived), so the count stays honest
with bounded memory.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any, Callable

from gym_gui.telemetry.backpressure import BacklogGate
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.run_bus import RunBus, Waker
from gym_gui.telemetry.sink_pending import PendingEvents
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore, WriteResult, is_retryable_error

__all__ = ["DURABLE_TOPICS", "SinkCore"]

_log = logging.getLogger(__name__)

#: Drained before the steps (and again after them), see sink_pending.
_CONTROL_TOPICS = (Topic.RUN_STARTED, Topic.RUN_HEARTBEAT, Topic.EPISODE_FINALIZED, Topic.RUN_COMPLETED)
#: Everything the durable path stores.
DURABLE_TOPICS = _CONTROL_TOPICS + (Topic.STEP_APPENDED,)

_RATE_WINDOW_S = 2.0


class _Reporter:
    """Rate-limited error reports: at most one per ``interval_s`` and kind; repeats are counted."""

    def __init__(self, sink: Callable[[str], None] | None, interval_s: float = 1.0) -> None:
        self._sink = sink
        self._interval_s = interval_s
        self._next_at: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def __call__(self, kind: str, message: str, *, level: int = logging.ERROR) -> None:
        now = time.monotonic()
        if now < self._next_at.get(kind, 0.0):
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return
        self._next_at[kind] = now + self._interval_s
        skipped = self._suppressed.pop(kind, 0)
        if skipped:
            message = f"{message} (+{skipped} similar reports suppressed)"
        _log.log(level, "%s", message)
        if self._sink is not None:
            try:
                self._sink(message)
            except Exception:  # a broken receiver must not stop the sink
                _log.exception("sink error callback failed")


def _describe(evt: TelemetryEvent, limit: int = 300) -> str:
    text = repr(dict(evt.payload))
    if len(text) > limit:
        text = text[:limit] + "..."
    return f"{evt.topic.name} run={evt.run_id} agent={evt.agent_id} seq={evt.seq_id} payload={text}"


class SinkCore:
    """Lossless, ordered, batched writer from a RunBus to a TelemetrySQLiteStore.

    Subscribes (``maxlen=None``) to ``DURABLE_TOPICS`` in the constructor, so nothing published after
    construction is missed. Tuning: ``batch_size`` (write as soon as this many events are eligible;
    also the most one transaction takes), ``max_delay_s`` (the longest an event waits for a batch),
    ``high_water``/``low_water`` (back-pressure via ``gate``), ``retry_initial_s``/``retry_max_s``
    (backoff after a retryable error), ``write_delay_s`` (pause before every write: a test knob that
    simulates a slow disk), ``abort_grace_s`` (how long ``stop`` waits after giving up),
    ``stats_interval_s`` (the most often ``on_stats`` is called). Callbacks run on the sink thread.
    ``spawn`` starts a thread that calls ``run()`` (DbSink passes QThread.start); by default ``start``
    uses a daemon ``threading.Thread``.
    """

    def __init__(
        self,
        store: TelemetrySQLiteStore,
        bus: RunBus,
        *,
        subscriber_id: str = "db-sink",
        batch_size: int = 2000,
        max_delay_s: float = 0.05,
        high_water: int = 10_000,
        low_water: int = 2_000,
        retry_initial_s: float = 0.05,
        retry_max_s: float = 2.0,
        write_delay_s: float = 0.0,
        abort_grace_s: float = 3.0,
        stats_interval_s: float = 0.5,
        on_run_persisted: Callable[[str], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        on_stats: Callable[[dict[str, Any]], None] | None = None,
        spawn: Callable[[], None] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if max_delay_s < 0 or retry_initial_s <= 0 or retry_max_s < retry_initial_s:
            raise ValueError("need max_delay_s >= 0 and 0 < retry_initial_s <= retry_max_s")
        self.store = store
        self.subscriber_id = subscriber_id
        self.batch_size = batch_size
        self.max_delay_s = max_delay_s
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.write_delay_s = write_delay_s
        self.abort_grace_s = abort_grace_s
        self.stats_interval_s = stats_interval_s
        self._spawn = spawn
        self._on_run_persisted = on_run_persisted
        self._on_stats = on_stats
        self._report = _Reporter(on_error)
        self._bus = bus
        self._waker = Waker()
        subs = bus.subscribe_all(DURABLE_TOPICS, subscriber_id, maxlen=None, waker=self._waker)
        self._controls = [subs[t] for t in _CONTROL_TOPICS]
        self._steps = subs[Topic.STEP_APPENDED]
        self._subs = list(subs.values())
        self._pending = PendingEvents()
        self._inflight = 0
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
        self._flush_cond = threading.Condition()
        self._flush_requested = 0
        self._flush_done = 0
        # stats
        self._stats_lock = threading.Lock()
        self._recent: deque[tuple[float, int]] = deque()
        self.persisted = 0
        self.duplicates = 0
        self.batches = 0
        self.errors = 0
        self.retries = 0
        self.rejected = 0
        self.conflicts = 0
        self._conflict_reasons: dict[str, int] = {}
        self.lost = 0
        self._counters: list[Any] = []  # after giving up: one-slot subscriptions that count arrivals
        self.failing = False
        self.last_error: str | None = None
        self._next_stats_at = 0.0

    # -- control (any thread) --------------------------------------------------------------------
    def start(self) -> None:
        """Start the sink thread; idempotent, and a no-op after ``stop``. Any thread; never blocks."""
        with self._state_lock:
            if self._state != "new":
                return
            self._state = "running"
        spawn = self._spawn
        if spawn is None:
            self._thread = threading.Thread(target=self.run, name=f"sink-{self.subscriber_id}", daemon=True)
            spawn = self._thread.start
        spawn()

    @property
    def running(self) -> bool:
        """True from ``start`` until the sink thread has exited. Any thread."""
        return self._state == "running" and not self._exited.is_set()

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Block until every event published before the call is committed; False on timeout.

        Any thread except the sink's; blocks up to ``timeout_s``. Returns False at once if the sink
        is not running and something is still queued (nothing would store it).
        """
        with self._flush_cond:
            if not self.running:
                return self.backlog() == 0
            self._flush_requested += 1
            ticket = self._flush_requested
        self._waker.notify()
        deadline = time.monotonic() + timeout_s
        with self._flush_cond:
            while self._flush_done < ticket and not self._exited.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._flush_cond.wait(remaining)
            return self._flush_done >= ticket

    def stop(self, timeout_s: float = 10.0) -> bool:
        """Unsubscribe, store everything queued, end the thread; idempotent. True if nothing was lost.

        Any thread except the sink's; blocks up to ``timeout_s`` (+``abort_grace_s`` if the store
        keeps failing: then the sink gives up, reports how many events were not stored, and exits).
        A sink that was never started is started first when events are queued, so they are stored.
        """
        with self._state_lock:
            state = self._state
        if state == "new":
            if self.backlog() == 0:
                with self._state_lock:
                    self._state = "stopped"
                self._unsubscribe()
                self._exited.set()
                self.gate.release()
                return True
            self.start()
        self._stop_requested = True
        self._waker.notify()
        if self._exited.wait(timeout_s):
            return self.lost_count() == 0
        self._report("abort", f"stop: store still failing after {timeout_s:.1f}s; giving up on "
                              f"{self.backlog()} events")
        self._aborted = True
        self._interrupt.set()
        self._waker.notify()
        if not self._exited.wait(self.abort_grace_s):
            _log.error("sink thread did not exit within %.1fs after abort", self.abort_grace_s)
        return False

    def backlog(self) -> int:
        """Events queued in the subscriptions plus drained but not yet committed. Any thread; never blocks."""
        return sum(len(s) for s in self._subs) + self._pending.count + self._inflight

    def lost_count(self) -> int:
        """Events that will never be stored: failed ones, and after giving up everything received
        or published since. Any thread; never blocks."""
        return self.lost + sum(c.dropped + len(c) for c in self._counters)

    def stats(self) -> dict[str, Any]:
        """Counters for the debug pane (plain dict; see docs/performance.md). Any thread; never blocks long."""
        gate = self.gate
        return {
            "running": self.running,
            "persisted": self.persisted,
            "duplicates": self.duplicates,
            "batches": self.batches,
            "backlog": self.backlog(),
            "errors": self.errors,
            "retries": self.retries,
            "rejected": self.rejected,
            "conflicts": self.conflicts,
            "conflicts_by_reason": dict(self._conflict_reasons),
            "lost": self.lost_count(),
            "failing": self.failing,
            "last_error": self.last_error,
            "rows_per_s": self.rows_per_s(),
            "gate_paused": gate.is_paused,
            "gate_pauses": gate.pauses,
            "gate_paused_s": gate.paused_s,
            "high_water": gate.high_water,
            "low_water": gate.low_water,
        }

    def rows_per_s(self) -> float:
        """Events committed per second over the last two seconds. Any thread."""
        now = time.monotonic()
        with self._stats_lock:
            while self._recent and self._recent[0][0] < now - _RATE_WINDOW_S:
                self._recent.popleft()
            return sum(n for _t, n in self._recent) / _RATE_WINDOW_S

    # -- the sink thread -------------------------------------------------------------------------
    def run(self) -> None:
        """Body of the sink thread: loops until ``stop``. Sink thread only; blocks until stopped."""
        try:
            while not self._aborted:
                try:
                    if self._step():
                        break
                except Exception as exc:  # a bug must not end the durable path
                    self.errors += 1
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    self._report("loop", f"db sink: unexpected {self.last_error}")
                    _log.debug("db sink loop failure", exc_info=True)
                    self._interrupt.wait(self.retry_initial_s)
        finally:
            if self._aborted:
                self._give_up()
            else:
                self._unsubscribe()
            if not self._aborted and self._sealed:
                self._flush_finished(self._flush_requested)  # everything ever received is stored
            with self._state_lock:
                self._state = "stopped"
            self._exited.set()
            self.gate.release()
            with self._flush_cond:
                self._flush_cond.notify_all()
            self._emit_stats(force=True)

    def _step(self) -> bool:
        """One loop iteration; True when the sink is done."""
        ticket = self._flush_requested
        if self._stop_requested:
            self._seal()
            self._write_eligible()
            if self._aborted:
                return True
            self._flush_finished(ticket)
            return self._pending.count == 0
        self._collect()
        if ticket > self._flush_done:
            self._collect()  # everything of the first collect is eligible now
            self._write_eligible()
            self._flush_finished(ticket)
            return False
        while self._due(time.monotonic()) and not self._aborted:
            self._write(self._pending.take_batch(self.batch_size))
        self._waker.wait(self._sleep_s(time.monotonic()))
        return False

    def _collect(self) -> None:
        before = [e for sub in self._controls for e in sub.drain()]
        steps = self._steps.drain()
        after = [e for sub in self._controls for e in sub.drain()]
        if before or steps or after:
            self._pending.add_collected(before, steps, after, time.monotonic())

    def _seal(self) -> None:
        """Unsubscribe, drain what is left, and make all of it eligible."""
        if self._sealed:
            return
        self._unsubscribe()
        self._collect()
        self._collect()
        self._pending.seal()
        self._sealed = True

    def _give_up(self) -> None:
        """Count everything not stored as lost and keep counting what arrives (sink thread, at exit)."""
        counters = []
        for sub in self._subs:  # replacing retires the old subscription atomically: each event is in one of them
            try:
                counters.append(self._bus.subscribe(sub.topic, self.subscriber_id, maxlen=1))
            except Exception:  # pragma: no cover - a bus without replacing subscribe
                self._bus.unsubscribe(sub.topic, self.subscriber_id)
                _log.exception("db sink: cannot count the events published after giving up")
        self._counters = counters
        left = self.backlog()
        for sub in self._subs:  # let go of what cannot be stored any more
            sub.drain()
        self._pending = PendingEvents()
        self._inflight = 0
        self.lost += left
        if left:
            self._report("stopped-with-backlog", f"db sink stopped without storing {left} events")

    def _unsubscribe(self) -> None:
        for sub in self._subs:
            self._bus.unsubscribe(sub.topic, self.subscriber_id)

    def _due(self, now: float) -> bool:
        eligible = self._pending.eligible_count()
        if eligible >= self.batch_size:
            return True
        if not eligible:
            return False
        since = self._pending.oldest_eligible_since()
        return since is not None and now - since >= self.max_delay_s

    def _sleep_s(self, now: float) -> float | None:
        if self._pending.has_held:
            return 0.0
        since = self._pending.oldest_eligible_since()
        if since is None:
            return None  # idle: wait for data, a flush or a stop
        return max(0.0, since + self.max_delay_s - now)

    def _flush_finished(self, ticket: int) -> None:
        with self._flush_cond:
            if ticket > self._flush_done:
                self._flush_done = ticket
            self._flush_cond.notify_all()

    def _write_eligible(self) -> None:
        """Commit every eligible event, ``batch_size`` at a time (flush and stop)."""
        while not self._aborted:
            batch = self._pending.take_batch(self.batch_size)
            if not batch:
                return
            self._write(batch)

    def _write(self, batch: list[TelemetryEvent]) -> None:
        """Commit one batch taken from pending; it counts as backlog until committed."""
        self._inflight = len(batch)
        try:
            self._commit(batch)
        finally:
            if not self._aborted:
                self._inflight = 0

    def _commit(self, batch: list[TelemetryEvent]) -> None:
        """Commit one batch, retrying until it is stored (or the sink aborts)."""
        delay_s = self.retry_initial_s
        isolate = False
        while not self._aborted:
            if self.write_delay_s > 0:
                self._interrupt.wait(self.write_delay_s)
            try:
                result = self.store.write_batch(batch, isolate=isolate)
            except Exception as exc:
                self.errors += 1
                self.failing = True
                self.last_error = f"{type(exc).__name__}: {exc}"
                if is_retryable_error(exc):
                    self.retries += 1
                    self._report("retry", f"db sink: writing {len(batch)} events failed ({self.last_error}); "
                                          f"kept, retrying in {delay_s:.2f}s")
                elif not isolate:
                    isolate = True
                    self._report("isolate", f"db sink: batch of {len(batch)} events failed ({self.last_error}); "
                                            "storing its events one by one")
                    continue
                else:
                    self.lost += len(batch)
                    self._report("lost", f"db sink: could not store {len(batch)} events ({self.last_error}); "
                                         f"first: {_describe(batch[0])}")
                    return
                self._emit_stats(force=True)
                self._interrupt.wait(delay_s)
                delay_s = min(delay_s * 2, self.retry_max_s)
                continue
            self._committed(batch, result)
            return

    def _committed(self, batch: list[TelemetryEvent], result: WriteResult) -> None:
        if self.failing:
            self.failing = False
            _log.info("db sink: writes recovered after %d retries", self.retries)
        stored = len(batch) - len(result.lost) - len(result.conflicts)
        self.persisted += stored
        self.duplicates += result.duplicates
        self.batches += 1
        self.rejected += len(result.rejected)
        self.lost += len(result.lost)
        if result.conflicts:
            self.conflicts += len(result.conflicts)
            for _evt, reason in result.conflicts:
                key = reason.split(":", 1)[0]
                self._conflict_reasons[key] = self._conflict_reasons.get(key, 0) + 1
        with self._stats_lock:
            self._recent.append((time.monotonic(), stored))
        self._inflight = 0
        self.gate.notify()
        for evt, reason in result.rejected:
            self._report("rejected", f"db sink: kept malformed event aside ({reason}): {_describe(evt)}",
                         level=logging.WARNING)
        for evt, reason in result.conflicts:
            self._report("conflict", f"db sink: not stored in its stream, kept aside ({reason}): {_describe(evt)}")
        for evt, reason in result.lost:
            self._report("unstored", f"db sink: not stored ({reason}): {_describe(evt)}", level=logging.WARNING)
        if self._on_run_persisted is not None:
            for run_id in result.completed_runs:
                try:
                    self._on_run_persisted(run_id)
                except Exception:
                    _log.exception("run_persisted callback failed")
        self._emit_stats()

    def _emit_stats(self, *, force: bool = False) -> None:
        if self._on_stats is None:
            return
        now = time.monotonic()
        if not force and now < self._next_stats_at:
            return
        self._next_stats_at = now + self.stats_interval_s
        try:
            self._on_stats(self.stats())
        except Exception:
            _log.exception("stats callback failed")
