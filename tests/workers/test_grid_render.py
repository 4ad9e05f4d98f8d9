"""Grid render payloads match the Gymnasium ToyText environments they describe."""

from __future__ import annotations

import json

import gymnasium as gym
import pytest

from gym_gui.workers.envs import resolve_env_id
from gym_gui.workers.grid_render import CELL_LEGEND, GridRenderer, grid_renderer_for


def _desc_rows(env: gym.Env) -> list[str]:
    return ["".join(ch.decode() for ch in row) for row in env.unwrapped.desc]


@pytest.mark.parametrize("kwargs", [{"map_name": "4x4"}, {"map_name": "8x8"}])
def test_frozenlake_layout_and_agent(kwargs: dict[str, str]) -> None:
    env = gym.make("FrozenLake-v1", is_slippery=False, **kwargs)
    renderer = grid_renderer_for(env)
    assert renderer is not None
    obs, _ = env.reset(seed=0)
    payload = renderer.payload(obs)
    n = 4 if kwargs["map_name"] == "4x4" else 8
    assert payload["kind"] == "grid" and payload["env_family"] == "FrozenLake"
    assert payload["rows"] == n and payload["cols"] == n
    assert payload["cells"] == _desc_rows(env)
    assert payload["agent"] == [0, 0] and payload["cells"][0][0] == "S"
    # Walk right twice and down once: the payload follows the env's own position.
    for action, expected in [(2, [0, 1]), (2, [0, 2]), (1, [1, 2])]:
        obs, *_ = env.step(action)
        assert renderer.payload(obs)["agent"] == expected
    json.dumps(payload, allow_nan=False)


def test_cliffwalking_layout() -> None:
    env = gym.make(resolve_env_id("CliffWalking-v1"))
    renderer = grid_renderer_for(env)
    assert renderer is not None
    obs, _ = env.reset(seed=0)
    payload = renderer.payload(obs)
    assert payload["env_family"] == "CliffWalking"
    assert (payload["rows"], payload["cols"]) == (4, 12)
    assert payload["cells"] == ["F" * 12, "F" * 12, "F" * 12, "S" + "C" * 10 + "G"]
    assert payload["agent"] == [3, 0]
    obs, *_ = env.step(0)  # up
    assert renderer.payload(obs)["agent"] == [2, 0]
    obs, reward, *_ = env.step(1)  # right
    obs, reward, *_ = env.step(2)  # down, into the cliff: back to start
    assert reward == -100
    assert renderer.payload(obs)["agent"] == [3, 0]


def test_taxi_fields_and_decode_for_every_state() -> None:
    env = gym.make(resolve_env_id("Taxi-v3"))
    renderer = grid_renderer_for(env)
    assert renderer is not None
    env.reset(seed=0)
    locs = [list(loc) for loc in env.unwrapped.locs]
    for state in range(env.observation_space.n):
        row, col, pass_idx, dest_idx = env.unwrapped.decode(state)
        payload = renderer.payload(state)
        assert payload["agent"] == [row, col]
        assert payload["passenger"] == ("in_taxi" if pass_idx == 4 else locs[pass_idx])
        assert payload["destination"] == locs[dest_idx]
    payload = renderer.payload(0)
    assert payload["env_family"] == "Taxi" and (payload["rows"], payload["cols"]) == (5, 5)
    assert payload["cells"] == ["FFFFF"] * 5
    assert payload["landmarks"] == {"R": [0, 0], "G": [0, 4], "Y": [4, 0], "B": [4, 3]}
    # The classic Taxi map: walls east of (0,1), (1,1), (3,0), (4,0), (3,2), (4,2).
    assert sorted(map(tuple, payload["walls"])) == sorted(
        [(0, 1, "E"), (1, 1, "E"), (3, 0, "E"), (4, 0, "E"), (3, 2, "E"), (4, 2, "E")]
    )


def test_taxi_walls_block_movement() -> None:
    """Every wall in the payload really stops the taxi moving east from that cell (and west back)."""
    env = gym.make(resolve_env_id("Taxi-v3"))
    renderer = grid_renderer_for(env)
    assert renderer is not None
    u = env.unwrapped
    walls = {(r, c) for r, c, side in renderer.payload(0)["walls"] if side == "E"}
    for r in range(5):
        for c in range(4):
            state = u.encode(r, c, 0, 1)
            (_, nxt, _, _), = u.P[state][2]  # action 2: east
            moved = list(u.decode(nxt))[:2] == [r, c + 1]
            assert moved == ((r, c) not in walls), (r, c)


def test_other_envs_have_no_grid_renderer() -> None:
    assert grid_renderer_for(gym.make("CartPole-v1")) is None


def test_renderer_validates_cells() -> None:
    with pytest.raises(ValueError):
        GridRenderer(env_family="X", cells=["SF", "F"])
    with pytest.raises(ValueError):
        GridRenderer(env_family="X", cells=["SQ"])
    assert set(CELL_LEGEND) == {"S", "F", "H", "C", "G"}
