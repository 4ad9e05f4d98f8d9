"""A throw-away topic and a throw-away steps column, added through the declarations only
(``topic_specs.declare``, ``tables.add_column``), round-trip through the bus, the sink (SinkCore)
and the store, and a schema-4 file written before gets the column by migration, every row kept.

``Topic`` is the plain Enum the existing app compares with ``is`` and the declarations are read
once when the storage modules are imported, so the new member and declarations are made in a
fresh interpreter before those imports (docs/architecture.md, "How to add a topic / a column").
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.sqlite_schema import SCHEMA_VERSION, SchemaVersionError
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore

TS = "2026-01-01T00:00:00+00:00"
REPO = Path(__file__).resolve().parents[2]

_CHILD = textwrap.dedent('''
    import json, sqlite3, sys
    from gym_gui.telemetry.events import TelemetryEvent, Topic


    def add_topic(name):
        """A new member of the plain Topic Enum (what an entry in events.Topic would give)."""
        member = object.__new__(Topic)
        member._name_ = member._value_ = name
        Topic._member_map_[name] = member
        Topic._member_names_.append(name)
        Topic._value2member_map_[name] = member
        type.__setattr__(Topic, name, member)
        return member


    from gym_gui.telemetry import tables, topic_specs
    from gym_gui.telemetry.tables import Codec, Column
    from gym_gui.telemetry.topic_specs import RowKind, TopicSpec

    NOTE = add_topic("RUN_NOTE")
    topic_specs.declare(TopicSpec(NOTE, durable=True, transported=False, lifecycle=False, backfilled=True,
                                  row=RowKind.RUN_EVENTS))
    tables.add_column(tables.STEPS, Column("gpu_temp_c", "REAL", 7, "gpu_temp_c", Codec.REAL))

    from gym_gui.telemetry.run_bus import RunBus
    from gym_gui.telemetry.sink_core import SinkCore
    from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore

    path = sys.argv[1]
    TS = "2026-01-01T00:00:01+00:00"
    out = {}
    with TelemetrySQLiteStore(path) as store:
        bus = RunBus()
        sink = SinkCore(store, bus)
        sink.start()
        for evt in [
            TelemetryEvent(Topic.STEP_APPENDED, "r2", "a", 1, TS, {"episode_index": 0, "step_index": 0,
                                                                    "reward": 1.0, "gpu_temp_c": 61.5}),
            TelemetryEvent(Topic.STEP_APPENDED, "r2", "a", 2, TS, {"episode_index": 0, "step_index": 1,
                                                                    "gpu_temp_c": "hot", "other": 1}),
            TelemetryEvent(NOTE, "r2", "a", 3, TS, {"text": "lr halved"}),
        ]:
            bus.publish(evt)
        out["flushed"] = sink.flush(10.0)
        out["stopped"] = sink.stop(10.0)
        out["lost"] = sink.lost_count() if callable(sink.lost_count) else sink.lost_count
        out["payloads"] = [s.payload for s in store.steps_for_episode("r2", "a", 0)]
        out["old_payloads"] = [s.payload for s in store.steps_for_episode("r1", "a", 0)]
        out["backfill"] = [(e.topic.name, e.seq_id, dict(e.payload)) for e in store.events_after("r2", "a", 0)]
        out["notes"] = [dict(e.payload) for e in store.stored_events("r2", NOTE)]
    conn = sqlite3.connect(path)
    out["user_version"] = conn.execute("PRAGMA user_version").fetchone()[0]
    out["rows"] = conn.execute("SELECT run_id, seq_id, gpu_temp_c, extra_json FROM steps ORDER BY run_id, seq_id").fetchall()
    print(json.dumps(out))
''')


def test_a_declared_topic_and_column_round_trip_through_bus_sink_and_store(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite"
    with TelemetrySQLiteStore(path) as store:  # a file of today's schema, with a row
        store.write_batch([TelemetryEvent(Topic.STEP_APPENDED, "r1", "a", 1, TS, {"episode_index": 0, "reward": 2.0})])
    assert SCHEMA_VERSION == 6
    done = subprocess.run([sys.executable, "-c", _CHILD, str(path)], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert (out["flushed"], out["stopped"], out["lost"]) == (True, True, 0)
    assert out["user_version"] == 7  # the column's version, applied as a migration
    assert out["payloads"] == [
        {"episode_index": 0, "step_index": 0, "reward": 1.0, "gpu_temp_c": 61.5},
        {"episode_index": 0, "step_index": 1, "gpu_temp_c": "hot", "other": 1},
    ]
    assert out["old_payloads"] == [{"episode_index": 0, "reward": 2.0}]  # the schema-4 row is kept
    assert out["rows"] == [
        ["r1", 1, None, None],
        ["r2", 1, 61.5, None],  # the value lives in its column, not in the extras
        ["r2", 2, None, '{"gpu_temp_c":"hot","other":1}'],  # a value the column cannot hold stays in the extras
    ]
    assert out["backfill"] == [
        ["STEP_APPENDED", 1, out["payloads"][0]], ["STEP_APPENDED", 2, out["payloads"][1]],
        ["RUN_NOTE", 3, {"text": "lr halved"}],
    ]
    assert out["notes"] == [{"text": "lr halved"}]
    # A build without the declarations refuses the newer file instead of writing rows without the column.
    with pytest.raises(SchemaVersionError, match="version 7"):
        TelemetrySQLiteStore(path)
