"""`python -m gym_gui.run`'s progress counts what the proxy published, without a lossy step subscription."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

STEPS = 30_000


def test_a_full_speed_run_counts_every_step_and_drops_nothing(tmp_path: Path) -> None:
    worker = tmp_path / "worker.py"
    worker.write_text(textwrap.dedent(f"""
        import sys
        from gym_gui.workers.jsonl_emitter import JsonlEmitter
        emitter = JsonlEmitter(sys.stdout.buffer, run_id="fast-1", agent_id="a1")
        emitter.emit("run_started", {{"env_id": "FrozenLake-v1", "config": {{}}}})
        for i in range({STEPS}):
            emitter.emit_step(i // 100, i % 100, 0, 1, 0.0, i % 100 == 99, False, {{"loss": 1.0 / (1 + i)}}, None)
            if i % 100 == 99:
                emitter.emit("episode", {{"episode_index": i // 100, "total_reward": 0.0, "length": 100,
                                          "terminated": True, "truncated": False}})
        emitter.emit("run_completed", {{"outcome": "completed"}})
        emitter.close()
    """))
    db = tmp_path / "x.sqlite"
    result = subprocess.run([sys.executable, "-m", "gym_gui.run", "--db", str(db), "--run-id", "fast-1",
                             "--progress-interval-s", "0.05", "--", sys.executable, str(worker)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert f"published: {STEPS} steps, {STEPS // 100} episodes" in out
    assert "live view dropped 0 events" in out
    assert "dropped events" not in result.stderr  # no OVERFLOW warning: nothing subscribes to the steps lossily
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM steps").fetchone()[0] == STEPS
