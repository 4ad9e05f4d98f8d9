"""PlotJobs: the plots' work that grows with a run (decimation, rolling means, smoothing) run on a
thread of its own, the newest job per key winning. Qt-free.

``submit(key, fn)`` queues ``fn(token)``; one worker thread runs queued jobs in order and ends when
none is left (so a closed view leaves no thread behind), and a later ``submit`` starts a new one.
A newer job of the same key replaces a queued older one and cancels a running one: ``fn`` checks
``token.cancelled()`` between pieces of work and returns early. A job that ran to its end and was
not cancelled is passed to ``deliver(job)`` on the worker thread (the Qt shell,
``gym_gui.ui.plots.plot_worker``, queues it to the GUI thread). ``stop()`` cancels everything,
refuses new jobs and joins the thread. Jobs are pure functions of the array views they were given
(see ``live.curves``: appends do not move rows), so the thread shares nothing else.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable

from gym_gui.rate_limited_log import RateLimitedLog

__all__ = ["CancelToken", "PlotJob", "PlotJobs"]

_log = logging.getLogger(__name__)
_rate_log = RateLimitedLog(_log, interval_s=5.0)


class CancelToken:
    """Set once when the job's result is no longer wanted. Any thread; never blocks."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Mark the job unwanted. Any thread."""
        self._event.set()

    def cancelled(self) -> bool:
        """True once cancelled. Any thread."""
        return self._event.is_set()


class PlotJob:
    """One submitted job: its key, function, token and, once run, its result or error."""

    __slots__ = ("key", "fn", "token", "result", "error")

    def __init__(self, key: Hashable, fn: Callable[[CancelToken], Any]) -> None:
        self.key = key
        self.fn = fn
        self.token = CancelToken()
        self.result: Any = None
        self.error: BaseException | None = None


class PlotJobs:
    """Jobs run on one worker thread, newest per key wins (module doc). Any thread may call."""

    def __init__(self, deliver: Callable[[PlotJob], None], *, name: str = "plot-jobs") -> None:
        self._deliver = deliver
        self._name = name
        self._cond = threading.Condition()
        self._pending: OrderedDict[Hashable, PlotJob] = OrderedDict()
        self._running: PlotJob | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False
        self.jobs_run = 0  # jobs whose function ran to its end (tests, benchmarks)
        self.jobs_failed = 0  # jobs whose function raised (logged, rate-limited)

    def submit(self, key: Hashable, fn: Callable[[CancelToken], Any]) -> PlotJob | None:
        """Queue ``fn(token)`` under ``key``, cancelling the key's older job; None after ``stop()``.
        Any thread; never blocks (a short lock; may start the worker thread)."""
        job = PlotJob(key, fn)
        with self._cond:
            if self._stopped:
                return None
            older = self._pending.pop(key, None)
            if older is not None:
                older.token.cancel()
            if self._running is not None and self._running.key == key:
                self._running.token.cancel()
            self._pending[key] = job
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
        return job

    def cancel(self, key: Hashable | None = None) -> None:
        """Cancel the queued and running job of ``key`` (None: every job). Any thread; never blocks."""
        with self._cond:
            for k in [k for k in self._pending if key is None or k == key]:
                self._pending.pop(k).token.cancel()
            if self._running is not None and (key is None or self._running.key == key):
                self._running.token.cancel()

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Cancel every job, refuse new ones, and wait up to ``timeout_s`` for the worker thread to
        end (a running job ends at its next check). True when no worker thread is left. Idempotent.
        Any thread but the worker's; blocks up to ``timeout_s`` (0: does not wait)."""
        with self._cond:
            self._stopped = True
            thread = self._thread
        self.cancel()
        if thread is not None and timeout_s > 0:
            thread.join(timeout_s)
        return thread is None or not thread.is_alive()

    def thread_alive(self) -> bool:
        """True while a worker thread exists (it ends when no job is left). Any thread."""
        with self._cond:
            thread = self._thread
        return thread is not None and thread.is_alive()

    def busy(self) -> bool:
        """True while a job is queued or running. Any thread; never blocks."""
        with self._cond:
            return bool(self._pending) or self._running is not None

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stopped or not self._pending:
                    self._pending.clear()
                    self._thread = None
                    return
                _key, job = self._pending.popitem(last=False)
                self._running = job
            try:
                if not job.token.cancelled():
                    job.result = job.fn(job.token)
                    self.jobs_run += 1
            except Exception as error:  # noqa: BLE001 (a job's failure must not end the thread)
                job.error = error
                self.jobs_failed += 1
                _rate_log.log(logging.WARNING, f"plot-job:{self._name}", "plot job %r failed: %s: %s",
                              job.key, type(error).__name__, error)
            finally:
                with self._cond:
                    self._running = None
            if not job.token.cancelled():
                try:
                    self._deliver(job)
                except Exception as error:  # noqa: BLE001 (the receiver is gone, e.g. a closed view)
                    _rate_log.log(logging.INFO, f"plot-deliver:{self._name}", "plot job %r not delivered: %s",
                                  job.key, error)
