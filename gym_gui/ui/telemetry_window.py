"""MainWindow: launches runs, opens an Online tab per live stream and a Replay tab per agent of a finished run."""

from __future__ import annotations

import logging
from typing import Any, Sequence

from qtpy.QtCore import Qt, Signal
from qtpy.QtGui import QCloseEvent
from qtpy.QtWidgets import QDockWidget, QMainWindow, QMessageBox, QTabWidget, QVBoxLayout, QWidget

from gym_gui.qt.app_services import AppServices
from gym_gui.qt.live_controller import LiveTelemetryController
from gym_gui.qt.replay_controller import ReplayController
from gym_gui.qt.run_registry import RunStatus
from gym_gui.ingest.proxy import DEFAULT_AGENT_ID
from gym_gui.ingest.worker_specs import WorkerSpec
from gym_gui.workers.runtime import new_run_id
from gym_gui.ui.debug_pane import DebugPane
from gym_gui.ui.launch_panel import LaunchPanel
from gym_gui.ui.online_tab import AgentOnlineTab
from gym_gui.ui.replay_tab import AgentReplayTab
from gym_gui.ui.runs_view import RunsView

__all__ = ["MainWindow"]

_log = logging.getLogger(__name__)

StreamKey = tuple[str, str]
DEBUG_DOCK_HEIGHT_PX = 220
TERMINAL = {RunStatus.COMPLETED.value, RunStatus.FAILED.value, RunStatus.CANCELLED.value}


class MainWindow(QMainWindow):
    """The gym_gui telemetry window. GUI thread only; it owns every controller and tab it opens.

    ``online_opened(run_id, agent_id)`` and ``replay_opened(run_id, agent_id)`` are emitted when the
    ``Agent-{id}-Online`` / ``Agent-{id}-Replay`` tab of a stream appears.
    """

    online_opened = Signal(str, str)
    replay_opened = Signal(str, str)

    def __init__(self, services: AppServices, parent: QWidget | None = None) -> None:
        """Build the window over started or not yet started ``services``. GUI thread; does not block."""
        super().__init__(parent)
        self.services = services
        self.setWindowTitle(f"gym_gui telemetry - {services.db_path}")
        self._online: dict[StreamKey, tuple[LiveTelemetryController, AgentOnlineTab]] = {}
        self._replay_controllers: dict[str, ReplayController] = {}
        self._replay_tabs: dict[StreamKey, AgentReplayTab] = {}
        self._unshown: set[StreamKey] = set()  # Online tabs created but not added yet
        self._quiet: set[StreamKey] = set()  # streams of runs known only as stalled: opened if they speak
        self._shut_down = False

        self.launch_panel = LaunchPanel()
        self.runs_view = RunsView()
        self.tabs = QTabWidget()
        self.tabs.setTabsClosable(True)
        self.tabs.addTab(self.runs_view, "Runs")
        self.tabs.tabBar().setTabButton(0, self.tabs.tabBar().RightSide, None)  # the runs list stays
        self.tabs.tabCloseRequested.connect(self._close_tab)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.addWidget(self.launch_panel)
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)

        self.debug_pane = DebugPane(services.bus)
        self.debug_pane.add_source("workers", services.launcher.stats)
        self.debug_pane.add_source("sink", services.sink.stats)
        if services.redis_source is not None:
            self.debug_pane.add_source("redis", services.redis_source.stats)
        dock = QDockWidget("Telemetry debug", self)
        dock.setObjectName("telemetry-debug")
        dock.setWidget(self.debug_pane)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
        self.resizeDocks([dock], [DEBUG_DOCK_HEIGHT_PX], Qt.Orientation.Vertical)

        self.launch_panel.start_requested.connect(self.start_run)
        self.launch_panel.cancel_requested.connect(self.cancel_runs)
        self.runs_view.replay_requested.connect(self.open_replay)
        services.registry.status_changed.connect(self._on_status)
        services.registry.stream_added.connect(self._on_stream)
        services.launcher.run_exited.connect(self._on_run_exited)
        services.sink.error.connect(self._on_sink_error)
        self.debug_pane.start()

    # -- runs ------------------------------------------------------------------------------------
    def start_run(self, spec: WorkerSpec) -> str | None:
        """Launch a built-in worker for ``spec`` and open its Online tab at once. GUI thread; does not
        wait for the worker. Returns the run id, or None when the worker could not be started."""
        run_id = new_run_id("run")
        self.services.registry.register_pending(run_id)
        self._watch_run(run_id)
        self._open_online(run_id, spec.agent_id)  # subscribed before the worker's first line
        return self._launch(spec.argv(run_id), run_id, spec.agent_id, f"{spec.env_id}, {spec.episodes} episodes")

    def start_command(self, argv: Sequence[str], *, default_agent_id: str = DEFAULT_AGENT_ID,
                      run_id: str | None = None) -> str | None:
        """Launch any worker command (JSONL on stdout); its streams' Online tabs open as they appear.

        GUI thread; does not wait for the worker. ``run_id`` names records without one. Returns the
        run id, or None when the command could not be started.
        """
        run_id = run_id or new_run_id("run")
        # No pending entry or replay watch here: a command may name its runs itself. Its runs and
        # streams appear with their first events (or a failed completion if it dies silently).
        return self._launch(argv, run_id, default_agent_id, " ".join(argv))

    def _launch(self, argv: Sequence[str], run_id: str, default_agent_id: str, what: str) -> str | None:
        try:
            self.services.launcher.launch(argv, run_id=run_id, default_agent_id=default_agent_id)
        except (OSError, RuntimeError, ValueError) as exc:
            _log.error("cannot start the worker for %s: %s", run_id, exc)
            QMessageBox.warning(self, "Cannot start the run", f"{type(exc).__name__}: {exc}")
            return None
        self.launch_panel.set_running(True)
        self.statusBar().showMessage(f"run {run_id} started: {what}", 5000)
        return run_id

    def cancel_runs(self) -> None:
        """Cancel every launched run that is still going. GUI thread; does not block."""
        for run_id in self.services.launcher.active_run_ids():
            self.services.launcher.cancel(run_id)
            self.statusBar().showMessage(f"cancelling {run_id}", 5000)

    def open_replay(self, run_id: str) -> None:
        """Open the Replay tabs of a run (they appear once it is completed and persisted). GUI thread."""
        if not run_id:
            return
        self._watch_run(run_id)
        for (tab_run, _agent), tab in self._replay_tabs.items():
            if tab_run == run_id:
                self.tabs.setCurrentWidget(tab)
                return

    def _on_status(self, run_id: str, status: str) -> None:
        state = self.services.registry.state(run_id)
        env_id = state.env_id if state is not None else None
        agents = tuple(state.agent_ids) if state is not None else ()
        self.runs_view.set_run(run_id, status, env_id, agents)
        if status != RunStatus.RUNNING.value:
            return
        for key in sorted(k for k in self._quiet if k[0] == run_id):  # a quiet stored run speaks again
            self._quiet.discard(key)
            self._on_stream(*key)
        if state is not None and state.anonymous_stream and not agents:
            # A run whose only stream has no agent id (the existing producers' ''): no stream_added
            # and no Online tab for it, but its Replay tab opens as its episodes are stored.
            self._watch_run(run_id)

    def _on_stream(self, run_id: str, agent_id: str) -> None:
        status = self.services.registry.status(run_id)
        launched_here = self.services.launcher.launched(run_id)  # even if it is already over
        key = (run_id, agent_id)
        if key in self._online:
            return
        if not launched_here and status is not RunStatus.RUNNING:
            # History: finished (its replay opens on request), or stored and silent (a run that
            # never finished, e.g. one without lifecycle records): its tabs open if it speaks again.
            if status is not None and status.value not in TERMINAL:
                self._quiet.add(key)
            return
        self._watch_run(run_id)
        self._open_online(run_id, agent_id, from_start=True)  # seen after its first events: read those back

    def _on_run_exited(self, run_id: str, exit_code: Any) -> None:
        self.launch_panel.set_running(bool(self.services.launcher.active_run_ids()))

    def _on_sink_error(self, message: str) -> None:
        self.statusBar().showMessage(f"database: {message} (retrying; nothing is dropped)", 10000)

    # -- tabs ------------------------------------------------------------------------------------
    def _open_online(self, run_id: str, agent_id: str, *, from_start: bool = False) -> None:
        if (run_id, agent_id) in self._online:
            return
        controller = LiveTelemetryController(self.services.bus, run_id, agent_id, reader=self.services.reader,
                                             idle_timeout_s=self.services.registry.idle_timeout_s,
                                             history_after_seq_id=-1 if from_start else None, parent=self)
        tab = AgentOnlineTab(run_id, agent_id)
        controller.run_started.connect(tab.on_run_started)
        controller.batch_ready.connect(tab.on_batch)
        controller.heartbeat.connect(tab.on_heartbeat)
        controller.stall_changed.connect(tab.on_stall_changed)
        controller.run_completed.connect(tab.on_run_completed)
        key = (run_id, agent_id)
        self._online[key] = (controller, tab)
        controller.start()
        self._unshown.add(key)
        if from_start:  # a stream seen first on the bus may carry only lifecycle records (e.g. a
            # worker's default agent): its tab shows with its first step or episode, or with the run's end
            controller.batch_ready.connect(lambda _batch, key=key: self._show_online(key))
        else:
            self._show_online(key)

    def _show_online(self, key: StreamKey) -> None:
        if key not in self._unshown or key not in self._online:
            return
        self._unshown.discard(key)
        run_id, agent_id = key
        tab = self._online[key][1]
        index = self.tabs.addTab(tab, f"Agent-{agent_id}-Online")
        self.tabs.setTabToolTip(index, f"run {run_id}, agent {agent_id}: live")
        self.tabs.setCurrentIndex(index)
        self.online_opened.emit(run_id, agent_id)

    def _watch_run(self, run_id: str) -> None:
        if run_id in self._replay_controllers:
            return
        controller = ReplayController(self.services.bus, self.services.reader, self.services.sink.run_persisted,
                                      run_id, parent=self)
        controller.replay_ready.connect(self._on_replay_ready)
        controller.episodes_persisted.connect(self._on_episodes_persisted)
        controller.steps_loaded.connect(self._on_steps_loaded)
        self._replay_controllers[run_id] = controller
        controller.start()

    def _on_replay_ready(self, run_id: str, episodes_by_agent: dict[str, Any]) -> None:
        controller = self._replay_controllers.get(run_id)
        if controller is None:
            return
        self.services.registry.poll()  # the run's final status is on the bus already: show it with the tabs
        with_data = {agent for agent, episodes in episodes_by_agent.items() if episodes}
        unshown = [key for key in self._unshown if key[0] == run_id]
        for key in unshown:  # data streams show; lifecycle-only ones only when the run has no other
            if key[1] in with_data or not with_data and not any(k[0] == run_id for k in self._shown_online()):
                self._show_online(key)
        status = self.services.registry.status(run_id)
        self._show_replays(run_id, controller, episodes_by_agent, finished=True,
                           outcome=status.value if status is not None else None)

    def _on_episodes_persisted(self, run_id: str, episodes_by_agent: dict[str, Any]) -> None:
        """A run without lifecycle records, still going: its Replay tabs open with its first stored
        episode and list every episode stored so far."""
        controller = self._replay_controllers.get(run_id)
        if controller is not None:
            self._show_replays(run_id, controller, episodes_by_agent, finished=False)

    def _show_replays(self, run_id: str, controller: ReplayController, episodes_by_agent: dict[str, Any], *,
                      finished: bool, outcome: str | None = None) -> None:
        for agent_id, episodes in episodes_by_agent.items():
            key = (run_id, agent_id)
            tab = self._replay_tabs.get(key)
            if tab is None:
                if not episodes:  # nothing to replay for that agent
                    continue
                tab = AgentReplayTab(run_id, agent_id,
                                     lambda episode_index, a=agent_id: controller.load_steps(a, episode_index))
                self._replay_tabs[key] = tab
                tab.set_run_finished(finished, outcome)
                tab.set_episodes(episodes)
                index = self.tabs.addTab(tab, f"Agent-{agent_id}-Replay")
                what = "replay of the persisted run" if finished else "replay of the episodes persisted so far"
                self.tabs.setTabToolTip(index, f"run {run_id}, agent {agent_id}: {what}")
                self.replay_opened.emit(run_id, agent_id)
            elif not tab.run_finished:  # a growing list: more episodes, or the whole run at last
                tab.set_episodes(episodes)
                tab.set_run_finished(finished, outcome)
                if finished:
                    index = self.tabs.indexOf(tab)
                    self.tabs.setTabToolTip(index, f"run {run_id}, agent {agent_id}: replay of the persisted run")

    def _on_steps_loaded(self, agent_id: str, episode_index: int, steps: Any) -> None:
        sender = self.sender()
        for (run_id, agent), tab in self._replay_tabs.items():
            if agent == agent_id and self._replay_controllers.get(run_id) is sender:
                tab.set_steps(episode_index, steps)

    def _shown_online(self) -> list[StreamKey]:
        return [key for key in self._online if key not in self._unshown]

    def online_tab(self, run_id: str, agent_id: str) -> AgentOnlineTab | None:
        """The Online tab of a stream, if open. GUI thread."""
        entry = self._online.get((run_id, agent_id))
        return entry[1] if entry is not None else None

    def online_controller(self, run_id: str, agent_id: str) -> LiveTelemetryController | None:
        """The live controller of a stream, if its tab is open. GUI thread."""
        entry = self._online.get((run_id, agent_id))
        return entry[0] if entry is not None else None

    def replay_tab(self, run_id: str, agent_id: str) -> AgentReplayTab | None:
        """The Replay tab of a stream, if open. GUI thread."""
        return self._replay_tabs.get((run_id, agent_id))

    def tab_titles(self) -> list[str]:
        """The titles of the open tabs, in order. GUI thread."""
        return [self.tabs.tabText(i) for i in range(self.tabs.count())]

    def _close_tab(self, index: int) -> None:
        widget = self.tabs.widget(index)
        for key, (controller, tab) in list(self._online.items()):
            if tab is widget:
                controller.stop()
                tab.stop()
                del self._online[key]
        for key, replay_tab in list(self._replay_tabs.items()):
            if replay_tab is widget:
                replay_tab.stop()
                del self._replay_tabs[key]
        if widget is not self.runs_view:
            self.tabs.removeTab(index)
            widget.deleteLater()

    # -- shutdown --------------------------------------------------------------------------------
    def shutdown(self, timeout_s: float = 30.0) -> bool:
        """Stop every timer, controller and worker, persist what is pending and close the database;
        idempotent. GUI thread; blocks while workers end and the sink writes its backlog (at exit)."""
        if self._shut_down:
            return True
        self._shut_down = True
        self.debug_pane.stop()
        for controller, online_tab in self._online.values():
            controller.stop()
            online_tab.stop()
        for tab in self._replay_tabs.values():
            tab.stop()
        for replay in self._replay_controllers.values():
            replay.stop()
        return self.services.stop(timeout_s)

    def timers_active(self) -> list[str]:
        """Names of the window's timers still running (empty after ``shutdown``). GUI thread."""
        active = []
        if self.debug_pane.is_refreshing():
            active.append("debug pane")
        active += [f"live {k}" for k, (c, _t) in self._online.items() if c.is_polling()]
        active += [f"stall banner {k}" for k, (_c, t) in self._online.items() if t.stall_timer.isActive()]
        active += [f"replay {r}" for r, c in self._replay_controllers.items() if c.is_polling()]
        active += [f"replay tab {k}" for k, t in self._replay_tabs.items() if t.is_playing()]
        if self.services.launcher.is_polling():
            active.append("launcher")
        if self.services.registry.is_polling():
            active.append("registry")
        return active

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        """Shut down before the window closes. GUI thread."""
        self.shutdown()
        super().closeEvent(event)
