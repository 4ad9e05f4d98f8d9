#!/usr/bin/env python3
"""Producer cost of the worker-side JSONL emitter: a plain Python loop with emitting minus the bare loop.

The loop is a small FrozenLake-like simulation (action, position, reward and flags from integer
arithmetic, an episode every ``--episode-length`` steps). The emitting loop is the same function
doing the same work plus what our workers do per step and per episode::

    emit("step", step_fields(ep, t, action, obs, reward, terminated, truncated, info, render_payload))
    emit("episode", episode_fields(...))

(``--payload grid``: FrozenLake's ``info`` and a 4x4 grid render payload, one pre-built dict per
cell like the worker's renderer; ``scalar``: empty ``info`` and no payload). Lines go to
``/dev/null`` through a 64 KiB buffered writer, as a worker's stdout does (``claim_stdout``), so
the figure includes the write and flush calls. The garbage collector keeps CPython's defaults,
as in a worker. Rounds alternate between the variants; the best round of each is kept, and
every figure is that variant's best minus the bare loop's best, in us/step.

Variants, measured in the same run:
- **new**: ``JsonlEmitter`` with its defaults (batching on, time bound ``max_delay_ms``);
- **new + heartbeat thread**: the same with the heartbeat / tail flusher thread running, as
  ``gym_gui.workers.runtime`` runs it (interval 1 s);
- **previous**: the emitter before this change (``git show REV:gym_gui/workers/jsonl_emitter.py``
  loaded as a temporary module), as the workers configured it (``batch_lines=64``, 50 ms) and
  with its constructor default (``batch_lines=1``);
- **new, stdlib json**: the new emitter in a child process where orjson cannot be imported
  (the fallback encoder), against that child's own bare loop.

A second part checks the time bound: bursts of steps separated by pauses (the loop stops
emitting), with the flusher thread; each write records how long its oldest line waited (its
``ts`` against the wall clock at the write). Target (issue 13 #1): at most 3 us/step for the new
emitter, grid payload; the line wait stays within a few ms.

    .venv/bin/python tools/bench_emitter.py [--steps 200000] [--rounds 5] [--payload grid|scalar|both]
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))

if "--no-orjson" in sys.argv:  # the stdlib-fallback child: make orjson unimportable first
    sys.modules["orjson"] = None  # type: ignore[assignment]

from bench_figures import figure, print_bench_json, target  # noqa: E402

from gym_gui.workers import jsonl_encoding  # noqa: E402
from gym_gui.workers.jsonl_emitter import DEFAULT_BATCH_LINES, DEFAULT_MAX_DELAY_MS, JsonlEmitter  # noqa: E402
from gym_gui.workers.records import episode_fields, step_fields  # noqa: E402

TARGET_US_PER_STEP = 3.0
#: The last commit of the emitter before the batching / template change.
PREVIOUS_REV = "0a25756"
RUN_ID = "bench-emitter-20261201T000000-1a2b3c4d"
AGENT_ID = "agent-1"
CELLS = ["SFFF", "FHFH", "FFFH", "HFFG"]

Factory = Callable[[Any], Any]
#: The step call of each variant (the others, the previous emitter's among them, call emit + step_fields).
STEP_API = {"new": "emit_step", "new_hb": "emit_step"}


def grid_payloads() -> list[dict[str, Any]]:
    return [{"kind": "grid", "env_family": "FrozenLake", "rows": 4, "cols": 4, "cells": CELLS,
             "agent": [pos // 4, pos % 4]} for pos in range(16)]


def loop(emitter: Any, steps: int, episode_length: int, payload: str, step_api: str = "emit_step") -> tuple[float, float]:
    """Run the loop; emit through ``emitter`` unless it is None. Returns (wall, process CPU) seconds.

    ``step_api``: ``emit_step`` (what our workers call) or ``emit`` (``emit("step", step_fields(...))``,
    the general call, and the only one the previous emitter has).
    """
    renders = grid_payloads() if payload == "grid" else [None] * 16
    info_of_step = {"prob": 1.0} if payload == "grid" else {}
    emit = emitter.emit if emitter is not None else None
    # mode 2: emit + step_fields; 1: emit_step; 0: the bare loop (which tests the same two conditions)
    mode = 0 if emitter is None else (1 if step_api == "emit_step" else 2)
    emit_step = emitter.emit_step if mode == 1 else None
    ep = t = pos = 0
    ep_return = 0.0
    cpu_start = time.process_time()
    start = time.perf_counter()
    for i in range(steps):
        action = (i * 7 + ep) % 4
        pos = (pos + (1, 4, -1, -4)[action]) % 16
        reward = 1.0 if pos == 15 else 0.0
        ep_return += reward
        t += 1
        truncated = t == episode_length
        terminated = False
        if mode == 2:
            emit("step", step_fields(ep, t - 1, action, pos, reward, terminated, truncated, info_of_step,  # type: ignore[misc]
                                     renders[pos]))
        elif mode == 1:
            emit_step(ep, t - 1, action, pos, reward, terminated, truncated, info_of_step, renders[pos])  # type: ignore[misc]
        if truncated:
            if emit is not None:
                emit("episode", episode_fields(ep, ep_return, t, terminated, truncated, "truncated",
                                               {"epsilon": 0.1, "episode_seed": ep}))
            ep += 1
            t = pos = 0
            ep_return = 0.0
    return time.perf_counter() - start, time.process_time() - cpu_start


def devnull_writer() -> Any:
    """A 64 KiB buffered writer on /dev/null, like a worker's stdout (``claim_stdout``)."""
    return os.fdopen(os.open(os.devnull, os.O_WRONLY), "wb", buffering=1 << 16)


def load_previous(rev: str) -> ModuleType | None:
    """The emitter module as of ``rev``, imported under another name; None if git cannot show it."""
    try:
        source = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:gym_gui/workers/jsonl_emitter.py"],
                                check=True, capture_output=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"previous emitter ({rev}) not available: {exc}", file=sys.stderr)
        return None
    path = Path(tempfile.mkdtemp(prefix="bench-emitter-")) / "previous_jsonl_emitter.py"
    path.write_bytes(source)
    spec = importlib.util.spec_from_file_location("previous_jsonl_emitter", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def variants(previous: ModuleType | None) -> dict[str, Factory | None]:
    """name -> factory(stream) of an emitter (None: the bare loop)."""

    def new(out: Any) -> Any:
        return JsonlEmitter(out, run_id=RUN_ID, agent_id=AGENT_ID)

    def new_hb(out: Any) -> Any:
        em = JsonlEmitter(out, run_id=RUN_ID, agent_id=AGENT_ID)
        em.start_heartbeat(1.0, lambda: {"steps_done": 0})
        return em

    out: dict[str, Factory | None] = {"bare": None, "new": new, "new_hb": new_hb, "new_emit": new}
    if previous is not None:
        prev = previous.JsonlEmitter
        out["previous_64"] = lambda s: prev(s, run_id=RUN_ID, agent_id=AGENT_ID, batch_lines=64, batch_delay_s=0.05)
        out["previous_1"] = lambda s: prev(s, run_id=RUN_ID, agent_id=AGENT_ID)
    return out


def measure(factories: dict[str, Factory | None], steps: int, episode_length: int, payload: str,
            rounds: int) -> dict[str, tuple[float, float]]:
    """Best (wall, CPU) seconds per step of each variant over alternating rounds."""
    wall = {name: float("inf") for name in factories}
    cpu = dict(wall)
    for _ in range(rounds):
        for name, factory in factories.items():
            with devnull_writer() as out:
                emitter = factory(out) if factory is not None else None
                gc.collect()
                wall_s, cpu_s = loop(emitter, steps, episode_length, payload, STEP_API.get(name, "emit"))
                if emitter is not None:
                    emitter.close()
            wall[name] = min(wall[name], wall_s / steps)
            cpu[name] = min(cpu[name], cpu_s / steps)
    return {name: (wall[name], cpu[name]) for name in factories}


class RecordingStream(io.RawIOBase):
    """Notes, for every write, the wall-clock time and the ``ts`` of the write's first line."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[int, bytes]] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:  # type: ignore[override]
        now_ns = time.time_ns()
        data = bytes(data)
        self.writes.append((now_ns, data[:200]))
        return len(data)


def line_waits_ms(writes: list[tuple[int, bytes]]) -> list[float]:
    waits = []
    for now_ns, head in writes:
        ts = json.loads(b'{"ts"' + head.split(b',"ts"', 1)[1].split(b",", 1)[0] + b"}")["ts"]
        waits.append((now_ns - datetime.fromisoformat(ts).timestamp() * 1e9) / 1e6)
    return waits


def bound_check(payload: str) -> dict[str, float]:
    """Bursts of 1-400 steps separated by pauses of 0-30 ms, with the flusher thread running."""
    stream = RecordingStream()
    em = JsonlEmitter(stream, run_id=RUN_ID, agent_id=AGENT_ID)  # type: ignore[arg-type]
    em.start_flusher()
    renders = grid_payloads() if payload == "grid" else [None] * 16
    info = {"prob": 1.0} if payload == "grid" else {}
    stop = threading.Event()
    steps = 0
    for burst in range(60):
        for t in range(1 + (burst * 37) % 400):
            em.emit("step", step_fields(burst, t, 0, t % 16, 0.0, False, False, info, renders[t % 16]))
            steps += 1
        stop.wait(((burst * 13) % 31) / 1000)  # the loop does something else for 0-30 ms
    em.close()
    waits = sorted(line_waits_ms(stream.writes))
    return {"steps": steps, "writes": len(waits), "p50_ms": waits[len(waits) // 2], "max_ms": waits[-1]}


def worker_main(args: argparse.Namespace, previous: ModuleType | None) -> int:
    """``--worker new|previous``: the loop as a worker process writing to its stdout, for ``--e2e``."""
    from gym_gui.workers.runtime import claim_stdout

    out = claim_stdout()
    if args.worker == "previous":
        assert previous is not None
        em = previous.JsonlEmitter(out, run_id=args.run_id, agent_id=AGENT_ID, batch_lines=64, batch_delay_s=0.05)
    else:
        em = JsonlEmitter(out, run_id=args.run_id, agent_id=AGENT_ID)
    Path(args.start_file).write_text(repr(time.time()))
    em.emit("run_started", {"env_id": "FrozenLake-v1", "config": {"steps": args.steps},
                            "worker": {"name": "tools.bench_emitter", "version": "1"}, "pid": os.getpid()},
            flush=True)
    em.start_heartbeat(1.0, lambda: {"steps_done": 0})
    loop(em, args.steps, args.episode_length, args.payload, "emit" if args.worker == "previous" else "emit_step")
    em.stop_heartbeat()
    em.emit("run_completed", {"outcome": "completed", "summary": {"steps": args.steps}}, flush=True)
    em.close()
    return 0


def e2e_round(args: argparse.Namespace, side: str, payload: str, tmp: Path, n: int) -> float | None:
    """Steps/s from the worker's first line until ``python -m gym_gui.run`` exits with every row stored."""
    db, start_file = tmp / f"e2e-{side}-{payload}-{n}.sqlite", tmp / f"start-{side}-{n}"
    run_id = f"bench-emitter-{side}-{n}"
    worker = [sys.executable, __file__, "--worker", side, "--steps", str(args.steps), "--payload", payload,
              "--episode-length", str(args.episode_length), "--previous-rev", args.previous_rev,
              "--run-id", run_id, "--start-file", str(start_file)]
    proc = subprocess.run([sys.executable, "-m", "gym_gui.run", "--db", str(db), "--progress-interval-s", "60",
                           "--", *worker], cwd=REPO, capture_output=True, text=True)
    end = time.time()
    stored = f"{args.steps // args.episode_length} episodes, {args.steps} steps"
    if proc.returncode != 0 or f"stored: {stored}" not in proc.stdout or not start_file.exists():
        print(f"e2e round ({side}) failed: exit {proc.returncode}\n{proc.stdout[-1500:]}{proc.stderr[-1500:]}",
              file=sys.stderr)
        return None
    return args.steps / (end - float(start_file.read_text()))


def e2e(args: argparse.Namespace, payload: str, previous: ModuleType | None) -> dict[str, float | None]:
    """Median steps/s of each side over alternating ``--e2e`` rounds."""
    sides = ["previous", "new"] if previous is not None else ["new"]
    rates: dict[str, list[float]] = {side: [] for side in sides}
    with tempfile.TemporaryDirectory(prefix="bench-emitter-e2e-") as tmp:
        for n in range(args.e2e):
            for side in sides:
                rate = e2e_round(args, side, payload, Path(tmp), n)
                if rate is not None:
                    rates[side].append(rate)
    return {side: (sorted(r)[len(r) // 2] if r else None) for side, r in rates.items()}


def child_stdlib(args: argparse.Namespace, payload: str) -> dict[str, tuple[float, float]] | None:
    cmd = [sys.executable, __file__, "--no-orjson", "--child", "--steps", str(args.steps), "--rounds", str(args.rounds),
           "--episode-length", str(args.episode_length), "--payload", payload]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"stdlib child failed: {proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per variant; the best is kept")
    parser.add_argument("--episode-length", type=int, default=100)
    parser.add_argument("--payload", choices=("grid", "scalar", "both"), default="both")
    parser.add_argument("--previous-rev", default=PREVIOUS_REV, help="git revision of the previous emitter")
    parser.add_argument("--check", action="store_true", help="exit 1 when the target is missed")
    parser.add_argument("--e2e", type=int, default=0, metavar="ROUNDS",
                        help="also run the loop as a worker through python -m gym_gui.run, ROUNDS alternating rounds "
                             "per emitter, and print steps/s until every row is stored (medians)")
    parser.add_argument("--worker", choices=("new", "previous"), help=argparse.SUPPRESS)
    parser.add_argument("--run-id", default=RUN_ID, help=argparse.SUPPRESS)
    parser.add_argument("--start-file", help=argparse.SUPPRESS)
    parser.add_argument("--no-orjson", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    payloads = ("grid", "scalar") if args.payload == "both" else (args.payload,)

    if args.child:  # bare loop and the new emitter only; one JSON line on stdout
        assert not jsonl_encoding.HAVE_ORJSON
        both = {name: factory for name, factory in variants(None).items() if name in ("bare", "new")}
        best = measure(both, args.steps, args.episode_length, payloads[0], args.rounds)
        print(json.dumps({"bare": best["bare"], "new": best["new"]}))
        return 0

    previous = load_previous(args.previous_rev)
    if args.worker:
        return worker_main(args, previous)
    print(f"steps={args.steps:,} rounds={args.rounds} episode_length={args.episode_length} "
          f"batch_lines={DEFAULT_BATCH_LINES} max_delay_ms={DEFAULT_MAX_DELAY_MS} orjson={jsonl_encoding.HAVE_ORJSON} "
          f"python={sys.version.split()[0]} gc={gc.get_threshold()}")
    figures = []
    missed = False
    labels = {
        "new": "new emitter (defaults)",
        "new_hb": "new emitter + heartbeat thread",
        "new_emit": "new emitter, emit(\"step\", step_fields(...))",
        "stdlib": "new emitter, stdlib json (no orjson)",
        "previous_64": f"previous ({args.previous_rev}), batch 64 / 50 ms",
        "previous_1": f"previous ({args.previous_rev}), batch_lines=1",
    }
    for payload in payloads:
        best = measure(variants(previous), args.steps, args.episode_length, payload, args.rounds)
        stdlib = child_stdlib(args, payload)
        bare_wall, bare_cpu = best["bare"]
        # Producer cost in us/step: (CPU, wall) of the variant's best round minus the bare loop's.
        cost = {name: ((c - bare_cpu) * 1e6, (w - bare_wall) * 1e6) for name, (w, c) in best.items() if name != "bare"}
        if stdlib is not None:
            new_wall, new_cpu = stdlib["new"]
            child_wall, child_cpu = stdlib["bare"]
            cost["stdlib"] = ((new_cpu - child_cpu) * 1e6, (new_wall - child_wall) * 1e6)
        prev = cost["previous_64"][0] if "previous_64" in cost else None
        print(f"\npayload {payload}: bare loop {bare_cpu * 1e6:.3f} us/step CPU; producer cost (loop with emitting "
              f"- bare loop), process CPU time and wall time:")
        for name, label in labels.items():
            if name in cost:
                cpu_us, wall_us = cost[name]
                ratio = f"  {cpu_us / prev:5.2f}x previous" if prev else ""
                print(f"  {label:<44} {cpu_us:7.3f} us/step CPU {wall_us:7.3f} wall{ratio}")
        ok = cost["new"][0] <= TARGET_US_PER_STEP
        missed |= payload == "grid" and not ok
        print(f"  target <= {TARGET_US_PER_STEP} us/step (CPU): {'met' if ok else 'MISSED'}")
        tgt = target("<=", TARGET_US_PER_STEP, source="issue 13 #1")
        base: dict[str, Any] = {"baseline": prev, "baseline_label": f"previous emitter ({args.previous_rev}, batch 64)"}
        note = "process CPU time, best round minus the bare loop's"
        figures.append(figure(f"emitter.new_us_per_step.{payload}", f"emitter producer cost, {payload} step",
                              cost["new"][0], "us/step", "lower", target=tgt, note=note, **base))
        figures.append(figure(f"emitter.new_hb_us_per_step.{payload}", f"emitter + heartbeat thread, {payload} step",
                              cost["new_hb"][0], "us/step", "lower", target=tgt, note=note, **base))
        figures.append(figure(f"emitter.emit_us_per_step.{payload}", f"emitter, emit + step_fields, {payload} step",
                              cost["new_emit"][0], "us/step", "lower", note=note, **base))
        figures.append(figure(f"emitter.stdlib_us_per_step.{payload}", f"emitter without orjson, {payload} step",
                              cost["stdlib"][0] if "stdlib" in cost else None, "us/step", "lower", note=note, **base))
        figures.append(figure(f"emitter.wall_us_per_step.{payload}", f"emitter producer cost (wall), {payload} step",
                              cost["new"][1], "us/step", "lower", note="wall time, best round minus the bare loop's",
                              baseline=cost["previous_64"][1] if "previous_64" in cost else None,
                              baseline_label=base["baseline_label"]))
        if args.e2e:
            rates = e2e(args, payload, previous)
            new_rate, prev_rate = rates.get("new"), rates.get("previous")
            shown = " / ".join(f"{side} {rate:,.0f}" if rate else f"{side} failed" for side, rate in rates.items())
            print(f"  end to end through python -m gym_gui.run (worker's first line -> every row stored), steps/s: {shown}")
            figures.append(figure(f"emitter.e2e_steps_per_s.{payload}", f"python loop -> gym_gui.run -> SQLite, {payload}",
                                  new_rate, "steps/s", "higher", baseline=prev_rate,
                                  baseline_label=f"previous emitter ({args.previous_rev})",
                                  note=f"median of {args.e2e} alternating rounds"))
    bound = bound_check(payloads[0])
    print(f"\ntime bound ({payloads[0]}; bursts and pauses, flusher thread): {bound['steps']:,} steps in "
          f"{bound['writes']} writes; oldest line's wait at its write p50 {bound['p50_ms']:.2f} ms, "
          f"max {bound['max_ms']:.2f} ms (max_delay_ms {DEFAULT_MAX_DELAY_MS})")
    figures.append(figure("emitter.line_wait_max_ms", "emitter: longest wait of a line before its write",
                          bound["max_ms"], "ms", "lower", target=target("<=", 2 * DEFAULT_MAX_DELAY_MS,
                                                                         source="issue 13 #1")))
    print_bench_json("emitter", figures)
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
