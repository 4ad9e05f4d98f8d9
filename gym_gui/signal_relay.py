"""Run a process's signal callbacks on a thread of their own, never inside the interrupted code.

A Python signal handler runs in the main thread between two bytecodes of whatever it was doing.
If that code held a lock at the moment (``threading.Event.wait`` holds its condition's lock for a
few bytecodes on the way out, a queue or ``logging`` handler holds theirs) and the handler takes
the same lock (``Event.set``, ``Condition.notify``, a log call), the main thread waits for itself
forever: the process ignores every later SIGTERM and never exits.

:class:`SignalRelay`'s handler only writes the signal's number to a pipe, which takes no lock; a
``signal-relay`` thread reads the pipe and runs the callback there, where waiting for a lock is
harmless. Qt-free.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType
from typing import Any, Callable, Iterable

__all__ = ["SignalRelay"]

_log = logging.getLogger(__name__)
_STOP = 0  # no signal has number 0


class SignalRelay:
    """Route ``signals`` to ``callback(signum)`` on the relay thread, in arrival order.

    Use as a context manager (or :meth:`install` / :meth:`close`) around the code to protect.
    Signals of one kind that arrive before the handler runs are merged by the OS, as always.
    """

    def __init__(self, callback: Callable[[int], None],
                 signals: Iterable[int] = (signal.SIGTERM, signal.SIGINT)) -> None:
        self._callback = callback
        self._signals = tuple(signals)
        self._previous: dict[int, Any] = {}
        self._read_fd = self._write_fd = -1
        self._thread: threading.Thread | None = None

    def install(self) -> None:
        """Start the relay thread and install the handlers. Main thread only; never blocks."""
        if self._thread is not None:
            raise RuntimeError("SignalRelay is already installed")
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)
        self._thread = threading.Thread(target=self._relay, name="signal-relay", daemon=True)
        self._thread.start()
        for signum in self._signals:
            self._previous[signum] = signal.signal(signum, self._on_signal)

    def close(self, timeout_s: float = 5.0) -> bool:
        """Put the previous handlers back, let the thread run the callbacks of signals already
        received, then stop it. Main thread only; blocks up to ``timeout_s`` for those callbacks.
        Returns whether the thread stopped."""
        thread = self._thread
        if thread is None:
            return True
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()
        self._write(_STOP)
        thread.join(timeout_s)
        stopped = not thread.is_alive()
        if stopped:
            os.close(self._read_fd)
            self._thread = None
        os.close(self._write_fd)
        return stopped

    @property
    def running(self) -> bool:
        """Whether the relay thread is alive. Any thread; never blocks."""
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> SignalRelay:
        self.install()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._write(signum)  # nothing else: see the module docstring

    def _write(self, signum: int) -> None:
        try:
            os.write(self._write_fd, bytes((signum,)))
        except BlockingIOError:  # 64 KiB of signals not yet relayed: the callback runs anyway
            pass

    def _relay(self) -> None:
        while True:
            try:
                data = os.read(self._read_fd, 256)
            except InterruptedError:  # pragma: no cover - retried by Python itself (PEP 475)
                continue
            if not data:  # pragma: no cover - the write end closed without the stop byte
                return
            for signum in data:
                if signum == _STOP:
                    return
                try:
                    self._callback(signum)
                except Exception:
                    _log.exception("signal %s callback failed", signal.Signals(signum).name)
