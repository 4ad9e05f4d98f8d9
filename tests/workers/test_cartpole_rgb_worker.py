"""The CartPole RGB worker as a real subprocess: frames decode, stream is consistent."""

from __future__ import annotations

import base64
import signal
import struct
from typing import Callable

import numpy as np

from gym_gui.workers.rgb_frames import PNG_SIGNATURE, decode_png
from worker_helpers import LiveWorker, check_common, check_steps_and_episodes, run_worker

MODULE = "gym_gui.workers.cartpole_rgb"


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == PNG_SIGNATURE and png[12:16] == b"IHDR"
    return struct.unpack(">II", png[16:24])


def test_frames_decode_and_are_compact() -> None:
    run = run_worker(MODULE, "--episodes", "2", "--max-steps-per-episode", "25", "--policy", "heuristic",
                     "--run-id", "cp1", "--heartbeat-interval-s", "0")
    assert run.returncode == 0, run.stderr
    check_common(run.records)  # also proves pygame's greeting stayed off stdout
    check_steps_and_episodes(run.records)
    started, done = run.records[0], run.records[-1]
    assert started["env_id"] == "CartPole-v1" and started["render_kind"] == "rgb"
    assert done["kind"] == "run_completed" and done["outcome"] == "completed"
    steps = run.of_kind("step")
    assert len(steps) == 50 and done["summary"]["frames"] == 50
    frames = []
    for step in steps:
        p = step["render_payload"]
        assert set(p) == {"kind", "width", "height", "encoding", "data_b64"}
        assert (p["kind"], p["encoding"]) == ("rgb", "png")
        png = base64.b64decode(p["data_b64"], validate=True)
        assert len(png) < 20_000
        assert _png_size(png) == (p["width"], p["height"]) == (150, 100)
        pixels = decode_png(png)
        assert pixels.shape == (100, 150, 3)
        frames.append(pixels)
        assert isinstance(step["observation"], list) and len(step["observation"]) == 4
        assert step["action"] in (0, 1) and step["reward"] == 1.0
    # Real rendered scenes: mostly white background, some dark cart pixels, and they change.
    assert (frames[0] == 255).mean() > 0.8 and (frames[0] < 80).any()
    assert any(not np.array_equal(frames[0], f) for f in frames[1:])
    # The heuristic keeps the pole up, so both episodes are cut by the 25-step limit.
    assert [e["outcome"] for e in run.of_kind("episode")] == ["truncated", "truncated"]


def test_frame_every_n_and_last_step_of_episode() -> None:
    run = run_worker(MODULE, "--episodes", "1", "--max-steps-per-episode", "12", "--policy", "heuristic",
                     "--frame-every", "5", "--frame-width", "80")
    assert run.returncode == 0, run.stderr
    steps = run.of_kind("step")
    with_frame = [s["step_index"] for s in steps if s["render_payload"] is not None]
    assert with_frame == [0, 5, 10, 11]
    p = steps[0]["render_payload"]
    assert (p["width"], p["height"]) == (75, 50)


def test_hill_climb_learns_from_failure() -> None:
    """Starting from random weights, the hill climber keeps the pole up longer than it started."""
    run = run_worker(MODULE, "--episodes", "15", "--max-steps-per-episode", "100", "--frame-every", "50",
                     "--seed", "1")
    assert run.returncode == 0, run.stderr
    check_steps_and_episodes(run.records)
    episodes = run.of_kind("episode")
    assert episodes[-1]["metadata"]["best_return"] == max(e["total_reward"] for e in episodes)
    assert max(e["length"] for e in episodes) > episodes[0]["length"]
    assert all(len(e["metadata"]["weights"]) == 4 for e in episodes)


def test_sigterm_and_crash_hook(live_worker: Callable[..., LiveWorker]) -> None:
    w = live_worker(MODULE, "--episodes", "1000", "--policy", "heuristic", "--step-rate-hz", "200")
    w.wait_for(lambda recs: sum(r["kind"] == "step" for r in recs) >= 10)
    w.signal(signal.SIGTERM)
    run = w.finish()
    assert run.returncode == 0, run.stderr
    check_common(run.records)
    check_steps_and_episodes(run.records)
    assert run.records[-1]["outcome"] == "cancelled"
    assert run.of_kind("episode")[-1]["outcome"] == "cancelled"

    crashed = run_worker(MODULE, "--episodes", "3", "--fail-after-steps", "7", "--policy", "heuristic")
    assert crashed.returncode == 1 and "Traceback" in crashed.stderr
    assert [r["kind"] for r in crashed.records].count("step") == 7
    assert "run_completed" not in {r["kind"] for r in crashed.records}
