"""LiveTelemetryController: one stream's live view for the GUI thread (see docs/qt-layer.md).

A ``QTimer`` on the GUI thread polls five bounded bus subscriptions of the stream. Each tick
drains them (at most ``max_batch`` events each) and emits at most one ``batch_ready(LiveBatch)``
with the tick's steps and episodes plus what a backfill recovered since the last tick. Events the
bounded buffers dropped, and seq_ids skipped over a stall, are read back from SQLite through the
``StoreReader`` (one query in flight at a time) and delivered in a later batch, each event once.
Nothing here waits on SQLite or on a worker.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from qtpy.QtCore import QObject, Qt, QTimer, Signal

from gym_gui.rate_limited_log import RateLimitedLog
from gym_gui.live.live_batch import LiveBatch
from gym_gui.live.live_gaps import BACKFILL_TOPICS, GapPlan, GapReadResult, GapTracker, read_gaps
from gym_gui.live.stall_clock import StallClock
from gym_gui.qt.store_reader import StoreReader
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.run_bus import RunBus, Subscription

__all__ = ["LiveTelemetryController"]

_log = logging.getLogger(__name__)
_rate_log = RateLimitedLog(_log, interval_s=5.0)

_STEP, _EPISODE = Topic.STEP_APPENDED, Topic.EPISODE_FINALIZED
_LIFECYCLE = (Topic.RUN_STARTED, Topic.RUN_HEARTBEAT, Topic.RUN_COMPLETED)
#: Longest wait between backfill retries that found nothing new to read.
_MAX_RETRY_DELAY_MS = 1000


def _by_seq(evt: TelemetryEvent) -> int:
    return evt.seq_id


class LiveTelemetryController(QObject):
    """The live subscriptions, poll timer, stall detection and backfill of stream ``(run_id, agent_id)``.

    Signals (GUI thread): ``batch_ready(LiveBatch)``, ``run_started(evt)``, ``heartbeat(evt)``
    (newest RUN_HEARTBEAT of a tick), ``stall_changed(bool)``, ``run_completed(evt)``.
    The lifecycle topics are subscribed for the whole run (any agent: a worker's lifecycle records
    carry its default agent), the data topics for this stream only. ``clock`` is the monotonic
    time in seconds used by stall detection (a test hook).
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

        ``history_after_seq_id``: for a stream that began before this controller, also deliver (from
        SQLite, as backfill) its events after this seq_id that precede the first one seen live;
        ``-1`` means from its very beginning. None (the default) starts with what is published after
        ``start()``. ``idle_timeout_s``: a stream whose run sent no RUN_STARTED and no heartbeat is
        stalled after this much silence (None: after ``stall_missed_intervals`` x
        ``heartbeat_interval_s``, as any other).
        """
        super().__init__(parent)
        if not run_id or not agent_id:
            raise ValueError(f"run_id and agent_id must be non-empty, got {run_id!r}, {agent_id!r}")
        for name, value in (("poll_interval_ms", poll_interval_ms), ("buffer_maxlen", buffer_maxlen),
                            ("max_batch", max_batch)):
            if type(value) is not int or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        self.bus = bus
        self.run_id = run_id
        self.agent_id = agent_id
        self._reader = reader
        self._buffer_maxlen = buffer_maxlen
        self._max_batch = max_batch
        self._clock = clock
        self._stall = StallClock(heartbeat_interval_s, stall_missed_intervals, idle_timeout_s=idle_timeout_s)
        self._gaps = GapTracker()
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(poll_interval_ms)
        self._timer.timeout.connect(self._poll)
        self._subs: dict[Topic, Subscription] = {}
        self._started = self._stopped = False
        self._ticks = 0
        # What was delivered
        self._latest: TelemetryEvent | None = None
        self._last_seq: int | None = None  # newest seq_id of this stream seen (any topic)
        self._live_top = {_STEP: -1, _EPISODE: -1}  # newest seq_id each data subscription delivered
        self._check_after: int | None = None  # after a stall: check the seq_ids after this one
        self._history_after = history_after_seq_id
        self._history_key: int | None = None  # the open history check, until the first live event
        self._completed_tick: int | None = None
        self._started_seen = self._completion_emitted = False
        self._steps_total = self._episodes_total = self._dropped_total = self._backfilled_total = 0
        # Backfill
        self._recovered: list[TelemetryEvent] = []  # read back, delivered at the next tick
        self._in_flight = False
        self._queries = 0
        self._retry_ticks = 1
        self._max_retry_ticks = max(1, _MAX_RETRY_DELAY_MS // poll_interval_ms)
        self._next_query_tick = 0

    # -- lifecycle ---------------------------------------------------------------------------------
    @property
    def subscriber_id(self) -> str:
        """``ui-{run_id}-{agent_id}``: the bus subscriber id of every subscription. Any thread."""
        return f"ui-{self.run_id}-{self.agent_id}"

    def start(self) -> None:
        """Subscribe and start the poll timer; idempotent, a no-op after ``stop()``. GUI thread; never blocks.

        Raises ValueError (and subscribes nothing) if the subscriber id is already in use on the bus.
        """
        if self._started or self._stopped:
            return
        sid = self.subscriber_id
        self._subs = self.bus.subscribe_all((_STEP, _EPISODE), sid, maxlen=self._buffer_maxlen,
                                            run_id=self.run_id, agent_id=self.agent_id, replace=False)
        try:
            self._subs.update(self.bus.subscribe_all(_LIFECYCLE, sid, maxlen=self._buffer_maxlen, run_id=self.run_id,
                                                     replace=False))
        except ValueError:
            self._unsubscribe()
            raise
        self._started = True
        if self._history_after is not None:
            self._history_key = self._gaps.add_history(self._history_after + 1)
        self._timer.start()

    def stop(self) -> None:
        """Stop the timer and unsubscribe; idempotent. Results of a backfill still running are dropped.

        GUI thread; never blocks. The controller cannot be started again.
        """
        if self._stopped:
            return
        self._stopped = True
        self._timer.stop()
        self._unsubscribe()
        self._recovered.clear()

    def _unsubscribe(self) -> None:
        for topic in self._subs:
            self.bus.unsubscribe(topic, self.subscriber_id)
        self._subs.clear()

    def is_polling(self) -> bool:
        """True while the poll timer is active. GUI thread."""
        return self._timer.isActive()

    # -- state -------------------------------------------------------------------------------------
    @property
    def ticks(self) -> int:
        """Poll ticks run so far (``batch_ready`` handlers see the tick that emitted it). GUI thread."""
        return self._ticks

    @property
    def backfill_queries(self) -> int:
        """Backfill queries submitted to the reader so far. GUI thread."""
        return self._queries

    def is_stalled(self) -> bool:
        """True while the stream is stalled. GUI thread."""
        return self._stall.stalled

    def stall_timeout_s(self) -> float:
        """Seconds without an event after which the stream is stalled (from the run's interval). GUI thread."""
        return self._stall.timeout_s

    def stats(self) -> dict[str, Any]:
        """Running totals: ``steps_total``, ``episodes_total``, ``dropped_total`` (steps and episodes the
        live buffers dropped), ``backfilled_total`` (events delivered from SQLite), ``pending_backfill``
        (lost seq_ids not delivered yet), ``unrecoverable`` (lost seq_ids given up), ``stalled``.
        GUI thread; never blocks.
        """
        return {
            "steps_total": self._steps_total,
            "episodes_total": self._episodes_total,
            "dropped_total": self._dropped_total,
            "backfilled_total": self._backfilled_total,
            "pending_backfill": self._gaps.pending() + len(self._recovered),  # read back, not yet delivered
            "unrecoverable": self._gaps.unrecoverable,
            "stalled": self._stall.stalled,
        }

    # -- the tick ----------------------------------------------------------------------------------
    def _poll(self) -> None:
        """One tick: drain, account, maybe query, emit. GUI thread (the timer)."""
        if not self._subs:  # a timeout queued before stop()
            return
        self._ticks += 1
        now = self._clock()
        n = self._max_batch
        subs = self._subs
        started = subs[Topic.RUN_STARTED].drain(n)
        steps = subs[_STEP].drain(n)
        episodes = subs[_EPISODE].drain(n)
        beats = subs[Topic.RUN_HEARTBEAT].drain(n)
        completed = subs[Topic.RUN_COMPLETED].drain(n)
        for evt in started:
            config = evt.payload.get("config")
            if isinstance(config, dict):
                self._stall.configure(config.get("heartbeat_interval_s"))
        for evt in beats:
            self._stall.announce(evt.payload.get("interval_s"))
        if started or beats:
            self._stall.note_lifecycle()

        resumed = False
        if started or steps or episodes or beats or completed:
            resumed = self._stall.note_event(now)
            if resumed and self._last_seq is not None:
                self._check_after = self._last_seq
            self._note_seq_ids(steps, episodes, started, beats, completed)
        if completed:
            resumed = self._stall.complete() or resumed
            if self._completed_tick is None:
                self._completed_tick = self._ticks
        if resumed:
            _log.info("stream %s/%s resumed", self.run_id, self.agent_id)
            self.stall_changed.emit(False)

        steps = self._gaps.admit(steps)
        episodes = self._gaps.admit(episodes)
        self._collect_lost_ranges()
        self._maybe_query()

        self._started_seen = self._started_seen or bool(started)
        for evt in started:
            self.run_started.emit(evt)
        self._emit_batch(steps, episodes)
        if beats:
            self.heartbeat.emit(beats[-1])
        if not self._completion_emitted:  # (a late-opened stream may have it from SQLite already)
            for evt in completed:
                self.run_completed.emit(evt)
        self._completion_emitted = self._completion_emitted or bool(completed)
        if self._stall.check(now):
            _log.info("stream %s/%s stalled: no event for %.1f s", self.run_id, self.agent_id, self._stall.timeout_s)
            self.stall_changed.emit(True)

    def _note_seq_ids(self, steps: list[TelemetryEvent], episodes: list[TelemetryEvent],
                      *lifecycle: list[TelemetryEvent]) -> None:
        """Track the newest seq_ids seen and open the stall check once this stream speaks again."""
        own = [e.seq_id for group in lifecycle for e in group if e.agent_id == self.agent_id]
        if steps:
            self._live_top[_STEP] = steps[-1].seq_id
            own += (steps[0].seq_id, steps[-1].seq_id)
        if episodes:
            self._live_top[_EPISODE] = episodes[-1].seq_id
            own += (episodes[0].seq_id, episodes[-1].seq_id)
        if not own:
            return
        if self._history_key is not None:
            self._gaps.close_history(self._history_key, min(own) - 1)
            self._history_key = None
        if self._check_after is not None:
            self._gaps.add_check(self._check_after + 1, min(own) - 1)
            self._check_after = None
            self._retry_ticks, self._next_query_tick = 1, self._ticks
        top = max(own)
        if self._last_seq is None or top > self._last_seq:
            self._last_seq = top

    def _collect_lost_ranges(self) -> None:
        """Turn the data subscriptions' drops into gaps (or unrecoverable counts without a reader)."""
        dropped = 0
        for topic in (_STEP, _EPISODE):
            sub = self._subs[topic]
            dropped += sub.dropped
            for ranges in sub.take_lost_ranges().values():
                if self._reader is None:
                    self._gaps.count_unrecoverable(ranges)
                else:
                    self._gaps.add_lost(topic, ranges)
                    self._retry_ticks, self._next_query_tick = 1, self._ticks
                _rate_log.log(logging.INFO, f"lost:{self.subscriber_id}",
                              "%s of %s/%s dropped seq ranges %s", topic.name, self.run_id, self.agent_id, ranges)
        self._dropped_total = dropped
        # The lowest seq_id a data subscription may still deliver live bounds which checks can go.
        horizon = float("inf")
        for topic in BACKFILL_TOPICS:
            exhausted = (self._completed_tick is not None and self._completed_tick < self._ticks
                         and len(self._subs[topic]) == 0)
            if not exhausted:
                horizon = min(horizon, self._live_top[topic] + 1)
        self._gaps.retire_checks(horizon)

    def _maybe_query(self) -> None:
        """Submit one backfill query when gaps are open, none is in flight and the retry delay passed."""
        if self._reader is None or self._in_flight or not self._gaps or self._ticks < self._next_query_tick:
            return
        plan = self._gaps.plan(self.run_id, self.agent_id, self._max_batch)
        submitted = self._reader.submit(lambda store: read_gaps(store, plan),
                                        lambda result: self._on_read(plan, result), self._on_read_error)
        if submitted:
            self._in_flight = True
            self._queries += 1

    def _on_read(self, plan: GapPlan, result: GapReadResult) -> None:
        """A backfill query's result (GUI thread, via the StoreReader); delivered at the next tick."""
        self._in_flight = False
        if self._stopped:
            return
        if self._history_after is not None:
            self._lifecycle_from_store(result)
        events, moved = self._gaps.apply(plan, result, run_completed=self._completed_tick is not None)
        self._recovered += events
        self._retry_ticks = 1 if moved else min(self._max_retry_ticks, self._retry_ticks * 2)
        self._next_query_tick = self._ticks + self._retry_ticks

    def _lifecycle_from_store(self, result: GapReadResult) -> None:
        """A stream opened late may have missed its RUN_STARTED and RUN_COMPLETED on the bus: emit them
        from the stored run row instead (once each, only if not seen live). GUI thread."""
        run = result.run
        if run is None:
            return
        seq = result.max_seq_id if result.max_seq_id is not None else 0
        if not self._started_seen and run.started_at is not None:
            self._started_seen = True
            self.run_started.emit(TelemetryEvent(Topic.RUN_STARTED, self.run_id, self.agent_id, seq, run.started_at,
                                                 {"env_id": run.env_id, "config": run.config}))
        if run.is_terminal and self._completed_tick is None:
            self._completed_tick = self._ticks
            self._completion_emitted = True
            self._stall.complete()
            payload = {"outcome": run.outcome, "exit_code": run.exit_code, "signal": run.signal,
                       "stderr_tail": run.stderr_tail, "summary": run.summary}
            self.run_completed.emit(TelemetryEvent(Topic.RUN_COMPLETED, self.run_id, self.agent_id, seq,
                                                   run.completed_at or run.updated_at, payload))

    def _on_read_error(self, error: BaseException) -> None:
        """A backfill query failed (GUI thread); it is retried after the retry delay."""
        self._in_flight = False
        _rate_log.log(logging.WARNING, f"backfill:{self.subscriber_id}", "backfill of %s/%s failed: %s: %s",
                      self.run_id, self.agent_id, type(error).__name__, error)
        self._retry_ticks = min(self._max_retry_ticks, self._retry_ticks * 2)
        self._next_query_tick = self._ticks + self._retry_ticks

    def _emit_batch(self, steps: list[TelemetryEvent], episodes: list[TelemetryEvent]) -> None:
        """Merge the tick's live events with what was recovered, update the totals, emit one batch."""
        recovered, self._recovered = self._recovered, []
        if recovered:
            steps = sorted(steps + [e for e in recovered if e.topic is _STEP], key=_by_seq)
            episodes = sorted(episodes + [e for e in recovered if e.topic is _EPISODE], key=_by_seq)
        if not steps and not episodes:
            return
        latest = None
        if steps and (self._latest is None or steps[-1].seq_id > self._latest.seq_id):
            latest = self._latest = steps[-1]
        self._steps_total += len(steps)
        self._episodes_total += len(episodes)
        self._backfilled_total += len(recovered)
        self.batch_ready.emit(LiveBatch(
            run_id=self.run_id,
            agent_id=self.agent_id,
            steps=tuple(steps),
            episodes=tuple(episodes),
            latest_step=latest,
            backfilled=len(recovered),
            steps_total=self._steps_total,
            episodes_total=self._episodes_total,
            dropped_total=self._dropped_total,
            backfilled_total=self._backfilled_total,
            pending_backfill=self._gaps.pending(),
            unrecoverable=self._gaps.unrecoverable,
        ))
