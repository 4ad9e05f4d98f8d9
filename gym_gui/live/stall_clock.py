"""StallClock: decides when one telemetry stream has gone quiet for too long (Qt-free).

The clock starts at the stream's first event, not at construction: before that the run is
pending (the RunRegistry's business), not stalled. A stream is stalled once no event arrived for
``missed_intervals`` x its heartbeat interval. The interval is the run's configured one
(RUN_STARTED ``config["heartbeat_interval_s"]``), else the one its heartbeats announce
(``interval_s``), else the default. A completed stream never stalls again.
"""

from __future__ import annotations

from gym_gui.live.run_state_table import positive_interval_s

__all__ = ["StallClock"]


class StallClock:
    """Stall state of one stream, driven by the caller's monotonic time (seconds).

    Not thread-safe: one owner thread (the live controller's GUI thread) calls everything.
    """

    __slots__ = ("missed_intervals", "_default_s", "_config_s", "_heartbeat_s", "_last_event_at",
                 "_stalled", "_completed")

    def __init__(self, default_interval_s: float, missed_intervals: int) -> None:
        """Raise ValueError unless ``default_interval_s > 0`` and ``missed_intervals >= 1``."""
        default = positive_interval_s(default_interval_s)
        if default is None:
            raise ValueError(f"heartbeat interval must be a positive number of seconds, got {default_interval_s!r}")
        if type(missed_intervals) is not int or missed_intervals < 1:
            raise ValueError(f"stall_missed_intervals must be an int >= 1, got {missed_intervals!r}")
        self.missed_intervals = missed_intervals
        self._default_s = default
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
        """Seconds without an event after which the stream is stalled."""
        return self.missed_intervals * self.interval_s

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

    def check(self, now_s: float) -> bool:
        """Returns True if the stream became stalled by ``now_s`` (only on the transition)."""
        if self._stalled or self._completed or self._last_event_at is None:
            return False
        if now_s - self._last_event_at >= self.timeout_s:
            self._stalled = True
            return True
        return False
