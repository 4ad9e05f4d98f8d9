"""Worker plumbing: stdout ownership, pacing, cancellation, progress stats, env id resolution."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import pytest

from gym_gui.workers.envs import resolve_env_id
from gym_gui.workers.jsonl_emitter import DEFAULT_BATCH_LINES, DEFAULT_MAX_DELAY_MS, JsonlEmitter
from gym_gui.workers.runtime import (
    PACED_MAX_DELAY_MS,
    CancelToken,
    Progress,
    RunResult,
    SimulatedCrash,
    StepPacer,
    new_run_id,
    run_session,
)
from worker_helpers import REPO, worker_env


def test_claim_stdout_sends_stray_output_to_stderr() -> None:
    code = textwrap.dedent(
        """
        import os, sys
        from gym_gui.workers.runtime import claim_stdout
        out = claim_stdout()
        print("stray print")
        os.write(1, b"stray fd write\\n")
        out.write(b'{"v":1}\\n')
        out.flush()
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=REPO, env=worker_env(), timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b'{"v":1}\n'
    assert b"stray print" in proc.stderr and b"stray fd write" in proc.stderr


def test_step_pacer_holds_the_rate() -> None:
    cancel = CancelToken()
    pacer = StepPacer(200.0, cancel)
    t0 = time.monotonic()
    for _ in range(20):
        assert pacer.wait()
    elapsed = time.monotonic() - t0
    assert 0.09 <= elapsed < 0.5  # 20 steps at 200 Hz = 0.1 s


def test_step_pacer_wakes_on_cancel() -> None:
    cancel = CancelToken()
    pacer = StepPacer(0.5, cancel)  # next step due in 2 s
    threading.Timer(0.05, cancel.cancel).start()
    t0 = time.monotonic()
    assert pacer.wait() is False
    assert time.monotonic() - t0 < 1.5
    assert StepPacer(0, cancel).wait() is False


def test_progress_snapshot() -> None:
    p = Progress()
    snap = p.snapshot()
    assert snap["episodes_done"] == 0 and snap["mean_return_last_100"] is None
    p.steps_done = 10
    p.episode_finished(1.0, epsilon=0.5)
    p.episode_finished(0.0)
    snap = p.snapshot()
    assert snap["steps_done"] == 10 and snap["episodes_done"] == 2
    assert snap["mean_return_last_100"] == 0.5 and snap["epsilon"] == 0.5
    assert snap["steps_per_s"] > 0
    assert p.snapshot()["steps_per_s"] == 0  # measured since the previous snapshot
    for i in range(1000):
        p.episode_finished(float(i))
    assert p.mean_return(100) == pytest.approx(sum(range(900, 1000)) / 100)


def test_run_ids_are_unique() -> None:
    ids = {new_run_id("x") for _ in range(50)}
    assert len(ids) == 50 and all(i.startswith("x-") for i in ids)


def test_resolve_env_id_aliases() -> None:
    taxi = resolve_env_id("Taxi-v3")
    assert taxi in ("Taxi-v3", "Taxi-v4") and resolve_env_id("Taxi-v4") == taxi
    assert resolve_env_id("Taxi") == taxi
    assert resolve_env_id("CliffWalking-v0") == resolve_env_id("CliffWalking-v1")
    assert resolve_env_id("FrozenLake-v1") == "FrozenLake-v1"
    with pytest.raises(KeyError):
        resolve_env_id("NoSuchEnv-v0")


def _session(body: Any, out: io.BytesIO, stats: dict[str, Any] | None = None, *, unthrottled: bool = True) -> int:
    return run_session(
        out=out,  # type: ignore[arg-type]
        run_id="r",
        agent_id="a",
        run_started={"env_id": "E", "config": {}},
        body=body,
        stats_fn=lambda: dict(stats or {"steps_done": 3}),
        heartbeat_interval_s=0,
        unthrottled=unthrottled,
        cancel=CancelToken(),
    )


def test_session_error_writes_failed_run_completed(capsys: pytest.CaptureFixture[str]) -> None:
    def body(emitter: JsonlEmitter, _cancel: CancelToken) -> RunResult:
        emitter.emit("step", {"episode_index": 0})
        raise ValueError("boom")

    out = io.BytesIO()
    assert _session(body, out) == 1
    recs = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["kind"] for r in recs] == ["run_started", "step", "run_completed"]
    assert recs[0]["pid"] == os.getpid()
    assert recs[-1]["outcome"] == "failed"
    assert recs[-1]["summary"]["error"] == "ValueError: boom" and recs[-1]["summary"]["steps_done"] == 3
    assert "Traceback" in capsys.readouterr().err


def test_session_simulated_crash_writes_no_run_completed(capsys: pytest.CaptureFixture[str]) -> None:
    def body(emitter: JsonlEmitter, _cancel: CancelToken) -> RunResult:
        emitter.emit("step", {})  # batched (unthrottled): still flushed before the crash exit
        raise SimulatedCrash("planned")

    out = io.BytesIO()
    assert _session(body, out) == 1
    assert [json.loads(line)["kind"] for line in out.getvalue().splitlines()] == ["run_started", "step"]
    assert "SimulatedCrash: planned" in capsys.readouterr().err


def test_a_paced_session_batches_its_lines_for_at_most_paced_max_delay_ms() -> None:
    seen: list[tuple[int, float]] = []

    def body(emitter: JsonlEmitter, _cancel: CancelToken) -> RunResult:
        seen.append((emitter.batch_lines, emitter.max_delay_ms))
        for t in range(10):
            emitter.emit("step", {"episode_index": 0, "step_index": t})
        return RunResult("completed", {})

    out = io.BytesIO()
    assert _session(body, out, unthrottled=False) == 0
    assert seen == [(DEFAULT_BATCH_LINES, PACED_MAX_DELAY_MS)] and PACED_MAX_DELAY_MS < DEFAULT_MAX_DELAY_MS
    kinds = [json.loads(line)["kind"] for line in out.getvalue().splitlines()]
    assert kinds == ["run_started"] + ["step"] * 10 + ["run_completed"]  # every line written by the end


def test_session_completed() -> None:
    out = io.BytesIO()
    assert _session(lambda _e, _c: RunResult("completed", {"episodes": 0}), out) == 0
    last = json.loads(out.getvalue().splitlines()[-1])
    assert last["kind"] == "run_completed" and last["outcome"] == "completed"
    assert last["summary"]["episodes"] == 0 and last["summary"]["duration_s"] >= 0


def test_worker_exits_quietly_when_its_reader_goes_away() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gym_gui.workers.q_learning", "--episodes", "1000000", "--step-rate-hz", "500"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env=worker_env(),
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert json.loads(proc.stdout.readline())["kind"] == "run_started"
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=20) == 1
    assert "stdout reader went away" in err and "Exception ignored" not in err
