"""The proxy's frames survive a raw stream that takes part of each write."""

from __future__ import annotations

import io
from typing import Any

import pytest

from gym_gui.full_write import write_all
from gym_gui.ingest.frames import read_frame, write_frame
from short_writes import Trickle


def test_frames_written_to_a_stream_that_takes_part_of_each_write_read_back_whole() -> None:
    values = [(3, 0, [(1, "run", "agent", i, "t", ("x" * i,)) for i in range(200)]), (0, 1, []), {"k": [1.5, None]}]
    out = Trickle(most=1000)
    for value in values:
        write_frame(out, value)
    assert out.calls > 20  # the writes were split
    pipe = io.BytesIO(bytes(out.data))
    got = []
    while (frame := read_frame(pipe)) is not None:
        got.append(frame)
    assert got == values


def test_write_all_takes_none_as_complete_and_nothing_taken_as_an_error() -> None:
    class Collects:
        def __init__(self) -> None:
            self.parts: list[bytes] = []

        def write(self, data: bytes) -> None:
            self.parts.append(bytes(data))

    sink = Collects()
    write_all(sink, b"abc")  # type: ignore[arg-type]
    assert sink.parts == [b"abc"]

    class Full(Trickle):
        def write(self, data: Any) -> int:  # type: ignore[override]
            return 0 if self.calls else super().write(data)

    with pytest.raises(BlockingIOError):
        write_all(Full(most=2), b"abcdef")
