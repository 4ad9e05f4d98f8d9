"""follow_range: the x-range of a chart that follows a growing series, changed in steps. Qt-free.

A chart that re-ranges its x-axis at every appended point re-lays out and repaints its axis texts at
every tick (most of a repaint's cost). Following instead shows ``[first x, end]`` where the end is
the next multiple of a round step (1, 2 or 5 times a power of ten, about a tenth of the span) past
the last x, kept while the data stays inside it: the axis changes about once per tenth of growth.
Pure.
"""

from __future__ import annotations

import math

__all__ = ["follow_range", "nice_step"]

#: Room past the last point, as a share of the span (the step is about this).
HEADROOM = 0.1


def nice_step(value: float) -> float:
    """The smallest of 1, 2, 5 times a power of ten that is >= ``value`` (> 0). Pure."""
    if not value > 0 or not math.isfinite(value):
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for factor in (1.0, 2.0, 5.0, 10.0):
        if factor * power >= value * (1 - 1e-12):
            return factor * power
    return 10.0 * power


def follow_range(x_min: float, x_max: float, current: tuple[float, float] | None = None) -> tuple[float, float]:
    """The range showing ``[x_min, x_max]`` with a stepped end (module doc): ``current`` when it
    starts at ``x_min``, holds ``x_max`` and is not mostly empty. Pure."""
    if not (math.isfinite(x_min) and math.isfinite(x_max)) or x_max < x_min:
        return current if current is not None else (0.0, 1.0)
    span = x_max - x_min
    if span <= 0:
        span = max(1.0, abs(x_max) * 0.01)
    if current is not None and current[0] == x_min and x_max <= current[1] <= x_min + span * (1 + 3 * HEADROOM):
        return current
    step = nice_step(span * HEADROOM)
    return x_min, (math.floor(x_max / step) + 1) * step
