"""unix_time.iso_from_unix gives datetime.fromtimestamp(t, timezone.utc).isoformat() to the character."""

from __future__ import annotations

import random
from datetime import datetime, timezone

import pytest

from gym_gui.ingest.unix_time import iso_from_unix


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
