"""Ours: the workers' JsonlEmitter on stdout, run under ``python -m gym_gui.run`` (durable = its exit).

Needs the project's .venv. The reader is the one the learning curves use
(``curve_reads.load_curves_from_store`` on a ``TelemetrySQLiteStore``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from gym_gui.workers.jsonl_emitter import JsonlEmitter  # noqa: E402
from gym_gui.workers.records import episode_fields  # noqa: E402

NAME = "gym_gui"
AGENT = "agent-1"
DB_NAME = "telemetry.sqlite"


class Writer:
    """Canonical JSONL v1 records through the emitter, with its defaults, as our workers write them."""

    def __init__(self, out_dir: Path, grid: bool, run_id: str) -> None:
        self._emitter = JsonlEmitter(sys.stdout.buffer, run_id=run_id, agent_id=AGENT)
        self._emit = self._emitter.emit
        self._emit_step = self._emitter.emit_step  # how our workers write a step (q_learning, cartpole_rgb)
        self._grid = grid
        self._steps = 0
        self._emit("run_started", {"env_id": "FrozenLake-v1", "config": {}, "env_family": "FrozenLake",
                                   "render_kind": "grid" if grid else "none",
                                   "worker": {"name": "tools.bench_peers", "version": "1"}})

    def step(self, i: int, episode: int, t: int, action: int, observation: int, reward: float, terminated: bool,
             epsilon: float, loss: float, render: dict[str, Any] | None) -> None:
        self._emit_step(episode, t, action, observation, reward, terminated, False, {"epsilon": epsilon, "loss": loss},
                        render)  # the line of emit("step", step_fields(...)), without building its dict
        self._steps = i + 1

    def episode(self, episode: int, total_return: float, length: int) -> None:
        self._emit("episode", episode_fields(episode, total_return, length, True, False,
                                             "success" if total_return > 0 else "failure", {}))

    def close(self) -> None:
        self._emit("run_completed", {"outcome": "completed", "summary": {"steps": self._steps}})
        self._emitter.close()
        sys.stdout.buffer.flush()


def make_writer(out_dir: Path, grid: bool, run_id: str) -> Writer:
    return Writer(out_dir, grid, run_id)


def read_returns(out_dir: Path, run_id: str) -> list[float]:
    from gym_gui.telemetry.curve_reads import load_curves_from_store
    from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore

    store = TelemetrySQLiteStore(out_dir / DB_NAME)
    try:
        return [float(x) for x in load_curves_from_store(store, run_id, AGENT).column("return")]
    finally:
        store.close()


def data_files(out_dir: Path) -> list[Path]:
    return [p for p in out_dir.iterdir() if p.name.startswith(DB_NAME)]
