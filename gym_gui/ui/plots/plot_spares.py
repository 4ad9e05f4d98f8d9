"""PlotSpares: a pyqtgraph PlotItem built ahead of need, a piece per event-loop turn. GUI thread only.

Building a chart's PlotItem takes 10 to 25 ms of GUI-thread CPU in one go (its ViewBox and the
ViewBox's menu, four axes, the plot's own menu and layout): a new worker number seen in a refresh
blocked the GUI thread that long, on top of the refresh and the paint. Here one spare PlotItem is
built while the panel is idle, in three pieces, each in an event-loop turn of its own (the
ViewBox and the left and bottom axes, the ViewBox's menu, then the PlotItem around them: 2, 4
and 6 ms of CPU under PyQt6 on an idle machine), so a new chart takes the spare and only adds it
to the layout. The next spare is built in the turns after. A piece whose turn comes late (the loop was busy: a landing, a paint) waits one turn more,
so the pieces do not pile onto a long turn. The spare has every menu before a chart takes it
(menus enabled after the chart was shown met deleted views of closed panels) and the builder's
timer is the panel's child, so nothing runs for a closed panel.
"""

from __future__ import annotations

import time
from typing import Any

import pyqtgraph as pg
from qtpy.QtCore import QObject, QTimer, Signal

__all__ = ["PlotSpares"]

#: A piece's turn that comes this much later than asked (ms) waits one turn more (at most
#: ``MAX_WAITS`` times in a row).
LATE_MS = 8.0
MAX_WAITS = 5


class PlotSpares(QObject):
    """One spare PlotItem, built a piece per event-loop turn (module doc); ``spare_ready()`` when
    one is. GUI thread only."""

    spare_ready = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._timer = QTimer(self)  # a child: it dies with the panel
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._step)
        self._armed_at = 0.0
        self._waits = 0
        self._view_box: Any = None
        self._axes: dict[str, pg.AxisItem] | None = None
        self._spare: pg.PlotItem | None = None
        self.wanted = False  # build a spare (the panel has room for more charts)
        self.built = 0  # spares built (tests)
        self.taken = 0  # spares taken (tests)

    def ready(self) -> bool:
        """True when a spare PlotItem is waiting. GUI thread."""
        return self._spare is not None

    def building(self) -> bool:
        """True while a spare is being built (its next piece waits for its turn). GUI thread."""
        return self._timer.isActive()

    def start(self) -> None:
        """Build a spare in the coming turns unless one is there or on its way. GUI thread; never blocks."""
        if self.wanted and self._spare is None and not self._timer.isActive():
            self._arm()

    def take(self) -> pg.PlotItem | None:
        """The spare PlotItem (not in any layout or scene), or None when none is ready; the next
        one is built in the turns after. GUI thread; never blocks."""
        spare, self._spare = self._spare, None
        if spare is not None:
            self.taken += 1
            self.start()
        return spare

    def stop(self) -> None:
        """Build nothing more (the panel closes). GUI thread; never blocks."""
        self.wanted = False
        self._timer.stop()

    def _arm(self) -> None:
        self._armed_at = time.perf_counter()
        self._timer.start()

    def _step(self) -> None:
        """Build the next piece, or wait one turn more when this turn came late (module doc)."""
        if not self.wanted:
            return
        late_ms = (time.perf_counter() - self._armed_at) * 1000
        if late_ms > LATE_MS and self._waits < MAX_WAITS:
            self._waits += 1
            self._arm()
            return
        self._waits = 0
        if self._view_box is None:  # about 2 ms
            self._view_box = pg.ViewBox(enableMenu=False)
            # top and right are made (hidden) by the PlotItem: given here they would be shown
            self._axes = {name: pg.AxisItem(name) for name in ("left", "bottom")}
        elif not self._view_box.menuEnabled():  # its menu: about 4 ms
            self._view_box.setMenuEnabled(True)
        else:  # about 6 ms (the plot's own menu and layout)
            self._spare = pg.PlotItem(viewBox=self._view_box, axisItems=self._axes)
            self._view_box, self._axes = None, None
            self.built += 1
            self.spare_ready.emit()
            return
        self._arm()
