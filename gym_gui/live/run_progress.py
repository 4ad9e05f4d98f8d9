"""Numbers for people, and a run's progress (episode x / N, percentage, ETA). Qt-free, pure.

Formatting: counts with thousands separators (``12,345``); other numbers with at most 2 decimals
(1 from 100 on, none from 10,000 on; tiny ones in 3 significant digits); durations as ``42s``,
``1m 05s``, ``2h 03m``, ``1d 04h``.

Progress: the total is the run's ``config["episodes"]`` (our workers put it in RUN_STARTED;
``total_episodes`` or ``num_episodes`` are read too). Episodes done is the larger of the episodes
seen and the newest episode index + 1 (episode indices are 0-based and contiguous), so a tab that
opened late still counts right. The ETA extrapolates the mean time per episode since the run
started (the RUN_STARTED time, else the first episode seen) to the episodes left; a run that ended
(completed, cancelled, failed) has none.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import attrs

__all__ = ["Progress", "fmt_count", "fmt_duration", "fmt_number", "progress_of", "total_episodes"]

_TOTAL_KEYS = ("episodes", "total_episodes", "num_episodes", "n_episodes")


def fmt_count(value: Any) -> str:
    """``12,345`` for an int (or an integral float); ``-`` for None. Pure."""
    if value is None or isinstance(value, bool):
        return "-"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "-"
        value = round(value)
    return f"{int(value):,}" if isinstance(value, (int, float)) else str(value)


def fmt_number(value: Any, decimals: int = 2) -> str:
    """A number for people: ``3``, ``-1.25``, ``123.4``, ``12,346``, ``0.000123``; ``-`` for None or
    NaN; anything that is not a number as ``str``. Pure."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return "-" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    magnitude = abs(value)
    if value == int(value) and magnitude < 1e15:
        return f"{int(value):,}"
    if magnitude >= 10_000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        decimals = min(decimals, 1)
    elif 0 < magnitude < 0.01:
        return f"{value:.3g}"
    text = f"{value:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def fmt_duration(seconds: Any) -> str:
    """``42s``, ``1m 05s``, ``2h 03m``, ``1d 04h``; ``-`` for None or a negative or NaN value. Pure."""
    if seconds is None or isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        return "-"
    if not math.isfinite(seconds) or seconds < 0:
        return "-"
    s = int(round(seconds))
    if s < 60:
        return f"{seconds:.1f}s" if seconds < 10 and seconds != int(seconds) else f"{s}s"
    minutes, s = divmod(s, 60)
    if minutes < 60:
        return f"{minutes}m {s:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def total_episodes(config: Any) -> int | None:
    """The episode count a run's config announces, or None. Pure."""
    if not isinstance(config, Mapping):
        return None
    for key in _TOTAL_KEYS:
        value = config.get(key)
        if type(value) is int and value > 0:
            return value
    return None


@attrs.frozen(slots=True)
class Progress:
    """Where a run stands: ``done`` of ``total`` episodes (``total`` None when unknown)."""

    done: int
    total: int | None
    fraction: float | None
    eta_s: float | None

    def text(self) -> str:
        """``155 / 500 (31%, ETA 1m 05s)``, or ``155`` without a total. Pure."""
        if self.total is None:
            return fmt_count(self.done)
        parts = [f"{fmt_count(self.done)} / {fmt_count(self.total)}"]
        detail = f"{100 * (self.fraction or 0.0):.0f}%"
        if self.eta_s is not None and self.done < self.total:
            detail += f", ETA {fmt_duration(self.eta_s)}"
        return f"{parts[0]} ({detail})"


def progress_of(episodes_seen: int, newest_index: int | None, total: int | None,
                started_at_s: float | None, newest_at_s: float | None, *, ended: bool = False) -> Progress:
    """The progress of a run (rule in the module doc); times are epoch seconds; ``ended``: the run
    is over, so there is no ETA. Pure."""
    done = max(episodes_seen, newest_index + 1 if newest_index is not None else 0)
    if total is None:
        return Progress(done, None, None, None)
    fraction = min(1.0, done / total)
    eta: float | None = None
    if (not ended and done and started_at_s is not None and newest_at_s is not None and math.isfinite(started_at_s)
            and math.isfinite(newest_at_s) and newest_at_s > started_at_s):
        eta = max(0.0, (total - done) * (newest_at_s - started_at_s) / done)
    return Progress(done, total, fraction, eta)
