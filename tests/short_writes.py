"""A raw stream that takes only part of each write, as a pipe interrupted by a signal does (tests' helper)."""

from __future__ import annotations

import io
from typing import Any


class Trickle(io.RawIOBase):
    """Takes at most ``most`` bytes a write; ``data`` holds what it took, ``calls`` counts the writes."""

    def __init__(self, most: int = 100) -> None:
        super().__init__()
        self.most = most
        self.data = bytearray()
        self.calls = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:  # type: ignore[override]
        self.calls += 1
        chunk = bytes(data[: self.most])
        self.data += chunk
        return len(chunk)
