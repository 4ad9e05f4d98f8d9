"""GuiTurns: the plots' deferred GUI-thread work, one piece per event-loop turn, for every view of
the process. GUI thread only.

The plots put work off to a later turn of the event loop so that one stretch of the GUI thread
holds one piece (a chart's build, a chart's range step, a chart shown, a worker's result) and the
paint it posts: a heartbeat, an input event, another view's tick get in between. With a 0 ms
QTimer per kind of work that did not hold: a timer started during a long stretch (e.g. from the
paint that a range step posted) is due from the moment it was started, earlier than a 5 ms
heartbeat that came due in the middle of that stretch, so Qt fired it, and every other such timer,
before the heartbeat, in the same pass (a range step, its two paints, the next chart's step and a
worker's result in one 29 ms gap, PyQt5). Here every piece waits in one queue served by one 0 ms
timer that is restarted after the piece it ran: anything that came due while that piece ran (the
heartbeat, input) goes before the next piece, and the paint a piece posts runs before the next
timer pass. A piece asked for outside a turn (from a paint, from another view's slot) starts the
timer through a posted call, i.e. once the posted events that are running (that paint) are done:
started at once it would be due before a heartbeat that comes due later in the same stretch.

``request(owner, key, fn)`` queues ``fn`` unless ``(owner, key)`` is already queued (one turn per
kind and owner); ``cancel(owner[, key])`` drops queued pieces; a piece whose owner was deleted is
dropped when its turn comes. Pieces run first in, first out.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Callable, Hashable

from qtpy import sip
from qtpy.QtCore import QObject, Qt, QTimer, Signal

__all__ = ["GuiTurns", "gui_turns"]

_log = logging.getLogger(__name__)


class GuiTurns(QObject):
    """One queue of deferred pieces of work, one run per event-loop turn (module doc). GUI thread."""

    _wake = Signal()  # starts the timer once the running posted events are done (module doc)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._queue: OrderedDict[tuple[int, Hashable], tuple[QObject, Callable[[], None]]] = OrderedDict()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._run_one)
        self._running = False  # a piece runs: the timer is started after it
        self._waking = False  # a start of the timer is posted
        self._wake.connect(self._start, Qt.ConnectionType.QueuedConnection)
        self.turns_run = 0  # pieces run (tests)

    def request(self, owner: QObject, key: Hashable, fn: Callable[[], None]) -> bool:
        """Queue ``fn`` for a later turn; False (and nothing queued) when ``(owner, key)`` waits
        already. GUI thread; never blocks."""
        slot = (id(owner), key)
        if slot in self._queue:
            return False
        self._queue[slot] = (owner, fn)
        if not (self._running or self._waking or self._timer.isActive()):
            self._waking = True
            self._wake.emit()
        return True

    def pending(self, owner: QObject, key: Hashable | None = None) -> bool:
        """True while a piece of ``owner`` (of ``key``, or any) waits for its turn. GUI thread."""
        if key is not None:
            return (id(owner), key) in self._queue
        return any(slot[0] == id(owner) for slot in self._queue)

    def cancel(self, owner: QObject, key: Hashable | None = None) -> None:
        """Drop the queued pieces of ``owner`` (of ``key``, or all). GUI thread; never blocks."""
        for slot in [s for s in self._queue if s[0] == id(owner) and (key is None or s[1] == key)]:
            del self._queue[slot]

    def _start(self) -> None:
        self._waking = False
        if self._queue and not self._running and not self._timer.isActive():
            self._timer.start()

    def _run_one(self) -> None:
        """Run the first queued piece whose owner still exists; the next at the turn after."""
        self._running = True
        try:
            while self._queue:
                _slot, (owner, fn) = self._queue.popitem(last=False)
                if sip.isdeleted(owner):
                    continue
                self.turns_run += 1
                fn()
                return
        finally:
            self._running = False
            if self._queue and not self._timer.isActive():
                self._timer.start()  # after the piece: what came due meanwhile goes first


_turns: GuiTurns | None = None


def gui_turns() -> GuiTurns:
    """The process's GuiTurns (made on first use, on the GUI thread, never deleted). GUI thread."""
    global _turns
    if _turns is None or sip.isdeleted(_turns):
        _turns = GuiTurns()
    return _turns
