"""Write a file as an older build did: its migrations only, (before version 4) its step rows in
the table ``steps`` of version 1-3, and (before version 6) its episode rows without the app columns
(which the insert trigger of version 2 fills), inserted as that build inserted them."""

from __future__ import annotations

import contextlib
import sqlite3
from typing import Any, Iterator, Sequence

import pytest

from gym_gui.telemetry import record_sql, sqlite_schema, sqlite_write
from gym_gui.telemetry.record_rows import effective_episode_id
from gym_gui.telemetry.sqlite_batch import MultiRowInsert
from gym_gui.telemetry.sqlite_rows import load_json
from gym_gui.telemetry.tables import EPISODES, STEPS


def _v3_stored_step_keys(conn: sqlite3.Connection, run_id: str, agent_id: str,
                         episode_index: int | None) -> set[tuple[str, Any]]:
    """The record API's dedupe keys of an episode, read from the version 1-3 table ``steps``."""
    found: set[tuple[str, Any]] = set()
    where = "episode_index = ?" if episode_index is not None else "episode_index IS NULL"
    args: tuple[Any, ...] = (run_id, agent_id) if episode_index is None else (run_id, agent_id, episode_index)
    for step_index, extra in conn.execute(
            f"SELECT step_index, extra_json FROM steps WHERE run_id = ? AND agent_id = ? AND {where}", args):
        payload = load_json(extra) if extra is not None else {}
        found.add((effective_episode_id(run_id, episode_index, payload),
                   step_index if step_index is not None else payload.get("step_index")))
    return found


class V3StepWriter:
    """The step insert of versions 1-3: the version 3 shaped rows, as they are, into ``steps``."""

    _insert = MultiRowInsert(STEPS, "extra_json")

    def insert(self, conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> int:
        return self._insert.insert(conn, list(rows))


@contextlib.contextmanager
def old_build(monkeypatch: pytest.MonkeyPatch, version: int) -> Iterator[None]:
    """Inside: a store writes files of schema ``version`` with that version's step table and episode insert."""
    with monkeypatch.context() as m:
        m.setattr(sqlite_schema, "MIGRATIONS", sqlite_schema.MIGRATIONS[:version])
        m.setattr(sqlite_schema, "SCHEMA_VERSION", version)
        if version < 6:
            m.setattr(sqlite_write, "EPISODE_ROWS", MultiRowInsert(EPISODES, "extra_json"))
        if version < 4:
            writer = V3StepWriter()
            m.setattr(sqlite_write, "writer_for", lambda conn: writer)
            m.setattr(record_sql, "writer_for", lambda conn: writer)
            m.setattr(record_sql, "_stored_step_keys", _v3_stored_step_keys)
        yield
