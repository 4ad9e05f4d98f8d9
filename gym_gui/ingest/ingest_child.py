"""The proxy's ingest process: worker JSONL on stdin, decoded frames on stdout (Qt-free).

    python -m gym_gui.ingest.ingest_child --default-agent-id A [--default-run-id R]

Decoding and normalising lines is most of the proxy's CPU work; doing it here lets it run on
another core than the GUI process, which only assigns seq_ids and publishes. It reads until the
worker closes its stdout, then exits 0. It ignores SIGINT (a Ctrl+C in the terminal reaches the
whole process group; the worker's end, not a signal, ends this process).

It never outlives its parent, nor lets the worker do so: with ``--worker-pid`` it watches the
worker's exit and its own output pipe (``worker_pipe.ExitBoundedPipe``). Once the worker has exited,
what is in the pipe is decoded and the child ends, even while a grandchild of the worker keeps the
pipe open; when the parent is gone (its end of the output pipe closed), the child kills the worker
and exits. ``--parent-death-signal`` also asks the kernel to kill the child with its parent.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import NoReturn, Sequence

from gym_gui.gc_tuning import exit_after_freezing, tune_gc
from gym_gui.ingest.chunk_decoder import ChunkDecoder
from gym_gui.ingest.frames import write_chunk
from gym_gui.ingest.line_reader import DEFAULT_READ_CHUNK_BYTES, LineReader
from gym_gui.ingest.parent_death import set_parent_death_signal
from gym_gui.ingest.worker_pipe import DEFAULT_EXIT_DRAIN_S, ExitBoundedPipe, kill_by_pidfd
from gym_gui.telemetry.events import utc_now_iso

__all__ = ["main", "child_argv"]


def child_argv(*, default_agent_id: str, default_run_id: str | None, max_line_bytes: int,
               read_chunk_bytes: int, worker_pid: int | None = None, exit_drain_s: float = DEFAULT_EXIT_DRAIN_S,
               parent_death_signal: bool = False) -> list[str]:
    """The command line that starts this process with these settings. Any thread; pure."""
    argv = [sys.executable, "-m", "gym_gui.ingest.ingest_child",
            "--default-agent-id", default_agent_id, "--max-line-bytes", str(max_line_bytes),
            "--read-chunk-bytes", str(read_chunk_bytes), "--exit-drain-s", repr(float(exit_drain_s)),
            "--parent-pid", str(os.getpid())]
    if default_run_id is not None:
        argv += ["--default-run-id", default_run_id]
    if worker_pid is not None:
        argv += ["--worker-pid", str(worker_pid)]
    if parent_death_signal:
        argv.append("--parent-death-signal")
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    """Decode stdin to frames on stdout until EOF. Main thread of the child; blocks."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--default-agent-id", required=True)
    parser.add_argument("--default-run-id", default=None)
    parser.add_argument("--max-line-bytes", type=int, required=True)
    parser.add_argument("--read-chunk-bytes", type=int, default=DEFAULT_READ_CHUNK_BYTES)
    parser.add_argument("--worker-pid", type=int, default=None)
    parser.add_argument("--exit-drain-s", type=float, default=DEFAULT_EXIT_DRAIN_S)
    parser.add_argument("--parent-pid", type=int, default=None)
    parser.add_argument("--parent-death-signal", action="store_true")
    args = parser.parse_args(argv)
    if args.parent_death_signal:
        set_parent_death_signal(args.parent_pid)
    tune_gc()
    decoder = ChunkDecoder(default_agent_id=args.default_agent_id, default_run_id=args.default_run_id,
                           max_line_bytes=args.max_line_bytes)
    out = sys.stdout.buffer
    source = ExitBoundedPipe(sys.stdin.fileno(), args.worker_pid, drain_s=args.exit_drain_s,
                             parent_fd=out.fileno(), on_parent_gone=lambda: _parent_gone(source, args.worker_pid))
    try:
        for chunk in LineReader(source, max_line_bytes=args.max_line_bytes, read_chunk_bytes=args.read_chunk_bytes):
            write_chunk(out, decoder.decode(chunk, utc_now_iso()))
    except BrokenPipeError:  # the parent is gone (or stopped reading): nobody to tell
        _parent_gone(source, args.worker_pid)
    return 0


def _parent_gone(source: ExitBoundedPipe, worker_pid: int | None) -> NoReturn:
    """The parent is gone: end the worker too (nobody reads it any more) and exit at once."""
    if worker_pid is not None:
        kill_by_pidfd(source.pidfd, worker_pid)
    os._exit(0)


if __name__ == "__main__":
    exit_after_freezing(main())
