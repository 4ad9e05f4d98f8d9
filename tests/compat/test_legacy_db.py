"""Databases of the existing gym_gui app: migrated in place on open (after a backup), imported with
``python -m gym_gui.db import``, or refused and left byte-identical.

The legacy file is built here from the documented DDL (``legacy_schema``, EMBEDDING.md section 4)
with rows of every kind; every row must come back with equal values.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gym_gui.telemetry import legacy_migration
from gym_gui.telemetry.legacy_migration import LegacyDatabaseError
from gym_gui.telemetry.legacy_schema import LEGACY_EPISODE_COLUMNS, LEGACY_STEP_COLUMNS, create_legacy_schema
from gym_gui.telemetry.sqlite_schema import SCHEMA_VERSION, SchemaVersionError
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore

ROOT = Path(__file__).resolve().parents[2]
T = "2026-03-01T10:00:{:02d}.{:06d}+00:00"
_NAN_TAGGED = b'{"x": {"__float__": "nan"}, "y": {"__float__": "inf"}, "t": {"__tuple__": [1, 2]}}'


def _step(n: int, episode_id: str, step_index: int, **columns: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "episode_id": episode_id, "step_index": step_index, "action": step_index % 4,
        "observation": json.dumps({"pos": [n, step_index]}).encode(), "reward": 0.25 * n,
        "terminated": 0, "truncated": 0, "info": b'{"prob": 1.0}', "render_payload": b'{"grid": [["S", "G"]]}',
        "timestamp": T.format(n % 60, n), "agent_id": "agent1", "payload_version": 0,
    }
    row.update(columns)
    return row


def _legacy_rows() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[tuple[Any, ...]]]:
    steps = [
        _step(1, "run-a-ep000000", 0, run_id="run-a", render_hint=b'{"kind": "grid"}', frame_ref="frames/1.png",
              payload_version=2, time_step=11, game_id="FrozenLake-v1", space_signature=b'{"obs": "Discrete(16)"}',
              vector_metadata=b'{"envs": 1}', episode_seed=7),
        _step(2, "run-a-ep000000", 1, run_id="run-a", info=_NAN_TAGGED, terminated=1, action=None),
        _step(3, "run-a-ep000000", 1, run_id="run-a", reward=-1.5),  # repeated step index (kept: inserted before the trigger)
        _step(4, "run-b-ep000003", 0, run_id=None, agent_id=None, observation=b"[NaN, Infinity, -Infinity]"),
        _step(5, "run-w-w2-ep000001", 0, run_id="run-w", worker_id="2", agent_id=""),
        _step(6, "run-w-w3-ep000001", 0, run_id="run-w", worker_id="3", agent_id="", truncated=1),
        _step(7, "custom-episode", 0, run_id="run-a", observation=b"\xff\xfe not utf-8", render_payload=None),
        _step(8, "run-a-ep000000", 2, run_id="run-a", agent_id="agent2", info="{\"as\": \"text\"}"),
        _step(9, "run-a-ep000001", 0, run_id="run-a", obs_ref="obs/9.npy", reward=3),
    ]
    episodes = [
        {"episode_id": "run-a-ep000000", "total_reward": 0.75, "steps": 3, "terminated": 1, "truncated": 0,
         "metadata": b'{"episode_index": 0, "score": {"__float__": "nan"}}', "timestamp": T.format(20, 1),
         "agent_id": "agent1", "run_id": "run-a", "worker_id": None, "ep_index": 0, "game_id": "FrozenLake-v1"},
        {"episode_id": "run-b-ep000003", "total_reward": 1.0, "steps": 1, "terminated": 0, "truncated": 1,
         "metadata": None, "timestamp": T.format(21, 2), "agent_id": None, "run_id": None, "worker_id": None,
         "ep_index": None, "game_id": None},
        {"episode_id": "run-w-w2-ep000001", "total_reward": 1.25, "steps": 1, "terminated": 1, "truncated": 0,
         "metadata": b"{}", "timestamp": T.format(22, 3), "agent_id": "", "run_id": "run-w", "worker_id": "2",
         "ep_index": 1, "game_id": None},
        {"episode_id": "run-w-w3-ep000001", "total_reward": 1.5, "steps": 1, "terminated": 0, "truncated": 1,
         "metadata": b"{}", "timestamp": T.format(23, 4), "agent_id": "", "run_id": "run-w", "worker_id": "3",
         "ep_index": 1, "game_id": None},  # same (run, agent, index) as the one above: a negative one
        {"episode_id": "custom-episode", "total_reward": 1.75, "steps": 1, "terminated": 1, "truncated": 0,
         "metadata": b'{"note": "named"}', "timestamp": T.format(24, 5), "agent_id": "agent1", "run_id": "run-a",
         "worker_id": None, "ep_index": 9, "game_id": None},
        {"episode_id": "orphan", "total_reward": 0.0, "steps": 0, "terminated": 0, "truncated": 0,
         "metadata": b'{"no": "index"}', "timestamp": T.format(25, 6), "agent_id": None, "run_id": None,
         "worker_id": None, "ep_index": None, "game_id": None},  # no index anywhere: a negative one
    ]
    run_status = [("run-a", "active", None, None), ("run-gone", "deleted", T.format(30, 7), None),
                  ("run-old", "archived", None, T.format(31, 8))]
    return steps, episodes, run_status


def build_legacy_file(path: Path, *, journal_mode: str = "wal") -> None:
    """A database as the existing app writes it, with rows of every kind."""
    steps, episodes, run_status = _legacy_rows()
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute(f"PRAGMA journal_mode = {journal_mode}")
    create_legacy_schema(conn)
    conn.execute("DROP TRIGGER trigger_steps_unique")  # a file from before the trigger: a repeated step index
    for row in steps:
        conn.execute(f"INSERT INTO steps ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", tuple(row.values()))
    create_legacy_schema(conn)  # the trigger again (and IF NOT EXISTS for the rest)
    for row in episodes:
        conn.execute(f"INSERT INTO episodes VALUES ({', '.join('?' * len(LEGACY_EPISODE_COLUMNS))})",
                     tuple(row[c] for c in LEGACY_EPISODE_COLUMNS))
    conn.executemany("INSERT INTO run_status VALUES (?,?,?,?)", run_status)
    if journal_mode == "wal":
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def _dump(path: Path) -> list[str]:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def _json(blob: Any) -> Any:
    return json.loads(blob.decode() if isinstance(blob, bytes) else blob)


def _expected_step_payload(row: dict[str, Any], episode_index: int | None) -> dict[str, Any]:
    """What our store must read back for a legacy steps row (docs/schema.md, the mapping)."""
    p: dict[str, Any] = {"episode_index": episode_index, "step_index": row["step_index"], "action": row["action"]}
    if episode_index is None:
        del p["episode_index"]
    try:
        p["observation"] = _json(row["observation"])
    except UnicodeDecodeError:
        p["observation"] = {"__legacy_bytes_base64__": __import__("base64").b64encode(row["observation"]).decode()}
    p["reward"] = float(row["reward"])
    p["terminated"], p["truncated"] = bool(row["terminated"]), bool(row["truncated"])
    p["info"] = _json(row["info"])
    p["render_payload"] = None if row["render_payload"] is None else _json(row["render_payload"])
    for name in ("render_hint", "space_signature", "vector_metadata"):
        if row.get(name) is not None:
            p[name] = _json(row[name])
    for name in ("frame_ref", "obs_ref", "payload_version", "worker_id", "time_step", "episode_seed", "game_id"):
        if row.get(name) is not None and not (name == "payload_version" and row[name] == 0):  # 0: the default
            p[name] = row[name]
    return p


def _stream_key(row: dict[str, Any]) -> tuple[str, str]:
    run = row.get("run_id") or row["episode_id"].rsplit("-ep", 1)[0]
    return run, row.get("agent_id") or ""


def _raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(str(path), isolation_level=None)


def _equal_json(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)  # NaN == NaN, key order aside


def check_every_row_kept(path: Path) -> None:
    """Every legacy row is in ``path`` (a file of ours) with equal values."""
    steps, episodes, run_status = _legacy_rows()
    conn = _raw(path)
    assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')")}
    assert not {"run_status", "trigger_steps_unique"} & names and not any(n.startswith("legacy_") for n in names)
    store = TelemetrySQLiteStore(path)
    try:
        by_stream: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for row in steps:
            by_stream.setdefault(_stream_key(row), []).append(row)
        assert conn.execute("SELECT COUNT(*) FROM steps").fetchone() == (len(steps),)
        for (run, agent), rows in by_stream.items():
            stored = [e for e in store.events_after(run, agent or None, -1, limit=100) if "step_index" in e.payload
                      and "total_reward" not in e.payload]
            assert len(stored) == len(rows), (run, agent)
            for row, evt in zip(rows, stored):
                tail = row["episode_id"].rsplit("-ep", 1)[-1]
                index = int(tail) if tail.isdigit() else None  # an id that does not parse: no index, id kept
                assert _equal_json(dict(evt.payload), {**_expected_step_payload(row, index),
                                                       **({} if index is not None else {"episode_id": row["episode_id"]})})
                assert evt.ts_iso == row["timestamp"]
                assert conn.execute("SELECT episode_id, step_index, reward, run_id, agent_id, worker_id FROM steps "
                                    "WHERE run_id = ? AND agent_id = ? AND seq_id = ?", (run, agent, evt.seq_id)
                                    ).fetchone() == (row["episode_id"], row["step_index"], row["reward"], run, agent,
                                                     row.get("worker_id"))
        for episode_id in {row["episode_id"] for row in steps}:  # the existing app's record read
            assert len(store.episode_steps(episode_id)) == sum(r["episode_id"] == episode_id for r in steps)
        assert store.rejected_events() == []
        assert conn.execute("SELECT COUNT(*) FROM episodes").fetchone() == (len(episodes),)
        for row in episodes:
            found = conn.execute(
                "SELECT episode_id, total_reward, length, terminated, truncated, metadata_json, ts_iso, agent_id, "
                "run_id, worker_id, ep_index, episode_index FROM episodes WHERE episode_id = ?",
                (row["episode_id"],)).fetchall()
            assert len(found) == 1, row["episode_id"]
            (eid, total, length, term, trunc, metadata, ts, agent, run, worker, ep_index, index) = found[0]
            assert (eid, total, length, term, trunc, ts, worker) == (
                row["episode_id"], row["total_reward"], row["steps"], row["terminated"], row["truncated"],
                row["timestamp"], row["worker_id"])
            assert agent == (row["agent_id"] or "")
            assert run == (row["run_id"] or ("" if row["episode_id"] == "orphan" else _stream_key(row)[0]))
            renumbered = row["episode_id"] in ("run-w-w3-ep000001", "orphan")  # index taken by w2 / no index
            assert index == (-1 if renumbered else row["ep_index"] if row["ep_index"] is not None else 3)
            assert ep_index == (row["ep_index"] if row["ep_index"] is not None else index)
            assert _equal_json(json.loads(metadata), None if row["metadata"] is None else _json(row["metadata"]))
            (rollup,) = [r for r in store.episodes_for_run(run) if r.episode_id == row["episode_id"]]
            assert (rollup.total_reward, rollup.steps, rollup.worker_id) == (
                row["total_reward"], row["steps"], row["worker_id"])
        (record,) = [e for e in store.episode_records("run-a", "agent1") if e.episode_index == 0]
        assert record.payload["game_id"] == "FrozenLake-v1" and record.total_reward == 0.75
        status = {r.run_id: r.status for r in store.runs()}
        assert status == {"run-a": "running", "run-b": "running", "run-w": "running", "": "running",
                          "run-gone": "deleted", "run-old": "archived"}
        summary = store.run("run-gone").summary  # type: ignore[union-attr]
        assert summary == {"legacy_run_status": {"run_id": "run-gone", "status": "deleted",
                                                 "deleted_at": T.format(30, 7), "archived_at": None}}
        # seq_ids per stream in rowid order; an episode right after its last step
        assert [e.seq_id for e in store.events_after("run-a", "agent1", -1)] == [1, 2, 3, 4, 5, 6, 7]
        order = [("total_reward" in e.payload, e.payload.get("episode_index"))
                 for e in store.events_after("run-a", "agent1", -1)]
        assert order == [(False, 0), (False, 0), (False, 0), (True, 0), (False, None), (True, 9), (False, 1)]
        assert store.max_seq_id("run-a", "agent1") == 7
    finally:
        store.close()
        conn.close()


@pytest.mark.parametrize("journal_mode", ["wal", "delete"])
def test_the_store_migrates_an_existing_app_file_in_place_after_a_backup(tmp_path: Path, journal_mode: str) -> None:
    path = tmp_path / "telemetry.sqlite"
    build_legacy_file(path, journal_mode=journal_mode)
    original = _dump(path)
    store = TelemetrySQLiteStore(path)
    store.close()
    (backup,) = tmp_path.glob("telemetry.sqlite.pre-v2-*.bak")
    assert backup.name.endswith("Z.bak") and _dump(backup) == original
    check_every_row_kept(path)
    TelemetrySQLiteStore(path).close()  # a second open is an ordinary open: no second backup
    assert len(list(tmp_path.glob("*.bak"))) == 1


def test_two_stores_opening_one_existing_app_file_at_once_migrate_it_once(tmp_path: Path) -> None:
    path = tmp_path / "telemetry.sqlite"
    build_legacy_file(path)
    conn = sqlite3.connect(str(path), isolation_level=None)  # more rows, so the two opens overlap
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO steps (episode_id, step_index, action, observation, reward, terminated, truncated, "
                     "timestamp, agent_id, run_id) VALUES (?,?,?,?,?,?,?,?,?,?)",
                     [(f"run-z-ep{i // 100:06d}", i % 100, 0, b"[0]", 0.0, 0, 0, T.format(0, i), "z", "run-z")
                      for i in range(20_000)])
    conn.execute("COMMIT")
    conn.close()
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def open_store() -> None:
        start.wait()
        try:
            TelemetrySQLiteStore(path).close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and not any(t.is_alive() for t in threads)
    assert len(list(tmp_path.glob("*.bak"))) == 1
    with TelemetrySQLiteStore(path) as store:
        assert store.step_count("run-z") == 20_000 and store.step_count("run-a") == 6


def test_a_migrated_file_takes_new_writes_and_its_streams_continue(tmp_path: Path, factory: Any) -> None:
    path = tmp_path / "telemetry.sqlite"
    build_legacy_file(path)
    with TelemetrySQLiteStore(path) as store:
        nxt = factory("run-a", "agent1", first_seq=store.max_seq_id("run-a", "agent1") + 1)  # type: ignore[operator]
        result = store.write_batch([nxt.step(2, 0), nxt.episode(2, 1)])
        assert result.inserted == 2 and not result.rejected
        assert store.max_seq_id("run-a", "agent1") == 9
    assert _raw(path).execute("SELECT episode_id FROM episodes WHERE ep_index = 2").fetchall() == [("run-a-ep000002",)]


def test_the_import_command_converts_a_copy_and_never_writes_the_old_file(tmp_path: Path) -> None:
    old = tmp_path / "telemetry.sqlite"
    build_legacy_file(old, journal_mode="delete")
    before = old.read_bytes()
    new = tmp_path / "out" / "ours.sqlite"
    done = subprocess.run([sys.executable, "-m", "gym_gui.db", "import", str(old), str(new)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "steps: 9" in done.stdout and "episodes: 6 (2 stored at a negative episode_index" in done.stdout
    assert "runs: 6 (3 run_status rows)" in done.stdout
    assert old.read_bytes() == before and not list(tmp_path.glob("*.bak"))
    check_every_row_kept(new)
    info = subprocess.run([sys.executable, "-m", "gym_gui.db", "info", str(old)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert info.returncode == 0 and "existing gym_gui app" in info.stdout and "steps: 9 rows" in info.stdout
    info = subprocess.run([sys.executable, "-m", "gym_gui.db", "info", str(new)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert f"schema version {SCHEMA_VERSION}" in info.stdout and "steps: 9 rows" in info.stdout


def _gym_db(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gym_gui.db", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


def test_the_import_command_refuses_clearly(tmp_path: Path) -> None:
    old = tmp_path / "telemetry.sqlite"
    build_legacy_file(old)
    done = _gym_db("import", str(tmp_path / "missing.sqlite"), str(tmp_path / "n1.sqlite"))
    assert done.returncode == 1 and "missing.sqlite does not exist" in done.stderr
    ours = tmp_path / "ours.sqlite"
    TelemetrySQLiteStore(ours).close()
    done = _gym_db("import", str(old), str(ours))
    assert done.returncode == 1 and "exists and is not empty" in done.stderr
    done = _gym_db("import", str(ours), str(tmp_path / "n2.sqlite"))
    assert done.returncode == 1 and "already a gym_gui telemetry database" in done.stderr
    assert not (tmp_path / "n1.sqlite").exists() and not (tmp_path / "n2.sqlite").exists()
    assert _gym_db("import", str(old)).returncode == 2  # usage error
    assert "import" in _gym_db("--help").stdout


def _refused_unchanged(path: Path, match: str) -> pytest.ExceptionInfo[SchemaVersionError]:
    before = path.read_bytes()
    with pytest.raises(SchemaVersionError, match=match) as caught:
        TelemetrySQLiteStore(path)
    assert path.read_bytes() == before
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
    return caught


def test_a_file_of_an_early_app_version_without_the_later_columns_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "telemetry.sqlite"
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("CREATE TABLE steps (episode_id TEXT NOT NULL, step_index INTEGER NOT NULL, action INTEGER, "
                 "observation BLOB, reward REAL NOT NULL, terminated INTEGER NOT NULL, truncated INTEGER NOT NULL, "
                 "info BLOB, render_payload BLOB, timestamp TEXT NOT NULL)")
    conn.execute("CREATE TABLE episodes (episode_id TEXT PRIMARY KEY, total_reward REAL NOT NULL, steps INTEGER NOT NULL, "
                 "terminated INTEGER NOT NULL, truncated INTEGER NOT NULL, metadata BLOB, timestamp TEXT NOT NULL)")
    conn.executemany("INSERT INTO steps VALUES (?,?,?,?,?,?,?,?,?,?)",
                     [("old-run-ep000004", i, 1, b"[1]", 1.0, int(i == 1), 0, b"{}", None, T.format(i, 0))
                      for i in range(2)])
    conn.execute("INSERT INTO episodes VALUES (?,?,?,?,?,?,?)",
                 ("old-run-ep000004", 2.0, 2, 1, 0, b'{"seed": 3}', T.format(5, 0)))
    conn.close()
    with TelemetrySQLiteStore(path) as store:
        steps = store.steps_for_episode("old-run", None, 4)
        assert [(s.step_index, s.terminated, s.payload["render_payload"]) for s in steps] == [
            (0, False, None), (1, True, None)]
        (episode,) = store.episode_records("old-run")
        assert (episode.episode_index, episode.total_reward, episode.length, episode.payload["metadata"]) == (
            4, 2.0, 2, {"seed": 3})
        assert [r.run_id for r in store.runs()] == ["old-run"]
    assert _raw(path).execute("SELECT episode_id, ep_index FROM episodes").fetchall() == [("old-run-ep000004", 4)]


def test_a_foreign_file_is_refused_and_left_byte_identical(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    conn = sqlite3.connect(str(path))
    conn.execute("CREATE TABLE steps (episode_id TEXT, step_index INTEGER, reward REAL, timestamp TEXT)")
    conn.execute("CREATE TABLE notes (t TEXT)")
    conn.commit()
    conn.close()
    _refused_unchanged(path, "not a gym_gui telemetry database.*left unchanged")


def test_a_read_only_legacy_file_is_refused_and_left_byte_identical(tmp_path: Path) -> None:
    path = tmp_path / "telemetry.sqlite"
    build_legacy_file(path, journal_mode="delete")
    path.chmod(0o444)
    try:
        caught = _refused_unchanged(path, r"existing gym_gui app.*read-only.*left unchanged")
        assert isinstance(caught.value, LegacyDatabaseError)
        assert "python -m gym_gui.db import" in str(caught.value)
        assert not list(tmp_path.glob("*.bak"))
    finally:
        path.chmod(0o644)


def test_a_legacy_file_with_a_view_of_its_own_is_refused_unchanged_and_can_be_imported(tmp_path: Path) -> None:
    path = tmp_path / "telemetry.sqlite"
    build_legacy_file(path, journal_mode="delete")
    conn = sqlite3.connect(str(path))
    conn.execute("CREATE VIEW rewards AS SELECT episode_id, SUM(reward) AS total FROM steps GROUP BY episode_id")
    conn.commit()
    conn.close()
    caught = _refused_unchanged(path, r"it also has view rewards, which renaming.*left unchanged")
    assert "python -m gym_gui.db import" in str(caught.value)
    done = _gym_db("import", str(path), str(tmp_path / "ours.sqlite"))
    assert done.returncode == 0, done.stderr
    check_every_row_kept(tmp_path / "ours.sqlite")


@pytest.mark.parametrize("journal_mode", ["wal", "delete"])
def test_a_migration_that_fails_midway_leaves_the_file_byte_identical(tmp_path: Path, journal_mode: str,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "telemetry.sqlite"
    build_legacy_file(path, journal_mode=journal_mode)
    original = _dump(path)

    def fail() -> None:  # everything converted, just before COMMIT
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(legacy_migration, "before_commit", fail)
    caught = _refused_unchanged(path, r"migration failed \(OperationalError: database or disk is full\)")
    (backup,) = tmp_path.glob("*.bak")
    assert str(backup) in str(caught.value) and _dump(backup) == original
    monkeypatch.setattr(legacy_migration, "before_commit", None)
    TelemetrySQLiteStore(path).close()  # the cause gone, the next open migrates (with a backup of its own)
    check_every_row_kept(path)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (root only), so the free-space check meets a real file system."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root to mount a small tmpfs")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_legacy_file_on_a_disk_too_full_to_migrate_is_refused_unchanged(small_disk: Path) -> None:
    path = small_disk / "telemetry.sqlite"
    build_legacy_file(path, journal_mode="delete")
    caught = _refused_unchanged(path, r"not enough free disk.*left unchanged")
    assert "python -m gym_gui.db import" in str(caught.value)
    assert not list(small_disk.glob("*.bak"))


def test_migrate_alone_names_an_existing_app_file(tmp_path: Path) -> None:
    from gym_gui.telemetry.sqlite_schema import migrate

    path = tmp_path / "telemetry.sqlite"
    build_legacy_file(path, journal_mode="delete")
    conn = sqlite3.connect(str(path), isolation_level=None)
    with pytest.raises(SchemaVersionError, match="existing gym_gui app.*python -m gym_gui.db import"):
        migrate(conn, str(path))
    conn.close()


def test_the_steps_columns_of_the_documented_ddl_are_in_disk_order(tmp_path: Path) -> None:
    conn = sqlite3.connect(str(tmp_path / "x.sqlite"))
    create_legacy_schema(conn)
    assert tuple(r[1] for r in conn.execute("PRAGMA table_info(steps)")) == LEGACY_STEP_COLUMNS
    assert tuple(r[1] for r in conn.execute("PRAGMA table_info(episodes)")) == LEGACY_EPISODE_COLUMNS
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")}
    assert len(indexes) == 14 and "idx_episodes_unique_run_worker_ep_index" in indexes
    conn.close()
