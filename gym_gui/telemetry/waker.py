"""Waker: wakes one consumer thread when any subscription attached to it receives data (Qt-free).

Publishers call ``notify()`` only while ``pending`` is False, so a waker that is already pending
costs the hot path one attribute read. A Qt-side subclass may override ``notify`` (and clear
``pending`` itself) to post a wake-up to the GUI thread. ``gym_gui.telemetry.subscription`` and
``gym_gui.telemetry.run_bus`` re-export it.
"""

from __future__ import annotations

import threading
from typing import Callable

__all__ = ["CountWaker", "Waker"]


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


class CountWaker(Waker):
    """A Waker for a consumer that takes batches: a publisher's ``notify`` wakes it only once its
    subscription holds ``wake_at`` items, which the consumer sets for each ``wait_for`` (1: any item);
    ``wake`` always wakes it (a flush marker, a stop).

    A batch processor holding events until a deadline sleeps through the publishes that cannot make
    a batch due, instead of waking for each one (at 1,000 steps/s, 500 writes a second of a worker
    became 500 wake-ups of the sink thread, each a GIL hand-off in the GUI process).
    """

    __slots__ = ("wake_at", "_queued")

    def __init__(self) -> None:
        """Wakes on every notify until ``count_with`` gives it the subscription's count. Any thread."""
        super().__init__()
        self.wake_at = 1
        self._queued: Callable[[], int] = _always

    def count_with(self, queued: Callable[[], int]) -> None:
        """Count the subscription's items with ``queued``, which publishers call under the bus lock (so
        it must not take that lock: ``Subscription.__len__``). Any thread, once subscribed."""
        self._queued = queued

    def notify(self) -> None:
        """Wake the consumer if ``wake_at`` items are queued. Publishers (any thread); never blocks."""
        if self._queued() >= self.wake_at:
            Waker.notify(self)

    def wake(self) -> None:
        """Wake the consumer now, however much is queued. Any thread; never blocks."""
        Waker.notify(self)

    def wait_for(self, count: int, timeout_s: float | None) -> bool:
        """Block until ``count`` (at least 1) items are queued, ``wake``, or ``timeout_s``; True unless
        the time ran out. Consumer thread only; blocks. Drain after it returns."""
        self.wake_at = max(1, count)
        if self._queued() >= self.wake_at:  # (queued before the count was lowered: no publisher woke it)
            Waker.notify(self)
        return self.wait(timeout_s)


def _always() -> int:
    return 1 << 62
