"""JsonlEmitter: line format, seq numbering, batching, thread safety and the heartbeat thread."""

from __future__ import annotations

import io
import json
import threading
import time
from datetime import datetime
from typing import Any

import numpy as np
import pytest

from gym_gui.workers.jsonl_emitter import JsonlEmitter, dumps_line, to_jsonable


class NotifyingStream(io.BytesIO):
    """A BytesIO that counts flushes and wakes waiters on each write."""

    def __init__(self) -> None:
        super().__init__()
        self.cond = threading.Condition()
        self.flushes = 0

    def write(self, data: Any) -> int:  # type: ignore[override]
        with self.cond:
            n = super().write(data)
            self.cond.notify_all()
            return n

    def flush(self) -> None:
        with self.cond:
            self.flushes += 1

    def records(self) -> list[dict[str, Any]]:
        with self.cond:
            data = self.getvalue()
        return [json.loads(line) for line in data.splitlines()]

    def wait_records(self, predicate: Any, timeout: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                recs = [json.loads(line) for line in self.getvalue().splitlines()]
                if predicate(recs):
                    return recs
                left = deadline - time.monotonic()
                assert left > 0, f"timed out with {len(recs)} records"
                self.cond.wait(left)


def test_common_fields_and_seq_from_one() -> None:
    out = NotifyingStream()
    em = JsonlEmitter(out, run_id="r1", agent_id="a1", max_delay_ms=60_000)
    assert em.seq == 0
    assert em.emit("run_started", {"env_id": "X"}) == 1
    assert em.emit("step", {"reward": 1.5}) == 2
    em.close()
    lines = out.getvalue().split(b"\n")
    assert lines[-1] == b"" and len(lines) == 3
    first = json.loads(lines[0])
    assert list(first)[:6] == ["v", "kind", "run_id", "agent_id", "seq", "ts"]
    assert first["v"] == 1 and first["kind"] == "run_started" and first["seq"] == 1
    assert first["env_id"] == "X"
    assert datetime.fromisoformat(first["ts"]).utcoffset().total_seconds() == 0
    assert b" " not in lines[1]  # compact separators
    assert out.flushes == 2  # run_started at once, the step at close


def test_fields_cannot_override_common_fields() -> None:
    out = NotifyingStream()
    em = JsonlEmitter(out, run_id="r1", agent_id="a1")
    em.emit("step", {"seq": 99, "run_id": "evil", "x": 1})
    rec = out.records()[0]
    assert rec["seq"] == 1 and rec["run_id"] == "r1" and rec["x"] == 1


def test_numpy_and_non_finite_values_become_json() -> None:
    rec = {
        "a": np.int64(3),
        "b": np.float32(0.5),
        "c": np.array([1, 2]),
        "d": np.bool_(True),
        "e": (1, 2),
        "f": float("nan"),
        "g": {"h": np.array([float("inf"), 1.0])},
    }
    line = dumps_line(rec)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    back = json.loads(line)
    assert back == {"a": 3, "b": 0.5, "c": [1, 2], "d": True, "e": [1, 2], "f": None, "g": {"h": [None, 1.0]}}
    assert to_jsonable({1: {2, 3}, "b": b"x"}) == {"1": [2, 3], "b": "x"}


def test_batching_holds_lines_until_full_or_flushed() -> None:
    out = NotifyingStream()
    em = JsonlEmitter(out, run_id="r", agent_id="a", batch_lines=4, max_delay_ms=60_000)
    em.emit("run_started", {})  # a lifecycle record is written at once
    assert len(out.records()) == 1
    for _ in range(3):
        em.emit("step", {})
    assert len(out.records()) == 1
    em.emit("step", {})
    assert len(out.records()) == 5
    em.emit("step", {})
    em.emit("episode", {}, flush=True)
    assert len(out.records()) == 7
    em.emit("step", {})
    em.close()
    assert [r["seq"] for r in out.records()] == list(range(1, 9))
    with pytest.raises(RuntimeError):
        em.emit("step", {})


def test_stale_batch_is_flushed_by_background_thread() -> None:
    out = NotifyingStream()
    em = JsonlEmitter(out, run_id="r", agent_id="a", batch_lines=1000, max_delay_ms=20)
    em.emit("run_started", {})
    em.start_heartbeat(0, lambda: {})  # no heartbeats, but the thread flushes stale batches
    em.emit("step", {})
    recs = out.wait_records(lambda r: len(r) == 2)
    assert recs[1]["kind"] == "step"
    em.close()


def test_threads_never_interleave_and_seq_follows_line_order() -> None:
    out = NotifyingStream()
    em = JsonlEmitter(out, run_id="r", agent_id="a", batch_lines=7)
    big = "x" * 5000
    n_threads, per_thread = 4, 300

    def work(tid: int) -> None:
        for i in range(per_thread):
            em.emit("step", {"tid": tid, "i": i, "pad": big})

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    em.close()
    recs = out.records()  # json.loads fails on any interleaved line
    assert [r["seq"] for r in recs] == list(range(1, n_threads * per_thread + 1))
    for tid in range(n_threads):
        assert [r["i"] for r in recs if r["tid"] == tid] == list(range(per_thread))


def test_heartbeat_thread_emits_at_interval_and_stops() -> None:
    out = NotifyingStream()
    em = JsonlEmitter(out, run_id="r", agent_id="a")
    calls = []

    def stats() -> dict[str, Any]:
        calls.append(threading.current_thread().name)
        return {"steps_done": len(calls)}

    em.emit("run_started", {})
    t0 = time.monotonic()
    em.start_heartbeat(0.05, stats)
    recs = out.wait_records(lambda r: sum(x["kind"] == "heartbeat" for x in r) >= 3)
    elapsed = time.monotonic() - t0
    em.stop_heartbeat()
    em.emit("run_completed", {"outcome": "completed"})
    em.close()
    recs = out.records()
    beats = [r for r in recs if r["kind"] == "heartbeat"]
    assert elapsed >= 0.15 - 0.01  # three beats need three intervals
    assert beats[0]["interval_s"] == 0.05 and beats[0]["stats"] == {"steps_done": 1}
    assert recs[-1]["kind"] == "run_completed"  # nothing after stop_heartbeat
    assert [r["seq"] for r in recs] == list(range(1, len(recs) + 1))
    assert set(calls) == {"jsonl-heartbeat"}


def test_write_error_propagates() -> None:
    class Broken(io.RawIOBase):
        def write(self, _data: Any) -> int:
            raise BrokenPipeError("gone")

    em = JsonlEmitter(Broken(), run_id="r", agent_id="a")  # type: ignore[arg-type]
    with pytest.raises(BrokenPipeError):
        em.emit("step", {})
    assert isinstance(em.write_error, BrokenPipeError)


def test_rejects_empty_ids() -> None:
    with pytest.raises(ValueError):
        JsonlEmitter(io.BytesIO(), run_id="", agent_id="a")
