"""Our modules copied into (a stand-in of) the existing gym_gui tree shadow none of its modules,
and its imports of the seed-path drop-ins resolve (EMBEDDING.md sections 0 and 6)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from upstream_skeleton import DROP_INS, UPSTREAM_IMPORTS, UPSTREAM_MODULES, build_combined_tree

OURS = Path(__file__).resolve().parents[2]


def run_in_tree(tree: Path, script: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a fresh interpreter that finds ``gym_gui`` in ``tree`` first, under PyQt6's QT_API."""
    env = {**os.environ, "PYTHONPATH": str(tree), "QT_API": "pyqt6"}
    return subprocess.run([sys.executable, "-c", script], cwd=tree, env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="module")
def combined_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tmp_path_factory.mktemp("combined")
    copied = build_combined_tree(OURS, tree)
    assert set(DROP_INS) <= set(copied)
    return tree


def test_no_path_of_ours_but_the_drop_ins_is_an_existing_module(combined_tree: Path) -> None:
    ours = {p.relative_to(OURS).as_posix() for p in (OURS / "gym_gui").rglob("*.py")}
    shell = {"gym_gui/__init__.py", "gym_gui/app.py", "gym_gui/__main__.py", "gym_gui/ui/__init__.py"}
    clashes = sorted((ours & set(UPSTREAM_MODULES)) - set(DROP_INS) - shell)
    assert clashes == []
    # A package of ours named like an existing module would shadow it (a package beats a module).
    packages = {p.parent.relative_to(OURS).as_posix() + ".py" for p in (OURS / "gym_gui").rglob("__init__.py")}
    assert sorted(packages & set(UPSTREAM_MODULES)) == []


def test_every_existing_module_imports_as_before(combined_tree: Path) -> None:
    script = f"""
import importlib, json, sys
import gym_gui
assert gym_gui.UPSTREAM, gym_gui.__file__
found = {{}}
for module, name in {UPSTREAM_IMPORTS!r}.items():
    found[module] = hasattr(importlib.import_module(module), name)
qt = sorted(m for m in sys.modules if m.split(".")[0] in ("PyQt5", "PySide2", "PySide6"))
print(json.dumps({{"found": found, "file": gym_gui.__file__, "other_qt": qt}}))
"""
    result = run_in_tree(combined_tree, script)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["file"].startswith(str(combined_tree))
    assert report["found"] == {module: True for module in UPSTREAM_IMPORTS}
    assert report["other_qt"] == []  # nothing of ours pulls in a binding other than the host's


def test_the_seed_paths_offer_the_existing_callers_names(combined_tree: Path) -> None:
    script = """
from gym_gui.telemetry import TelemetrySQLiteStore
from gym_gui.telemetry.events import Topic, TelemetryEvent
from gym_gui.telemetry.run_bus import get_bus, RunBus, reset_bus
from gym_gui.telemetry.db_sink import TelemetryDBSink, __all__ as sink_all
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore as Store2
assert TelemetrySQLiteStore is Store2
assert "TelemetryDBSink" in sink_all
for member in ("RUN_STARTED", "RUN_COMPLETED", "STEP_APPENDED", "EPISODE_FINALIZED", "OVERFLOW", "CONTROL"):
    assert isinstance(getattr(Topic, member), Topic), member
print("ok")
"""
    result = run_in_tree(combined_tree, script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")


def test_the_existing_producers_events_reach_the_store_and_read_back_as_its_records(
        combined_tree: Path, tmp_path: Path) -> None:
    """The hub's and the daemon's event shapes, through the drop-in bus and sink, into the drop-in store,
    read back as the existing app's own record classes and by its raw SQL."""
    db = tmp_path / "telemetry.sqlite"
    script = f"""
import sqlite3, threading
from pathlib import Path
from gym_gui.core.data_model.telemetry_core import EpisodeRollup, StepRecord
from gym_gui.telemetry import TelemetrySQLiteStore
from gym_gui.telemetry.db_sink import TelemetryDBSink
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.run_bus import get_bus

class Timestamp:  # the protobuf Timestamp's shape, as the daemon passes it
    def __init__(self, seconds, nanos):
        self.seconds, self.nanos = seconds, nanos

store = TelemetrySQLiteStore(Path({str(db)!r}), batch_size=64, max_buffer_bytes=1 << 20)
bus = get_bus()
sink = TelemetryDBSink(store, bus, batch_size=64, checkpoint_interval=1000, writer_queue_size=512)
sink.start()
for ep in range(2):
    for step in range(5):  # the daemon: seq_id always 0, a Timestamp object, '' agent
        bus.publish(TelemetryEvent(topic=Topic.STEP_APPENDED, run_id="r1", agent_id="", seq_id=0,
                                   ts_iso=Timestamp(1_700_000_000 + step, 0),
                                   payload={{"run_id": "r1", "agent_id": "", "episode_index": ep,
                                            "step_index": step, "reward": 1.0, "terminated": step == 4,
                                            "truncated": False, "timestamp": None, "action": None,
                                            "worker_id": ""}}))
    bus.publish(TelemetryEvent(topic=Topic.EPISODE_FINALIZED, run_id="r1", agent_id="", seq_id=0,
                               ts_iso="2025-01-01T00:00:0%dZ" % ep,
                               payload={{"run_id": "r1", "agent_id": "", "episode_index": str(ep),
                                        "total_reward": 5.0, "steps": "5", "terminated": True,
                                        "truncated": False, "metadata_json": '{{"episode_index": %d}}' % ep,
                                        "worker_id": ""}}))
sink.stop()
episodes = store.episodes_for_run("r1")
assert len(episodes) == 2, episodes
assert all(type(e) is EpisodeRollup for e in episodes), [type(e) for e in episodes]
assert [e.total_reward for e in episodes] == [5.0, 5.0]
store.flush()
steps = store.recent_steps(limit=100)
assert all(type(s) is StepRecord for s in steps)
assert len(steps) == 10, len(steps)  # seq_id 0 on every event: nothing deduped away
summary = store.get_run_summary("r1")
assert summary["episodes"] == 2 and summary["steps"] == 10, summary
store.close()
conn = sqlite3.connect({str(db)!r})
# The existing payloads carry no episode_id: like the existing sink, the records keep an empty one.
probe = conn.execute("SELECT e.episode_id, e.total_reward, e.ep_index, e.run_id FROM episodes e "
                     "WHERE e.run_id = 'r1' ORDER BY e.ep_index").fetchall()
assert probe == [("", 5.0, 0, "r1"), ("", 5.0, 1, "r1")], probe
top = conn.execute("SELECT COALESCE(MAX(ep_index), -1) FROM episodes WHERE run_id = 'r1'").fetchone()[0]
assert top == 1, top
# ... but each step keeps the episode_index its payload gave, so an episode replays with its steps.
rows = conn.execute("SELECT episode_index, COUNT(*) FROM steps WHERE run_id = 'r1' GROUP BY episode_index").fetchall()
assert rows == [(0, 5), (1, 5)], rows
print("ok")
"""
    result = run_in_tree(combined_tree, script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")
