"""Writing one planned batch inside the store's write transaction (Qt-free; the sink's hot path).

``sqlite_batch.plan_batch`` encodes the rows before the write lock is taken; ``apply_plan`` writes
them (steps, episodes, run events, the folded runs rows, stream cursors) and keeps aside what
conflicts; ``apply_isolated`` does it for one event under a savepoint. Called by
``TelemetrySQLiteStore.write_batch`` on the writing thread, inside its ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.sqlite_batch import (
    ENSURE_RUN,
    EPISODE_ROWS,
    INSERT_RUN_EVENT,
    UPSERT_RUN,
    UPSERT_STREAM,
    Plan,
    error_text,
    is_retryable_error,
    keep_conflicts,
    quarantine_row,
    sanitised_row,
)
from gym_gui.telemetry.sqlite_rows import encode_step
from gym_gui.telemetry.sqlite_runs import RUN_COLUMNS, apply_run_event, new_run
from gym_gui.telemetry.step_writer import writer_for

__all__ = ["apply_isolated", "apply_plan"]


def apply_plan(conn: sqlite3.Connection, plan: Plan) -> tuple[int, int]:
    """Write one plan inside the caller's transaction; returns (inserted, duplicates)."""
    inserted = 0
    expected = len(plan.steps) + len(plan.episodes) + len(plan.run_events)
    runs_seen = {run_id: stream[1] for (run_id, _agent), stream in plan.streams.items()}
    if runs_seen:
        conn.executemany(ENSURE_RUN, [(run_id, ts, ts) for run_id, ts in runs_seen.items()])
    unstored_before = len(plan.unstored)
    if plan.steps:
        stored = writer_for(conn).insert(conn, plan.steps)
        if stored < len(plan.steps):  # a replay, or a key stored with other content
            rows = [encode_step(r) if type(r) is TelemetryEvent else r for r in plan.steps]
            stored += keep_conflicts(conn, plan, "steps", rows, ())[0]
        inserted += stored
    if plan.episodes:
        inserted += _insert_episodes(conn, plan)
    if plan.run_events:
        stored = conn.executemany(INSERT_RUN_EVENT, plan.run_events).rowcount
        if stored < len(plan.run_events):
            kept, conflicting = keep_conflicts(conn, plan, "run_events", plan.run_events, plan.run_event_sources)
            stored += kept
            if conflicting:  # a lifecycle event in conflict does not change the run either
                dropped = {id(plan.run_event_sources[i]) for i in conflicting}
                plan.lifecycle[:] = [e for e in plan.lifecycle if id(e) not in dropped]
                plan.completed_runs[:] = [e.run_id for e in plan.lifecycle if e.topic is Topic.RUN_COMPLETED]
        inserted += stored
    if plan.lifecycle:
        _fold_runs(conn, plan.lifecycle)
    if plan.streams:
        conn.executemany(
            UPSERT_STREAM,
            [(run_id, agent, s[0], s[1], s[2]) for (run_id, agent), s in plan.streams.items()],
        )
    return inserted, expected - inserted - (len(plan.unstored) - unstored_before)

def _insert_episodes(conn: sqlite3.Connection, plan: Plan) -> int:
    rows = [row for _evt, row in plan.episodes]
    inserted = EPISODE_ROWS.insert(conn, rows)
    if inserted == len(rows):
        return inserted
    # Some were ignored: a replay (same seq_id and content) is fine, another event with the same key is kept aside.
    same_seq: list[tuple[TelemetryEvent, tuple[Any, ...]]] = []
    for evt, row in plan.episodes:
        stored = conn.execute(
            "SELECT seq_id FROM episodes WHERE run_id = ? AND agent_id = ? AND episode_index = ?",
            (row[0], row[1], row[2]),
        ).fetchone()
        if stored is not None and stored[0] != evt.seq_id:
            error = f"episode_index {row[2]} is already stored with seq_id {stored[0]}"
            plan.rejected.append((evt, error))
            inserted += conn.execute(INSERT_RUN_EVENT, quarantine_row(evt, error)).rowcount
        else:
            same_seq.append((evt, row))
    if same_seq:
        inserted += keep_conflicts(conn, plan, "episodes", [r for _e, r in same_seq], [e for e, _r in same_seq])[0]
    return inserted

def _fold_runs(conn: sqlite3.Connection, lifecycle: list[TelemetryEvent]) -> None:
    rows: dict[str, dict[str, Any]] = {}
    for evt in lifecycle:
        row = rows.get(evt.run_id)
        if row is None:
            found = conn.execute(
                f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE run_id = ?", (evt.run_id,)
            ).fetchone()
            row = dict(zip(RUN_COLUMNS, found)) if found else new_run(evt.run_id, evt.ts_iso)
            rows[evt.run_id] = row
        apply_run_event(row, evt)
    conn.executemany(UPSERT_RUN, [tuple(row[c] for c in RUN_COLUMNS) for row in rows.values()])

def apply_isolated(conn: sqlite3.Connection, evt: TelemetryEvent, plan: Plan) -> tuple[int, int]:
    """Write the one-event ``plan`` of ``evt`` under a savepoint; on failure keep ``evt`` as rejected."""
    conflicts_before, unstored_before = len(plan.conflicts), len(plan.unstored)
    conn.execute("SAVEPOINT one_event")
    try:
        counts = apply_plan(conn, plan)
        conn.execute("RELEASE one_event")
        return counts
    except (sqlite3.Error, UnicodeError, OverflowError, ValueError, TypeError) as exc:
        conn.execute("ROLLBACK TO one_event")
        conn.execute("RELEASE one_event")
        if is_retryable_error(exc):
            raise
        error = error_text(exc)
    del plan.conflicts[conflicts_before:], plan.unstored[unstored_before:]  # (rolled back)
    plan.rejected[:] = [(evt, error)]
    quarantine = quarantine_row(evt, error)
    last: BaseException | None = None
    for row in (quarantine, sanitised_row(quarantine)):
        try:
            return conn.execute(INSERT_RUN_EVENT, row).rowcount, 0
        except (sqlite3.Error, UnicodeError) as exc:
            if is_retryable_error(exc):
                raise
            last = exc
    plan.rejected.clear()
    plan.unstored.append((evt, f"{error}; could not keep it either: {error_text(last)}"))
    return 0, 0
