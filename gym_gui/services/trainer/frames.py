"""Length-prefixed pickle frames between the proxy and its ingest child process (Qt-free).

Only the project's own child process writes these frames and only its parent reads them, over
an anonymous pipe; nothing from a worker is ever unpickled (the child sends decoded values).
"""

from __future__ import annotations

import pickle
import struct
from typing import IO, Any

__all__ = ["read_frame", "write_frame"]

_HEADER = struct.Struct("<I")


def write_frame(out: IO[bytes], value: Any) -> None:
    """Write one frame and flush. The child's writer thread only; blocks while the pipe is full."""
    blob = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(_HEADER.pack(len(blob)))
    out.write(blob)
    out.flush()


def read_frame(pipe: IO[bytes]) -> Any | None:
    """Read one frame; None at end of stream. The parent's reader thread only; blocks on the pipe.

    Raises EOFError if the stream ends inside a frame (the child died mid-write).
    """
    header = pipe.read(_HEADER.size)
    if not header:
        return None
    if len(header) < _HEADER.size:
        raise EOFError("ingest stream ended inside a frame header")
    (size,) = _HEADER.unpack(header)
    blob = pipe.read(size)
    if len(blob) < size:
        raise EOFError(f"ingest stream ended inside a frame ({len(blob)} of {size} bytes)")
    return pickle.loads(blob)
