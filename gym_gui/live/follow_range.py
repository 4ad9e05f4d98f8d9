"""follow_range: the x-range of a chart that follows a growing series, changed in steps. Qt-free.

A chart that re-ranges its x-axis at every appended point re-lays out and repaints its axis texts at
every tick (most of a repaint's cost). Following instead shows ``[first x, end]`` where the end is
the next multiple of a round step (1, 2 or 5 times a power of ten, about a tenth of the span) past
the last x, kept while the data stays inside it: the axis changes about once per tenth of growth.
The y-range does the same on both ends (``stepped_range``): a return creeping up moves it once per
step, not at every tick. Pure.
"""

from __future__ import annotations

import math

__all__ = ["follow_range", "nice_step", "stepped_range"]

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


def follow_range(x_min: float, x_max: float, current: tuple[float, float] | None = None, *,
                 headroom: float = HEADROOM) -> tuple[float, float]:
    """The range showing ``[x_min, x_max]`` with a stepped end (module doc): ``current`` when it
    starts at ``x_min``, holds ``x_max`` and is not mostly empty. ``headroom``: the step as a share
    of the span (charts of one panel use different ones, so their axes do not all change at the
    same tick). Pure."""
    if not (math.isfinite(x_min) and math.isfinite(x_max)) or x_max < x_min:
        return current if current is not None else (0.0, 1.0)
    span = x_max - x_min
    if span <= 0:
        span = max(1.0, abs(x_max) * 0.01)
    if current is not None and current[0] == x_min and x_max <= current[1] <= x_min + span * (1 + 3 * headroom):
        return current
    step = nice_step(span * headroom)
    return x_min, (math.floor(x_max / step) + 1) * step


def stepped_range(low: float, high: float, current: tuple[float, float] | None = None) -> tuple[float, float]:
    """A range holding ``[low, high]`` whose ends are multiples of a round step (about a tenth of
    the span) beyond them: ``current`` while it holds them and is at most twice as wide as needed.
    Pure."""
    if not (math.isfinite(low) and math.isfinite(high)) or high < low:
        return current if current is not None else (0.0, 1.0)
    span = high - low
    if span <= 0:  # one value: a band of about its tenth around it (1 around 0)
        span = abs(high) * 2 if high != 0 else 10.0
    if current is not None and current[0] <= low and high <= current[1] and current[1] - current[0] <= 2 * span * (1 + 4 * HEADROOM):
        return current
    step = nice_step(span * HEADROOM)
    return (math.ceil(low / step) - 1) * step, (math.floor(high / step) + 1) * step
