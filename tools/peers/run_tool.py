#!/usr/bin/env python3
"""One tool's side of tools/bench_peers.py, in that tool's own interpreter (.venv or .venv-peers).

    run_tool.py write --tool NAME --out DIR --steps N --episode-length L --variant scalar|grid --run-id ID --report FILE
    run_tool.py read  --tool NAME --out DIR --run-id ID --reads R --report FILE

``write`` runs tools/peers/loop.py's loop with the tool's writer and writes the timings to
``--report`` (for gym_gui the process is the worker of ``python -m gym_gui.run``: its stdout is the
telemetry pipe). ``read`` reads the 2,000 episode returns back with the tool's own reader, the
best of ``--reads`` (each opens the files anew), and reports the time and the bytes of its files.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loop import run_loop  # noqa: E402

MODULES = {"gym_gui": "tool_gym_gui", "tensorboardX": "tool_tensorboardx", "rerun": "tool_rerun", "wandb": "tool_wandb"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("write", "read"))
    parser.add_argument("--tool", choices=sorted(MODULES), required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--report", type=Path, required=True)
    parser.add_argument("--run-id", default="bench-peers")
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--episode-length", type=int, default=100)
    parser.add_argument("--variant", choices=("scalar", "grid"), default="scalar")
    parser.add_argument("--reads", type=int, default=3)
    args = parser.parse_args(argv)
    module = importlib.import_module(MODULES[args.tool])
    args.out.mkdir(parents=True, exist_ok=True)
    if args.mode == "write":
        writer = module.make_writer(args.out, args.variant == "grid", args.run_id)
        report: dict[str, Any] = run_loop(args.steps, args.episode_length, args.variant == "grid", writer)
    else:
        best, returns = float("inf"), list[float]()
        for _ in range(args.reads):
            t0 = time.perf_counter()
            returns = module.read_returns(args.out, args.run_id)
            best = min(best, time.perf_counter() - t0)
        files = module.data_files(args.out)
        report = {"readback_ms": best * 1000, "returns": len(returns), "returns_sum": sum(returns),
                  "data_bytes": sum(p.stat().st_size for p in files), "files": [p.name for p in files],
                  "dir_bytes": sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file() and not p.is_symlink())}
    args.report.write_text(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
