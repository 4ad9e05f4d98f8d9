"""The training loop every tool of ``tools/bench_peers.py`` logs: the same steps, fields and work. Stdlib only.

A ToyText-like episode loop (FrozenLake 4x4 dynamics made up of integer arithmetic, so no tool
pays for an environment): per step the global step index, episode index, step index in the
episode, action, observation, reward, terminated, and two scalars of the learner (epsilon, loss);
per episode its return and length. The ``grid`` variant adds the ToyText grid render payload of
every step (the payload our workers send: layout, agent position), which each tool stores in its
own text type. ``run_loop`` times the bare loop (no logging at all) and then the loop with the
tool, and how long the tool takes to make everything durable (``close``).
"""

from __future__ import annotations

import time
from typing import Any, Protocol

__all__ = ["CELLS", "LoopWriter", "grid_payload", "run_loop"]

CELLS = ["SFFF", "FHFH", "FFFH", "HFFG"]


class LoopWriter(Protocol):
    """What a tool implements: one call per step and per episode, and close (durable on return)."""

    def step(self, i: int, episode: int, t: int, action: int, observation: int, reward: float, terminated: bool,
             epsilon: float, loss: float, render: dict[str, Any] | None) -> None: ...

    def episode(self, episode: int, total_return: float, length: int) -> None: ...

    def close(self) -> None: ...


def grid_payload(observation: int) -> dict[str, Any]:
    """The grid render payload our ToyText workers send (gym_gui/workers/grid_render.py's layout)."""
    return {"kind": "grid", "env_family": "FrozenLake", "rows": 4, "cols": 4, "cells": CELLS,
            "agent": [observation // 4, observation % 4]}


def _loop(steps: int, episode_length: int, grid: bool, writer: LoopWriter | None) -> float:
    """Run the loop once; returns its wall time in seconds."""
    t0 = time.perf_counter()
    episode = t = position = 0
    ep_return = 0.0
    for i in range(steps):
        action = (i * 7 + episode) % 4
        position = (position + (1, 4, 3, 5)[action]) % 16
        last = t == episode_length - 1 or i == steps - 1
        reward = 1.0 if last and episode % 3 == 0 else 0.0
        epsilon = max(0.05, 1.0 - episode / 1000.0)
        loss = 1.0 / (1.0 + i)
        ep_return += reward
        if writer is not None:
            writer.step(i, episode, t, action, position, reward, last, epsilon, loss,
                        grid_payload(position) if grid else None)
        t += 1
        if last:
            if writer is not None:
                writer.episode(episode, ep_return, t)
            episode += 1
            t = position = 0
            ep_return = 0.0
    return time.perf_counter() - t0


def run_loop(steps: int, episode_length: int, grid: bool, writer: LoopWriter) -> dict[str, float]:
    """The bare loop, then the loop with ``writer`` and its ``close``. Caller's thread; blocks.

    Returns ``bare_s``, ``loop_s``, ``close_s``, ``start_unix_s`` (when the logged loop began) and
    ``durable_unix_s`` (when ``close`` returned), wall clock, so another process can compare.
    """
    bare_s = _loop(steps, episode_length, grid, None)
    start_unix_s = time.time()
    loop_s = _loop(steps, episode_length, grid, writer)
    t0 = time.perf_counter()
    writer.close()
    close_s = time.perf_counter() - t0
    return {"bare_s": bare_s, "loop_s": loop_s, "close_s": close_s, "start_unix_s": start_unix_s,
            "durable_unix_s": time.time()}
