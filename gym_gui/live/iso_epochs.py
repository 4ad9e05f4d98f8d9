"""Epoch seconds of many ISO-8601 texts at once, equal to ``curve_points.iso_to_epoch_s`` of each to
the last bit (Qt-free, pure).

The layouts timestamps come in (``YYYY-MM-DDTHH:MM:SS``, with six fraction digits or none, naive,
``Z`` or ``+HH:MM``) are parsed by numpy over all texts of one length together: the characters are
checked (digits, separators, field ranges: a month 1-12, a day in its month, 23:59:59 at most), the
integer microseconds since the epoch computed exactly and divided by 1e6 as ``timedelta`` does. A
text these checks refuse, of another layout, or not a ``str`` goes to ``iso_to_epoch_s`` itself.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from gym_gui.live.curve_points import iso_to_epoch_s

__all__ = ["epoch_seconds"]

_NAN = math.nan


#: ISO-8601 layouts parsed by numpy, by text length: fraction digits (0 or 6) and zone ("" naive,
#: "Z", "+" for +HH:MM / -HH:MM). Any other text, and any text these checks refuse, is left to
#: ``iso_to_epoch_s`` itself.
_ISO_LAYOUTS = {19: (0, ""), 26: (6, ""), 20: (0, "Z"), 27: (6, "Z"), 25: (0, "+"), 32: (6, "+")}
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
_EXACT_US = 2 ** 53  # microsecond counts below this convert to float64 exactly
_ISO_PLANS: dict[int, tuple[tuple[tuple[int, int], ...], list[int], list[tuple[int, int]], int]] = {}


def _iso_plan(length: int) -> tuple[tuple[tuple[int, int], ...], list[int], list[tuple[int, int]], int]:
    """For one layout: its fields (year, month, day, hour, minute, second, microsecond, offset hours,
    offset minutes) as (first column, digits), its digit columns, its fixed characters, and the
    column of the zone's sign (-1: none)."""
    plan = _ISO_PLANS.get(length)
    if plan is None:
        fraction, zone = _ISO_LAYOUTS[length]
        tail = 19 + (fraction + 1 if fraction else 0)
        fields = [(0, 4), (5, 2), (8, 2), (11, 2), (14, 2), (17, 2), (20, fraction), (0, 0), (0, 0)]
        fixed = [(4, ord("-")), (7, ord("-")), (10, ord("T")), (13, ord(":")), (16, ord(":"))]
        if fraction:
            fixed.append((19, ord(".")))
        if zone == "+":
            fields[7:] = [(tail + 1, 2), (tail + 4, 2)]
            fixed.append((tail + 3, ord(":")))
        elif zone == "Z":
            fixed.append((tail, ord("Z")))
        columns = [start + k for start, width in fields for k in range(width)]
        plan = (tuple(fields), columns, fixed, tail if zone == "+" else -1)
        _ISO_PLANS[length] = plan
    return plan


def _fixed_iso(text: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Epoch seconds of same-layout ISO texts (rows of bytes), and which rows the layout fits."""
    fields, columns, fixed, sign_at = _iso_plan(text.shape[1])
    by_column = np.ascontiguousarray(text.T)  # one row per character position
    ok = ((by_column[columns] - np.uint8(ord("0"))) <= 9).all(axis=0)  # (a non-digit wraps above 9)
    for col, char in fixed:
        ok &= by_column[col] == char
    digits = by_column.astype(np.int64) - ord("0")
    values = []
    for start, width in fields:
        value = np.zeros(text.shape[0], dtype=np.int64)
        for col in range(start, start + width):
            value = value * 10 + digits[col]
        values.append(value)
    year, month, day, hour, minute, second, micro, off_h, off_m = values
    month_ok = (month >= 1) & (month <= 12)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    days_in_month = _MONTH_DAYS[np.where(month_ok, month, 1)] + (leap & (month == 2))
    ok &= (year >= 1) & month_ok & (day >= 1) & (day <= days_in_month) & (hour <= 23) & (minute <= 59)
    ok &= (second <= 59) & (off_h <= 23) & (off_m <= 59)
    offset_s = off_h * 3600 + off_m * 60
    if sign_at >= 0:
        sign = text[:, sign_at]
        ok &= (sign == ord("+")) | (sign == ord("-"))
        offset_s = np.where(sign == ord("-"), -offset_s, offset_s)
    # days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil)
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    total_us = (days * 86400 + hour * 3600 + minute * 60 + second - offset_s) * 1_000_000 + micro
    ok &= np.abs(total_us) < _EXACT_US
    return total_us.astype(np.float64) / 1e6, ok


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
