"""Epoch seconds of many ISO-8601 texts at once, equal to ``curve_points.iso_to_epoch_s`` of each to
the last bit (Qt-free, pure).

The layouts timestamps come in (``YYYY-MM-DDTHH:MM:SS``, with six fraction digits or none, naive,
``Z`` or ``+HH:MM``) are read by numpy over all texts of one length together, in integer
arithmetic: the characters are checked (digits and separators where the layout has them), the
digits paired into the two-digit fields, each field's range checked (a month 1-12, a day of that
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
    """One layout: its digit columns (in pairs: the two-digit fields), its fixed characters, how
    many two-digit fields the fraction has and the column of the zone's sign (-1: none)."""

    digits: np.ndarray
    fixed_at: np.ndarray
    fixed: np.ndarray
    fraction_pairs: int
    sign_at: int


_ISO_PLANS: dict[int, _Plan] = {}


def _iso_plan(length: int) -> _Plan:
    """The plan of the layout of texts of ``length`` characters (one of ``_ISO_LAYOUTS``)."""
    plan = _ISO_PLANS.get(length)
    if plan is None:
        fraction, zone = _ISO_LAYOUTS[length]
        local = 19 + (fraction + 1 if fraction else 0)
        columns = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18] + list(range(20, 20 + fraction))
        fixed = [(4, ord("-")), (7, ord("-")), (10, ord("T")), (13, ord(":")), (16, ord(":"))]
        if fraction:
            fixed.append((19, ord(".")))
        if zone == "+":
            columns += [local + 1, local + 2, local + 4, local + 5]
            fixed.append((local + 3, ord(":")))
        elif zone == "Z":
            fixed.append((local, ord("Z")))
        plan = _Plan(np.array(columns), np.array([at for at, _ in fixed]),
                     np.array([char for _, char in fixed], dtype=np.uint8), fraction // 2,
                     local if zone == "+" else -1)
        _ISO_PLANS[length] = plan
    return plan


def _fixed_iso(text: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Epoch seconds of same-layout ISO texts (rows of bytes), and which rows the layout fits (the
    characters, each field's range, a year of the month table); NaN in the rows it does not fit."""
    plan = _iso_plan(text.shape[1])
    values = text - np.uint8(ord("0"))  # (a non-digit wraps above 9)
    ok = (values[:, plan.digits] <= 9).all(axis=1) & (text[:, plan.fixed_at] == plan.fixed).all(axis=1)
    pairs = values[:, :-1] * np.uint8(10) + values[:, 1:]  # (in uint8: two digits are at most 99)
    fields = pairs[:, plan.digits[0::2]].T.astype(np.int64)  # one row per two-digit field
    century, year, month, day, hour, minute, second = fields[:7]
    month_at = (century * 100 + year - _FIRST_YEAR) * 12 + month - 1  # (year 0000: outside the table)
    ok &= ((month >= 1) & (month <= 12) & (month_at >= 0) & (month_at < (_END_YEAR - _FIRST_YEAR) * 12)
           & (hour <= 23) & (minute <= 59) & (second <= 59))
    month_at[~ok] = 0  # (a refused row reads a valid entry, its result thrown away)
    ok &= (day >= 1) & (day <= _DAYS_IN_MONTH[month_at])
    seconds = (_FIRST_DAY[month_at] + day - 1) * 86400 + hour * 3600 + minute * 60 + second
    if plan.sign_at >= 0:
        off_h, off_m = fields[7 + plan.fraction_pairs:]
        sign = text[:, plan.sign_at]
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
                values, ok = _fixed_iso(np.frombuffer(raw, np.uint8).reshape(len(rows), length))
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
    if (length not in _ISO_LAYOUTS or len(joined) != count * (length + 1) - 1
            or joined.count(sep) != count - 1):
        return None
    raw = (joined + sep).encode("ascii", "replace")  # a non-ASCII letter: one "?", refused
    rows = np.frombuffer(raw, np.uint8).reshape(count, length + 1)
    if not bool((rows[:, length] == ord(sep)).all()):
        return None  # (texts of other lengths whose lengths add up)
    out, ok = _fixed_iso(rows[:, :length])
    for row in np.flatnonzero(~ok).tolist():
        start = row * (length + 1)
        out[row] = iso_to_epoch_s(joined[start:start + length])
    return out
