"""Step batches of every size (whole multi-row statements plus any remainder): exact, idempotent, in order."""

from __future__ import annotations

from pathlib import Path

import pytest

from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore


def steps(first_seq: int, count: int) -> list[TelemetryEvent]:
    return [
        TelemetryEvent(Topic.STEP_APPENDED, "run1", "agent1", seq, "2026-01-01T00:00:00+00:00",
                       {"episode_index": seq // 100, "step_index": seq % 100, "action": seq % 4, "observation": seq,
                        "reward": float(seq), "terminated": False, "truncated": False, "info": {}, "render_payload": None})
        for seq in range(first_seq, first_seq + count)
    ]


@pytest.mark.parametrize("count", [1, 2, 3, 127, 255, 256, 257, 511, 513, 1234, 2047])
def test_bulk_steps_are_stored_once_whatever_the_batch_size(tmp_path: Path, count: int) -> None:
    store = TelemetrySQLiteStore(tmp_path / "t.sqlite")
    try:
        first = store.write_batch(steps(1, count))
        assert (first.inserted, first.duplicates) == (count, 0)
        replay = store.write_batch(steps(1, count) + steps(count + 1, 3))  # a replay plus three new ones
        assert (replay.inserted, replay.duplicates) == (3, count)
        rows = store._reader().execute("SELECT seq_id, reward FROM steps ORDER BY seq_id").fetchall()
        assert rows == [(seq, float(seq)) for seq in range(1, count + 4)]
        assert store.max_seq_id("run1", "agent1") == count + 3
    finally:
        store.close()


def test_a_batch_takes_few_statements_whatever_its_size(tmp_path: Path) -> None:
    store = TelemetrySQLiteStore(tmp_path / "t.sqlite")
    statements: list[str] = []
    try:
        store._conn.set_trace_callback(statements.append)
        store.write_batch(steps(1, 2 * 256 + 255))  # two whole statements and a remainder of 255 = 8 bits
        inserts = [s for s in statements if s.startswith("INSERT OR IGNORE INTO step_rows")]
        assert len(inserts) == 2 + 8
        assert store.step_count("run1") == 767
    finally:
        store._conn.set_trace_callback(None)
        store.close()


@pytest.mark.parametrize("odd_one", [None, 0, 255, 299])
def test_extras_are_stored_whether_or_not_the_other_rows_of_a_statement_have_any(tmp_path: Path,
                                                                                 odd_one: int | None) -> None:
    events = steps(1, 300)
    if odd_one is not None:
        evt = events[odd_one]
        events[odd_one] = TelemetryEvent(evt.topic, evt.run_id, evt.agent_id, evt.seq_id, evt.ts_iso,
                                         {**evt.payload, "render_hint": "grid"})
    store = TelemetrySQLiteStore(tmp_path / "t.sqlite")
    try:
        store.write_batch(events)
        extras = store._reader().execute("SELECT seq_id, extra_json FROM steps WHERE extra_json IS NOT NULL").fetchall()
        assert extras == ([] if odd_one is None else [(odd_one + 1, '{"render_hint":"grid"}')])
        back = store.events_after("run1", "agent1", 0, limit=1000)
        assert [e.payload for e in back] == [e.payload for e in events]
    finally:
        store.close()


@pytest.mark.parametrize("layout", ["one-stream", "two-agents-interleaved", "two-runs-in-halves"])
def test_rows_of_several_streams_in_one_statement_keep_their_own_keys(tmp_path: Path, layout: str) -> None:
    events = steps(1, 512)
    if layout == "two-agents-interleaved":
        events = [TelemetryEvent(e.topic, e.run_id, "agent2" if e.seq_id % 2 else "agent1", e.seq_id, e.ts_iso,
                                 e.payload) for e in events]
    elif layout == "two-runs-in-halves":
        events = [TelemetryEvent(e.topic, "run2" if e.seq_id > 300 else "run1", e.agent_id, e.seq_id, e.ts_iso,
                                 e.payload) for e in events]
    store = TelemetrySQLiteStore(tmp_path / "t.sqlite")
    try:
        assert store.write_batch(events).inserted == 512
        for run_id, agent_id in sorted({(e.run_id, e.agent_id) for e in events}):
            mine = [e for e in events if (e.run_id, e.agent_id) == (run_id, agent_id)]
            assert store.events_after(run_id, agent_id, 0, limit=1000) == mine
            assert store.max_seq_id(run_id, agent_id) == mine[-1].seq_id
    finally:
        store.close()
