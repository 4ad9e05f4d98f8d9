"""unix_time.iso_from_unix gives datetime.fromtimestamp(t, timezone.utc).isoformat() to the character."""

from __future__ import annotations

import random
from datetime import datetime, timezone

import pytest

from gym_gui.ingest.unix_time import iso_from_unix, iso_from_unix_ns


def _reference(unix_s: float) -> object:
    try:
        return datetime.fromtimestamp(unix_s, timezone.utc).isoformat()
    except (OverflowError, ValueError, OSError) as exc:
        return type(exc)


def _ours(unix_s: float) -> object:
    try:
        return iso_from_unix(unix_s)
    except (OverflowError, ValueError, OSError) as exc:
        return type(exc)


EDGES = [0.0, -0.0, 1.5, -1.5, -1e-7, 0.9999995, 0.9999994999, 0.0000005, 0.0000015, 1714564800.25,
         1714564800250000000 / 1e9, 1800000000000019968 / 1e9, -62135596800.0, -62135596801.0,
         253402300799.999999, 253402300799.9999996, 253402300800.0, 1e20]


@pytest.mark.parametrize("unix_s", EDGES)
def test_edges(unix_s: float) -> None:
    assert _ours(unix_s) == _reference(unix_s)


def test_random_times_in_and_around_every_second() -> None:
    rng = random.Random(13)
    values = []
    for _ in range(20_000):
        values.append(rng.randrange(-62135596800 * 10**9, 253402300799 * 10**9) / 1e9)  # any ns time
        values.append((1.8e18 + rng.randrange(0, 10**12)) / 1e9)  # a worker's consecutive steps
        values.append(rng.randrange(-10**6, 10**6) + rng.choice([0.5, 0.4999995, 0.9999995, 5e-7, 1.5e-6, 2.5e-6]))
    for value in values:
        assert _ours(value) == _reference(value), value


def _ours_ns(ns: int) -> object:
    try:
        return iso_from_unix_ns(ns)
    except (OverflowError, ValueError, OSError) as exc:
        return type(exc)


NS_EDGES = [0, 1, 499, 500, 501, 999_999_499, 999_999_500, 999_999_501, 1_000_000_000, -1, -500, -1_000_000_000,
            1714564800250000000, 1714564800999999999, 1800000000000019968, 1800000000999999999,
            253402300799_999999_499, 253402300799_999999_999, 253402300800 * 10**9, -62135596800 * 10**9,
            -62135596801 * 10**9, 10**21, -(10**21)]


@pytest.mark.parametrize("ns", NS_EDGES)
def test_ns_edges(ns: int) -> None:
    assert _ours_ns(ns) == _ours(ns / 1e9) == _reference(ns / 1e9)


def test_random_ns_times_give_the_text_of_their_float() -> None:
    rng = random.Random(21)
    for _ in range(20_000):
        for ns in (rng.randrange(-62135596800 * 10**9, 253402300799 * 10**9),  # any time
                   1_800_000_000 * 10**9 + rng.randrange(0, 10**12),  # a worker's consecutive steps
                   rng.randrange(0, 10**6) * 10**9 + rng.choice([0, 500, 999_999_500, 999_999_999, 1_500, 2_500])):
            assert _ours_ns(ns) == _reference(ns / 1e9), ns
