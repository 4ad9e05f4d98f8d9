"""The one rule for the seq_ids a producer makes (Qt-free, pure).

A stream's seq_ids are made in ``[1, MAX_SEQ_ID]`` and strictly increase. A source's own sequence
number is kept when it is an int above the stream's last seq_id and at most ``MAX_SEQ_ID``;
otherwise the next seq_id is ``last + 1``. A stream whose last seq_id is ``MAX_SEQ_ID`` is
exhausted: no further event of it can be numbered, and every later record of it is a counted
``seq_exhausted`` rejection (the producer never constructs an out-of-range event).
Whoever makes seq_ids (the proxy, a bridge republishing remote streams) uses ``next_seq_id``
and ``seq_floor_of``; nothing relies on ``TelemetryEvent`` refusing a bad value.
"""

from __future__ import annotations

from typing import Any

from gym_gui.telemetry.events import MAX_SEQ_ID

__all__ = ["MAX_SEQ_ID", "MIN_SEQ_ID", "exhausted_detail", "next_seq_id", "seq_floor_of"]

#: The first seq_id a new stream gets.
MIN_SEQ_ID = 1


def seq_floor_of(stored: Any) -> int:
    """The last seq_id to continue after, from a stored maximum (None, negative or junk: 0). Pure."""
    if type(stored) is not int or stored < 0:
        return 0
    return stored if stored <= MAX_SEQ_ID else MAX_SEQ_ID


def next_seq_id(last: int, proposed: Any) -> int | None:
    """The seq_id of a stream's next event after ``last``; None when the stream is exhausted.

    ``proposed`` (the source's own number, or None) is used when it is an int with
    ``last < proposed <= MAX_SEQ_ID``. Pure; any thread.
    """
    if type(proposed) is int and last < proposed <= MAX_SEQ_ID:
        return proposed
    if last >= MAX_SEQ_ID:
        return None
    return last + 1


def exhausted_detail(stream: str) -> str:
    """The rejection text for a record of an exhausted stream (``stream`` already made printable)."""
    return (f"stream {stream} has used every seq_id up to 2**63 - 1; none is left for this record "
            "(start a new run id)")
