"""The event-based reads of TelemetrySQLiteStore: episodes, steps, backfill, runs, rejected events (Qt-free).

Mixed into ``TelemetrySQLiteStore``; every method reads through the calling thread's read-only
connection (``_reader``) or one read transaction (``read_transaction``), so any thread may call
them and none waits for the writer (WAL). Tables and queries: docs/schema.md.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Callable

from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.sqlite_records import EpisodeRecord, RunRecord, StepRecord
from gym_gui.telemetry.sqlite_rows import (
    EPISODE_READ_COLUMNS,
    RUN_EVENT_READ,
    decode_episode,
    decode_run_event,
    stored_agent,
)
from gym_gui.telemetry.sqlite_runs import RUN_COLUMNS, decode_run
from gym_gui.telemetry.step_reads import StepValueCache, episode_step_records, step_records_after

#: The hot step reads go to ``step_rows`` and ``episode_spans`` directly (not the view ``steps``):
#: ``step_reads``.
_COUNT_RUN = "SELECT COUNT(*) FROM stream_keys k JOIN step_rows s ON s.stream = k.stream WHERE k.run_id = ?"

__all__ = ["EventReadsAPI"]


class EventReadsAPI:
    """The event-based read API (records, backfill, runs), mixed into TelemetrySQLiteStore."""

    _reader: Callable[[], sqlite3.Connection]
    #: names of the backfilled topics kept in ``run_events`` (``topic_specs``), set by the store
    _backfilled_events: tuple[str, ...]

    read_transaction: Callable[[Callable[[sqlite3.Connection], Any]], Any]
    #: this thread's read connection's interned texts kept between reads, set by the store
    _step_value_cache: Callable[[], StepValueCache]

    def episode_records(self, run_id: str, agent_id: str | None = None) -> list[EpisodeRecord]:
        """Episodes of a run ordered by agent and episode_index; ``agent_id=None`` means every agent.

        Any thread; never waits for the writer.
        """
        if agent_id is None:
            sql = f"SELECT {EPISODE_READ_COLUMNS} FROM episodes WHERE run_id = ? ORDER BY agent_id, episode_index"
            args: tuple[Any, ...] = (run_id,)
        else:
            sql = (f"SELECT {EPISODE_READ_COLUMNS} FROM episodes WHERE run_id = ? AND agent_id = ? "
                   "ORDER BY episode_index")
            args = (run_id, agent_id)
        rows = self._reader().execute(sql, args).fetchall()
        return [decode_episode(r) for r in rows]

    def steps_for_episode(self, run_id: str, agent_id: str | None, episode_index: int) -> list[StepRecord]:
        """Steps of one episode of one stream in seq_id order (the episode's span, then a range of the
        primary key). Any thread; never waits for the writer."""
        agent = stored_agent(agent_id)
        cache = self._step_value_cache()
        return self.read_transaction(lambda conn: episode_step_records(conn, run_id, agent, episode_index, cache))

    def events_after(
        self, run_id: str, agent_id: str | None, after_seq_id: int, limit: int = 1000
    ) -> list[TelemetryEvent]:
        """The backfilled topics' events of a stream with seq_id > ``after_seq_id`` (``topic_specs``:
        STEP_APPENDED, EPISODE_FINALIZED, and any declared topic kept in ``run_events``).

        At most ``limit`` events, in seq_id order, with their original payloads, read from one
        snapshot. Any thread; never waits for the writer.
        """
        if limit <= 0:
            return []
        key = (run_id, stored_agent(agent_id), after_seq_id, limit)

        others = self._backfilled_events
        cache = self._step_value_cache()

        def read(conn: sqlite3.Connection) -> tuple[list[StepRecord], list[Any], list[Any]]:
            steps = step_records_after(conn, *key, cache)
            episodes = conn.execute(
                f"SELECT {EPISODE_READ_COLUMNS} FROM episodes WHERE run_id = ? AND agent_id = ? AND seq_id > ? "
                "ORDER BY seq_id LIMIT ?", key).fetchall()
            kept = conn.execute(
                f"SELECT {RUN_EVENT_READ} FROM run_events WHERE run_id = ? AND agent_id = ? AND seq_id > ? "
                f"AND error IS NULL AND topic IN ({','.join('?' * len(others))}) ORDER BY seq_id LIMIT ?",
                (*key[:3], *others, limit)).fetchall() if others else []
            return steps, episodes, kept

        step_rows, episode_rows, event_rows = self.read_transaction(read)
        events = [r.to_event() for r in step_rows]
        if episode_rows or event_rows:
            events += [decode_episode(r).to_event() for r in episode_rows]
            events += [decode_run_event(r) for r in event_rows]
            events.sort(key=lambda e: e.seq_id)
        return events[:limit]

    def stored_events(self, run_id: str, topic: Topic) -> list[TelemetryEvent]:
        """The events of ``topic`` kept as ``run_events`` rows of a run (RUN_STARTED, RUN_COMPLETED,
        any declared topic of that row kind), in stream and seq_id order; rejected ones are not
        included (``rejected_events``). Any thread; never waits for the writer."""
        rows = self._reader().execute(
            f"SELECT {RUN_EVENT_READ} FROM run_events WHERE run_id = ? AND topic = ? AND error IS NULL "
            "ORDER BY agent_id, seq_id", (run_id, topic.name)).fetchall()
        return [decode_run_event(r) for r in rows]

    def episode_count(self, run_id: str, agent_id: str | None = None) -> int:
        """Stored episodes of a run (of one agent when ``agent_id`` is given), counted by SQLite (no
        record made). Any thread; never waits for the writer."""
        if agent_id is None:
            row = self._reader().execute("SELECT COUNT(*) FROM episodes WHERE run_id = ?", (run_id,)).fetchone()
        else:
            row = self._reader().execute("SELECT COUNT(*) FROM episodes WHERE run_id = ? AND agent_id = ?",
                                         (run_id, stored_agent(agent_id))).fetchone()
        return int(row[0])

    def step_count(self, run_id: str, agent_id: str | None = None) -> int:
        """Stored steps of a run (of one agent when ``agent_id`` is given). Any thread; never waits for the writer."""
        if agent_id is None:
            row = self._reader().execute(_COUNT_RUN, (run_id,)).fetchone()
        else:
            row = self._reader().execute(_COUNT_RUN + " AND k.agent_id = ?", (run_id, stored_agent(agent_id))).fetchone()
        return int(row[0])

    def max_seq_id(self, run_id: str, agent_id: str | None) -> int | None:
        """Highest stored seq_id of a stream (steps, episodes, run events, heartbeats), or None.

        Any thread; never waits for the writer.
        """
        row = self._reader().execute(
            "SELECT max_seq_id FROM streams WHERE run_id = ? AND agent_id = ?", (run_id, stored_agent(agent_id))
        ).fetchone()
        return None if row is None else int(row[0])

    def runs(self) -> list[RunRecord]:
        """Every run, oldest first. Any thread; never waits for the writer."""

        def read(conn: sqlite3.Connection) -> tuple[list[Any], list[Any]]:
            rows = conn.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs ORDER BY created_at, run_id").fetchall()
            agents = conn.execute("SELECT run_id, agent_id FROM streams ORDER BY run_id, agent_id").fetchall()
            return rows, agents

        rows, agent_rows = self.read_transaction(read)
        agents: dict[str, list[str]] = {}
        for run_id, agent in agent_rows:
            agents.setdefault(run_id, []).append(agent)
        return [decode_run(r, tuple(agents.get(r[0], ()))) for r in rows]

    def run(self, run_id: str) -> RunRecord | None:
        """One run, or None if unknown. Any thread; never waits for the writer."""

        def read(conn: sqlite3.Connection) -> tuple[Any, list[Any]]:
            row = conn.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            agents = conn.execute(
                "SELECT agent_id FROM streams WHERE run_id = ? ORDER BY agent_id", (run_id,)).fetchall()
            return row, agents

        row, agent_rows = self.read_transaction(read)
        return None if row is None else decode_run(row, tuple(a for (a,) in agent_rows))

    def rejected_events(self, run_id: str | None = None) -> list[tuple[TelemetryEvent, str]]:
        """Events kept aside because they could not be stored normally, with the reason. Any thread."""
        sql = f"SELECT {RUN_EVENT_READ}, error FROM run_events WHERE error IS NOT NULL"
        args: tuple[Any, ...] = ()
        if run_id is not None:
            sql += " AND run_id = ?"
            args = (run_id,)
        rows = self._reader().execute(sql + " ORDER BY run_id, seq_id", args).fetchall()
        return [(decode_run_event(r), r[-1]) for r in rows]
