"""PlotWorker: the Qt shell of PlotJobs, delivering each finished plot job on the GUI thread.

``submit(key, fn, on_done)`` runs ``fn(token)`` on the worker thread (``live.plot_jobs``); later
``on_done(result)`` runs on the thread that owns the PlotWorker (a queued signal, then a turn of a
0 ms timer: below), unless a newer job of the same key was submitted meanwhile or the job was
cancelled. A view that closes
calls ``stop()``: every job is cancelled and the thread ends at its next check.

A delivery runs in a turn of its own (``gui_turns``: one piece of the plots' deferred work per
event-loop turn), not in the queued signal's slot: under Qt's glib event dispatcher (both bindings' here) timers fire again only once
the posted events are drained, so a result delivered in a slot ran in one stretch with whatever
ran before it (a chart's build in a timer, another result, the paints they posted) while a 5 ms
heartbeat timer waited behind all of them (a 20 ms timer then a 20 ms posted call: the heartbeat
36 ms late; a 20 ms timer then a 20 ms timer: 16 ms). From a timer, a delivery
and the paint it posts are one stretch of their own, and the next delivery waits until what came
due meanwhile had its turn.

The worker thread never emits on the PlotWorker itself (a closing tab may be deleting it at that
moment): it emits on one relay QObject that lives as long as the process, on the thread that made
the first PlotWorker (the GUI thread); the relay hands the result to its PlotWorker through a weak
reference, and drops it when that PlotWorker is gone or deleted.
"""

from __future__ import annotations

import threading
import weakref
from collections import deque
from typing import Any, Callable, Hashable

from qtpy import sip
from qtpy.QtCore import QObject, Qt, Signal

from gym_gui.live.plot_jobs import CancelToken, PlotJob, PlotJobs
from gym_gui.ui.plots.gui_turns import gui_turns

__all__ = ["PlotWorker"]


class _Relay(QObject):
    """Carries (weak PlotWorker, job) from worker threads to the GUI thread; never deleted."""

    ready = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self.ready.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    def _deliver(self, item: tuple[weakref.ref[PlotWorker], PlotJob]) -> None:
        worker = item[0]()
        if worker is None or sip.isdeleted(worker):
            item[1].token.cancel()
            return
        worker._arrived(item[1])


_relay: _Relay | None = None
_relay_lock = threading.Lock()


def _the_relay() -> _Relay:
    global _relay
    with _relay_lock:
        if _relay is None:
            _relay = _Relay()
        return _relay


class PlotWorker(QObject):
    """Off-GUI-thread plot jobs with results on the owner's thread (module doc). Owner's thread
    unless said otherwise."""

    def __init__(self, parent: QObject | None = None, *, name: str = "plot-worker") -> None:
        super().__init__(parent)
        self._relay = _the_relay()
        self._weak = weakref.ref(self)
        self.jobs = PlotJobs(self._from_worker, name=name)
        self._waiting: dict[Hashable, tuple[PlotJob, Callable[[Any], None], Callable[[BaseException], None] | None]] = {}
        self._arrivals: deque[PlotJob] = deque()  # finished jobs, delivered one per turn (module doc)
        self._turns = gui_turns()
        self.delivered = 0  # results handed to on_done (tests, benchmarks)

    def submit(self, key: Hashable, fn: Callable[[CancelToken], Any], on_done: Callable[[Any], None],
               on_error: Callable[[BaseException], None] | None = None) -> bool:
        """Run ``fn(token)`` off this thread, then ``on_done(result)`` here, or ``on_error(error)``
        when it raised (module doc; logged either way); a newer job of ``key`` replaces this one.
        False after ``stop()``. Never blocks."""
        job = self.jobs.submit(key, fn)
        if job is None:
            return False
        self._waiting[key] = (job, on_done, on_error)
        return True

    def pending(self, key: Hashable | None = None) -> bool:
        """True while a job (of ``key``, or any) awaits its delivery. Never blocks."""
        return bool(self._waiting) if key is None else key in self._waiting

    def cancel(self, key: Hashable | None = None) -> None:
        """Drop the job of ``key`` (None: all) and its delivery. Never blocks."""
        self.jobs.cancel(key)
        for k in [k for k in self._waiting if key is None or k == key]:
            del self._waiting[k]

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Cancel every job and wait up to ``timeout_s`` for the worker thread to end; True when it
        has. Idempotent. Blocks up to ``timeout_s`` (a job ends at its next check: milliseconds)."""
        self._waiting.clear()
        self._arrivals.clear()
        self._turns.cancel(self)
        return self.jobs.stop(timeout_s)

    def thread_alive(self) -> bool:
        """True while the worker thread exists. Any thread."""
        return self.jobs.thread_alive()

    def _from_worker(self, job: PlotJob) -> None:  # worker thread: only the relay, never self
        self._relay.ready.emit((self._weak, job))

    def _arrived(self, job: PlotJob) -> None:
        """A finished job reached this thread: delivered at the next turn (module doc)."""
        self._arrivals.append(job)
        self._turns.request(self, "deliver", self._deliver_next)

    def _deliver_next(self) -> None:
        """Deliver the first arrived job still awaited (a newer job of its key, a cancel: dropped);
        the next one at the turn after."""
        while self._arrivals:
            job = self._arrivals.popleft()
            entry = self._waiting.get(job.key)
            if entry is None or entry[0] is not job or job.token.cancelled():
                continue
            del self._waiting[job.key]
            try:
                if job.error is None:
                    self.delivered += 1
                    entry[1](job.result)
                elif entry[2] is not None:
                    entry[2](job.error)
            finally:
                if self._arrivals and not sip.isdeleted(self):
                    self._turns.request(self, "deliver", self._deliver_next)  # at a later turn
            return
