"""Grid render payloads for Gymnasium ToyText environments (FrozenLake, CliffWalking, Taxi).

Qt-free. The payload format is specified in docs/telemetry-jsonl.md ("grid" render payload):
a renderer needs nothing else to draw it. The static part (layout, walls, landmarks) is computed
once per environment; :meth:`GridRenderer.payload` only adds the positions of one observation.
"""

from __future__ import annotations

from typing import Any, Sequence

__all__ = ["CELL_LEGEND", "GridRenderer", "grid_renderer_for"]

#: Cell alphabet of ``cells`` strings.
CELL_LEGEND: dict[str, str] = {
    "S": "start (walkable)",
    "F": "floor (walkable; frozen ice on FrozenLake)",
    "H": "hole (episode ends, failure)",
    "C": "cliff (reward -100, agent is sent back to start)",
    "G": "goal (episode ends, success)",
}

#: Names of Taxi's four landmark squares, in the env's location-index order.
TAXI_LANDMARK_NAMES: tuple[str, ...] = ("R", "G", "Y", "B")


class GridRenderer:
    """Builds grid payloads for one environment. Immutable after construction; any thread."""

    def __init__(
        self,
        *,
        env_family: str,
        cells: Sequence[str],
        extra_static: dict[str, Any] | None = None,
        taxi_locs: Sequence[tuple[int, int]] | None = None,
    ) -> None:
        rows = len(cells)
        cols = len(cells[0]) if rows else 0
        if rows == 0 or cols == 0 or any(len(row) != cols for row in cells):
            raise ValueError("cells must be a non-empty list of equal-length strings")
        bad = {ch for row in cells for ch in row} - set(CELL_LEGEND)
        if bad:
            raise ValueError(f"unknown cell codes {sorted(bad)}")
        self.env_family = env_family
        self.rows = rows
        self.cols = cols
        self.cells = list(cells)
        self._static: dict[str, Any] = {
            "kind": "grid",
            "env_family": env_family,
            "rows": rows,
            "cols": cols,
            "cells": self.cells,
        }
        if extra_static:
            self._static.update(extra_static)
        self._taxi_locs = [tuple(loc) for loc in taxi_locs] if taxi_locs is not None else None

    def agent_position(self, observation: int) -> tuple[int, int]:
        """Row and column of the agent for a discrete ``observation``. Any thread."""
        obs = int(observation)
        if self._taxi_locs is not None:
            taxi_row, taxi_col, _, _ = _taxi_decode(obs)
            return taxi_row, taxi_col
        return divmod(obs, self.cols)

    def payload(self, observation: int) -> dict[str, Any]:
        """The grid payload for ``observation`` (a new dict; the static lists are shared)."""
        obs = int(observation)
        out = dict(self._static)
        if self._taxi_locs is not None:
            taxi_row, taxi_col, pass_idx, dest_idx = _taxi_decode(obs)
            out["agent"] = [taxi_row, taxi_col]
            if pass_idx < len(self._taxi_locs):
                out["passenger"] = list(self._taxi_locs[pass_idx])
            else:
                out["passenger"] = "in_taxi"
            out["destination"] = list(self._taxi_locs[dest_idx])
        else:
            out["agent"] = list(divmod(obs, self.cols))
        return out


def _taxi_decode(state: int) -> tuple[int, int, int, int]:
    """Taxi's state index to (taxi_row, taxi_col, passenger_location, destination)."""
    dest = state % 4
    state //= 4
    pass_loc = state % 5
    state //= 5
    taxi_col = state % 5
    taxi_row = state // 5
    return taxi_row, taxi_col, pass_loc, dest


def _frozenlake(unwrapped: Any) -> GridRenderer:
    desc = unwrapped.desc
    cells = ["".join(ch.decode() if isinstance(ch, bytes) else str(ch) for ch in row) for row in desc]
    return GridRenderer(env_family="FrozenLake", cells=cells)


def _cliffwalking(unwrapped: Any) -> GridRenderer:
    rows, cols = (int(x) for x in unwrapped.shape)
    cliff = getattr(unwrapped, "_cliff", None)
    start = divmod(int(getattr(unwrapped, "start_state_index", (rows - 1) * cols)), cols)
    goal = (rows - 1, cols - 1)
    grid = [["F"] * cols for _ in range(rows)]
    for r in range(rows):
        for c in range(cols):
            is_cliff = bool(cliff[r, c]) if cliff is not None else (r == rows - 1 and 0 < c < cols - 1)
            if is_cliff:
                grid[r][c] = "C"
    grid[start[0]][start[1]] = "S"
    grid[goal[0]][goal[1]] = "G"
    return GridRenderer(env_family="CliffWalking", cells=["".join(row) for row in grid])


def _taxi(unwrapped: Any) -> GridRenderer:
    desc = [[ch.decode() if isinstance(ch, bytes) else str(ch) for ch in row] for row in unwrapped.desc]
    rows = len(desc) - 2
    cols = (len(desc[0]) - 1) // 2
    walls: list[list[Any]] = []
    for r in range(rows):
        line = desc[r + 1]
        for c in range(cols - 1):
            if line[2 * c + 2] == "|":
                walls.append([r, c, "E"])
    locs = [tuple(int(x) for x in loc) for loc in unwrapped.locs]
    landmarks = {name: list(loc) for name, loc in zip(TAXI_LANDMARK_NAMES, locs)}
    return GridRenderer(
        env_family="Taxi",
        cells=["F" * cols for _ in range(rows)],
        extra_static={"landmarks": landmarks, "walls": walls},
        taxi_locs=locs,
    )


def grid_renderer_for(env: Any) -> GridRenderer | None:
    """A :class:`GridRenderer` for a FrozenLake, CliffWalking or Taxi env (wrapped or not).

    Returns None for other environments. Any thread, never blocks.
    """
    unwrapped = getattr(env, "unwrapped", env)
    name = type(unwrapped).__name__
    if name == "FrozenLakeEnv":
        return _frozenlake(unwrapped)
    if name == "CliffWalkingEnv":
        return _cliffwalking(unwrapped)
    if name == "TaxiEnv":
        return _taxi(unwrapped)
    return None
