"""The proxy's ingest process: worker JSONL on stdin, decoded frames on stdout (Qt-free).

    python -m gym_gui.ingest.ingest_child --default-agent-id A [--default-run-id R]

Decoding and normalising lines is most of the proxy's CPU work; doing it here lets it run on
another core than the GUI process, which only assigns seq_ids and publishes. It reads until the
worker closes its stdout, then exits 0. It ignores SIGINT (a Ctrl+C in the terminal reaches the
whole process group; the worker's end, not a signal, ends this process) and exits quietly when
its parent goes away.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Sequence

from gym_gui.gc_tuning import tune_gc
from gym_gui.ingest.chunk_decoder import ChunkDecoder
from gym_gui.ingest.frames import write_chunk
from gym_gui.ingest.line_reader import DEFAULT_READ_CHUNK_BYTES, LineReader
from gym_gui.telemetry.events import utc_now_iso

__all__ = ["main", "child_argv"]


def child_argv(*, default_agent_id: str, default_run_id: str | None, max_line_bytes: int,
               read_chunk_bytes: int) -> list[str]:
    """The command line that starts this process with these settings."""
    argv = [sys.executable, "-m", "gym_gui.ingest.ingest_child",
            "--default-agent-id", default_agent_id, "--max-line-bytes", str(max_line_bytes),
            "--read-chunk-bytes", str(read_chunk_bytes)]
    if default_run_id is not None:
        argv += ["--default-run-id", default_run_id]
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    """Decode stdin to frames on stdout until EOF. Main thread of the child; blocks."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--default-agent-id", required=True)
    parser.add_argument("--default-run-id", default=None)
    parser.add_argument("--max-line-bytes", type=int, required=True)
    parser.add_argument("--read-chunk-bytes", type=int, default=DEFAULT_READ_CHUNK_BYTES)
    args = parser.parse_args(argv)
    tune_gc()
    decoder = ChunkDecoder(default_agent_id=args.default_agent_id, default_run_id=args.default_run_id,
                           max_line_bytes=args.max_line_bytes)
    out = sys.stdout.buffer
    try:
        for chunk in LineReader(sys.stdin.buffer, max_line_bytes=args.max_line_bytes,
                                read_chunk_bytes=args.read_chunk_bytes):
            write_chunk(out, decoder.decode(chunk, utc_now_iso()))
    except BrokenPipeError:  # the parent is gone: nobody to tell
        return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
