"""LiveBatch: what a LiveTelemetryController hands its tab on one poll tick."""

from __future__ import annotations

import attrs

from gym_gui.telemetry.events import TelemetryEvent

__all__ = ["LiveBatch"]


@attrs.frozen(slots=True)
class LiveBatch:
    """One tick's new events of one stream ``(run_id, agent_id)``, for the GUI thread.

    ``steps`` and ``episodes`` are each in seq_id order: the live events drained this tick merged
    with (``backfilled`` of them) events recovered from SQLite for seq_ids the live buffers dropped
    earlier or a stall skipped; every event reaches the tab once. A tab counts and tables every
    one, but renders only ``latest_step`` (the newest step seen so far by seq_id, or None if this
    tick brought no newer one). The ``*_total`` counters are the controller's running totals after
    this tick; ``pending_backfill`` and ``unrecoverable`` count seq_ids of lost ranges still
    waiting for SQLite and given up (upper bounds on events: a range of one topic can span
    seq_ids of the stream's other topics).
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
    unrecoverable: int = 0

    def __bool__(self) -> bool:
        """True when the batch brings any step or episode."""
        return bool(self.steps or self.episodes)
