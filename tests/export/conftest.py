"""Real runs of the built-in workers, written by the headless command into one SQLite file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def headless_run(db: Path, env_id: str, episodes: int, run_id: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gym_gui.run", "--db", str(db), "--env", env_id, "--episodes", str(episodes),
         "--run-id", run_id, "--step-rate-hz", "0", "--heartbeat-interval-s", "0.2", "--progress-interval-s", "60"],
        cwd=REPO, capture_output=True, text=True, timeout=120, env={**os.environ})
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def worker_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """FrozenLake (3 episodes), Taxi (2) and CartPole (1) runs of the real workers."""
    db = tmp_path_factory.mktemp("export") / "runs.sqlite"
    headless_run(db, "FrozenLake-v1", 3, "r-lake")
    headless_run(db, "Taxi-v3", 2, "r-taxi")
    headless_run(db, "CartPole-v1", 1, "r-pole")
    return db
