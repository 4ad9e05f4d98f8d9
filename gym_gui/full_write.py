"""Writing all of a buffer to a binary stream that may take only part of it (Qt-free)."""

from __future__ import annotations

from typing import BinaryIO

__all__ = ["write_all"]


def write_all(stream: BinaryIO, data: bytes | bytearray | memoryview) -> None:
    """Write every byte of ``data`` to ``stream``; the caller flushes.

    A raw stream (``buffering=0``, or ``sys.stdout.buffer`` under ``PYTHONUNBUFFERED=1`` or
    ``python -u``) takes part of a write when a signal interrupts it on a full pipe: a SIGSTOP
    and SIGCONT (Ctrl+Z and ``fg``, a debugger, a sampling profiler) are enough. Its ``write``
    returns the count it took; the rest is written here. A buffered stream takes everything at
    once, and a write that returns None (file-likes that return nothing) is taken as complete.
    Raises BlockingIOError when the stream takes none of what is left (a full non-blocking
    stream). Calling thread; blocks while the stream is full.
    """
    written = stream.write(data)
    if written is None or written >= len(data):
        return
    view = memoryview(data)[written:]
    while view:
        written = stream.write(view)
        if not written:
            raise BlockingIOError(f"the stream took none of the last {len(view)} bytes")
        view = view[written:]
