"""LiveView: one stream's live view, Qt-free, driven by ``tick(now_s)`` (see docs/qt-layer.md).

It owns two stream-ordered multi-topic bus subscriptions (``RunBus.subscribe_topics``): the
stream's data (STEP_APPENDED and EPISODE_FINALIZED, one deque in publish order, lost ranges per
stream across both) and the run's lifecycle (RUN_STARTED, RUN_HEARTBEAT, RUN_COMPLETED of any
agent: a worker's lifecycle records carry its default agent, and a burst of steps must never
evict them). Per tick it drains each (at most ``max_batch`` events), decides stalls (``StallClock``), turns dropped ranges and stall gaps into backfill
reads (``GapTracker``; one read in flight, through a ``reader`` with
``submit(query, on_done, on_error) -> bool``, e.g. the Qt ``StoreReader``), and hands at most one
``LiveBatch`` per tick to its listener, with the newest step seen so far (``latest_step``) for the
tab to render. Nothing here blocks, waits on SQLite or imports Qt: the Qt shell
(``qt/live_controller.py``) turns the listener calls into signals, and a ``GuiPump`` calls
``tick``; tests call it directly with their own clock.

``next_deadline_s`` tells the pump when the view needs a tick
without new data: more queued than one batch, recovered events to deliver, a backfill retry, or
the stall deadline. A read result landing calls ``wake()`` (the pump's waker), so it is delivered
at the next frame.

About 420 lines: the tick's stages (drain, stall, gap reads, delivery) share the view's state; the
parts with their own state are already apart (``live_batch``, ``live_gaps``, ``stall_clock``).
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Protocol

from gym_gui.live.live_batch import LiveBatch
from gym_gui.live.live_gaps import BACKFILL_TOPICS, GapPlan, GapReadResult, GapTracker, read_gaps
from gym_gui.live.run_state import outcome_severity
from gym_gui.live.stall_clock import StallClock
from gym_gui.rate_limited_log import RateLimitedLog
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.run_bus import RunBus, Subscription
from gym_gui.telemetry.subscription import Waker
from gym_gui.telemetry.topic_specs import backfilled_topics, lifecycle_topics

__all__ = ["LiveListener", "LiveView", "Reader"]

_log = logging.getLogger(__name__)
_rate_log = RateLimitedLog(_log, interval_s=5.0)

_STEP, _EPISODE = Topic.STEP_APPENDED, Topic.EPISODE_FINALIZED
_DATA = backfilled_topics()  # a stream's data: STEP_APPENDED, EPISODE_FINALIZED
_LIFECYCLE = lifecycle_topics()  # RUN_STARTED, RUN_HEARTBEAT, RUN_COMPLETED
#: Longest wait between backfill retries that found nothing new to read.
MAX_RETRY_DELAY_S = 1.0


def _by_seq(evt: TelemetryEvent) -> int:
    return evt.seq_id


class LiveListener(Protocol):
    """Where a LiveView's news goes (the Qt shell emits a signal for each). Called on the ticking thread."""

    def on_batch(self, batch: LiveBatch) -> None: ...
    def on_run_started(self, evt: TelemetryEvent) -> None: ...
    def on_heartbeat(self, evt: TelemetryEvent) -> None: ...
    def on_stall_changed(self, stalled: bool) -> None: ...
    def on_run_completed(self, evt: TelemetryEvent) -> None: ...


class Reader(Protocol):
    """Runs ``query(store)`` elsewhere and calls ``on_done(result)`` / ``on_error(exc)`` back on the
    owner's thread; False when it cannot take the query (stopped)."""

    def submit(self, query: Callable[[Any], Any], on_done: Callable[[Any], None],
               on_error: Callable[[BaseException], None] | None = None) -> bool: ...


class LiveView:
    """The live state of stream ``(run_id, agent_id)``. One owner thread; no method blocks.

    ``waker``: shared by every subscription of the view (a pump's ``GuiWaker`` in the app, a plain
    ``Waker`` in tests); ``wake``: called when a read result lands (None: ``waker.notify``).
    ``retry_delay_s``: the first backfill retry's delay (doubling up to ``MAX_RETRY_DELAY_S``).
    """

    def __init__(self, bus: RunBus, run_id: str, agent_id: str, listener: LiveListener, *,
                 reader: Reader | None = None, waker: Waker | None = None, wake: Callable[[], None] | None = None,
                 buffer_maxlen: int = 4096, max_batch: int = 4096, heartbeat_interval_s: float = 1.0,
                 stall_missed_intervals: int = 3, idle_timeout_s: float | None = None,
                 history_after_seq_id: int | None = None, retry_delay_s: float = 0.05) -> None:
        """Build the view; nothing is subscribed until ``start()``. Raises ValueError on bad arguments."""
        if not run_id or not agent_id:
            raise ValueError(f"run_id and agent_id must be non-empty, got {run_id!r}, {agent_id!r}")
        for name, value in (("buffer_maxlen", buffer_maxlen), ("max_batch", max_batch)):
            if type(value) is not int or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if not retry_delay_s > 0:
            raise ValueError(f"retry_delay_s must be > 0, got {retry_delay_s!r}")
        self.bus = bus
        self.run_id = run_id
        self.agent_id = agent_id
        self._listener = listener
        self._reader = reader
        self._waker = waker if waker is not None else Waker()
        self._wake = wake if wake is not None else self._waker.notify
        self._buffer_maxlen = buffer_maxlen
        self._max_batch = max_batch
        self._stall = StallClock(heartbeat_interval_s, stall_missed_intervals, idle_timeout_s=idle_timeout_s)
        self._gaps = GapTracker()
        self._data: Subscription | None = None
        self._lifecycle: Subscription | None = None
        self._started = self._stopped = False
        self._ticks = 0
        self._now = 0.0
        self._latest: TelemetryEvent | None = None
        self._last_seq: int | None = None  # newest seq_id of this stream seen (any topic)
        self._live_top = {_STEP: -1, _EPISODE: -1}  # newest seq_id each data subscription delivered
        self._check_after: int | None = None  # after a stall: check the seq_ids after this one
        self._history_after = history_after_seq_id
        self._history_key: int | None = None  # the open history check, until the first live event
        self._completed_tick: int | None = None
        self._started_seen = False
        self._completion_severity: int | None = None  # SEVERITY of the completion emitted (None: none)
        self._steps_total = self._episodes_total = self._dropped_total = self._backfilled_total = 0
        self._recovered: list[TelemetryEvent] = []  # read back, delivered at the next tick
        self._in_flight = False
        self._queries = 0
        self._retry_base_s = float(retry_delay_s)
        self._retry_s = self._retry_base_s
        self._next_query_at: float | None = None  # None: at the next tick

    # -- lifecycle ---------------------------------------------------------------------------------
    @property
    def subscriber_id(self) -> str:
        """``ui-{run_id}-{agent_id}``: the bus subscriber id of every subscription."""
        return f"ui-{self.run_id}-{self.agent_id}"

    @property
    def started(self) -> bool:
        """True between ``start()`` and ``stop()``."""
        return self._started and not self._stopped

    @property
    def stopped(self) -> bool:
        """True once ``stop()`` ran (the view cannot be started again)."""
        return self._stopped

    def start(self) -> None:
        """Subscribe; idempotent, a no-op after ``stop()``. Raises ValueError (and subscribes
        nothing) if the subscriber id is already in use on the bus."""
        if self._started or self._stopped:
            return
        sid = self.subscriber_id
        self._data = self.bus.subscribe_topics(_DATA, sid, maxlen=self._buffer_maxlen, run_id=self.run_id,
                                               agent_id=self.agent_id, waker=self._waker, replace=False)
        try:
            self._lifecycle = self.bus.subscribe_topics(_LIFECYCLE, sid, maxlen=self._buffer_maxlen,
                                                        run_id=self.run_id, waker=self._waker, replace=False)
        except ValueError:
            self._unsubscribe()
            raise
        self._started = True
        if self._history_after is not None:
            self._history_key = self._gaps.add_history(self._history_after + 1)

    def stop(self) -> None:
        """Unsubscribe; idempotent. Results of a backfill still running are dropped; no restart."""
        if self._stopped:
            return
        self._stopped = True
        self._unsubscribe()
        self._recovered.clear()

    def _unsubscribe(self) -> None:
        if self._data is not None:
            self.bus.unsubscribe_topics(_DATA, self.subscriber_id)
        if self._lifecycle is not None:
            self.bus.unsubscribe_topics(_LIFECYCLE, self.subscriber_id)
        self._data = self._lifecycle = None

    # -- state -------------------------------------------------------------------------------------
    @property
    def ticks(self) -> int:
        """Ticks run so far (a listener's ``on_batch`` sees the tick that made the batch)."""
        return self._ticks

    @property
    def backfill_queries(self) -> int:
        """Backfill queries submitted to the reader so far."""
        return self._queries

    @property
    def gaps(self) -> GapTracker:
        """The open gaps and checks (truthy while some gap waits to be read)."""
        return self._gaps

    @property
    def stall(self) -> StallClock:
        """The stream's stall clock."""
        return self._stall

    def is_stalled(self) -> bool:
        """True while the stream is stalled."""
        return self._stall.stalled

    def stats(self) -> dict[str, Any]:
        """Running totals: ``steps_total``, ``episodes_total``, ``dropped_total`` (steps and episodes the
        live buffers dropped), ``backfilled_total`` (events delivered from SQLite), ``pending_backfill``
        (lost seq_ids not delivered yet), ``unrecoverable`` (lost seq_ids given up), ``stalled``."""
        return {
            "steps_total": self._steps_total,
            "episodes_total": self._episodes_total,
            "dropped_total": self._dropped_total,
            "backfilled_total": self._backfilled_total,
            "pending_backfill": self._gaps.pending() + len(self._recovered),  # read back, not yet delivered
            "unrecoverable": self._gaps.unrecoverable,
            "stalled": self._stall.stalled,
        }

    # -- the pump's interface ----------------------------------------------------------------------
    def next_deadline_s(self, now_s: float) -> float | None:
        """When the view needs a tick without new data (``now_s``: at the next frame), or None."""
        if self._data is None or self._lifecycle is None:
            return None
        if self._recovered or len(self._data) or len(self._lifecycle):
            return now_s
        due = self._stall.deadline_s()
        if self._reader is not None and self._gaps and not self._in_flight:
            retry = now_s if self._next_query_at is None else self._next_query_at
            due = retry if due is None else min(due, retry)
        elif self._completed_tick is not None and self._gaps.checks_open and not self._gaps:
            due = now_s if due is None else min(due, now_s)  # one more tick retires the read checks
        return due

    def tick(self, now_s: float) -> None:
        """One tick: drain, account, maybe query, emit."""
        data, lifecycle = self._data, self._lifecycle
        if data is None or lifecycle is None:  # not started, or stopped
            return
        self._ticks += 1
        self._now = now_s
        n = self._max_batch
        steps: list[TelemetryEvent] = []
        episodes: list[TelemetryEvent] = []
        for evt in data.drain(n):  # publish order: each list stays in seq_id order
            (steps if evt.topic is _STEP else episodes).append(evt)
        started: list[TelemetryEvent] = []
        beats: list[TelemetryEvent] = []
        completed: list[TelemetryEvent] = []
        for evt in lifecycle.drain(n):
            topic = evt.topic
            (started if topic is Topic.RUN_STARTED else beats if topic is Topic.RUN_HEARTBEAT else completed).append(evt)
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
            resumed = self._stall.note_event(now_s)
            if resumed and self._last_seq is not None:
                self._check_after = self._last_seq
            self._note_seq_ids(steps, episodes, started, beats, completed)
        if completed:
            resumed = self._stall.complete() or resumed
            if self._completed_tick is None:
                self._completed_tick = self._ticks
        if resumed:
            _log.info("stream %s/%s resumed", self.run_id, self.agent_id)
            self._listener.on_stall_changed(False)

        steps = self._gaps.admit(steps)
        episodes = self._gaps.admit(episodes)
        self._collect_lost_ranges()
        self._maybe_query(now_s)

        self._started_seen = self._started_seen or bool(started)
        for evt in started:
            self._listener.on_run_started(evt)
        self._emit_batch(steps, episodes)
        if beats:
            self._listener.on_heartbeat(beats[-1])
        for evt in completed:  # (a late-opened stream may have it from SQLite already)
            self._emit_completion(evt)
        if self._stall.check(now_s):
            _log.info("stream %s/%s stalled: no event for %.1f s", self.run_id, self.agent_id, self._stall.timeout_s)
            self._listener.on_stall_changed(True)

    # -- internals ---------------------------------------------------------------------------------
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
            self._retry_now()
        top = max(own)
        if self._last_seq is None or top > self._last_seq:
            self._last_seq = top

    def _retry_now(self) -> None:
        self._retry_s, self._next_query_at = self._retry_base_s, None

    def _collect_lost_ranges(self) -> None:
        """Turn the data subscription's drops into gaps (or unrecoverable counts without a reader)."""
        data = self._data
        assert data is not None
        for ranges in data.take_lost_ranges().values():  # (one stream: the subscription's filter)
            if self._reader is None:
                self._gaps.count_unrecoverable(ranges)
            else:
                self._gaps.add_lost(_DATA, ranges)
                self._retry_now()
            _rate_log.log(logging.INFO, f"lost:{self.subscriber_id}",
                          "steps/episodes of %s/%s dropped seq ranges %s", self.run_id, self.agent_id, ranges)
        self._dropped_total = data.dropped
        # The lowest seq_id the data subscription may still deliver live bounds which checks can go.
        horizon = float("inf")
        exhausted = self._completed_tick is not None and self._completed_tick < self._ticks and len(data) == 0
        if not exhausted:
            for topic in BACKFILL_TOPICS:
                horizon = min(horizon, self._live_top[topic] + 1)
        self._gaps.retire_checks(horizon)

    def _maybe_query(self, now_s: float) -> None:
        """Submit one backfill query when gaps are open, none is in flight and the retry delay passed."""
        if self._reader is None or self._in_flight or not self._gaps:
            return
        if self._next_query_at is not None and now_s < self._next_query_at:
            return
        plan = self._gaps.plan(self.run_id, self.agent_id, self._max_batch)
        self._in_flight = True  # (a reader may call back before submit returns)
        submitted = self._reader.submit(lambda store: read_gaps(store, plan),
                                        lambda result: self._on_read(plan, result), self._on_read_error)
        if submitted:
            self._queries += 1
        else:
            self._in_flight = False
            self._back_off()

    def _back_off(self) -> None:
        self._next_query_at = self._now + self._retry_s
        self._retry_s = min(MAX_RETRY_DELAY_S, self._retry_s * 2)

    def _on_read(self, plan: GapPlan, result: GapReadResult) -> None:
        """A backfill query's result (owner's thread, via the reader); delivered at the next tick."""
        self._in_flight = False
        if self._stopped:
            return
        if self._history_after is not None:
            self._lifecycle_from_store(result)
        events, moved = self._gaps.apply(plan, result, run_completed=self._completed_tick is not None)
        self._recovered += events
        if moved:
            self._retry_now()
        else:
            self._back_off()
        self._wake()

    def _lifecycle_from_store(self, result: GapReadResult) -> None:
        """A stream opened late may have missed its RUN_STARTED and RUN_COMPLETED on the bus: emit them
        from the stored run row instead (once each, only if not seen live)."""
        run = result.run
        if run is None:
            return
        seq = result.max_seq_id if result.max_seq_id is not None else 0
        if not self._started_seen and run.started_at is not None:
            self._started_seen = True
            self._listener.on_run_started(TelemetryEvent(Topic.RUN_STARTED, self.run_id, self.agent_id, seq,
                                                         run.started_at, {"env_id": run.env_id, "config": run.config}))
        if run.is_terminal and self._completed_tick is None:
            self._completed_tick = self._ticks
            self._stall.complete()
            payload = {"outcome": run.outcome, "exit_code": run.exit_code, "signal": run.signal,
                       "stderr_tail": run.stderr_tail, "summary": run.summary}
            self._emit_completion(TelemetryEvent(Topic.RUN_COMPLETED, self.run_id, self.agent_id, seq,
                                                 run.completed_at or run.updated_at, payload))

    def _emit_completion(self, evt: TelemetryEvent) -> None:
        """Emit the run's first completion, and a later one only when it is more severe (failed >
        cancelled > completed: e.g. a run marked failed after its worker ended cancelled)."""
        severity = outcome_severity(evt.payload.get("outcome"))
        if self._completion_severity is not None and severity <= self._completion_severity:
            return
        self._completion_severity = severity
        self._listener.on_run_completed(evt)

    def _on_read_error(self, error: BaseException) -> None:
        """A backfill query failed (owner's thread); it is retried after the retry delay."""
        self._in_flight = False
        _rate_log.log(logging.WARNING, f"backfill:{self.subscriber_id}", "backfill of %s/%s failed: %s: %s",
                      self.run_id, self.agent_id, type(error).__name__, error)
        self._back_off()
        self._wake()

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
        self._listener.on_batch(LiveBatch(
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
