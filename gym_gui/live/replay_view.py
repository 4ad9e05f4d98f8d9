"""ReplayView: loads a finished run's episodes (and, on request, an episode's steps), Qt-free.

The replay must be complete, so the view loads only once the run is fully persisted: the sink's
notice (``on_run_persisted(run_id)``: the DbSink's ``run_persisted`` fires after the run's
RUN_COMPLETED and everything before it is committed), or a stored terminal run row
(RUN_COMPLETED is committed last). The RUN_COMPLETED seen on the bus only triggers that
stored-row check early; it never starts a load on its own.

Races handled: the notice can arrive before a tick drains RUN_COMPLETED (it is remembered), or
before the view starts (``start()`` checks the stored row, which also covers a run opened from
history). A RUN_COMPLETED seen before its row is committed has the row checked again after 1, 2,
4, ... poll intervals, so the replay does not depend on the notice alone (a sink may have none).

A run without lifecycle records (no RUN_STARTED and no heartbeat stored: the existing gym_gui's
producers publish only steps and episodes, and are finished by ``RunRegistry.update_run_outcome``)
is also replayable while it runs, episode by episode: each EPISODE_FINALIZED of the run seen on the
bus triggers a read of the stored episodes (off the owner's thread, through ``reader``);
``episode_follow.EpisodeFollower`` decides when to read again (an episode not committed yet) and
when to give up. Each read that finds new episodes calls ``on_episodes_persisted``. The sink
commits a stream as a prefix (an episode after the steps before it), so a stored episode's steps
are stored too.

Anything stored replays: a run with lifecycle records already stored unfinished when the view
starts (running in another process, interrupted, its GUI killed) gets one ``on_episodes_persisted``
at the start with what is stored. That list and ``on_replay_ready``'s end, per stream, with the
partial episode (the steps stored after the stream's last EPISODE_FINALIZED,
``curve_reads.PARTIAL_OUTCOME``), so a worker that crashed mid-episode still has that episode to
replay. (The lists of a followed run without lifecycle records hold finished episodes only; its
replay_ready has the partial one.)

Time: ``tick(now_s)`` and ``clock()`` are the same monotonic seconds (a pump's clock). The read
schedule counts poll intervals (``poll_interval_s``) since ``start()``, whatever the tick rate;
``next_deadline_s`` says when the next read is due, and None once nothing is pending (ready,
stopped, or a run with lifecycle records waiting for its RUN_COMPLETED: the bus wakes it then).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Callable, Protocol

from gym_gui.live.episode_follow import EpisodeFollower, EpisodesByAgent
from gym_gui.live.live_view import Reader
from gym_gui.telemetry.curve_reads import partial_episodes_from_store
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.run_bus import RunBus, Subscription
from gym_gui.telemetry.sqlite_records import EpisodeRecord, RunRecord, StepRecord
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore
from gym_gui.telemetry.subscription import Waker

__all__ = ["EPISODE_MAXLEN", "ReplayListener", "ReplayView"]

_log = logging.getLogger(__name__)

#: Capacity of the bounded EPISODE_FINALIZED subscription (one tick's worth; a drop only means
#: that episode is found by the next read instead).
EPISODE_MAXLEN = 1024
#: A RUN_COMPLETED seen before its row is committed: the row is read again after 1, 2, 4, ... intervals.
_MAX_BACKOFF_TICKS = 10


class ReplayListener(Protocol):
    """Where a ReplayView's news goes (the Qt shell emits a signal for each). Owner's thread."""

    def on_replay_ready(self, run_id: str, episodes: EpisodesByAgent) -> None: ...
    def on_steps_loaded(self, agent_id: str, episode_index: int, steps: list[StepRecord]) -> None: ...
    def on_load_failed(self, message: str) -> None: ...
    def on_episodes_persisted(self, run_id: str, episodes: EpisodesByAgent) -> None: ...
    def on_released(self) -> None:
        """The view needs no more ticks nor sink notices (ready, or stopped)."""


def _by_agent(run: RunRecord | None, episodes: list[EpisodeRecord]) -> EpisodesByAgent:
    by_agent: EpisodesByAgent = {a: [] for a in (run.agent_ids if run else ()) if a is not None}
    for episode in episodes:
        by_agent.setdefault(episode.agent_id or "", []).append(episode)
    return by_agent


def _with_partial(by_agent: EpisodesByAgent, partial: list[EpisodeRecord]) -> EpisodesByAgent:
    """``by_agent`` with each stream's partial episode (steps after its last finished one) appended."""
    out = {agent: list(episodes) for agent, episodes in by_agent.items()}
    for episode in partial:
        out.setdefault(episode.agent_id or "", []).append(episode)
    for episodes in out.values():
        episodes.sort(key=lambda e: e.episode_index)
    return out


def _stored_episodes(store: TelemetrySQLiteStore, run: RunRecord | None, run_id: str) -> EpisodesByAgent:
    """Every stored episode of a run per agent, finished ones and each stream's partial one."""
    return _with_partial(_by_agent(run, store.episode_records(run_id)), partial_episodes_from_store(store, run_id))


def _has_lifecycle(run: RunRecord) -> bool:
    """True when the run sent RUN_STARTED or a heartbeat: it announces its end with RUN_COMPLETED."""
    return run.started_at is not None or run.last_heartbeat_at is not None


class ReplayView:
    """The replay data of one run. One owner thread; no method blocks (reads go to ``reader``)."""

    def __init__(self, bus: RunBus, reader: Reader, run_id: str, listener: ReplayListener, *,
                 waker: Waker | None = None, poll_interval_s: float = 0.1, subscriber_id: str | None = None,
                 follow_episodes: bool = True, clock: Callable[[], float] = time.monotonic) -> None:
        """Build the view; nothing runs before ``start()``. Raises ValueError unless ``poll_interval_s > 0``."""
        if not poll_interval_s > 0:
            raise ValueError(f"poll_interval_s must be > 0, got {poll_interval_s!r}")
        self.bus = bus
        self.reader = reader
        self.run_id = run_id
        self.subscriber_id = subscriber_id or f"replay-{run_id}"
        self._listener = listener
        self._waker = waker if waker is not None else Waker()
        self._interval_s = float(poll_interval_s)
        self._clock = clock
        self._start_s = 0.0
        self._sub: Subscription | None = None
        self._episode_sub: Subscription | None = None
        self._follow_episodes = follow_episodes
        self._follower: EpisodeFollower | None = None  # while following (started, no lifecycle records seen)
        self._snapshot_pending = follow_episodes  # the first stored check shows an unfinished run as stored
        self._awaiting_terminal = False  # RUN_COMPLETED seen, its terminal row not read yet
        self._terminal_tick = 0
        self._terminal_backoff_ticks = 1
        self._started = False
        self._stopped = False
        self._released = False
        self._persisted = False
        self._completion_seen = False
        self._checking = False
        self._recheck = False
        self._loading = False
        self._episodes: EpisodesByAgent | None = None
        self._last_progress: EpisodesByAgent | None = None
        self._polls = 0

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Subscribe to the run's RUN_COMPLETED (and EPISODE_FINALIZED while following) and check
        SQLite for a finished run (loading at once if it is); idempotent, a no-op after ``stop``."""
        if self._started or self._stopped:
            return
        self._started = True
        self._start_s = self._clock()
        if self._episodes is not None or self._persisted:
            self._maybe_load()
            return
        # RUN_COMPLETED comes once per stream: the lossless queue cannot grow.
        self._sub = self.bus.subscribe(Topic.RUN_COMPLETED, self.subscriber_id, maxlen=None, run_id=self.run_id,
                                       waker=self._waker)
        if self._follow_episodes:
            self._episode_sub = self.bus.subscribe(Topic.EPISODE_FINALIZED, self.subscriber_id,
                                                   maxlen=EPISODE_MAXLEN, run_id=self.run_id, waker=self._waker)
            self._follower = EpisodeFollower(start_tick=0)
        self._check_stored()

    def stop(self) -> None:
        """Unsubscribe and release; idempotent. Later read results are dropped."""
        self._stopped = True
        self._release_live()

    @property
    def live(self) -> bool:
        """True while the view waits for its run (started, not ready, not stopped)."""
        return self._started and not self._released

    @property
    def polls(self) -> int:
        """Ticks run so far."""
        return self._polls

    @property
    def persisted(self) -> bool:
        """True once the run is known to be fully persisted."""
        return self._persisted

    @property
    def completion_seen(self) -> bool:
        """True once the run's RUN_COMPLETED was drained from the bus."""
        return self._completion_seen

    @property
    def episodes(self) -> EpisodesByAgent | None:
        """The loaded episodes per agent, or None before ``on_replay_ready``."""
        return self._episodes

    @property
    def following(self) -> bool:
        """True while stored episodes are read as they are persisted (a run without lifecycle
        records, not ready yet)."""
        return self._follower is not None

    @property
    def persisted_so_far(self) -> EpisodesByAgent | None:
        """The episodes of the last ``on_episodes_persisted``, or None."""
        return self._last_progress

    def on_run_persisted(self, run_id: str) -> None:
        """The sink's notice that ``run_id`` is fully persisted (remembered before ``start``)."""
        if run_id != self.run_id or self._stopped:
            return
        self._persisted = True
        self._maybe_load()

    # -- steps -----------------------------------------------------------------------------------
    def load_steps(self, agent_id: str, episode_index: int) -> bool:
        """Read one episode's steps through the reader; ``on_steps_loaded`` follows. False (nothing
        read) after ``stop`` or when the reader is stopped."""
        if self._stopped:
            return False
        run_id = self.run_id

        def query(store: TelemetrySQLiteStore) -> list[StepRecord]:
            return store.steps_for_episode(run_id, agent_id, episode_index)

        def done(steps: list[StepRecord]) -> None:
            if not self._stopped:
                self._listener.on_steps_loaded(agent_id, episode_index, steps)

        return self.reader.submit(query, done, self._on_read_error)

    # -- the pump's interface --------------------------------------------------------------------
    def _tick_no(self, now_s: float) -> int:
        """Poll intervals since ``start()`` (the follower's and the terminal check's unit)."""
        return max(0, math.floor((now_s - self._start_s) / self._interval_s + 1e-9))

    def _at(self, tick_no: int) -> float:
        return self._start_s + tick_no * self._interval_s

    def next_deadline_s(self, now_s: float) -> float | None:
        """When the next read is due (or ``now_s`` with RUN_COMPLETED / episodes queued), else None."""
        if self._sub is None or self._stopped:
            return None
        if len(self._sub) or (self._episode_sub is not None and len(self._episode_sub)):
            return now_s
        due: float | None = None
        follower = self._follower
        if follower is not None and follower.next_read_tick is not None:
            due = self._at(max(follower.next_read_tick, 1))
        if self._awaiting_terminal and not self._checking:
            terminal = self._at(max(self._terminal_tick, 1))
            due = terminal if due is None else min(due, terminal)
        return due

    def tick(self, now_s: float) -> None:
        """Drain RUN_COMPLETED and EPISODE_FINALIZED of the run; read the stored episodes when one
        seen live is not known stored yet, or the terminal row when it is due."""
        if self._sub is None or self._stopped:
            return
        self._polls += 1
        tick = self._tick_no(now_s)
        if self._sub.drain() and not self._completion_seen:
            self._completion_seen = True
            _log.debug("replay %s: RUN_COMPLETED seen, waiting for the sink to persist it", self.run_id)
            self._check_stored(completion=True)
        follower = self._follower
        if follower is not None and self._episode_sub is not None:
            seen: list[TelemetryEvent | None] = list(self._episode_sub.drain())
            if self._episode_sub.take_lost_ranges():
                seen.append(None)  # dropped from the buffer: some episode, which the next read finds
            follower.saw(seen, tick)
        if (follower is not None and follower.read_due(tick)) or (
                self._awaiting_terminal and tick >= self._terminal_tick):
            self._check_stored()

    # -- waiting for the run ---------------------------------------------------------------------
    def _check_stored(self, *, completion: bool = False) -> None:
        """Ask SQLite whether the run's terminal row is committed (then it is fully persisted); while
        following a run without lifecycle records, also read its stored episodes. ``completion``: a
        RUN_COMPLETED was just seen, so a check already in flight (which may predate it) is redone."""
        if self._persisted:
            return
        if self._checking:
            self._recheck = self._recheck or completion
            return
        run_id = self.run_id
        follower = self._follower
        snapshot = self._snapshot_pending
        Found = tuple[RunRecord | None, EpisodesByAgent | None, EpisodesByAgent | None]

        def query(store: TelemetrySQLiteStore) -> Found:
            run = store.run(run_id)
            if run is None or run.is_terminal:
                return run, None, None
            following = follower is not None and not _has_lifecycle(run)
            if not following and not snapshot:
                return run, None, None
            if following:
                return run, _by_agent(run, store.episode_records(run_id)), None
            finished = _by_agent(run, store.episode_records(run_id))
            return run, finished, _with_partial(finished, partial_episodes_from_store(store, run_id))

        def done(result: Found) -> None:
            self._checking = False
            if self._stopped:
                return
            tick = self._tick_no(self._clock())
            run, finished, stored = result
            if run is not None and run.is_terminal:
                self._persisted = True
                self._maybe_load()
                return
            if snapshot and self._snapshot_pending:
                # The check at start: a run stored unfinished (running elsewhere, interrupted, or its
                # GUI killed) is replayable as stored, partial last episodes included. A run not
                # stored yet is new: its replay comes as its records are (see the module doc).
                self._snapshot_pending = False
                if run is not None and stored and any(stored.values()) and _has_lifecycle(run):
                    self._last_progress = stored
                    self._listener.on_episodes_persisted(self.run_id, stored)
            if run is not None and _has_lifecycle(run):
                self._stop_following()  # it will send RUN_COMPLETED: the replay waits for it
            elif follower is not None and follower is self._follower:
                if follower.read_done(finished or {}, tick):
                    # Finished episodes only: the episode under way is not listed as partial while
                    # the run is followed (it is a moment from being finished and listed).
                    self._last_progress = follower.progress
                    _log.debug("replay %s: episodes persisted so far: %s", self.run_id,
                               {a: len(e) for a, e in (self._last_progress or {}).items()})
                    self._listener.on_episodes_persisted(self.run_id, self._last_progress)
            if self._completion_seen:
                # RUN_COMPLETED seen on the bus, its row not committed yet: look again after 1, 2,
                # 4, ... intervals rather than rely on run_persisted alone (a sink may not have that signal).
                self._awaiting_terminal = True
                self._terminal_tick = tick + self._terminal_backoff_ticks
                self._terminal_backoff_ticks = min(self._terminal_backoff_ticks * 2, _MAX_BACKOFF_TICKS)
            if self._recheck:
                self._recheck = False
                self._check_stored()
            self._waker.notify()  # the schedule changed: the pump re-reads the deadline

        def failed(error: BaseException) -> None:
            self._checking = False
            tick = self._tick_no(self._clock())
            if follower is not None:
                follower.read_failed(tick)  # not again at every tick
            self._terminal_tick = tick + self._terminal_backoff_ticks
            self._on_read_error(error)
            self._waker.notify()

        self._checking = True  # (a reader may call back before submit returns)
        if self.reader.submit(query, done, failed):
            if self._checking and follower is not None:
                follower.read_started()
        else:
            self._checking = False

    def _stop_following(self) -> None:
        self._follower = None
        if self._episode_sub is not None:
            self.bus.unsubscribe(Topic.EPISODE_FINALIZED, self.subscriber_id)
            self._episode_sub = None

    # -- loading ---------------------------------------------------------------------------------
    def _maybe_load(self) -> None:
        if not self._started or self._stopped or not self._persisted or self._loading or self._episodes is not None:
            return
        run_id = self.run_id

        def query(store: TelemetrySQLiteStore) -> EpisodesByAgent:
            return _stored_episodes(store, store.run(run_id), run_id)

        def failed(error: BaseException) -> None:
            self._loading = False
            self._on_read_error(error)

        self._loading = True
        self._loading = self.reader.submit(query, self._on_loaded, failed) and self._loading
        if not self._loading and self._episodes is None:
            self._listener.on_load_failed(f"replay {run_id}: the store reader is stopped")

    def _on_loaded(self, episodes: EpisodesByAgent) -> None:
        self._loading = False
        if self._stopped or self._episodes is not None:
            return
        self._episodes = episodes
        self._release_live()
        _log.info("replay %s ready: %s", self.run_id, {a: len(e) for a, e in episodes.items()})
        self._listener.on_replay_ready(self.run_id, episodes)

    def _on_read_error(self, error: BaseException) -> None:
        message = f"replay {self.run_id}: read failed: {type(error).__name__}: {error}"
        _log.warning("%s", message)
        if not self._stopped:
            self._listener.on_load_failed(message)

    def _release_live(self) -> None:
        """Unsubscribe and tell the listener nothing more is needed (all idempotent)."""
        self._stop_following()
        if self._sub is not None:
            self.bus.unsubscribe(Topic.RUN_COMPLETED, self.subscriber_id)
            self._sub = None
        if not self._released:
            self._released = True
            self._listener.on_released()
