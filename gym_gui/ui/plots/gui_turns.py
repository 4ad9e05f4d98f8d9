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

Following a GuiPump (``follow_pump``, the window's): a piece also keeps out of the pump's ticks,
whose signals carry the live latency. It starts only when the frame left before the pump's next
possible tick (``GuiPump.frame_left_s``) holds what it is expected to take (its kind's recent
cost, or the ``room_ms`` it was asked with, at most ``EARLY_ROOM_MS``); otherwise it waits for the
end of the next tick (the pump's tick listener) and runs at the turn after it, the first piece
after a tick always (so each tick lets at least one piece through). Without news for the pump
(``frame_left_s`` None) nothing waits. A piece that runs late in a frame delays the tick it
overlaps, and with it every step published meanwhile; right after a tick it has most of a frame.

``request(owner, key, fn)`` queues ``fn`` unless ``(owner, key)`` is already queued (one turn per
kind and owner); ``cancel(owner[, key])`` drops queued pieces; a piece whose owner was deleted is
dropped when its turn comes. Pieces run first in, first out.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
import time
from typing import Any, Callable, Hashable, Protocol

from qtpy import sip
from qtpy.QtCore import QObject, Qt, QTimer, Signal

__all__ = ["DEFAULT_ROOM_MS", "EARLY_ROOM_MS", "FramePump", "GuiTurns", "gui_turns"]

_log = logging.getLogger(__name__)

#: The frame a piece of a kind not measured yet needs before the pump's next tick.
DEFAULT_ROOM_MS = 4.0
#: The most room a piece waits for: a longer one (a chart's build) runs as early in a frame as
#: there is, i.e. once at least this much is left (the turn right after a tick).
EARLY_ROOM_MS = 10.0
#: A kind's expected cost: its last cost, or this share of the one before when that was higher
#: (a decaying maximum: one slow run keeps the next few early in their frames).
_COST_DECAY = 0.8


class FramePump(Protocol):
    """What ``follow_pump`` needs of a GuiPump."""

    def frame_left_s(self) -> float | None: ...

    def add_tick_listener(self, fn: Callable[[], None]) -> None: ...

    def remove_tick_listener(self, fn: Callable[[], None]) -> None: ...


def _kind(key: Hashable) -> Hashable:
    return key[0] if isinstance(key, tuple) and key else key


class GuiTurns(QObject):
    """One queue of deferred pieces of work, one run per event-loop turn (module doc). GUI thread."""

    _wake = Signal()  # starts the timer once the running posted events are done (module doc)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._queue: OrderedDict[tuple[int, Hashable], tuple[QObject, Callable[[], None], float | None]] = OrderedDict()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._run_one)
        self._running = False  # a piece runs: the timer is started after it
        self._waking = False  # a start of the timer is posted
        self._wake.connect(self._start, Qt.ConnectionType.QueuedConnection)
        self.turns_run = 0  # pieces run (tests)
        self._pump: FramePump | None = None
        self._after_tick = False  # the next turn is the first after a pump tick: a piece runs whatever its cost
        self._cost_s: dict[Hashable, float] = {}  # a kind of piece's expected cost (a decaying maximum)
        self.turns_waited = 0  # turns a piece waited for the pump's tick (tests, benchmarks)

    def follow_pump(self, pump: FramePump | None) -> None:
        """Keep the pieces out of ``pump``'s ticks from now on (module doc); None: run them at each
        turn again. GUI thread; never blocks."""
        if self._pump is not None:
            self._pump.remove_tick_listener(self._on_tick)
        self._pump = pump
        self._after_tick = False
        if pump is not None:
            pump.add_tick_listener(self._on_tick)
        if self._queue and not self._running and not self._timer.isActive():
            self._timer.start(0)

    def unfollow_pump(self, pump: FramePump) -> None:
        """Stop following ``pump`` if it is the one followed (a window shutting down). GUI thread."""
        if self._pump is pump:
            self.follow_pump(None)

    def _on_tick(self) -> None:
        """The pump's tick ended: the next turn may run a piece whatever it costs."""
        if self._queue and not self._running:
            self._after_tick = True
            self._timer.start(0)

    def _room_ok(self, key: Hashable, room_ms: float | None) -> tuple[bool, float]:
        """Whether a piece may start now, and if not the frame left (s) before the pump's tick."""
        pump = self._pump
        if pump is None or self._after_tick:
            return True, 0.0
        if isinstance(pump, QObject) and sip.isdeleted(pump):
            self._pump = None
            return True, 0.0
        left_s = pump.frame_left_s()
        if left_s is None:
            return True, 0.0
        need_ms = room_ms if room_ms is not None else self._cost_s.get(_kind(key), DEFAULT_ROOM_MS / 1000.0) * 1000.0
        return left_s * 1000.0 >= min(max(need_ms, 0.5), EARLY_ROOM_MS), left_s

    def request(self, owner: QObject, key: Hashable, fn: Callable[[], None], *, room_ms: float | None = None) -> bool:
        """Queue ``fn`` for a later turn; False (and nothing queued) when ``(owner, key)`` waits
        already. ``room_ms``: the frame it needs before the followed pump's next tick (default:
        what its kind, ``key`` or a tuple key's first item, took lately; module doc). GUI thread;
        never blocks."""
        slot = (id(owner), key)
        if slot in self._queue:
            return False
        self._queue[slot] = (owner, fn, room_ms)
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
            self._timer.start(0)

    def _run_one(self) -> None:
        """Run the first queued piece whose owner still exists, if the frame holds it (module doc);
        the next at the turn after."""
        self._running = True
        wait_ms: int | None = None
        try:
            while self._queue:
                slot, (owner, fn, room_ms) = next(iter(self._queue.items()))
                if sip.isdeleted(owner):
                    del self._queue[slot]
                    continue
                ok, left_s = self._room_ok(slot[1], room_ms)
                if not ok:  # after the pump's next tick (its listener), or once that tick is overdue
                    self.turns_waited += 1
                    wait_ms = max(2, int(left_s * 1000.0) + 1)
                    return
                del self._queue[slot]
                self._after_tick = False
                self.turns_run += 1
                started = time.perf_counter()
                try:
                    fn()
                finally:
                    self._note_cost(slot[1], time.perf_counter() - started)
                return
        finally:
            self._running = False
            if self._queue and not self._timer.isActive():
                self._timer.start(0 if wait_ms is None else wait_ms)  # after the piece: what came due meanwhile goes first

    def _note_cost(self, key: Hashable, cost_s: float) -> None:
        kind = _kind(key)
        self._cost_s[kind] = max(cost_s, self._cost_s.get(kind, 0.0) * _COST_DECAY)

    def expected_cost_ms(self, key: Hashable) -> float | None:
        """The cost (ms) a piece of ``key``'s kind is expected to take, None before one ran (tests,
        benchmarks). GUI thread."""
        cost = self._cost_s.get(_kind(key))
        return None if cost is None else cost * 1000.0

    def snapshot(self) -> dict[str, Any]:
        """Counts: pieces run and queued, turns a piece waited for the pump. GUI thread."""
        return {"turns_run": self.turns_run, "queued": len(self._queue), "turns_waited": self.turns_waited}


_turns: GuiTurns | None = None


def gui_turns() -> GuiTurns:
    """The process's GuiTurns (made on first use, on the GUI thread, never deleted). GUI thread."""
    global _turns
    if _turns is None or sip.isdeleted(_turns):
        _turns = GuiTurns()
    return _turns
