"""Files of the existing gym_gui application: recognise, migrate in place after a backup, or import (Qt-free).

The store calls ``prepare_store_file(path)`` before it opens ``path`` (the one file it was given;
nothing here looks for the existing app's ``var/telemetry/telemetry.sqlite`` on its own):

- a file of the existing app (``user_version`` 0 with its ``steps``/``episodes``/``run_status``)
  is first copied next to itself with SQLite's backup API into
  ``<name>.pre-v2-<UTC time>.bak`` (fsynced), then converted in place in ONE transaction: its
  tables are renamed aside, ours are created, every row is copied (``legacy_convert``), the old
  tables dropped and ``user_version`` set. On any failure it rolls back and the file is unchanged;
- a file that is neither ours nor the existing app's, or one of the app's that cannot be migrated
  (read-only, not enough free disk), is refused with ``LegacyDatabaseError`` (a
  ``SchemaVersionError``) saying what the file is, why and what to do; the file is not written.
``import_legacy_file(old, new)`` converts into a new file of ours and never writes ``old``
(``python -m gym_gui.db import OLD NEW``). Details: docs/schema.md.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import stat
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import attrs

from gym_gui.telemetry import sqlite_schema
from gym_gui.telemetry.legacy_convert import ConversionCounts, copy_legacy_rows
from gym_gui.telemetry.legacy_schema import is_legacy_layout, table_columns
from gym_gui.telemetry.sqlite_schema import SchemaVersionError

__all__ = [
    "ConversionCounts",
    "FileKind",
    "LegacyDatabaseError",
    "import_legacy_file",
    "inspect_file",
    "migrate_in_place",
    "prepare_store_file",
]

_log = logging.getLogger(__name__)

#: Test hook: called inside the in-place migration's transaction just before COMMIT.
before_commit: Callable[[], None] | None = None
#: Free space asked for beyond the backup and a second copy of the rows (the journal, the new indexes).
_SPARE_BYTES = 8 << 20
_LOCK_TIMEOUT_S = 5.0
#: How long the migration waits for the write lock: another process may be migrating the same file.
_MIGRATION_LOCK_TIMEOUT_S = 60.0


class LegacyDatabaseError(SchemaVersionError):
    """A file that this build will not open as is: what it is, why, and what to do are in the message."""


@attrs.frozen(slots=True)
class FileKind:
    """What a database file holds. ``kind``: missing, empty, ours, newer, legacy, foreign, not-sqlite or unreadable."""

    kind: str
    user_version: int = 0
    tables: tuple[str, ...] = ()
    detail: str = ""


def _import_hint(path: Path) -> str:
    return f"python -m gym_gui.db import {path} NEW.sqlite"


def inspect_file(path: str | Path) -> FileKind:
    """Tell what ``path`` holds without writing it (read-only connection). Caller's thread; blocks briefly."""
    path = Path(path)
    if not path.exists():
        return FileKind("missing")
    if path.is_file() and path.stat().st_size == 0:
        return FileKind("empty")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=_LOCK_TIMEOUT_S)
    except sqlite3.Error as exc:
        return FileKind("unreadable", detail=str(exc))
    try:
        return _kind(conn)
    except sqlite3.OperationalError as exc:  # locked, cannot be opened, ...
        return FileKind("unreadable", detail=str(exc))
    except sqlite3.DatabaseError as exc:  # "file is not a database"
        return FileKind("not-sqlite", detail=str(exc))
    finally:
        conn.close()


def _kind(conn: sqlite3.Connection, schema: str = "main") -> FileKind:
    version = int(conn.execute(f"PRAGMA {schema}.user_version").fetchone()[0])
    names = tuple(sorted(r[0] for r in conn.execute(
        f"SELECT name FROM {schema}.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")))
    if version > 0:  # ours: its views (version 4's ``steps``) are listed with the tables
        names = tuple(sorted(r[0] for r in conn.execute(
            f"SELECT name FROM {schema}.sqlite_master WHERE type IN ('table', 'view') "
            "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")))
        return FileKind("newer" if version > sqlite_schema.SCHEMA_VERSION else "ours", version, names)
    if not names:
        return FileKind("empty", 0, names)
    if is_legacy_layout({name: table_columns(conn, name, schema) for name in names}):
        return FileKind("legacy", 0, names)
    return FileKind("foreign", 0, names)


def prepare_store_file(path: str | Path) -> ConversionCounts | None:
    """Make ``path`` openable by the store: migrate an existing-app file in place, refuse a foreign one.

    Called by ``TelemetrySQLiteStore.__init__`` before it connects (before WAL is switched on, so a
    refused file stays byte-identical). Returns the counts of a migration, else None. Raises
    LegacyDatabaseError. Caller's thread; blocks for the whole migration.
    """
    path = Path(path)
    found = inspect_file(path)
    if found.kind == "legacy":
        return migrate_in_place(path)
    if found.kind == "foreign":
        raise LegacyDatabaseError(
            f"{path} has tables {list(found.tables)} but no telemetry schema version (user_version 0); "
            "it is not a gym_gui telemetry database (nor one of the existing gym_gui app, whose tables are "
            "steps, episodes and run_status): it was left unchanged; move it aside or choose another file"
        )
    return None


def _read_only_reason(path: Path) -> str | None:
    mode = path.stat().st_mode
    if not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(path, os.W_OK):
        return f"the file is read-only (mode {stat.filemode(mode)})"
    if not os.access(path.parent, os.W_OK | os.X_OK):
        return f"its folder {path.parent} is not writable (the backup and SQLite's journal go there)"
    return None


def _space_reason(path: Path) -> str | None:
    size = path.stat().st_size
    needed = 2 * size + size + _SPARE_BYTES  # the backup, a second copy of the rows, spare
    free = shutil.disk_usage(path.parent).free
    if free < needed:
        return f"not enough free disk: the backup and the migration need about {needed:,} bytes, {free:,} are free"
    return None


def backup_path(path: Path, now: datetime | None = None) -> Path:
    """``<name>.pre-v2-<UTC time>.bak`` next to ``path`` (a numbered variant if that exists). Pure but for exists()."""
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    candidate = path.with_name(f"{path.name}.pre-v2-{stamp}.bak")
    n = 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.pre-v2-{stamp}-{n}.bak")
    return candidate


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _backup(path: Path) -> Path:
    """Copy the committed database to a fresh backup file (SQLite backup API), fsync it and its folder."""
    target = backup_path(path)
    src = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=_LOCK_TIMEOUT_S)
    try:
        dst = sqlite3.connect(str(target))
        try:
            src.backup(dst)
        finally:
            dst.close()
        _fsync(target)
        _fsync(target.parent)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    finally:
        src.close()
    return target


def _refusal(path: Path, why: str, backup: Path | None = None) -> LegacyDatabaseError:
    kept = f" A backup copy is at {backup}." if backup is not None else ""
    return LegacyDatabaseError(
        f"{path} is a telemetry database of the existing gym_gui app (user_version 0, tables steps/episodes/"
        f"run_status); it cannot be migrated in place: {why}. It was left unchanged.{kept} Convert it into a "
        f"new file instead with `{_import_hint(path)}`, or fix the cause and open it again"
    )


def migrate_in_place(path: str | Path) -> ConversionCounts | None:
    """Back up, then convert an existing-app file into our schema in one transaction. Caller's thread; blocks.

    Waits up to a minute for the write lock. Returns None when, under the lock, the file turns out
    to be no longer the app's (another process migrated it first). Raises LegacyDatabaseError; on
    failure the file is unchanged.
    """
    path = Path(path)
    for check in (_read_only_reason, _space_reason):
        why = check(path)
        if why is not None:
            raise _refusal(path, why)
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=_MIGRATION_LOCK_TIMEOUT_S)
    backup: Path | None = None
    try:
        conn.execute("PRAGMA foreign_keys = OFF")
        sqlite_schema.check_sqlite_features(conn, str(path))
        try:
            conn.execute("BEGIN IMMEDIATE")  # no writer can change the file between the backup and the commit
        except sqlite3.Error as exc:
            raise _refusal(path, f"it could not be locked for writing ({exc})") from exc
        try:
            found = _kind(conn)
            if found.kind != "legacy":
                conn.execute("ROLLBACK")
                return None
            others = _other_objects(conn)
            if others:
                raise _refusal(path, f"it also has {', '.join(others)}, which renaming and dropping its tables "
                                     "would break")
            try:
                backup = _backup(path)
            except (sqlite3.Error, OSError) as exc:
                raise _refusal(path, f"the backup copy could not be written ({exc})") from exc
            _log.warning("migrating %s, a database of the existing gym_gui app, to telemetry schema %d "
                         "(backup %s); this blocks until done", path, sqlite_schema.SCHEMA_VERSION, backup)
            counts = _convert_in_place(conn, found.tables)
            hook = before_commit
            if hook is not None:
                hook()
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, LegacyDatabaseError) or not isinstance(exc, Exception):
                raise
            raise _refusal(path, f"the migration failed ({type(exc).__name__}: {exc})", backup) from exc
    finally:
        conn.close()
    _log.info("migrated %s from the existing gym_gui app's schema to telemetry schema %d (backup %s): %s",
              path, sqlite_schema.SCHEMA_VERSION, backup, counts)
    return counts


def _other_objects(conn: sqlite3.Connection) -> list[str]:
    """Views, and triggers other than the app's own, that the in-place conversion would leave dangling."""
    return [f"{kind} {name}" for kind, name in conn.execute(
        "SELECT type, name FROM sqlite_master WHERE type = 'view' OR type = 'trigger' AND name != 'trigger_steps_unique' "
        "ORDER BY type, name")]


def _convert_in_place(conn: sqlite3.Connection, tables: tuple[str, ...]) -> ConversionCounts:
    conn.execute("DROP TRIGGER IF EXISTS trigger_steps_unique")
    aside = {name: f"legacy_{name}" for name in tables}
    for name, renamed in aside.items():
        conn.execute(f'ALTER TABLE "{name}" RENAME TO "{renamed}"')
    _apply(conn, sqlite_schema.MIGRATIONS[:_CONVERTED_VERSION])
    counts = copy_legacy_rows(conn, aside, conn)
    for renamed in aside.values():
        conn.execute(f'DROP TABLE "{renamed}"')
    _apply(conn, sqlite_schema.MIGRATIONS[_CONVERTED_VERSION:])
    conn.execute(f"PRAGMA user_version = {sqlite_schema.SCHEMA_VERSION}")
    return counts


#: The rows of an existing-app file are converted into the tables of this version, then the later
#: migrations take the file forward like any file of that version (steps into ``step_rows``, ...).
_CONVERTED_VERSION = 2


def _apply(conn: sqlite3.Connection, migrations: tuple[tuple[str, ...], ...]) -> None:
    for statements in migrations:
        for statement in statements:
            conn.execute(statement)


def import_legacy_file(old: str | Path, new: str | Path) -> ConversionCounts:
    """Convert the existing-app file ``old`` into the new file ``new`` of ours; ``old`` is only read.

    ``new`` must not exist or be empty. Caller's thread; blocks. Raises LegacyDatabaseError with
    the reason; on failure a ``new`` this call created is removed.
    """
    old, new = Path(old), Path(new)
    found = inspect_file(old)
    if found.kind == "missing":
        raise LegacyDatabaseError(f"{old} does not exist")
    if found.kind != "legacy":
        raise LegacyDatabaseError(f"{old} is not a telemetry database of the existing gym_gui app: {_describe(found)}")
    target = inspect_file(new)
    if target.kind not in ("missing", "empty"):
        raise LegacyDatabaseError(f"{new} exists and is not empty ({_describe(target)}); choose a new file name")
    created = target.kind == "missing"
    new.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"{old.resolve().as_uri()}?mode=ro", uri=True, timeout=_LOCK_TIMEOUT_S)
    try:
        dst = sqlite3.connect(str(new), isolation_level=None, timeout=_LOCK_TIMEOUT_S)
        try:
            sqlite_schema.configure_connection(dst, busy_timeout_s=_LOCK_TIMEOUT_S)
            sqlite_schema.check_sqlite_features(dst, str(new))
            src.execute("BEGIN")  # one snapshot of old
            dst.execute("BEGIN IMMEDIATE")
            _apply(dst, sqlite_schema.MIGRATIONS[:_CONVERTED_VERSION])
            counts = copy_legacy_rows(src, {name: name for name in found.tables}, dst)
            _apply(dst, sqlite_schema.MIGRATIONS[_CONVERTED_VERSION:])
            dst.execute(f"PRAGMA user_version = {sqlite_schema.SCHEMA_VERSION}")
            dst.execute("COMMIT")
        finally:
            if dst.in_transaction:
                dst.execute("ROLLBACK")
            dst.close()
    except BaseException as exc:
        if created:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{new}{suffix}").unlink(missing_ok=True)
        if isinstance(exc, Exception) and not isinstance(exc, LegacyDatabaseError):
            raise LegacyDatabaseError(f"importing {old} into {new} failed: {type(exc).__name__}: {exc}") from exc
        raise
    finally:
        src.close()
    return counts


def _describe(found: FileKind) -> str:
    if found.kind == "ours":
        return f"it is already a gym_gui telemetry database (schema version {found.user_version})"
    if found.kind == "newer":
        return f"it is a gym_gui telemetry database of a newer build (schema version {found.user_version})"
    if found.kind == "empty":
        return "it is empty"
    if found.kind == "not-sqlite":
        return f"it is not an SQLite database ({found.detail})"
    if found.kind == "unreadable":
        return f"it cannot be read now ({found.detail})"
    if found.kind == "foreign":
        return f"it has other tables ({', '.join(found.tables)})"
    return found.kind
