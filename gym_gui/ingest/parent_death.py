"""Children that end when their parent dies: PR_SET_PDEATHSIG on Linux (Qt-free).

The kernel sends the signal when the *thread* that started the child ends, not only the process,
so it is set only for children started on the main thread (whose end is the process's end); the
ingest child also watches its output pipe (``worker_pipe``), which covers every other case.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
from typing import Callable

__all__ = ["parent_death_preexec", "set_parent_death_signal", "spawned_on_main_thread"]

_log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
_prctl: Callable[..., int] | None = None
if sys.platform.startswith("linux"):
    try:
        # the process's own symbols, libc's among them: no ``ctypes.util.find_library`` (an ldconfig
        # child and 7 ms of imports in every process that starts a worker or is the ingest child)
        _prctl = ctypes.CDLL(None, use_errno=True).prctl
        _prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        _prctl.restype = ctypes.c_int
    except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
        _prctl = None


def spawned_on_main_thread() -> bool:
    """True on the main thread: a parent-death signal set for a child started here is safe. Any thread."""
    return threading.current_thread() is threading.main_thread()


def set_parent_death_signal(expected_parent_pid: int | None = None, sig: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent ends. Linux; True if set.

    With ``expected_parent_pid``, a parent that is already gone (``getppid()`` differs) ends this
    process at once: the signal would never come. Call it early in a child's main thread.
    """
    if _prctl is None:
        return False
    if _prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
        return False
    if expected_parent_pid is not None and os.getppid() != expected_parent_pid:
        os._exit(1)
    return True


def parent_death_preexec() -> Callable[[], None] | None:
    """A ``preexec_fn`` that gives a spawned worker the parent-death signal SIGKILL, or None.

    None off the main thread (the signal would come when that thread ends) and where prctl is not
    available. The function only calls prctl and getppid (no lock, no import, no allocation of
    note), so it is safe between fork and exec.
    """
    if _prctl is None or not spawned_on_main_thread():
        return None
    prctl, parent_pid, getppid, exit_now, kill = _prctl, os.getpid(), os.getppid, os._exit, int(signal.SIGKILL)

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, kill, 0, 0, 0)
        if getppid() != parent_pid:
            exit_now(1)

    return preexec
