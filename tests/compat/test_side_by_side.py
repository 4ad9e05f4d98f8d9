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

