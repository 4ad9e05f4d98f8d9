"""Telemetry database schema: connection PRAGMAs, DDL and forward migrations (Qt-free).

The schema version lives in ``PRAGMA user_version``. ``MIGRATIONS[i]`` upgrades a file from
version ``i`` to ``i + 1``; opening a file applies the missing ones, each in its own transaction.
A file written by a newer build (higher version) is refused with ``SchemaVersionError``.
Version 2 adds the columns the existing gym_gui application reads with raw SQL (``episode_id``,
``worker_id``, ``ep_index``); a file of that application (user_version 0 with its own tables) is
converted by ``legacy_migration``, never here. Version 3 adds ``stream_owners`` (which live process
writes a stream). Version 4 moves the steps into ``step_rows`` behind the view ``steps``
(``step_layout``). Version 5 splits an info text into a template and its last number. Version 6
runs the episodes' insert trigger only for rows whose app columns are not given right. See
docs/schema.md for the tables, keys and queries.
"""

from __future__ import annotations

import sqlite3

from gym_gui.telemetry.legacy_schema import is_legacy_layout, table_columns
from gym_gui.telemetry.step_layout import V4_STATEMENTS, added_statements, view_sql
from gym_gui.telemetry.tables import (
    EP_INDEX_SQL,
    EPISODE_ID_SQL,
    EPISODES,
    RUNS,
    STEPS,
    WORKER_ID_SQL,
    ep_index_sql,
    episode_id_sql,
    latest_version,
    tables,
    worker_id_sql,
)

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "EPISODE_ID_SQL",
    "MIN_SQLITE_VERSION",
    "SchemaVersionError",
    "WORKER_ID_SQL",
    "check_sqlite_features",
    "configure_connection",
    "migrate",
]

#: Version 1: runs, streams, steps, episodes, run_events (the declared tables' DDL: ``tables``).
_V1: tuple[str, ...] = (
    RUNS.create_sql(),
    """
    CREATE TABLE streams (
        run_id        TEXT NOT NULL,
        agent_id      TEXT NOT NULL,
        max_seq_id    INTEGER NOT NULL,
        first_ts_iso  TEXT NOT NULL,
        last_ts_iso   TEXT NOT NULL,
        PRIMARY KEY (run_id, agent_id)
    ) WITHOUT ROWID
    """,
    STEPS.create_sql(),
    "CREATE INDEX steps_by_episode ON steps (run_id, agent_id, episode_index, seq_id)",
    EPISODES.create_sql(),
    "CREATE INDEX episodes_by_seq ON episodes (run_id, agent_id, seq_id)",
    """
    CREATE TABLE run_events (
        run_id        TEXT NOT NULL,
        agent_id      TEXT NOT NULL,
        seq_id        INTEGER NOT NULL,
        topic         TEXT NOT NULL,
        ts_iso        TEXT NOT NULL,
        payload_json  TEXT NOT NULL,
        error         TEXT,
        PRIMARY KEY (run_id, agent_id, seq_id)
    )
    """,
)

_SET_EPISODE_COLUMNS = (
    f"UPDATE episodes SET episode_id = {EPISODE_ID_SQL}, ep_index = {EP_INDEX_SQL}, worker_id = {WORKER_ID_SQL}"
)

#: Version 2: the columns the existing gym_gui's raw SQL reads. On ``steps`` (the big table) they
#: are VIRTUAL generated columns: no bytes on disk and no cost on insert (no index uses them).
#: On ``episodes`` (one row per episode) they are real columns, filled by triggers (``ep_index`` is
#: the ``ep_index`` kept in the extras of an episode stored at another index, else ``episode_index``), so that
#: ``PRAGMA table_info(episodes)`` lists them (it omits generated columns) and the existing
#: app's ``MAX(ep_index)`` by run and worker has an index.
_V2: tuple[str, ...] = (
    *STEPS.added_sql(2),
    *EPISODES.added_sql(2),
    _SET_EPISODE_COLUMNS,
    f"""
    CREATE TRIGGER episodes_app_columns_on_insert AFTER INSERT ON episodes BEGIN
        {_SET_EPISODE_COLUMNS} WHERE rowid = NEW.rowid;
    END
    """,
    f"""
    CREATE TRIGGER episodes_app_columns_on_update AFTER UPDATE OF run_id, episode_index, extra_json ON episodes
    BEGIN
        {_SET_EPISODE_COLUMNS} WHERE rowid = NEW.rowid;
    END
    """,
    "CREATE INDEX episodes_by_episode_id ON episodes (episode_id)",
    "CREATE INDEX episodes_by_worker ON episodes (run_id, worker_id, ep_index)",
)

#: Version 3: who writes a live stream (``stream_owners.py``): one row per claimed stream, naming the
#: process (pid, host, its start time in clock ticks since boot and the kernel's boot id) and when
#: it claimed the stream. Nothing else changes; every row of a version 2 file stays.
_V3: tuple[str, ...] = (
    """
    CREATE TABLE stream_owners (
        run_id         TEXT NOT NULL,
        agent_id       TEXT NOT NULL,
        pid            INTEGER NOT NULL,
        host           TEXT NOT NULL,
        process_start  INTEGER,
        boot_id        TEXT,
        claimed_at     TEXT NOT NULL,
        PRIMARY KEY (run_id, agent_id)
    ) WITHOUT ROWID
    """,
)

#: Version 4: steps in ``step_rows`` (WITHOUT ROWID, keyed by an interned stream and seq_id, no other
#: index), repeated info/render texts in ``step_values``, canonical timestamps as integers, one
#: ``episode_spans`` row per episode, and the VIEW ``steps`` with the version 3 columns
#: (``step_layout``). Every step of a version 3 file is moved in the migration's transaction.
_V4: tuple[str, ...] = V4_STATEMENTS

#: Version 5: an info text split into an interned template and its last number (``info_numbers``):
#: the number in ``step_rows.info_json``, the template's ref in ``extra_json`` (``step_layout``); only
#: the view ``steps`` is made again to join them. Every row stays as it was.
_V5: tuple[str, ...] = ("DROP VIEW steps", view_sql(5))

#: Version 6: the episodes' insert trigger runs only when a new row's ``episode_id``, ``ep_index`` or
#: ``worker_id`` is not what the rule gives (``IS NOT``: NULL counts as different). The store's
#: writer binds them as the rule gives them (``sqlite_batch.EPISODE_ROWS``, ``tables.episode_app_values``),
#: so its rows are written once instead of inserted and then updated (about 8 us an episode, with
#: three indexes); any other writer (raw SQL without them, or with other values), and a row whose
#: extras the store leaves to the rule, gets them from the trigger as before.
_V6: tuple[str, ...] = (
    "DROP TRIGGER episodes_app_columns_on_insert",
    f"""
    CREATE TRIGGER episodes_app_columns_on_insert AFTER INSERT ON episodes
    WHEN NEW.episode_id IS NOT ({episode_id_sql("NEW.")}) OR NEW.ep_index IS NOT ({ep_index_sql("NEW.")})
         OR NEW.worker_id IS NOT ({worker_id_sql("NEW.")})
    BEGIN
        {_SET_EPISODE_COLUMNS} WHERE rowid = NEW.rowid;
    END
    """,
)

#: The statements of each version besides the declared tables' added columns.
_STATEMENTS: tuple[tuple[str, ...], ...] = (_V1, _V2, _V3, _V4, _V5, _V6)


def _added(version: int) -> tuple[str, ...]:
    """The statements of the declared columns added in ``version``: ``ALTER TABLE`` of episodes and
    runs; a steps column goes to ``step_rows`` from version 4 on, and the view is made again."""
    out: list[str] = []
    for table in tables():
        if table is STEPS and version > 4:
            out += added_statements(version)
        else:
            out += table.added_sql(version)
    return tuple(out)


def _migrations() -> tuple[tuple[str, ...], ...]:
    """Every version's statements: the ones above, then (from version 3 on) the statements of each
    declared column added in that version (``tables.add_column``)."""
    versions = max(len(_STATEMENTS), latest_version())
    out = []
    for version in range(1, versions + 1):
        fixed = _STATEMENTS[version - 1] if version <= len(_STATEMENTS) else ()
        added = () if version <= 2 else _added(version)
        out.append(fixed + added)
    return tuple(out)


#: ``MIGRATIONS[i]`` takes a database from user_version ``i`` to ``i + 1``.
MIGRATIONS: tuple[tuple[str, ...], ...] = _migrations()
#: The version this build writes.
SCHEMA_VERSION = len(MIGRATIONS)


class SchemaVersionError(RuntimeError):
    """The database file cannot be used by this build (newer version, or not a telemetry file)."""


def configure_connection(conn: sqlite3.Connection, *, busy_timeout_s: float) -> None:
    """Apply the per-connection PRAGMAs: WAL, synchronous=NORMAL, busy_timeout. Blocks briefly."""
    conn.execute(f"PRAGMA busy_timeout = {max(0, int(busy_timeout_s * 1000))}")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise sqlite3.OperationalError(f"could not switch the database to WAL (journal_mode={mode})")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = OFF")


def migrate(conn: sqlite3.Connection, path: str) -> int:
    """Bring the file up to ``SCHEMA_VERSION``; returns the version it had. Caller's thread; blocks.

    ``conn`` must be in autocommit mode (``isolation_level=None``). Each step runs under
    ``BEGIN IMMEDIATE`` and re-reads the version, so two processes opening one file stay safe.
    """
    found = _user_version(conn)
    _check_version(found, path)
    if found < 2 <= len(MIGRATIONS):
        check_sqlite_features(conn, path)
    version = found
    while version < SCHEMA_VERSION:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = _user_version(conn)
            _check_version(version, path)
            if version == 0:
                _check_empty(conn, path)
            if version < SCHEMA_VERSION:
                for statement in MIGRATIONS[version]:
                    conn.execute(statement)
                version += 1
                conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return found


#: Generated columns (version 2) need SQLite 3.31.
MIN_SQLITE_VERSION = (3, 31, 0)


def check_sqlite_features(conn: sqlite3.Connection, path: str) -> None:
    """Raise SchemaVersionError when this Python's SQLite cannot hold schema version 2. Caller's thread."""
    if sqlite3.sqlite_version_info < MIN_SQLITE_VERSION:
        raise SchemaVersionError(
            f"{path}: this Python's SQLite is {sqlite3.sqlite_version}, but the telemetry schema needs "
            f"SQLite {'.'.join(map(str, MIN_SQLITE_VERSION))} or newer (generated columns); "
            "use a Python built with a newer SQLite"
        )
    try:
        conn.execute("SELECT json_valid('{}'), json_extract('{\"a\":1}', '$.a')").fetchone()
    except sqlite3.OperationalError as exc:
        raise SchemaVersionError(
            f"{path}: this Python's SQLite {sqlite3.sqlite_version} has no JSON functions ({exc}); "
            "use a Python built with SQLite's JSON support"
        ) from exc


def _user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _check_version(version: int, path: str) -> None:
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{path} has telemetry schema version {version}, but this gym_gui build only knows "
            f"versions up to {SCHEMA_VERSION}; open it with a newer gym_gui or choose another file"
        )


def _check_empty(conn: sqlite3.Connection, path: str) -> None:
    names = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")]
    if not names:
        return
    if is_legacy_layout({name: table_columns(conn, name) for name in names}):
        raise SchemaVersionError(
            f"{path} is a telemetry database of the existing gym_gui app (user_version 0, tables {sorted(names)}); "
            "open it with TelemetrySQLiteStore, which migrates it in place after a backup copy, or convert it "
            f"into a new file with `python -m gym_gui.db import {path} NEW.sqlite`"
        )
    raise SchemaVersionError(
        f"{path} has tables {sorted(names)} but no telemetry schema version (user_version 0); "
        "it is not a gym_gui telemetry database: move it aside or choose another file"
    )
