"""rerun's RecordingStream saving to an .rrd file (one Scalars entity per field, a "step" and an
"episode" timeline); read back with rerun's dataframe reader (RrdReader -> ChunkStore.reader)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

NAME = "rerun"
FILE = "run.rrd"


class Writer:
    def __init__(self, out_dir: Path, grid: bool, run_id: str) -> None:
        import rerun as rr

        self._rr = rr
        self._rec = rr.RecordingStream("gym_gui_bench_peers", recording_id=run_id)
        self._rec.save(str(out_dir / FILE))
        self._episode = -1

    def step(self, i: int, episode: int, t: int, action: int, observation: int, reward: float, terminated: bool,
             epsilon: float, loss: float, render: dict[str, Any] | None) -> None:
        rec, scalars = self._rec, self._rr.Scalars
        if episode != self._episode:
            rec.set_time("episode", sequence=episode)
            self._episode = episode
        rec.set_time("step", sequence=i)
        rec.log("step/reward", scalars(reward))
        rec.log("step/action", scalars(action))
        rec.log("step/observation", scalars(observation))
        rec.log("step/terminated", scalars(int(terminated)))
        rec.log("step/epsilon", scalars(epsilon))
        rec.log("step/loss", scalars(loss))
        if render is not None:
            rec.log("step/render", self._rr.TextDocument(json.dumps(render)))

    def episode(self, episode: int, total_return: float, length: int) -> None:
        scalars = self._rr.Scalars
        self._rec.log("episode/return", scalars(total_return))
        self._rec.log("episode/length", scalars(length))

    def close(self) -> None:
        self._rec.flush()
        self._rec.disconnect()  # finalizes the file sink


def make_writer(out_dir: Path, grid: bool, run_id: str) -> Writer:
    return Writer(out_dir, grid, run_id)


def read_returns(out_dir: Path, run_id: str) -> list[float]:
    from rerun.chunk import RrdReader

    store = RrdReader(str(out_dir / FILE)).store().stream().collect()
    table = store.reader(index="episode", contents="/episode/return").to_arrow_table()
    column = table.column("/episode/return:Scalars:scalars").to_pylist()
    return [float(v[0]) for v in column if v]


def data_files(out_dir: Path) -> list[Path]:
    return [out_dir / FILE]
