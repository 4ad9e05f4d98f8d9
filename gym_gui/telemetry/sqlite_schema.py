"""Telemetry database schema: connection PRAGMAs, DDL and forward migrations (Qt-free).

The schema version lives in ``PRAGMA user_version``. ``MIGRATIONS[i]`` upgrades a file from
version ``i`` to ``i + 1``; opening a file applies the missing ones, each in its own transaction.
A file written by a newer build (higher version) is refused with ``SchemaVersionError``.
See docs/schema.md for the tables, keys and the queries that use them.
"""

from __future__ import annotations

import sqlite3

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SchemaVersionError",
    "configure_connection",
    "migrate",
]

#: Version 1: runs, streams, steps, episodes, run_events.
_V1: tuple[str, ...] = (
    """
    CREATE TABLE runs (
        run_id              TEXT PRIMARY KEY,
        status              TEXT NOT NULL,
        outcome             TEXT,
        env_id              TEXT,
        config_json         TEXT,
        created_at          TEXT NOT NULL,
        started_at          TEXT,
        completed_at        TEXT,
        last_heartbeat_at   TEXT,
        last_heartbeat_json TEXT,
        exit_code           INTEGER,
        signal              TEXT,
        stderr_tail         TEXT,
        summary_json        TEXT,
        updated_at          TEXT NOT NULL
    )
    """,
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
    """
    CREATE TABLE steps (
        run_id              TEXT NOT NULL,
        agent_id            TEXT NOT NULL,
        seq_id              INTEGER NOT NULL,
        episode_index       INTEGER,
        step_index          INTEGER,
        action_json         TEXT,
        observation_json    TEXT,
        reward              REAL,
        terminated          INTEGER,
        truncated           INTEGER,
        info_json           TEXT,
        render_payload_json TEXT,
        extra_json          TEXT,
        ts_iso              TEXT NOT NULL,
        PRIMARY KEY (run_id, agent_id, seq_id)
    )
    """,
    "CREATE INDEX steps_by_episode ON steps (run_id, agent_id, episode_index, seq_id)",
    """
    CREATE TABLE episodes (
        run_id         TEXT NOT NULL,
        agent_id       TEXT NOT NULL,
        episode_index  INTEGER NOT NULL,
        seq_id         INTEGER NOT NULL,
        total_reward   REAL,
        length         INTEGER,
        terminated     INTEGER,
        truncated      INTEGER,
        outcome        TEXT,
        metadata_json  TEXT,
        extra_json     TEXT,
        ts_iso         TEXT NOT NULL,
        PRIMARY KEY (run_id, agent_id, episode_index)
    )
    """,
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

#: ``MIGRATIONS[i]`` takes a database from user_version ``i`` to ``i + 1``.
MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1,)
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


def _user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _check_version(version: int, path: str) -> None:
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{path} has telemetry schema version {version}, but this gym_gui build only knows "
            f"versions up to {SCHEMA_VERSION}; open it with a newer gym_gui or choose another file"
        )


def _check_empty(conn: sqlite3.Connection, path: str) -> None:
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    if tables:
        raise SchemaVersionError(
            f"{path} has tables {sorted(tables)} but no telemetry schema version (user_version 0); "
            "it is not a gym_gui telemetry database: move it aside or choose another file"
        )
