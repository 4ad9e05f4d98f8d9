"""The main window's Online and Replay tabs: opening, titling, focusing, closing and reopening them."""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import Signal
from qtpy.QtWidgets import QMainWindow, QTabWidget, QWidget

from gym_gui.qt.app_services import AppServices
from gym_gui.qt.live_controller import LiveTelemetryController
from gym_gui.qt.replay_controller import ReplayController
from gym_gui.ui.online_tab import CHART_REFRESH_INTERVAL_MS, TEXT_REFRESH_INTERVAL_MS, AgentOnlineTab
from gym_gui.ui.replay_tab import AgentReplayTab
from gym_gui.ui.runs_view import RunsView

__all__ = ["ReplayData", "TabsMixin"]

StreamKey = tuple[str, str]
#: Events an Online tab takes in per pump tick (each of its subscriptions; a backfill read too): what
#: is left waits for the next frame, so one tick of a tab costs a few ms of the GUI thread however
#: far behind it is (a tab opened on a long run, a window that was starved of CPU).
LIVE_TICK_EVENTS = 1024
#: What a run's Replay tabs were made from: episodes by agent, whole run or not, outcome.
ReplayData = tuple[dict[str, Any], bool, "str | None"]


def _steps_requester(controller: ReplayController, agent_id: str) -> Any:
    def request(episode_index: int) -> None:
        controller.load_steps(agent_id, episode_index)
    return request


class TabsMixin(QMainWindow):
    """Tab handling of ``MainWindow`` (GUI thread only). Online tabs: ``{label} · {agent} · Online``;
    Replay tabs: ``{label} · {agent} · Replay``; the run id is in the tooltip. ``online_opened`` /
    ``replay_opened(run_id, agent_id)`` when such a tab appears. The attributes below are set by
    ``MainWindow.__init__``."""

    online_opened = Signal(str, str)
    replay_opened = Signal(str, str)

    services: AppServices
    tabs: QTabWidget
    runs_view: RunsView
    _online: dict[StreamKey, tuple[LiveTelemetryController, AgentOnlineTab]]
    _replay_controllers: dict[str, ReplayController]
    _replay_tabs: dict[StreamKey, AgentReplayTab]
    _replay_data: dict[str, ReplayData]
    _focus_replay: set[str]
    _unshown: set[StreamKey]
    _compare_view: QWidget | None

    def _title(self, run_id: str, agent_id: str, kind: str) -> str:
        raise NotImplementedError

    def _export_episode_gif(self, run_id: str, agent_id: str, episode_index: int) -> bool:
        raise NotImplementedError

    def _status(self, text: str, timeout_ms: int = 5000) -> None:
        bar = self.statusBar()
        if bar is not None:
            bar.showMessage(text, timeout_ms)

    # -- opening on request ----------------------------------------------------------------------
    def open_live(self, run_id: str) -> bool:
        """Focus the run's Online tabs, opening (or reopening) one per agent; a tab opened here reads
        the stream from its beginning out of SQLite, then follows it live. GUI thread; never blocks.
        False when the run has no known agent."""
        agents = self._agents_of(run_id)
        first = None
        for agent_id in agents:
            key = (run_id, agent_id)
            if key not in self._online:
                self._open_online(run_id, agent_id, from_start=True)
            self._show_online(key)
            first = first or self._online[key][1]
        if first is None:
            self._status(f"run {run_id} has no agent stream to show live")
            return False
        self.tabs.setCurrentWidget(first)
        return True

    def open_replay(self, run_id: str) -> None:
        """Open (or reopen, or focus) the run's Replay tabs and select the first; they appear once
        the run's episodes are read. GUI thread; never blocks."""
        if not run_id:
            return
        self._focus_replay.add(run_id)
        self._watch_run(run_id)
        data = self._replay_data.get(run_id)
        if data is not None:
            episodes, finished, outcome = data
            self._show_replays(run_id, self._replay_controllers[run_id], episodes, finished=finished, outcome=outcome)
        for (tab_run, _agent), tab in sorted(self._replay_tabs.items()):
            if tab_run == run_id:
                self._focus_replay.discard(run_id)
                self.tabs.setCurrentWidget(tab)
                return

    def _agents_of(self, run_id: str) -> list[str]:
        state = self.services.registry.state(run_id)
        summary = self.runs_view.summary_of(run_id)
        agents = list(state.agent_ids) if state is not None else []
        agents += [a for a in (summary.agent_ids if summary is not None else ()) if a not in agents]
        agents += [a for (r, a) in self._online if r == run_id and a not in agents]
        return agents

    # -- Online tabs -----------------------------------------------------------------------------
    def _open_online(self, run_id: str, agent_id: str, *, from_start: bool = False) -> None:
        if (run_id, agent_id) in self._online:
            return
        controller = LiveTelemetryController(self.services.bus, run_id, agent_id, reader=self.services.reader,
                                             pump=self.services.pump,
                                             idle_timeout_s=self.services.registry.idle_timeout_s,
                                             history_after_seq_id=-1 if from_start else None,
                                             max_batch=LIVE_TICK_EVENTS, parent=self)
        tab = AgentOnlineTab(run_id, agent_id, chart_refresh_interval_ms=CHART_REFRESH_INTERVAL_MS,
                             text_refresh_interval_ms=TEXT_REFRESH_INTERVAL_MS)
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
        index = self.tabs.addTab(tab, self._title(run_id, agent_id, "Online"))
        self.tabs.setTabToolTip(index, f"run {run_id}, agent {agent_id or '(none)'}: live")
        self.tabs.setCurrentIndex(index)
        self.online_opened.emit(run_id, agent_id)

    def _shown_online(self) -> list[StreamKey]:
        return [key for key in self._online if key not in self._unshown]

    # -- Replay tabs -----------------------------------------------------------------------------
    def _watch_run(self, run_id: str) -> None:
        if run_id in self._replay_controllers:
            return
        controller = ReplayController(self.services.bus, self.services.reader, self.services.sink.run_persisted,
                                      run_id, pump=self.services.pump, parent=self)
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

    def _show_replays(self, run_id: str, controller: ReplayController, episodes_by_agent: dict[str, Any],
                      *, finished: bool, outcome: str | None = None) -> None:
        previous = self._replay_data.get(run_id)
        if previous is None or not previous[1]:  # a finished run's data is final
            self._replay_data[run_id] = (episodes_by_agent, finished, outcome)
        focus = run_id in self._focus_replay
        for agent_id, episodes in sorted(episodes_by_agent.items()):
            key = (run_id, agent_id)
            tab = self._replay_tabs.get(key)
            if tab is None:
                if not episodes:  # nothing to replay for that agent
                    continue
                tab = AgentReplayTab(run_id, agent_id, _steps_requester(controller, agent_id))
                self._replay_tabs[key] = tab
                gif_signal = getattr(tab, "export_gif_requested", None)  # a Replay tab's own "Export GIF" button
                if gif_signal is not None:
                    gif_signal.connect(lambda episode_index, r=run_id, a=agent_id:
                                       self._export_episode_gif(r, a, int(episode_index)))
                tab.set_run_finished(finished, outcome)
                tab.set_episodes(episodes)
                index = self.tabs.addTab(tab, self._title(run_id, agent_id, "Replay"))
                what = "replay of the persisted run" if finished else "replay of the episodes persisted so far"
                self.tabs.setTabToolTip(index, f"run {run_id}, agent {agent_id or '(none)'}: {what}")
                if focus:
                    self.tabs.setCurrentIndex(index)
                    focus = False
                    self._focus_replay.discard(run_id)
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

    # -- lookup ----------------------------------------------------------------------------------
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

    def current_tab_title(self) -> str:
        """The selected tab's title. GUI thread."""
        return self.tabs.tabText(self.tabs.currentIndex())

    # -- closing ---------------------------------------------------------------------------------
    def _close_tab(self, index: int) -> None:
        """Close a tab (not the Runs tab): its controller and timers stop; the Runs tab reopens it."""
        widget = self.tabs.widget(index)
        if widget is None or widget is self.runs_view:
            return
        for key, (controller, tab) in list(self._online.items()):
            if tab is widget:
                controller.stop()
                tab.stop()
                del self._online[key]
                self._unshown.discard(key)
        for key, replay_tab in list(self._replay_tabs.items()):
            if replay_tab is widget:
                replay_tab.stop()
                del self._replay_tabs[key]
        if widget is self._compare_view:
            stop = getattr(widget, "stop", None)
            if callable(stop):
                stop()
            self._compare_view = None
        self.tabs.removeTab(index)
        widget.deleteLater()
