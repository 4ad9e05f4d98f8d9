"""Splits a binary stream into lines, bounding memory for oversized lines (Qt-free)."""

from __future__ import annotations

from typing import BinaryIO, Iterator

__all__ = ["LineChunk", "LineReader", "DEFAULT_READ_CHUNK_BYTES"]

#: Bytes asked for per read; one read's lines are processed before the next read.
DEFAULT_READ_CHUNK_BYTES = 64 * 1024
#: The UTF-8 byte order mark some writers put before their first byte of text.
_UTF8_BOM = b"\xef\xbb\xbf"


class LineChunk:
    """The complete lines found by one read, in order.

    An entry is ``None`` for a line longer than the limit (its bytes were discarded). The line
    number of ``lines[i]`` is ``first_line_no + i``. ``partial_tail`` is set only at end of
    stream, holding the bytes after the last newline (a line the writer never finished).
    """

    __slots__ = ("lines", "first_line_no", "partial_tail")

    def __init__(self, lines: list[bytes | None], first_line_no: int, partial_tail: bytes | None = None) -> None:
        self.lines = lines
        self.first_line_no = first_line_no
        self.partial_tail = partial_tail


class LineReader:
    """Iterates ``stream`` read by read, yielding the complete lines of each read.

    A UTF-8 byte order mark at the very start of the stream (in its first read) is dropped. A line longer than ``max_line_bytes`` is never held in memory: its bytes are dropped as they
    arrive and it shows up as ``None``. Only the reader thread may iterate; each step blocks on
    the stream's read.
    """

    def __init__(self, stream: BinaryIO, *, max_line_bytes: int, read_chunk_bytes: int = DEFAULT_READ_CHUNK_BYTES) -> None:
        if max_line_bytes < 1 or read_chunk_bytes < 1:
            raise ValueError("max_line_bytes and read_chunk_bytes must be positive")
        self._read = getattr(stream, "read1", None) or stream.read
        self._max_line_bytes = max_line_bytes
        self._read_chunk_bytes = read_chunk_bytes
        self._tail: list[bytes] = []  # pieces of the unfinished line
        self._tail_bytes = 0
        self._skipping = False  # inside an oversized line: discard until its newline
        self._lines_done = 0

    @property
    def lines_seen(self) -> int:
        """Complete lines seen so far, oversized ones included."""
        return self._lines_done

    def __iter__(self) -> Iterator[LineChunk]:
        data = self._read(self._read_chunk_bytes)
        while data and len(data) < len(_UTF8_BOM) and _UTF8_BOM.startswith(data):  # (a tiny first read)
            more = self._read(self._read_chunk_bytes)
            if not more:
                break
            data += more
        if data.startswith(_UTF8_BOM):  # a writer that marks UTF-8 (PowerShell, .NET): not part of the first line
            data = data[len(_UTF8_BOM):] or self._read(self._read_chunk_bytes)
        while True:
            if not data:
                yield from self._at_end()
                return
            chunk = self._split(data)
            if chunk is not None:
                yield chunk
            data = self._read(self._read_chunk_bytes)

    def _at_end(self) -> Iterator[LineChunk]:
        first = self._lines_done + 1
        if self._skipping:
            self._skipping = False
            self._lines_done += 1
            yield LineChunk([None], first)
        elif self._tail:
            tail = b"".join(self._tail)
            self._tail, self._tail_bytes = [], 0
            yield LineChunk([], first, partial_tail=tail)

    def _split(self, data: bytes) -> LineChunk | None:
        first = self._lines_done + 1
        parts = data.split(b"\n")
        rest = parts.pop()  # bytes after the last newline of this read
        limit = self._max_line_bytes
        if parts:
            if self._skipping:
                head: bytes | None = None
                self._skipping = False
            elif self._tail:
                self._tail.append(parts[0])
                joined = b"".join(self._tail)
                head = joined if len(joined) <= limit else None
            else:
                head = parts[0] if len(parts[0]) <= limit else None
            self._tail, self._tail_bytes = [], 0
            self._lines_done += len(parts)
            if len(data) <= limit:  # no line of this read is over the limit (the usual case)
                parts[0] = head
                lines: list[bytes | None] = parts  # type: ignore[assignment]
            else:
                lines = [head]
                lines += [p if len(p) <= limit else None for p in parts[1:]]
        else:
            lines = []
        if rest and not self._skipping:
            self._tail_bytes += len(rest)
            if self._tail_bytes > limit:
                self._tail, self._tail_bytes = [], 0
                self._skipping = True
            else:
                self._tail.append(rest)
        return LineChunk(lines, first) if lines else None
