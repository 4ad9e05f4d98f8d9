"""Starting a worker and its ingest child so that neither outlives the process that reads them (Qt-free).

Both may start at a lower scheduling priority than the process that reads them: the GUI asks for
``nice`` +10 (``set_child_nice``, done by ``AppServices``), so on a machine with fewer cores than
busy processes (eight runs are 16 children on 2 cores) the window, its live views and its sink
keep the CPU they need, and back-pressure slows the workers instead of the live buffers
overflowing. On an idle core the priority changes nothing. A process that does not ask (the
headless ``python -m gym_gui.run``) starts them at its own priority. ``GYM_GUI_CHILD_NICE``
overrides both (``N``; ``W,I``: the worker's and the ingest child's apart; ``0``: unchanged), read
at each start; ``child_nice()`` gives what is in force. See docs/tuning.md.
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
from typing import Mapping, NamedTuple, Sequence

from gym_gui.ingest.frames import INGEST_PIPE_BYTES, enlarge_pipe
from gym_gui.ingest.ingest_child import child_argv
from gym_gui.ingest.parent_death import parent_death_argv, spawned_on_main_thread
from gym_gui.ingest.worker_pipe import ExitBoundedPipe

__all__ = ["NICE_ENV_VAR", "ChildNice", "buffered", "child_env", "child_nice", "lower_priority",
           "set_child_nice", "start_ingest_child", "start_worker"]

_log = logging.getLogger(__name__)

NICE_ENV_VAR = "GYM_GUI_CHILD_NICE"
_MAX_NICE = 19


class ChildNice(NamedTuple):
    """The ``nice`` increments (0..19) the next worker and ingest child start with (0: unchanged)."""

    worker: int
    ingest: int


_UNCHANGED = ChildNice(0, 0)
_process_nice = _UNCHANGED  # what this process asked for (set_child_nice)


def set_child_nice(nice: ChildNice) -> None:
    """This process's increments for the workers and ingest children it starts from now on (unless
    ``$GYM_GUI_CHILD_NICE`` says otherwise). Process-wide; call at start-up (the GUI's
    ``AppServices`` does). Raises ValueError outside 0..19. Any thread; never blocks."""
    global _process_nice
    if any(type(v) is not int or not 0 <= v <= _MAX_NICE for v in nice):
        raise ValueError(f"nice increments must be ints 0..{_MAX_NICE}, got {tuple(nice)!r}")
    _process_nice = ChildNice(*nice)


def child_nice(environ: Mapping[str, str] | None = None) -> ChildNice:
    """The increments in force: ``$GYM_GUI_CHILD_NICE`` (``"N"`` for both, ``"W,I"`` apart, each
    0..19), else what ``set_child_nice`` set (at first: 0, unchanged). A malformed value is logged
    and ignored. Any thread; never blocks."""
    env = os.environ if environ is None else environ
    text = env.get(NICE_ENV_VAR, "").strip()
    if not text:
        return _process_nice
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or any(not 0 <= v <= _MAX_NICE for v in values):
        _log.warning("%s=%r is not N or W,I with each 0..%d; using %s", NICE_ENV_VAR, text, _MAX_NICE,
                     tuple(_process_nice))
        return _process_nice
    return ChildNice(values[0], values[-1])


def lower_priority(pid: int, increment: int) -> bool:
    """Lower process ``pid``'s priority to this process's ``nice`` plus ``increment`` (capped at 19);
    True if set (or nothing to do). Any thread; never blocks.

    Called right after the child's exec, before it can start threads of its own (a Python child
    takes milliseconds to get there): on Linux a priority is per thread, and threads inherit it.
    Lowering a child's priority needs no privilege; a child already gone is logged, not raised.
    """
    if increment <= 0:
        return True
    try:
        target = min(_MAX_NICE, os.getpriority(os.PRIO_PROCESS, 0) + increment)
        os.setpriority(os.PRIO_PROCESS, pid, target)
    except (OSError, AttributeError) as exc:  # (gone already; a platform without setpriority)
        _log.info("could not lower the priority of child %d: %s: %s", pid, type(exc).__name__, exc)
        return False
    return True


def start_worker(argv: Sequence[str], *, env: Mapping[str, str] | None, cwd: str | None) -> subprocess.Popen[bytes]:
    """Start ``argv`` with piped stdout/stderr and, on the main thread, a parent-death SIGKILL.

    Any thread (the parent-death signal is set only on the main thread: the kernel sends it when
    the starting *thread* ends), at ``child_nice().worker`` below this process's priority. Raises
    OSError when the program cannot start.
    """
    proc = subprocess.Popen(
        parent_death_argv(argv, env=env, cwd=cwd), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env=None if env is None else dict(env), cwd=cwd,
    )
    lower_priority(proc.pid, child_nice().worker)
    return proc


def start_ingest_child(worker: subprocess.Popen[bytes], *, default_agent_id: str, default_run_id: str | None,
                       max_line_bytes: int, read_chunk_bytes: int, exit_drain_s: float) -> subprocess.Popen[bytes]:
    """Start the ingest child on ``worker``'s stdout (which this process then closes). Any thread.

    The child watches the worker's exit and its own output pipe, so it ends after the worker (or
    with this process); it runs at ``child_nice().ingest`` below this process's priority. Both
    pipes, the worker's stdout and the child's, are asked for ``INGEST_PIPE_BYTES`` (a full
    emitter batch is more than Linux's default 64 KiB). If it
    cannot start, the worker is killed and the OSError raised.
    """
    assert worker.stdout is not None
    enlarge_pipe(worker.stdout.fileno(), INGEST_PIPE_BYTES)
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
    lower_priority(child.pid, child_nice().ingest)
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
