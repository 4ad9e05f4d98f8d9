"""Schema v4's step writer: interned values and stream keys stay right across rollbacks, deletions
and a second writing process; the intern map is bounded."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from gym_gui.telemetry import data_model, sqlite_batch, step_layout, step_writer
from gym_gui.telemetry.sqlite_rows import encode_step
from gym_gui.telemetry.step_payload import step_payload_of
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore


def _steps(run: str, agent: str, first_seq: int, count: int, texts: int, episode: int = 0) -> list[TelemetryEvent]:
    return [TelemetryEvent(Topic.STEP_APPENDED, run, agent, first_seq + i,
                           f"2026-05-06T07:08:09.{(first_seq + i) % 1_000_000:06d}+00:00",
                           {"episode_index": episode, "step_index": i, "info": {"n": (first_seq + i) % texts},
                            "render_payload": {"cell": i % 3}})
            for i in range(count)]


def _payloads(store: TelemetrySQLiteStore, run: str, agent: str, episode: int = 0) -> list[dict[str, Any]]:
    return [dict(s.payload) for s in store.steps_for_episode(run, agent, episode)]


def _want(events: list[TelemetryEvent]) -> list[dict[str, Any]]:
    return [dict(e.payload) for e in sorted(events, key=lambda e: e.seq_id)]


def _count(path: Path, sql: str) -> Any:
    conn = sqlite3.connect(str(path))
    try:
        row = conn.execute(sql).fetchone()
        return None if row is None else row[0]
    finally:
        conn.close()


def test_a_rolled_back_batch_leaves_no_dangling_reference(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite"
    with TelemetrySQLiteStore(path) as store:
        kept = _steps("r", "a", 1, 5, 5)
        store.write_batch(kept)

        def fail() -> None:
            raise RuntimeError("refused just before COMMIT")

        store.before_commit = fail
        with pytest.raises(RuntimeError):  # new texts and a new stream, rolled back
            store.write_batch(_steps("r", "a", 6, 5, 50) + _steps("r", "b", 1, 3, 7))
        store.before_commit = None
        again = _steps("r", "a", 6, 5, 50) + _steps("r", "b", 1, 3, 7)
        store.write_batch(again)
        assert _payloads(store, "r", "a") == _want(kept + again[:5])
        assert _payloads(store, "r", "b") == _want(again[5:])
        # a savepoint rolled back inside a transaction (``write_batch(isolate=True)`` does that for an
        # event SQLite refuses): the values it interned are gone, the next insert reads the file again
        conn = store._conn
        with store._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            writer = step_writer.writer_for(conn)
            conn.execute("SAVEPOINT one")
            writer.insert(conn, [encode_step(e) for e in _steps("r", "c", 1, 4, 500)])
            conn.execute("ROLLBACK TO one")
            conn.execute("RELEASE one")
            later = _steps("r", "a", 11, 4, 600) + _steps("r", "c", 1, 2, 700)
            writer.insert(conn, [encode_step(e) for e in later])
            conn.execute("COMMIT")
        assert _payloads(store, "r", "a") == _want(kept + again[:5] + later[:4])
        assert _payloads(store, "r", "c") == _want(later[4:])


def test_deleting_a_run_and_writing_it_again_reads_back_the_new_values(tmp_path: Path) -> None:
    with TelemetrySQLiteStore(tmp_path / "t.sqlite") as store:
        store.write_batch(_steps("r", "a", 1, 10, 10))
        store.delete_run("r")
        assert store.steps_for_episode("r", "a", 0) == [] and _count(store.path, "SELECT COUNT(*) FROM step_values") == 0
        fresh = [TelemetryEvent(e.topic, e.run_id, e.agent_id, e.seq_id, e.ts_iso, {**e.payload, "info": {"new": 1}})
                 for e in _steps("r", "a", 11, 4, 4)]
        store.write_batch(fresh)
        assert _payloads(store, "r", "a") == _want(fresh)
        store.record_step(data_model.StepRecord("r-ep000001", 0, 1, 1, 0.0, False, False, info={"new": 1}))
        store.flush()
        store.delete_all_episodes()
        store.write_batch(_steps("r", "a", 20, 3, 2))
        assert _payloads(store, "r", "a") == _want(_steps("r", "a", 20, 3, 2))


def test_a_second_writer_of_the_file_shares_the_stream_keys_and_values(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite"
    first, second = TelemetrySQLiteStore(path), TelemetrySQLiteStore(path)
    try:
        a1 = _steps("r", "a", 1, 6, 6)
        first.write_batch(a1)
        b = _steps("r", "b", 1, 4, 4)
        second.write_batch(b)  # a new stream by the other connection
        a2 = _steps("r", "a", 7, 6, 12)  # half known to `first`, half new
        second.write_batch(a2)
        a3 = _steps("r", "a", 13, 6, 24)
        first.write_batch(a3)  # `first` must see what `second` interned
        for store in (first, second):
            assert _payloads(store, "r", "a") == _want(a1 + a2 + a3)
            assert _payloads(store, "r", "b") == _want(b)
        assert _count(path, "SELECT COUNT(*) FROM stream_keys") == 2
        assert _count(path, "SELECT COUNT(*) FROM step_values GROUP BY stream, json HAVING COUNT(*) > 1") is None
    finally:
        first.close()
        second.close()


def test_the_intern_map_is_bounded_and_long_texts_stay_inline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(step_writer, "MAX_VALUES_PER_STREAM", 8)
    path = tmp_path / "t.sqlite"
    with TelemetrySQLiteStore(path) as store:
        events = _steps("r", "a", 1, 20, 20)  # 20 info texts and 3 render texts: only 8 interned
        long = "x" * (step_layout.MAX_INTERNED_CHARS + 1)
        events.append(TelemetryEvent(Topic.STEP_APPENDED, "r", "a", 21, events[0].ts_iso,
                                     {"episode_index": 0, "info": long}))
        store.write_batch(events)
        assert _payloads(store, "r", "a") == _want(events)
        assert _count(path, "SELECT COUNT(*) FROM step_values") == 8
        assert _count(path, "SELECT COUNT(*) FROM step_rows WHERE typeof(info_json) = 'text'") == 20 - 5 + 1  # (5 info texts interned)


def _payload_steps(run: str, agent: str | None, first_seq: int, count: int) -> list[TelemetryEvent]:
    """StepPayload steps of every kind the fused row path meets: -0.0 and int rewards, flags, repeated
    and unique info texts, render payloads and None, canonical timestamps across seconds and
    non-canonical ones."""
    stamps = ["2026-05-06T07:08:09.{:06d}+00:00", "2026-05-06T07:08:10.{:06d}+00:00", "2026-05-06T07:08:10Z",
              "2026-05-06T07:08:10.12345a+00:00", "2026-05-06T07:08:10.{:06d}+01:00", "2026-02-30T07:08:10.{:06d}+00:00"]
    events = []
    for i in range(count):
        seq = first_seq + i
        reward: float | int = (0.0, -0.0, 1.5, 3, 1 << 62, -2.25)[i % 6]
        payload = step_payload_of(i // 50, i % 50, i % 4, (i * 7) % 16, reward, i % 50 == 49, i % 97 == 0,
                                  {"n": i % 5} if i % 3 else {"loss": 1.0 / (i + 1)},
                                  None if i % 4 else {"cell": i % 3})
        assert payload is not None
        stamp = stamps[0] if i % 40 else stamps[(i // 40) % len(stamps)]
        events.append(TelemetryEvent(Topic.STEP_APPENDED, run, agent, seq, stamp.format(seq % 1_000_000), payload))
    return events


def _table(path: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(str(path))
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_step_payload_events_are_stored_exactly_as_their_encoded_rows(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The sink's one-pass rows of StepPayload steps (``FUSED_STEP_EVENTS``) are the rows
    ``encode_step`` + the version 3 path give, table by table, and read back as the payloads."""
    assert sqlite_batch.FUSED_STEP_EVENTS
    a, b = _payload_steps("r", "a", 1, 700), _payload_steps("r", None, 1, 300)
    mixed = [TelemetryEvent(e.topic, e.run_id, e.agent_id, e.seq_id, e.ts_iso, dict(e.payload)) if i % 11 == 0 else e
             for i, e in enumerate(a)]  # dict payloads (version 3 rows) among them
    batches = [mixed[:257] + b[:100], b[100:101], mixed[257:600] + b[101:], mixed[600:], mixed[590:610]]  # (a replay)
    conflict = TelemetryEvent(Topic.STEP_APPENDED, "r", "a", 5, a[4].ts_iso,
                              step_payload_of(9, 9, 1, 1, 0.5, False, False, {}, None))
    for name, fused in (("fused.sqlite", True), ("rows.sqlite", False)):
        monkeypatch.setattr(sqlite_batch, "FUSED_STEP_EVENTS", fused)
        with TelemetrySQLiteStore(tmp_path / name) as store:
            for batch in batches:
                store.write_batch(batch)
            result = store.write_batch([conflict])
            assert len(result.conflicts) == 1 and result.inserted == 1
            assert _payloads(store, "r", "a", 3) == [dict(e.payload) for e in a if e.payload["episode_index"] == 3]
            assert _payloads(store, "r", None, 1) == [dict(e.payload) for e in b if e.payload["episode_index"] == 1]
    for table in ("step_rows", "step_values", "episode_spans", "stream_keys", "steps", "run_events", "streams"):
        fused_rows = _table(tmp_path / "fused.sqlite", f"SELECT * FROM {table} ORDER BY 1, 2, 3")
        assert fused_rows == _table(tmp_path / "rows.sqlite", f"SELECT * FROM {table} ORDER BY 1, 2, 3"), table
        assert fused_rows or table == "run_events"
    assert len(_table(tmp_path / "fused.sqlite", "SELECT * FROM steps")) == 1000
    assert _table(tmp_path / "fused.sqlite", "SELECT COUNT(*) FROM step_rows WHERE typeof(extra_json) = 'text'") == [(117 + 50,)]  # the -0.0 rewards (others: split infos)


def test_a_step_rows_table_wider_than_the_one_pass_rows_takes_its_steps_through_encode_step(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Should ``step_rows`` get a column the one-pass rows do not know, StepPayload events still
    store what ``encode_step`` gives (the general path), not a failed batch."""
    events = _payload_steps("r", "a", 1, 120)
    with TelemetrySQLiteStore(tmp_path / "t.sqlite") as store:
        monkeypatch.setattr(step_writer, "_FUSED", False)  # as if the columns had changed
        store.write_batch(events)
        assert _payloads(store, "r", "a", 1) == [dict(e.payload) for e in events if e.payload["episode_index"] == 1]
        assert store.step_count("r", "a") == 120
