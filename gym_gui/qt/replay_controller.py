"""ReplayController: loads a finished run's episodes (and, on request, an episode's steps) from SQLite.

The replay must be complete, so the controller loads only once the run is fully persisted: the
DbSink's ``run_persisted(run_id)`` (it fires after the run's RUN_COMPLETED and everything before it
is committed), or a stored terminal run row (RUN_COMPLETED is committed last). The RUN_COMPLETED
seen on the bus only triggers that stored-row check early; it never starts a load on its own.

Races handled: ``run_persisted`` can arrive before the poll timer drains RUN_COMPLETED (the signal
is connected at construction and remembered), or before the controller exists (``start()`` checks
the stored row, which also covers a run opened from history).
"""

from __future__ import annotations

import logging
from typing import Any

from qtpy.QtCore import QObject, Qt, QTimer, Signal

from gym_gui.qt.store_reader import StoreReader
from gym_gui.telemetry.events import Topic
from gym_gui.telemetry.run_bus import RunBus, Subscription
from gym_gui.telemetry.sqlite_records import EpisodeRecord, StepRecord
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore

__all__ = ["ReplayController"]

_log = logging.getLogger(__name__)

EpisodesByAgent = dict[str, list[EpisodeRecord]]


class ReplayController(QObject):
    """The replay data of one run, for the GUI thread.

    Signals (GUI thread): ``replay_ready(run_id, episodes_by_agent)`` exactly once, with every
    stored episode of every agent of the run (``dict[str, list[EpisodeRecord]]``, episodes in
    episode_index order; an agent without episodes maps to ``[]``);
    ``steps_loaded(agent_id, episode_index, steps)`` for each ``load_steps`` (``list[StepRecord]``
    in seq_id order); ``load_failed(message)`` when a read failed.
    """

    replay_ready = Signal(str, object)
    steps_loaded = Signal(str, int, object)
    load_failed = Signal(str)

    def __init__(
        self,
        bus: RunBus,
        reader: StoreReader,
        run_persisted_signal: Any,
        run_id: str,
        *,
        poll_interval_ms: int = 100,
        subscriber_id: str | None = None,
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
        self._started = False
        self._stopped = False
        self._persisted = False
        self._completion_seen = False
        self._checking = False
        self._loading = False
        self._episodes: EpisodesByAgent | None = None
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
        """One tick: drain RUN_COMPLETED of the run. GUI thread (the timer calls it); does not block."""
        if self._sub is None or self._stopped:
            return
        self._polls += 1
        if self._sub.drain() and not self._completion_seen:
            self._completion_seen = True
            _log.debug("replay %s: RUN_COMPLETED seen, waiting for the sink to persist it", self.run_id)
            self._check_stored()

    def _on_run_persisted(self, run_id: str) -> None:
        if run_id != self.run_id or self._stopped:
            return
        self._persisted = True
        self._maybe_load()

    def _check_stored(self) -> None:
        """Ask SQLite whether the run's terminal row is committed (then it is fully persisted)."""
        if self._checking or self._persisted:
            return
        run_id = self.run_id

        def query(store: TelemetrySQLiteStore) -> bool:
            run = store.run(run_id)
            return run is not None and run.is_terminal

        def done(terminal: bool) -> None:
            self._checking = False
            if terminal and not self._stopped:
                self._persisted = True
                self._maybe_load()

        def failed(error: BaseException) -> None:
            self._checking = False
            self._on_read_error(error)

        self._checking = self.reader.submit(query, done, failed)

    # -- loading ---------------------------------------------------------------------------------
    def _maybe_load(self) -> None:
        if not self._started or self._stopped or not self._persisted or self._loading or self._episodes is not None:
            return
        run_id = self.run_id

        def query(store: TelemetrySQLiteStore) -> EpisodesByAgent:
            run = store.run(run_id)
            by_agent: EpisodesByAgent = {a: [] for a in (run.agent_ids if run else ()) if a is not None}
            for episode in store.episode_records(run_id):
                by_agent.setdefault(episode.agent_id or "", []).append(episode)
            return by_agent

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
        if self._sub is not None:
            self.bus.unsubscribe(Topic.RUN_COMPLETED, self.subscriber_id)
            self._sub = None
        if self._connected:
            self._connected = False
            try:
                self._signal.disconnect(self._on_run_persisted)
            except (TypeError, RuntimeError):  # already disconnected, or the sink is gone
                pass
