"""Schema version 5: an info split into a template and its last number (the number in
``step_rows.info_json``, the template's ref in ``extra_json``); a version 4 file is migrated keeping
every row and value (only the view changes), and takes split rows beside its old ones."""

from __future__ import annotations

import sqlite3
from pathlib import Path
import pytest
from test_info_numbers import _check_file, _events, _stored, _warm_up, same
from test_sqlite_schema_v4 import _odd_events, _raw, _same_rows

from gym_gui.telemetry import step_layout, step_writer
from gym_gui.telemetry.json_text import load_json
from gym_gui.telemetry.sqlite_schema import MIGRATIONS, SCHEMA_VERSION
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore

ORDER = " ORDER BY run_id, agent_id, seq_id"


def _to_version_4(path: Path) -> None:
    """Make a file of this build without split rows into the file the version 4 build wrote: its view
    (the tables are the same), its version."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    try:
        assert conn.execute(f"SELECT count(*) FROM step_rows s WHERE {step_layout.SPLIT_SQL}").fetchone() == (0,)
        conn.execute("BEGIN")
        conn.execute("DROP VIEW steps")
        conn.execute(step_layout.view_sql(4))
        conn.execute("PRAGMA user_version = 4")
        conn.execute("COMMIT")
    finally:
        conn.close()


@pytest.fixture
def v4_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "v4.sqlite"
    infos = _warm_up(40)  # under version 4 every new text was interned or inline
    with monkeypatch.context() as m:
        m.setattr(step_writer, "split_info", lambda text: None)
        with TelemetrySQLiteStore(path) as store:
            store.write_batch(_odd_events())
            store.write_batch(_events(infos, True))
    _to_version_4(path)
    return path


def test_version_5_only_makes_the_view_again() -> None:
    assert SCHEMA_VERSION >= 5
    assert MIGRATIONS[4] == ("DROP VIEW steps", step_layout.view_sql(5))
    assert all(c.added_in <= 4 for c in step_layout.STEP_ROWS_TABLE.columns)


def test_a_version_4_file_is_migrated_keeping_every_row_and_value(v4_file: Path) -> None:
    tables = ("step_rows", "step_values", "stream_keys", "episode_spans", "episodes", "run_events", "runs")
    before = {t: _raw(v4_file, f"SELECT * FROM {t} ORDER BY 1, 2, 3") for t in tables}
    before_view = _raw(v4_file, f"SELECT * FROM steps{ORDER}")
    assert len(before_view) > 40
    with TelemetrySQLiteStore(v4_file) as store:
        assert _raw(v4_file, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
        records = [(s.seq_id, s.payload) for ep in range(8) for s in store.steps_for_episode("run-a", "a1", ep)]
    after = {t: _raw(v4_file, f"SELECT * FROM {t} ORDER BY 1, 2, 3") for t in tables}
    assert all(after[t] == before[t] for t in tables)
    assert _same_rows(_raw(v4_file, f"SELECT * FROM steps{ORDER}"), before_view)  # the view gives the same values
    assert records and len(records) == len({seq for seq, _ in records})


def test_a_migrated_file_takes_split_rows_beside_its_old_ones(v4_file: Path) -> None:
    old = _warm_up(40)
    new = [{"epsilon": 0.5, "loss": 1.0 / (3 + i), "step": i} for i in range(30)]
    with TelemetrySQLiteStore(v4_file) as store:
        store.write_batch(_events(old + new, True)[len(old):])
    # the old infos stay whole (interned 40 whole: the writer splits new ones at once)
    assert ("integer", "blob", 30) in _stored(v4_file)
    _check_file(v4_file, old + new)


def test_a_file_of_this_version_is_refused_by_the_version_4_build(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from gym_gui.telemetry import sqlite_schema
    from gym_gui.telemetry.sqlite_schema import SchemaVersionError

    path = tmp_path / "t.sqlite"
    with TelemetrySQLiteStore(path) as store:
        store.write_batch(_events(_warm_up(20), True))
    monkeypatch.setattr(sqlite_schema, "SCHEMA_VERSION", 4)
    with pytest.raises(SchemaVersionError, match=f"version {SCHEMA_VERSION}"):
        TelemetrySQLiteStore(path)


def test_the_raw_queries_of_the_existing_app_read_split_rows(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite"
    infos = _warm_up(20)
    with TelemetrySQLiteStore(path) as store:
        store.write_batch(_events(infos, True))
    rows = _raw(path, "SELECT episode_id, step_index, reward, run_id, agent_id, info_json FROM steps ORDER BY seq_id")
    assert [r[:5] for r in rows] == [(f"run-ep{i // 7:06d}", i % 7, 0.0, "run", "a") for i in range(20)]
    assert all(same(load_json(r[5]), info) for r, info in zip(rows, infos))
