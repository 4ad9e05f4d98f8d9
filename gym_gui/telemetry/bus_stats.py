"""The RunBus's stats views (Qt-free): the ``BusStats`` mixin of ``RunBus``.

Drop counts and queued counts keyed ``"TOPIC:subscriber_id"`` (one key per topic of a multi-topic
subscription; drop counts survive unsubscribe and re-subscribe until ``reset_overflow_stats()``),
the last seq_id per stream and the sequence-gap counters, as EMBEDDING.md section 2 names them.
Every method reads under the bus lock, for a few dict operations per subscription.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import threading

    from gym_gui.telemetry.events import Topic
    from gym_gui.telemetry.seq_ranges import SeqGapWarner
    from gym_gui.telemetry.subscription import Subscription

__all__ = ["BusStats"]


class BusStats:
    """Mixin of ``RunBus``: its stats, over the bus's subscription table and gap tracker."""

    __slots__ = ()

    if TYPE_CHECKING:
        _lock: threading.Lock
        _subs: dict[tuple[Topic, str], Subscription]
        _retired_drops: dict[str, int]
        _seq_cells: dict[tuple[str, str], list[float]]
        _gaps: SeqGapWarner

    def overflow_stats(self) -> dict[str, int]:
        """Drop count per key ``"TOPIC:subscriber_id"``, only counts > 0; counts survive unsubscribe
        and re-subscribe until ``reset_overflow_stats()``. Any thread; never blocks long."""
        with self._lock:
            counts = dict(self._retired_drops)
            for sub in dict.fromkeys(self._subs.values()):
                for key, drops in sub._drops_by_key().items():
                    drops -= sub._stats_base.get(key, 0)
                    if drops:
                        counts[key] = counts.get(key, 0) + drops
        return counts

    def reset_overflow_stats(self) -> None:
        """Forget every drop count of ``overflow_stats()`` (each Subscription's own ``dropped`` stays,
        so its accounting still adds up). Any thread; never blocks long."""
        with self._lock:
            self._retired_drops.clear()
            for sub in self._subs.values():
                sub._stats_base = sub._drops_by_key()

    def queue_sizes(self) -> dict[str, int]:
        """Queued count (not the capacity) per current subscription, zeros included, keyed
        ``"TOPIC:subscriber_id"`` (one entry per topic of a multi-topic subscription, its markers
        under its first topic). Any thread; never blocks long."""
        with self._lock:
            sizes: dict[str, int] = {}
            for sub in dict.fromkeys(self._subs.values()):
                sizes.update(sub._sizes_by_key())
            return sizes

    def sequence_stats(self) -> dict[str, int]:
        """Last seq_id published per ``"{run_id}:{agent_id or 'default'}"`` (any topic but OVERFLOW).
        Any thread; never blocks long."""
        with self._lock:
            return {f"{run_id}:{agent}": int(cell[0]) for (run_id, agent), cell in self._seq_cells.items()}

    @property
    def sequence_gaps(self) -> int:
        """Sequence gaps detected so far, warned or not. Any thread."""
        return self._gaps.gaps

    @property
    def gap_warnings_suppressed(self) -> int:
        """Sequence-gap warnings the rate limit held back so far. Any thread."""
        return self._gaps.suppressed
