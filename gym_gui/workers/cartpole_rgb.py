"""CartPole worker with RGB frames, emitting canonical JSONL v1 for the video renderer.

Run as ``python -m gym_gui.workers.cartpole_rgb --episodes 20``. Uses CartPole-v1 with
``render_mode="rgb_array"``; steps carry an "rgb" render payload (a PNG of the frame downscaled to
about ``--frame-width`` pixels, base64) on every ``--frame-every``-th step of an episode and on its
last step, ``null`` otherwise.

Policies (``--policy``):

- ``hill-climb`` (default), a real if simple learner: a linear policy ``push right iff w . obs > 0``.
  Each episode runs a candidate ``w = best_w + noise * N(0, I)``; a candidate that does at least as
  well as the best becomes the best and halves the noise, a worse one doubles it (bounded). It
  usually balances the pole for the full 500 steps within a few dozen episodes.
- ``heuristic``: ``push right iff angle + 0.5 * angular_velocity > 0``, which balances from the start.

An episode's outcome is ``failure`` when the pole falls (terminated), ``success`` when it reaches the
time limit with at least 475 steps (CartPole-v1's reward threshold) and ``truncated`` when a
shorter ``--max-steps-per-episode`` cut it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any, Sequence

from gym_gui.workers.runtime import (
    CancelToken,
    Progress,
    RunResult,
    StepPacer,
    add_common_arguments,
    claim_stdout,
    configure_logging,
    new_run_id,
    run_session_for_args,
)
from gym_gui.workers.records import (
    crash_if_requested,
    episode_fields,
    run_started_fields,
    summary_fields,
)

__all__ = ["main", "build_parser", "HillClimbPolicy", "heuristic_action"]

log = logging.getLogger("gym_gui.workers.cartpole_rgb")

WORKER_NAME = "gym_gui.workers.cartpole_rgb"
WORKER_VERSION = "1.0"
SUCCESS_LENGTH = 475


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser. Main thread, never blocks."""
    p = argparse.ArgumentParser(
        prog="python -m gym_gui.workers.cartpole_rgb",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="CartPole with rgb_array frames; JSONL telemetry with PNG frames on stdout.",
    )
    p.add_argument("--env", default="CartPole-v1", choices=("CartPole-v1", "CartPole-v0"))
    p.add_argument("--policy", default="hill-climb", choices=("hill-climb", "heuristic"))
    p.add_argument(
        "--frame-every",
        type=int,
        default=1,
        help="attach a frame to every N-th step of an episode (and always to its last step)",
    )
    p.add_argument("--frame-width", type=int, default=160, help="approximate width of the frames in pixels")
    add_common_arguments(p, default_episodes=20)
    return p


def heuristic_action(obs: Sequence[float]) -> int:
    """Push right (1) iff the pole leans or rotates to the right. Any thread."""
    return int(obs[2] + 0.5 * obs[3] > 0.0)


class HillClimbPolicy:
    """Random-search hill climbing over a linear policy. Owned by the training thread."""

    def __init__(self, seed: int, *, noise: float = 1.0, min_noise: float = 0.01, max_noise: float = 2.0) -> None:
        import numpy as np

        self._np = np
        self.rng = np.random.default_rng(seed)
        self.best_w = self.rng.uniform(-1.0, 1.0, 4)
        self.best_return = -float("inf")
        self.noise = noise
        self.min_noise, self.max_noise = min_noise, max_noise
        self.w = self.best_w.copy()

    def begin_episode(self, episode_index: int) -> None:
        """Pick the candidate weights for the next episode."""
        if episode_index > 0:
            self.w = self.best_w + self.noise * self.rng.standard_normal(4)

    def act(self, obs: Any) -> int:
        """The candidate policy's action."""
        return int(float(self._np.dot(self.w, obs)) > 0.0)

    def end_episode(self, total_reward: float) -> bool:
        """Keep or reject the candidate; return True if it became the best."""
        if total_reward >= self.best_return:
            self.best_w, self.best_return = self.w.copy(), total_reward
            self.noise = max(self.min_noise, self.noise / 2)
            return True
        self.noise = min(self.max_noise, self.noise * 2)
        return False


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 done or cancelled, 1 failed, 2 usage). Main thread."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.frame_every < 1:
        parser.error("--frame-every must be >= 1")
    if args.frame_width < 8:
        parser.error("--frame-width must be >= 8")
    out = claim_stdout()  # from here on only JSONL reaches stdout (--help above still prints there)
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    configure_logging(args.log_level)

    import gymnasium as gym

    from gym_gui.workers.rgb_frames import rgb_payload

    max_steps = args.max_steps_per_episode or gym.spec(args.env).max_episode_steps or 500
    try:
        env = gym.make(args.env, render_mode="rgb_array", max_episode_steps=max_steps)
    except Exception as exc:
        print(f"cartpole_rgb: error: cannot create {args.env}: {exc}", file=sys.stderr)
        return 2
    run_id = args.run_id or new_run_id("cartpole")
    config = {
        "algorithm": args.policy,
        "episodes": args.episodes,
        "seed": args.seed,
        "max_steps_per_episode": max_steps,
        "frame_every": args.frame_every,
        "frame_width": args.frame_width,
        "step_rate_hz": args.step_rate_hz,
        "heartbeat_interval_s": args.heartbeat_interval_s,
    }
    run_started = run_started_fields(
        env, env_id=args.env, config=config, render_kind="rgb", env_family="CartPole",
        worker={"name": WORKER_NAME, "version": WORKER_VERSION, "gymnasium": gym.__version__},
    )
    progress = Progress()
    cancel = CancelToken()
    policy = HillClimbPolicy(args.seed) if args.policy == "hill-climb" else None

    def body(emitter: Any, cancel: CancelToken) -> RunResult:
        pacer = StepPacer(args.step_rate_hz, cancel)
        frames = 0
        frame_bytes = 0
        max_frame_bytes = 0
        total_return = 0.0
        successes = 0
        for ep in range(args.episodes):
            if cancel.cancelled:
                break
            if policy is not None:
                policy.begin_episode(ep)
            obs, _ = env.reset(seed=args.seed + ep)
            ep_return = 0.0
            t = 0
            terminated = truncated = False
            while True:
                if not pacer.wait():
                    break
                action = policy.act(obs) if policy is not None else heuristic_action(obs)
                obs, reward, terminated, truncated, info = env.step(action)
                terminated, truncated = bool(terminated), bool(truncated)
                ep_return += float(reward)
                payload = None
                if t % args.frame_every == 0 or terminated or truncated:
                    payload = rgb_payload(env.render(), target_width=args.frame_width)
                    size = len(payload["data_b64"])
                    frames += 1
                    frame_bytes += size
                    max_frame_bytes = max(max_frame_bytes, size)
                emitter.emit_step(ep, t, action, obs.tolist(), float(reward), terminated, truncated, info, payload)
                t += 1
                progress.steps_done += 1
                crash_if_requested(args.fail_after_steps, progress)
                if terminated or truncated:
                    break
            if t == 0:
                break
            done = terminated or truncated
            if not done:
                outcome = "cancelled"
            elif terminated:
                outcome = "failure"
            else:
                outcome = "success" if t >= SUCCESS_LENGTH else "truncated"
            metadata: dict[str, Any] = {"episode_seed": args.seed + ep, "policy": args.policy}
            if policy is not None:
                improved = policy.end_episode(ep_return) if done else False
                metadata.update(
                    {
                        "weights": policy.w.tolist(),
                        "improved": improved,
                        "best_return": policy.best_return,
                        "noise": policy.noise,
                    }
                )
            emitter.emit("episode", episode_fields(ep, ep_return, t, terminated, truncated, outcome, metadata),
                         flush=True if not done else None)
            total_return += ep_return
            successes += outcome == "success"
            progress.episode_finished(ep_return, frames=frames)
            if not done:
                break
        summary = summary_fields(progress, total_return, successes)
        summary.update({
            "best_return": policy.best_return if policy is not None and progress.episodes_done else None,
            "frames": frames,
            "mean_frame_b64_bytes": frame_bytes / frames if frames else None,
            "max_frame_b64_bytes": max_frame_bytes,
        })
        return RunResult("cancelled" if cancel.cancelled else "completed", summary)

    try:
        return run_session_for_args(args, out=out, run_id=run_id, run_started=run_started, body=body,
                                    progress=progress, cancel=cancel)
    finally:
        env.close()


if __name__ == "__main__":
    sys.exit(main())
