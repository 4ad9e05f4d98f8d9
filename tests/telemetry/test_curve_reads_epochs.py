"""live.iso_epochs reads the ISO times of stored episodes in integer arithmetic: every field's range,
the calendar (leap years, month ends), the zone offsets and the ends of its month table give, to the
bit, what ``iso_to_epoch_s`` (datetime) gives, NaN included."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from gym_gui.live.curves import iso_to_epoch_s
from gym_gui.live.iso_epochs import epoch_seconds, joined_epoch_seconds


def _same(texts: list[str]) -> None:
    want = np.array([iso_to_epoch_s(t) for t in texts])
    assert np.array_equal(epoch_seconds(texts), want, equal_nan=True)
    joined = joined_epoch_seconds("\x1f".join(texts), len(texts), "\x1f")
    if joined is not None:
        assert np.array_equal(joined, want, equal_nan=True)


def _month_ends(year: int) -> list[str]:
    out = []
    for month in range(1, 13):
        for day in (0, 1, 28, 29, 30, 31, 32):
            out.append(f"{year:04d}-{month:02d}-{day:02d}T00:00:00.000000+00:00")
    return out


@pytest.mark.parametrize("year", [1600, 1684, 1685, 1900, 1969, 1970, 2000, 2024, 2100, 2255, 2256, 2399, 2400, 9999])
def test_every_month_end_of_leap_and_common_years(year: int) -> None:
    _same(_month_ends(year))


def test_field_ranges_and_characters() -> None:
    base = "2024-05-01T12:00:00.000000+00:00"
    texts = [base]
    for at in range(len(base)):
        for char in "0159:-+.TZ /a\x00":
            texts.append(base[:at] + char + base[at + 1:])
    for month in ("00", "12", "13", "99"):
        texts.append(f"2024-{month}-01T00:00:00+00:00")
    for hms in ("23:59:59", "24:00:00", "23:60:00", "23:59:60", "00:00:00", "99:99:99"):
        texts.append(f"2024-05-01T{hms}.999999Z")
    _same(texts)


def test_zone_offsets_and_layouts() -> None:
    moment = datetime(2024, 2, 29, 23, 59, 59, 999999)
    texts = []
    for minutes in (-23 * 60 - 59, -12 * 60, -1, 0, 1, 5 * 60 + 30, 23 * 60 + 59):
        zone = timezone(timedelta(minutes=minutes))
        texts.append(moment.replace(tzinfo=zone).isoformat())
        texts.append(moment.replace(tzinfo=zone, microsecond=0).isoformat())
    texts += ["2024-05-01T12:00:00+24:00", "2024-05-01T12:00:00+23:60", "2024-05-01T12:00:00*01:00",
              moment.isoformat(), moment.isoformat() + "Z", moment.replace(microsecond=0).isoformat(),
              moment.replace(microsecond=0).isoformat() + "Z"]
    for text in texts:
        _same([text, text])
    _same(texts)


def test_the_ends_of_exact_microseconds() -> None:
    # 2**53 us from 1970: 2255-06-05T23:47:34.740992 (and as far back): beyond it datetime decides
    texts = ["2255-06-05T23:47:34.740991+00:00", "2255-06-05T23:47:34.740992+00:00",
             "1684-07-28T00:12:25.259008+00:00", "1684-07-28T00:12:25.259009+00:00",
             "1684-07-28T00:12:25.259007+00:00", "1599-12-31T23:59:59+00:00", "1600-01-01T00:00:00-01:00"]
    _same(texts)


def test_joined_texts_refused_or_holding_the_separator() -> None:
    good = "2024-05-01T12:00:00.000000+00:00"
    bad = "2024-05-01T12:00:00.000000+0X:00"
    sep = "\x1f"
    # a refused text is read by iso_to_epoch_s; one holding the separator makes the whole join unreadable
    out = joined_epoch_seconds(sep.join([good, bad, good]), 3, sep)
    assert out is not None and np.array_equal(out, [iso_to_epoch_s(good), np.nan, iso_to_epoch_s(good)],
                                              equal_nan=True)
    assert joined_epoch_seconds(sep.join([good, good[:10] + sep + good[11:]]), 2, sep) is None
    # many rows (the tiled pattern grows), one of them refused in each field in turn
    texts = [good] * 3000
    for at in range(len(good)):
        texts[at * 7] = good[:at] + "/" + good[at + 1:]
    _same(texts)
