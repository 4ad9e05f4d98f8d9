"""The Qt-free core imports with every Qt binding (and qtpy) made unimportable, in a fresh interpreter."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import gym_gui

# Modules of the core packages that are allowed to use Qt.
QT_MODULES: set[str] = set()
CORE_PACKAGES = ("gym_gui.telemetry", "gym_gui.workers", "gym_gui.ingest", "gym_gui.live", "gym_gui.transport")
CORE_MODULES = ("gym_gui.rate_limited_log",)


def core_modules() -> list[str]:
    root = Path(gym_gui.__file__).parent.parent
    names: list[str] = []
    for package in CORE_PACKAGES:
        path = root.joinpath(*package.split("."))
        names += [f"{package}.{m.name}" for m in pkgutil.iter_modules([str(path)])]
    names += [m for m in CORE_MODULES if root.joinpath(*m.split(".")).with_suffix(".py").exists()]
    return sorted(n for n in names if n not in QT_MODULES)


def test_core_modules_import_without_any_qt_binding() -> None:
    modules = core_modules()
    for required in ("events", "run_bus", "sqlite_store"):
        assert f"gym_gui.telemetry.{required}" in modules
    assert "gym_gui.ingest.proxy" in modules and "gym_gui.workers.q_learning" in modules
    script = f"""
import importlib, importlib.abc, sys

class BlockQt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"PyQt5", "PyQt6", "PySide2", "PySide6", "qtpy"}:
            raise ImportError(name + " is blocked in this test")
        return None

sys.meta_path.insert(0, BlockQt())
for name in {modules!r}:
    importlib.import_module(name)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {"PyQt5", "PyQt6", "PySide2", "PySide6", "qtpy"})
assert not loaded, loaded
print("imported", len({modules!r}))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"imported {len(modules)}" in result.stdout


def test_the_blocker_catches_a_qt_import() -> None:
    script = """
import importlib.abc, sys
class BlockQt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"PyQt5", "PyQt6", "PySide2", "PySide6", "qtpy"}:
            raise ImportError(name + " is blocked in this test")
sys.meta_path.insert(0, BlockQt())
import qtpy.QtCore
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "is blocked in this test" in result.stderr
