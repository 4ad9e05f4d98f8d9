"""Tabular Q-learning worker for Gymnasium ToyText environments, emitting canonical JSONL v1.

Run as ``python -m gym_gui.workers.q_learning --env FrozenLake-v1 --episodes 500``. Writes JSONL
records to stdout only (run_started, step with a grid render payload, episode, heartbeat,
run_completed; see docs/telemetry-jsonl.md) and diagnostics to stderr only.

The learner is standard one-step Q-learning with epsilon-greedy exploration (ties broken at
random) and a linear epsilon decay from ``--epsilon-start`` to ``--epsilon-end`` over the first
``--epsilon-decay-fraction`` of the episodes. After training (not after a cancel) the greedy policy
is evaluated for ``--eval-episodes`` episodes, without emitting steps, and its success rate is
reported as ``greedy_success_rate`` in the run_completed summary.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any, Sequence

from gym_gui.workers.runtime import (
    EXIT_USAGE,
    CancelToken,
    Progress,
    RunResult,
    StepPacer,
    UsageError,
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

__all__ = ["main", "build_parser", "QLearner", "episode_outcome"]

log = logging.getLogger("gym_gui.workers.q_learning")

WORKER_NAME = "gym_gui.workers.q_learning"
WORKER_VERSION = "1.0"
DEFAULT_MAX_STEPS = 200

#: Families the worker supports, by the unwrapped env class name.
_FAMILIES = {"FrozenLakeEnv": "FrozenLake", "CliffWalkingEnv": "CliffWalking", "TaxiEnv": "Taxi"}


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser. Main thread, never blocks."""
    p = argparse.ArgumentParser(
        prog="python -m gym_gui.workers.q_learning",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Tabular Q-learning on Gymnasium ToyText envs; JSONL telemetry on stdout.",
    )
    p.add_argument(
        "--env",
        default="FrozenLake-v1",
        help="FrozenLake-v1, FrozenLake8x8-v1, Taxi-v3/Taxi-v4, CliffWalking-v0/CliffWalking-v1",
    )
    p.add_argument("--map-size", type=int, choices=(4, 8), default=None, help="FrozenLake map size")
    p.add_argument(
        "--slippery",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="slippery ice (FrozenLake, CliffWalking); default: not slippery",
    )
    add_common_arguments(p, default_episodes=500)
    h = p.add_argument_group("learner")
    h.add_argument(
        "--learning-rate", "--alpha", type=_unit_float, default=0.5, dest="learning_rate", help="step size alpha"
    )
    h.add_argument("--gamma", type=_unit_float, default=0.95, help="discount factor")
    h.add_argument("--epsilon-start", type=_unit_float, default=1.0, help="exploration rate of episode 0")
    h.add_argument("--epsilon-end", type=_unit_float, default=0.05, help="exploration rate after the decay")
    h.add_argument(
        "--epsilon-decay-fraction",
        type=_unit_float,
        default=0.6,
        help="fraction of the episodes over which epsilon decays linearly to --epsilon-end",
    )
    h.add_argument(
        "--q-init",
        type=float,
        default=None,
        help="initial Q value (default: 1.0 on FrozenLake, whose sparse reward needs optimism to "
        "explore 8x8; 0.0 elsewhere, already optimistic for negative step rewards)",
    )
    h.add_argument("--eval-episodes", type=int, default=100, help="greedy evaluation episodes at the end")
    return p


def _unit_float(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be within [0, 1], got {text}")
    return value


def episode_outcome(family: str, terminated: bool, truncated: bool, last_reward: float) -> str:
    """``success``, ``failure`` or ``truncated`` for a finished ToyText episode. Any thread.

    FrozenLake succeeds when it terminates with a positive reward (the goal; a hole gives 0);
    Taxi and CliffWalking terminate only at their goal (drop-off, goal square).
    """
    if terminated:
        if family == "FrozenLake":
            return "success" if last_reward > 0 else "failure"
        return "success"
    if truncated:
        return "truncated"
    return "failure"


class QLearner:
    """A Q-table with epsilon-greedy action selection. Owned by the training thread."""

    def __init__(
        self,
        n_states: int,
        n_actions: int,
        *,
        learning_rate: float,
        gamma: float,
        seed: int,
        q_init: float = 0.0,
    ) -> None:
        import numpy as np

        self._np = np
        self.q = np.full((n_states, n_actions), float(q_init), dtype=np.float64)
        self.learning_rate = learning_rate
        self.gamma = gamma
        self.rng = np.random.default_rng(seed)

    def act(self, state: int, epsilon: float) -> int:
        """Epsilon-greedy action; greedy ties are broken at random."""
        if self.rng.random() < epsilon:
            return int(self.rng.integers(self.q.shape[1]))
        row = self.q[state]
        best = self._np.flatnonzero(row == row.max())
        return int(best[0] if len(best) == 1 else self.rng.choice(best))

    def greedy(self, state: int) -> int:
        """The greedy action (lowest index on ties)."""
        return int(self.q[state].argmax())

    def update(self, state: int, action: int, reward: float, next_state: int, terminated: bool) -> float:
        """One Q-learning update; returns the TD error."""
        target = reward if terminated else reward + self.gamma * float(self.q[next_state].max())
        td = target - float(self.q[state, action])
        self.q[state, action] += self.learning_rate * td
        return td


def _make_env(args: argparse.Namespace) -> tuple[Any, str, dict[str, Any], str]:
    """Create the env from the arguments; raise UsageError for unknown/unsupported ones."""
    import gymnasium as gym

    from gym_gui.workers.envs import resolve_env_id

    try:
        env_id = resolve_env_id(args.env)
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from None
    if env_id != args.env:
        log.warning("environment %s is registered as %s here; using it", args.env, env_id)
    entry = str(gym.spec(env_id).entry_point)
    family = next((f for cls, f in _FAMILIES.items() if entry.endswith(":" + cls)), None)
    if family is None:
        raise UsageError(f"{env_id} is not a supported ToyText env (FrozenLake, Taxi, CliffWalking)")
    kwargs: dict[str, Any] = {}
    if args.map_size is not None:
        if family != "FrozenLake":
            raise UsageError("--map-size applies to FrozenLake only")
        kwargs["map_name"] = f"{args.map_size}x{args.map_size}"
    if family in ("FrozenLake", "CliffWalking"):
        kwargs["is_slippery"] = bool(args.slippery)
    elif args.slippery:
        raise UsageError("--slippery applies to FrozenLake and CliffWalking only")
    spec_limit = gym.spec(env_id).max_episode_steps
    max_steps = args.max_steps_per_episode or spec_limit or DEFAULT_MAX_STEPS
    if args.map_size == 8 and not args.max_steps_per_episode and env_id == "FrozenLake-v1":
        max_steps = 200  # FrozenLake8x8-v1's own limit
    try:
        env = gym.make(env_id, max_episode_steps=max_steps, **kwargs)
    except Exception as exc:  # gymnasium raises various types for bad kwargs
        raise UsageError(f"cannot create {env_id} with {kwargs}: {exc}") from exc
    if not hasattr(env.observation_space, "n") or not hasattr(env.action_space, "n"):
        env.close()
        raise UsageError(f"{env_id} has no discrete observation and action spaces")
    env_kwargs = {**kwargs, "max_episode_steps": max_steps}
    return env, env_id, env_kwargs, family


def _epsilon(args: argparse.Namespace, episode: int) -> float:
    decay_episodes = max(1.0, args.epsilon_decay_fraction * args.episodes)
    frac = min(1.0, episode / decay_episodes)
    return args.epsilon_start + frac * (args.epsilon_end - args.epsilon_start)


def _evaluate(env: Any, learner: QLearner, family: str, episodes: int, seed: int) -> dict[str, Any]:
    """Greedy-policy evaluation without telemetry; success rate and mean return."""
    if episodes <= 0:
        return {"greedy_success_rate": None, "greedy_mean_return": None, "eval_episodes": 0}
    successes = 0
    total = 0.0
    for i in range(episodes):
        state, _ = env.reset(seed=seed + 1_000_003 + i)
        ret = 0.0
        while True:
            state, reward, terminated, truncated, _ = env.step(learner.greedy(int(state)))
            ret += float(reward)
            if terminated or truncated:
                break
        successes += episode_outcome(family, bool(terminated), bool(truncated), float(reward)) == "success"
        total += ret
    return {
        "greedy_success_rate": successes / episodes,
        "greedy_mean_return": total / episodes,
        "eval_episodes": episodes,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 done or cancelled, 1 failed, 2 usage). Main thread."""
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 with a message on stderr for bad arguments
    out = claim_stdout()  # from here on only JSONL reaches stdout (--help above still prints there)
    configure_logging(args.log_level)
    try:
        env, env_id, env_kwargs, family = _make_env(args)
    except UsageError as exc:
        print(f"q_learning: error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    from gym_gui.workers.grid_render import grid_renderer_for

    import gymnasium as gym

    renderer = grid_renderer_for(env)
    assert renderer is not None
    if args.q_init is None:
        args.q_init = 1.0 if family == "FrozenLake" else 0.0
    run_id = args.run_id or new_run_id("qlearn")
    learner = QLearner(
        int(env.observation_space.n),
        int(env.action_space.n),
        learning_rate=args.learning_rate,
        gamma=args.gamma,
        seed=args.seed,
        q_init=args.q_init,
    )
    config = {
        "algorithm": "q_learning",
        "env_kwargs": env_kwargs,
        "episodes": args.episodes,
        "seed": args.seed,
        "max_steps_per_episode": env_kwargs["max_episode_steps"],
        "learning_rate": args.learning_rate,
        "gamma": args.gamma,
        "epsilon_start": args.epsilon_start,
        "epsilon_end": args.epsilon_end,
        "epsilon_decay_fraction": args.epsilon_decay_fraction,
        "q_init": args.q_init,
        "eval_episodes": args.eval_episodes,
        "step_rate_hz": args.step_rate_hz,
        "heartbeat_interval_s": args.heartbeat_interval_s,
    }
    run_started = run_started_fields(
        env, env_id=env_id, config=config, render_kind="grid", env_family=family,
        worker={"name": WORKER_NAME, "version": WORKER_VERSION, "gymnasium": gym.__version__},
    )
    progress = Progress()
    cancel = CancelToken()

    def body(emitter: Any, cancel: CancelToken) -> RunResult:
        pacer = StepPacer(args.step_rate_hz, cancel)
        successes = 0
        total_return = 0.0
        emit, emit_step = emitter.emit, emitter.emit_step
        for ep in range(args.episodes):
            if cancel.cancelled:
                break
            eps = _epsilon(args, ep)
            progress.extra["epsilon"] = round(eps, 6)
            episode_seed = args.seed + ep
            state, _ = env.reset(seed=episode_seed)
            state = int(state)
            ep_return = 0.0
            t = 0
            terminated = truncated = False
            reward = 0.0
            while True:
                if not pacer.wait():
                    break
                action = learner.act(state, eps)
                next_state, reward, terminated, truncated, info = env.step(action)
                next_state = int(next_state)
                reward = float(reward)
                terminated, truncated = bool(terminated), bool(truncated)
                learner.update(state, action, reward, next_state, terminated)
                ep_return += reward
                emit_step(ep, t, action, next_state, reward, terminated, truncated, info, renderer.payload(next_state))
                t += 1
                progress.steps_done += 1
                crash_if_requested(args.fail_after_steps, progress)
                state = next_state
                if terminated or truncated:
                    break
            if t == 0:
                break  # cancelled before the episode's first step: no empty episode record
            done = terminated or truncated
            outcome = episode_outcome(family, terminated, truncated, reward) if done else "cancelled"
            successes += outcome == "success"
            total_return += ep_return
            metadata = {"epsilon": round(eps, 6), "episode_seed": episode_seed}
            emit("episode", episode_fields(ep, ep_return, t, terminated, truncated, outcome, metadata),
                 flush=True if not done else None)
            progress.episode_finished(ep_return)
            if not done:
                break
        summary = summary_fields(progress, total_return, successes)
        if cancel.cancelled:
            summary.update({"greedy_success_rate": None, "greedy_mean_return": None, "eval_episodes": 0})
            return RunResult("cancelled", summary)
        summary.update(_evaluate(env, learner, family, args.eval_episodes, args.seed))
        return RunResult("completed", summary)

    try:
        return run_session_for_args(args, out=out, run_id=run_id, run_started=run_started, body=body,
                                    progress=progress, cancel=cancel)
    finally:
        env.close()
        log.info("worker finished: %d episodes, %d steps", progress.episodes_done, progress.steps_done)


if __name__ == "__main__":
    sys.exit(main())
