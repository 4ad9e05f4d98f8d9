"""The fields of the canonical JSONL v1 records our workers write, defined once (Qt-free).

docs/telemetry-jsonl.md is the spec; every worker builds its records through these helpers so
the shapes cannot drift apart. All functions are pure and may be called from any thread.
"""

from __future__ import annotations

from typing import Any, Mapping

from gym_gui.workers.runtime import Progress, SimulatedCrash

__all__ = ["episode_fields", "run_started_fields", "step_fields", "summary_fields", "crash_if_requested"]


def run_started_fields(env: Any, *, env_id: str, config: Mapping[str, Any], worker: Mapping[str, Any],
                       render_kind: str, env_family: str) -> dict[str, Any]:
    """The ``run_started`` fields for a Gymnasium ``env``."""
    return {
        "env_id": env_id,
        "config": dict(config),
        "worker": dict(worker),
        "render_kind": render_kind,
        "env_family": env_family,
        "observation_space": str(env.observation_space),
        "action_space": str(env.action_space),
    }


def step_fields(episode_index: int, step_index: int, action: Any, observation: Any, reward: float,
                terminated: bool, truncated: bool, info: Any, render_payload: Any) -> dict[str, Any]:
    """The ``step`` fields."""
    return {
        "episode_index": episode_index,
        "step_index": step_index,
        "action": action,
        "observation": observation,
        "reward": reward,
        "terminated": terminated,
        "truncated": truncated,
        "info": info,
        "render_payload": render_payload,
    }


def episode_fields(episode_index: int, total_reward: float, length: int, terminated: bool, truncated: bool,
                   outcome: str, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The ``episode`` fields."""
    return {
        "episode_index": episode_index,
        "total_reward": total_reward,
        "length": length,
        "terminated": terminated,
        "truncated": truncated,
        "outcome": outcome,
        "metadata": dict(metadata),
    }


def summary_fields(progress: Progress, total_return: float, successes: int) -> dict[str, Any]:
    """The summary fields every worker reports in ``run_completed``."""
    episodes = progress.episodes_done
    return {
        "episodes": episodes,
        "steps": progress.steps_done,
        "mean_return": total_return / episodes if episodes else None,
        "mean_return_last_100": progress.mean_return(100),
        "success_rate": successes / episodes if episodes else None,
    }


def crash_if_requested(fail_after_steps: int | None, progress: Progress) -> None:
    """The ``--fail-after-steps`` test hook: raise SimulatedCrash once that many steps are done."""
    if fail_after_steps is not None and progress.steps_done >= fail_after_steps:
        raise SimulatedCrash(f"--fail-after-steps {fail_after_steps} reached")
