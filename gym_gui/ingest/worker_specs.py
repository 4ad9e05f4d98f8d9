"""WorkerSpec: what to train, turned into the command line of one of our Gymnasium workers (Qt-free)."""

from __future__ import annotations

import sys

import attrs

__all__ = ["RGB_ENVS", "TOY_TEXT_ENVS", "WorkerSpec"]

#: Environments of the tabular Q-learning worker (gym_gui.workers.q_learning), grid render payloads.
TOY_TEXT_ENVS: tuple[str, ...] = ("FrozenLake-v1", "FrozenLake8x8-v1", "Taxi-v3", "CliffWalking-v0")
#: Environments of the RGB-frame worker (gym_gui.workers.cartpole_rgb), PNG render payloads.
RGB_ENVS: tuple[str, ...] = ("CartPole-v1",)


@attrs.frozen(slots=True)
class WorkerSpec:
    """One training run of a built-in worker. ``step_rate_hz`` 0 means as fast as possible."""

    env_id: str = "FrozenLake-v1"
    episodes: int = 300
    seed: int = 0
    agent_id: str = "agent-1"
    step_rate_hz: float = 0.0
    heartbeat_interval_s: float = 1.0

    @property
    def module(self) -> str:
        """The worker module that trains ``env_id``."""
        return "gym_gui.workers.cartpole_rgb" if self.env_id in RGB_ENVS else "gym_gui.workers.q_learning"

    def argv(self, run_id: str, *, python: str = sys.executable) -> list[str]:
        """The worker's command line for ``run_id``. Any thread."""
        return [
            python, "-m", self.module,
            "--env", self.env_id, "--episodes", str(self.episodes), "--seed", str(self.seed),
            "--agent-id", self.agent_id, "--run-id", run_id,
            "--step-rate-hz", str(self.step_rate_hz), "--heartbeat-interval-s", str(self.heartbeat_interval_s),
        ]
