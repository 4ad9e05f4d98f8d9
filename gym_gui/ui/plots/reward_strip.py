"""RewardStrip: an episode's reward per step along the replay scrubber, with a cursor line.

The strip draws the min/max bins of the steps in view (``live.decimate``, as the learning curves):
every step is in a bin, every spike is drawn, and pyqtgraph's own downsampling (a re-read of every
step at every paint) is off. An episode of at most ``offload_rows`` steps is converted and binned
at once; a longer one on the strip's PlotWorker thread (``live.curve_jobs.strip_arrays``), drawn
when that lands (a newer episode cancels it). Zoomed or panned (x only), the steps in view are
binned again, down to the steps themselves, on the worker for a long episode. GUI thread only.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pyqtgraph as pg
from qtpy.QtCore import Signal
from qtpy.QtWidgets import QVBoxLayout, QWidget

from gym_gui.live.curve_jobs import StripArrays, strip_arrays, strip_view
from gym_gui.ui.plots.curve_chart import cache_axes
from gym_gui.ui.plots.grid_lines import GridLines
from gym_gui.ui.plots.plot_worker import PlotWorker
from gym_gui.ui.plots.tick_axis import chart_axes

__all__ = ["STRIP_OFFLOAD_ROWS", "RewardStrip"]

_REWARD_PEN = pg.mkPen((40, 110, 200), width=1)
_CUMULATIVE_PEN = pg.mkPen((200, 120, 30), width=1, style=pg.QtCore.Qt.PenStyle.DashLine)
_CURSOR_PEN = pg.mkPen((200, 40, 40), width=2)
#: Steps converted and binned on the GUI thread at most; a longer episode goes to the worker.
STRIP_OFFLOAD_ROWS = 20_000
#: Fewest bins of the drawing (about one per pixel; a wider strip gets more).
STRIP_BINS = 512


class RewardStrip(QWidget):
    """A small plot of the rewards of the steps of one episode (x: position in the scrubber) and the
    return so far, with a draggable cursor at the step shown (module doc). ``position_picked(int)``
    when the person drags the cursor. GUI thread only."""

    position_picked = Signal(int)

    def __init__(self, parent: QWidget | None = None, *, offload_rows: int = STRIP_OFFLOAD_ROWS) -> None:
        super().__init__(parent)
        self._offload_rows = max(0, offload_rows)
        self.plot_widget = pg.PlotWidget(background="w", axisItems=chart_axes())
        self.plot_widget.setMinimumHeight(90)
        self.plot_widget.setMaximumHeight(140)
        plot = self.plot_widget.getPlotItem()
        plot.setLabel("left", "reward")
        plot.setMouseEnabled(x=True, y=False)
        self.grid = GridLines(plot)  # and cached axes: a moving cursor repaints the plot, not its texts
        cache_axes(plot)
        self.reward_curve = plot.plot(pen=_REWARD_PEN, name="reward")
        self.return_curve = plot.plot(pen=_CUMULATIVE_PEN, name="return so far")
        self.cursor = pg.InfiniteLine(pos=0, angle=90, movable=True, pen=_CURSOR_PEN)
        plot.addItem(self.cursor)
        self.cursor.sigPositionChangeFinished.connect(self._on_cursor_dragged)
        view_box = plot.getViewBox()
        view_box.disableAutoRange()  # the strip sets its ranges
        view_box.sigXRangeChanged.connect(self._on_range)
        self.worker = PlotWorker(self, name="reward-strip")
        self._values = np.empty(0)
        self._returns = np.empty(0)
        self._count = 0
        self._episode = 0  # bumped by every set_rewards: results for an older one are dropped
        self._ranging = False  # the strip sets its own range: not a zoom
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot_widget)
        self.setToolTip("Blue: the reward of each step of the episode; orange dashes: the return so far. "
                        "Drag the red line to scrub.")

    def set_rewards(self, rewards: Sequence[float | None] | np.ndarray) -> None:
        """Show one reward per scrubber position (None: no reward stored, drawn as a gap); a long
        episode is drawn when the worker has binned it (module doc). GUI thread; never blocks."""
        self._episode += 1
        episode, count, bins = self._episode, len(rewards), self._bins()
        self._count = count
        self.cursor.setBounds((0, max(0, count - 1)))
        self.worker.cancel()
        if count <= self._offload_rows:
            arrays = strip_arrays(rewards, None, bins)
            assert arrays is not None  # no token: never cancelled
            self._show(arrays)
            return
        snapshot = rewards if isinstance(rewards, np.ndarray) else list(rewards)  # the caller may change its list

        def done(arrays: StripArrays | None) -> None:
            if arrays is not None and episode == self._episode:
                self._show(arrays)

        self.worker.submit("strip", lambda token: strip_arrays(snapshot, None, bins, token), done)

    def set_cursor(self, position: int) -> None:
        """Move the cursor to scrubber ``position``. GUI thread; never blocks."""
        if int(round(self.cursor.value())) != position:
            self.cursor.setValue(position)

    def cursor_position(self) -> int:
        """The cursor's scrubber position. GUI thread."""
        return int(round(self.cursor.value()))

    def rewards(self) -> np.ndarray:
        """The rewards of the episode shown, one per step (NaN for gaps; empty until a long
        episode's arrays landed). GUI thread."""
        return self._values

    def drawn(self) -> tuple[np.ndarray, np.ndarray]:
        """The reward curve's points as drawn (binned; the steps themselves when few are in view).
        GUI thread."""
        x, y = self.reward_curve.xData, self.reward_curve.yData
        return (np.empty(0), np.empty(0)) if x is None else (x, y)

    def busy(self) -> bool:
        """True while the worker bins an episode or a zoomed range. GUI thread."""
        return self.worker.pending()

    def stop(self, timeout_s: float = 0.0) -> bool:
        """Cancel the worker's jobs and wait up to ``timeout_s`` for its thread to end (0: do not
        wait); True when it has. GUI thread; blocks up to ``timeout_s``."""
        return self.worker.stop(timeout_s)

    # -- internals -------------------------------------------------------------------------------
    def _bins(self) -> int:
        return max(STRIP_BINS, int(self.plot_widget.getPlotItem().getViewBox().width()))

    def _show(self, arrays: StripArrays) -> None:
        self._values, self._returns = arrays.values, arrays.returns
        self._draw(arrays.rewards_xy, arrays.returns_xy)
        plot = self.plot_widget.getPlotItem()
        self._ranging = True
        try:
            plot.setYRange(*arrays.y_bounds, padding=0.1)
            plot.setXRange(0, max(1, len(arrays.values) - 1), padding=0.02)
        finally:
            self._ranging = False

    def _draw(self, rewards_xy: tuple[np.ndarray, np.ndarray], returns_xy: tuple[np.ndarray, np.ndarray]) -> None:
        self.reward_curve.setData(*rewards_xy, connect="finite")
        self.return_curve.setData(*returns_xy, connect="finite")

    def _on_range(self, _view_box: Any, x_range: Any) -> None:
        """Zoomed or panned: bin the steps in view again (on the worker for a long episode)."""
        if self._ranging or not len(self._values):
            return
        values, returns, bins = self._values, self._returns, self._bins()
        view = (float(x_range[0]), float(x_range[1]))
        if len(values) <= self._offload_rows:
            self._draw(*strip_view(values, returns, view, bins))
            return
        episode = self._episode

        def done(drawing: Any) -> None:
            if drawing is not None and episode == self._episode:
                self._draw(*drawing)

        self.worker.submit("view", lambda token: None if token.cancelled() else strip_view(values, returns, view, bins),
                           done)

    def _on_cursor_dragged(self, _line: object) -> None:
        if self._count:
            position = min(max(0, self.cursor_position()), self._count - 1)
            self.cursor.setValue(position)
            self.position_picked.emit(position)
