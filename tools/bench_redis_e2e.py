#!/usr/bin/env python3
"""The remote path end to end: worker -> bridge -> Redis -> collector -> committed SQLite rows.

    .venv/bin/python tools/bench_redis_e2e.py [--steps 100000] [--payload grid|scalar] [--rounds 2] [--entry-events 64]

Starts a private redis-server on loopback (no persistence, tests/transport/redis_helpers). Per round,
``remote`` and ``collector`` once with the bridge's one event per entry (format 1) and once with
``--entry-events`` (wire format 2), then ``local``:

- ``remote``: the collector (``python -m gym_gui.run --redis-url URL --run-id R --until-complete``)
  is started and ready first; the clock starts when ``python -m gym_gui.transport.redis_bridge
  --retention 0 -- <worker>`` is spawned and stops when the collector exits, i.e. after every row
  of the run is committed (it flushes its sink before it exits) -- processes' start and exit included;
- ``collector``: a second collector reads the same stream, now all in Redis, into a fresh file
  (spawn to exit): the GUI machine's side alone, with its CPU time per step;
- ``local`` (the in-run baseline): the same worker through ``python -m gym_gui.run -- <worker>``,
  spawn to exit.

The worker is ``tools/bench_e2e.py --emit FILE``: canonical v1 lines built before the clock (the
ToyText grid steps of bench_e2e, or scalar ones), copied to stdout as fast as the pipe takes them,
so the figure is the transport's, not a training loop's. Every round is checked: the collector and
the bridge exit 0, the stored steps are exactly the steps written, seq_ids 1..N once each (steps,
episodes, run events). Prints one line per round, the medians, and the BENCH_JSON line
(tools/bench_figures.py). The bridges' seq_id state goes to a temporary ``XDG_STATE_HOME``.
"""

from __future__ import annotations

import argparse
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # polling, for redis_helpers
sys.path.insert(0, str(ROOT / "tests" / "transport"))
sys.path.insert(0, str(HERE))

from bench_e2e import build_workload  # noqa: E402
from bench_figures import figure, print_bench_json, target  # noqa: E402
from redis_helpers import RedisServer, bridge_argv, child_env, redis_server_binary  # noqa: E402


def _check_rows(db: Path, run_id: str, steps: int) -> None:
    """Every step once, seq_ids 1..N once each; raises AssertionError otherwise."""
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT COUNT(*), COUNT(DISTINCT seq_id) FROM steps WHERE run_id = ?", (run_id,)).fetchone()
        seqs = sorted(r[0] for t in ("steps", "episodes", "run_events")
                      for r in conn.execute(f"SELECT seq_id FROM {t} WHERE run_id = ?", (run_id,)))
        status = conn.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    assert stored == (steps, steps), f"{stored} step rows for {steps} steps"
    assert len(seqs) == len(set(seqs)), "a seq_id stored twice"
    assert status == ("completed",), status


def remote_round(server: RedisServer, worker: list[str], run_id: str, db: Path, steps: int,
                 entry_events: int = 1) -> tuple[float, float]:
    """(steps/s bridge spawn -> collector exit, seconds of the bridge alone); ``entry_events``: the
    bridge's ``--entry-events`` (above 1: wire format 2)."""
    collector = subprocess.Popen(
        [sys.executable, "-m", "gym_gui.run", "--redis-url", server.url, "--db", str(db), "--run-id", run_id,
         "--until-complete", "--progress-interval-s", "1"],
        env=child_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert collector.stdout is not None and collector.stderr is not None
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        for line in collector.stdout:  # type: ignore[union-attr]
            lines.append(line)
            if line.startswith("streams"):
                ready.set()  # the reader runs (a progress line is printed after start)
        ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    err_reader = threading.Thread(target=lambda: lines.append(collector.stderr.read()), daemon=True)  # type: ignore[union-attr]
    err_reader.start()
    assert ready.wait(60), "the collector did not start"
    started = time.perf_counter()
    bridge = subprocess.Popen(bridge_argv(server.url, "--run-id", run_id, "--retention", "0",
                                          "--entry-events", str(entry_events), "--") + worker,
                              env=child_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    b_out, b_err = bridge.communicate(timeout=900)
    bridge_s = time.perf_counter() - started
    code = collector.wait(900)
    elapsed = time.perf_counter() - started
    reader.join(10)
    err_reader.join(10)
    assert bridge.returncode == 0, b_out + b_err
    assert code == 0, "".join(lines)
    _check_rows(db, run_id, steps)
    return steps / elapsed, bridge_s


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def collector_round(server: RedisServer, run_id: str, db: Path, steps: int) -> tuple[float, float]:
    """(steps/s, CPU us per step) of a collector reading a stream already in Redis into a fresh file,
    spawn to exit."""
    cpu = _children_cpu_s()
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "gym_gui.run", "--redis-url", server.url, "--db", str(db),
                           "--run-id", run_id, "--until-complete", "--progress-interval-s", "1"],
                          env=child_env(), cwd=ROOT, capture_output=True, text=True, timeout=900)
    elapsed = time.perf_counter() - started
    cpu = _children_cpu_s() - cpu
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _check_rows(db, run_id, steps)
    return steps / elapsed, cpu / steps * 1e6


def local_round(worker: list[str], run_id: str, db: Path, steps: int) -> float:
    """steps/s of ``python -m gym_gui.run -- <worker>``, spawn to exit."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "gym_gui.run", "--db", str(db), "--run-id", run_id,
                           "--progress-interval-s", "1", "--"] + worker,
                          env=child_env(), cwd=ROOT, capture_output=True, text=True, timeout=900)
    elapsed = time.perf_counter() - started
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _check_rows(db, run_id, steps)
    return steps / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--payload", choices=("grid", "scalar"), default="grid")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--entry-events", type=int, default=64,
                        help="the bridge's --entry-events of the v2 case (each round runs format 1 and this)")
    args = parser.parse_args()
    formats = {"v1": 1, "v2": args.entry_events}
    remote: dict[str, list[float]] = {name: [] for name in formats}
    bridge: dict[str, list[float]] = {name: [] for name in formats}
    alone: dict[str, list[float]] = {name: [] for name in formats}
    alone_cpu: dict[str, list[float]] = {name: [] for name in formats}
    local: list[float] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        os.environ["XDG_STATE_HOME"] = str(tmp / "xdg-state")  # the bridges' seq_id state (child_env)
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # the local baseline's sink QThread
        server = RedisServer(redis_server_binary(), tmp / "redis")
        server.start()
        try:
            for r in range(args.rounds):
                parts = []
                for name, entry_events in formats.items():
                    with server.client() as c:
                        c.flushall()
                    work = build_workload(tmp / f"lines-{name}-{r}.jsonl", f"remote-{name}-{r}", args.steps,
                                          args.payload, 10)
                    worker = [sys.executable, str(HERE / "bench_e2e.py"), "--emit", str(work.path)]
                    rate, bridge_s = remote_round(server, worker, work.run_id, tmp / f"remote-{name}-{r}.sqlite",
                                                  args.steps, entry_events)
                    remote[name].append(rate)
                    bridge[name].append(args.steps / bridge_s)
                    rate, cpu_us = collector_round(server, work.run_id, tmp / f"again-{name}-{r}.sqlite", args.steps)
                    alone[name].append(rate)
                    alone_cpu[name].append(cpu_us)
                    parts.append(f"{name} ({entry_events} per entry): remote {remote[name][-1]:,.0f} steps/s (bridge done "
                                 f"at {bridge[name][-1]:,.0f}), collector alone {alone[name][-1]:,.0f} steps/s "
                                 f"({cpu_us:.1f} us CPU/step)")
                lwork = build_workload(tmp / f"local-{r}.jsonl", f"local-{r}", args.steps, args.payload, 10)
                lworker = [sys.executable, str(HERE / "bench_e2e.py"), "--emit", str(lwork.path)]
                local.append(local_round(lworker, lwork.run_id, tmp / f"local-{r}.sqlite", args.steps))
                print(f"round {r}: " + "; ".join(parts) + f"; local gym_gui.run {local[-1]:,.0f} steps/s; "
                      f"{args.steps} {args.payload} steps, rows verified", flush=True)
        finally:
            server.stop()
    med_local = statistics.median(local)
    med = {name: {k: statistics.median(v[name]) for k, v in
                  (("remote", remote), ("bridge", bridge), ("alone", alone), ("alone_cpu", alone_cpu))}
           for name in formats}
    for name, m in med.items():
        print(f"median over {args.rounds} rounds, {name}: remote {m['remote']:,.0f} steps/s, local {med_local:,.0f} "
              f"steps/s (ratio {m['remote'] / med_local:.2f}), the bridge finished at {m['bridge']:,.0f} steps/s, "
              f"collector alone {m['alone']:,.0f} steps/s ({m['alone_cpu']:.1f} us CPU/step)")
    note = (f"{args.steps} {args.payload} steps, processes' start and exit included, rows verified, "
            f"load average {os.getloadavg()[0]:.1f} at the end")
    v1, v2 = med["v1"], med["v2"]
    print_bench_json("redis_e2e", [
        figure(f"redis_e2e.{args.payload}.steps_per_s", "worker -> bridge -> Redis -> collector -> committed rows",
               v1["remote"], "steps/s", "higher", baseline=med_local, baseline_label="local python -m gym_gui.run",
               target=target(">=", 100_000, source="issue 13 #6"), note=note),
        figure(f"redis_e2e.{args.payload}.v2.steps_per_s",
               f"the same, bridge --entry-events {args.entry_events} (wire format 2)",
               v2["remote"], "steps/s", "higher", baseline=med_local, baseline_label="local python -m gym_gui.run",
               target=target(">=", 100_000, source="issue 13 #6"), note=note),
        figure(f"redis_e2e.{args.payload}.collector_steps_per_s", "collector alone: Redis -> committed rows",
               v1["alone"], "steps/s", "higher", baseline=med_local, baseline_label="local python -m gym_gui.run",
               note="the stream already in Redis; spawn to exit"),
        figure(f"redis_e2e.{args.payload}.v2.collector_cpu_us_per_step", "collector alone, CPU per step, format 2",
               v2["alone_cpu"], "us/step", "lower", baseline=v1["alone_cpu"], baseline_label="format 1, same run",
               note="the stream already in Redis; spawn to exit, the process's user+sys CPU"),
    ])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
