"""Reading a worker's output pipe so that the worker's exit, not the pipe's last holder, ends it (Qt-free).

A worker that starts a grandchild (a data loader, a shell, ``sleep``) may hand it its stdout and
stderr; the pipe then reaches end-of-file only when the grandchild exits too, maybe never.
``ExitBoundedPipe`` reads the pipe like a file, but once the worker has exited it returns what is
already in the pipe and then ends: everything the worker wrote before exiting is in the pipe by
then. Those bytes (counted with FIONREAD when the exit is seen) are always read, however long the
reader is held up; after them, bytes keep being read while they arrive without a pause, for at
most ``drain_s``: a grandchild gets that long, never the worker's own output less.

It also watches an optional ``parent_fd`` (the write end of the pipe to our parent): when the
parent process is gone that end reports an error, and ``on_parent_gone`` runs (the ingest child
kills the worker and exits, so neither outlives the GUI).

The worker's exit is seen through a pidfd (Linux 5.3+); without one the pipe reads to EOF as a
plain pipe does.
"""

from __future__ import annotations

import fcntl
import io
import logging
import os
import select
import signal
import struct
import termios
import time
from typing import Callable

__all__ = ["DEFAULT_EXIT_DRAIN_S", "ExitBoundedPipe", "open_pidfd", "kill_by_pidfd"]

_log = logging.getLogger(__name__)

#: How long output is still read after the worker exited while a grandchild keeps the pipe open.
DEFAULT_EXIT_DRAIN_S = 2.0
_IN = select.POLLIN | select.POLLPRI
_GONE = select.POLLERR | select.POLLHUP | select.POLLNVAL


def open_pidfd(pid: int) -> int | None:
    """A pidfd of ``pid`` (readable once it exits), or None where the system has none. Any thread."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        return int(opener(pid))
    except ProcessLookupError:
        return -1  # already gone
    except OSError:
        return None


def kill_by_pidfd(pidfd: int | None, pid: int, sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` to the process behind ``pidfd`` (never to a reused pid), else to ``pid``. Never raises."""
    try:
        send = getattr(signal, "pidfd_send_signal", None)
        if pidfd is not None and pidfd >= 0 and send is not None:
            send(pidfd, sig)
        elif pidfd is None:
            os.kill(pid, sig)
    except OSError:
        pass


class ExitBoundedPipe(io.RawIOBase):
    """A readable raw stream over ``fd`` that ends once ``worker_pid`` has exited and the pipe is drained.

    Only one thread reads it; each read blocks until data arrives, the worker exits, or the parent
    is gone. The caller keeps owning ``fd`` (``close`` closes only the pidfd).
    """

    def __init__(self, fd: int, worker_pid: int | None, *, drain_s: float = DEFAULT_EXIT_DRAIN_S,
                 parent_fd: int | None = None, on_parent_gone: Callable[[], None] | None = None) -> None:
        super().__init__()
        self._fd = fd
        self._drain_s = drain_s
        self._pidfd = None if worker_pid is None else open_pidfd(worker_pid)
        self._deadline: float | None = None
        self._owed = 0  # bytes in the pipe when the worker's exit was seen: the worker's own, always read
        if self._pidfd == -1:
            self._worker_exited()
        self._poll = select.poll()
        self._poll.register(fd, _IN | _GONE)
        if self._pidfd is not None and self._pidfd >= 0:
            self._poll.register(self._pidfd, select.POLLIN)
        self._parent_fd = parent_fd if on_parent_gone is not None else None
        self._on_parent_gone = on_parent_gone
        if self._parent_fd is not None:
            self._poll.register(self._parent_fd, 0)  # only POLLERR/POLLHUP: the reader is gone
        self._now_poll = select.poll()
        self._now_poll.register(fd, _IN | _GONE)

    @property
    def pidfd(self) -> int | None:
        """The worker's pidfd (None: none on this system, -1: it had already exited)."""
        return self._pidfd

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        """Read into ``buffer``; 0 at the end (EOF, or the worker exited and the pipe is drained)."""
        while True:
            if self._deadline is not None:
                if self._owed > 0:
                    n = self._read(memoryview(buffer)[: self._owed] if len(buffer) > self._owed else buffer)
                    self._owed = 0 if n == 0 else self._owed - n
                    return n
                if time.monotonic() >= self._deadline or not self._now_poll.poll(0):
                    return 0  # the worker is gone and what it wrote has been read
                return self._read(buffer)
            for fd, events in self._poll.poll():
                if fd == self._parent_fd and events & _GONE:
                    self._poll.unregister(fd)
                    self._parent_fd = None
                    assert self._on_parent_gone is not None
                    self._on_parent_gone()
                elif fd == self._pidfd:
                    self._poll.unregister(fd)
                    self._worker_exited()
            if self._deadline is None and self._now_poll.poll(0):
                return self._read(buffer)

    def _worker_exited(self) -> None:
        """From now on: read what the pipe holds (the worker's last output), then at most ``drain_s`` more."""
        self._deadline = time.monotonic() + self._drain_s
        try:
            self._owed = struct.unpack("i", fcntl.ioctl(self._fd, termios.FIONREAD, b"\0\0\0\0"))[0]
        except OSError:  # not a pipe or a socket: it reaches EOF by itself
            self._owed = 0

    def _read(self, buffer: bytearray | memoryview) -> int:
        data = os.read(self._fd, len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if self._pidfd is not None and self._pidfd >= 0:
            try:
                os.close(self._pidfd)
            except OSError:
                pass
            self._pidfd = -1
        super().close()
