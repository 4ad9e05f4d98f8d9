"""Epoch seconds of many ISO-8601 texts at once, equal to ``curve_points.iso_to_epoch_s`` of each to
the last bit (Qt-free, pure).

The layouts timestamps come in (``YYYY-MM-DDTHH:MM:SS``, with six fraction digits or none, naive,
``Z`` or ``+HH:MM``) are parsed by numpy over all texts of one length together: the characters are
checked (digits and separators where the layout has them), numpy's datetime64 reads the date and
time (and refuses a field out of range), the offset is applied in integer microseconds and the
count divided by 1e6 as ``timedelta.total_seconds`` does. A text these checks refuse, of another
layout, or not a ``str`` goes to ``iso_to_epoch_s`` itself.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from gym_gui.live.curve_points import iso_to_epoch_s

__all__ = ["epoch_seconds", "joined_epoch_seconds"]

_NAN = math.nan


#: ISO-8601 layouts parsed by numpy, by text length: fraction digits (0 or 6) and zone ("" naive,
#: "Z", "+" for +HH:MM / -HH:MM). Any other text, and any text these checks refuse, is left to
#: ``iso_to_epoch_s`` itself.
_ISO_LAYOUTS = {19: (0, ""), 26: (6, ""), 20: (0, "Z"), 27: (6, "Z"), 25: (0, "+"), 32: (6, "+")}
_EXACT_US = 2 ** 53  # microsecond counts below this convert to float64 exactly
_ISO_PLANS: dict[int, tuple[list[int], list[tuple[int, int]], int, int]] = {}


def _iso_plan(length: int) -> tuple[list[int], list[tuple[int, int]], int, int]:
    """For one layout: its digit columns, its fixed characters, the length of its date and time
    (numpy's datetime64 reads those), and the column of the zone's sign (-1: none)."""
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
        plan = (columns, fixed, local, local if zone == "+" else -1)
        _ISO_PLANS[length] = plan
    return plan


def _fixed_iso(text: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Epoch seconds of same-layout ISO texts (rows of bytes), and which rows the layout fits: the
    characters are checked here, the date and time read by numpy's datetime64 (which refuses a
    field out of range: then every row is left to ``iso_to_epoch_s``), the zone's offset here."""
    columns, fixed, local, sign_at = _iso_plan(text.shape[1])
    by_column = np.ascontiguousarray(text.T)  # one row per character position
    ok = ((by_column[columns] - np.uint8(ord("0"))) <= 9).all(axis=0)  # (a non-digit wraps above 9)
    for col, char in fixed:
        ok &= by_column[col] == char
    ok &= (by_column[0:4] != ord("0")).any(axis=0)  # (year 0000: numpy reads it, datetime does not)
    if sign_at >= 0:
        ok &= (by_column[sign_at] == ord("+")) | (by_column[sign_at] == ord("-"))
    out = np.full(len(ok), _NAN)
    rows = np.flatnonzero(ok)
    try:
        local_us = np.ascontiguousarray(text[rows, :local]).view(f"S{local}").ravel().astype("datetime64[us]")
    except ValueError:  # a 13th month, 24 o'clock, a 30th of February, ...
        return out, np.zeros(len(ok), dtype=bool)
    us = local_us.view(np.int64)
    if sign_at >= 0:
        d = by_column[sign_at + 1: sign_at + 6][:, rows].astype(np.int64) - ord("0")
        off_h, off_m = d[0] * 10 + d[1], d[3] * 10 + d[4]
        ok[rows[(off_h > 23) | (off_m > 59)]] = False
        offset_us = (off_h * 3600 + off_m * 60) * 1_000_000
        us = us - np.where(by_column[sign_at, rows] == ord("-"), -offset_us, offset_us)
    ok[rows[np.abs(us) >= _EXACT_US]] = False
    out[rows] = us / 1e6  # (exact microseconds over 1e6: what timedelta.total_seconds does)
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
