"""GuiPump: the one object on the GUI thread that drives every Qt-free view (see docs/qt-layer.md).

A view is any object with ``tick(now_s: float) -> None`` and ``next_deadline_s(now_s: float) ->
float | None`` (None: only data wakes it). A view gets its own waker, ``w = pump.new_waker()``,
subscribes to the bus with it (``bus.subscribe_topics(..., waker=w)``) and registers with
``pump.add(view, waker=w)``; a publish then marks that view and posts one wake-up event to the GUI
thread (``GuiWaker.notify``; the bus calls ``notify`` only while the waker is not pending, and the
pump keeps at most one wake-up in flight). The pump runs at most one tick per frame
(``frame_interval_ms``, 16 ms: a display frame): a wake-up that comes sooner than one frame after
the last tick waits for the frame's end, so a burst of publishes costs one tick. A tick calls
``tick(now_s)`` of the views that are due: woken since their last tick, or past their deadline
(a stall check, a retry, a refresh, or ``now_s`` when they have more queued); a view added
without a waker of its own (it may use the shared ``pump.waker``) is ticked at every tick. A view
that raises is logged and counted; the others still run. Then the pump arms one single-shot timer
for the earliest deadline. With no wake-up pending and no deadline, no timer runs: an idle window
costs nothing, and eight busy runs cost each view only its own news. A tick whose views took
longer than ``tick_budget_ms`` (8 ms) hands the thread back to the event loop and ticks the rest
right after (they go first), so one slow view does not hold input and paints behind all the
others (``ticks_split`` counts it).

Other GUI-thread work can keep out of the ticks' way: ``frame_left_s()`` is the time until the
earliest moment the next tick may run (None while the pump is stopped or idle), and a tick
listener (``add_tick_listener``) is called at the end of every tick, so work put off to "after the
next tick" (``gui_turns``) starts the turn after it, with most of a frame before the tick after.

``start()`` / ``stop()``: after ``stop()`` the timer is stopped, wake-ups posted earlier are
ignored and the waker posts nothing more. The pump may be started again. ``add(view)`` /
``remove(view)`` register views at any time (GUI thread); ``wake()`` asks for a tick from any
thread; ``reschedule()`` (GUI thread) re-reads the views' deadlines after a change outside a tick.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Callable, Protocol

from qtpy.QtCore import QCoreApplication, QEvent, QObject, Qt, QTimer

from gym_gui.rate_limited_log import RateLimitedLog
from gym_gui.telemetry.subscription import Waker

__all__ = ["DEFAULT_FRAME_INTERVAL_MS", "GuiPump", "GuiWaker", "PumpedView"]

_log = logging.getLogger(__name__)
_rate_log = RateLimitedLog(_log, interval_s=5.0)

#: One display frame at 60 Hz, rounded down: the shortest time between two ticks.
DEFAULT_FRAME_INTERVAL_MS = 16
_WAKE_EVENT = QEvent.Type(QEvent.registerEventType())
#: A tick hands the GUI thread back to the event loop once its views took this long; the views not
#: ticked yet go first in a follow-up tick at once (so input and paints interleave with a busy tick).
DEFAULT_TICK_BUDGET_MS = 8
#: Ticks closer together than this many frames count as a stream (``frame_left_s``): the next tick may come
#: one frame after the last; longer without a tick, the pump is idle until a wake-up arms its timer.
STREAMING_FRAMES = 4
#: QTimer's longest interval (a deadline further away is re-armed when the timer fires).
_MAX_TIMER_MS = 2**31 - 1


class PumpedView(Protocol):
    """What the pump drives. Both methods run on the GUI thread and must not block."""

    def tick(self, now_s: float) -> None:
        """Take in what arrived (drain subscriptions, apply read results), emit, check deadlines."""

    def next_deadline_s(self, now_s: float) -> float | None:
        """When this view next needs a tick without new data (``<= now_s``: at the next frame), or None."""


class GuiWaker(Waker):
    """A ``Waker`` whose ``notify`` posts one wake-up event to a pump on the GUI thread.

    ``pending`` stays True from the first notify until the pump's next tick begins, so the bus
    (which notifies only while not pending) posts one event per tick at most.
    """

    __slots__ = ("_pump", "_armed")

    def __init__(self, pump: "GuiPump") -> None:
        super().__init__()
        self._pump = pump
        self._armed = False  # True while the pump runs; wake-ups are posted only then

    def notify(self) -> None:
        """Ask for a tick of this waker's view(s). Any thread; never blocks (at most one
        ``QCoreApplication.postEvent`` in flight per pump)."""
        if self.pending or not self._armed:
            return
        self.pending = True
        self._pump._post()  # noqa: SLF001 (the pump's own waker)


class GuiPump(QObject):
    """Drives registered views' ``tick(now_s)`` on the GUI thread: woken by data, timed by deadlines.

    ``clock`` is the monotonic time in seconds passed to the views (a test hook; views compare it
    with the deadlines they return). Counters: ``polls`` (ticks run), ``wakeups`` (wake-up events
    handled), ``wakeups_ignored`` (arrived while stopped), ``view_errors`` (ticks that raised).
    """

    def __init__(self, *, frame_interval_ms: int = DEFAULT_FRAME_INTERVAL_MS,
                 tick_budget_ms: int = DEFAULT_TICK_BUDGET_MS,
                 clock: Callable[[], float] = time.monotonic, parent: QObject | None = None) -> None:
        """Create a stopped pump. GUI thread; never blocks. Raises ValueError unless
        ``frame_interval_ms`` is an int >= 1."""
        super().__init__(parent)
        if type(frame_interval_ms) is not int or frame_interval_ms < 1:
            raise ValueError(f"frame_interval_ms must be an int >= 1, got {frame_interval_ms!r}")
        self.frame_interval_ms = frame_interval_ms
        self._frame_s = frame_interval_ms / 1000.0
        self._budget_s = max(0, tick_budget_ms) / 1000.0
        self._carry: list[PumpedView] = []  # due views a tick over its budget left for the next, in order
        self.ticks_split = 0
        self._clock = clock
        self._waker = GuiWaker(self)  # shared: ticks every view
        self._wakers: list[GuiWaker] = [self._waker]  # armed and disarmed with the pump
        self._views: list[PumpedView] = []
        self._view_wakers: dict[int, GuiWaker] = {}  # id(view) -> its own waker
        self._deadlines: dict[int, float | None] = {}  # id(view) -> its deadline after its last tick
        self._posted = False  # a wake-up event is in the GUI thread's queue
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._on_timer)
        self._armed_at: float | None = None  # clock time the timer is armed for
        self._running = False
        self._wake_pending = False
        self._deadline: float | None = None  # the earliest view deadline after the last tick
        self._last_tick_s = -math.inf
        self._ticking = False
        self._tick_listeners: list[Callable[[], None]] = []
        self.polls = 0
        self.wakeups = 0
        self.wakeups_ignored = 0
        self.view_errors = 0

    # -- registration ------------------------------------------------------------------------------
    def clock(self) -> float:
        """The pump's clock now (monotonic seconds; what ``tick`` gets). Any thread."""
        return self._clock()

    @property
    def waker(self) -> GuiWaker:
        """The shared waker: its notice ticks every view (prefer ``new_waker`` per view). Any thread."""
        return self._waker

    def new_waker(self) -> GuiWaker:
        """A waker for one view (pass it to ``add``): its notice ticks that view only. GUI thread."""
        waker = GuiWaker(self)
        waker._armed = self._running
        self._wakers.append(waker)
        return waker

    def add(self, view: PumpedView, *, waker: GuiWaker | None = None) -> None:
        """Drive ``view`` from now on (idempotent); its deadline is read at once. With ``waker`` (from
        ``new_waker``) the view is ticked when that waker is notified or its deadline is due; without,
        at every tick. GUI thread; never blocks."""
        if any(v is view for v in self._views):
            return
        self._views.append(view)
        if waker is not None:
            self._view_wakers[id(view)] = waker
            waker.pending = False
            waker._armed = self._running
        # Its deadline at once, also when added from inside a tick (a view opened by another view's news):
        # the tick re-arms the timer for it when it ends.
        self._deadlines[id(view)] = self._deadline_of(view, self._clock())
        self.reschedule()

    def remove(self, view: PumpedView) -> None:
        """Stop driving ``view`` (idempotent); it is not ticked again and its waker posts nothing
        more. GUI thread; never blocks."""
        self._views = [v for v in self._views if v is not view]
        waker = self._view_wakers.pop(id(view), None)
        if waker is not None:
            waker._armed = False
            self._wakers = [w for w in self._wakers if w is not waker]
        self._deadlines.pop(id(view), None)
        self.reschedule()

    def views(self) -> list[PumpedView]:
        """The registered views, in the order they are ticked. GUI thread."""
        return list(self._views)

    def __contains__(self, view: object) -> bool:
        return any(v is view for v in self._views)

    def add_tick_listener(self, fn: Callable[[], None]) -> None:
        """Call ``fn()`` at the end of every tick, after the views' (idempotent; one that raises is
        logged and counted in ``view_errors``). GUI thread; never blocks."""
        if not any(f == fn for f in self._tick_listeners):
            self._tick_listeners.append(fn)

    def remove_tick_listener(self, fn: Callable[[], None]) -> None:
        """Stop calling ``fn`` (idempotent). GUI thread; never blocks."""
        self._tick_listeners = [f for f in self._tick_listeners if f != fn]

    def frame_left_s(self) -> float | None:
        """Seconds until the earliest moment the next tick may run (0.0: it is due now): the armed
        timer's time, or, while ticks stream (one in the last ``STREAMING_FRAMES`` frames), one frame
        after the last tick, whichever is sooner; None while stopped or idle (nothing armed, no
        recent tick: only a wake-up starts the next, a frame or more from now). GUI thread; never blocks."""
        if not self._running:
            return None
        if self._carry:
            return 0.0
        now = self._clock()
        next_at: float | None = None
        if now - self._last_tick_s < STREAMING_FRAMES * self._frame_s:
            next_at = self._last_tick_s + self._frame_s
        if self._armed_at is not None and self._timer.isActive() and (next_at is None or self._armed_at < next_at):
            next_at = self._armed_at
        return None if next_at is None else max(0.0, next_at - now)

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Accept wake-ups and deadlines; idempotent. The first tick comes with the first wake-up or
        deadline, at the earliest one frame from now. GUI thread; never blocks."""
        if self._running:
            return
        self._running = True
        self._last_tick_s = self._clock()
        self._posted = False
        for waker in self._wakers:
            waker.pending = False
            waker._armed = True
        self.reschedule()

    def stop(self) -> None:
        """Stop the timer and ignore every wake-up from now on (also those already posted);
        idempotent. The views stay registered. GUI thread; never blocks."""
        self._running = False
        for waker in self._wakers:
            waker._armed = False
            waker.pending = False
        self._wake_pending = False
        self._carry = []
        self._timer.stop()
        self._armed_at = None

    def is_running(self) -> bool:
        """True between ``start()`` and ``stop()``. GUI thread."""
        return self._running

    def is_polling(self) -> bool:
        """Alias of ``is_running`` (the controllers' old name). GUI thread."""
        return self._running

    def timer_active(self) -> bool:
        """True while a tick is scheduled (False when idle or stopped). GUI thread."""
        return self._timer.isActive()

    @property
    def poll_timer(self) -> QTimer:
        """The one single-shot timer (tests prove it is stopped). GUI thread."""
        return self._timer

    @property
    def ticks(self) -> int:
        """Alias of ``polls``: ticks run so far. GUI thread."""
        return self.polls

    # -- waking ------------------------------------------------------------------------------------
    def wake(self) -> None:
        """Ask for a tick of every view at the next frame. Any thread; never blocks."""
        self._waker.notify()

    def reschedule(self) -> None:
        """Re-read every view's deadline and re-arm the timer from now (after a change outside a
        tick; also after the pump's clock moved other than real time does). GUI thread; never blocks."""
        if not self._running or self._ticking:
            return
        now = self._clock()
        for view in self._views:
            self._deadlines[id(view)] = self._deadline_of(view, now)
        self._deadline = self._earliest()
        self._armed_at = None  # the timer's interval was counted from an older ``now``
        self._arm()

    def _post(self) -> None:
        """Post the one wake-up event (coalesced: at most one in the queue). Any thread."""
        if self._posted:
            return
        self._posted = True
        QCoreApplication.postEvent(self, QEvent(_WAKE_EVENT))

    def event(self, e: QEvent) -> bool:  # noqa: D401 (Qt override)
        """The posted wake-up (GUI thread)."""
        if e.type() == _WAKE_EVENT:
            self._posted = False  # before anything else: a notice from here on posts again
            if not self._running:
                self.wakeups_ignored += 1
                return True
            self.wakeups += 1
            self._wake_pending = True
            self._arm()
            return True
        return super().event(e)

    # -- ticking -----------------------------------------------------------------------------------
    def tick_now(self) -> None:
        """Run one tick of every view at once, whatever the frame, wake-ups and deadlines (tests,
        shutdown). GUI thread; never blocks longer than the views' ticks."""
        if self._running:
            self._tick(every=True)

    def _on_timer(self) -> None:
        self._armed_at = None
        if self._running:
            self._tick()

    def _tick(self, *, every: bool = False) -> None:
        now = self._clock()
        self._timer.stop()
        self._armed_at = None
        every = every or self._waker.pending
        self._waker.pending = False  # before draining: whatever is published from here on wakes again
        self._wake_pending = False
        self._last_tick_s = now
        self.polls += 1
        self._ticking = True
        carried = [v for v in self._carry if any(v is w for w in self._views)]
        self._carry = []
        order = carried + [v for v in self._views if not any(v is c for c in carried)]
        due_views: list[PumpedView] = []
        for view in order:
            own = self._view_wakers.get(id(view))
            if own is not None and not every and not any(view is c for c in carried):
                due = self._deadlines.get(id(view))
                if not own.pending and (due is None or due > now):
                    continue
            due_views.append(view)
        budget_end = now + self._budget_s
        try:
            for index, view in enumerate(due_views):
                if index and self._budget_s and self._clock() > budget_end:
                    self._carry = due_views[index:]  # the rest go first, at once, after the event loop's turn
                    self.ticks_split += 1
                    break
                key = id(view)
                own = self._view_wakers.get(key)
                if own is not None:
                    own.pending = False  # before its drain, as above
                try:
                    view.tick(now)
                except Exception as exc:  # noqa: BLE001 (one view's bug must not stop the others)
                    self.view_errors += 1
                    if _rate_log.log(logging.ERROR, f"tick:{type(view).__name__}", "view %r failed to tick: %s: %s",
                                     view, type(exc).__name__, exc):
                        _log.debug("the failed tick", exc_info=True)
                if any(v is view for v in self._views):  # (it may have left during its own tick)
                    self._deadlines[key] = self._deadline_of(view, now)
        finally:
            self._ticking = False
        if self._running:
            self._deadline = self._earliest()
            self._arm()
        for listener in list(self._tick_listeners):
            try:
                listener()
            except Exception as exc:  # noqa: BLE001 (as a view's)
                self.view_errors += 1
                _rate_log.log(logging.ERROR, "tick-listener", "tick listener %r failed: %s: %s",
                              listener, type(exc).__name__, exc)

    def _deadline_of(self, view: PumpedView, now: float) -> float | None:
        try:
            return view.next_deadline_s(now)
        except Exception as exc:  # noqa: BLE001
            self.view_errors += 1
            _rate_log.log(logging.ERROR, f"deadline:{type(view).__name__}", "view %r failed to give its "
                          "deadline: %s: %s", view, type(exc).__name__, exc)
            return now + 1.0  # tick it again later rather than forget it

    def _earliest(self) -> float | None:
        earliest: float | None = None
        for due in self._deadlines.values():
            if due is not None and (earliest is None or due < earliest):
                earliest = due
        return earliest

    def _arm(self) -> None:
        """Arm the timer for the earliest of a pending wake-up and the views' deadline, at most one
        tick per frame (a tick split over its budget goes on at once); stop it when nothing is pending."""
        if not self._running:
            return
        now = self._clock()
        if self._carry:
            self._armed_at = now
            self._timer.start(0)
            return
        due = now if self._wake_pending else self._deadline
        if due is None:
            self._timer.stop()
            self._armed_at = None
            return
        at = max(due, self._last_tick_s + self._frame_s)
        if self._armed_at is not None and self._timer.isActive() and self._armed_at <= at:
            return  # already armed for as soon or sooner
        self._armed_at = at
        self._timer.start(min(_MAX_TIMER_MS, max(0, math.ceil((at - now) * 1000.0))))
