"""Real render payloads and step streams for the widget tests: Gymnasium envs through the workers' own
payload builders (grid_render, rgb_frames), wrapped in events by the shared EventFactory."""

from __future__ import annotations

import functools
import json
from typing import Any

import gymnasium as gym
import numpy as np

from event_factory import EventFactory
from gym_gui.telemetry.events import TelemetryEvent
from gym_gui.workers.envs import resolve_env_id
from gym_gui.workers.grid_render import GridRenderer, grid_renderer_for
from gym_gui.workers.rgb_frames import rgb_payload


def renderer(env_id: str, **kwargs: Any) -> tuple[gym.Env, GridRenderer]:
    env = gym.make(resolve_env_id(env_id), **kwargs)
    grid = grid_renderer_for(env)
    assert grid is not None
    return env, grid


def json_copy(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload as it arrives after the JSONL round trip (new lists, nothing shared)."""
    return json.loads(json.dumps(payload))


def frozenlake_payload(observation: int = 0) -> dict[str, Any]:
    _env, grid = renderer("FrozenLake-v1", is_slippery=False)
    return json_copy(grid.payload(observation))


@functools.lru_cache(maxsize=None)
def cartpole_frames(count: int = 3) -> tuple[str, ...]:
    """JSON texts of ``count`` real CartPole rgb payloads of consecutive steps (cached: pygame is slow)."""
    env = gym.make("CartPole-v1", render_mode="rgb_array")
    env.reset(seed=0)
    out = []
    for _ in range(count):
        out.append(json.dumps(rgb_payload(env.render())))
        env.step(1)
    env.close()
    return tuple(out)


def cartpole_payload(i: int = 0) -> dict[str, Any]:
    return json.loads(cartpole_frames(max(3, i + 1))[i])


def toytext_run(factory: EventFactory, env_id: str = "FrozenLake-v1", *, episodes: int = 3,
                max_steps: int = 12, seed: int = 0, **env_kwargs: Any) -> list[TelemetryEvent]:
    """Steps and episode events of a seeded random policy on a real ToyText env (no run_started)."""
    env, grid = renderer(env_id, **env_kwargs)
    rng = np.random.default_rng(seed)
    events: list[TelemetryEvent] = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        total, t, terminated, truncated = 0.0, 0, False, False
        while not (terminated or truncated) and t < max_steps:
            action = int(rng.integers(env.action_space.n))
            obs, reward, terminated, truncated, info = env.step(action)
            total += float(reward)
            events.append(factory.step(
                ep, t, action=action, observation=int(obs), reward=float(reward), terminated=bool(terminated),
                truncated=bool(truncated), info=json_copy({k: np.asarray(v).tolist() for k, v in info.items()}),
                render_payload=json_copy(grid.payload(obs)),
            ))
            t += 1
        outcome = "success" if terminated and total > 0 else ("failure" if terminated else "truncated")
        events.append(factory.episode(ep, t, total_reward=total, terminated=bool(terminated),
                                      truncated=not terminated, outcome=outcome))
    env.close()
    return events
