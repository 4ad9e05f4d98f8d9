"""tools/bench_emitter.py runs end to end on a tiny loop and prints its BENCH_JSON figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))

from bench_figures import parse_bench_json  # noqa: E402


def test_bench_emitter_prints_every_figure_with_its_in_run_baseline() -> None:
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "bench_emitter.py"), "--steps", "3000", "--rounds", "1",
                           "--payload", "scalar"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    have_previous = subprocess.run(["git", "-C", str(REPO), "cat-file", "-e", "0a25756"], capture_output=True).returncode == 0
    assert "new emitter, stdlib json (no orjson)" in proc.stdout
    assert ("previous (0a25756)" in proc.stdout) == have_previous  # (a clone without that history has no baseline)
    result = parse_bench_json(proc.stdout)
    assert result is not None and result["bench"] == "emitter"
    figures = {f["name"]: f for f in result["figures"]}
    for name in ("emitter.new_us_per_step.scalar", "emitter.new_hb_us_per_step.scalar",
                 "emitter.stdlib_us_per_step.scalar", "emitter.wall_us_per_step.scalar", "emitter.line_wait_max_ms"):
        assert figures[name]["value"] is not None, name
    if have_previous:
        assert figures["emitter.new_us_per_step.scalar"]["baseline"] is not None  # the previous emitter, same run
    assert figures["emitter.new_us_per_step.scalar"]["target"]["limit"] == 3.0
