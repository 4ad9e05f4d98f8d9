"""PlotSpares: pyqtgraph PlotItems built ahead of need, a piece per event-loop turn. GUI thread only.

Building a chart's PlotItem takes 10 to 25 ms of GUI-thread CPU in one go (its ViewBox and the
ViewBox's menu, four axes, the plot's own menu and layout): a new worker number seen in a refresh
blocked the GUI thread that long on top of the refresh and the paint, and a new CurvePanel (a tab
opened) built three in its constructor. Here the process keeps a few spare PlotItems
(``shared_spares()``, ``SPARES``), built while the GUI is idle, each in three pieces in event-loop
turns of their own (the ViewBox and the left and bottom axes, the ViewBox's menu, then the
PlotItem around them: about 2, 4 and 6 ms of CPU under PyQt6 on an idle machine). A chart takes a
spare and only adds it to its layout; the pool is refilled in the turns after. A piece whose turn
comes late (the loop was busy: a landing, a paint) waits a turn more, so the pieces do not pile
onto a long turn. Nothing is built before a panel was painted (``start()``: a process that never
shows a chart builds none). A spare is in no scene and has no Qt parent: a closed panel deletes
none of them, and each has every menu before a chart takes it (menus enabled after the chart was
shown met deleted views of closed panels). The builder's timer is a child of the application.
"""

from __future__ import annotations

import time
from typing import Any

import pyqtgraph as pg
from qtpy import sip
from qtpy.QtCore import QCoreApplication, QObject, QTimer, Signal

from gym_gui.ui.plots.tick_axis import chart_axes

__all__ = ["SPARES", "PlotSpares", "shared_spares"]

#: Spare PlotItems the process keeps (a new panel's three built-in charts).
SPARES = 3
#: A piece's turn that comes this much later than asked (ms) waits one turn more (at most
#: ``MAX_WAITS`` times in a row).
LATE_MS = 8.0
MAX_WAITS = 5


class PlotSpares(QObject):
    """Up to ``target`` spare PlotItems, built a piece per event-loop turn (module doc);
    ``spare_ready()`` each time one is. GUI thread only."""

    spare_ready = Signal()

    def __init__(self, parent: QObject | None = None, *, target: int = SPARES) -> None:
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._step)
        self._target = max(0, target)
        self._armed_at = 0.0
        self._waits = 0
        self._view_box: Any = None
        self._axes: dict[str, pg.AxisItem] | None = None
        self._spares: list[pg.PlotItem] = []
        self.built = 0  # spares built (tests)
        self.taken = 0  # spares taken (tests)

    def count(self) -> int:
        """Spare PlotItems waiting. GUI thread."""
        return len(self._spares)

    def ready(self) -> bool:
        """True when a spare PlotItem is waiting. GUI thread."""
        return bool(self._spares)

    def building(self) -> bool:
        """True while a spare is being built (its next piece waits for its turn). GUI thread."""
        return self._timer.isActive()

    def start(self) -> None:
        """Build spares in the coming turns until there are ``target``, unless that is under way.
        GUI thread; never blocks."""
        if len(self._spares) < self._target and not self._timer.isActive():
            self._arm()

    def take(self) -> pg.PlotItem | None:
        """A spare PlotItem (in no layout or scene), or None when none is waiting; the pool is
        refilled in the turns after. GUI thread; never blocks."""
        if not self._spares:
            return None
        self.taken += 1
        spare = self._spares.pop(0)
        self.start()
        return spare

    def _arm(self) -> None:
        self._armed_at = time.perf_counter()
        self._timer.start()

    def _step(self) -> None:
        """Build the next piece, or wait one turn more when this turn came late (module doc)."""
        late_ms = (time.perf_counter() - self._armed_at) * 1000
        if late_ms > LATE_MS and self._waits < MAX_WAITS:
            self._waits += 1
            self._arm()
            return
        self._waits = 0
        if self._view_box is None:  # about 2 ms
            self._view_box = pg.ViewBox(enableMenu=False)
            self._axes = chart_axes()
        elif not self._view_box.menuEnabled():  # its menu: about 4 ms
            self._view_box.setMenuEnabled(True)
        else:  # about 6 ms (the plot's own menu and layout)
            self._spares.append(pg.PlotItem(viewBox=self._view_box, axisItems=self._axes))
            self._view_box, self._axes = None, None
            self.built += 1
            self.spare_ready.emit()
        self.start()


_shared: PlotSpares | None = None


def shared_spares() -> PlotSpares:
    """The process's pool of spare PlotItems (made on first use, a child of the application).
    GUI thread."""
    global _shared
    if _shared is None or sip.isdeleted(_shared):
        _shared = PlotSpares(QCoreApplication.instance())
    return _shared
