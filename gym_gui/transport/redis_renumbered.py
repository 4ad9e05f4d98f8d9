"""A stream written anew below what the reader took: telling it from trimming (Qt-free).

The reader's cursor only moves forward: ``XREAD`` returns entries above it. A stream key that was
deleted and written again, or that Redis lost and a writer numbered from 1 again (a bridge
without its seq_id state), has new entries at seq_ids the reader already took; ``XREAD`` would
skip them without a word. The reader checks each known stream at every discovery (and so right
after a reconnection, before reading on): the entry at its *anchor*, the first entry it read,
kept as long as the stream holds it (trimming removes entries from the front, a Redis that lost
its last second of writes from the back: an old anchor survives both; once it is gone, the
stream's first entry at that check is the next). The anchor decides when the stream holds its
id: the same fields, the same stream (a lost tail is not a restart: the writer re-sends it);
other fields, a stream written anew. Without it, the stream's ``XINFO STREAM`` decides:

- the anchor is gone while the stream's first entry is at or below it and no ``XDEL`` explains it
  (``max-deleted-entry-id``; Redis < 7 keeps none: there a missing anchor within the stream counts);
- otherwise (no anchor yet, as in a GUI just started from its stored floor, or trimmed past it) the
  numbering restarted when the stream's last-generated id is below the highest seq_id taken.

A stream whose first entry is beyond the anchor and whose numbering reaches what was taken was
trimmed (retention) or lost with Redis and is numbered on by its writer: no restart (the gap is
reported lost in the usual way).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Iterable, Mapping

import redis

from gym_gui.rate_limited_log import RateLimitedLog
from gym_gui.telemetry.events import StreamKey
from gym_gui.transport.redis_keys import seq_from_entry_id, seq_of_any_id
from gym_gui.transport.redis_read_state import Anchor, StreamReadState

__all__ = ["RenumberedEntries", "find_renumbered", "numbering_restarted", "ranges_text"]

_log = logging.getLogger(__name__)


def numbering_restarted(taken: int, anchor: Anchor | None, info: Mapping[str, Any],
                        at_anchor: list[Any] | None) -> bool:
    """Whether the stream was written anew below ``taken`` (the highest seq_id the reader has).

    ``info``: the stream's ``XINFO STREAM``; ``at_anchor``: the ``XRANGE anchor anchor`` reply
    (None without an anchor). Pure; any thread.
    """
    last = seq_of_any_id(info.get("last-generated-id"))
    below = last is not None and last < taken
    if anchor is None or at_anchor is None:
        return below
    anchor_id, anchor_fields = anchor
    if at_anchor:
        _id, fields = at_anchor[0]
        return dict(fields or {}) != dict(anchor_fields)
    anchor_seq = seq_from_entry_id(anchor_id)
    first = info.get("first-entry")
    first_seq = seq_of_any_id(first[0]) if first else None
    if anchor_seq is None or first_seq is None or first_seq > anchor_seq:
        return below  # trimmed past the anchor, or emptied: restarted only if numbered below what was taken
    if "max-deleted-entry-id" not in info:  # Redis < 7: no trace of XDEL
        return True
    deleted = seq_of_any_id(info.get("max-deleted-entry-id"))
    return deleted is None or deleted < anchor_seq


def find_renumbered(client: redis.Redis, states: Iterable[StreamReadState]) -> list[StreamReadState]:
    """The streams (of those read, not already being read anew) whose numbering restarted.

    One pipelined ``XRANGE`` at the anchors; ``XINFO STREAM`` (a second round trip) only for the
    streams without an anchor or whose anchor is gone, which then get the stream's first entry as
    their anchor if they were not restarted. The source's reader thread; raises the client's
    connection errors.
    """
    checked = [state for state in states if state.last_seq is not None and state.skip_upto is None]
    anchored = [state for state in checked if state.anchor is not None]
    at_anchor: dict[int, list[Any]] = {}
    if anchored:
        pipe = client.pipeline(transaction=False)
        for state in anchored:
            assert state.anchor is not None
            pipe.xrange(state.key, state.anchor[0], state.anchor[0])
        for state, reply in zip(anchored, pipe.execute(raise_on_error=False)):
            _raise_connection_error(reply)
            if not isinstance(reply, Exception):  # an error: not a stream (dropped when read)
                at_anchor[id(state)] = reply
    restarted: list[StreamReadState] = []
    unsure: list[StreamReadState] = []
    for state in checked:
        reply = at_anchor.get(id(state))
        if state.anchor is None or reply == []:
            unsure.append(state)
        elif reply and dict(reply[0][1] or {}) != dict(state.anchor[1]):
            restarted.append(state)  # another event under the anchor's id
    if not unsure:
        return restarted
    pipe = client.pipeline(transaction=False)
    for state in unsure:
        pipe.xinfo_stream(state.key)
    for state, info in zip(unsure, pipe.execute(raise_on_error=False)):
        _raise_connection_error(info)
        if isinstance(info, Exception):
            continue  # gone (reported as vanished) or not a stream
        assert state.last_seq is not None
        if numbering_restarted(state.last_seq, state.anchor, info, at_anchor.get(id(state))):
            restarted.append(state)
            continue
        first = info.get("first-entry")  # the oldest entry the stream holds: the surest anchor
        state.anchor = (first[0], first[1] or {}) if first and first[0] is not None else None
    return restarted


def _raise_connection_error(reply: Any) -> None:
    if isinstance(reply, (redis.ConnectionError, redis.TimeoutError)):
        raise reply


class RenumberedEntries:
    """The entries skipped because their stream was written anew below the seq_ids taken: exact
    ranges per stream, their count, and the warnings. Any thread."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._ranges: dict[StreamKey, list[tuple[int, int]]] = {}
        self._total = 0
        self._rlog = RateLimitedLog(_log, interval_s=2.0)

    @property
    def total(self) -> int:
        """Entries skipped. Any thread; never blocks."""
        return self._total

    def ranges(self) -> dict[StreamKey, list[tuple[int, int]]]:
        """A copy of the ranges per stream. Any thread; never blocks."""
        with self._lock:
            return {stream: list(r) for stream, r in self._ranges.items()}

    def started(self, stream: StreamKey, taken: int | None) -> None:
        """Say that ``stream`` is read again from its start, its entries up to ``taken`` skipped. Any thread."""
        with self._lock:
            self._ranges.setdefault(stream, [])
        _log.warning("%s: stream %s/%s was written anew below seq_id %s, which was already taken (its key deleted "
                     "and written again, or lost by Redis and numbered from 1 again by its writer): its entries up to "
                     "seq_id %s cannot be stored under seq_ids that exist; they are skipped and counted as "
                     "renumbered, the entries after it are read as usual (give a rerun a new run id)",
                     self.name, *stream, taken, taken)

    def skipped(self, stream: StreamKey, seqs: list[int]) -> None:
        """Count the entries ``seqs`` (ascending) of ``stream`` as skipped. Any thread."""
        with self._lock:
            ranges = self._ranges.setdefault(stream, [])
            for seq in seqs:
                if ranges and ranges[-1][1] + 1 == seq:
                    ranges[-1] = (ranges[-1][0], seq)
                else:
                    ranges.append((seq, seq))
            self._total += len(seqs)
            shown = list(ranges)
        self._rlog.log(logging.WARNING, f"renumbered:{stream}",
                       "%s: stream %s/%s: renumbered entries skipped so far: seq_ids %s (taken by events read before)",
                       self.name, *stream, ranges_text(shown))

    def ended(self, stream: StreamKey, upto: int | None) -> None:
        """Say that ``stream`` passed ``upto`` again and is read as usual. Any thread."""
        with self._lock:
            ranges = list(self._ranges.get(stream, []))
        _log.warning("%s: stream %s/%s passed seq_id %s again: %d renumbered entries were skipped (seq_ids %s); "
                     "reading goes on", self.name, *stream, upto, sum(b - a + 1 for a, b in ranges), ranges_text(ranges))


def ranges_text(ranges: list[tuple[int, int]], limit: int = 8) -> str:
    """``"1..20, 25"``: the first ``limit`` ranges (and how many more). Pure."""
    text = ", ".join(f"{a}..{b}" if a != b else str(a) for a, b in ranges[:limit]) or "none"
    return text + (f" (+{len(ranges) - limit} more ranges)" if len(ranges) > limit else "")
