"""The Q-learning worker as a real subprocess on real Gymnasium ToyText environments."""

from __future__ import annotations

import signal
from datetime import datetime
from typing import Any, Callable

import gymnasium as gym

from gym_gui.workers.envs import resolve_env_id

from worker_helpers import Finished, LiveWorker, check_common, check_steps_and_episodes, run_worker

MODULE = "gym_gui.workers.q_learning"


def _check_complete_run(run: Finished) -> dict[str, Any]:
    assert run.returncode == 0, run.stderr
    check_common(run.records)
    check_steps_and_episodes(run.records)
    kinds = [r["kind"] for r in run.records]
    assert kinds.count("run_started") == 1 and kinds.count("run_completed") == 1
    assert kinds[-1] == "run_completed"
    return run.records[-1]


def test_frozenlake_learns_and_stream_is_consistent() -> None:
    run = run_worker(MODULE, "--env", "FrozenLake-v1", "--episodes", "400", "--seed", "3",
                     "--run-id", "run-fl", "--agent-id", "agent-7", "--heartbeat-interval-s", "0")
    done = _check_complete_run(run)
    started = run.records[0]
    assert started["run_id"] == "run-fl" and started["agent_id"] == "agent-7"
    assert started["env_id"] == "FrozenLake-v1"
    assert started["config"]["episodes"] == 400 and started["config"]["seed"] == 3
    assert started["config"]["env_kwargs"]["is_slippery"] is False
    assert started["worker"]["name"] == MODULE and isinstance(started["pid"], int)
    assert done["outcome"] == "completed"
    summary = done["summary"]
    assert summary["greedy_success_rate"] >= 0.9
    assert summary["episodes"] == 400 == len(run.of_kind("episode"))
    assert summary["steps"] == len(run.of_kind("step"))
    # Learning shows in the stream too: late episodes succeed far more often than early ones.
    outcomes = [e["outcome"] for e in run.of_kind("episode")]
    assert outcomes[-100:].count("success") > 2 * outcomes[:100].count("success")
    # Grid payload agrees with the env: layout from desc, agent at the observation's cell.
    desc = ["".join(ch.decode() for ch in row) for row in gym.make("FrozenLake-v1").unwrapped.desc]
    for step in run.of_kind("step"):
        grid = step["render_payload"]
        assert grid["kind"] == "grid" and grid["rows"] == 4 and grid["cols"] == 4
        assert grid["cells"] == desc
        assert grid["agent"] == list(divmod(step["observation"], 4))
        assert isinstance(step["action"], int) and 0 <= step["action"] < 4
        cell = desc[grid["agent"][0]][grid["agent"][1]]
        assert step["terminated"] == (cell in "HG")
        assert step["reward"] == (1.0 if cell == "G" else 0.0)
    for ep in run.of_kind("episode"):
        assert {"epsilon", "episode_seed"} <= set(ep["metadata"])
    assert not run.of_kind("heartbeat")  # disabled with 0


def test_taxi_payload_has_passenger_destination_and_walls() -> None:
    run = run_worker(MODULE, "--env", "Taxi-v3", "--episodes", "3", "--max-steps-per-episode", "40",
                     "--eval-episodes", "2")
    done = _check_complete_run(run)
    assert done["summary"]["episodes"] == 3
    assert run.records[0]["env_id"] == resolve_env_id("Taxi-v3")
    if resolve_env_id("Taxi-v3") != "Taxi-v3":
        assert "registered as" in run.stderr  # the rename is reported on stderr, not stdout
    taxi = gym.make(resolve_env_id("Taxi-v3")).unwrapped
    locs = [list(loc) for loc in taxi.locs]
    steps = run.of_kind("step")
    assert len(steps) == 3 * 40 or any(s["terminated"] for s in steps)
    for step in steps:
        grid = step["render_payload"]
        row, col, pass_idx, dest_idx = taxi.decode(step["observation"])
        assert grid["env_family"] == "Taxi" and (grid["rows"], grid["cols"]) == (5, 5)
        assert grid["agent"] == [row, col]
        assert grid["passenger"] == ("in_taxi" if pass_idx == 4 else locs[pass_idx])
        assert grid["destination"] == locs[dest_idx]
        assert grid["walls"] and all(side == "E" for _, _, side in grid["walls"])
        assert set(grid["landmarks"]) == {"R", "G", "Y", "B"}
        assert isinstance(step["info"].get("action_mask"), list)  # numpy array made JSON
    assert all(e["truncated"] or e["terminated"] for e in run.of_kind("episode"))


def test_cliffwalking_short_run() -> None:
    run = run_worker(MODULE, "--env", "CliffWalking-v0", "--episodes", "4", "--max-steps-per-episode", "50",
                     "--eval-episodes", "1")
    done = _check_complete_run(run)
    assert done["outcome"] == "completed"
    for step in run.of_kind("step"):
        grid = step["render_payload"]
        assert grid["env_family"] == "CliffWalking"
        assert grid["cells"][3] == "S" + "C" * 10 + "G"
        assert grid["agent"] == list(divmod(step["observation"], 12))
        assert grid["cells"][grid["agent"][0]][grid["agent"][1]] != "C"  # the cliff sends you back


def test_frozenlake_8x8_slippery_options() -> None:
    run = run_worker(MODULE, "--map-size", "8", "--slippery", "--episodes", "2", "--eval-episodes", "1")
    _check_complete_run(run)
    config = run.records[0]["config"]
    assert config["env_kwargs"]["map_name"] == "8x8" and config["env_kwargs"]["is_slippery"] is True
    assert config["max_steps_per_episode"] == 200
    assert all(s["render_payload"]["rows"] == 8 for s in run.of_kind("step"))


def _count(kind: str, n: int) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda records: sum(r["kind"] == kind for r in records) >= n


def test_heartbeats_arrive_at_the_interval(live_worker: Callable[..., LiveWorker]) -> None:
    w = live_worker(MODULE, "--episodes", "100000", "--step-rate-hz", "100", "--heartbeat-interval-s", "0.2")
    w.wait_for(_count("heartbeat", 4))
    w.signal(signal.SIGTERM)
    run = w.finish()
    assert run.returncode == 0, run.stderr
    check_common(run.records)
    beats = run.of_kind("heartbeat")
    assert len(beats) >= 4
    times = [datetime.fromisoformat(b["ts"]) for b in beats]
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:])]
    assert all(0.1 <= g <= 0.6 for g in gaps), gaps
    started = datetime.fromisoformat(run.records[0]["ts"])
    assert 0.1 <= (times[0] - started).total_seconds() <= 0.6
    for b in beats:
        assert b["interval_s"] == 0.2
        assert {"episodes_done", "steps_done", "steps_per_s", "epsilon"} <= set(b["stats"])
    # Steps keep flowing between beats; stats count up; the step rate limit is honoured.
    assert [b["stats"]["steps_done"] for b in beats] == sorted(b["stats"]["steps_done"] for b in beats)
    assert 40 <= beats[-1]["stats"]["steps_per_s"] <= 130


def test_sigterm_cancels_cleanly(live_worker: Callable[..., LiveWorker]) -> None:
    w = live_worker(MODULE, "--episodes", "100000", "--step-rate-hz", "300", "--heartbeat-interval-s", "0.1")
    w.wait_for(_count("step", 30))
    w.signal(signal.SIGTERM)
    run = w.finish()
    assert run.returncode == 0, run.stderr
    check_common(run.records)
    check_steps_and_episodes(run.records)
    done = run.records[-1]
    assert done["kind"] == "run_completed" and done["outcome"] == "cancelled"
    assert done["summary"]["cancelled_by"] == "SIGTERM"
    assert done["summary"]["steps"] == len(run.of_kind("step"))
    assert done["summary"]["greedy_success_rate"] is None
    assert [r["kind"] for r in run.records].count("run_completed") == 1


def test_sigterm_while_unthrottled(live_worker: Callable[..., LiveWorker]) -> None:
    """Batched output (no rate limit) is still flushed whole before run_completed."""
    w = live_worker(MODULE, "--env", "Taxi-v4", "--episodes", "1000000", "--heartbeat-interval-s", "0.05")
    w.wait_for(_count("step", 500))
    w.signal(signal.SIGTERM)
    run = w.finish()
    assert run.returncode == 0, run.stderr
    check_common(run.records)
    check_steps_and_episodes(run.records)
    assert run.records[-1]["outcome"] == "cancelled"


def test_fail_after_steps_crashes_without_run_completed() -> None:
    run = run_worker(MODULE, "--episodes", "50", "--fail-after-steps", "25")
    assert run.returncode == 1
    assert "Traceback" in run.stderr and "SimulatedCrash" in run.stderr
    check_common(run.records)
    kinds = [r["kind"] for r in run.records]
    assert "run_completed" not in kinds
    assert kinds.count("step") == 25


def test_unknown_env_is_a_usage_error() -> None:
    run = run_worker(MODULE, "--env", "NoSuchEnv-v9")
    assert run.returncode == 2
    assert run.stdout == b""
    assert "NoSuchEnv-v9" in run.stderr
    assert "Traceback" not in run.stderr


def test_unsupported_env_and_bad_args_are_usage_errors() -> None:
    run = run_worker(MODULE, "--env", "CartPole-v1")
    assert run.returncode == 2 and run.stdout == b"" and "not a supported" in run.stderr
    run = run_worker(MODULE, "--episodes", "0")
    assert run.returncode == 2 and run.stdout == b"" and "--episodes" in run.stderr
    run = run_worker(MODULE, "--env", "Taxi-v3", "--map-size", "8")
    assert run.returncode == 2 and run.stdout == b""
