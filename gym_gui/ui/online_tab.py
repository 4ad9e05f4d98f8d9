"""AgentOnlineTab: the ``Agent-{id}-Online`` tab of one stream, fed by a LiveTelemetryController.

About 450 lines: it is the widget tree of one tab (header, render view, tables, curve panel) and the
per-batch routing into them; the logic is elsewhere (``live_view``, ``stall_clock``, ``run_progress``,
``online_header``, the table models), so what stays is layout and wiring that reads best in one place.
"""

from __future__ import annotations

import math
import time
from datetime import datetime
from typing import Any, Callable, Mapping

from qtpy.QtCore import Qt, QTimer
from qtpy.QtGui import QCloseEvent, QShowEvent
from qtpy.QtWidgets import (QAbstractItemView, QHBoxLayout, QLabel, QPushButton, QScrollArea, QSplitter,
                            QVBoxLayout, QWidget)

from gym_gui.gc_tuning import freeze_long_lived, freezing, thaw_and_collect
from gym_gui.live.curves import CurveData, iso_to_epoch_s
from gym_gui.live.live_batch import LiveBatch
from gym_gui.live.run_progress import fmt_count, fmt_number, progress_of, total_episodes
from gym_gui.live.run_state import outcome_severity
from gym_gui.live.stall_clock import StallClock
from gym_gui.telemetry.events import TelemetryEvent
from gym_gui.telemetry.step_payload import STEP_PAYLOAD_KEYS, StepPayload
from gym_gui.ui import palette
from gym_gui.ui.episode_table_model import EpisodeTableModel
from gym_gui.ui.online_header import HEADER_FIELDS, OnlineHeader, summary_text
from gym_gui.ui.plots.curve_panel import CurvePanel
from gym_gui.ui.plots.gui_turns import gui_turns
from gym_gui.ui.rate_meter import RateMeter
from gym_gui.ui.render_view import RenderView
from gym_gui.ui.titled import titled
from gym_gui.ui.step_table_model import DEFAULT_MAX_ROWS, StepTableModel, step_row
from gym_gui.ui.table_view import make_table_view

__all__ = ["AgentOnlineTab", "CHART_REFRESH_INTERVAL_MS", "HEADER_FIELDS", "HIDDEN_FOLD_INTERVAL_MS",
           "TEXT_REFRESH_INTERVAL_MS", "TOYTEXT_FAMILIES"]

#: Environment families whose steps carry "grid" payloads (Gymnasium ToyText).
TOYTEXT_FAMILIES = frozenset({"FrozenLake", "CliffWalking", "Taxi"})

STALL_TICK_MS = 1000
_RENDER_FIELD = STEP_PAYLOAD_KEYS.index("render_payload")
#: Shortest time between two redraws of the learning curves in the window (their refresh and repaint
#: cost the GUI thread far more than the counters): news sooner is drawn at the interval's end, in one
#: redraw. A tab made on its own (tests) redraws at every batch unless given an interval.
CHART_REFRESH_INTERVAL_MS = 200
#: With news flowing, the charts refresh right after the pump's tick of the first batch past the
#: refresh interval; this long after the interval's end, a timer draws the last news without one.
CHART_FALLBACK_MS = 50
#: Held step rows put into a tab's (hidden or covered) table in one turn of its fold.
FOLD_CHUNK_ROWS = 2_500
#: Episodes folded into a tab's curves in one turn of a spread refresh (about 4 us each: 20,000
#: steps/s brings 400-600 episodes a refresh, a backlog thousands).
CURVE_FOLD_CHUNK = 256
#: The frame a refresh's repaint of the charts waits for before the pump's next tick (the charts'
#: paint after a refresh: 3 to 10 ms of CPU).
CHART_PAINT_ROOM_MS = 10.0
#: Shortest time between two updates of the header's texts in the window: a label's new text costs a
#: relayout and repaint of the header, about half of a busy tab's frame; ten a second is what a person reads.
TEXT_REFRESH_INTERVAL_MS = 100
#: A tab behind another only counts at each batch: the episodes and steps it receives are held and
#: folded into its curves and tables in one go, at most this often (and at once when it is shown or
#: its run ends), so eight runs cost the GUI thread one tab's drawing and seven tabs' counting.
#: Tables hidden by their button (a ToyText run's default) hold their rows the same way.
HIDDEN_FOLD_INTERVAL_MS = 1000


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _fmt(value: float | None) -> str:
    return fmt_number(value)


#: After a tab with frozen charts stops: the delay before the whole heap is collected once
#: (``gc_tuning.thaw_and_collect``), so that the tab is gone by then; several stops share one.
THAW_DELAY_MS = 1000
_thaw_scheduled = False


def _collect_frozen_soon() -> None:
    global _thaw_scheduled
    if _thaw_scheduled or not freezing():
        return
    _thaw_scheduled = True
    QTimer.singleShot(THAW_DELAY_MS, _thaw_now)


def _thaw_now() -> None:
    global _thaw_scheduled
    _thaw_scheduled = False
    thaw_and_collect()


def _take_front(items: list[Any], count: int) -> list[Any]:
    """The first ``count`` of ``items``, removed from it (a fold's piece of one turn, in order)."""
    front = items[:count]
    del items[:count]
    return front


class _FollowNewest:
    """Keeps a table view scrolled to its newest (last) row until the person scrolls up; back at
    the bottom, it follows again."""

    def __init__(self, view: QAbstractItemView) -> None:
        self._view = view
        self.following = True
        bar = view.verticalScrollBar()
        bar.rangeChanged.connect(self._on_range)
        bar.valueChanged.connect(self._on_value)

    def _on_range(self, _minimum: int, maximum: int) -> None:
        if self.following:
            self._view.verticalScrollBar().setValue(maximum)

    def _on_value(self, value: int) -> None:
        self.following = value >= self._view.verticalScrollBar().maximum()


def _has_frame(payload: Mapping[str, Any]) -> bool:
    """Whether a step payload carries a frame, without decoding a StepPayload's frame text."""
    if type(payload) is StepPayload:
        return payload.fields[_RENDER_FIELD] is not None
    return payload.get("render_payload") is not None


def _is_toytext(payload: Mapping[str, Any]) -> bool | None:
    """Whether a RUN_STARTED payload describes a ToyText run (None: it does not say)."""
    kind = payload.get("render_kind")
    if kind in ("grid", "rgb"):
        return kind == "grid"
    family = payload.get("env_family")
    if isinstance(family, str):
        return family in TOYTEXT_FAMILIES
    env_id = payload.get("env_id")
    if isinstance(env_id, str) and env_id:
        return any(env_id.startswith(f) for f in TOYTEXT_FAMILIES)
    return None


class AgentOnlineTab(QWidget):
    """Live view of one stream: header counters, stall banner, newest frame, step and episode tables.

    Fed through its slots (connect them to a LiveTelemetryController's signals). Per batch it
    counts every step, appends every step and episode to the table models in one insert each,
    and renders only ``batch.latest_step``. The tables start hidden for ToyText runs (grid
    payloads) and shown otherwise; the "Show tables" button toggles them. The learning curves are
    built when the tab is first drawn and redrawn at most every ``chart_refresh_interval_ms``
    (0: at every batch; with an interval, the charts' repaint comes at the event loop's turn after
    the refresh, not in the same one); a tab behind another only counts: it holds the episodes and steps it gets
    and folds them into its curves and tables at most every ``hidden_fold_interval_ms``, in an
    event-loop turn of its own after the batch's (and at once when shown, or when its run ends), and draws when shown; hidden tables (the button) hold
    their rows the same way until shown. GUI thread only.
    """

    def __init__(self, run_id: str, agent_id: str, *, max_table_rows: int = DEFAULT_MAX_ROWS,
                 rate_window_s: float = 2.0, stall_tick_ms: int = STALL_TICK_MS, curve_window: int = 100,
                 chart_refresh_interval_ms: int = 0, text_refresh_interval_ms: int = 0,
                 hidden_fold_interval_ms: int = HIDDEN_FOLD_INTERVAL_MS,
                 clock: Callable[[], float] = time.monotonic, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run_id = run_id
        self.agent_id = agent_id
        self.setObjectName(self.title())
        self._clock = clock
        self._rate = RateMeter(rate_window_s, clock=clock)
        self._worker_rate: float | None = None
        self._steps_seen = 0
        self._episodes_seen = 0
        self._episode: int | None = None
        self._episode_return = 0.0
        # The stream's silence and end, by the one stall rule (the controller's view decides the stall itself).
        self._silence = StallClock(1.0, 1)
        self._stalled = False
        self._toytext: bool | None = None
        self._tables_user_set = False
        self._total_episodes: int | None = None
        self._started_at_s: float | None = None  # the run's RUN_STARTED time (epoch s), for the ETA
        self._ended = False  # RUN_COMPLETED arrived: the progress shows no ETA
        self._outcome_severity: int | None = None  # SEVERITY of the outcome shown (None: not ended)
        self.curves = CurveData(window=curve_window)
        # A tab behind another in the window draws nothing: its charts and frame catch up when shown.
        self._stale_curves = False
        self._pending_frame: TelemetryEvent | None = None  # a hidden tab's newest step with a frame, not decoded
        self._chart_interval_s = max(0, chart_refresh_interval_ms) / 1000.0
        self._pending_texts: dict[str, str] = {}  # header texts not set yet (hidden tab, or held back)
        self._text_interval_s = max(0, text_refresh_interval_ms) / 1000.0
        self._texts_set_at = -math.inf
        # What a tab behind another received and has not folded into its curves and tables yet.
        self._held_steps: list[tuple[Any, ...]] = []  # as table rows (step_row): nothing for the collector
        self._held_episodes: list[TelemetryEvent] = []
        self._held_skipped = 0  # held steps beyond the table's bound, counted and let go
        # Episodes not in ``curves`` yet (shown or not): folded in right before the charts' refresh.
        self._curve_held: list[TelemetryEvent] = []
        self._fold_interval_s = max(0, hidden_fold_interval_ms) / 1000.0
        self._folded_at = -math.inf
        self._text_timer = QTimer(self)  # the header update held back by the interval
        self._text_timer.setSingleShot(True)
        self._text_timer.timeout.connect(self._flush_texts_if_drawn)

        self.step_model = StepTableModel(max_table_rows, self)
        self.episode_model = EpisodeTableModel(self)
        self.stall_timer = QTimer(self)
        self.stall_timer.setInterval(max(1, stall_tick_ms))
        self.stall_timer.timeout.connect(self._update_stall_text)
        self._build()
        self._set("status", "waiting")  # (for the worker: the tooltip says it)

    # -- construction ----------------------------------------------------------------------------
    def _build(self) -> None:
        self.header = OnlineHeader()
        self._values = self.header.values
        self.summary_label = QLabel()
        self.summary_label.setWordWrap(True)
        self.summary_label.hide()
        self.stall_banner = QLabel()
        self.stall_banner.setWordWrap(True)
        self.stall_banner.setStyleSheet(palette.STALL_BANNER_CSS)
        self.stall_banner.hide()

        self.render_view = RenderView()
        # The charts are built when the tab is first drawn (a tab opened behind another costs no
        # chart widgets, and a new tab's first frame does not wait for them): a placeholder until then.
        self._curve_panel: CurvePanel | None = None
        self._panel_slot: QWidget | None = QWidget()
        self._panel_timer = QTimer(self)
        self._panel_timer.setSingleShot(True)
        self._panel_timer.setInterval(0)
        self._panel_timer.timeout.connect(self._build_panel_if_shown)
        self._charts_drawn_at = -math.inf  # clock time of the last chart refresh
        self._charts_frozen = 0  # charts built and moved out of the collector's view (gc_tuning)
        self._chart_timer = QTimer(self)  # the refresh held back by the interval
        self._chart_timer.setSingleShot(True)
        self._chart_timer.timeout.connect(self._on_chart_timer)
        # With a refresh interval (the window), a refresh's repaint comes a turn after it (_refresh_panel).
        self._split_paint = self._chart_interval_s > 0
        self.tables_button = QPushButton()
        self.tables_button.setCheckable(True)
        self.tables_button.setToolTip("Show or hide the step and episode tables")
        self.tables_button.toggled.connect(self._apply_tables_visible)
        self.tables_button.clicked.connect(self._tables_clicked)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.tables_button)

        self.step_view = make_table_view(self.step_model)
        self._step_follow = _FollowNewest(self.step_view)
        self.episode_view = make_table_view(self.episode_model)
        self._episode_follow = _FollowNewest(self.episode_view)
        self.tables = QSplitter(Qt.Orientation.Horizontal)
        self.tables.addWidget(titled("Steps (newest last)", self.step_view))
        self.tables.addWidget(titled("Episodes (newest last)", self.episode_view))
        self.tables.setStretchFactor(0, 3)
        self.tables.setStretchFactor(1, 2)

        self.view_split = QSplitter(Qt.Orientation.Horizontal)
        self.view_split.addWidget(self.render_view)
        self.view_split.addWidget(self._panel_slot)
        self.view_split.setStretchFactor(0, 2)
        self.view_split.setStretchFactor(1, 3)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.view_split)
        splitter.addWidget(self.tables)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)

        layout = QVBoxLayout(self)
        layout.addWidget(self._header_scroll())
        layout.addWidget(self.summary_label)
        layout.addWidget(self.stall_banner)
        layout.addLayout(buttons)
        layout.addWidget(splitter, 1)
        self.tables_button.setChecked(True)
        self._apply_tables_visible(True)  # the label matches the state from the start

    def _header_scroll(self) -> QScrollArea:
        """The header in a scroll area of its own, as tall as the header and a horizontal scroll bar
        from the start: a counter that widens the header (its labels only grow) scrolls it instead
        of raising the tab's, and so the window's, least width (the window grew wider at every few
        digits of a live run, each time a relayout and repaint of the whole window); the bar's
        appearance resizes nothing around it."""
        scroll = QScrollArea()
        scroll.setWidget(self.header)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        scroll.setFixedHeight(self.header.sizeHint().height() + scroll.horizontalScrollBar().sizeHint().height())
        return scroll

    @property
    def curve_panel(self) -> CurvePanel:
        """The learning-curve charts, built on first use (the tab's first draw, or this call).
        GUI thread; building one blocks for its chart widgets (tens of ms)."""
        panel = self._curve_panel
        if panel is None:
            panel = self._curve_panel = CurvePanel(self.curves)
            slot, self._panel_slot = self._panel_slot, None
            if slot is not None:
                self.view_split.replaceWidget(self.view_split.indexOf(slot), panel)
                slot.deleteLater()
            self.view_split.setStretchFactor(1, 3)
        return panel

    def charts_built(self) -> bool:
        """Whether the curve panel exists yet (it is built when the tab is first drawn). GUI thread."""
        return self._curve_panel is not None

    # -- public ----------------------------------------------------------------------------------
    def title(self) -> str:
        """The tab's title, ``Agent-{agent_id}-Online``. GUI thread; never blocks."""
        return f"Agent-{self.agent_id}-Online"

    def header_text(self, key: str) -> str:
        """The header value shown for ``key`` (see HEADER_FIELDS; a tab behind another: the one it
        shows when shown, its labels are set only then). GUI thread; never blocks."""
        pending = self._pending_texts.get(key)
        return pending if pending is not None else self._values[key].text()

    def header_tooltip(self, key: str) -> str:
        """The tooltip of a header value (the status' tooltip is the worker's stderr tail). GUI thread."""
        return self._values[key].toolTip()

    @property
    def steps_seen(self) -> int:
        """Steps received (live and backfilled) since the tab was made. GUI thread; never blocks."""
        return self._steps_seen

    @property
    def episodes_seen(self) -> int:
        """Episodes received since the tab was made. GUI thread; never blocks."""
        return self._episodes_seen

    @property
    def steps_per_s(self) -> float | None:
        """The rate shown: the worker's last heartbeat figure, else the rate steps arrive here.
        GUI thread; never blocks."""
        return self._worker_rate if self._worker_rate is not None else self._rate.rate()

    @property
    def stalled(self) -> bool:
        """True while the stall banner is up. GUI thread; never blocks."""
        return self._stalled

    def tables_visible(self) -> bool:
        """Whether the step and episode tables are shown (regardless of the tab itself). GUI thread; never blocks."""
        return not self.tables.isHidden()

    def set_tables_visible(self, visible: bool) -> None:
        """Show or hide the tables as the user's choice (later defaults do not override it).
        GUI thread; never blocks."""
        self._tables_user_set = True
        self.tables_button.setChecked(visible)

    def held(self) -> int:
        """Steps and episodes received and not yet in the tables (behind another tab, or tables hidden)
        or the curves (until the charts' next refresh): folded when shown, at the run's end, at the
        next batch after the fold interval, or (the curves) at the refresh. GUI thread; never blocks."""
        # (the episodes held for the curves are the newest of those held for the table, or vice versa)
        return len(self._held_steps) + self._held_skipped + max(len(self._held_episodes), len(self._curve_held))

    def stop(self) -> None:
        """Stop the stall banner's timer; idempotent. GUI thread; never blocks."""
        self.stall_timer.stop()
        self._panel_timer.stop()
        self._chart_timer.stop()
        self._text_timer.stop()
        gui_turns().cancel(self)
        self._enable_chart_updates()
        if self._curve_panel is not None:
            self._curve_panel.stop(0)  # cancel its plot jobs; its worker thread ends on its own
        if self._charts_frozen:
            self._charts_frozen = 0
            _collect_frozen_soon()  # the frozen charts' cycles, once the tab is gone

    # -- slots -----------------------------------------------------------------------------------
    def on_run_started(self, evt: TelemetryEvent) -> None:
        """The stream's RUN_STARTED: environment and ToyText defaults. GUI thread; never blocks."""
        if evt.run_id != self.run_id:
            return
        payload = evt.payload
        self._touch()
        if not self._silence.completed:
            self._set("status", "running")
        env_id = payload.get("env_id")
        if isinstance(env_id, str):
            self._set("env", env_id)
        toytext = _is_toytext(payload)
        if toytext is not None:
            self._learn_kind(toytext)
        total = total_episodes(payload.get("config"))
        if total is not None:
            self._total_episodes = total
        started = iso_to_epoch_s(evt.ts_iso)
        if started == started:  # not NaN
            self._started_at_s = started
        self._show_progress()

    def on_batch(self, batch: LiveBatch) -> None:
        """Count, table and render one tick's events (see LiveBatch).
        GUI thread; never blocks, no per-row widget work."""
        if batch.run_id != self.run_id or batch.agent_id != self.agent_id:
            return
        steps, episodes = batch.steps, batch.episodes
        if steps or episodes:
            self._touch()
            if not self._silence.completed and not self._stalled:
                self._set("status", "running")
        drawn = self._drawn()
        tables = drawn and not self.tables.isHidden()  # the tables take rows only while they are shown
        if tables and (self._held_steps or self._held_episodes):
            self._fold_held()  # (shown without a show event of its own: what it held goes first)
        if steps:
            self._steps_seen += len(steps)
            self._rate.add(self._steps_seen)
            self._fold_returns(steps)
            if tables:
                self.step_model.append_steps(steps)
            else:
                self._hold_steps(steps)
        if episodes:
            self._episodes_seen += len(episodes)
            self._curve_held += episodes
            if tables:
                self.episode_model.add_events(episodes)
            else:
                self._held_episodes += episodes
        if not tables and self._clock() - self._folded_at >= self._fold_interval_s:
            # In a turn of its own, not in the pump's tick that brought the batch (one tab's fold of a
            # second is 2-10 ms; eight tabs' in one tick held it for all of them), one tab per turn.
            gui_turns().request(self, "fold", self._fold_held_in_turns)
        latest = batch.latest_step
        if latest is not None:
            self._show_latest(latest)
        self._set("steps_seen", fmt_count(self._steps_seen))
        self._set("episodes_seen", fmt_count(self._episodes_seen))
        self._set("dropped", fmt_count(batch.dropped_total))
        self._set("backfilled", fmt_count(batch.backfilled_total))
        self._set("pending", fmt_count(batch.pending_backfill))
        self._set("unrecoverable", fmt_count(batch.unrecoverable))
        self._set("episode_return", _fmt(self._episode_return if self._episode is not None else None))
        self._set("steps_per_s", _fmt(self.steps_per_s))
        self._refresh_curves()

    def on_heartbeat(self, evt: TelemetryEvent) -> None:
        """The newest RUN_HEARTBEAT of a tick: the worker's own step rate, when it reports one.
        GUI thread; never blocks."""
        if evt.run_id != self.run_id:
            return
        self._touch()
        payload = evt.payload
        stats = payload.get("stats")
        rate = _number(stats.get("steps_per_s")) if isinstance(stats, Mapping) else None
        if rate is None:
            rate = _number(payload.get("steps_per_s"))
        if rate is not None:
            self._worker_rate = rate
            self.header.set_tooltip("steps_per_s", "Now: the worker's heartbeat figure.")
        self._set("steps_per_s", _fmt(self.steps_per_s))
        if self.curves.add_heartbeat(evt.ts_iso, payload):
            self._refresh_curves()

    def on_stall_changed(self, stalled: bool) -> None:
        """Show or hide the stall banner. GUI thread; never blocks."""
        stalled = bool(stalled) and not self._silence.completed
        if stalled == self._stalled:
            return
        self._stalled = stalled
        if stalled:
            self._rate.reset()
            self._set("status", "stalled")
            self._update_stall_text()
            self.stall_banner.show()
            self.stall_timer.start()
        else:
            self.stall_timer.stop()
            self.stall_banner.hide()
            self._set("status", "running")

    def on_run_completed(self, evt: TelemetryEvent) -> None:
        """The run ended: final status, summary, no more stall banner. A later completion shows only
        when it is more severe (failed > cancelled > completed), as the registry keeps it. GUI
        thread; never blocks."""
        if evt.run_id != self.run_id:
            return
        self._fold_held()  # the run's last news, in its curves and tables at once
        self._silence.complete()
        self._end_stall()
        self._ended = True
        self._show_progress()  # no ETA once the run is over
        payload = evt.payload
        severity = outcome_severity(payload.get("outcome"))
        if self._outcome_severity is not None and severity <= self._outcome_severity:
            return
        self._outcome_severity = severity
        outcome = payload.get("outcome")
        status = outcome if isinstance(outcome, str) else "completed"
        exit_code = payload.get("exit_code")
        if outcome == "failed" and exit_code is not None:
            status += f" (exit code {exit_code})"
        self._set("status", status)
        tail = payload.get("stderr_tail")
        self.header.set_tooltip("status", f"stderr:\n{tail}" if isinstance(tail, str) and tail else "")
        self._worker_rate = None
        self._rate.reset()
        self._set("steps_per_s", "-")
        text = summary_text(payload)
        if text or not self.summary_label.text():  # (a later finish without a summary keeps the run's)
            self.summary_label.setText(text)
        self.summary_label.setVisible(bool(self.summary_label.text()))

    def _end_stall(self) -> None:
        """Take the banner down for good (the run ended)."""
        self._stalled = False
        self.stall_timer.stop()
        self.stall_banner.hide()

    # -- Qt --------------------------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt name)
        """Draw what arrived while the tab was behind another: its tables and header now, the newest
        frame, and the charts (with a refresh interval: at the event loop's next turn, their repaint
        at the turn after it, so the catch-up is spread over the show's turns). GUI thread; never blocks."""
        super().showEvent(event)
        self._fold_held()
        self._flush_texts()
        if self._curve_panel is None:
            self._stale_curves = True  # drawn once the panel exists
            self._schedule_panel()
        elif self._stale_curves:
            self._stale_curves = False
            if self._chart_interval_s:  # (the window) at a later turn: not in the turn that shows the tab
                self._request_draw()
            else:
                self._fold_curves()
                self._refresh_panel()
        if self._pending_frame is not None:
            step, self._pending_frame = self._pending_frame, None
            render = step.payload.get("render_payload")
            if render is not None:
                self._show_frame(render)

    def _drawn(self) -> bool:
        """False while the tab sits hidden in the window (another tab is current): then charts and the
        frame wait for ``showEvent``. A tab on its own (no parent) always draws."""
        return self.isWindow() or self.isVisible()  # (isWindow: no parent; parentWidget() costs a wrapper lookup)

    def _refresh_curves(self) -> None:
        """Ask for a chart refresh: with a refresh interval, from the chart timer (never inside the
        batch's own handling, so the pump's tick that brought the batch ends first); without, at once.

        With an interval, the refresh comes at the event loop's turn right after the tick of the first
        batch past the interval's end: the pump ticks at most once a frame, so the refresh and its
        repaint fall in the frame after a tick, not in front of the next one (a timer of its own
        fired at any point of the frame, often right before a due tick, which then waited for both).
        Without news after it, a fallback timer draws the last of it ``CHART_FALLBACK_MS`` after the
        interval's end."""
        if not self._drawn():
            self._stale_curves = True
        elif self._curve_panel is not None or self.isWindow():  # (a tab on its own: charts at once)
            if not self._chart_interval_s:
                self._draw_curves()
                return
            wait_s = self._charts_drawn_at + self._chart_interval_s - self._clock()
            if wait_s <= 0:
                self._chart_timer.stop()
                self._request_draw()
            elif not self._chart_timer.isActive() and not gui_turns().pending(self, "curves"):
                self._chart_timer.start(math.ceil(wait_s * 1000) + CHART_FALLBACK_MS)
        else:
            self._stale_curves = True
            self._schedule_panel()

    def _on_chart_timer(self) -> None:
        if not self._drawn():
            self._stale_curves = True
        elif self._curve_panel is not None or self.isWindow():
            self._request_draw()

    def _request_draw(self) -> None:
        """The refresh's first turn (``gui_turns``: after the pump's tick, where the frame holds it):
        the episodes held folded into the curves; the panel's refresh at the turn after."""
        gui_turns().request(self, "curves", self._draw_curves_in_turns)

    def _draw_curves_in_turns(self) -> None:
        """The held episodes into ``curves``, at most ``CURVE_FOLD_CHUNK`` a turn (in order), then
        the panel's refresh at the turn after the last."""
        if not self._drawn():
            self._stale_curves = True
            return
        self._charts_drawn_at = self._clock()
        if len(self._curve_held) > CURVE_FOLD_CHUNK:
            self.curves.add_episode_events(_take_front(self._curve_held, CURVE_FOLD_CHUNK))
            gui_turns().request(self, "curves", self._draw_curves_in_turns)
            return
        self._fold_curves()
        gui_turns().request(self, "panel", self._refresh_panel)

    def _draw_curves(self) -> None:
        self._charts_drawn_at = self._clock()
        self._fold_curves()
        self._refresh_panel()

    def _refresh_panel(self) -> None:
        """Refresh the charts; charts built since the last refresh live as long as the tab: they
        are moved out of the collector's view (``gc_tuning.freeze_long_lived``, O(1)), so the
        window's full collections do not walk their thousands of pyqtgraph objects again and again."""
        panel = self.curve_panel
        if self._split_paint and panel.isVisible():
            # Spread over turns (``CurvePanel.refresh_in_turns``: the bins folded here, a chart's
            # curves per turn, the ranges' step), the charts' repaint in a turn after those, not
            # behind any of them: the pump's tick and input get in between. Only the charts'
            # viewports wait (the panel's other widgets repaint as they would).
            panel.hold_paint("refresh")
            if not panel.refresh_in_turns(self._request_paint):
                self._request_paint()
        else:
            panel.refresh()
        built = len(panel.chart_titles())
        if built > self._charts_frozen:
            self._charts_frozen = built
            freeze_long_lived()

    def _request_paint(self) -> None:
        """The refreshed charts' repaint in a turn of its own, early in a frame (its paint follows it)."""
        gui_turns().request(self, "paint", self._enable_chart_updates, room_ms=CHART_PAINT_ROOM_MS)

    def _enable_chart_updates(self) -> None:
        """Let the refreshed charts repaint (a whole repaint of the panel, at this turn's end, unless
        a chart's build still holds it)."""
        panel = self._curve_panel
        if panel is not None:
            try:
                panel.release_paint("refresh")
            except RuntimeError:  # its chart view is gone meanwhile
                pass

    def _schedule_panel(self) -> None:
        """Build the charts at the event loop's next turn, if the tab is still shown then (a tab
        opened and covered at once by the next one builds nothing)."""
        if not self._panel_timer.isActive():
            self._panel_timer.start()

    def _build_panel_if_shown(self) -> None:
        if self._curve_panel is None and self._drawn():
            self._stale_curves = False
            self._fold_curves()
            self._refresh_panel()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt name)
        """Stop the timer when the tab closes. GUI thread; never blocks."""
        self.stop()
        super().closeEvent(event)

    # -- internals -------------------------------------------------------------------------------
    def _set(self, key: str, text: str) -> None:
        """Show ``text`` for ``key``: at once, or (a tab behind another, or within the text interval
        of the last update) kept for the next show or the interval's end; ``header_text`` reads it."""
        if self._text_interval_s or not self._drawn():
            self._pending_texts[key] = text
            if self._text_interval_s and not self._text_timer.isActive() and self._drawn():
                wait_s = max(0.0, self._texts_set_at + self._text_interval_s - self._clock())
                self._text_timer.start(math.ceil(wait_s * 1000))
            return
        self.header.set(key, text)

    def _flush_texts_if_drawn(self) -> None:
        if self._drawn():
            self._flush_texts()

    def _flush_texts(self) -> None:
        self._texts_set_at = self._clock()
        pending, self._pending_texts = self._pending_texts, {}
        for key, text in pending.items():
            self.header.set(key, text)

    def _hold_steps(self, steps: tuple[TelemetryEvent, ...]) -> None:
        """Hold a hidden tab's steps for the table, as its rows (plain tuples the collector does not
        walk, where a second of held events were two tracked objects a step): only the newest
        ``max_rows`` can be shown."""
        held = self._held_steps
        held += [step_row(evt) for evt in steps]
        limit = self.step_model.max_rows
        if len(held) > 2 * limit:  # trimmed now and then, not at every batch
            excess = len(held) - limit
            del held[:excess]
            self._held_skipped += excess

    def _fold_curves(self) -> None:
        """Put the episodes received since the last fold into ``curves`` in one call (the charts draw
        only at their refresh, so a fold per refresh, not per batch) and show the progress they make."""
        if self._curve_held:
            episodes, self._curve_held = self._curve_held, []
            self.curves.add_episode_events(episodes)
            self._show_progress()

    def _fold_held_in_turns(self) -> None:
        """The fold's turn on the plots' queue: the held steps beyond the table's bound counted and
        let go (they would leave it at once), then one piece a turn, in order: at most
        ``FOLD_CHUNK_ROWS`` step rows, then at most ``FOLD_CHUNK_ROWS`` held episodes into the
        episode table, then at most ``CURVE_FOLD_CHUNK`` episodes into the curves (a second at
        20,000 steps/s was one 4-13 ms turn: the last rows, every episode and the curves' fold together)."""
        held = self._held_steps
        limit = self.step_model.max_rows
        if len(held) > limit:
            excess = len(held) - limit
            del held[:excess]
            self._held_skipped += excess
        self._start_fold()
        if held:
            self.step_model.append_rows(_take_front(held, FOLD_CHUNK_ROWS))
        elif self._held_episodes:
            self.episode_model.add_events(_take_front(self._held_episodes, FOLD_CHUNK_ROWS))
        elif self._curve_held:
            self.curves.add_episode_events(_take_front(self._curve_held, CURVE_FOLD_CHUNK))
            self._show_progress()
            self._stale_curves = self._stale_curves or not self._drawn()  # drawn when shown
        if held or self._held_episodes or self._curve_held:
            gui_turns().request(self, "fold", self._fold_held_in_turns)

    def _start_fold(self) -> None:
        """A fold begins: its time noted, the held steps let go uncounted so far counted in the table."""
        self._folded_at = self._clock()
        if self._held_skipped:
            self.step_model.count_skipped(self._held_skipped)
            self._held_skipped = 0

    def _fold_held(self) -> None:
        """Put what the tab held while hidden into its tables and curves, in one go each."""
        if not (self._held_steps or self._held_skipped or self._held_episodes or self._curve_held):
            return
        self._start_fold()
        if self._held_steps:
            rows, self._held_steps = self._held_steps, []
            self.step_model.append_rows(rows)
        if self._held_episodes:
            episodes, self._held_episodes = self._held_episodes, []
            self.episode_model.add_events(episodes)
        if self._curve_held:
            self._fold_curves()
            self._stale_curves = self._stale_curves or not self._drawn()  # drawn when shown

    def _touch(self) -> None:
        self._silence.note_event(self._clock())

    def _show_progress(self) -> None:
        wall = self.curves.column("wall")
        index = self.curves.column("index")
        newest_at = float(wall[-1]) if len(wall) else None
        started = self._started_at_s
        if started is None and len(wall):
            started = float(wall[0])
        progress = progress_of(self.curves.episode_count, int(index[-1]) if len(index) else None,
                               self._total_episodes, started, newest_at, ended=self._ended)
        self._set("progress", progress.text())

    @property
    def total_episodes(self) -> int | None:
        """The episode count the run announced (RUN_STARTED's config), or None. GUI thread."""
        return self._total_episodes

    def _fold_returns(self, steps: tuple[TelemetryEvent, ...]) -> None:
        """Keep the running return of the newest episode seen (older episodes' steps are ignored)."""
        current, total = self._episode, self._episode_return
        for evt in steps:
            payload = evt.payload
            if type(payload) is StepPayload:  # (its fields in StepFields order: no lookup by key)
                fields = payload.fields
                ep, reward = fields[0], fields[4]
            else:
                ep, reward = payload.get("episode_index"), payload.get("reward")
            if type(ep) is not int or (current is not None and ep < current):
                continue
            if ep != current:
                current, total = ep, 0.0
            if type(reward) is float or type(reward) is int:
                total += reward
        self._episode, self._episode_return = current, total

    def _show_latest(self, latest: TelemetryEvent) -> None:
        payload = latest.payload
        self._set("episode", _fmt(_number(payload.get("episode_index"))))
        self._set("step", _fmt(_number(payload.get("step_index"))))
        self._set("last_reward", _fmt(_number(payload.get("reward"))))
        if not self._drawn():  # the frame is decoded and drawn when the tab is shown
            if _has_frame(payload):
                self._pending_frame = latest
            return
        render = payload.get("render_payload")
        if render is not None:  # (a step without a frame: keep showing the previous one)
            self._show_frame(render)

    def _show_frame(self, render: Any) -> None:
        kind = render.get("kind") if isinstance(render, Mapping) else None
        if kind in ("grid", "rgb") and self._toytext is None:
            self._learn_kind(kind == "grid")
        self.render_view.set_payload(render)

    def _learn_kind(self, toytext: bool) -> None:
        """Apply the default table visibility for the run's kind, unless the user chose already."""
        self._toytext = toytext
        if not self._tables_user_set:
            self.tables_button.setChecked(not toytext)

    def _apply_tables_visible(self, visible: bool) -> None:
        self.tables.setVisible(visible)
        self.tables_button.setText("Hide tables" if visible else "Show tables")
        if visible and (self._held_steps or self._held_episodes):
            self._fold_held()  # the rows held while the tables were hidden

    def _tables_clicked(self, _checked: bool) -> None:
        self._tables_user_set = True

    def _update_stall_text(self) -> None:
        seconds = self._silence.silence_s(self._clock())
        if seconds is None:
            silence = "No events from the worker yet."
        else:
            last_at = datetime.fromtimestamp(time.time() - seconds).strftime("%H:%M:%S")
            silence = f"No events for {seconds:.0f} s (last at {last_at})."
        self.stall_banner.setText(
            f"Stream stalled. {silence} The durable path keeps recording; this view catches up "
            "(with backfill) when events flow again."
        )
