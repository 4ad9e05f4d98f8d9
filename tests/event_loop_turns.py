"""Running the Qt event loop's next turns in a test, without waiting for the clock.

For checks that something does *not* happen at the next turns (a layout request not posted, a
refresh not run): ``run_turns`` delivers the posted events and runs what is due now (0 ms timers,
the plots' turn queue) a few times, which is exactly what those turns would do, however loaded the
machine. Timers due later are left alone: wait for them with ``qtbot.waitUntil`` instead.
"""

from __future__ import annotations

from qtpy.QtCore import QCoreApplication

__all__ = ["run_turns"]


def run_turns(turns: int = 5) -> None:
    """Deliver posted events and process what is due, ``turns`` times. GUI thread."""
    for _ in range(turns):
        QCoreApplication.sendPostedEvents()
        QCoreApplication.processEvents()
