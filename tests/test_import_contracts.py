"""The Qt boundary holds: `lint-imports` keeps every contract in setup.cfg, and would catch a breach."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def run_lint(config: Path, cwd: Path, pythonpath: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    return subprocess.run([str(LINT_IMPORTS), "--config", str(config), "--no-cache"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_setup_cfg_contracts_are_kept() -> None:
    result = run_lint(ROOT / "setup.cfg", ROOT, ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" in result.stdout and " 0 broken" in result.stdout


def test_a_core_module_importing_qt_breaks_the_contract(tmp_path: Path) -> None:
    package = tmp_path / "probe_pkg"
    (package / "core").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "core" / "__init__.py").write_text("")
    (package / "core" / "leaky.py").write_text("from qtpy.QtCore import QObject\n")
    config = tmp_path / "contracts.ini"
    config.write_text(
        "[importlinter]\nroot_package = probe_pkg\ninclude_external_packages = True\n\n"
        "[importlinter:contract:core]\nname = core is Qt-free\ntype = forbidden\n"
        "source_modules =\n    probe_pkg.core\nforbidden_modules =\n    qtpy\n"
    )
    result = run_lint(config, tmp_path, tmp_path)
    assert result.returncode != 0
    assert "probe_pkg.core.leaky -> qtpy" in result.stdout
