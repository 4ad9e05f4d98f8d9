"""Read queries for the learning curves and for replaying unfinished episodes (Qt-free, read only).

Each function takes a ``sqlite3.Connection`` (any read connection on a telemetry file) and has a
``*_from_store`` twin that runs it inside one read transaction of a ``TelemetrySQLiteStore`` (the
calling thread's read connection: a StoreReader thread in the app). None of them writes.

- ``load_curves``: one stream's episodes as a ``CurveData`` (vectorised columns; metadata JSON is
  decoded only for rows that have some).
- ``partial_episodes``: the steps stored after the last EPISODE_FINALIZED of each stream of a run
  form a partial episode (a worker that crashed, a run still going, a GUI killed mid-run): one
  ``EpisodeRecord`` each, with ``outcome == PARTIAL_OUTCOME`` and ``payload["partial"] is True``,
  its return the sum of its stored rewards and its length its stored step count.
"""

from __future__ import annotations

import math
import sqlite3
from typing import Any, Callable, TypeVar

import numpy as np

from gym_gui.live.curves import CurveData, episode_success, iso_to_epoch_s, numeric_fields
from gym_gui.telemetry.json_text import load_json
from gym_gui.telemetry.sqlite_records import EpisodeRecord
from gym_gui.telemetry.sqlite_rows import loaded_agent, stored_agent

__all__ = [
    "PARTIAL_OUTCOME",
    "load_curves",
    "load_curves_from_store",
    "partial_episodes",
    "partial_episodes_from_store",
]

#: The outcome text of a partial (unfinished) episode.
PARTIAL_OUTCOME = "partial (unfinished)"
T = TypeVar("T")

_CURVE_SQL = (
    "SELECT episode_index, total_reward, length, terminated, truncated, outcome, metadata_json, extra_json, ts_iso "
    "FROM episodes WHERE run_id = ? AND agent_id = ? ORDER BY episode_index"
)
_PARTIAL_SQL = (
    "SELECT episode_index, COUNT(*), SUM(reward), MAX(seq_id), MAX(ts_iso), MAX(terminated), MAX(truncated) "
    "FROM steps s WHERE run_id = :run AND agent_id = :agent AND episode_index IS NOT NULL "
    "AND seq_id > COALESCE((SELECT MAX(seq_id) FROM episodes WHERE run_id = :run AND agent_id = :agent), -1) "
    "AND NOT EXISTS (SELECT 1 FROM episodes e WHERE e.run_id = :run AND e.agent_id = :agent "
    "AND e.episode_index = s.episode_index) "
    "GROUP BY episode_index ORDER BY episode_index"
)


def _in_read(store: Any, fn: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``fn`` in one read transaction of ``store`` (its per-thread read connection)."""
    return store._read(fn)  # the store's own snapshot helper: one BEGIN ... COMMIT on this thread's reader


def _flag(value: Any) -> bool | None:
    return None if value is None else bool(value)


def load_curves(conn: sqlite3.Connection, run_id: str, agent_id: str | None, *, window: int = 100) -> CurveData:
    """The curves of stream ``(run_id, agent_id)`` from its stored episodes. Caller's thread; blocks
    for the query (a reader thread's job: about 2 s per million episodes)."""
    rows = conn.execute(_CURVE_SQL, (run_id, stored_agent(agent_id))).fetchall()
    n = len(rows)
    index = np.empty(n)
    total = np.full(n, math.nan)
    length = np.full(n, math.nan)
    success = np.full(n, math.nan)
    wall = np.full(n, math.nan)
    metadata: dict[str, np.ndarray] = {}
    for i, (ep, reward, steps, terminated, truncated, outcome, meta_json, extra_json, ts) in enumerate(rows):
        index[i] = ep
        if reward is not None:
            total[i] = reward
        if steps is not None:
            length[i] = steps
        payload: dict[str, Any] = {"terminated": _flag(terminated), "truncated": _flag(truncated),
                                   "outcome": outcome, "total_reward": reward}
        if extra_json is not None:
            extra = load_json(extra_json)
            if isinstance(extra, dict):
                payload = {**extra, **{k: v for k, v in payload.items() if v is not None}}
        if meta_json is not None:
            meta = load_json(meta_json)
            payload["metadata"] = meta
            for key, value in numeric_fields(meta).items():
                column = metadata.get(key)
                if column is None:
                    column = metadata[key] = np.full(n, math.nan)
                column[i] = value
        success[i] = episode_success(payload)
        wall[i] = iso_to_epoch_s(ts)
    return CurveData.from_columns(index, total, length, success, wall, metadata, window=window)


def load_curves_from_store(store: Any, run_id: str, agent_id: str | None, *, window: int = 100) -> CurveData:
    """``load_curves`` in one read transaction of a TelemetrySQLiteStore. Caller's (reader) thread; blocks."""
    return _in_read(store, lambda conn: load_curves(conn, run_id, agent_id, window=window))


def partial_episodes(conn: sqlite3.Connection, run_id: str, agent_ids: Any = None) -> list[EpisodeRecord]:
    """The partial episode of each stream of ``run_id`` (``agent_ids``: the streams to look at; None:
    every stream stored), in agent then episode order. Caller's thread; blocks for the query (a
    range scan of the steps after the stream's last episode)."""
    if agent_ids is None:
        agents = [a for (a,) in conn.execute(
            "SELECT agent_id FROM streams WHERE run_id = ? ORDER BY agent_id", (run_id,))]
    else:
        agents = sorted(stored_agent(a) for a in agent_ids)
    out: list[EpisodeRecord] = []
    for agent in agents:
        for ep, count, reward_sum, seq, ts, terminated, truncated in conn.execute(
                _PARTIAL_SQL, {"run": run_id, "agent": agent}):
            total = float(reward_sum) if reward_sum is not None else None
            payload = {"episode_index": ep, "total_reward": total, "length": count, "outcome": PARTIAL_OUTCOME,
                       "partial": True}
            out.append(EpisodeRecord(run_id, loaded_agent(agent), int(ep), int(seq), ts, total, int(count),
                                     _flag(terminated), _flag(truncated), PARTIAL_OUTCOME, payload))
    return out


def partial_episodes_from_store(store: Any, run_id: str, agent_ids: Any = None) -> list[EpisodeRecord]:
    """``partial_episodes`` in one read transaction of a TelemetrySQLiteStore. Caller's (reader) thread; blocks."""
    return _in_read(store, lambda conn: partial_episodes(conn, run_id, agent_ids))
