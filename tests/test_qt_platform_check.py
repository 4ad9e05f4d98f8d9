"""tools/demo on a machine whose X libraries are incomplete: the missing ones are named with their
Debian packages, and the training run still happens headless."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from gym_gui.qt_platform_check import check, missing_from_ldd, missing_from_qt_debug, packages_for, xcb_plugin_path

REPO = Path(__file__).resolve().parents[1]

LDD_OUTPUT = """\
\tlinux-vdso.so.1 (0x00007f558191c000)
\tlibQt5XcbQpa.so.5 => /x/PyQt5/Qt5/lib/libQt5XcbQpa.so.5 (0x00007f5581200000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-xinerama.so.0 => not found
\tlibxkbcommon-x11.so.0 => not found
\tlibxcb-cursor.so.0 => not found
\tlibxcb-icccm.so.4 => not found
\tlibweird.so.7 => not found
"""


def test_ldd_and_qt_messages_name_the_missing_libraries_and_their_packages() -> None:
    missing = missing_from_ldd(LDD_OUTPUT)
    assert missing == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libxcb-xinerama.so.0", "libxkbcommon-x11.so.0",
                       "libxcb-cursor.so.0", "libweird.so.7"]
    packages, unknown = packages_for(missing)
    assert packages == ["libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1", "libxcb-xinerama0",
                        "libxkbcommon-x11-0"]
    assert unknown == ["libweird.so.7"]
    qt = ('Cannot load library /x/PyQt6/Qt6/plugins/platforms/libqxcb.so: (libxcb-cursor.so.0: cannot open shared '
          'object file: No such file or directory)')
    assert missing_from_qt_debug(qt) == ["libxcb-cursor.so.0"]


def fake_ldd(tmp_path: Path, output: str) -> Path:
    script = tmp_path / "ldd"
    script.write_text(f"#!/bin/sh\ncat <<'OUT'\n{output}OUT\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_the_real_plugin_is_checked_with_the_real_ldd() -> None:
    plugin = xcb_plugin_path("pyqt5")
    assert plugin is not None and plugin.name == "libqxcb.so"
    result = check("pyqt5")
    assert result is not None and result.how == "ldd"
    real = subprocess.run(["ldd", str(plugin)], capture_output=True, text=True, timeout=30).stdout
    assert result.missing == missing_from_ldd(real)
    if result.missing:
        assert "sudo apt-get install" in result.message("pyqt5")


def test_demo_names_the_packages_and_falls_back_to_the_headless_run(tmp_path: Path) -> None:
    env = {**os.environ, "DISPLAY": ":99", "GYM_GUI_LDD": str(fake_ldd(tmp_path, LDD_OUTPUT)),
           "GYM_GUI_DB": str(tmp_path / "demo.sqlite")}
    for key in ("QT_QPA_PLATFORM", "GYM_GUI_DEMO_HEADLESS", "WAYLAND_DISPLAY"):
        env.pop(key, None)
    proc = subprocess.run([str(REPO / "tools" / "demo"), "--episodes", "3"], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert ("sudo apt-get install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0 "
            "libxkbcommon-x11-0") in proc.stderr
    assert "running the training run headless instead" in proc.stderr
    assert (tmp_path / "demo.sqlite").is_file()


def test_the_check_passes_when_nothing_is_missing(tmp_path: Path) -> None:
    ok = fake_ldd(tmp_path, "\tlibxcb.so.1 => /lib/libxcb.so.1 (0x1)\n")
    proc = subprocess.run([sys.executable, "-m", "gym_gui.qt_platform_check", "--quiet"], cwd=REPO,
                          capture_output=True, text=True, timeout=60, env={**os.environ, "GYM_GUI_LDD": str(ok)})
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == ""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the xcb plugin is Linux's")
def test_the_module_imports_no_qt() -> None:
    code = "import sys, gym_gui.qt_platform_check; print('qtpy' in sys.modules or 'PyQt5' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
