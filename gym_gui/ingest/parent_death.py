"""Children that end when their parent dies: PR_SET_PDEATHSIG on Linux (Qt-free).

The kernel sends the signal when the *thread* that started the child ends, not only the process,
so it is set only for children started on the main thread (whose end is the process's end); the
ingest child also watches its output pipe (``worker_pipe``), which covers every other case.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import shutil
import signal
import sys
import threading
from typing import Callable, Mapping, Sequence

__all__ = ["EXEC_WITH_PARENT_DEATH_SIGNAL", "parent_death_argv", "set_parent_death_signal", "spawned_on_main_thread"]

_log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
_prctl: Callable[..., int] | None = None
if sys.platform.startswith("linux"):
    try:
        # the process's own symbols, libc's among them: no ``ctypes.util.find_library`` (an ldconfig
        # child and 7 ms of imports in every process that starts a worker or is the ingest child)
        _prctl = ctypes.CDLL(None, use_errno=True).prctl
        _prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        _prctl.restype = ctypes.c_int
    except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
        _prctl = None


def spawned_on_main_thread() -> bool:
    """True on the main thread: a parent-death signal set for a child started here is safe. Any thread."""
    return threading.current_thread() is threading.main_thread()


def set_parent_death_signal(expected_parent_pid: int | None = None, sig: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent ends. Linux; True if set.

    With ``expected_parent_pid``, a parent that is already gone (``getppid()`` differs) ends this
    process at once: the signal would never come. Call it early in a child's main thread.
    """
    if _prctl is None:
        return False
    if _prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
        return False
    if expected_parent_pid is not None and os.getppid() != expected_parent_pid:
        os._exit(1)
    return True


#: What a worker that must get the parent-death signal is started through: a bare interpreter (no
#: site, no environment options) asks the kernel for the signal (prctl), ends at once if the parent
#: is already gone, then execs the worker: the same pid, descriptors, environment and directory.
#: Not a ``preexec_fn``: Python code between fork and exec can deadlock in a process with other
#: threads (the subprocess documentation's warning; seen here as a worker start that never returned
#: while the sink thread ran), and without one subprocess may use vfork. argv: the parent's pid,
#: the signal, the program's path, then the worker's own argv.
EXEC_WITH_PARENT_DEATH_SIGNAL = (
    "import ctypes, os, sys\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, int(sys.argv[2]), 0, 0, 0)\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    os._exit(1)\n"
    "try:\n"
    "    os.execv(sys.argv[3], sys.argv[4:])\n"
    "except OSError as exc:\n"
    "    sys.stderr.write(f'cannot start the worker {sys.argv[3]!r}: {exc}\\n')\n"
    "    os._exit(127)\n"
)


def parent_death_argv(argv: Sequence[str], *, env: Mapping[str, str] | None = None,
                      cwd: str | None = None) -> list[str]:
    """``argv`` started so that the worker gets the parent-death signal SIGKILL (through
    ``EXEC_WITH_PARENT_DEATH_SIGNAL``), or ``argv`` as it is off the main thread (the signal would
    come when that thread ends), where prctl is not available and where ``sys.executable`` is
    unknown. Any thread; never blocks.

    The program is looked up here as ``subprocess`` would (``PATH`` of ``env``, a path with a slash
    relative to ``cwd``), so one that cannot start still raises FileNotFoundError or PermissionError
    from the caller's ``Popen``-like start instead of a worker that exits 127.
    """
    argv = list(argv)
    if _prctl is None or not spawned_on_main_thread() or not argv:
        return argv
    if not sys.executable:  # embedded in a host that is not a Python interpreter: nothing runs the wrapper
        return argv
    return [sys.executable, "-I", "-S", "-c", EXEC_WITH_PARENT_DEATH_SIGNAL, str(os.getpid()),
            str(int(signal.SIGKILL)), _program(argv[0], env, cwd), *argv]


def _program(name: str, env: Mapping[str, str] | None, cwd: str | None) -> str:
    """The path ``exec`` will run for ``name``, or the OSError ``subprocess`` would raise. Pure but for the look-up."""
    if os.sep in name:
        path = name if os.path.isabs(name) or cwd is None else os.path.join(cwd, name)
        if not os.path.exists(path):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), name)
        if os.path.isdir(path) or not os.access(path, os.X_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), name)
        return name  # (the wrapper runs in ``cwd``: the same file)
    found = shutil.which(name, path=(os.environ if env is None else env).get("PATH", os.defpath))
    if found is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), name)
    return os.path.abspath(found)
