"""Unix times to ISO-8601 UTC text, equal to ``datetime.fromtimestamp(t, timezone.utc).isoformat()`` (Qt-free).

The existing gym_gui workers stamp every step with ``ts_unix_ns``; a datetime per line was most of
what such a line cost beyond our own (docs/performance.md, "End to end"). ``iso_from_unix`` makes
the ``YYYY-MM-DDTHH:MM:SS`` text once per second and rounds the microseconds exactly as CPython's
``fromtimestamp`` does (``modf``, then half-even), so the text is the datetime's to the character,
also for negative times and for a fraction that rounds up into the next second.

``iso_from_unix_ns(ns)`` is ``iso_from_unix(ns / 1e9)`` for the ingest child's hot path: the same
float arithmetic without the ``modf`` tuple, and the text joined from the cached second, its
millisecond and microsecond digits (two tables of 1,000 short strings) instead of ``%`` formatting.
"""

from __future__ import annotations

from datetime import datetime, timezone
from math import floor, modf

__all__ = ["iso_from_unix", "iso_from_unix_ns"]

_fromtimestamp = datetime.fromtimestamp
_UTC = timezone.utc
_floor = floor
# One cached second for the whole process (a worker's times move forward): (second, its text).
_cached: tuple[int, str] = (0, "1970-01-01T00:00:00")
#: ``.mmm`` for the milliseconds of a fraction, and ``uuu+00:00`` for its microseconds.
_MILLIS: tuple[str, ...] = tuple(".%03d" % i for i in range(1000))
_MICROS: tuple[str, ...] = tuple("%03d+00:00" % i for i in range(1000))


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


def iso_from_unix_ns(ns: int) -> str:
    """``iso_from_unix(ns / 1e9)`` for an int ``ns`` with ``abs(ns) <= 10**21``. Any thread; pure (a benign cache).

    For ``ns >= 0``: ``ns / 1e9`` is the float ``iso_from_unix`` is given, its ``floor`` is
    ``modf``'s whole part and subtracting that is exact (the time is below 2**52 s), so the
    microseconds are rounded from the same fraction. Raises what ``iso_from_unix`` raises outside
    years 1-9999.
    """
    global _cached
    if ns < 0:
        return iso_from_unix(ns / 1e9)
    unix_s = ns / 1e9
    second = _floor(unix_s)
    us = round((unix_s - second) * 1e6)
    if us >= 1_000_000:
        us -= 1_000_000
        second += 1
    cached_second, prefix = _cached
    if second != cached_second:
        prefix = _fromtimestamp(second, _UTC).isoformat()[:-6]
        _cached = (second, prefix)
    if us:
        return prefix + _MILLIS[us // 1000] + _MICROS[us % 1000]
    return prefix + "+00:00"
