"""Exact per-stream ranges of seq_ids, merged while they stay contiguous (Qt-free)."""

from __future__ import annotations

from gym_gui.telemetry.events import StreamKey

__all__ = ["SeqRangeLog"]


class SeqRangeLog:
    """Collects lost seq_ids per stream as inclusive ``(first, last)`` ranges.

    A seq_id extends the stream's last range when it was added in the same ``epoch`` as that
    range's last seq_id (the caller bumps its epoch whenever events could have been delivered in
    between), so a range never spans an event that was delivered. Not thread-safe: the owner
    guards it with its own lock.
    """

    __slots__ = ("_ranges", "_epochs")

    def __init__(self) -> None:
        self._ranges: dict[StreamKey, list[list[int]]] = {}
        self._epochs: dict[StreamKey, int] = {}

    def __bool__(self) -> bool:
        return bool(self._ranges)

    def add(self, stream: StreamKey, seq_id: int, epoch: int) -> None:
        """Record ``seq_id`` of ``stream`` as lost during ``epoch``."""
        ranges = self._ranges.get(stream)
        if ranges is None:
            self._ranges[stream] = [[seq_id, seq_id]]
        elif self._epochs[stream] == epoch and ranges[-1][1] < seq_id:
            ranges[-1][1] = seq_id
        else:
            ranges.append([seq_id, seq_id])
        self._epochs[stream] = epoch

    def take(self) -> dict[StreamKey, list[tuple[int, int]]]:
        """Return every recorded range and forget them."""
        taken = {stream: [(a, b) for a, b in ranges] for stream, ranges in self._ranges.items()}
        self._ranges.clear()
        self._epochs.clear()
        return taken
