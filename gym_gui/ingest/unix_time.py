"""Unix times to ISO-8601 UTC text, equal to ``datetime.fromtimestamp(t, timezone.utc).isoformat()`` (Qt-free).

The existing gym_gui workers stamp every step with ``ts_unix_ns``; a datetime per line was most of
what such a line cost beyond our own (docs/performance.md, "End to end"). ``iso_from_unix`` makes
the ``YYYY-MM-DDTHH:MM:SS`` text once per second and rounds the microseconds exactly as CPython's
``fromtimestamp`` does (``modf``, then half-even), so the text is the datetime's to the character,
also for negative times and for a fraction that rounds up into the next second.
"""

from __future__ import annotations

from datetime import datetime, timezone
from math import modf

__all__ = ["iso_from_unix"]

_fromtimestamp = datetime.fromtimestamp
_UTC = timezone.utc
# One cached second for the whole process (a worker's times move forward): (second, its text).
_cached: tuple[int, str] = (0, "1970-01-01T00:00:00")


def iso_from_unix(unix_s: float) -> str:
    """``datetime.fromtimestamp(unix_s, timezone.utc).isoformat()``. Any thread; pure (a benign cache).

    Raises what ``fromtimestamp`` raises outside years 1-9999 (OverflowError, ValueError, OSError).
    """
    global _cached
    frac, whole = modf(unix_s)
    us = round(frac * 1e6)  # float rounding, half to even: what fromtimestamp does
    if us >= 1_000_000:
        us -= 1_000_000
        whole += 1.0
    elif us < 0:
        us += 1_000_000
        whole -= 1.0
    second = int(whole)
    cached_second, prefix = _cached
    if second != cached_second:
        prefix = _fromtimestamp(second, _UTC).isoformat()[:-6]  # "...T12:00:00" without "+00:00"
        _cached = (second, prefix)
    if us:
        return "%s.%06d+00:00" % (prefix, us)
    return prefix + "+00:00"
