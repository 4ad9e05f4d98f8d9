"""BatchTuning: the one declaration of a batch processor's tuning knobs and their defaults (Qt-free).

``BatchProcessor`` takes them (a ``BatchTuning``, and/or its fields as keywords), and so do the
writers built on it (``SinkCore``, and through it ``DbSink``, ``gym_gui.run`` and the collector),
which pass them on unchanged: a knob or a default is declared here only.
"""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["BatchTuning"]


@dataclasses.dataclass(frozen=True)
class BatchTuning:
    """How a batch processor batches, retries and reports. Immutable; any thread.

    - ``batch_size``: export as soon as this many events are held; also the most one export takes;
    - ``max_delay_s``: the longest an event waits for a batch;
    - ``high_water`` / ``low_water``: the back-pressure gate's marks (events not yet exported); a
      ``high_water`` below ``batch_size`` also makes a batch due at that many held events, so the
      producers it pauses never wait out the delay;
    - ``retry_initial_s`` / ``retry_max_s``: backoff after a retryable error, doubling up to the max;
    - ``write_delay_s``: a pause before every export (a test knob that simulates a slow disk);
    - ``abort_grace_s``: how long ``stop`` waits after giving up;
    - ``stats_interval_s``: the most often ``on_stats`` is called;
    - ``report_interval_s``: the most often one kind of error is logged and reported.

    Raises ValueError for values that make no sense.
    """

    batch_size: int = 2000
    max_delay_s: float = 0.05
    high_water: int = 10_000
    low_water: int = 2_000
    retry_initial_s: float = 0.05
    retry_max_s: float = 2.0
    write_delay_s: float = 0.0
    abort_grace_s: float = 3.0
    stats_interval_s: float = 0.5
    report_interval_s: float = 1.0

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.max_delay_s < 0 or self.retry_initial_s <= 0 or self.retry_max_s < self.retry_initial_s:
            raise ValueError("need max_delay_s >= 0 and 0 < retry_initial_s <= retry_max_s")

    def with_overrides(self, overrides: dict[str, Any]) -> BatchTuning:
        """This tuning with some fields replaced (keyword names as the fields'). Any thread; pure.

        Raises TypeError naming an unknown knob, ValueError for a bad value.
        """
        if not overrides:
            return self
        unknown = sorted(set(overrides) - _FIELDS)
        if unknown:
            raise TypeError(f"unknown tuning keyword(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **overrides)


_FIELDS = frozenset(f.name for f in dataclasses.fields(BatchTuning))
