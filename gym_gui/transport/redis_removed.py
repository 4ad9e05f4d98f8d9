"""What Redis removed from a telemetry stream, for the reader's lost ranges (Qt-free).

The reader sees a gap when the next entry after its cursor is beyond cursor + 1. Whether the
missing seq_ids were written and removed (lost) or never written (a writer's skip) is told by
the stream's ``XINFO STREAM``: its first entry, its last-generated id and its
``max-deleted-entry-id``.
"""

from __future__ import annotations

import redis

from gym_gui.transport.redis_keys import seq_of_any_id

__all__ = ["removed_upper"]


def removed_upper(client: redis.Redis, key: bytes) -> int:
    """The highest seq_id below which Redis may have removed entries of ``key`` (-1: none removed).

    Any thread; one round trip (``XINFO STREAM``); raises the client's connection errors.

    Writers number a stream from 1, or on after the last id the stream had, so every seq_id before
    the first entry Redis holds was written and is gone: trimmed, or lost with a Redis restarted
    without its data (the writer's next entries then begin beyond the reader's cursor). Between
    two entries it holds, only ``max-deleted-entry-id`` (XDEL) proves a removal; a skip there is the
    writer's. Redis < 7 keeps no trace of XDEL: there every gap is assumed removed (an upper bound).
    """
    try:
        info = client.xinfo_stream(key)
    except redis.ResponseError:  # the key is gone: whatever we did not read went with it
        return 1 << 62
    last = seq_of_any_id(info.get("last-generated-id"))
    last_known = last if last is not None else -1
    first = info.get("first-entry")
    first_seq = seq_of_any_id(first[0]) if first else None
    upper = first_seq - 1 if first_seq is not None else last_known  # an empty stream: all of it is gone
    if "max-deleted-entry-id" not in info:  # Redis < 7
        return max(upper, last_known)
    deleted = seq_of_any_id(info.get("max-deleted-entry-id"))
    return max(upper, deleted if deleted is not None else -1)
