"""A worker started on the main thread gets its parent-death signal from a bare exec wrapper, not a
``preexec_fn`` (Python between fork and exec can deadlock while other threads run): it is the same
process as the worker would be, and a program that cannot start is refused as subprocess refuses it.
The kill -9 cases are in tests/reliability/test_orphans.py."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from gym_gui.ingest import parent_death
from gym_gui.ingest.worker_process import start_worker

LINUX = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
SHOW = "import json, os, sys; print(json.dumps([os.getpid(), os.getcwd(), sys.argv, os.environ.get('MARK')]))"


def _shown(proc: subprocess.Popen[bytes]) -> list[object]:
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    return json.loads(out)


@LINUX
def test_the_worker_runs_as_itself_with_its_own_argv_cwd_and_env(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", SHOW, "one", "two"]
    wrapped = parent_death.parent_death_argv(argv)
    assert wrapped[:4] == [sys.executable, "-I", "-S", "-c"] and wrapped[-len(argv):] == argv
    proc = start_worker(argv, env=dict(os.environ, MARK="m1"), cwd=str(tmp_path))
    pid, cwd, shown_argv, mark = _shown(proc)
    assert pid == proc.pid  # exec'd in place: the pid the proxy watches is the worker's
    assert cwd == str(tmp_path) and shown_argv == ["-c", "one", "two"] and mark == "m1"


def test_off_the_main_thread_the_argv_is_left_as_it_is() -> None:
    argv = [sys.executable, "-c", "pass"]
    got: list[list[str]] = []
    t = threading.Thread(target=lambda: got.append(parent_death.parent_death_argv(argv)))
    t.start()
    t.join(10)
    assert got == [argv]


@LINUX
def test_a_program_that_cannot_start_is_refused_as_subprocess_refuses_it(tmp_path: Path) -> None:
    script = tmp_path / "worker.sh"
    script.write_text("#!/bin/sh\necho started\n")
    with pytest.raises(FileNotFoundError, match="no-such-program-here"):
        start_worker(["no-such-program-here"], env=None, cwd=None)
    with pytest.raises(FileNotFoundError):
        start_worker(["./worker.sh"], env=None, cwd=None)  # not in this directory
    with pytest.raises(PermissionError):
        start_worker(["./worker.sh"], env=None, cwd=str(tmp_path))  # not executable
    with pytest.raises(PermissionError):
        start_worker([str(tmp_path)], env=None, cwd=None)  # a directory
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    proc = start_worker(["./worker.sh"], env=None, cwd=str(tmp_path))  # relative to cwd, as exec takes it
    out, _ = proc.communicate(timeout=30)
    assert out == b"started\n" and proc.returncode == 0
    proc = start_worker(["sh", "-c", "echo $PATH_MARK"], env=dict(os.environ, PATH_MARK="p"), cwd=None)  # on PATH
    out, _ = proc.communicate(timeout=30)
    assert out == b"p\n"
