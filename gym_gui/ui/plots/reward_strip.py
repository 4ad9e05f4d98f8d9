"""RewardStrip: an episode's reward per step along the replay scrubber, with a cursor line."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pyqtgraph as pg
from qtpy.QtCore import Signal
from qtpy.QtWidgets import QVBoxLayout, QWidget

from gym_gui.ui.plots.curve_panel import style_curve

__all__ = ["RewardStrip"]

_REWARD_PEN = pg.mkPen((40, 110, 200), width=1.5)
_CUMULATIVE_PEN = pg.mkPen((200, 120, 30), width=1, style=pg.QtCore.Qt.PenStyle.DashLine)
_CURSOR_PEN = pg.mkPen((200, 40, 40), width=2)


class RewardStrip(QWidget):
    """A small plot of the rewards of the steps of one episode (x: position in the scrubber) and the
    return so far, with a draggable cursor at the step shown. ``position_picked(int)`` when the
    person drags the cursor. GUI thread only."""

    position_picked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot_widget = pg.PlotWidget(background="w")
        self.plot_widget.setMinimumHeight(90)
        self.plot_widget.setMaximumHeight(140)
        plot = self.plot_widget.getPlotItem()
        plot.showGrid(x=True, y=True, alpha=0.25)
        plot.setLabel("left", "reward")
        plot.setMouseEnabled(x=True, y=False)
        self.reward_curve = style_curve(plot.plot(pen=_REWARD_PEN, name="reward"))
        self.return_curve = style_curve(plot.plot(pen=_CUMULATIVE_PEN, name="return so far"))
        self.cursor = pg.InfiniteLine(pos=0, angle=90, movable=True, pen=_CURSOR_PEN)
        plot.addItem(self.cursor)
        self.cursor.sigPositionChangeFinished.connect(self._on_cursor_dragged)
        self._count = 0
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot_widget)
        self.setToolTip("Blue: the reward of each step of the episode; orange dashes: the return so far. "
                        "Drag the red line to scrub.")

    def set_rewards(self, rewards: Sequence[float | None]) -> None:
        """Show one reward per scrubber position (None: no reward stored, drawn as a gap). GUI thread."""
        values = np.array([np.nan if r is None else float(r) for r in rewards], dtype=np.float64)
        self._count = len(values)
        x = np.arange(len(values), dtype=np.float64)
        self.reward_curve.setData(x, values, connect="finite")
        self.return_curve.setData(x, np.cumsum(np.nan_to_num(values, nan=0.0)))
        plot = self.plot_widget.getPlotItem()
        shown = np.concatenate((values, self.return_curve.yData if self.return_curve.yData is not None else []))
        shown = shown[np.isfinite(shown)]
        low, high = (float(shown.min()), float(shown.max())) if len(shown) else (0.0, 1.0)
        if high - low < 1e-9:  # a constant reward (e.g. all 0): a readable band around it
            low, high = low - 1.0, high + 1.0
        plot.setYRange(low, high, padding=0.1)
        plot.setXRange(0, max(1, len(values) - 1), padding=0.02)
        self.cursor.setBounds((0, max(0, len(values) - 1)))

    def set_cursor(self, position: int) -> None:
        """Move the cursor to scrubber ``position``. GUI thread; never blocks."""
        if int(round(self.cursor.value())) != position:
            self.cursor.setValue(position)

    def cursor_position(self) -> int:
        """The cursor's scrubber position. GUI thread."""
        return int(round(self.cursor.value()))

    def rewards(self) -> np.ndarray:
        """The rewards shown (NaN for gaps). GUI thread."""
        y = self.reward_curve.yData
        return np.empty(0) if y is None else y

    def _on_cursor_dragged(self, _line: object) -> None:
        if self._count:
            position = min(max(0, self.cursor_position()), self._count - 1)
            self.cursor.setValue(position)
            self.position_picked.emit(position)
