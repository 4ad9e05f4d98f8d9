"""Declared columns (gym_gui.telemetry.tables): the DDL, the INSERTs and the reads derive from one
declaration per table, and the store refuses a topic it cannot write when it is built."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from gym_gui.telemetry import sqlite_batch, sqlite_rows, step_layout, step_writer, tables, topic_specs
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore
from gym_gui.telemetry.tables import EPISODES, RUNS, STEPS, Codec, Column, TableDeclarationError
from gym_gui.telemetry.topic_specs import RowKind, TopicSpec, TopicSpecError

TS = "2026-01-01T00:00:00+00:00"


def _xinfo(conn: sqlite3.Connection, table: str) -> list[tuple[str, str, int]]:
    """(name, declared type, NOT NULL) of every column, generated ones included, in order on disk."""
    return [(r[1], r[2], r[3]) for r in conn.execute(f"PRAGMA table_xinfo({table})")]


@pytest.mark.parametrize("table", [STEPS, EPISODES, RUNS], ids=lambda t: t.name)
def test_the_file_has_exactly_the_declared_columns_in_order(tmp_path: Path, table: tables.Table) -> None:
    with TelemetrySQLiteStore(tmp_path / "t.sqlite"):
        pass
    conn = sqlite3.connect(str(tmp_path / "t.sqlite"))
    on_disk = _xinfo(conn, table.name)
    assert [name for name, _t, _n in on_disk] == [c.name for c in table.columns]
    if table is STEPS:  # version 4: a view of step_rows, whose columns derive from the declaration
        table = step_layout.STEP_ROWS_TABLE
        on_disk = _xinfo(conn, table.name)
        assert [name for name, _t, _n in on_disk] == [c.name for c in table.columns]
    for (name, kind, not_null), col in zip(on_disk, table.columns):
        assert col.sql.startswith(kind), name
        assert bool(not_null) == ("NOT NULL" in col.sql), name
    conn.close()


def test_the_inserts_name_their_columns() -> None:
    assert STEPS.insert_names()[:3] == ("run_id", "agent_id", "seq_id")
    assert "episode_id" not in STEPS.insert_names()  # generated: never bound
    assert step_writer.STEP_ROW_INSERT.null_at == step_layout.STEP_ROWS_TABLE.insert_names().index("extra_json") == 11
    assert sqlite_batch.EPISODE_ROWS.null_at == EPISODES.insert_names().index("extra_json") == 10
    for sql in step_writer.STEP_ROW_INSERT.sql.values():
        assert sql.startswith("INSERT OR IGNORE INTO step_rows (stream, seq_id, episode_index, ")
    assert sqlite_batch.UPSERT_RUN.startswith("INSERT OR REPLACE INTO runs (run_id, status, outcome, ")
    assert sqlite_rows.STEP_READ_COLUMNS.split(", ")[-1] == "extra_json"


def test_a_read_list_naming_an_undeclared_column_fails_loudly() -> None:
    with pytest.raises(KeyError, match="table steps declares no column 'rewards'"):
        STEPS.names("run_id", "rewards")


def test_columns_cannot_be_added_once_the_storage_modules_derived_their_sql() -> None:
    with pytest.raises(TableDeclarationError, match="already derived their SQL"):
        tables.add_column(STEPS, Column("gpu_temp_c", "REAL", 7, "gpu_temp_c", Codec.REAL))


def test_declarations_that_cannot_be_honoured_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tables, "_sealed", False)
    bad = [
        (Column("reward", "REAL", 7, "reward2", Codec.REAL), "declares reward already"),
        (Column("reward2", "REAL", 7, "reward", Codec.REAL), "payload key 'reward' already"),
        (Column("gpu", "REAL", 6, "gpu", Codec.REAL), "new schema version"),
        (Column("gpu", "REAL", 7, "gpu", None), "both key and codec"),
    ]
    for column, reason in bad:
        with pytest.raises(TableDeclarationError, match=reason):
            tables.add_column(STEPS, column)
    assert "gpu" not in [c.name for c in STEPS.columns]


@pytest.mark.parametrize(("codec", "fits", "misfits"), [
    (Codec.INTEGER, [0, -1, 2**63 - 1], [True, 1.0, "1", 2**63]),
    (Codec.REAL, [0.5, 3, 0.0], [float("nan"), -0.0, "x", True]),
    (Codec.TEXT, ["", "a"], [b"a", 1]),
    (Codec.FLAG, [True, False], [0, 1, None]),
    (Codec.JSON, [None, [1], {"a": 1}], []),
])
def test_codecs_keep_exactly_the_values_their_column_can_hold(codec: Codec, fits: list, misfits: list) -> None:
    for value in fits:
        assert codec.fits(value) and codec.decode(codec.encode(value)) == value
    for value in misfits:
        assert not codec.fits(value)


def test_a_durable_topic_without_a_row_is_refused_when_the_store_is_built(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(topic_specs._SPECS, Topic.OVERFLOW, TopicSpec(
        Topic.OVERFLOW, durable=True, transported=False, lifecycle=False, backfilled=False))
    with pytest.raises(TopicSpecError, match="OVERFLOW is durable but declares no row kind"):
        TelemetrySQLiteStore(tmp_path / "t.sqlite")
    assert not (tmp_path / "t.sqlite").exists()


def test_a_lifecycle_topic_without_a_fold_is_refused_when_the_store_is_built(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(topic_specs._SPECS, Topic.CONTROL, TopicSpec(
        Topic.CONTROL, durable=True, transported=False, lifecycle=True, backfilled=False, row=RowKind.RUN_EVENTS))
    with pytest.raises(TopicSpecError, match=r"\['CONTROL'\] have no fold"):
        TelemetrySQLiteStore(tmp_path / "t.sqlite")


def test_a_durable_topic_is_stored_as_its_spec_says(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CONTROL declared durable as a run_events row with a normaliser: stored, normalised, read back."""
    def upper(evt: TelemetryEvent) -> TelemetryEvent:
        return TelemetryEvent(evt.topic, evt.run_id, evt.agent_id, evt.seq_id, evt.ts_iso,
                              {**evt.payload, "state": str(evt.payload["state"]).upper()})

    monkeypatch.setitem(topic_specs._SPECS, Topic.CONTROL, TopicSpec(
        Topic.CONTROL, durable=True, transported=False, lifecycle=False, backfilled=True,
        row=RowKind.RUN_EVENTS, normalise=upper))
    with TelemetrySQLiteStore(tmp_path / "t.sqlite") as store:
        evt = TelemetryEvent(Topic.CONTROL, "r1", "a1", 3, TS, {"state": "starved"})
        result = store.write_batch([evt])
        assert (result.inserted, result.lost, result.rejected) == (1, (), ())
        back = store.stored_events("r1", Topic.CONTROL)
        assert back == [TelemetryEvent(Topic.CONTROL, "r1", "a1", 3, TS, {"state": "STARVED"})]
        assert store.events_after("r1", "a1", 0) == back
        assert store.max_seq_id("r1", "a1") == 3


def test_read_transaction_sees_one_snapshot(tmp_path: Path) -> None:
    with TelemetrySQLiteStore(tmp_path / "t.sqlite") as store:
        store.write_batch([TelemetryEvent(Topic.STEP_APPENDED, "r1", None, 1, TS, {"episode_index": 0})])
        seen: list[int] = []

        def read(conn: sqlite3.Connection) -> int:
            seen.append(conn.execute("SELECT COUNT(*) FROM steps").fetchone()[0])
            writer = threading.Thread(target=store.write_batch, args=(
                [TelemetryEvent(Topic.STEP_APPENDED, "r1", None, 2, TS, {"episode_index": 0})],))
            writer.start()
            writer.join()
            return int(conn.execute("SELECT COUNT(*) FROM steps").fetchone()[0])

        assert store.read_transaction(read) == 1 == seen[0]  # the second write is not in this snapshot
        assert store.step_count("r1") == 2
