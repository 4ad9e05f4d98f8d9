"""AgentReplayTab: the ``Agent-{id}-Replay`` tab: a run's stored episodes and a step scrubber.

Normally the run is finished when the tab opens. A run without lifecycle records (steps and
episodes only) gets its tab while it runs, with the episodes stored so far: ``set_run_finished``
says which of the two the list is, and the progress line above the list tells the person.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable, Sequence

from qtpy.QtCore import QModelIndex, Qt, QTimer
from qtpy.QtGui import QCloseEvent, QFontDatabase
from qtpy.QtWidgets import (
    QAbstractItemView, QHBoxLayout, QLabel, QPushButton, QScrollArea, QSlider, QSpinBox, QSplitter, QVBoxLayout,
    QWidget,
)

from gym_gui.live.curves import CurveData, point_from_payload
from gym_gui.live.plot_jobs import CancelToken
from gym_gui.qt.store_reader import StoreReader
from gym_gui.telemetry.sqlite_records import EpisodeRecord, StepRecord
from gym_gui.ui.episode_table_model import EpisodeTableModel
from gym_gui.ui.plots.curve_loader import load_stream_curves
from gym_gui.ui.plots.curve_panel import CurvePanel
from gym_gui.ui.plots.plot_worker import PlotWorker
from gym_gui.ui.plots.reward_strip import RewardStrip
from gym_gui.ui.table_view import make_table_view
from gym_gui.ui.render_view import RenderView

__all__ = ["AgentReplayTab"]

_log = logging.getLogger(__name__)

_DETAIL_LIMIT = 400


def _curves_of(episodes: Sequence[EpisodeRecord], window: int, token: CancelToken) -> CurveData | None:
    """The curves of the finished ``episodes`` (a partial one is left out), None once cancelled.
    Any thread (the CurveData is handed to the GUI thread afterwards); O(episodes)."""
    points = []
    for i, record in enumerate(episodes):
        if i % 4096 == 0 and token.cancelled():
            return None
        if record.payload.get("partial") is not True:
            point = point_from_payload(record.payload, record.ts_iso)
            if point is not None:
                points.append(point)
    data = CurveData(window=window)
    data.add_points(points)
    return data


def _text(value: Any) -> str:
    try:
        text = json.dumps(value, separators=(",", ":"), default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= _DETAIL_LIMIT else text[: _DETAIL_LIMIT - 1] + "\u2026"



def _scrolled(widget: QWidget) -> QScrollArea:
    """``widget`` in a frameless scroll area: it fills the space, and scrolls when the window is
    shorter (or narrower) than it needs, instead of raising the tab's, and so the window's, least size."""
    scroll = QScrollArea()
    scroll.setWidget(widget)
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QScrollArea.Shape.NoFrame)
    return scroll

class AgentReplayTab(QWidget):
    """Replays one agent's stored episodes: pick an episode, scrub or play through its steps.

    ``set_episodes`` fills the episode list; selecting an episode calls ``request_steps(index)``
    (the owner loads them off the GUI thread, e.g. ``ReplayController.load_steps``) and
    ``set_steps`` shows them. Play advances one step per ``play_interval_ms`` and stops at the
    last step. A step without a frame shows the newest frame before it.
    ``set_run_finished(False)`` marks the list as growing (the run is still going). GUI thread only.
    """

    def __init__(self, run_id: str, agent_id: str, request_steps: Callable[[int], None], *,
                 play_interval_ms: int = 100, reader: StoreReader | None = None,
                 parent: QWidget | None = None) -> None:
        """``reader``: when given, the run's curves are read from SQLite on a reader thread; else
        they are made from the listed episodes on the tab's plot worker thread."""
        super().__init__(parent)
        self.run_id = run_id
        self.agent_id = agent_id
        self.setObjectName(self.title())
        self._request_steps = request_steps
        self._requested: int | None = None
        self._episode: int | None = None
        self._steps: list[StepRecord] = []
        self._frame_of: list[int] = []
        self._position = 0
        self._finished = True
        self._outcome: str | None = None
        self._wanted: int | None = None  # select_episode before the episode was listed
        self._partial: set[int] = set()
        self._reader = reader
        self._curves_loading = False
        self._curves_stale = False
        self._curve_worker = PlotWorker(self, name="replay-curves")  # curves made from the listed episodes

        self.episode_model = EpisodeTableModel(self)
        self.play_timer = QTimer(self)
        self.play_timer.setInterval(max(1, play_interval_ms))
        self.play_timer.timeout.connect(self._advance)
        self._build()
        self._show_empty("Select an episode to replay it.")
        self._show_progress()

    # -- construction ----------------------------------------------------------------------------
    def _build(self) -> None:
        self.progress_label = QLabel()
        self.progress_label.setWordWrap(True)
        self.episode_view = make_table_view(self.episode_model)
        self.episode_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.episode_view.selectionModel().currentRowChanged.connect(self._on_current_row)

        self.episode_label = QLabel()
        self.render_view = RenderView()
        self.reward_strip = RewardStrip()
        self.reward_strip.position_picked.connect(self.set_position)
        self.curve_panel = CurvePanel(CurveData(), columns=3)
        self.play_button = QPushButton("Play")
        self.play_button.setCheckable(True)
        self.play_button.clicked.connect(self._on_play_clicked)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setMinimum(0)
        self.slider.valueChanged.connect(self.set_position)
        self.step_label = QLabel()
        self.step_label.setMinimumWidth(110)
        self.step_label.setToolTip("Step index (0-based) of the step shown / of the episode's last stored step")
        self.rate_box = QSpinBox()
        self.rate_box.setRange(1, 120)
        self.rate_box.setSuffix(" steps/s")
        self.rate_box.setValue(max(1, round(1000 / self.play_timer.interval())))
        self.rate_box.valueChanged.connect(lambda hz: self.play_timer.setInterval(max(1, round(1000 / hz))))
        controls = QHBoxLayout()
        controls.addWidget(self.play_button)
        controls.addWidget(self.slider, 1)
        controls.addWidget(self.step_label)
        controls.addWidget(self.rate_box)
        self.details = QLabel()
        self.details.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.details.setWordWrap(False)  # (no height-for-width: the scroll area fits it to the space, else scrolls)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)

        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.episode_label)
        right_layout.addWidget(self.render_view, 1)
        right_layout.addLayout(controls)
        right_layout.addWidget(self.reward_strip)
        right_layout.addWidget(self.details)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.episode_view)
        splitter.addWidget(_scrolled(right))
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 3)
        self.episode_view.horizontalHeader().setDefaultSectionSize(84)
        splitter.setSizes([300, 600])
        vertical = QSplitter(Qt.Orientation.Vertical)
        vertical.addWidget(splitter)
        vertical.addWidget(self.curve_panel)
        vertical.setStretchFactor(0, 3)
        vertical.setStretchFactor(1, 2)
        vertical.setSizes([560, 300])
        layout = QVBoxLayout(self)
        layout.addWidget(self.progress_label)
        layout.addWidget(vertical, 1)

    # -- public ----------------------------------------------------------------------------------
    def title(self) -> str:
        """The tab's title, ``Agent-{agent_id}-Replay``. GUI thread; never blocks."""
        return f"Agent-{self.agent_id}-Replay"

    def set_episodes(self, episodes: Sequence[EpisodeRecord]) -> None:
        """List ``episodes`` (index, return, length, outcome; a partial one says so), keeping the
        selected one; with none selected yet, select the one asked for (``select_episode``) or the
        first, which requests its steps. Updates the run's curves. GUI thread; never blocks."""
        selected = self._episode if self._episode is not None else self._requested
        selection = self.episode_view.selectionModel()
        blocked = selection.blockSignals(True)
        try:
            self.episode_model.set_records(episodes)
            row = self.episode_model.row_of(selected) if selected is not None else None
            if row is not None:
                self.episode_view.selectRow(row)
        finally:
            selection.blockSignals(blocked)
        self._partial = {e.episode_index for e in episodes if e.payload.get("partial") is True}
        self._show_progress()
        self._update_curves(episodes)
        if selected is None and self.episode_model.rowCount():
            wanted = self._wanted if self._wanted is not None else self.episode_model.row_at(0).episode_index
            if not self.select_episode(wanted):
                self.select_episode(self.episode_model.row_at(0).episode_index)

    def set_run_finished(self, finished: bool, outcome: str | None = None) -> None:
        """Say whether the listed episodes are the whole run (``outcome``: its status text, e.g.
        ``completed``) or those stored so far of a run still going. GUI thread; never blocks."""
        self._finished = finished
        self._outcome = outcome if finished else None
        self._show_progress()

    @property
    def run_finished(self) -> bool:
        """True when the list is the whole run (the default). GUI thread; never blocks."""
        return self._finished

    def progress_text(self) -> str:
        """The progress line above the episode list. GUI thread; never blocks."""
        return self.progress_label.text()

    def select_episode(self, episode_index: int) -> bool:
        """Select ``episode_index`` in the list (which requests its steps); False if not listed.
        GUI thread; never blocks."""
        row = self.episode_model.row_of(episode_index)
        if row is None:
            self._wanted = episode_index  # selected when it is listed
            return False
        self._wanted = None
        self.episode_view.selectRow(row)
        return True

    def set_steps(self, episode_index: int, steps: Sequence[StepRecord]) -> None:
        """Load the steps of ``episode_index`` into the scrubber (ignored if another episode was
        requested since). GUI thread; never blocks."""
        if self._requested is not None and episode_index != self._requested:
            _log.debug("replay %s/%s: steps of episode %s arrived after episode %s was selected",
                       self.run_id, self.agent_id, episode_index, self._requested)
            return
        self.pause()
        self._requested = None
        self._episode = episode_index
        self._steps = sorted(steps, key=lambda s: (s.step_index is None, s.step_index or 0, s.seq_id))
        last = -1
        self._frame_of = []
        for i, step in enumerate(self._steps):
            if step.render_payload is not None:
                last = i
            self._frame_of.append(last)
        count = len(self._steps)
        partial = " (partial: it never finished)" if episode_index in self._partial else ""
        self.episode_label.setText(f"Episode {episode_index}{partial}: {count} step{'s' if count != 1 else ''}")
        self.reward_strip.set_rewards([s.reward for s in self._steps])
        if not count:
            self._show_empty(f"Episode {episode_index} has no stored steps.")
            return
        self.slider.setEnabled(True)
        self.play_button.setEnabled(True)
        blocked = self.slider.blockSignals(True)
        self.slider.setRange(0, count - 1)
        self.slider.setValue(0)
        self.slider.blockSignals(blocked)
        self._position = -1
        self.set_position(0)

    def episode_count(self) -> int:
        """Episodes listed. GUI thread; never blocks."""
        return self.episode_model.rowCount()

    @property
    def episode_index(self) -> int | None:
        """The episode loaded in the scrubber. GUI thread; never blocks."""
        return self._episode

    @property
    def step_count(self) -> int:
        """Steps of the loaded episode. GUI thread; never blocks."""
        return len(self._steps)

    @property
    def position(self) -> int:
        """The position of the scrubber (0-based, in step order). GUI thread; never blocks."""
        return self._position

    def current_step(self) -> StepRecord | None:
        """The step shown now. GUI thread; never blocks."""
        return self._steps[self._position] if 0 <= self._position < len(self._steps) else None

    def set_position(self, position: int) -> None:
        """Show the step at ``position`` (clamped). GUI thread; never blocks."""
        if not self._steps:
            return
        position = min(max(0, int(position)), len(self._steps) - 1)
        if position == self._position:
            return
        self._position = position
        self.slider.setValue(position)  # re-enters here through valueChanged and returns at once
        step = self._steps[position]
        last = self._steps[-1]
        shown = step.step_index if step.step_index is not None else position
        final = last.step_index if last.step_index is not None else len(self._steps) - 1
        self.step_label.setText(f"step {shown} / {final}")
        self.reward_strip.set_cursor(position)
        frame = self._frame_of[position]
        self.render_view.set_payload(self._steps[frame].render_payload if frame >= 0 else None)
        self.details.setText(self._details(step, frame, position))

    def play(self) -> None:
        """Play from the current step (from the start when at the end); idempotent. GUI thread; never blocks."""
        if not self._steps:
            return
        if self._position >= len(self._steps) - 1:
            self.set_position(0)
        self.play_button.setChecked(True)
        self.play_button.setText("Pause")
        self.play_timer.start()

    def pause(self) -> None:
        """Stop playing, keep the position; idempotent. GUI thread; never blocks."""
        self.play_timer.stop()
        self.play_button.setChecked(False)
        self.play_button.setText("Play")

    def stop(self) -> None:
        """Stop the play timer; idempotent. GUI thread; never blocks."""
        self.pause()
        self.curve_panel.stop(0)  # cancel its plot jobs; its worker thread ends on its own
        self.reward_strip.stop(0)
        self._curve_worker.stop(0)

    def is_playing(self) -> bool:
        """True while the play timer runs. GUI thread; never blocks."""
        return self.play_timer.isActive()

    # -- Qt --------------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt name)
        """Stop playing when the tab closes. GUI thread; never blocks."""
        self.stop()
        super().closeEvent(event)

    # -- internals -------------------------------------------------------------------------------
    def _on_current_row(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid():
            return
        episode_index = self.episode_model.row_at(current.row()).episode_index
        if episode_index == self._episode and self._requested is None:
            return
        self.pause()
        self._requested = episode_index
        self.episode_label.setText(f"Episode {episode_index}: loading steps\u2026")
        try:
            self._request_steps(episode_index)
        except Exception:
            _log.exception("replay %s/%s: requesting the steps of episode %s failed",
                           self.run_id, self.agent_id, episode_index)

    def _on_play_clicked(self, checked: bool) -> None:
        if checked:
            self.play()
        else:
            self.pause()

    def _advance(self) -> None:
        if self._position < len(self._steps) - 1:
            self.set_position(self._position + 1)
        if self._position >= len(self._steps) - 1:
            self.pause()

    def _update_curves(self, episodes: Sequence[EpisodeRecord]) -> None:
        """The run's curves, never built on the GUI thread: read from SQLite on the reader's thread
        with a reader, else made from the finished episodes listed (a partial episode is not on
        them) on the tab's plot worker (a newer list cancels the older)."""
        if self._reader is None:
            listed, window = tuple(episodes), self.curve_panel.data.window
            self._curve_worker.submit("curves", lambda token: _curves_of(listed, window, token), self._on_built)
            return
        if self._curves_loading:
            self._curves_stale = True  # read again when this one lands
            return
        self._curves_loading = load_stream_curves(self._reader, self.run_id, self.agent_id or None,
                                                  self._on_curves, self._on_curves_failed,
                                                  window=self.curve_panel.data.window)

    def _on_built(self, data: CurveData | None) -> None:
        if data is not None:
            self.curve_panel.set_data(data)

    def _on_curves(self, data: CurveData) -> None:
        self._curves_loading = False
        self.curve_panel.set_data(data)
        if self._curves_stale:
            self._curves_stale = False
            self._update_curves(())

    def _on_curves_failed(self, error: BaseException) -> None:
        self._curves_loading = False
        _log.warning("replay %s/%s: reading the curves failed: %s", self.run_id, self.agent_id, error)

    def _show_progress(self) -> None:
        count = self.episode_model.rowCount()
        episodes = f"{count} episode{'s' if count != 1 else ''}"
        if self._finished:
            text = f"{episodes}, the whole run" + (f" ({self._outcome})." if self._outcome else ".")
        else:
            text = (f"The run is still going: {episodes} stored so far, each replayable; "
                    "more appear here as they are stored.")
        self.progress_label.setText(text)

    def _show_empty(self, text: str) -> None:
        self.pause()
        self._steps, self._frame_of, self._position = [], [], 0
        self.slider.setEnabled(False)
        self.play_button.setEnabled(False)
        self.step_label.setText("step - / -")
        self.reward_strip.set_rewards([])
        self.render_view.set_payload(None)
        self.details.setText(text)

    @staticmethod
    def _details(step: StepRecord, frame: int, position: int) -> str:
        lines = [
            f"episode {step.episode_index}  step {step.step_index}  seq {step.seq_id}  {step.ts_iso}",
            f"action: {_text(step.action)}",
            f"reward: {_text(step.reward)}",
            f"terminated: {_text(step.terminated)}  truncated: {_text(step.truncated)}",
            f"observation: {_text(step.observation)}",
        ]
        info = step.info
        if info:
            lines.append(f"info: {_text(info)}")
        if frame < 0:
            lines.append("(no frame stored up to this step)")
        elif frame != position:
            lines.append(f"(frame of step {frame + 1}: this step has none)")
        return "\n".join(lines)
