"""LiveBatch: what a LiveTelemetryController hands its tab on one poll tick."""

from __future__ import annotations

import attrs

from gym_gui.telemetry.events import TelemetryEvent

__all__ = ["LiveBatch"]


@attrs.frozen(slots=True)
class LiveBatch:
    """One tick's new events of one stream ``(run_id, agent_id)``, for the GUI thread.

    ``steps`` and ``episodes`` are in seq_id order within their source: first the live events
    drained this tick, then (``backfilled`` of them) events recovered from SQLite for ranges the
    live buffer dropped earlier. A tab counts and tables every one, but renders only
    ``latest_step`` (the newest step seen so far by seq_id, or None if this tick brought no newer one).
    The ``*_total`` counters are the controller's running totals after this tick.
    """

    run_id: str
    agent_id: str
    steps: tuple[TelemetryEvent, ...] = ()
    episodes: tuple[TelemetryEvent, ...] = ()
    latest_step: TelemetryEvent | None = None
    backfilled: int = 0
    steps_total: int = 0
    episodes_total: int = 0
    dropped_total: int = 0
    backfilled_total: int = 0
    pending_backfill: int = 0

    def __bool__(self) -> bool:
        """True when the batch brings any step or episode."""
        return bool(self.steps or self.episodes)
