"""Length-prefixed marshal frames between the proxy and its ingest child process (Qt-free).

One frame is one DecodedChunk in wire form: an event's topic travels as its index in
``TOPICS`` and a StepPayload as its ``fields`` tuple (marshal takes only core types), everything
else as decoded. marshal, not pickle:
reading a frame is the GUI process's share of decoding, and marshal reads these tuples, dicts
and strings about a fifth faster (docs/performance.md). Only the project's own child process
writes these frames and only its parent reads them, over an anonymous pipe, with the same
interpreter; nothing a worker wrote is ever unmarshalled (the child sends decoded values).
"""

from __future__ import annotations

import marshal
import struct
from typing import IO, Any

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

from gym_gui.full_write import write_all
from gym_gui.telemetry.events import Topic
from gym_gui.telemetry.step_payload import StepPayload

__all__ = ["INGEST_PIPE_BYTES", "TOPICS", "enlarge_pipe", "read_frame", "write_chunk", "write_frame"]

_HEADER = struct.Struct("<I")
#: Capacity asked for the pipe from the ingest child (about 4,000 grid steps; Linux's default is 64 KiB,
#: about one frame): with room to write ahead, the child seldom waits for the reader thread, which
#: shares the GUI process's GIL with the sink and the GUI and reads in bursts (docs/performance.md).
INGEST_PIPE_BYTES = 1 << 20
_PIPE_MAX_SIZE = "/proc/sys/fs/pipe-max-size"
#: A wire item's topic index -> Topic.
TOPICS: tuple[Topic, ...] = tuple(Topic)
_INDEX = {topic: i for i, topic in enumerate(TOPICS)}


def enlarge_pipe(fd: int, size_bytes: int) -> int:
    """Ask for a pipe buffer of ``size_bytes`` on ``fd`` (Linux ``F_SETPIPE_SZ``); the capacity now, 0 if unknown.

    Best effort: an unprivileged process gets at most ``/proc/sys/fs/pipe-max-size``; other
    systems, or a descriptor that is not a pipe, keep what they have. Any thread; never blocks.
    """
    setsz = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setsz is None:
        return 0
    try:
        return int(fcntl.fcntl(fd, setsz, size_bytes))
    except OSError:
        pass
    try:
        with open(_PIPE_MAX_SIZE) as limit:
            return int(fcntl.fcntl(fd, setsz, min(size_bytes, int(limit.read()))))
    except (OSError, ValueError):
        return 0


def write_chunk(out: IO[bytes], decoded: tuple[int, int, list[Any]]) -> None:
    """Write one DecodedChunk and flush. The child only; blocks.

    An event's topic travels as its ``TOPICS`` index and a StepPayload as its ``fields`` tuple (the
    reader makes a StepPayload of any tuple payload; a dict payload stays a dict); rejections
    travel as they are.
    """
    lines, blanks, items = decoded
    index = _INDEX
    wire: list[Any] = []
    append = wire.append
    for item in items:
        if len(item) == 6:
            topic, run_id, agent_id, seq, ts_iso, payload = item
            append((index[topic], run_id, agent_id, seq, ts_iso,
                    payload.fields if type(payload) is StepPayload else payload))
        else:
            append(item)
    write_frame(out, (lines, blanks, wire))


def write_frame(out: IO[bytes], value: Any) -> None:
    """Write one frame of core types and flush. The child only; blocks while the pipe is full."""
    blob = marshal.dumps(value)
    # one write (a copy of the blob, ~5 us a frame): the header alone would wake the reader for 4 bytes;
    # ``out`` may be raw (PYTHONUNBUFFERED=1) and take part of it
    write_all(out, _HEADER.pack(len(blob)) + blob)
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
    return marshal.loads(blob)
