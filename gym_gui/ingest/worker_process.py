"""Starting a worker and its ingest child so that neither outlives the process that reads them (Qt-free)."""

from __future__ import annotations

import io
import os
import subprocess
from typing import Mapping, Sequence

from gym_gui.ingest.frames import INGEST_PIPE_BYTES, enlarge_pipe
from gym_gui.ingest.ingest_child import child_argv
from gym_gui.ingest.parent_death import parent_death_preexec, spawned_on_main_thread
from gym_gui.ingest.worker_pipe import ExitBoundedPipe

__all__ = ["buffered", "child_env", "start_ingest_child", "start_worker"]


def start_worker(argv: Sequence[str], *, env: Mapping[str, str] | None, cwd: str | None) -> subprocess.Popen[bytes]:
    """Start ``argv`` with piped stdout/stderr and, on the main thread, a parent-death SIGKILL.

    Any thread (the parent-death signal is set only on the main thread: the kernel sends it when
    the starting *thread* ends). Raises OSError when the program cannot start.
    """
    return subprocess.Popen(
        list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=None if env is None else dict(env), cwd=cwd, preexec_fn=parent_death_preexec(),
    )


def start_ingest_child(worker: subprocess.Popen[bytes], *, default_agent_id: str, default_run_id: str | None,
                       max_line_bytes: int, read_chunk_bytes: int, exit_drain_s: float) -> subprocess.Popen[bytes]:
    """Start the ingest child on ``worker``'s stdout (which this process then closes). Any thread.

    The child watches the worker's exit and its own output pipe, so it ends after the worker (or
    with this process). If it cannot start, the worker is killed and the OSError raised.
    """
    assert worker.stdout is not None
    try:
        child = subprocess.Popen(
            child_argv(default_agent_id=default_agent_id, default_run_id=default_run_id,
                       max_line_bytes=max_line_bytes, read_chunk_bytes=read_chunk_bytes, worker_pid=worker.pid,
                       exit_drain_s=exit_drain_s, parent_death_signal=spawned_on_main_thread()),
            stdin=worker.stdout, stdout=subprocess.PIPE, env=child_env(),
        )
    except BaseException:
        worker.kill()
        raise
    finally:
        worker.stdout.close()  # the child owns the read end now: the worker gets EPIPE if it dies
    assert child.stdout is not None
    enlarge_pipe(child.stdout.fileno(), INGEST_PIPE_BYTES)
    return child


def buffered(raw: ExitBoundedPipe) -> io.BufferedReader:
    """``raw`` with ``readline`` (for the stderr tail)."""
    return io.BufferedReader(raw)  # type: ignore[arg-type]


def child_env() -> dict[str, str]:
    """The ingest child's environment: ours, with this package importable from its source tree."""
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env
