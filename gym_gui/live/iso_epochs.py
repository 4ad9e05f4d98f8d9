"""Epoch seconds of many ISO-8601 texts at once, equal to ``curve_points.iso_to_epoch_s`` of each to
the last bit (Qt-free, pure).

The layouts timestamps come in (``YYYY-MM-DDTHH:MM:SS``, with six fraction digits or none, naive,
``Z`` or ``+HH:MM``) are read by numpy over all texts of one length together, in integer
arithmetic: the bytes of all the texts are checked at once against the layout's pattern (a digit
where it has one, its fixed characters elsewhere), the digits paired into the two-digit fields, each field's range checked (a month 1-12, a day of that
month, 00-23 hours, 00-59 minutes and seconds, an offset below 24 h), the days since 1970 looked
up per year and month, the offset applied in integer microseconds and the count divided by 1e6
as ``timedelta.total_seconds`` does. A text these checks refuse, of another layout, a year the
table does not hold (only counts below 2**53 us, 1685-2255, convert exactly anyway) or not a
``str`` goes to ``iso_to_epoch_s`` itself.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Sequence

import numpy as np

from gym_gui.live.curve_points import iso_to_epoch_s

__all__ = ["epoch_seconds", "joined_epoch_seconds"]

_NAN = math.nan


#: ISO-8601 layouts parsed by numpy, by text length: fraction digits (0 or 6) and zone ("" naive,
#: "Z", "+" for +HH:MM / -HH:MM). Any other text, and any text these checks refuse, is left to
#: ``iso_to_epoch_s`` itself.
_ISO_LAYOUTS = {19: (0, ""), 26: (6, ""), 20: (0, "Z"), 27: (6, "Z"), 25: (0, "+"), 32: (6, "+")}
_EXACT_US = 2 ** 53  # microsecond counts below this convert to float64 exactly
#: The years of the month table (every count of microseconds below 2**53 lies within them).
_FIRST_YEAR, _END_YEAR = 1600, 2400
_MONTH_DAYS = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def _month_tables() -> tuple[np.ndarray, np.ndarray]:
    """Per (year - _FIRST_YEAR) * 12 + month - 1: the days from 1970-01-01 to the month's first day
    (proleptic Gregorian, as ``datetime``) and the month's days."""
    year = np.arange(_FIRST_YEAR, _END_YEAR, dtype=np.int64).repeat(12)
    month = np.tile(np.arange(12, dtype=np.int64), _END_YEAR - _FIRST_YEAR)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    before = np.concatenate(([0], np.cumsum(_MONTH_DAYS)[:-1]))[month] + (leap & (month > 1))
    y = year - 1
    first_day = y * 365 + y // 4 - y // 100 + y // 400 + before - 719162  # (719162: 0001-01-01 to 1970)
    days = _MONTH_DAYS[month] + (leap & (month == 1))
    return first_day, days


_FIRST_DAY, _DAYS_IN_MONTH = _month_tables()


class _Plan(NamedTuple):
    """One layout: the columns where its two-digit fields start, the bytes its texts hold (``pattern``:
    "0" where a digit goes) and how far each may be from it (``limit``: a byte XOR its pattern byte
    is 0-9 exactly for a digit over "0", 0 for the fixed characters; 255 for the zone's sign, checked
    apart), how many two-digit fields the fraction has and the column of the zone's sign (-1: none)."""

    pair_at: tuple[int, ...]
    pattern: np.ndarray
    limit: np.ndarray
    fraction_pairs: int
    sign_at: int


_ISO_PLANS: dict[int, _Plan] = {}
#: Per (length, stride): a plan's pattern and limit repeated for rows ``stride`` bytes apart (the
#: bytes between texts: the separator, 0x1F), as long as the most rows asked for so far (kept up to
#: ``_TILED_KEPT_BYTES``; longer ones are made for the call).
_TILED: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
_TILED_KEPT_BYTES = 1 << 20
_SEPARATOR = 0x1F


def _iso_plan(length: int) -> _Plan:
    """The plan of the layout of texts of ``length`` characters (one of ``_ISO_LAYOUTS``)."""
    plan = _ISO_PLANS.get(length)
    if plan is None:
        fraction, zone = _ISO_LAYOUTS[length]
        local = 19 + (fraction + 1 if fraction else 0)
        pair_at = [0, 2, 5, 8, 11, 14, 17] + list(range(20, 20 + fraction, 2))
        fixed = [(4, "-"), (7, "-"), (10, "T"), (13, ":"), (16, ":")]
        if fraction:
            fixed.append((19, "."))
        sign_at = -1
        if zone == "+":
            pair_at += [local + 1, local + 4]
            fixed.append((local + 3, ":"))
            sign_at = local
        elif zone == "Z":
            fixed.append((local, "Z"))
        pattern = np.full(length, ord("0"), dtype=np.uint8)
        limit = np.full(length, 9, dtype=np.uint8)
        for at, char in fixed:
            pattern[at], limit[at] = ord(char), 0
        if sign_at >= 0:
            limit[sign_at] = 255
        plan = _Plan(tuple(pair_at), pattern, limit, fraction // 2, sign_at)
        _ISO_PLANS[length] = plan
    return plan


def _tiled(plan: _Plan, length: int, stride: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The plan's pattern and limit over ``size`` bytes of rows ``stride`` bytes apart."""
    tiled = _TILED.get((length, stride))
    if tiled is None or len(tiled[0]) < size:
        rows = -(-size // stride)
        pattern = np.full(stride, _SEPARATOR, dtype=np.uint8)
        limit = np.zeros(stride, dtype=np.uint8)
        pattern[:length], limit[:length] = plan.pattern, plan.limit
        tiled = np.tile(pattern, rows), np.tile(limit, rows)
        if size <= _TILED_KEPT_BYTES:
            _TILED[(length, stride)] = tiled
    return tiled[0][:size], tiled[1][:size]


def _fixed_iso(raw: bytes, rows: int, length: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Epoch seconds of ``rows`` same-layout ISO texts of ``length`` bytes, one every ``stride``
    bytes of ``raw`` from its start (the bytes between them: the separator), and which rows the
    layout fits (the characters, each field's range, a year of the month table); NaN in the rows
    it does not fit. The bytes are checked and paired into two-digit fields over the whole buffer
    at once (contiguous, vectorised), the fields taken from it a column at a time."""
    plan = _iso_plan(length)
    size = (rows - 1) * stride + length
    flat = np.frombuffer(raw, np.uint8, size)
    pattern, limit = _tiled(plan, length, stride, size)
    fits = (flat ^ pattern) <= limit
    if bool(fits.all()):
        ok = np.ones(rows, dtype=bool)
    else:
        ok = np.ndarray((rows, length), bool, fits, 0, (stride, 1)).all(axis=1)
    digits = flat - np.uint8(ord("0"))  # (a non-digit wraps: its row is refused above)
    pairs = digits[:-1] * np.uint8(10) + digits[1:]  # (in uint8: two digits are at most 99)
    fields = np.empty((len(plan.pair_at), rows), dtype=np.int64)  # one row per two-digit field
    for row, at in enumerate(plan.pair_at):
        fields[row] = pairs[at::stride][:rows]
    century, year, month, day, hour, minute, second = fields[:7]
    month_at = (century * 100 + year - _FIRST_YEAR) * 12 + month - 1  # (year 0000: outside the table)
    ok &= ((month >= 1) & (month <= 12) & (month_at >= 0) & (month_at < (_END_YEAR - _FIRST_YEAR) * 12)
           & (hour <= 23) & (minute <= 59) & (second <= 59))
    month_at[~ok] = 0  # (a refused row reads a valid entry, its result thrown away)
    ok &= (day >= 1) & (day <= _DAYS_IN_MONTH[month_at])
    seconds = (_FIRST_DAY[month_at] + day - 1) * 86400 + hour * 3600 + minute * 60 + second
    if plan.sign_at >= 0:
        off_h, off_m = fields[7 + plan.fraction_pairs:]
        sign = flat[plan.sign_at::stride]
        ok &= ((sign == ord("+")) | (sign == ord("-"))) & (off_h <= 23) & (off_m <= 59)
        offset_s = off_h * 3600 + off_m * 60
        seconds -= np.where(sign == ord("-"), -offset_s, offset_s)
    us = seconds * 1_000_000
    if plan.fraction_pairs:
        us += fields[7] * 10_000 + fields[8] * 100 + fields[9]
    ok &= np.abs(us) < _EXACT_US
    out = us / 1e6  # (exact microseconds over 1e6: what timedelta.total_seconds does)
    out[~ok] = _NAN
    return out, ok


def epoch_seconds(texts: Sequence[Any]) -> np.ndarray:
    """``iso_to_epoch_s`` of every text, equal to it to the last bit: the common fixed layouts by
    numpy (the same integer microseconds over 1e6), any other text by ``iso_to_epoch_s``. Any
    thread; pure."""
    n = len(texts)
    out = np.full(n, _NAN)
    left = np.ones(n, dtype=bool)
    try:
        lengths = set(map(len, texts))
        if len(lengths) == 1:
            groups = [(np.arange(n), texts, lengths.pop())]
        else:
            by_row = np.fromiter(map(len, texts), np.int64, n)
            groups = [(rows, [texts[i] for i in rows.tolist()], length) for length in sorted(lengths)
                      for rows in [np.flatnonzero(by_row == length)]]
        for rows, group, length in groups:
            if length in _ISO_LAYOUTS:
                raw = "".join(group).encode("ascii", "replace")  # a non-ASCII letter: one "?", refused
                values, ok = _fixed_iso(raw, len(rows), length, length)
                out[rows[ok]] = values[ok]
                left[rows[ok]] = False
    except TypeError:  # a text that is not a str (None, bytes): iso_to_epoch_s says NaN
        pass
    for row in np.flatnonzero(left).tolist():
        out[row] = iso_to_epoch_s(texts[row])
    return out


def joined_epoch_seconds(joined: str, count: int, sep: str) -> np.ndarray | None:
    """``epoch_seconds`` of the ``count`` texts joined by ``sep`` in ``joined`` (one character, in
    none of the texts), without splitting it, when they all have one length and a fixed layout;
    None otherwise (split it and call ``epoch_seconds``). Any thread; pure."""
    length = joined.find(sep) if count > 1 else len(joined)
    if length not in _ISO_LAYOUTS or len(joined) != count * (length + 1) - 1:
        return None
    raw = joined.encode("ascii", "replace")  # a non-ASCII letter: one "?", refused
    if count > 1 and not bool((np.ndarray((count - 1,), np.uint8, raw, length, (length + 1,)) == ord(sep)).all()):
        return None  # (texts of other lengths whose lengths add up)
    out, ok = _fixed_iso(raw, count, length, length + 1)
    if not bool(ok.all()) and joined.count(sep) != count - 1:
        return None  # a refused row may hold the separator: its text is not where it was looked for
    for row in np.flatnonzero(~ok).tolist():
        start = row * (length + 1)
        out[row] = iso_to_epoch_s(joined[start:start + length])
    return out
