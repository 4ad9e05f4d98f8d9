"""JsonlEmitter batching: on by default, bounded in time on the emitting thread and by the flusher
thread when the loop stops, flushed at lifecycle records, close and interpreter exit."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from gym_gui.workers.jsonl_emitter import DEFAULT_BATCH_LINES, DEFAULT_MAX_DELAY_MS, JsonlEmitter
from short_writes import Trickle

REPO = Path(__file__).resolve().parents[2]
LONG_MS = 60_000.0  # a bound no test run reaches: lines wait for another reason to be written


class TimedStream(io.BytesIO):
    """A BytesIO that notes the monotonic time of every write and wakes waiters."""

    def __init__(self) -> None:
        super().__init__()
        self.cond = threading.Condition()
        self.write_times: list[float] = []

    def write(self, data: Any) -> int:  # type: ignore[override]
        with self.cond:
            n = super().write(data)
            self.write_times.append(time.monotonic())
            self.cond.notify_all()
            return n

    def lines(self) -> list[dict[str, Any]]:
        with self.cond:
            return [json.loads(line) for line in self.getvalue().splitlines()]

    def wait_lines(self, count: int, timeout_s: float = 5.0) -> float:
        """Wait until ``count`` lines are written; return the monotonic time of that write."""
        with self.cond:
            ok = self.cond.wait_for(lambda: self.getvalue().count(b"\n") >= count, timeout_s)
            assert ok, f"only {len(self.getvalue().splitlines())} lines after {timeout_s} s"
            return self.write_times[-1]


def wait_clock_past(deadline: float) -> None:
    """Let the monotonic clock pass ``deadline`` (the loop doing something else for a while)."""
    pause = threading.Event()
    while time.monotonic() <= deadline:
        pause.wait(max(0.0, deadline - time.monotonic()) + 0.001)


def test_defaults_batch_and_bound_the_wait() -> None:
    assert DEFAULT_BATCH_LINES >= 64 and 0 < DEFAULT_MAX_DELAY_MS <= 10
    em = JsonlEmitter(io.BytesIO(), run_id="r", agent_id="a")
    assert em.max_delay_ms == DEFAULT_MAX_DELAY_MS
    em.close()


def test_a_full_batch_is_one_write() -> None:
    out = TimedStream()
    em = JsonlEmitter(out, run_id="r", agent_id="a", max_delay_ms=LONG_MS)
    em.emit("run_started", {})
    for i in range(DEFAULT_BATCH_LINES - 1):
        em.emit("step", {"i": i})
    assert em.pending_lines == DEFAULT_BATCH_LINES - 1 and len(out.write_times) == 1
    em.emit("step", {"i": -1})
    assert em.pending_lines == 0 and len(out.write_times) == 2 and em.batches_written == 2
    em.close()
    assert [r["seq"] for r in out.lines()] == list(range(1, DEFAULT_BATCH_LINES + 2))


def test_lifecycle_and_heartbeat_records_are_written_at_once_steps_and_episodes_wait() -> None:
    out = TimedStream()
    em = JsonlEmitter(out, run_id="r", agent_id="a", max_delay_ms=LONG_MS)
    em.emit("run_started", {})
    assert em.pending_lines == 0
    em.emit("step", {})
    em.emit("episode", {"episode_index": 0})
    assert em.pending_lines == 2
    em.emit("heartbeat", {"stats": {}})
    assert em.pending_lines == 0 and len(out.lines()) == 4
    em.emit("step", {})
    em.emit("step", {}, flush=False)
    assert em.pending_lines == 2
    em.emit("step", {}, flush=True)
    assert em.pending_lines == 0
    em.emit("step", {})
    em.flush()
    assert em.pending_lines == 0
    em.emit("step", {})
    em.emit("run_completed", {"outcome": "completed"})
    assert em.pending_lines == 0
    em.close()
    assert [r["kind"] for r in out.lines()][-2:] == ["step", "run_completed"]


def test_a_record_emitted_after_max_delay_writes_the_batch_without_any_thread() -> None:
    out = TimedStream()
    threads = threading.active_count()
    em = JsonlEmitter(out, run_id="r", agent_id="a", max_delay_ms=200)
    em.emit("run_started", {})
    opened = time.monotonic()
    em.emit("step", {"i": 0})
    em.emit("step", {"i": 1})
    if time.monotonic() - opened < 0.15:  # (a stalled machine may take longer than the bound itself)
        assert em.pending_lines == 2
    wait_clock_past(opened + 0.25)
    em.emit("step", {"i": 2})  # the batch is due: this emit writes it, itself included
    assert em.pending_lines == 0 and [r.get("i") for r in out.lines()] == [None, 0, 1, 2]
    assert threading.active_count() == threads
    em.close()


def test_a_slow_loop_writes_every_line_at_once() -> None:
    out = TimedStream()
    em = JsonlEmitter(out, run_id="r", agent_id="a", max_delay_ms=20)
    em.emit("run_started", {})
    for i in range(5):
        wait_clock_past(time.monotonic() + 0.03)  # longer than the bound between two records
        em.emit("step", {"i": i})
        assert em.pending_lines == 0, "a line of a slow loop waited for the next one"
    assert len(out.write_times) == 6
    em.close()


def test_the_flusher_writes_a_waiting_batch_when_the_loop_stops() -> None:
    out = TimedStream()
    em = JsonlEmitter(out, run_id="r", agent_id="a", max_delay_ms=30)
    em.emit("run_started", {})
    started = time.monotonic()
    em.start_flusher()
    em.emit("step", {})  # then the loop emits nothing more
    written_at = out.wait_lines(2)
    waited_s = written_at - started
    assert 0.025 <= waited_s < 5.0  # not before the bound; the thread wrote it
    assert out.lines()[1]["kind"] == "step" and em.pending_lines == 0
    em.close()


def test_the_flusher_sleeps_while_nothing_waits() -> None:
    out = TimedStream()
    em = JsonlEmitter(out, run_id="r", agent_id="a", batch_lines=1, max_delay_ms=5)
    em.emit("run_started", {})
    em.start_flusher()
    idle = threading.Event()
    for i in range(200):  # (with one line per batch its first look parks it: nothing waits, ever)
        em.emit("step", {"i": i})  # batch_lines=1: nothing ever waits, nothing to wake it for
    before = em.flusher_wakeups
    idle.wait(0.1)  # twenty times the bound
    assert em.flusher_wakeups == before <= 1
    em.close()
    assert len(out.lines()) == 201


def test_the_flusher_wakes_at_most_once_per_bound_while_the_loop_runs_then_parks() -> None:
    out = TimedStream()
    em = JsonlEmitter(out, run_id="r", agent_id="a", batch_lines=8, max_delay_ms=20)
    em.emit("run_started", {})
    em.start_flusher()
    started = time.monotonic()
    for i in range(20_000):
        em.emit("step", {"i": i})
    busy_s = time.monotonic() - started
    idle = threading.Event()
    deadline = time.monotonic() + 5.0
    settled = -1
    while em.flusher_wakeups != settled and time.monotonic() < deadline:  # it parks within a bound or two
        settled = em.flusher_wakeups
        idle.wait(0.06)
    assert em.flusher_wakeups == settled, "the flusher kept waking while nothing waited"
    assert settled <= 3 + busy_s / 0.020 * 2  # about once per bound while busy (a batch of 8 fills in microseconds)
    assert em.pending_lines == 0
    em.close()
    assert len(out.lines()) == 20_001


def test_the_flusher_is_a_daemon_thread_that_stops() -> None:
    em = JsonlEmitter(io.BytesIO(), run_id="r", agent_id="a")
    em.start_heartbeat(0.5, lambda: {})
    (thread,) = [t for t in threading.enumerate() if t.name == "jsonl-heartbeat"]
    assert thread.daemon and thread.is_alive()
    with pytest.raises(RuntimeError):
        em.start_flusher()
    em.close()
    assert not thread.is_alive()
    em.stop_heartbeat()  # idempotent
    em.close()


def test_heartbeats_write_the_waiting_lines_with_them() -> None:
    out = TimedStream()
    em = JsonlEmitter(out, run_id="r", agent_id="a", max_delay_ms=LONG_MS)
    em.emit("run_started", {})
    em.emit("step", {})
    em.start_heartbeat(0.05, lambda: {"steps_done": 1})
    out.wait_lines(3)
    assert [r["kind"] for r in out.lines()][:3] == ["run_started", "step", "heartbeat"]
    em.close()


def test_a_raw_stream_that_takes_part_of_a_batch_gets_all_of_it() -> None:
    out = Trickle()
    em = JsonlEmitter(out, run_id="r", agent_id="a", max_delay_ms=LONG_MS)  # type: ignore[arg-type]
    em.emit("run_started", {"pad": "x" * 500})
    for i in range(50):
        em.emit("step", {"i": i, "pad": "y" * i})
    em.close()
    records = [json.loads(line) for line in bytes(out.data).splitlines()]
    assert [r["seq"] for r in records] == list(range(1, 52)) and out.calls > 50


def test_a_stream_that_takes_nothing_is_an_error() -> None:
    class Stuck(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, data: Any) -> int:  # type: ignore[override]
            return 0 if len(data) < 10 else 5

    em = JsonlEmitter(Stuck(), run_id="r", agent_id="a")  # type: ignore[arg-type]
    with pytest.raises(BlockingIOError):
        em.emit("run_started", {})
    assert isinstance(em.write_error, BlockingIOError)


def test_bad_arguments() -> None:
    for kwargs in ({"batch_lines": 0}, {"max_delay_ms": -1.0}, {"max_delay_ms": float("nan")},
                   {"max_delay_ms": float("inf")}):
        with pytest.raises(ValueError):
            JsonlEmitter(io.BytesIO(), run_id="r", agent_id="a", **kwargs)  # type: ignore[arg-type]


_AT_EXIT = """
import os, sys
from gym_gui.workers.jsonl_emitter import JsonlEmitter
out = os.fdopen(os.dup(1), "wb", buffering=1 << 16)
em = JsonlEmitter(out, run_id="r", agent_id="a", max_delay_ms=60000)
em.emit("run_started", {})
for i in range(10):
    em.emit("step", {"i": i})
assert em.pending_lines == 10
if sys.argv[1] == "raise":
    raise SystemExit(3)
"""


@pytest.mark.parametrize("how", ["return", "raise"])
def test_waiting_lines_are_written_at_interpreter_exit(how: str) -> None:
    proc = subprocess.run([sys.executable, "-c", _AT_EXIT, how], cwd=REPO, capture_output=True, timeout=60)
    assert proc.returncode == (3 if how == "raise" else 0), proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["seq"] for r in records] == list(range(1, 12))
