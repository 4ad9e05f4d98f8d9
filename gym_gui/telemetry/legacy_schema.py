"""The existing gym_gui application's telemetry database layout (Qt-free, DDL and detection only).

This is the schema that application's ``TelemetrySQLiteStore`` writes to
``var/telemetry/telemetry.sqlite`` (documented in EMBEDDING.md section 4): tables ``steps``,
``episodes`` and ``run_status``, the trigger ``trigger_steps_unique`` and its indexes;
``PRAGMA user_version`` stays 0. This project never writes this layout in its own files; it is
here to recognise such a file (``is_legacy_layout``) and, in tests, to build one
(``create_legacy_schema``). Converting one is ``legacy_migration``.
"""

from __future__ import annotations

import sqlite3
from typing import Mapping

__all__ = [
    "LEGACY_DDL",
    "LEGACY_EPISODE_COLUMNS",
    "LEGACY_RUN_STATUS_COLUMNS",
    "LEGACY_STEP_COLUMNS",
    "LEGACY_TABLES",
    "create_legacy_schema",
    "is_legacy_layout",
    "table_columns",
]

#: Columns of ``steps`` in on-disk order.
LEGACY_STEP_COLUMNS: tuple[str, ...] = (
    "episode_id", "step_index", "action", "observation", "reward", "terminated", "truncated", "info",
    "render_payload", "timestamp", "agent_id", "render_hint", "frame_ref", "obs_ref", "payload_version",
    "run_id", "worker_id", "space_signature", "vector_metadata", "time_step", "episode_seed", "game_id",
)
#: Columns of ``episodes`` in on-disk order.
LEGACY_EPISODE_COLUMNS: tuple[str, ...] = (
    "episode_id", "total_reward", "steps", "terminated", "truncated", "metadata", "timestamp", "agent_id",
    "run_id", "worker_id", "ep_index", "game_id",
)
#: Columns of ``run_status`` in on-disk order.
LEGACY_RUN_STATUS_COLUMNS: tuple[str, ...] = ("run_id", "status", "deleted_at", "archived_at")

#: The tables such a file may hold (run_status and the later columns came with migrations).
LEGACY_TABLES = frozenset(("steps", "episodes", "run_status"))

LEGACY_DDL: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS steps (
        episode_id TEXT NOT NULL,
        step_index INTEGER NOT NULL,
        action INTEGER,
        observation BLOB,
        reward REAL NOT NULL,
        terminated INTEGER NOT NULL,
        truncated INTEGER NOT NULL,
        info BLOB,
        render_payload BLOB,
        timestamp TEXT NOT NULL,
        agent_id TEXT,
        render_hint BLOB,
        frame_ref TEXT,
        obs_ref TEXT,
        payload_version INTEGER NOT NULL DEFAULT 0,
        run_id TEXT,
        worker_id TEXT,
        space_signature BLOB,
        vector_metadata BLOB,
        time_step INTEGER,
        episode_seed INTEGER,
        game_id TEXT
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS episodes (
        episode_id TEXT PRIMARY KEY,
        total_reward REAL NOT NULL,
        steps INTEGER NOT NULL,
        terminated INTEGER NOT NULL,
        truncated INTEGER NOT NULL,
        metadata BLOB,
        timestamp TEXT NOT NULL,
        agent_id TEXT,
        run_id TEXT,
        worker_id TEXT,
        ep_index INTEGER,
        game_id TEXT
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS run_status (
        run_id TEXT PRIMARY KEY,
        status TEXT NOT NULL DEFAULT 'active',
        deleted_at TEXT,
        archived_at TEXT
    )
    """,
    """
    CREATE TRIGGER IF NOT EXISTS trigger_steps_unique BEFORE INSERT ON steps
    WHEN EXISTS (SELECT 1 FROM steps WHERE episode_id = NEW.episode_id AND step_index = NEW.step_index)
    BEGIN
        SELECT RAISE(IGNORE);
    END
    """,
    "CREATE INDEX IF NOT EXISTS idx_steps_episode ON steps (episode_id, step_index)",
    "CREATE INDEX IF NOT EXISTS idx_steps_run ON steps (run_id, episode_id)",
    "CREATE INDEX IF NOT EXISTS idx_steps_run_id ON steps (run_id)",
    "CREATE INDEX IF NOT EXISTS idx_steps_run_id_agent_id ON steps (run_id, agent_id)",
    "CREATE INDEX IF NOT EXISTS idx_steps_run_worker ON steps (run_id, worker_id, episode_id)",
    "CREATE INDEX IF NOT EXISTS idx_steps_game_id ON steps (game_id)",
    "CREATE INDEX IF NOT EXISTS idx_episodes_run ON episodes (run_id, agent_id, episode_id)",
    "CREATE INDEX IF NOT EXISTS idx_episodes_run_id ON episodes (run_id)",
    "CREATE INDEX IF NOT EXISTS idx_episodes_timestamp ON episodes (timestamp)",
    "CREATE INDEX IF NOT EXISTS idx_episodes_run_agent_ts ON episodes (run_id, agent_id, timestamp)",
    "CREATE INDEX IF NOT EXISTS idx_episodes_run_ep_index ON episodes (run_id, ep_index DESC)",
    "CREATE UNIQUE INDEX IF NOT EXISTS idx_episodes_unique_run_worker_ep_index "
    "ON episodes (run_id, worker_id, ep_index)",
    "CREATE INDEX IF NOT EXISTS idx_episodes_run_worker ON episodes (run_id, worker_id, episode_id)",
    "CREATE INDEX IF NOT EXISTS idx_episodes_game_id ON episodes (game_id)",
)

#: Columns without which a table of that name is not the existing app's.
_REQUIRED: Mapping[str, frozenset[str]] = {
    "steps": frozenset(("episode_id", "step_index", "reward", "timestamp")),
    "episodes": frozenset(("episode_id", "total_reward", "timestamp")),
    "run_status": frozenset(("run_id", "status")),
}


def create_legacy_schema(conn: sqlite3.Connection) -> None:
    """Create the existing app's tables, trigger and indexes in ``conn`` (tests build such files). Caller's thread."""
    for statement in LEGACY_DDL:
        conn.execute(statement)


def table_columns(conn: sqlite3.Connection, table: str, schema: str = "main") -> tuple[str, ...]:
    """Column names of ``table`` in on-disk order (``PRAGMA table_info``). Caller's thread."""
    return tuple(row[1] for row in conn.execute(f'PRAGMA "{schema}".table_info("{table}")'))


def is_legacy_layout(tables: Mapping[str, tuple[str, ...]]) -> bool:
    """True when ``tables`` (name -> columns, SQLite's own ``sqlite_*`` tables left out) are the existing app's.

    Every table must be one of ``LEGACY_TABLES`` with its key columns, and ``steps`` or
    ``episodes`` must be there; a file with any other table is not that application's.
    """
    if not tables or not set(tables) <= LEGACY_TABLES or not {"steps", "episodes"} & set(tables):
        return False
    return all(_REQUIRED[name] <= set(columns) for name, columns in tables.items())
