"""MainWindow: launches runs, opens an Online tab per live stream and a Replay tab per agent of a finished run;
the Runs tab manages every run (open, compare, export, mark as failed, delete).

About 430 lines: the window's menus, docks and the run-to-tab routing of the signals it receives;
the tab bookkeeping is ``window_tabs``, titles ``tab_labels``, exports ``export_actions``.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

from qtpy.QtCore import Qt, QTimer, Signal
from qtpy.QtGui import QAction, QCloseEvent, QShowEvent
from qtpy.QtWidgets import QDockWidget, QMessageBox, QTabBar, QTabWidget, QVBoxLayout, QWidget

from gym_gui.qt.app_services import AppServices
from gym_gui.qt.live_controller import LiveTelemetryController
from gym_gui.qt.replay_controller import ReplayController
from gym_gui.qt.run_registry import RunStatus
from gym_gui.ingest.proxy import DEFAULT_AGENT_ID
from gym_gui.ingest.worker_specs import WorkerSpec
from gym_gui.workers.runtime import new_run_id
from gym_gui.ui.debug_pane import DebugPane
from gym_gui.ui.export_actions import RunExporter
from gym_gui.ui.launch_panel import LaunchPanel
from gym_gui.ui.online_tab import AgentOnlineTab
from gym_gui.ui.plots.gui_turns import gui_turns
from gym_gui.ui.replay_tab import AgentReplayTab
from gym_gui.ui.runs_view import RunsView
from gym_gui.ui.tab_labels import TabLabels, tab_title
from gym_gui.ui.window_tabs import ReplayData, TabsMixin

__all__ = ["DEFAULT_SIZE_PX", "MainWindow"]

_log = logging.getLogger(__name__)

StreamKey = tuple[str, str]
#: The size `python -m gym_gui` opens the window at (width, height); the benchmarks use it too.
DEFAULT_SIZE_PX = (1200, 800)
DEBUG_DOCK_HEIGHT_PX = 260
DEBUG_DOCK_MIN_HEIGHT_PX = 210
TERMINAL = {RunStatus.COMPLETED.value, RunStatus.FAILED.value, RunStatus.CANCELLED.value}
MARKED_FAILED_REASON = "marked as failed in the Runs tab"


def _ask_close(parent: QWidget, names: list[str]) -> bool:
    """Ask whether to cancel the runs ``names`` (as the tabs name them) and close; True to close.
    "Keep the window open" is the default (Enter) and the Escape button. GUI thread; modal."""
    box = QMessageBox(QMessageBox.Icon.Question, "Runs are still training",
                      f"{len(names)} run(s) are still training: {', '.join(names[:4])}"
                      f"{' ...' if len(names) > 4 else ''}.\n\nClosing cancels them; everything they "
                      "reported so far stays in the database and can be replayed.", parent=parent)
    quit_button = box.addButton("Cancel the runs and close", QMessageBox.ButtonRole.DestructiveRole)
    keep_button = box.addButton("Keep the window open", QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(keep_button)
    box.setEscapeButton(keep_button)
    box.exec()
    return box.clickedButton() is quit_button


class MainWindow(TabsMixin):
    """The gym_gui telemetry window. GUI thread only; it owns every controller and tab it opens.

    ``online_opened(run_id, agent_id)`` and ``replay_opened(run_id, agent_id)`` are emitted when the
    Online / Replay tab of a stream appears (titles ``FrozenLake #3 · agent-1 · Online``).
    ``compare_opened(list)`` when the comparison tab shows runs.
    """

    compare_opened = Signal(object)

    def __init__(self, services: AppServices, parent: QWidget | None = None) -> None:
        """Build the window over started or not yet started ``services``. GUI thread; does not block."""
        super().__init__(parent)
        self.services = services
        # The plots' deferred pieces keep out of the pump's ticks (their signals carry the live latency).
        gui_turns().follow_pump(services.pump)
        self.setWindowTitle(f"gym_gui telemetry - {services.db_path}")
        self._online: dict[StreamKey, tuple[LiveTelemetryController, AgentOnlineTab]] = {}
        self._replay_controllers: dict[str, ReplayController] = {}
        self._replay_tabs: dict[StreamKey, AgentReplayTab] = {}
        self._replay_data: dict[str, ReplayData] = {}  # what each run's Replay tabs were made from (to reopen)
        self._focus_replay: set[str] = set()  # runs whose Replay tab was asked for: selected when it opens
        self._unshown: set[StreamKey] = set()  # Online tabs created but not added yet
        self._quiet: set[StreamKey] = set()  # streams of runs known only as stalled: opened if they speak
        self._env_of: dict[str, str] = {}  # env ids of runs launched here (known before their first event)
        self._compare_view: QWidget | None = None
        self._compared: list[str] = []  # the runs the comparison tab was last given
        self._shut_down = False
        self.labels = TabLabels()
        #: ``confirm_close(active_run_ids) -> bool``: asked when the window closes mid-run (tests may replace it).
        self.confirm_close: Callable[[list[str]], bool] = lambda run_ids: _ask_close(self, self.run_names(run_ids))

        self.launch_panel = LaunchPanel()
        self.runs_view = RunsView(services.reader, pump=services.pump)
        self.exporter = RunExporter(services.reader, dialog_parent=self, parent=self)
        self.tabs = QTabWidget()
        self.tabs.setTabsClosable(True)
        self.tabs.setMovable(True)
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.runs_view, "Runs")
        for side in (QTabBar.ButtonPosition.RightSide, QTabBar.ButtonPosition.LeftSide):
            self.tabs.tabBar().setTabButton(0, side, None)  # the runs list stays
        self.tabs.setTabToolTip(0, "every run in the database: right-click a run for its actions")
        self.tabs.tabCloseRequested.connect(self._close_tab)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.addWidget(self.launch_panel)
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)

        self.debug_pane = DebugPane(services.bus, pump=services.pump)
        self.debug_pane.add_source("workers", services.launcher.stats)
        self.debug_pane.add_source("sink", services.sink.stats)
        if services.redis_source is not None:
            self.debug_pane.add_source("redis", services.redis_source.stats)
        self.debug_dock = dock = QDockWidget("Telemetry debug", self)
        dock.setObjectName("telemetry-debug")
        dock.setWidget(self.debug_pane)
        self.debug_pane.setMinimumHeight(DEBUG_DOCK_MIN_HEIGHT_PX)  # a few rows of each table, always
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
        self._dock_sized = False
        self._fail_on_exit: dict[str, set[str]] = {}  # launch id -> runs to mark failed once it stopped

        self._build_menus()
        self.launch_panel.start_requested.connect(self.start_run)
        self.launch_panel.cancel_requested.connect(self.cancel_current_run)
        self.launch_panel.cancel_all_requested.connect(self.cancel_runs)
        self.runs_view.replay_requested.connect(self.open_replay)
        self.runs_view.live_requested.connect(self.open_live)
        self.runs_view.compare_requested.connect(self.open_compare)
        self.runs_view.export_requested.connect(self.export_run)
        self.runs_view.mark_failed_requested.connect(self.mark_failed)
        self.runs_view.run_deleted.connect(self._on_run_deleted)
        self.runs_view.delete_failed.connect(
            lambda run_id, message: self._status(f"could not delete {run_id}: {message}", 10000))
        self.exporter.finished.connect(self._on_exported)
        self.exporter.failed.connect(
            lambda run_id, fmt, message: self._status(f"export of {run_id} failed: {message}", 15000))
        self.tabs.currentChanged.connect(lambda _i: self._update_cancel())
        services.registry.status_changed.connect(self._on_status)
        services.registry.stream_added.connect(self._on_stream)
        services.launcher.run_exited.connect(self._on_run_exited)
        services.sink.error.connect(self._on_sink_error)
        self._update_cancel()
        self.debug_pane.start()
        self.runs_view.start()

    def _build_menus(self) -> None:
        view = self.runs_view
        file_menu = self.menuBar().addMenu("&File")
        self.action_export_episode_gif = QAction("Export the replayed episode as GIF...", self)
        self.action_export_episode_gif.triggered.connect(self.export_current_episode_gif)
        for action in (view.action_export_csv, view.action_export_jsonl, view.action_export_gif):
            file_menu.addAction(action)
        file_menu.addAction(self.action_export_episode_gif)
        file_menu.addSeparator()
        quit_action = file_menu.addAction("Close")
        quit_action.triggered.connect(self.close)
        runs_menu = self.menuBar().addMenu("&Runs")
        self.action_cancel_current = QAction("Cancel the current run", self)
        self.action_cancel_current.triggered.connect(self.cancel_current_run)
        self.action_cancel_all = QAction("Cancel all runs", self)
        self.action_cancel_all.triggered.connect(self.cancel_runs)
        for action in (view.action_open_live, view.action_open_replay, view.action_compare, None,
                       view.action_mark_failed, view.action_delete, None, self.action_cancel_current,
                       self.action_cancel_all):
            if action is None:
                runs_menu.addSeparator()
            else:
                runs_menu.addAction(action)
        self.menuBar().addMenu("&View").addAction(self.debug_dock.toggleViewAction())

    # -- runs ------------------------------------------------------------------------------------
    def start_run(self, spec: WorkerSpec) -> str | None:
        """Launch a built-in worker for ``spec`` and open its Online tab at once. GUI thread; does not
        wait for the worker. Returns the run id, or None when the worker could not be started."""
        run_id = new_run_id("run")
        self._env_of[run_id] = spec.env_id
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
        self._update_cancel()
        self._status(f"run {run_id} started: {what}", 5000)
        return run_id

    def _launch_id(self, run_id: str) -> str | None:
        """The launch id of an active launched run known by ``run_id`` (its own or one its worker reported)."""
        launcher = self.services.launcher
        for launch_id in launcher.active_run_ids():
            proxy = launcher.proxy(launch_id)
            if launch_id == run_id or (proxy is not None and run_id in proxy.run_ids()):
                return launch_id
        return None

    def current_run_id(self) -> str | None:
        """The run the person is looking at: the current Online/Replay tab's, else the one selected
        in the Runs tab (when exactly one is). GUI thread."""
        widget = self.tabs.currentWidget()
        for (run_id, _agent), (_c, tab) in self._online.items():
            if tab is widget:
                return run_id
        for (run_id, _agent), tab in self._replay_tabs.items():
            if tab is widget:
                return run_id
        selected = self.runs_view.selected_run_ids()
        return selected[0] if len(selected) == 1 else None

    def cancel_current_run(self) -> bool:
        """Cancel the current run (see ``current_run_id``), or the only active one; other runs keep
        going. GUI thread; does not block. False when there is no such active run."""
        active = self.services.launcher.active_run_ids()
        current = self.current_run_id()
        launch_id = self._launch_id(current) if current else None
        if launch_id is None and len(active) == 1 and current is None:
            launch_id = active[0]
        if launch_id is None:
            self._status("select the run to cancel (its tab, or its row in the Runs tab)", 5000)
            return False
        self.services.launcher.cancel(launch_id)
        self._status(f"cancelling {launch_id}", 5000)
        return True

    def cancel_runs(self) -> None:
        """Cancel every launched run that is still going ("Cancel all"). GUI thread; does not block."""
        for run_id in self.services.launcher.active_run_ids():
            self.services.launcher.cancel(run_id)
            self._status(f"cancelling {run_id}", 5000)

    def mark_failed(self, run_id: str) -> None:
        """Finish a run as failed; the completion goes through the bus into SQLite. A run whose
        worker was launched here is cancelled first and marked failed once its output is all
        published (``run_exited``), so the failed completion follows every event of the run. GUI
        thread; does not block (nor wait for the worker)."""
        launch_id = self._launch_id(run_id)
        if launch_id is not None:
            self._fail_on_exit.setdefault(launch_id, set()).add(run_id)
            self.services.launcher.cancel(launch_id)
            self._status(f"stopping {run_id}; it is marked as failed once its worker has stopped", 5000)
            return
        self._record_failed(run_id)

    def _record_failed(self, run_id: str) -> None:
        """Publish the run's failed outcome through the registry (its producer has stopped)."""
        try:
            evt = self.services.registry.update_run_outcome(run_id, "failed", reason=MARKED_FAILED_REASON)
        except ValueError as exc:
            self._status(f"cannot mark {run_id} as failed: {exc}", 10000)
            return
        if evt is not None:
            self._status(f"run {run_id} marked as failed", 5000)

    def export_run(self, run_id: str, fmt: str) -> bool:
        """Export a run (``csv``, ``jsonl``, or ``gif``: an episode, by default the one its open Replay
        tab shows). GUI thread; the files are written on a reader thread. False when cancelled."""
        if fmt == "gif":
            tab = self._replay_for_export(run_id)
            if tab is not None and tab.episode_index is not None:
                return self.exporter.export(run_id, "gif", episode_index=tab.episode_index, agent_id=tab.agent_id)
        return self.exporter.export(run_id, fmt)

    def export_current_episode_gif(self) -> bool:
        """Export the current Replay tab's episode as a GIF. GUI thread. False without one."""
        widget = self.tabs.currentWidget()
        for (run_id, agent_id), tab in self._replay_tabs.items():
            if tab is widget and tab.episode_index is not None:
                return self._export_episode_gif(run_id, agent_id, tab.episode_index)
        self._status("open a Replay tab and select an episode to export it as GIF", 5000)
        return False

    def _export_episode_gif(self, run_id: str, agent_id: str, episode_index: int) -> bool:
        """Export one episode of one stream as a GIF (asks only for the folder). GUI thread."""
        return self.exporter.export(run_id, "gif", episode_index=episode_index, agent_id=agent_id)

    def _replay_for_export(self, run_id: str) -> AgentReplayTab | None:
        widget = self.tabs.currentWidget()
        tabs = [t for (r, _a), t in self._replay_tabs.items() if r == run_id]
        for tab in tabs:
            if tab is widget:
                return tab
        return tabs[0] if tabs else None

    def _on_exported(self, run_id: str, fmt: str, result: dict[str, Any]) -> None:
        if fmt == "gif":
            text = f"episode GIF of {run_id}: {result['path']} ({result['frames']} frames)"
        else:
            text = (f"{run_id}: {result['episode_rows']} episodes and {result['step_rows']} steps written to "
                    f"{result['episodes'].parent}")
        self._status(text, 15000)

    def open_compare(self, run_ids: list[str]) -> QWidget | None:
        """Show ``run_ids`` overlaid in the comparison tab (created on first use) and select it. GUI
        thread. None when the comparison view is not available."""
        try:
            from gym_gui.ui.compare_view import CompareView
        except ImportError as exc:
            self._status(f"run comparison is not available: {exc}", 10000)
            return None
        if self._compare_view is None or self.tabs.indexOf(self._compare_view) < 0:
            self._compare_view = CompareView(self.services.reader)
            index = self.tabs.addTab(self._compare_view, "Compare")
        else:
            index = self.tabs.indexOf(self._compare_view)
        self._show_compared(index, list(run_ids))
        self.tabs.setCurrentIndex(index)
        self.compare_opened.emit(list(run_ids))
        return self._compare_view

    def _show_compared(self, index: int, run_ids: list[str]) -> None:
        """The comparison tab at ``index`` reads ``run_ids``; its title and tooltip name them. GUI thread."""
        self._compared = run_ids
        self._compare_view.set_runs(run_ids)  # type: ignore[union-attr]
        count = len(run_ids)
        self.tabs.setTabText(index, f"Compare · {count} run{'' if count == 1 else 's'}")
        self.tabs.setTabToolTip(index, "runs: " + ", ".join(run_ids))

    def _compare_without(self, run_id: str) -> None:
        """A deleted run leaves the comparison (the tab closes with its last run). GUI thread."""
        index = -1 if self._compare_view is None else self.tabs.indexOf(self._compare_view)
        if index < 0 or run_id not in self._compared:
            return
        rest = [r for r in self._compared if r != run_id]
        if rest:
            self._show_compared(index, rest)
        else:
            self._close_tab(index)

    def _on_run_deleted(self, run_id: str) -> None:
        for index in reversed(range(self.tabs.count())):
            widget = self.tabs.widget(index)
            if any(r == run_id and t is widget for (r, _a), (_c, t) in self._online.items()) or any(
                    r == run_id and t is widget for (r, _a), t in self._replay_tabs.items()):
                self._close_tab(index)
        self._compare_without(run_id)
        self._replay_data.pop(run_id, None)
        controller = self._replay_controllers.pop(run_id, None)
        if controller is not None:
            controller.stop()
        self._status(f"run {run_id} deleted", 5000)

    def _on_status(self, run_id: str, status: str) -> None:
        state = self.services.registry.state(run_id)
        env_id = state.env_id if state is not None else None
        agents = tuple(state.agent_ids) if state is not None else ()
        self.runs_view.set_run(run_id, status, env_id or self._env_of.get(run_id), agents)
        self._update_cancel()
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
        for failed_id in sorted(self._fail_on_exit.pop(run_id, ())):  # every event of the run is published
            self._record_failed(failed_id)
        self._update_cancel()

    def _update_cancel(self) -> None:
        active = bool(self.services.launcher.active_run_ids())
        self.launch_panel.set_running(active)
        self.action_cancel_all.setEnabled(active)
        self.action_cancel_current.setEnabled(active)

    def _on_sink_error(self, message: str) -> None:
        self._status(f"database: {message} (retrying; nothing is dropped)", 10000)

    def run_names(self, launch_ids: list[str]) -> list[str]:
        """The names the tabs show (``FrozenLake #1``) of the runs of launched workers ``launch_ids``;
        a run without a tab yet keeps its id. GUI thread; never blocks."""
        names: list[str] = []
        for launch_id in launch_ids:
            proxy = self.services.launcher.proxy(launch_id)
            for run_id in (proxy.run_ids() if proxy is not None else []) or [launch_id]:
                names.append(self.labels.known(run_id) or run_id)
        return list(dict.fromkeys(names))

    def _label(self, run_id: str) -> str:
        state = self.services.registry.state(run_id)
        summary = self.runs_view.summary_of(run_id)
        env_id = (self._env_of.get(run_id) or (state.env_id if state is not None else None)
                  or (summary.env_id if summary is not None else None))
        label = self.labels.label(run_id, env_id)
        self.runs_view.set_label(run_id, label)
        return label

    def _title(self, run_id: str, agent_id: str, kind: str) -> str:
        return tab_title(self._label(run_id), agent_id, kind)

    # -- shutdown --------------------------------------------------------------------------------
    def shutdown(self, timeout_s: float = 30.0) -> bool:
        """Stop every timer, controller and worker, persist what is pending and close the database;
        idempotent. GUI thread; blocks while workers end and the sink writes its backlog (at exit)."""
        if self._shut_down:
            return True
        self._shut_down = True
        self.debug_pane.stop()
        self.runs_view.stop()
        for controller, online_tab in self._online.values():
            controller.stop()
            online_tab.stop()
        for tab in self._replay_tabs.values():
            tab.stop()
        for replay in self._replay_controllers.values():
            replay.stop()
        stop = getattr(self._compare_view, "stop", None)
        if callable(stop):
            stop()
        gui_turns().unfollow_pump(self.services.pump)
        return self.services.stop(timeout_s)

    def timers_active(self) -> list[str]:
        """Names of the window's timers still running (empty after ``shutdown``). GUI thread."""
        active = []
        if self.debug_pane.is_refreshing():
            active.append("debug pane")
        if self.runs_view.is_refreshing():
            active.append("runs tab")
        active += [f"live {k}" for k, (c, _t) in self._online.items() if c.is_polling()]
        active += [f"stall banner {k}" for k, (_c, t) in self._online.items() if t.stall_timer.isActive()]
        active += [f"replay {r}" for r, c in self._replay_controllers.items() if c.is_polling()]
        active += [f"replay tab {k}" for k, t in self._replay_tabs.items() if t.is_playing()]
        if self.services.launcher.is_polling():
            active.append("launcher")
        if self.services.registry.is_polling():
            active.append("registry")
        if self.services.pump.is_running() or self.services.pump.timer_active():
            active.append("gui pump")
        return active

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt's name
        """Give the debug dock its height once the window has its own. GUI thread."""
        super().showEvent(event)
        if not self._dock_sized:
            self._dock_sized = True
            QTimer.singleShot(0, lambda: self.resizeDocks([self.debug_dock], [DEBUG_DOCK_HEIGHT_PX],
                                                          Qt.Orientation.Vertical))

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        """Ask before closing while launched runs still train (closing cancels them), then shut down.
        GUI thread; blocks while shutting down."""
        active = [] if self._shut_down else self.services.launcher.active_run_ids()
        if active and not self.confirm_close(active):
            event.ignore()
            return
        self.shutdown()
        super().closeEvent(event)
