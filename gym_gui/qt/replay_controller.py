"""ReplayController: the Qt shell of one run's replay loader (see docs/qt-layer.md).

The logic (wait until the run is fully persisted, follow a run without lifecycle records episode
by episode, load the episodes and, on request, an episode's steps) is
``gym_gui.live.replay_view.ReplayView``, Qt-free and driven by ``tick(now_s)``; read its module
docstring for the rules and races. This QObject connects the sink's ``run_persisted`` signal
(queued, at construction, so no notice is missed), turns the view's news into signals, and
registers the view on a ``GuiPump``: the window's (``pump=``) or, without one, a pump of its own
ticking at most every ``poll_interval_ms``. The view leaves the pump as soon as the replay is ready.
"""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import QObject, Qt, QTimer, Signal

from gym_gui.live.episode_follow import EpisodesByAgent
from gym_gui.live.replay_view import EPISODE_MAXLEN, ReplayView
from gym_gui.qt.gui_pump import GuiPump
from gym_gui.qt.store_reader import StoreReader
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.telemetry.sqlite_records import StepRecord

__all__ = ["EPISODE_MAXLEN", "ReplayController"]


class _Emitter:
    """The ReplayView's listener: each call becomes the controller's signal."""

    __slots__ = ("_ctl",)

    def __init__(self, ctl: "ReplayController") -> None:
        self._ctl = ctl

    def on_replay_ready(self, run_id: str, episodes: EpisodesByAgent) -> None:
        self._ctl.replay_ready.emit(run_id, episodes)

    def on_steps_loaded(self, agent_id: str, episode_index: int, steps: list[StepRecord]) -> None:
        self._ctl.steps_loaded.emit(agent_id, episode_index, steps)

    def on_load_failed(self, message: str) -> None:
        self._ctl.load_failed.emit(message)

    def on_episodes_persisted(self, run_id: str, episodes: EpisodesByAgent) -> None:
        self._ctl.episodes_persisted.emit(run_id, episodes)

    def on_released(self) -> None:
        self._ctl._release()  # noqa: SLF001 (the shell's own hook)


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
        pump: GuiPump | None = None,
        poll_interval_ms: int = 100,
        subscriber_id: str | None = None,
        follow_episodes: bool = True,
        parent: QObject | None = None,
    ) -> None:
        """Connect to ``run_persisted_signal`` (a bound ``Signal(str)``, e.g. ``DbSink.run_persisted``)
        at once, so no persisted notice is missed; nothing else runs before ``start()``.
        ``pump``: the window's GuiPump (None: a pump of its own). ``poll_interval_ms``: the unit of
        the read schedule (retries after 1, 2, 4, ... of it). GUI thread; does not block."""
        super().__init__(parent)
        if type(poll_interval_ms) is not int or poll_interval_ms < 1:
            raise ValueError(f"poll_interval_ms must be an int >= 1, got {poll_interval_ms!r}")
        self.bus = bus
        self.reader = reader
        self.run_id = run_id
        self._own_pump = pump is None
        self._pump = pump if pump is not None else GuiPump(frame_interval_ms=poll_interval_ms, parent=self)
        self._waker = self._pump.new_waker()  # this view's own: its news ticks it alone
        self._view = ReplayView(bus, reader, run_id, _Emitter(self), waker=self._waker,
                                poll_interval_s=poll_interval_ms / 1000.0, subscriber_id=subscriber_id,
                                follow_episodes=follow_episodes, clock=self._pump.clock)
        self.subscriber_id = self._view.subscriber_id
        self._signal: Any = run_persisted_signal
        self._signal.connect(self._on_run_persisted, Qt.ConnectionType.QueuedConnection)
        self._connected = True

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def view(self) -> ReplayView:
        """The Qt-free view this controller shells. GUI thread."""
        return self._view

    @property
    def pump(self) -> GuiPump:
        """The pump that ticks the view (the window's, or the controller's own). GUI thread."""
        return self._pump

    def start(self) -> None:
        """Subscribe to the run's RUN_COMPLETED, register on the pump and check SQLite for a finished
        run (loading at once if it is); idempotent, a no-op after ``stop``. GUI thread; does not block."""
        if self._view.live or not self._connected:
            return
        self._pump.add(self._view, waker=self._waker)
        if self._own_pump:
            self._pump.start()
        self._view.start()
        if not self._view.live:  # ready (or stopped) at once
            self._release()

    def stop(self) -> None:
        """Leave the pump, unsubscribe and disconnect from the sink's signal; idempotent. Later read
        results are dropped. GUI thread; does not block."""
        self._view.stop()
        self._release()

    def _release(self) -> None:
        """Leave the pump (stopping the own one) and disconnect from the sink's signal (idempotent)."""
        self._pump.remove(self._view)
        if self._own_pump:
            self._pump.stop()
        if self._connected:
            self._connected = False
            try:
                self._signal.disconnect(self._on_run_persisted)
            except (TypeError, RuntimeError):  # already disconnected, or the sink is gone
                pass

    def is_polling(self) -> bool:
        """True while the view waits for its run on a running pump (until the replay is ready or
        ``stop``). GUI thread."""
        return self._view.live and self._pump.is_running() and self._view in self._pump

    @property
    def poll_timer(self) -> QTimer:
        """The pump's one timer (shared with the pump's other views; tests prove it is stopped). GUI thread."""
        return self._pump.poll_timer

    @property
    def polls(self) -> int:
        """Ticks of this view so far. GUI thread."""
        return self._view.polls

    def poll(self) -> None:
        """One tick now (the pump calls the view itself; this is for callers that want one at once).
        GUI thread; does not block."""
        self._view.tick(self._pump.clock())
        self._pump.reschedule()

    @property
    def persisted(self) -> bool:
        """True once the run is known to be fully persisted. GUI thread."""
        return self._view.persisted

    @property
    def completion_seen(self) -> bool:
        """True once the run's RUN_COMPLETED was drained from the bus. GUI thread."""
        return self._view.completion_seen

    @property
    def episodes(self) -> EpisodesByAgent | None:
        """The loaded episodes per agent, or None before ``replay_ready``. GUI thread."""
        return self._view.episodes

    def is_connected(self) -> bool:
        """True while connected to the sink's ``run_persisted`` signal. GUI thread."""
        return self._connected

    @property
    def following(self) -> bool:
        """True while stored episodes are read as they are persisted (a run without lifecycle
        records, not ready yet). GUI thread."""
        return self._view.following

    @property
    def persisted_so_far(self) -> EpisodesByAgent | None:
        """The episodes of the last ``episodes_persisted``, or None. GUI thread."""
        return self._view.persisted_so_far

    # -- steps -----------------------------------------------------------------------------------
    def load_steps(self, agent_id: str, episode_index: int) -> bool:
        """Read one episode's steps off the GUI thread; ``steps_loaded`` follows. False (nothing
        read) after ``stop`` or when the reader is stopped. GUI thread; does not block."""
        return self._view.load_steps(agent_id, episode_index)

    def _on_run_persisted(self, run_id: str) -> None:
        self._view.on_run_persisted(run_id)
