"""Waker: wakes one consumer thread when any subscription attached to it receives data (Qt-free).

Publishers call ``notify()`` only while ``pending`` is False, so a waker that is already pending
costs the hot path one attribute read. A Qt-side subclass may override ``notify`` (and clear
``pending`` itself) to post a wake-up to the GUI thread. ``gym_gui.telemetry.subscription`` and
``gym_gui.telemetry.run_bus`` re-export it.
"""

from __future__ import annotations

import threading

__all__ = ["Waker"]


class Waker:
    """Wakes one consumer thread when any of the subscriptions attached to it receives data.

    Publishers pay one attribute read per event while the waker is already pending, so waking is
    cheap on the hot path. Spurious wakeups are possible: after waking, always drain.
    """

    __slots__ = ("pending", "_event")

    def __init__(self) -> None:
        self.pending = False
        self._event = threading.Event()

    def notify(self) -> None:
        """Wake the waiting consumer (also used to make it re-check a stop flag). Any thread; never blocks."""
        self.pending = True
        self._event.set()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until notified since the last wait, or until ``timeout_s``; True if notified.

        Consumer thread only; blocks. Drain every attached subscription after it returns.
        """
        woken = self._event.wait(timeout_s)
        self._event.clear()
        self.pending = False
        return woken
