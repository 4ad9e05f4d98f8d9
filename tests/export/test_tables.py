"""Episodes and steps exported to CSV and JSONL read back equal to what SQLite holds."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO  # type: ignore[import-not-found]
from event_factory import EventFactory
from gym_gui.export.tables import (EPISODE_CSV_COLUMNS, STEP_CSV_COLUMNS, ExportError, export_tables, iter_episodes,
                                   iter_steps, open_readonly)
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore


def tricky_run(store: TelemetrySQLiteStore) -> None:
    f = EventFactory("r/1", "agent-1")
    events = [f.started()]
    events += f.episodes(2, 3)
    events.append(f.step(2, 0, reward=-0.0, info={"text": "é, \"quoted\"\nnewline", "n": [1, 2], "\udc80": "x\ud800"},
                         custom=7))  # (a lone surrogate: written as its JSON escape)
    events.append(f.episode(2, 1, total_reward=-0.0, metadata={"loss": 0.25}))
    other = EventFactory("r-other", "agent-1")
    store.write_batch(events + other.run(1, 2))


def test_jsonl_rows_equal_the_stored_events_without_frames(store: TelemetrySQLiteStore, db_path: Path,
                                                           tmp_path: Path) -> None:
    tricky_run(store)
    conn = open_readonly(db_path)
    result = export_tables(conn, "r/1", tmp_path / "out", "jsonl")
    assert result["episodes"].name == "r_1-episodes.jsonl"
    assert (result["episode_rows"], result["step_rows"]) == (3, 7)
    steps = [json.loads(line) for line in result["steps"].read_text(encoding="utf-8").splitlines()]
    stored = store.events_after("r/1", "agent-1", -1, limit=100)
    stored_steps = [e for e in stored if e.topic.name == "STEP_APPENDED"]
    assert len(steps) == len(stored_steps)
    for line, evt in zip(steps, stored_steps):
        expected = {k: v for k, v in evt.payload.items() if k != "render_payload"}
        assert line == {"run_id": "r/1", "agent_id": "agent-1", "seq_id": evt.seq_id, "ts_iso": evt.ts_iso, **expected}
    assert steps[-1]["custom"] == 7 and str(steps[-1]["reward"]) == "-0.0"
    episodes = [json.loads(line) for line in result["episodes"].read_text(encoding="utf-8").splitlines()]
    assert [e["episode_index"] for e in episodes] == [0, 1, 2]
    assert episodes[2]["metadata"] == {"loss": 0.25}
    assert all(e["run_id"] == "r/1" for e in episodes)  # the other run is not in the files


def test_csv_cells_read_back_equal_to_sqlite(store: TelemetrySQLiteStore, db_path: Path, tmp_path: Path) -> None:
    tricky_run(store)
    conn = open_readonly(db_path)
    result = export_tables(conn, "r/1", tmp_path, "csv")
    with result["steps"].open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == STEP_CSV_COLUMNS
    records = list(iter_steps(conn, "r/1"))
    assert len(rows) == len(records) == 7
    for row, record in zip(rows, records):
        assert int(row["seq_id"]) == record.seq_id and row["ts_iso"] == record.ts_iso
        assert int(row["episode_index"]) == record.episode_index and int(row["step_index"]) == record.step_index
        assert float(row["reward"]) == record.reward
        assert json.loads(row["action"]) == record.payload["action"]
        assert json.loads(row["observation"]) == record.payload["observation"]
        assert json.loads(row["info"]) == record.payload["info"]
        assert row["terminated"] == ("true" if record.terminated else "false")
    assert json.loads(rows[-1]["extra"]) == {"custom": 7}
    assert rows[-1]["reward"] == "-0.0"
    with result["episodes"].open(encoding="utf-8", newline="") as fh:
        episodes = list(csv.DictReader(fh))
    assert tuple(episodes[0]) == EPISODE_CSV_COLUMNS
    stored = list(iter_episodes(conn, "r/1"))
    assert [float(e["total_reward"]) for e in episodes] == [e.total_reward for e in stored]
    assert [int(e["length"]) for e in episodes] == [e.length for e in stored]
    assert json.loads(episodes[2]["metadata"]) == {"loss": 0.25}


def test_unknown_runs_formats_and_files_are_clear_errors(store: TelemetrySQLiteStore, db_path: Path,
                                                         tmp_path: Path) -> None:
    tricky_run(store)
    conn = open_readonly(db_path)
    with pytest.raises(ExportError, match="not in this database"):
        export_tables(conn, "nope", tmp_path)
    with pytest.raises(ExportError, match="unknown format"):
        export_tables(conn, "r/1", tmp_path, "parquet")
    with pytest.raises(ExportError, match="no such database"):
        open_readonly(tmp_path / "missing.sqlite")
    assert not (tmp_path / "missing.sqlite").exists()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gym_gui.export", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=60, env={**os.environ})


def test_the_command_exports_a_real_run(worker_db: Path, tmp_path: Path) -> None:
    proc = run_cli("r-lake", "--db", str(worker_db), "--format", "csv", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "3 episodes" in proc.stdout
    conn = open_readonly(worker_db)
    n_steps = conn.execute("SELECT COUNT(*) FROM steps WHERE run_id = 'r-lake'").fetchone()[0]
    assert f"{n_steps} steps" in proc.stdout
    with (tmp_path / "r-lake-steps.csv").open(newline="") as fh:
        assert sum(1 for _ in csv.DictReader(fh)) == n_steps
    proc = run_cli("r-lake", "--db", str(worker_db), "--format", "jsonl", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    lines: list[dict[str, Any]] = [json.loads(x) for x in (tmp_path / "r-lake-episodes.jsonl").read_text().splitlines()]
    stored = conn.execute("SELECT episode_index, total_reward, length FROM episodes WHERE run_id = 'r-lake' "
                          "ORDER BY seq_id").fetchall()
    assert [(e["episode_index"], e["total_reward"], e["length"]) for e in lines] == [tuple(r) for r in stored]
    bad = run_cli("nope", "--db", str(worker_db))
    assert bad.returncode == 2 and "not in this database" in bad.stderr
