"""Decodes the lines of one read into normalised events and rejections (Qt-free, pure).

Shared by the proxy's in-process reader and its ingest child process, so both classify every
line the same way. An item is either the 6 fields of an event (topic, run_id, agent_id, seq,
ts_iso, payload) or a rejection (reason, line_no, detail).
"""

from __future__ import annotations

from typing import Any, Union

from gym_gui.ingest.line_reader import LineChunk
from gym_gui.ingest.records import NormalizedFields, RecordRejected, RejectReason, normalize_line_at, parse_line

__all__ = ["ChunkDecoder", "DecodedChunk", "Rejection"]

#: ``(reason, line_no, detail)``: a line that could not become an event.
Rejection = tuple[str, int, str]
#: ``(lines, blank_lines, items)``: what one read produced, items in line order.
DecodedChunk = tuple[int, int, list[Union[NormalizedFields, Rejection]]]


class ChunkDecoder:
    """Turns LineChunks into DecodedChunks. One instance per source; any single thread."""

    def __init__(self, *, default_agent_id: str, default_run_id: str | None, max_line_bytes: int) -> None:
        self._default_agent_id = default_agent_id
        self._default_run_id = default_run_id
        self._oversized_detail = f"longer than {max_line_bytes} bytes"

    def decode(self, chunk: LineChunk, now_iso: str) -> DecodedChunk:
        """Classify every line of ``chunk``; ``now_iso`` stamps records that carry no time."""
        items: list[Any] = []
        append = items.append
        blanks = 0
        agent, run = self._default_agent_id, self._default_run_id
        normalize = normalize_line_at
        line_no = chunk.first_line_no
        for line in chunk.lines:
            if line is None:
                append((RejectReason.OVERSIZED, line_no, self._oversized_detail))
            elif not line or line.isspace():
                blanks += 1
            else:
                try:
                    append(normalize(line, agent, run, now_iso))
                except RecordRejected as exc:
                    append((exc.reason, line_no, exc.detail))
            line_no += 1
        lines = len(chunk.lines)
        tail = chunk.partial_tail
        if tail is not None:
            lines += 1
            append(self._partial(tail, line_no, now_iso))
        return lines, blanks, items

    def _partial(self, tail: bytes, line_no: int, now_iso: str) -> NormalizedFields | Rejection:
        """A last line without newline: kept if it is a complete record, else a partial-line rejection."""
        try:
            parse_line(tail)
        except RecordRejected as exc:
            return (RejectReason.PARTIAL, line_no, f"stream ended inside a line ({exc.reason}, {len(tail)} bytes)")
        try:
            return normalize_line_at(tail, self._default_agent_id, self._default_run_id, now_iso)
        except RecordRejected as exc:
            return (exc.reason, line_no, exc.detail)
