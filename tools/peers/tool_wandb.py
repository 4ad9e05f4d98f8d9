"""wandb in offline mode (WANDB_MODE=offline: nothing is sent anywhere); one ``run.log`` per step,
the episode's return merged into its last step. Read back from the offline run's .wandb file
(a LevelDB-style log of wandb's Record protobufs) with wandb's own protobuf classes."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any, Iterator

NAME = "wandb"
_BLOCK = 32768
_HEADER = 7  # ":W&B", a 2-byte magic and a version byte


class Writer:
    def __init__(self, out_dir: Path, grid: bool, run_id: str) -> None:
        os.environ["WANDB_MODE"] = "offline"
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb

        self._run = wandb.init(project="gym-gui-bench-peers", id=run_id, dir=str(out_dir), mode="offline")
        self._log = self._run.log
        self._last = 0

    def step(self, i: int, episode: int, t: int, action: int, observation: int, reward: float, terminated: bool,
             epsilon: float, loss: float, render: dict[str, Any] | None) -> None:
        row: dict[str, Any] = {"reward": reward, "action": action, "observation": observation,
                               "terminated": int(terminated), "epsilon": epsilon, "loss": loss}
        if render is not None:
            row["render"] = json.dumps(render)
        self._log(row, step=i)
        self._last = i

    def episode(self, episode: int, total_return: float, length: int) -> None:
        self._log({"episode/return": total_return, "episode/length": length, "episode": episode}, step=self._last)

    def close(self) -> None:
        self._run.finish()


def make_writer(out_dir: Path, grid: bool, run_id: str) -> Writer:
    return Writer(out_dir, grid, run_id)


def _records(data: bytes) -> Iterator[bytes]:
    if data[:4] != b":W&B":
        raise ValueError("not a .wandb file")
    pos, pending = _HEADER, b""
    while pos + 7 <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < 7:
            pos += left
            continue
        _crc, length, kind = struct.unpack_from("<IHB", data, pos)
        if kind == 0:  # block padding
            pos += left
            continue
        chunk = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind == 1:
            yield chunk
        elif kind == 2:
            pending = chunk
        elif kind == 3:
            pending += chunk
        elif kind == 4:
            yield pending + chunk


def read_returns(out_dir: Path, run_id: str) -> list[float]:
    from wandb.proto.wandb_internal_pb2 import Record

    returns: list[float] = []
    for path in data_files(out_dir):
        for raw in _records(path.read_bytes()):
            record = Record.FromString(raw)
            if record.WhichOneof("record_type") != "history":
                continue
            for item in record.history.item:
                key = item.key or "/".join(item.nested_key)
                if key == "episode/return":
                    returns.append(float(json.loads(item.value_json)))
    return returns


def data_files(out_dir: Path) -> list[Path]:
    return sorted(out_dir.glob("wandb/offline-run-*/run-*.wandb"))
