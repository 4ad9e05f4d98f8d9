"""StallClock: decides when one telemetry stream has gone quiet for too long (Qt-free).

The clock starts at the stream's first event, not at construction: before that the run is
pending (the RunRegistry's business), not stalled. A stream is stalled once no event arrived for
``missed_intervals`` x its heartbeat interval. The interval is the run's configured one
(RUN_STARTED ``config["heartbeat_interval_s"]``), else the one its heartbeats announce
(``interval_s``), else the default. A stream that sent neither RUN_STARTED nor a heartbeat
(steps and episodes only, as the existing gym_gui's producers publish them) has no heartbeats to
miss: with an ``idle_timeout_s`` it is stalled after that much silence instead (stalled means
quiet, never failed). A completed stream never stalls again.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["StallClock", "positive_interval_s"]


def positive_interval_s(value: Any) -> float | None:
    """``value`` as a finite positive number of seconds, else None (bools and texts too). Any thread."""
    if type(value) not in (int, float) or not math.isfinite(value) or value <= 0:
        return None
    return float(value)


class StallClock:
    """Stall state of one stream, driven by the caller's monotonic time (seconds).

    Not thread-safe: one owner thread (the live controller's GUI thread) calls everything.
    """

    __slots__ = ("missed_intervals", "_default_s", "_idle_s", "_lifecycle", "_config_s", "_heartbeat_s",
                 "_last_event_at", "_stalled", "_completed")

    def __init__(self, default_interval_s: float, missed_intervals: int, *,
                 idle_timeout_s: float | None = None) -> None:
        """Raise ValueError unless ``default_interval_s > 0``, ``missed_intervals >= 1`` and
        ``idle_timeout_s`` is None or > 0 (None: a stream without heartbeats uses the default interval)."""
        default = positive_interval_s(default_interval_s)
        if default is None:
            raise ValueError(f"heartbeat interval must be a positive number of seconds, got {default_interval_s!r}")
        if type(missed_intervals) is not int or missed_intervals < 1:
            raise ValueError(f"stall_missed_intervals must be an int >= 1, got {missed_intervals!r}")
        idle = None if idle_timeout_s is None else positive_interval_s(idle_timeout_s)
        if idle_timeout_s is not None and idle is None:
            raise ValueError(f"idle_timeout_s must be None or a positive number of seconds, got {idle_timeout_s!r}")
        self.missed_intervals = missed_intervals
        self._default_s = default
        self._idle_s = idle
        self._lifecycle = False
        self._config_s: float | None = None
        self._heartbeat_s: float | None = None
        self._last_event_at: float | None = None
        self._stalled = False
        self._completed = False

    @property
    def interval_s(self) -> float:
        """The heartbeat interval in force: configured, else announced, else the default."""
        return self._config_s or self._heartbeat_s or self._default_s

    @property
    def timeout_s(self) -> float:
        """Seconds without an event after which the stream is stalled: the idle timeout for a stream
        without lifecycle records (when one is set), else ``missed_intervals`` x ``interval_s``."""
        if self._idle_s is not None and not self._lifecycle and not (self._config_s or self._heartbeat_s):
            return self._idle_s
        return self.missed_intervals * self.interval_s

    @property
    def has_lifecycle(self) -> bool:
        """True once the stream's run sent RUN_STARTED or a heartbeat (``note_lifecycle``)."""
        return self._lifecycle

    def note_lifecycle(self) -> None:
        """The run sent RUN_STARTED or a heartbeat: it has heartbeats to miss (the interval rule applies)."""
        self._lifecycle = True

    @property
    def stalled(self) -> bool:
        """True while the stream is stalled."""
        return self._stalled

    @property
    def completed(self) -> bool:
        """True once the stream's run completed."""
        return self._completed

    def configure(self, interval_s: object) -> None:
        """Use the run's configured interval (RUN_STARTED config); invalid values are ignored."""
        self._config_s = positive_interval_s(interval_s) or self._config_s

    def announce(self, interval_s: object) -> None:
        """Note the interval a heartbeat announced (``interval_s``); invalid values are ignored."""
        self._heartbeat_s = positive_interval_s(interval_s) or self._heartbeat_s

    def note_event(self, now_s: float) -> bool:
        """An event arrived at ``now_s``: restart the clock. Returns True if this ended a stall."""
        self._last_event_at = now_s
        resumed, self._stalled = self._stalled, False
        return resumed

    def complete(self) -> bool:
        """The run completed: the stream never stalls again. Returns True if this ended a stall."""
        self._completed = True
        resumed, self._stalled = self._stalled, False
        return resumed

    @property
    def last_event_at(self) -> float | None:
        """The monotonic time of the newest event, or None before the first."""
        return self._last_event_at

    def silence_s(self, now_s: float) -> float | None:
        """Seconds since the newest event (never negative), or None before the first."""
        return None if self._last_event_at is None else max(0.0, now_s - self._last_event_at)

    def deadline_s(self) -> float | None:
        """When ``check`` would first report a stall (None: it cannot: no event yet, stalled or completed)."""
        if self._stalled or self._completed or self._last_event_at is None:
            return None
        return self._last_event_at + self.timeout_s

    def check(self, now_s: float) -> bool:
        """Returns True if the stream became stalled by ``now_s`` (only on the transition)."""
        if self._stalled or self._completed or self._last_event_at is None:
            return False
        if now_s - self._last_event_at >= self.timeout_s:
            self._stalled = True
            return True
        return False
