"""``python -m gym_gui.db``: telemetry database files from the command line (Qt-free).

- ``import OLD NEW``: convert a database of the existing gym_gui app (``var/telemetry/telemetry.sqlite``)
  into the new file ``NEW`` of ours; ``OLD`` is only read. Prints the counts of rows converted.
- ``info FILE``: what a file is (ours and its schema version, the existing app's, empty, other)
  and its row counts.

Exit status: 0 on success, 1 with a one-line message on stderr when the command cannot be done,
2 for a usage error.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path
from typing import Sequence

from gym_gui.telemetry.legacy_migration import LegacyDatabaseError, import_legacy_file, inspect_file
from gym_gui.telemetry.sqlite_schema import SCHEMA_VERSION

_KINDS = {
    "missing": "no such file",
    "empty": "empty (a new telemetry database can be created here)",
    "ours": "gym_gui telemetry database",
    "newer": "gym_gui telemetry database of a newer build",
    "legacy": "telemetry database of the existing gym_gui app (user_version 0)",
    "foreign": "SQLite database that is not a telemetry database",
    "not-sqlite": "not an SQLite database",
    "unreadable": "cannot be read now",
}


def build_parser() -> argparse.ArgumentParser:
    """The command line parser. Any thread; pure."""
    parser = argparse.ArgumentParser(
        prog="python -m gym_gui.db",
        description="Telemetry database files: convert the existing gym_gui app's database, or describe a file.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    imp = commands.add_parser(
        "import", help="convert an existing gym_gui app database into a new file of ours",
        description="Convert OLD, a telemetry database of the existing gym_gui app (tables steps, episodes, "
                    "run_status; e.g. var/telemetry/telemetry.sqlite), into NEW, a new telemetry database of "
                    "this build, keeping every row. OLD is only read. NEW must not exist or be empty; on "
                    "failure a NEW this command created is removed. Prints the counts of steps, episodes and "
                    "runs converted.")
    imp.add_argument("old", type=Path, metavar="OLD", help="the existing app's database file (read only)")
    imp.add_argument("new", type=Path, metavar="NEW", help="the new database file to write")
    info = commands.add_parser(
        "info", help="say what a database file is and count its rows",
        description="Print what FILE is (a telemetry database of ours and its schema version, one of the "
                    "existing gym_gui app, empty, or something else) and the row count of each table. "
                    "Read only.")
    info.add_argument("file", type=Path, metavar="FILE")
    return parser


def _table_counts(path: Path, tables: Sequence[str]) -> list[tuple[str, int]]:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5.0)
    try:
        return [(t, int(conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0])) for t in tables]
    finally:
        conn.close()


def _info(path: Path) -> int:
    found = inspect_file(path)
    if found.kind == "missing":
        print(f"gym_gui.db: error: {path} does not exist", file=sys.stderr)
        return 1
    kind = _KINDS.get(found.kind, found.kind)
    if found.kind in ("ours", "newer"):
        kind += f", schema version {found.user_version} (this build writes {SCHEMA_VERSION})"
    print(f"file: {path}")
    print(f"kind: {kind}")
    if found.detail:
        print(f"detail: {found.detail}")
    if found.tables:
        for table, count in _table_counts(path, found.tables):
            print(f"  {table}: {count:,} rows")
    if found.kind == "legacy":
        print(f"convert it: python -m gym_gui.db import {path} NEW.sqlite "
              "(or open it with TelemetrySQLiteStore, which migrates it in place after a backup copy)")
    return 0


def _import(old: Path, new: Path) -> int:
    counts = import_legacy_file(old, new)
    print(f"imported {old} into {new}:")
    print(f"  steps: {counts.steps:,}")
    moved = (f" ({counts.episodes_renumbered:,} stored at a negative episode_index, their index being taken or "
             "missing; episode_id and ep_index kept)") if counts.episodes_renumbered else ""
    print(f"  episodes: {counts.episodes:,}{moved}")
    print(f"  runs: {counts.runs:,} ({counts.run_status:,} run_status rows)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status. Main thread; blocks until done."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "import":
            return _import(args.old, args.new)
        return _info(args.file)
    except (LegacyDatabaseError, sqlite3.Error, OSError) as exc:
        print(f"gym_gui.db: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
