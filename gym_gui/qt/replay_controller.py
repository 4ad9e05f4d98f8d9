"""ReplayController: loads a finished run's episodes (and, on request, an episode's steps) from SQLite.

The replay must be complete, so the controller loads only once the run is fully persisted: the
DbSink's ``run_persisted(run_id)`` (it fires after the run's RUN_COMPLETED and everything before it
is committed), or a stored terminal run row (RUN_COMPLETED is committed last). The RUN_COMPLETED
seen on the bus only triggers that stored-row check early; it never starts a load on its own.

Races handled: ``run_persisted`` can arrive before the poll timer drains RUN_COMPLETED (the signal
is connected at construction and remembered), or before the controller exists (``start()`` checks
the stored row, which also covers a run opened from history). A RUN_COMPLETED seen before its row
is committed has the row checked again after 1, 2, 4, ... ticks, so the replay does not depend on
the notice alone (a sink may have none).

A run without lifecycle records (no RUN_STARTED and no heartbeat stored: the existing gym_gui's
producers publish only steps and episodes, and are finished by ``RunRegistry.update_run_outcome``)
is also replayable while it runs, episode by episode: each EPISODE_FINALIZED of the run seen on the
bus triggers a read of the stored episodes (off the GUI thread); ``episode_follow.EpisodeFollower``
decides when to read again (an episode not committed yet) and when to give up. Each read that finds
new episodes emits ``episodes_persisted``. The sink commits a stream as a prefix (an episode after
the steps before it), so a stored episode's steps are stored too.

Anything stored replays: a run with lifecycle records already stored unfinished when the controller
starts (running in another process, interrupted, its GUI killed) gets one ``episodes_persisted`` at
the start with what is stored. That list and ``replay_ready``'s end, per stream, with the partial
episode (the steps stored after the stream's last EPISODE_FINALIZED, ``curve_reads.PARTIAL_OUTCOME``),
so a worker that crashed mid-episode still has that episode to replay. (The lists of a followed run
without lifecycle records hold finished episodes only; its replay_ready has the partial one.)
"""

from __future__ import annotations

import logging
from typing import Any

from qtpy.QtCore import QObject, Qt, QTimer, Signal

from gym_gui.live.episode_follow import EpisodeFollower, EpisodesByAgent
from gym_gui.qt.store_reader import StoreReader
from gym_gui.telemetry.curve_reads import partial_episodes_from_store
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.run_bus import RunBus, Subscription
from gym_gui.telemetry.sqlite_records import EpisodeRecord, RunRecord, StepRecord
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore

__all__ = ["ReplayController"]

_log = logging.getLogger(__name__)

#: Capacity of the bounded EPISODE_FINALIZED subscription (one tick's worth; a drop only means
#: that episode is found by the next read instead).
EPISODE_MAXLEN = 1024
#: A RUN_COMPLETED seen before its row is committed: the row is read again after 1, 2, 4, ... ticks.
_MAX_BACKOFF_TICKS = 10


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


class ReplayController(QObject):
    """The replay data of one run, for the GUI thread.

    Signals (GUI thread): ``replay_ready(run_id, episodes_by_agent)`` exactly once, with every
    stored episode of every agent of the run (``dict[str, list[EpisodeRecord]]``, episodes in
    episode_index order; an agent without episodes maps to ``[]``);
    ``steps_loaded(agent_id, episode_index, steps)`` for each ``load_steps`` (``list[StepRecord]``
    in seq_id order); ``load_failed(message)`` when a read failed;
    ``episodes_persisted(run_id, episodes_by_agent)`` (same shape as ``replay_ready``, every
    episode stored so far) each time more episodes of a still running run without lifecycle
    records are stored (``follow_episodes=False`` turns this off).
    """

    replay_ready = Signal(str, object)
    steps_loaded = Signal(str, int, object)
    load_failed = Signal(str)
    episodes_persisted = Signal(str, object)

    def __init__(
        self,
        bus: RunBus,
        reader: StoreReader,
        run_persisted_signal: Any,
        run_id: str,
        *,
        poll_interval_ms: int = 100,
        subscriber_id: str | None = None,
        follow_episodes: bool = True,
        parent: QObject | None = None,
    ) -> None:
        """Connect to ``run_persisted_signal`` (a bound ``Signal(str)``, e.g. ``DbSink.run_persisted``)
        at once, so no persisted notice is missed; nothing else runs before ``start()``.
        GUI thread; does not block."""
        super().__init__(parent)
        self.bus = bus
        self.reader = reader
        self.run_id = run_id
        self.subscriber_id = subscriber_id or f"replay-{run_id}"
        self._signal: Any = run_persisted_signal
        self._signal.connect(self._on_run_persisted, Qt.ConnectionType.QueuedConnection)
        self._connected = True
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
        self._persisted = False
        self._completion_seen = False
        self._checking = False
        self._recheck = False
        self._loading = False
        self._episodes: EpisodesByAgent | None = None
        self._last_progress: EpisodesByAgent | None = None
        self._polls = 0
        self._timer = QTimer(self)
        self._timer.setInterval(poll_interval_ms)
        self._timer.timeout.connect(self.poll)

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Subscribe to the run's RUN_COMPLETED, start polling and check SQLite for a finished run
        (loading at once if it is); idempotent, a no-op after ``stop``. GUI thread; does not block."""
        if self._started or self._stopped:
            return
        self._started = True
        if self._episodes is not None or self._persisted:
            self._maybe_load()
            return
        # RUN_COMPLETED comes once per stream: the lossless queue cannot grow.
        self._sub = self.bus.subscribe(Topic.RUN_COMPLETED, self.subscriber_id, maxlen=None, run_id=self.run_id)
        if self._follow_episodes:
            self._episode_sub = self.bus.subscribe(Topic.EPISODE_FINALIZED, self.subscriber_id,
                                                   maxlen=EPISODE_MAXLEN, run_id=self.run_id)
            self._follower = EpisodeFollower(start_tick=self._polls)
        self._timer.start()
        self._check_stored()

    def stop(self) -> None:
        """Stop polling, unsubscribe and disconnect from the sink's signal; idempotent. Later read
        results are dropped. GUI thread; does not block."""
        self._stopped = True
        self._release_live()

    def is_polling(self) -> bool:
        """True while the poll timer runs (until the replay is ready or ``stop``). GUI thread."""
        return self._timer.isActive()

    @property
    def poll_timer(self) -> QTimer:
        """The poll timer (tests prove it is stopped). GUI thread."""
        return self._timer

    @property
    def polls(self) -> int:
        """Poll ticks run so far. GUI thread."""
        return self._polls

    @property
    def persisted(self) -> bool:
        """True once the run is known to be fully persisted. GUI thread."""
        return self._persisted

    @property
    def completion_seen(self) -> bool:
        """True once the run's RUN_COMPLETED was drained from the bus. GUI thread."""
        return self._completion_seen

    @property
    def episodes(self) -> EpisodesByAgent | None:
        """The loaded episodes per agent, or None before ``replay_ready``. GUI thread."""
        return self._episodes

    def is_connected(self) -> bool:
        """True while connected to the sink's ``run_persisted`` signal. GUI thread."""
        return self._connected

    @property
    def following(self) -> bool:
        """True while stored episodes are read as they are persisted (a run without lifecycle
        records, not ready yet). GUI thread."""
        return self._follower is not None

    @property
    def persisted_so_far(self) -> EpisodesByAgent | None:
        """The episodes of the last ``episodes_persisted``, or None. GUI thread."""
        return self._last_progress

    # -- steps -----------------------------------------------------------------------------------
    def load_steps(self, agent_id: str, episode_index: int) -> bool:
        """Read one episode's steps off the GUI thread; ``steps_loaded`` follows. False (nothing
        read) after ``stop`` or when the reader is stopped. GUI thread; does not block."""
        if self._stopped:
            return False
        run_id = self.run_id

        def query(store: TelemetrySQLiteStore) -> list[StepRecord]:
            return store.steps_for_episode(run_id, agent_id, episode_index)

        def done(steps: list[StepRecord]) -> None:
            if not self._stopped:
                self.steps_loaded.emit(agent_id, episode_index, steps)

        return self.reader.submit(query, done, self._on_read_error)

    # -- waiting for the run ---------------------------------------------------------------------
    def poll(self) -> None:
        """One tick: drain RUN_COMPLETED and EPISODE_FINALIZED of the run; read the stored episodes
        when one seen live is not known stored yet. GUI thread (the timer calls it); does not block."""
        if self._sub is None or self._stopped:
            return
        self._polls += 1
        if self._sub.drain() and not self._completion_seen:
            self._completion_seen = True
            _log.debug("replay %s: RUN_COMPLETED seen, waiting for the sink to persist it", self.run_id)
            self._check_stored(completion=True)
        follower = self._follower
        if follower is not None and self._episode_sub is not None:
            seen: list[TelemetryEvent | None] = list(self._episode_sub.drain())
            if self._episode_sub.take_lost_ranges():
                seen.append(None)  # dropped from the buffer: some episode, which the next read finds
            follower.saw(seen, self._polls)
        if (follower is not None and follower.read_due(self._polls)) or (
                self._awaiting_terminal and self._polls >= self._terminal_tick):
            self._check_stored()

    def _on_run_persisted(self, run_id: str) -> None:
        if run_id != self.run_id or self._stopped:
            return
        self._persisted = True
        self._maybe_load()

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
                    self.episodes_persisted.emit(self.run_id, stored)
            if run is not None and _has_lifecycle(run):
                self._stop_following()  # it will send RUN_COMPLETED: the replay waits for it
            elif follower is not None and follower is self._follower:
                if follower.read_done(finished or {}, self._polls):
                    # Finished episodes only: the episode under way is not listed as partial while
                    # the run is followed (it is a moment from being finished and listed).
                    self._last_progress = follower.progress
                    _log.debug("replay %s: episodes persisted so far: %s", self.run_id,
                               {a: len(e) for a, e in (self._last_progress or {}).items()})
                    self.episodes_persisted.emit(self.run_id, self._last_progress)
            if self._completion_seen:
                # RUN_COMPLETED seen on the bus, its row not committed yet: look again after 1, 2,
                # 4, ... ticks rather than rely on run_persisted alone (a sink may not have that signal).
                self._awaiting_terminal = True
                self._terminal_tick = self._polls + self._terminal_backoff_ticks
                self._terminal_backoff_ticks = min(self._terminal_backoff_ticks * 2, _MAX_BACKOFF_TICKS)
            if self._recheck:
                self._recheck = False
                self._check_stored()

        def failed(error: BaseException) -> None:
            self._checking = False
            if follower is not None:
                follower.read_failed(self._polls)  # not again at every tick
            self._terminal_tick = self._polls + self._terminal_backoff_ticks
            self._on_read_error(error)

        self._checking = self.reader.submit(query, done, failed)
        if self._checking and follower is not None:
            follower.read_started()

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

        self._loading = self.reader.submit(query, self._on_loaded, failed)
        if not self._loading:
            self.load_failed.emit(f"replay {run_id}: the store reader is stopped")

    def _on_loaded(self, episodes: EpisodesByAgent) -> None:
        self._loading = False
        if self._stopped or self._episodes is not None:
            return
        self._episodes = episodes
        self._release_live()
        _log.info("replay %s ready: %s", self.run_id, {a: len(e) for a, e in episodes.items()})
        self.replay_ready.emit(self.run_id, episodes)

    def _on_read_error(self, error: BaseException) -> None:
        message = f"replay {self.run_id}: read failed: {type(error).__name__}: {error}"
        _log.warning("%s", message)
        if not self._stopped:
            self.load_failed.emit(message)

    def _release_live(self) -> None:
        """Stop the timer, unsubscribe, disconnect from the sink's signal (all idempotent)."""
        self._timer.stop()
        self._stop_following()
        if self._sub is not None:
            self.bus.unsubscribe(Topic.RUN_COMPLETED, self.subscriber_id)
            self._sub = None
        if self._connected:
            self._connected = False
            try:
                self._signal.disconnect(self._on_run_persisted)
            except (TypeError, RuntimeError):  # already disconnected, or the sink is gone
                pass
