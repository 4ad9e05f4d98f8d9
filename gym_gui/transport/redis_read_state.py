"""One stream's read state in the GUI machine's Redis reader (Qt-free; the reader thread only)."""

from __future__ import annotations

from typing import Mapping

from gym_gui.telemetry.events import StreamKey
from gym_gui.transport.redis_keys import cursor_after

__all__ = ["Anchor", "StreamReadState"]

#: An entry the reader read: its raw id and fields.
Anchor = tuple[bytes, Mapping[bytes, bytes]]


class StreamReadState:
    """Cursor, highest seq_id taken, unexplained gaps, and what proves the stream is still the one read.

    Used by the source's reader thread only; no locking.
    """

    __slots__ = ("key", "stream", "cursor", "last_seq", "gaps", "removed_upper", "vanished", "anchor", "skip_upto")

    def __init__(self, key: bytes, stream: StreamKey, floor: int | None) -> None:
        self.key = key
        self.stream = stream
        self.cursor: bytes | str = cursor_after(floor)
        self.last_seq = floor  # highest seq_id read (or persisted before we started)
        self.gaps: list[tuple[int, int]] = []  # seq ranges skipped by the entries read, not yet explained
        self.removed_upper = -1  # every seq_id <= this that is absent was removed by Redis (trim, XDEL, restart)
        self.vanished = False  # the key was gone from Redis at the last discovery
        self.anchor: Anchor | None = None  # an entry of the stream read, kept while the stream holds it (redis_renumbered)
        self.skip_upto: int | None = None  # renumbered: entries up to this seq_id are counted, not published

    def read_anew(self) -> int | None:
        """The stream was written anew below ``last_seq``: read it again from its start, skipping entries
        up to ``last_seq`` (returned). No I/O."""
        self.skip_upto = self.last_seq
        self.cursor = cursor_after(None)
        self.anchor = None
        self.gaps.clear()
        self.removed_upper = -1
        self.vanished = False
        return self.skip_upto
