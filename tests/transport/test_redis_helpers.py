"""The transport tests' redis-server ends with the test process that started it, also when that
process crashes or is killed (no fixture teardown runs then): no server outlives a test run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from polling import process_gone, wait_until
from redis_helpers import redis_server_binary

HERE = Path(__file__).resolve().parent


def test_a_test_servers_redis_ends_with_the_process_that_started_it(tmp_path: Path) -> None:
    binary = redis_server_binary()
    starter = (f"import sys, threading; sys.path[:0] = [{str(HERE)!r}, {str(HERE.parent)!r}]\n"
               "from pathlib import Path\n"
               "from redis_helpers import RedisServer\n"
               f"server = RedisServer({binary!r}, Path({str(tmp_path)!r}))\n"
               "server.start()\n"
               "print(server.proc.pid, flush=True)\n"
               "threading.Event().wait()  # a test process that then crashes\n")
    proc = subprocess.Popen([sys.executable, "-c", starter], stdout=subprocess.PIPE, text=True)
    pid = None
    try:
        assert proc.stdout is not None
        pid = int(proc.stdout.readline())
        assert not process_gone(pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        wait_until(lambda: process_gone(pid), 10, message=f"redis-server {pid} to end with its parent")
    finally:
        proc.kill()
        proc.wait()
        if pid is not None and not process_gone(pid):  # (the failure under test: do not leave it running)
            os.kill(pid, signal.SIGKILL)
