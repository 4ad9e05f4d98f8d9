"""tensorboardX's SummaryWriter (defaults); read back by parsing the event file's records with
tensorboardX's own Event protobuf (the TFRecord framing: length, CRC, data, CRC)."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

NAME = "tensorboardX"


class Writer:
    def __init__(self, out_dir: Path, grid: bool, run_id: str) -> None:
        from tensorboardX import SummaryWriter

        self._w = SummaryWriter(logdir=str(out_dir))
        self._scalar = self._w.add_scalar

    def step(self, i: int, episode: int, t: int, action: int, observation: int, reward: float, terminated: bool,
             epsilon: float, loss: float, render: dict[str, Any] | None) -> None:
        add = self._scalar
        add("step/reward", reward, i)
        add("step/action", action, i)
        add("step/observation", observation, i)
        add("step/terminated", int(terminated), i)
        add("step/epsilon", epsilon, i)
        add("step/loss", loss, i)
        if render is not None:
            self._w.add_text("step/render", json.dumps(render), i)

    def episode(self, episode: int, total_return: float, length: int) -> None:
        self._scalar("episode/return", total_return, episode)
        self._scalar("episode/length", length, episode)

    def close(self) -> None:
        self._w.close()


def make_writer(out_dir: Path, grid: bool, run_id: str) -> Writer:
    return Writer(out_dir, grid, run_id)


def read_returns(out_dir: Path, run_id: str) -> list[float]:
    from tensorboardX.proto.event_pb2 import Event

    returns: list[float] = []
    for path in data_files(out_dir):
        data = path.read_bytes()
        pos, end = 0, len(data)
        while pos + 12 <= end:
            (length,) = struct.unpack_from("<Q", data, pos)
            event = Event.FromString(data[pos + 12:pos + 12 + length])
            pos += 16 + length
            for value in event.summary.value:
                if value.tag == "episode/return":
                    returns.append(value.simple_value)
    return returns


def data_files(out_dir: Path) -> list[Path]:
    return sorted(out_dir.glob("events.out.tfevents.*"))
