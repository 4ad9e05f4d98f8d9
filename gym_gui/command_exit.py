"""How a headless command's process ends: its exit code, and Ctrl+C before the command has
installed its own signal handlers (while it imports redis-py, opens its file, pings Redis) as a
cancel with one line, not a ``KeyboardInterrupt`` traceback. Qt-free."""

from __future__ import annotations

import sys
from typing import Callable, NoReturn

from gym_gui.gc_tuning import exit_after_freezing

__all__ = ["EXIT_INTERRUPTED", "command_exit"]

#: The exit code of a command cancelled by SIGINT (Ctrl+C).
EXIT_INTERRUPTED = 130


def command_exit(main: Callable[[], int]) -> NoReturn:
    """End the process with ``main()``'s exit code (its heap frozen first: ``exit_after_freezing``);
    a ``KeyboardInterrupt`` out of ``main`` prints ``interrupted`` to stderr and exits 130.

    Main thread, as the last statement of a ``__main__`` block; blocks for as long as ``main``.
    """
    try:
        code = main()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr, flush=True)
        code = EXIT_INTERRUPTED
    exit_after_freezing(code)
