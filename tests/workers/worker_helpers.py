"""Helpers for the worker tests: run workers as real subprocesses and check their JSONL streams.

A uniquely named module (not conftest) so tests import it directly without package clashes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pytest

REPO = Path(__file__).resolve().parents[2]
COMMON_FIELDS = ("v", "kind", "run_id", "agent_id", "seq", "ts")
KINDS = {"run_started", "heartbeat", "step", "episode", "run_completed"}


def worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("PYGAME_HIDE_SUPPORT_PROMPT", None)  # the worker must keep pygame's greeting off stdout itself
    return env


class Finished:
    """A worker that ran to its end."""

    def __init__(self, returncode: int, stdout: bytes, stderr: str) -> None:
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.records = parse_jsonl(stdout)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["kind"] == kind]


def parse_jsonl(stdout: bytes) -> list[dict[str, Any]]:
    """Every line must be one complete JSON object, canonical v1, newline-terminated."""
    if not stdout:
        return []
    assert stdout.endswith(b"\n"), f"last line is not newline-terminated: {stdout[-200:]!r}"
    records = []
    for n, raw in enumerate(stdout.split(b"\n")[:-1], 1):
        text = raw.decode("utf-8")
        try:
            rec = json.loads(text, parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:  # pragma: no cover - the failure message is the point
            raise AssertionError(f"stdout line {n} is not JSON: {text[:300]!r}") from exc
        assert isinstance(rec, dict), f"line {n} is not an object"
        assert text in (json.dumps(rec, separators=(",", ":")), _orjson_text(rec)), f"line {n} is not compact JSON"
        records.append(rec)
    return records


def _orjson_text(rec: dict[str, Any]) -> str:
    """The compact text orjson writes for ``rec`` (the emitter's encoder when it is installed)."""
    try:
        import orjson
    except ImportError:  # pragma: no cover - the stdlib form is then the only one
        return ""
    return orjson.dumps(rec).decode("utf-8")


def _reject_constant(name: str) -> Any:
    raise AssertionError(f"non-finite number {name} in JSONL")


def run_worker(module: str, *args: str, timeout: float = 60) -> Finished:
    """Run ``python -m module args`` to completion."""
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env=worker_env(),
        timeout=timeout,
    )
    return Finished(proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace"))


class LiveWorker:
    """A running worker whose stdout lines are collected by a reader thread."""

    def __init__(self, module: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=REPO,
            env=worker_env(),
        )
        self._chunks: list[bytes] = []
        self._records: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._eof = False
        self._stderr: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._err_reader = threading.Thread(target=self._read_err, daemon=True)
        self._err_reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self._chunks.append(line)
                if line.endswith(b"\n"):
                    self._records.append(json.loads(line))
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line)

    def wait_for(self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 20) -> None:
        """Block until ``predicate(records so far)`` holds; fail on timeout or early EOF."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self._records):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out; {len(self._records)} records so far")
                if self._eof:
                    raise AssertionError(f"worker ended first; {len(self._records)} records")
                self._cond.wait(left)

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.proc.send_signal(signum)

    def finish(self, timeout: float = 20) -> Finished:
        rc = self.proc.wait(timeout)
        self._reader.join(timeout)
        self._err_reader.join(timeout)
        return Finished(rc, b"".join(self._chunks), b"".join(self._stderr).decode("utf-8", "replace"))

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def check_common(records: list[dict[str, Any]]) -> None:
    """Common fields, one stream, seq strictly increasing from 1, ISO UTC timestamps."""
    assert records, "no records"
    run_id, agent_id = records[0]["run_id"], records[0]["agent_id"]
    for i, rec in enumerate(records, 1):
        for field in COMMON_FIELDS:
            assert field in rec, f"record {i} lacks {field}: {rec}"
        assert rec["v"] == 1
        assert rec["kind"] in KINDS, rec["kind"]
        assert (rec["run_id"], rec["agent_id"]) == (run_id, agent_id)
        assert rec["seq"] == i, f"seq {rec['seq']} at position {i}"
        ts = datetime.fromisoformat(rec["ts"])
        assert ts.utcoffset() == timezone.utc.utcoffset(None)
    assert records[0]["kind"] == "run_started"


def check_steps_and_episodes(records: list[dict[str, Any]]) -> None:
    """Episodes contiguous from 0; each episode's steps contiguous; totals consistent."""
    steps = [r for r in records if r["kind"] == "step"]
    episodes = [r for r in records if r["kind"] == "episode"]
    assert [e["episode_index"] for e in episodes] == list(range(len(episodes)))
    assert sum(e["length"] for e in episodes) == len(steps)
    by_episode: dict[int, list[dict[str, Any]]] = {}
    for s in steps:
        by_episode.setdefault(s["episode_index"], []).append(s)
    assert sorted(by_episode) == [e["episode_index"] for e in episodes]
    last_seq = 0
    for ep in episodes:
        ep_steps = by_episode[ep["episode_index"]]
        assert [s["step_index"] for s in ep_steps] == list(range(ep["length"]))
        assert ep_steps[0]["seq"] > last_seq and ep_steps[-1]["seq"] < ep["seq"]
        last_seq = ep["seq"]
        assert ep["total_reward"] == pytest.approx(sum(s["reward"] for s in ep_steps))
        for s in ep_steps[:-1]:
            assert not s["terminated"] and not s["truncated"]
        if ep["outcome"] != "cancelled":
            assert (ep["terminated"], ep["truncated"]) == (ep_steps[-1]["terminated"], ep_steps[-1]["truncated"])
            assert ep["terminated"] or ep["truncated"]
        for s in ep_steps:
            assert isinstance(s["reward"], float)
            assert isinstance(s["info"], dict)
        assert isinstance(ep["metadata"], dict)
        assert ep["outcome"] in {"success", "failure", "truncated", "cancelled"}
