"""AppServices sets the interpreter's switch interval while started and gives the previous one back."""

from __future__ import annotations

import sys
from pathlib import Path

from gym_gui.qt.app_services import GUI_SWITCH_INTERVAL_S, AppServices
from gym_gui.telemetry.run_bus import RunBus


def test_the_switch_interval_is_the_guis_while_started_and_restored_at_stop(qtbot: object, tmp_path: Path) -> None:
    outside = sys.getswitchinterval()
    sys.setswitchinterval(0.005)  # (CPython's default)
    before = sys.getswitchinterval()
    services = AppServices(tmp_path / "t.sqlite", bus=RunBus())
    assert abs(sys.getswitchinterval() - before) < 1e-7  # (only start() sets it)
    services.start()
    try:
        assert abs(sys.getswitchinterval() - GUI_SWITCH_INTERVAL_S) < 1e-7
    finally:
        assert services.stop(30)
    assert abs(sys.getswitchinterval() - before) < 1e-7
    sys.setswitchinterval(outside)


def test_none_leaves_the_switch_interval_alone(qtbot: object, tmp_path: Path) -> None:
    before = sys.getswitchinterval()
    services = AppServices(tmp_path / "t.sqlite", bus=RunBus(), gil_switch_interval_s=None)
    services.start()
    try:
        assert abs(sys.getswitchinterval() - before) < 1e-7
    finally:
        assert services.stop(30)
