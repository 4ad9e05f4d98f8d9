"""Can Qt's "xcb" platform plugin load here? Which Debian packages would make it load? (Qt-free.)

``python -m gym_gui.qt_platform_check`` (tools/demo runs it before opening the window when a
DISPLAY is set): runs ``ldd`` on the binding's ``platforms/libqxcb.so`` (found without importing
Qt) and maps each shared library reported ``not found`` to the package that ships it. Without
``ldd``, it asks Qt itself in a subprocess (``QT_DEBUG_PLUGINS=1``) and reads the missing library
from its "cannot open shared object file" message. Exit code 0: the plugin can load (or the
check does not apply: no X display, not Linux); 3: libraries are missing (the message on stderr
names them and the ``apt-get install`` line); 2: the binding is not installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterable, Sequence

__all__ = ["DEBIAN_PACKAGES", "PlatformCheck", "check", "main", "missing_from_ldd", "missing_from_qt_debug",
           "packages_for", "xcb_plugin_path"]

#: Shared libraries the xcb plugin (Qt 5 and 6) needs and the Debian/Ubuntu packages that ship them.
DEBIAN_PACKAGES: dict[str, str] = {
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-xinput.so.0": "libxcb-xinput0",
    "libxcb-glx.so.0": "libxcb-glx0",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-util.so.0": "libxcb-util0",
    "libxcb-ewmh.so.2": "libxcb-ewmh2",
    "libxcb.so.1": "libxcb1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libXext.so.6": "libxext6",
    "libXrender.so.1": "libxrender1",
    "libXi.so.6": "libxi6",
    "libSM.so.6": "libsm6",
    "libICE.so.6": "libice6",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3",
    "libGL.so.1": "libgl1",
    "libEGL.so.1": "libegl1",
    "libOpenGL.so.0": "libopengl0",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
}

_NOT_FOUND = re.compile(r"^\s*(\S+\.so[.\d]*)\s*=>\s*not found\s*$")
_QT_CANNOT_OPEN = re.compile(r"([\w.+-]+\.so[.\d]*): cannot open shared object file")
_BINDINGS = {"pyqt5": ("PyQt5", "Qt5"), "pyqt6": ("PyQt6", "Qt6"), "pyside6": ("PySide6", "Qt"),
             "pyside2": ("PySide2", "Qt")}


def missing_from_ldd(output: str) -> list[str]:
    """The libraries ``ldd`` reports ``not found``, each once, in order. Any thread; pure."""
    found: list[str] = []
    for line in output.splitlines():
        m = _NOT_FOUND.match(line)
        if m and m.group(1) not in found:
            found.append(m.group(1))
    return found


def missing_from_qt_debug(output: str) -> list[str]:
    """The libraries Qt's plugin loader could not open (``QT_DEBUG_PLUGINS=1`` output). Any thread; pure."""
    found: list[str] = []
    for m in _QT_CANNOT_OPEN.finditer(output):
        name = Path(m.group(1)).name
        if name not in found and not name.startswith("libq"):  # the plugin itself is not the cause
            found.append(name)
    return found


def packages_for(libraries: Iterable[str]) -> tuple[list[str], list[str]]:
    """``(packages, unknown libraries)``: the Debian packages for ``libraries`` (each once, sorted)
    and the libraries this table does not know. Any thread; pure."""
    packages: set[str] = set()
    unknown: list[str] = []
    for lib in libraries:
        pkg = DEBIAN_PACKAGES.get(lib)
        if pkg is None:
            unknown.append(lib)
        else:
            packages.add(pkg)
    return sorted(packages), unknown


def xcb_plugin_path(qt_api: str) -> Path | None:
    """``platforms/libqxcb.so`` of the binding named by ``qt_api`` (``pyqt5``, ``pyqt6``, ...), found
    without importing it; None when the binding or the plugin is not installed. Any thread."""
    package, qt_dir = _BINDINGS.get(qt_api.lower(), ("PyQt5", "Qt5"))
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        for candidate in (Path(root) / qt_dir / "plugins" / "platforms" / "libqxcb.so",
                          Path(root) / "plugins" / "platforms" / "libqxcb.so"):
            if candidate.is_file():
                return candidate
    return None


class PlatformCheck:
    """The result: ``missing`` libraries, the ``packages`` to install, ``unknown`` libraries, ``how``
    the check was made (``ldd``, ``qt``, or why it was skipped)."""

    def __init__(self, missing: Sequence[str], how: str) -> None:
        self.missing = list(missing)
        self.packages, self.unknown = packages_for(self.missing)
        self.how = how

    @property
    def ok(self) -> bool:
        """True when nothing is missing. Any thread."""
        return not self.missing

    def message(self, binding: str) -> str:
        """What to tell the person. Any thread."""
        if self.ok:
            return f"Qt's xcb platform plugin ({binding}) has every library it needs ({self.how})."
        lines = [f"Qt's xcb platform plugin ({binding}) cannot load: missing {', '.join(self.missing)}."]
        if self.packages:
            lines.append(f"Install them with:  sudo apt-get install {' '.join(self.packages)}")
        if self.unknown:
            lines.append(f"Find the package of {', '.join(self.unknown)} with:  apt-file search <name>")
        return "\n".join(lines)


def _probe_qt(qt_api: str, timeout_s: float) -> PlatformCheck:
    code = ("import sys\nfrom qtpy.QtWidgets import QApplication\napp = QApplication(sys.argv[:1])\n")
    env = {**os.environ, "QT_DEBUG_PLUGINS": "1", "QT_QPA_PLATFORM": "xcb", "QT_API": qt_api}
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout_s, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return PlatformCheck([], f"qt probe skipped: {exc}")
    return PlatformCheck(missing_from_qt_debug(proc.stdout + proc.stderr), "qt")


def check(qt_api: str = "pyqt5", *, ldd: str | None = None, timeout_s: float = 20.0) -> PlatformCheck | None:
    """Check the xcb plugin of ``qt_api``; None when the binding is not installed. ``ldd``: the
    program to run (default: ``ldd`` on PATH; without it, Qt is asked in a subprocess). Any
    thread; blocks up to ``timeout_s``."""
    if not sys.platform.startswith("linux"):
        return PlatformCheck([], f"not needed on {sys.platform}")
    plugin = xcb_plugin_path(qt_api)
    if plugin is None:
        return None if importlib.util.find_spec(_BINDINGS.get(qt_api.lower(), ("PyQt5",))[0]) is None else \
            PlatformCheck([], "no xcb plugin in this binding")
    program = ldd or shutil.which("ldd")
    if program is None:
        return _probe_qt(qt_api, timeout_s)
    try:
        proc = subprocess.run([program, str(plugin)], capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired):
        return _probe_qt(qt_api, timeout_s)
    return PlatformCheck(missing_from_ldd(proc.stdout), "ldd")


def main(argv: Sequence[str] | None = None) -> int:
    """Print the result (stderr when something is missing). Exit 0 ok, 3 missing, 2 no binding. Main thread."""
    parser = argparse.ArgumentParser(prog="python -m gym_gui.qt_platform_check",
                                     description="Check that Qt's xcb platform plugin can load; name the packages "
                                                 "to install when it cannot.")
    parser.add_argument("--qt-api", default=os.environ.get("QT_API", "pyqt5"))
    parser.add_argument("--quiet", action="store_true", help="print nothing when the plugin can load")
    args = parser.parse_args(argv)
    result = check(args.qt_api, ldd=os.environ.get("GYM_GUI_LDD") or None)
    if result is None:
        print(f"the Qt binding {args.qt_api} is not installed", file=sys.stderr)
        return 2
    if result.ok:
        if not args.quiet:
            print(result.message(args.qt_api))
        return 0
    print(result.message(args.qt_api), file=sys.stderr)
    return 3


if __name__ == "__main__":
    raise SystemExit(main())
