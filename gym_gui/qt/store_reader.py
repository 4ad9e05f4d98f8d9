"""StoreReader: runs read-only SQLite queries on reader threads and hands the results to the GUI thread.

The Qt controllers never query SQLite on the GUI thread. They call ``submit(query, on_done)``;
``query(store)`` runs on one of a few reader threads (each with its own read connection, so it
never waits for the DbSink's writer), and ``on_done(result)`` runs later on the thread that owns
the StoreReader, through a queued Qt signal.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, TypeVar

from qtpy.QtCore import QObject, Qt, Signal

from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore

__all__ = ["StoreReader"]

_log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_READER_THREADS = 2


class _Job:
    """One submitted query and where its result goes."""

    __slots__ = ("query", "on_done", "on_error", "future")

    def __init__(self, query: Callable[[TelemetrySQLiteStore], Any], on_done: Callable[[Any], None],
                 on_error: Callable[[BaseException], None] | None) -> None:
        self.query = query
        self.on_done = on_done
        self.on_error = on_error
        self.future: Future[Any] | None = None


class StoreReader(QObject):
    """Off-GUI-thread reads of one ``TelemetrySQLiteStore``, results delivered on the owner's thread.

    ``failed(str)`` is emitted (owner's thread) for a query that raised and had no ``on_error``.
    """

    failed = Signal(str)
    _finished = Signal(object)

    def __init__(self, store: TelemetrySQLiteStore, *, reader_threads: int = DEFAULT_READER_THREADS,
                 parent: QObject | None = None) -> None:
        """Create the reader; threads start on first use. GUI thread (the owner); does not block."""
        super().__init__(parent)
        self.store = store
        self._pool = ThreadPoolExecutor(max_workers=max(1, reader_threads), thread_name_prefix="store-reader")
        self._lock = threading.Lock()
        self._pending = 0
        self._stopped = False
        self._finished.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    def submit(self, query: Callable[[TelemetrySQLiteStore], T], on_done: Callable[[T], None],
               on_error: Callable[[BaseException], None] | None = None) -> bool:
        """Run ``query(store)`` on a reader thread; later call ``on_done(result)`` on the owner's thread.

        Owner's thread; never blocks. Returns False (and runs nothing) after ``stop()``. Callbacks of
        queries still running when ``stop()`` is called are not run.
        """
        job = _Job(query, on_done, on_error)
        with self._lock:
            if self._stopped:
                return False
            self._pending += 1
            try:
                job.future = self._pool.submit(query, self.store)
            except RuntimeError:  # the pool was shut down concurrently
                self._pending -= 1
                return False
        job.future.add_done_callback(lambda _f, job=job: self._finished.emit(job))
        return True

    def pending(self) -> int:
        """Queries submitted whose callbacks have not run yet. Any thread; never blocks."""
        with self._lock:
            return self._pending

    def _deliver(self, job: _Job) -> None:
        with self._lock:
            self._pending -= 1
            if self._stopped:
                return
        assert job.future is not None
        error = job.future.exception()
        if error is None:
            job.on_done(job.future.result())
        elif job.on_error is not None:
            job.on_error(error)
        else:
            _log.warning("telemetry read failed: %s: %s", type(error).__name__, error)
            self.failed.emit(f"{type(error).__name__}: {error}")

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Stop accepting queries and wait for running ones to end; idempotent.

        Owner's thread; blocks up to ``timeout_s`` for queries already running (reads only).
        Returns True when every reader thread has ended.
        """
        with self._lock:
            self._stopped = True
        self._pool.shutdown(wait=False, cancel_futures=True)
        threads = list(getattr(self._pool, "_threads", ()))
        deadline = time.monotonic() + timeout_s
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads)

    def threads_alive(self) -> int:
        """Reader threads still running (for tests that prove the stop). Any thread."""
        return sum(1 for t in getattr(self._pool, "_threads", ()) if t.is_alive())
