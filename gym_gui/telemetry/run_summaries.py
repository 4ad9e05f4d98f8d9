"""The Runs tab's read queries: one summary row per stored run (Qt-free).

``read_summaries(conn, previous)`` reads the small ``runs`` and ``streams`` tables, and runs the
per-run aggregates (episodes, steps, last and best return) only for runs whose fingerprint
(status, ``updated_at``, the streams' highest seq_id) changed since ``previous``: a finished run is
aggregated once, a running one at each refresh that brings it news. Every query uses an index
(the primary keys of ``steps`` and ``episodes`` begin with ``run_id``). Runs marked ``deleted`` or
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
_EPISODES_SQL = "SELECT COUNT(*), MAX(total_reward) FROM episodes WHERE run_id = ?"
_LAST_SQL = "SELECT total_reward FROM episodes WHERE run_id = ? ORDER BY seq_id DESC LIMIT 1"
_STEPS_SQL = "SELECT COUNT(*) FROM steps WHERE run_id = ?"


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
        agents: dict[str, list[str]] = {}
        top_seq: dict[str, int] = {}
        for run_id, agent_id, max_seq in conn.execute(_STREAMS_SQL):
            agents.setdefault(run_id, []).append(agent_id)
            top_seq[run_id] = max(top_seq.get(run_id, -1), int(max_seq))
        out: list[RunSummary] = []
        for run_id, status, env_id, config_json, created_at, started_at, completed_at, updated_at in runs:
            if status in HIDDEN_STATUSES:
                continue
            agent_ids = tuple(a for a in agents.get(run_id, ()) if a)
            fingerprint = (status, updated_at, top_seq.get(run_id), len(agents.get(run_id, ())))
            old = previous.get(run_id)
            if old is not None and old.fingerprint == fingerprint:
                out.append(old)
                continue
            episodes, best = conn.execute(_EPISODES_SQL, (run_id,)).fetchone()
            last_row = conn.execute(_LAST_SQL, (run_id,)).fetchone() if episodes else None
            steps = conn.execute(_STEPS_SQL, (run_id,)).fetchone()[0]
            out.append(RunSummary(
                run_id=run_id, status=status, env_id=env_id, agent_ids=agent_ids, created_at=created_at,
                started_at=started_at, completed_at=completed_at, updated_at=updated_at,
                duration_s=duration_s(started_at, created_at, completed_at, updated_at),
                episodes=int(episodes), steps=int(steps),
                last_return=None if last_row is None or last_row[0] is None else float(last_row[0]),
                best_return=None if best is None else float(best),
                config=_config(config_json), fingerprint=fingerprint,
            ))
        return out
    finally:
        if own_transaction:
            conn.execute("COMMIT")
