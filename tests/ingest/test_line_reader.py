from __future__ import annotations

import io

import pytest

from gym_gui.ingest.line_reader import LineReader


def read_all(data: bytes, *, max_line_bytes: int = 64, chunk: int = 7) -> tuple[list[tuple[int, bytes | None]], bytes | None]:
    lines: list[tuple[int, bytes | None]] = []
    tail = None
    for c in LineReader(io.BytesIO(data), max_line_bytes=max_line_bytes, read_chunk_bytes=chunk):
        lines += [(c.first_line_no + i, line) for i, line in enumerate(c.lines)]
        if c.partial_tail is not None:
            tail = c.partial_tail
    return lines, tail


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 4096])
def test_lines_are_split_exactly_whatever_the_read_size(chunk: int) -> None:
    data = b"alpha\nbeta\n\ngamma-longer-line\nz\n"
    lines, tail = read_all(data, chunk=chunk)
    assert lines == [(1, b"alpha"), (2, b"beta"), (3, b""), (4, b"gamma-longer-line"), (5, b"z")]
    assert tail is None


@pytest.mark.parametrize("chunk", [1, 2, 3, 4, 4096])
def test_a_byte_order_mark_is_dropped_at_the_start_of_the_stream_only(chunk: int) -> None:
    bom = b"\xef\xbb\xbf"
    assert read_all(bom + b"one\n" + bom + b"two\n", chunk=chunk) == ([(1, b"one"), (2, bom + b"two")], None)
    assert read_all(bom + b"\nx\n", chunk=chunk) == ([(1, b""), (2, b"x")], None)
    assert read_all(bom, chunk=chunk) == ([], None)
    assert read_all(b"\xef\xbbX\n", chunk=chunk) == ([(1, b"\xef\xbbX")], None)  # not a mark: left as it is


@pytest.mark.parametrize("chunk", [1, 5, 16, 4096])
def test_oversized_lines_become_none_and_numbering_stays_exact(chunk: int) -> None:
    data = b"ok1\n" + b"x" * 50 + b"\nok3\n" + b"y" * 11 + b"\nok5\n"
    lines, tail = read_all(data, max_line_bytes=10, chunk=chunk)
    assert lines == [(1, b"ok1"), (2, None), (3, b"ok3"), (4, None), (5, b"ok5")]
    assert tail is None


def test_a_line_of_exactly_the_limit_is_kept() -> None:
    lines, _ = read_all(b"1234567890\n12345678901\n", max_line_bytes=10, chunk=3)
    assert lines == [(1, b"1234567890"), (2, None)]


@pytest.mark.parametrize("chunk", [1, 4, 4096])
def test_partial_last_line_is_reported_as_tail(chunk: int) -> None:
    lines, tail = read_all(b"one\ntwo\nthr", chunk=chunk)
    assert lines == [(1, b"one"), (2, b"two")]
    assert tail == b"thr"


def test_oversized_unfinished_last_line_is_reported_as_oversized() -> None:
    lines, tail = read_all(b"one\n" + b"z" * 100, max_line_bytes=10, chunk=8)
    assert lines == [(1, b"one"), (2, None)]
    assert tail is None


def test_huge_line_is_not_held_in_memory() -> None:
    class CountingStream(io.RawIOBase):
        """Yields a 64 MiB line in 64 KiB reads without ever building it."""

        def __init__(self) -> None:
            self.left = 64 * 1024 * 1024
            self.sent_end = False

        def readable(self) -> bool:
            return True

        def read(self, n: int = -1) -> bytes:
            if self.left > 0:
                size = min(n, self.left)
                self.left -= size
                return b"a" * size
            if not self.sent_end:
                self.sent_end = True
                return b"\nafter\n"
            return b""

    reader = LineReader(CountingStream(), max_line_bytes=1024, read_chunk_bytes=64 * 1024)
    got = []
    for chunk in reader:
        assert reader._tail_bytes <= 1024
        got += chunk.lines
    assert got == [None, b"after"]
