"""RedisExporter: the BatchProcessor's writer into Redis streams through a RedisPublisher (Qt-free).

A batch goes out as one ``publisher.publish`` pipeline. Retryable: ``CONNECTION_ERRORS`` (the
server is unreachable; the outcome of each event is unknown, and the publisher's idempotent ids
make sending the same batch again safe). Any other error is a reply about the data: the processor
then sends the batch event by event (``isolate=True``), so one event Redis cannot take is counted
lost with its reason and the rest are sent. Events the publisher itself cannot encode or Redis
refuses are counted by the publisher (``publisher.stats()``), as before. ``outcomes`` keeps the
outcome of each RUN_COMPLETED that reached Redis (the bridge's exit code derives from it).
"""

from __future__ import annotations

import logging
from typing import Sequence

from gym_gui.telemetry.batch_export import ExportResult, Wording
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.transport.redis_client import CONNECTION_ERRORS
from gym_gui.transport.redis_publisher import PublishResult, RedisPublisher

__all__ = ["RedisExporter"]

_WORDING = Wording(
    "redis pump",
    retry="Redis unavailable ({error}); {backlog} events wait, retrying in {delay_s:.2f} s",
    retry_level=logging.WARNING,
    recovered="Redis reachable again after {failures} failed attempts",
)


class RedisExporter:
    """Publishes batches with ``publisher``; the processor's thread only."""

    wording = _WORDING

    def __init__(self, publisher: RedisPublisher) -> None:
        self.publisher = publisher
        #: run_id -> outcome of each RUN_COMPLETED that reached Redis
        self.outcomes: dict[str, str] = {}

    def export(self, batch: Sequence[TelemetryEvent], *, isolate: bool) -> ExportResult:
        """One pipeline (``isolate``: one per event, an event's own failure counted lost). Raises
        ``CONNECTION_ERRORS`` (nothing counts as sent) and, without ``isolate``, any other error."""
        if not isolate:
            result = self.publisher.publish(batch)
            return ExportResult(exported=len(batch), duplicates=result.duplicates, detail=result)
        lost: list[tuple[TelemetryEvent, str]] = []
        duplicates = 0
        for evt in batch:
            try:
                duplicates += self.publisher.publish([evt]).duplicates
            except CONNECTION_ERRORS:
                raise
            except Exception as exc:
                lost.append((evt, f"redis_error: {type(exc).__name__}: {exc}"))
        return ExportResult(exported=len(batch) - len(lost), duplicates=duplicates, lost=tuple(lost),
                            detail=PublishResult())

    def is_retryable(self, exc: BaseException) -> bool:
        """True for the connection errors after which the same batch may be sent again. Any thread."""
        return isinstance(exc, CONNECTION_ERRORS)

    def exported(self, batch: Sequence[TelemetryEvent], result: ExportResult) -> None:
        """Note the outcome of each RUN_COMPLETED sent. Processor thread."""
        lost = {id(evt) for evt, _reason in result.lost}
        for evt in batch:
            if evt.topic is Topic.RUN_COMPLETED and id(evt) not in lost:
                self.outcomes[evt.run_id] = str(evt.payload.get("outcome") or "failed")
