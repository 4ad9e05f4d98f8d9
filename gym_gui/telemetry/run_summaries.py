"""The Runs tab's read queries: one summary row per stored run (Qt-free).

``read_summaries(conn, previous)`` reads the small ``runs`` and ``streams`` tables, and runs the
per-run aggregates (episodes, steps, last and best return) only for runs whose fingerprint
(status, ``updated_at``, each stream's highest seq_id) changed since ``previous``: a finished run
is aggregated once. A run that only grew (every stream's cursor the same or higher) is updated
incrementally: only its rows above the previous cursors are read (the sink commits a stream as a
prefix, with its cursor in the same transaction), so a running run of millions of steps costs what
it wrote since the last refresh. Every query uses an index (the primary keys of ``steps`` and
``episodes`` begin with ``run_id, agent_id``; ``episodes_by_seq``). Runs marked ``deleted`` or
``archived`` (``store.delete_run`` / ``archive_run``) are not listed.
"""

from __future__ import annotations

import json
import math
import sqlite3
from datetime import datetime
from typing import Any, Mapping

import attrs

__all__ = ["HIDDEN_STATUSES", "HYPER_PARAMETER_SKIP", "RunSummary", "duration_s", "hyper_parameters",
           "read_summaries", "summaries_token"]

#: Statuses of runs the Runs tab does not list (their data was removed through the store).
HIDDEN_STATUSES = frozenset({"deleted", "archived"})
#: Config keys that are settings of the telemetry, not of the learning.
HYPER_PARAMETER_SKIP = frozenset({"heartbeat_interval_s", "step_rate_hz", "run_id", "frame_every", "frame_width",
                                  "env_kwargs"})

Fingerprint = tuple[Any, ...]


@attrs.frozen(slots=True)
class RunSummary:
    """One run as the Runs tab lists it. ``duration_s`` is None when the run has no start time."""

    run_id: str
    status: str
    env_id: str | None
    agent_ids: tuple[str, ...]
    created_at: str
    started_at: str | None
    completed_at: str | None
    updated_at: str
    duration_s: float | None
    episodes: int
    steps: int
    last_return: float | None
    best_return: float | None
    config: Mapping[str, Any] | None
    fingerprint: Fingerprint = attrs.field(eq=False, repr=False, default=())
    #: ``(stored agent id, max_seq_id)`` of each stream when the aggregates were read.
    cursors: tuple[tuple[str, int], ...] = attrs.field(eq=False, repr=False, default=())
    #: seq_id of the newest stored episode (the one ``last_return`` is from), -1 for none.
    last_episode_seq: int = attrs.field(eq=False, repr=False, default=-1)

    @property
    def hyper_parameters(self) -> dict[str, Any]:
        """The config's scalar learning settings (see ``hyper_parameters``). Any thread; never blocks."""
        return hyper_parameters(self.config)


def _parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def duration_s(started_at: str | None, created_at: str | None, completed_at: str | None,
               updated_at: str | None) -> float | None:
    """Seconds from the run's start (else its first event) to its completion (else its last news).
    None when a time is missing or unreadable. Any thread; never blocks."""
    start = _parse_iso(started_at) or _parse_iso(created_at)
    end = _parse_iso(completed_at) or _parse_iso(updated_at)
    if start is None or end is None:
        return None
    try:
        return max(0.0, (end - start).total_seconds())
    except TypeError:  # one aware, one naive
        return None


def hyper_parameters(config: Any) -> dict[str, Any]:
    """The scalar entries of a run's ``config`` (numbers, texts, booleans) minus the telemetry's own
    settings (``HYPER_PARAMETER_SKIP``), in the config's order. Any thread; never blocks."""
    if not isinstance(config, Mapping):
        return {}
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key in HYPER_PARAMETER_SKIP or not isinstance(key, str):
            continue
        if isinstance(value, (bool, int, str)) or (isinstance(value, float) and math.isfinite(value)):
            out[key] = value
    return out


def _config(text: str | None) -> Mapping[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


_RUNS_SQL = ("SELECT run_id, status, env_id, config_json, created_at, started_at, completed_at, updated_at "
             "FROM runs ORDER BY created_at, run_id")
_STREAMS_SQL = "SELECT run_id, agent_id, max_seq_id FROM streams ORDER BY run_id, agent_id"
_EPISODES_SQL = ("SELECT COUNT(*), MAX(total_reward) FROM episodes WHERE run_id = ? AND agent_id = ? "
                 "AND seq_id > ?")
_LAST_SQL = ("SELECT seq_id, total_reward FROM episodes WHERE run_id = ? AND agent_id = ? AND seq_id > ? "
             "ORDER BY seq_id DESC LIMIT 1")
_STEPS_SQL = "SELECT COUNT(*) FROM steps WHERE run_id = ? AND agent_id = ? AND seq_id > ?"
_RUN_EPISODES_SQL = "SELECT COUNT(*), MAX(total_reward) FROM episodes WHERE run_id = ?"
_RUN_LAST_SQL = "SELECT seq_id, total_reward FROM episodes WHERE run_id = ? ORDER BY seq_id DESC LIMIT 1"
_RUN_STEPS_SQL = "SELECT COUNT(*) FROM steps WHERE run_id = ?"


def _grew(old: tuple[tuple[str, int], ...], new: tuple[tuple[str, int], ...]) -> bool:
    """True when every stream of ``old`` is in ``new`` with the same or a higher cursor."""
    now = dict(new)
    return bool(old) and all(agent in now and now[agent] >= seq for agent, seq in old)


def _aggregate(conn: sqlite3.Connection, run_id: str, cursors: tuple[tuple[str, int], ...],
               base: RunSummary | None) -> tuple[int, int, float | None, float | None, int]:
    """``(episodes, steps, best, last, last_seq)`` of a run: from scratch, or ``base`` plus the rows
    above its cursors. A run without stream rows (a file written otherwise) is read as a whole."""
    if not cursors:
        count, best_all = conn.execute(_RUN_EPISODES_SQL, (run_id,)).fetchone()
        row = conn.execute(_RUN_LAST_SQL, (run_id,)).fetchone() if count else None
        steps_all = int(conn.execute(_RUN_STEPS_SQL, (run_id,)).fetchone()[0])
        return (int(count), steps_all, None if best_all is None else float(best_all),
                None if row is None or row[1] is None else float(row[1]), -1 if row is None else int(row[0]))
    after = dict(base.cursors) if base is not None else {}
    episodes = base.episodes if base is not None else 0
    steps = base.steps if base is not None else 0
    best = base.best_return if base is not None else None
    last = base.last_return if base is not None else None
    last_seq = base.last_episode_seq if base is not None else -1
    for agent_id, _seq in cursors:
        floor = after.get(agent_id, -1 << 62)
        if base is not None and agent_id in after and after[agent_id] == _seq:
            continue  # this stream did not move
        count, top = conn.execute(_EPISODES_SQL, (run_id, agent_id, floor)).fetchone()
        if count:
            episodes += int(count)
            if top is not None:
                best = float(top) if best is None else max(best, float(top))
            row = conn.execute(_LAST_SQL, (run_id, agent_id, floor)).fetchone()
            if row is not None and int(row[0]) > last_seq:
                last_seq = int(row[0])
                last = None if row[1] is None else float(row[1])
        steps += int(conn.execute(_STEPS_SQL, (run_id, agent_id, floor)).fetchone()[0])
    return episodes, steps, best, last, last_seq


def summaries_token(conn: sqlite3.Connection) -> tuple[Any, ...]:
    """A cheap value that changes whenever a run's row or a stream's cursor changes: compare it with
    the previous one before calling ``read_summaries``. Any thread owning ``conn``; two tiny queries."""
    runs = conn.execute("SELECT COUNT(*), MAX(updated_at) FROM runs").fetchone()
    streams = conn.execute("SELECT COUNT(*), SUM(max_seq_id) FROM streams").fetchone()
    return tuple(runs) + tuple(streams)


def read_summaries(conn: sqlite3.Connection,
                   previous: Mapping[str, RunSummary] | None = None) -> list[RunSummary]:
    """Every listed run, oldest first, in one read transaction on ``conn`` (a read connection, e.g.
    the store's reader). Runs whose fingerprint equals the one in ``previous`` keep their previous
    aggregates. Any thread owning ``conn``; blocks on SQLite reads (run it off the GUI thread)."""
    previous = previous or {}
    own_transaction = not conn.in_transaction
    if own_transaction:
        conn.execute("BEGIN")
    try:
        runs = conn.execute(_RUNS_SQL).fetchall()
        cursors_of: dict[str, list[tuple[str, int]]] = {}
        for run_id, agent_id, max_seq in conn.execute(_STREAMS_SQL):
            cursors_of.setdefault(run_id, []).append((agent_id, int(max_seq)))
        out: list[RunSummary] = []
        for run_id, status, env_id, config_json, created_at, started_at, completed_at, updated_at in runs:
            if status in HIDDEN_STATUSES:
                continue
            cursors = tuple(cursors_of.get(run_id, ()))
            fingerprint = (status, updated_at, cursors)
            old = previous.get(run_id)
            if old is not None and old.fingerprint == fingerprint:
                out.append(old)
                continue
            base = old if old is not None and _grew(old.cursors, cursors) else None
            episodes, steps, best, last, last_seq = _aggregate(conn, run_id, cursors, base)
            out.append(RunSummary(
                run_id=run_id, status=status, env_id=env_id, agent_ids=tuple(a for a, _s in cursors if a),
                created_at=created_at, started_at=started_at, completed_at=completed_at, updated_at=updated_at,
                duration_s=duration_s(started_at, created_at, completed_at, updated_at),
                episodes=episodes, steps=steps, last_return=last, best_return=best,
                config=_config(config_json), fingerprint=fingerprint, cursors=cursors, last_episode_seq=last_seq,
            ))
        return out
    finally:
        if own_transaction:
            conn.execute("COMMIT")
