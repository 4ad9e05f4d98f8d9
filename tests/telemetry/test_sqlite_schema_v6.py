"""Schema version 6: the episodes' insert trigger runs only for a row whose app columns
(``episode_id``, ``ep_index``, ``worker_id``) are not the rule's. The store binds them for rows
without extras; every row, ours or a raw writer's, ends with exactly the rule's values; a version 5
file is migrated keeping every row."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from old_builds import old_build

from gym_gui.telemetry.sqlite_batch import EPISODE_ROWS
from gym_gui.telemetry.sqlite_rows import encode_episode
from gym_gui.telemetry.sqlite_schema import SCHEMA_VERSION
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore
from gym_gui.telemetry.tables import EP_INDEX_SQL, EPISODE_ID_SQL, WORKER_ID_SQL

_RULE = (f"SELECT episode_id, ep_index, worker_id, {EPISODE_ID_SQL}, {EP_INDEX_SQL}, {WORKER_ID_SQL} "
         "FROM episodes ORDER BY rowid")


def _raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(str(path), isolation_level=None)


def _episodes(factory: Any) -> list[Any]:
    """Plain rows (one at a negative index), and rows whose extras carry a worker, an id, an ep_index."""
    a = factory("run-a", "agent1")
    b = factory("run-b", None)
    return [a.episode(0, 3), a.episode(1, 2, worker_id="w7"), a.episode(2, 2, episode_id="mine-2"),
            a.episode(3, 1, ep_index=30), a.episode(-1, 1), b.episode(123456789, 4), b.episode(5, 1, worker_id="")]


def _app_columns(path: Path) -> list[tuple[Any, ...]]:
    conn = _raw(path)
    try:
        rows = conn.execute(_RULE).fetchall()
    finally:
        conn.close()
    assert all(r[:3] == r[3:] for r in rows), rows  # every row holds exactly what the rule gives
    return [r[:3] for r in rows]


def test_the_stores_rows_hold_the_rules_app_columns(store: TelemetrySQLiteStore, db_path: Path,
                                                    factory: Any) -> None:
    store.write_batch(_episodes(factory))
    assert SCHEMA_VERSION == 6
    assert _app_columns(db_path) == [
        ("run-a-ep000000", 0, None), ("run-a-ww7-ep000001", 1, "w7"), ("mine-2", 2, None),
        ("run-a-ep000003", 30, None), ("", -1, None), ("run-b-ep123456789", 123456789, None),
        ("run-b-ep000005", 5, ""),
    ]


def test_rows_are_written_once_and_only_those_with_unusual_extras_completed_by_the_trigger(
        store: TelemetrySQLiteStore, db_path: Path, factory: Any) -> None:
    store.write_batch([factory("seed", "a").episode(0, 1)])  # the file exists, with its schema
    f = factory("run-t", "a1")
    plain = [encode_episode(f.episode(i, 2)) for i in range(20)]
    extras = [encode_episode(f.episode(20 + i, 2, worker_id="w", episode_id=None if i % 2 else f"id-{i}",
                                       ep_index=None if i < 3 else 40 + i)) for i in range(5)]
    unusual = [encode_episode(f.episode(25, 2, ep_index=1.5)),  # not an integer: the trigger's rule decides
               encode_episode(f.episode(26, 2, loss=float("nan")))]  # extras orjson does not read
    conn = _raw(db_path)
    try:
        conn.execute("BEGIN IMMEDIATE")
        for rows, changes in ((plain, 20), (extras, 5), (unusual, 4)):
            before = conn.total_changes
            assert EPISODE_ROWS.insert(conn, rows) == len(rows)
            assert conn.total_changes - before == changes  # one insert a row; a trigger UPDATE more
        conn.execute("COMMIT")
    finally:
        conn.close()
    columns = _app_columns(db_path)
    assert columns[1:] == [(f"run-t-ep{i:06d}", i, None) for i in range(20)] + [
        ("id-0", 20, "w"), ("run-t-ww-ep000021", 21, "w"), ("id-2", 22, "w"), ("run-t-ww-ep000023", 43, "w"),
        ("id-4", 44, "w"), ("run-t-ep000025", 1.5, None), ("run-t-ep000026", 26, None)]


def test_a_raw_writer_gets_the_app_columns_whatever_it_gives(store: TelemetrySQLiteStore, db_path: Path,
                                                            factory: Any) -> None:
    store.write_batch([factory("seed", "a").episode(0, 1)])
    conn = _raw(db_path)
    try:
        conn.execute("INSERT INTO episodes (run_id, agent_id, episode_index, seq_id, ts_iso) "
                     "VALUES ('raw', 'a', 4, 1, 't')")  # without them (the existing app's writer)
        conn.execute("INSERT INTO episodes (run_id, agent_id, episode_index, seq_id, ts_iso, episode_id, ep_index, "
                     "worker_id) VALUES ('raw', 'a', 5, 2, 't', 'wrong', 99, 'x')")  # with other values
        conn.execute("INSERT INTO episodes (run_id, agent_id, episode_index, seq_id, ts_iso, extra_json, "
                     "episode_id, ep_index) VALUES ('raw', 'a', 6, 3, 't', '{\"worker_id\":\"w2\"}', "
                     "'raw-ep000006', 6)")  # the plain id, though the extras name a worker
    finally:
        conn.close()
    assert _app_columns(db_path)[1:] == [("raw-ep000004", 4, None), ("raw-ep000005", 5, None),
                                         ("raw-ww2-ep000006", 6, "w2")]


def test_a_version_5_file_is_migrated_keeping_every_row(db_path: Path, factory: Any,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    events = _episodes(factory)
    with old_build(monkeypatch, 5):  # write a file as the version 5 build did
        with TelemetrySQLiteStore(db_path) as old:
            old.write_batch(events[:4])
    tables = ("episodes", "runs", "streams", "run_events", "step_rows")
    conn = _raw(db_path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone() == (5,)
        before = {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3").fetchall() for t in tables}
    finally:
        conn.close()
    with TelemetrySQLiteStore(db_path) as store:
        conn = _raw(db_path)
        try:
            assert conn.execute("PRAGMA user_version").fetchone() == (6,)
            assert {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3").fetchall() for t in tables} == before
            trigger = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'episodes_app_columns_on_insert'"
                                   ).fetchone()[0]
            assert "WHEN NEW.episode_id IS NOT" in trigger
        finally:
            conn.close()
        store.write_batch(events[4:])
    assert len(_app_columns(db_path)) == len(events)
