#!/usr/bin/env python3
"""The same training loop logged through ours and through tensorboardX, rerun and wandb (offline).

    tools/bench --peers [--steps 200000]          (or .venv/bin/python tools/bench_peers.py ...)

The peers live in their own venv, ``.venv-peers`` (created on first use from
tools/peers/requirements.txt, re-installed when that file changes; never mixed into .venv). Each
tool runs tools/peers/loop.py's loop in a fresh process of its own interpreter: per step the step
and episode indexes, action, observation, reward, terminated, epsilon and loss (and, in the
``grid`` variant, the ToyText grid render payload as the tool's text type); per episode its
return and length. Ours is a worker writing with the workers' ``JsonlEmitter`` (its defaults) to
stdout under ``python -m gym_gui.run`` (proxy, bus, sink, SQLite), exactly as a user runs it.
wandb runs with WANDB_MODE=offline: nothing leaves the machine.

Figures per tool and variant:
- producer us/step: (the loop with the tool's logging calls - the same loop without them) / steps;
- steps/s until durable: steps / (from the loop's start until the data is on disk: the tool's
  ``close``/``finish`` returned; for ours, ``gym_gui.run`` exited with every row committed);
- bytes/step: the tool's data files (ours: the SQLite file; tensorboardX: the event file; rerun:
  the .rrd; wandb: the run's .wandb file, its small metadata files left out) / steps;
- read-back ms: the 2,000 episode returns read by a fresh process with the tool's own reader, the
  best of 3, each opening the files anew (ours: ``curve_reads.load_curves_from_store``;
  tensorboardX: its Event protobuf over the event file's records; rerun: its dataframe reader;
  wandb: its Record protobuf over the .wandb log).
A tool that cannot be installed or run here gets a row that says why.

The grid variant runs ``--grid-steps`` (default a quarter of ``--steps``) to keep the default run
within about 10 minutes on 2 cores; per-step figures do not depend on the count, and every run
has 2,000 episodes so the read-back reads 2,000 returns.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from bench_figures import figure, print_bench_json, target  # noqa: E402

PEERS_VENV = ROOT / ".venv-peers"
REQUIREMENTS = HERE / "peers" / "requirements.txt"
RUN_TOOL = HERE / "peers" / "run_tool.py"
OURS = "gym_gui"
PEERS = ("tensorboardX", "rerun", "wandb")
#: What must import in .venv-peers for each peer (rerun's reader needs datafusion).
IMPORTS = {"tensorboardX": "import tensorboardX", "rerun": "import rerun, datafusion", "wandb": "import wandb"}
EPISODES = 2000
#: issue 13 #2: a Python loop emitting through python -m gym_gui.run is durable at >= 150,000 steps/s.
TARGET_OURS_STEPS_PER_S = 150_000
TIMEOUT_S = 1800.0
METRICS = (("producer_us_per_step", "producer us/step", "us/step", "lower"),
           ("durable_steps_per_s", "steps/s until durable", "steps/s", "higher"),
           ("bytes_per_step", "bytes/step on disk", "bytes/step", "lower"),
           ("readback_ms", "read-back of 2,000 episode returns", "ms", "lower"))


def _tail(text: str, n: int = 2) -> str:
    return " / ".join(text.strip().splitlines()[-n:])[-300:]


def ensure_peers_venv(log: Path) -> dict[str, str]:
    """Create/refresh .venv-peers; returns {peer: why it cannot run} for the peers that cannot. Blocks."""
    py = PEERS_VENV / "bin" / "python"
    problems: dict[str, str] = {}
    with open(log, "a") as out:
        if not py.exists():
            base = shutil.which("python3") or sys.executable
            made = subprocess.run([base, "-m", "venv", str(PEERS_VENV)], stdout=out, stderr=subprocess.STDOUT)
            if made.returncode != 0 or not py.exists():
                return {p: f"cannot create {PEERS_VENV.name} with {base} -m venv" for p in PEERS}
        stamp = PEERS_VENV / ".installed-requirements"
        wanted = REQUIREMENTS.read_text()
        if not stamp.exists() or stamp.read_text() != wanted:
            print(f"installing the peers into {PEERS_VENV.name} (once) ...", file=sys.stderr, flush=True)
            failed = False
            for line in wanted.splitlines():
                req = line.split("#", 1)[0].strip()
                if not req:
                    continue
                pip = subprocess.run([str(py), "-m", "pip", "install", "--disable-pip-version-check", "-q", req],
                                     capture_output=True, text=True)
                out.write(pip.stdout + pip.stderr)
                if pip.returncode != 0:
                    failed = True
                    name = next((p for p in PEERS if req.lower().startswith(p.lower()[:5])), req)
                    problems[name] = f"pip install {req} failed: {_tail(pip.stderr or pip.stdout)}"
            if not failed:
                stamp.write_text(wanted)
    for peer in PEERS:
        if peer in problems:
            continue
        check = subprocess.run([str(py), "-c", IMPORTS[peer]], capture_output=True, text=True)
        if check.returncode != 0:
            problems[peer] = f"cannot import it in {PEERS_VENV.name}: {_tail(check.stderr)}"
    return problems


def _run(argv: list[str], log: Path, cwd: Path, env: dict[str, str]) -> tuple[int | None, float]:
    """Run ``argv`` with its output appended to ``log``; (exit code or None on time-out, wall time of its end)."""
    with open(log, "a") as out:
        out.write(f"$ {' '.join(argv)}\n")
        out.flush()
        try:
            rc = subprocess.run(argv, cwd=str(cwd), env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, timeout=TIMEOUT_S).returncode
        except subprocess.TimeoutExpired:
            rc = None
    return rc, time.time()


def run_tool(tool: str, variant: str, steps: int, tmp: Path, log: Path) -> dict[str, Any]:
    """Write then read back with one tool; its figures, or {"error": why}. Blocks."""
    out = tmp / f"{variant}-{tool}"
    out.mkdir(parents=True)
    run_id = f"peers-{variant}-{tool.lower()}"
    write_report, read_report = tmp / f"{variant}-{tool}.write.json", tmp / f"{variant}-{tool}.read.json"
    loop_args = ["--tool", tool, "--out", str(out), "--run-id", run_id, "--steps", str(steps),
                 "--episode-length", str(max(1, steps // EPISODES)), "--variant", variant]
    env = dict(os.environ, WANDB_MODE="offline", WANDB_SILENT="true", WANDB_DIR=str(out),
               WANDB_CACHE_DIR=str(tmp / "wandb-cache"), WANDB_CONFIG_DIR=str(tmp / "wandb-config"),
               PYTHONUNBUFFERED="1")
    if tool == OURS:
        py = sys.executable
        argv = [py, "-m", "gym_gui.run", "--db", str(out / "telemetry.sqlite"), "--run-id", run_id,
                "--", py, str(RUN_TOOL), "write", *loop_args, "--report", str(write_report)]
        env["PYTHONPATH"] = str(ROOT)
    else:
        py = str(PEERS_VENV / "bin" / "python")
        argv = [py, str(RUN_TOOL), "write", *loop_args, "--report", str(write_report)]
    rc, ended_unix_s = _run(argv, log, out, env)
    if rc != 0 or not write_report.exists():
        return {"error": f"the writing run {'timed out' if rc is None else f'exited {rc}'} (see {log.name})"}
    wrote = json.loads(write_report.read_text())
    durable_unix_s = ended_unix_s if tool == OURS else wrote["durable_unix_s"]
    rc, _ = _run([py, str(RUN_TOOL), "read", *loop_args, "--report", str(read_report)], log, out, env)
    if rc != 0 or not read_report.exists():
        return {"error": f"the read-back {'timed out' if rc is None else f'exited {rc}'} (see {log.name})"}
    read = json.loads(read_report.read_text())
    episodes = -(-steps // max(1, steps // EPISODES))
    result = {
        "producer_us_per_step": (wrote["loop_s"] - wrote["bare_s"]) / steps * 1e6,
        "durable_steps_per_s": steps / (durable_unix_s - wrote["start_unix_s"]),
        "bytes_per_step": read["data_bytes"] / steps,
        "readback_ms": read["readback_ms"],
        "note": f"{', '.join(read['files'])}; dir {read['dir_bytes']:,} bytes",
    }
    if read["returns"] != episodes:
        result["note"] += f"; READ {read['returns']} OF {episodes} RETURNS"
    shutil.rmtree(out, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200_000, help="steps of the scalar loop")
    parser.add_argument("--grid-steps", type=int, help="steps of the grid loop (default: --steps / 4)")
    parser.add_argument("--variant", choices=("scalar", "grid", "both"), default="both")
    parser.add_argument("--tools", default=",".join((OURS, *PEERS)), help="comma-separated subset")
    args = parser.parse_args(argv)
    tools = [t for t in args.tools.split(",") if t]
    variants = {"scalar": args.steps, "grid": args.grid_steps or max(EPISODES, args.steps // 4)}
    if args.variant != "both":
        variants = {args.variant: variants[args.variant]}
    tmp = Path(tempfile.mkdtemp(prefix="bench-peers-"))
    log = tmp / "peers.log"
    problems = ensure_peers_venv(log) if any(t in PEERS for t in tools) else {}
    results: dict[tuple[str, str], dict[str, Any]] = {}
    for variant, steps in variants.items():
        for tool in tools:
            print(f"peers: {variant} {steps:,} steps through {tool} ...", file=sys.stderr, flush=True)
            started = time.perf_counter()
            res: dict[str, Any] = ({"error": problems[tool]} if tool in problems
                                   else run_tool(tool, variant, steps, tmp, log))
            results[(variant, tool)] = res
            print(f"       {time.perf_counter() - started:.0f} s: {res.get('error') or 'ok'}", file=sys.stderr, flush=True)
    figures = []
    print(f"{'variant':<8} {'tool':<13} {'producer us/step':>17} {'steps/s durable':>16} {'bytes/step':>11} "
          f"{'read-back ms':>13}  notes")
    for (variant, tool), res in results.items():
        ours = results.get((variant, OURS), {})
        cells = []
        for key, label, unit, better in METRICS:
            value = res.get(key)
            base = ours.get(key) if tool != OURS else None
            goal = target(">=", TARGET_OURS_STEPS_PER_S, source="issue 13 #2") \
                if (tool, key) == (OURS, "durable_steps_per_s") else None
            figures.append(figure(f"peers.{variant}.{tool}.{key}", f"{tool}, {label}, {variant} steps ({variants[variant]:,})",
                                  value, unit, better, baseline=base,
                                  baseline_label="ours (gym_gui), same run" if base is not None else "",
                                  target=goal, note=res.get("error") or res.get("note", "")))
            cells.append("-" if value is None else f"{value:,.1f}" if value < 1000 else f"{value:,.0f}")
        print(f"{variant:<8} {tool:<13} {cells[0]:>17} {cells[1]:>16} {cells[2]:>11} {cells[3]:>13}  "
              f"{res.get('error') or res.get('note', '')}")
    print(f"(logs: {log}; {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f})")
    print_bench_json("peers", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
