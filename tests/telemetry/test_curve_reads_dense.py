"""load_curves reads a piece whose indices fill its range without reading the indices (the scan of
the primary key's index gives the rows in index order): rows written out of index order, holes
found after a dense piece, other streams and runs interleaved in the table, and a table without
that index all read back as the live path reads them."""

from __future__ import annotations

import sqlite3
import pytest

from gym_gui.telemetry import curve_reads
from gym_gui.telemetry.curve_reads import load_curves, load_curves_from_store
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore
from test_curve_reads_fast import AGENT, RUN, TS, assert_same, reference


def _episodes(indices: list[int], first_seq: int = 1, run: str = RUN, agent: str = AGENT) -> list[TelemetryEvent]:
    return [TelemetryEvent(Topic.EPISODE_FINALIZED, run, agent, first_seq + n, TS,
                           {"episode_index": index, "total_reward": float(index % 7), "length": index % 11 + 1,
                            "outcome": ("success", "failure")[index % 2], "metadata": {"eps": index / 8}})
            for n, index in enumerate(indices)]


@pytest.mark.parametrize("fetch_rows", [4, 2048])
def test_rows_written_out_of_index_order_come_back_in_index_order(
        store: TelemetrySQLiteStore, monkeypatch: pytest.MonkeyPatch, fetch_rows: int) -> None:
    monkeypatch.setattr(curve_reads, "FETCH_ROWS", fetch_rows)
    indices = list(range(40))
    store.write_batch(_episodes(indices[::-1]))  # the last episode first: rowids against the index
    got = load_curves_from_store(store, RUN, AGENT, window=3)
    assert got.column("index").tolist() == [float(i) for i in indices]
    assert_same(got, reference(store, RUN, AGENT, window=3))


@pytest.mark.parametrize("indices", [
    list(range(10)) + list(range(11, 30)),  # a hole in the third piece after two dense ones
    [0] + list(range(2, 30)),  # a hole in the first piece
    list(range(8)) + [100, 200, 300] + list(range(400, 420)),  # dense, sparse, dense again
])
def test_holes_after_dense_pieces_read_their_indices(
        store: TelemetrySQLiteStore, monkeypatch: pytest.MonkeyPatch, indices: list[int]) -> None:
    monkeypatch.setattr(curve_reads, "FETCH_ROWS", 4)
    store.write_batch(_episodes(indices))
    got = load_curves_from_store(store, RUN, AGENT, window=3)
    assert got.column("index").tolist() == [float(i) for i in indices]
    assert_same(got, reference(store, RUN, AGENT, window=3))


def test_streams_and_runs_interleaved_in_the_table(store: TelemetrySQLiteStore) -> None:
    events: list[TelemetryEvent] = []
    for i in range(300):  # three streams written turn by turn: their rows interleave
        events += _episodes([i], first_seq=3 * i + 1)
        events += _episodes([i], first_seq=3 * i + 2, agent="b")
        events += _episodes([i * 2], first_seq=3 * i + 3, run="other-run")
    store.write_batch(events)
    for agent in (AGENT, "b"):
        got = load_curves_from_store(store, RUN, agent, window=5)
        assert got.episode_count == 300
        assert_same(got, reference(store, RUN, agent, window=5))


def test_a_table_without_the_primary_keys_index_is_read_by_its_indices(
        store: TelemetrySQLiteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.write_batch(_episodes(list(range(50))))
    monkeypatch.setattr(curve_reads, "_DENSE_AGGREGATES_SQL",
                        curve_reads._DENSE_AGGREGATES_SQL.replace(curve_reads._PK_INDEX, "no_such_index"))
    conn = sqlite3.connect(str(store.path))
    try:
        got = load_curves(conn, RUN, AGENT, window=4)
    finally:
        conn.close()
    assert got.episode_count == 50
    assert_same(got, reference(store, RUN, AGENT, window=4))
