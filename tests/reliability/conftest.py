"""Shared parts of the reliability suite: real worker scripts, the headless CLI, a Qt-free pipeline.

Everything is real: workers are Python subprocesses, the store is a SQLite file in tmp_path, the
sink is ``SinkCore`` on its own thread (the logic behind DbSink, without Qt).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from gym_gui.ingest.proxy import TelemetryProxy
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.telemetry.sink_core import SinkCore
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore

RUN = [sys.executable, "-m", "gym_gui.run"]
ROOT = Path(__file__).resolve().parents[2]


def child_env() -> dict[str, str]:
    """An environment in which ``python -m gym_gui...`` imports this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


@pytest.fixture
def child_environ() -> Callable[[], dict[str, str]]:
    """``child_environ()``: the environment for subprocesses that import this checkout."""
    return child_env


@pytest.fixture
def script(tmp_path: Path) -> Callable[[str], list[str]]:
    """``script(body)``: write a Python worker script, return the argv that runs it."""
    counter = iter(range(1_000_000))

    def make(body: str) -> list[str]:
        path = tmp_path / f"worker_{next(counter)}.py"
        path.write_text(textwrap.dedent(body))
        return [sys.executable, str(path)]

    return make


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``cli(*args, timeout_s=60)``: run ``python -m gym_gui.run`` to its end, output captured."""

    def run(*args: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(RUN + list(args), capture_output=True, text=True, timeout=timeout_s,
                              env=child_env(), cwd=str(tmp_path))

    return run


class Pipeline:
    """The headless wiring of gym_gui.run without Qt, plus a lossless recorder of what was published."""

    def __init__(self, db: Path, *, run_id: str = "run-r", store: TelemetrySQLiteStore | None = None,
                 proxy_kw: dict[str, Any] | None = None, **sink_tuning: Any) -> None:
        self.bus = RunBus()
        self.store = store if store is not None else TelemetrySQLiteStore(db)
        self.sink = SinkCore(self.store, self.bus, **sink_tuning)
        self.recorded: dict[Topic, Any] = {
            t: self.bus.subscribe(t, "recorder", maxlen=None)
            for t in (Topic.RUN_STARTED, Topic.STEP_APPENDED, Topic.EPISODE_FINALIZED, Topic.RUN_COMPLETED)
        }
        self.proxy = TelemetryProxy(self.bus, run_id=run_id, seq_floor=self.store.max_seq_id,
                                    gate=self.sink.gate, **(proxy_kw or {}))
        self.sink.start()

    def published(self, topic: Topic) -> list[TelemetryEvent]:
        return self.recorded[topic].drain()

    def close(self) -> None:
        self.proxy.stop(10)
        self.sink.stop(30)
        self.store.close()


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[Callable[..., Pipeline]]:
    """``pipeline(**kw)``: a Pipeline on ``tmp_path/telemetry.sqlite``, closed after the test."""
    made: list[Pipeline] = []

    def make(**kw: Any) -> Pipeline:
        p = Pipeline(tmp_path / "telemetry.sqlite", **kw)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()
