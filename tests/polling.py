"""Waiting in tests for a state another thread or process changes: one polling rule for every test.

Prefer ``qtbot.waitSignal`` / ``qtbot.waitUntil`` in Qt tests and ``threading.Event`` where the code
offers one; these are for states that only a poll can see (a file, a process table, another
process's rows, a counter a worker thread moves).
"""

from __future__ import annotations

import threading
import time
from typing import Callable

import pytest

__all__ = ["became_true", "process_gone", "wait_until"]


def became_true(predicate: Callable[[], object], timeout_s: float, *, interval_s: float = 0.02) -> bool:
    """Poll ``predicate`` until it is truthy (True) or ``timeout_s`` passes (False, after a last look)."""
    pause = threading.Event()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        pause.wait(interval_s)
    return bool(predicate())


def wait_until(condition: Callable[[], object], timeout_s: float = 10.0, *, interval_s: float = 0.005,
               message: str = "condition") -> None:
    """Poll ``condition`` until it is truthy; fail the test after ``timeout_s``."""
    if not became_true(condition, timeout_s, interval_s=interval_s):
        pytest.fail(f"timed out after {timeout_s} s waiting for {message}")


def process_gone(pid: int) -> bool:
    """True once process ``pid`` has ended (gone, or a zombie nobody reaped yet: a container's init may not)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
    except (FileNotFoundError, ProcessLookupError):
        return True
