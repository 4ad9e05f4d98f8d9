#!/usr/bin/env python3
"""Run every benchmark and print one table of figures beside their in-run baselines (``tools/bench``).

    tools/bench                      # every benchmark, default sizes (about 5 minutes on 2 cores)
    tools/bench --quick              # reduced sizes: a smoke test of every benchmark
    tools/bench --json out.json      # also write every figure (and how it was measured) to a file
    tools/bench --compare old.json   # flag figures more than 15% worse than in old.json; exit 1 if any
    tools/bench --only bus,disk      # a subset (--list shows the names)
    tools/bench --peers [--steps N]  # tensorboardX, rerun and wandb (offline) next to ours, see bench_peers.py

Every benchmark is run as its own process (``sys.executable``, so the project's .venv) and keeps
printing its own text (kept in ``--log-dir``); the driver reads the figures from its LAST stdout
line, the BENCH_JSON convention:

    BENCH_JSON {"v": 1, "bench": "<name>", "figures": [<figure>, ...]}

a <figure> being an object with ``name`` (unique, stable: ``--compare`` matches by it), ``label``,
``value`` (number or null), ``unit``, ``better`` ("higher" or "lower"), ``baseline`` (the same
quantity measured in the same run, or null) with ``baseline_label``, ``target`` (null or
``{"on": "value"|"ratio", "op": "<="|">=", "limit": number, "source": text}``) and an optional
``note``. ``tools/bench_figures.py`` has ``figure()``, ``target()`` and ``print_bench_json()`` to
print it; its docstring is the full description. A benchmark script of the list below that does
not exist yet is shown as "missing" in the table; one that exists but prints no BENCH_JSON line,
or fails, as "error" (with the tail of its output); one too slow for ``--quick`` (live.20000hz)
as "skipped" there.

The table's ratio is value / baseline; pass/fail follows the figure's target. ``--compare``
compares, per figure, the ratio when both runs measured a baseline (in-run ratios move far less
with the machine than absolute rates), the value otherwise, in the figure's direction; more than
15% worse is a regression. The machine's speed is measured too, before each benchmark and after
the last (``machine_speed.reference_loop_ns``, a plain-Python loop in ns per iteration): the first
and last readings in the table's header and in the JSON file as ``machine_loop_ns`` {"start",
"end"}, the readings around each benchmark in its progress line, in one line under the table and
in its JSON entry (``benches[i].machine_loop_ns`` {"before", "after"}); ``--compare`` says when the
two runs' machines differ by more than 15% on it, for the whole run and per benchmark (their
absolute figures then do too). Exit status: 2 when a benchmark could not be run (error), else 1 when
``--compare`` found a regression, else 0 (a missed target is shown, not an exit status).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from bench_figures import parse_bench_json  # noqa: E402
from machine_speed import reference_loop_ns  # noqa: E402

__all__ = ["BENCHES", "BenchSpec", "compare", "main", "render_compare", "render_table", "run_bench"]

REGRESSION = 0.15
FORMAT_VERSION = 1


@dataclass(frozen=True)
class BenchSpec:
    """One benchmark invocation: a script (relative to the repo), its arguments, and the arguments
    ``--quick`` adds after them (argparse keeps the last of a repeated option)."""

    name: str
    script: str
    args: tuple[str, ...] = ()
    quick_args: tuple[str, ...] = ()
    timeout_s: float = 900.0
    what: str = ""
    #: Extra arguments from the command line (``--steps``) -> this bench's option, if it takes one.
    steps_option: str | None = None
    #: Not run with ``--quick`` (too slow even when reduced); its row says so.
    quick_skip: bool = False


BENCHES: tuple[BenchSpec, ...] = (
    BenchSpec("bus", "tools/bench_bus.py", (), ("--events", "20000", "--rounds", "2"),
              what="RunBus.publish vs blinker at 1/4/16 subscribers"),
    BenchSpec("sink.grid", "tools/bench_sink.py", ("--payload", "grid"), ("--rows", "20000", "--repeat", "1"),
              what="RunBus + DbSink vs raw executemany, grid steps"),
    BenchSpec("sink.scalar", "tools/bench_sink.py", ("--payload", "scalar"), ("--rows", "20000", "--repeat", "1"),
              what="RunBus + DbSink vs raw executemany, scalar steps"),
    BenchSpec("e2e.grid", "tools/bench_e2e.py", ("--payload", "grid", "--envelope", "both"),
              ("--steps", "20000", "--repeat", "1", "--no-breakdown"),
              what="worker pipe -> committed rows, canonical and gym_gui envelopes, grid steps"),
    BenchSpec("e2e.scalar", "tools/bench_e2e.py", ("--payload", "scalar", "--envelope", "both"),
              ("--steps", "20000", "--repeat", "1", "--no-breakdown"),
              what="worker pipe -> committed rows, canonical and gym_gui envelopes, scalar steps"),
    BenchSpec("emitter", "tools/bench_emitter.py", ("--e2e", "3"), ("--steps", "20000", "--rounds", "1", "--e2e", "1"),
              what="worker-side emitter cost in a plain Python loop; the loop through gym_gui.run"),
    BenchSpec("realloop", "tools/bench_peers.py", ("--tools", "gym_gui", "--grid-steps", "200000"),
              ("--steps", "20000", "--grid-steps", "20000"),
              what="a Python loop emitting through python -m gym_gui.run, until durable (200,000 steps of each variant)"),
    BenchSpec("live.1000hz", "tools/bench_live.py", ("--step-rate-hz", "1000", "--seconds", "10"),
              ("--seconds", "2"), what="window live latency at 1,000 steps/s"),
    BenchSpec("live.20000hz", "tools/bench_live.py", ("--step-rate-hz", "20000", "--seconds", "8"),
              what="window live latency at 20,000 steps/s", quick_skip=True),  # minutes even when reduced
    BenchSpec("live.8x1000hz", "tools/bench_live.py", ("--step-rate-hz", "1000", "--runs", "8", "--seconds", "8"),
              what="window live latency with 8 runs at 1,000 steps/s each", quick_skip=True),
    BenchSpec("plots", "tools/bench_plots.py", (), ("--episodes", "50000", "--seconds", "1"),
              what="learning-curve plots: GUI thread blocked while a long run is plotted live"),
    BenchSpec("redis", "tests/transport/bench_redis_publish.py", (), ("--events", "20000", "--rounds", "1"),
              what="Redis publisher and bridge entries/s to a local redis-server"),
    BenchSpec("redis.e2e", "tools/bench_redis_e2e.py", (), ("--steps", "20000", "--rounds", "1"),
              what="worker -> bridge -> Redis -> collector -> committed rows, beside local gym_gui.run"),
    BenchSpec("disk", "tools/bench_disk.py", (), ("--steps", "20000"),
              what="bytes/step on disk (scalar, ToyText grid) vs a minimal table; read-back ms"),
)

PEERS = BenchSpec("peers", "tools/bench_peers.py", (), ("--steps", "20000"), timeout_s=3600.0,
                  what="tensorboardX, rerun, wandb (offline) and ours: the same loop", steps_option="--steps")


@dataclass
class BenchResult:
    """What one benchmark run gave: status ok / missing / skipped / error, its figures and where its output is."""

    spec: BenchSpec
    status: str
    args: tuple[str, ...] = ()
    figures: list[dict[str, Any]] = field(default_factory=list)
    rc: int | None = None
    seconds: float = 0.0
    note: str = ""
    log: str = ""
    #: The reference loop (ns per iteration) just before and just after this benchmark ran.
    machine_loop_ns: dict[str, float] | None = None

    def to_json(self) -> dict[str, Any]:
        """How the benchmark was run (the figures are listed separately)."""
        return {"name": self.spec.name, "script": self.spec.script, "args": list(self.args), "status": self.status,
                "rc": self.rc, "seconds": round(self.seconds, 2), "note": self.note, "log": self.log,
                "machine_loop_ns": self.machine_loop_ns}


def run_bench(spec: BenchSpec, *, quick: bool, log_dir: Path, extra: Sequence[str] = ()) -> BenchResult:
    """Run one benchmark to completion and read its BENCH_JSON line. Caller's thread; blocks."""
    script = ROOT / spec.script
    args = tuple(spec.args) + (tuple(spec.quick_args) if quick else ()) + tuple(extra)
    if not script.exists():
        return BenchResult(spec, "missing", args, note=f"{spec.script} does not exist yet")
    if quick and spec.quick_skip:
        return BenchResult(spec, "skipped", args, note="not run with --quick (minutes even when reduced)")
    log_path = log_dir / f"{spec.name}.log"
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    env["PYTHONUNBUFFERED"] = "1"
    started = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, str(script), *args], cwd=str(ROOT), env=env, capture_output=True,
                              text=True, timeout=spec.timeout_s, stdin=subprocess.DEVNULL)
        stdout, stderr, rc = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        stdout = _text(exc.stdout)
        stderr = _text(exc.stderr) + f"\n(timed out after {spec.timeout_s:.0f} s)"
        rc = None
    seconds = time.perf_counter() - started
    log_path.write_text(f"$ {spec.script} {' '.join(args)}\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n")
    result = BenchResult(spec, "ok", args, rc=rc, seconds=seconds, log=str(log_path))
    try:
        parsed = parse_bench_json(stdout)
    except ValueError as exc:
        parsed = None
        result.note = f"bad BENCH_JSON line: {exc}"
    if parsed is None:
        result.status = "error"
        tail = (stderr.strip() or stdout.strip()).splitlines()[-3:]
        why = "timed out" if rc is None else f"exit {rc}"
        result.note = result.note or f"{why}, no BENCH_JSON line: " + " / ".join(tail)[-300:]
        return result
    result.figures = [dict(fig, bench=spec.name) for fig in parsed["figures"]]
    if rc:
        result.note = f"exit {rc} (figures kept)"
    return result


def _text(data: Any) -> str:
    if data is None:
        return ""
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)


# -- judging and printing ---------------------------------------------------------------------------
def ratio_of(fig: Mapping[str, Any]) -> float | None:
    """value / baseline, or None when either is missing or the baseline is 0."""
    value, base = fig.get("value"), fig.get("baseline")
    if value is None or base is None or base == 0:
        return None
    return float(value) / float(base)


def verdict(fig: Mapping[str, Any]) -> str:
    """"pass", "FAIL", "-" (no target) or "n/a" (the judged quantity was not measured)."""
    tgt = fig.get("target")
    if not tgt:
        return "-"
    judged = ratio_of(fig) if tgt.get("on") == "ratio" else fig.get("value")
    if judged is None:
        return "n/a"
    ok = judged <= tgt["limit"] if tgt["op"] == "<=" else judged >= tgt["limit"]
    return "pass" if ok else "FAIL"


def fmt(value: float | None) -> str:
    """A number for people: thousands separated, 3 significant digits below 100."""
    if value is None:
        return "-"
    v = float(value)
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if v == int(v):
        return f"{int(v)}"
    return f"{v:.3g}" if abs(v) >= 0.01 else f"{v:.2g}"


def target_text(fig: Mapping[str, Any]) -> str:
    tgt = fig.get("target")
    if not tgt:
        return ""
    what = "ratio" if tgt.get("on") == "ratio" else "value"
    src = f" ({tgt['source']})" if tgt.get("source") else ""
    return f"{what} {tgt['op']} {fmt(tgt['limit'])}{src}"


def render_table(results: Sequence[BenchResult]) -> str:
    """One markdown table: a row per figure, and one per benchmark that is missing or failed."""
    rows = [("figure", "value", "unit", "baseline (same run)", "ratio", "target", "result")]
    for res in results:
        if res.status != "ok":
            rows.append((f"{res.spec.name}: {res.spec.what}", "-", "", "", "", "", f"{res.status.upper()}: {res.note}"))
            continue
        for fig in res.figures:
            base = fig.get("baseline")
            base_text = f"{fmt(base)} {fig.get('baseline_label', '')}".strip() if base is not None else "-"
            ratio = ratio_of(fig)
            result = verdict(fig)
            if fig.get("note") and fig.get("value") is None:
                result = f"{result}: {fig['note']}"
            rows.append((f"{fig['label']} `{fig['name']}`", fmt(fig.get("value")), fig.get("unit", ""), base_text,
                         "-" if ratio is None else f"{ratio:.3g}", target_text(fig), result))
    return _markdown(rows)


def _markdown(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _compared(fig: Mapping[str, Any]) -> tuple[str, float | None]:
    ratio = ratio_of(fig)
    return ("ratio", ratio) if ratio is not None else ("value", fig.get("value"))


def compare(old: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]],
            threshold: float = REGRESSION) -> list[dict[str, Any]]:
    """Per figure of ``new`` found in ``old`` (by name): what was compared, both numbers, the relative
    change signed in the figure's good direction (+0.2: 20% higher for a higher-is-better figure, 20%
    lower for a lower-is-better one), and ``regressed`` when that is below ``-threshold``. The ratio is compared when both runs have a baseline, else the value. Pure."""
    by_name = {fig["name"]: fig for fig in old}
    out = []
    for fig in new:
        prev = by_name.get(fig["name"])
        if prev is None:
            continue
        kind_new, now = _compared(fig)
        kind_old, before = _compared(prev)
        if kind_new != kind_old:  # one run had a baseline, the other not: compare the values
            kind_new, now, before = "value", fig.get("value"), prev.get("value")
        entry: dict[str, Any] = {"name": fig["name"], "label": fig.get("label", fig["name"]), "compared": kind_new,
                                 "old": before, "new": now, "better": fig["better"], "change": None, "regressed": False}
        if now is not None and before is not None:
            higher = fig["better"] == "higher"
            if before != 0:
                change = (now / before - 1.0) * (1.0 if higher else -1.0)
                entry["change"] = change
                entry["regressed"] = change < -threshold
            else:  # nothing to scale by: a lower-is-better 0 (e.g. overflow) regresses when it is no longer 0
                entry["regressed"] = (not higher) and now > 0
        out.append(entry)
    return out


def render_compare(entries: Sequence[Mapping[str, Any]], old_path: str) -> str:
    rows = [("figure", "compared", f"old ({Path(old_path).name})", "new", "change (+ = better)", "result")]
    for e in entries:
        change = "-" if e["change"] is None else f"{e['change'] * 100:+.1f}%"
        result = "REGRESSED" if e["regressed"] else ("n/a" if e["new"] is None or e["old"] is None else "ok")
        rows.append((f"`{e['name']}`", e["compared"], fmt(e["old"]), fmt(e["new"]), change, result))
    return _markdown(rows)


def render_peers(figures: Sequence[Mapping[str, Any]]) -> str:
    """The peer figures (``peers.<variant>.<tool>.<metric>``) as one row per tool and variant."""
    metrics = (("producer_us_per_step", "producer us/step"), ("durable_steps_per_s", "steps/s until durable"),
               ("bytes_per_step", "bytes/step on disk"), ("readback_ms", "read-back ms (2,000 returns)"))
    table: dict[tuple[str, str], dict[str, Any]] = {}
    for fig in figures:
        parts = fig["name"].split(".")
        if len(parts) != 4 or parts[0] != "peers":
            continue
        row = table.setdefault((parts[1], parts[2]), {"notes": []})
        row[parts[3]] = fig.get("value")
        if fig.get("note") and fig["note"] not in row["notes"]:
            row["notes"].append(fig["note"])
    rows = [("variant", "tool", *(label for _, label in metrics), "notes")]
    for (variant, tool), row in table.items():
        rows.append((variant, tool, *(fmt(row.get(key)) for key, _ in metrics), "; ".join(row["notes"])))
    return _markdown(rows)


# -- the command ------------------------------------------------------------------------------------
def machine_text(machine: Mapping[str, float]) -> str:
    """The header's words for a run's reference-loop measurements (``machine_loop_ns``). Pure."""
    return f"reference loop {machine['start']:.0f} ns at the start, {machine['end']:.0f} ns at the end"


def machine_by_bench_text(results: Sequence[BenchResult]) -> str:
    """One line: the reference loop before each benchmark that ran, then after the last. Pure."""
    ran = [(r.spec.name, r.machine_loop_ns) for r in results if r.machine_loop_ns]
    if not ran:
        return ""
    parts = [f"{name} {loop_ns['before']:.0f}" for name, loop_ns in ran] + [f"end {ran[-1][1]['after']:.0f}"]
    return "reference loop (ns) before each benchmark: " + ", ".join(parts)


def _mean_ns(machine: Mapping[str, float] | None, first: str, second: str) -> float | None:
    if not machine or not machine.get(first) or not machine.get(second):
        return None
    return (machine[first] + machine[second]) / 2


def _machine_note(now: float, before: float, what: str) -> str:
    """The note when ``what`` ran the reference loop more than ``REGRESSION`` away from the older run's, else ''."""
    if abs(now / before - 1) <= REGRESSION:
        return ""
    return (f"note: {what} ran the reference loop at {now:.0f} ns, the older run's at {before:.0f} "
            f"({now / before:.2f}x): absolute figures differ by machine, compare the ratios")


def bench_machine_differences(old_benches: Sequence[Mapping[str, Any]], results: Sequence[BenchResult]) -> list[str]:
    """A note per benchmark whose machine, read just before and after it ran (the mean of the two),
    differs by more than ``REGRESSION`` from the older run's for the same benchmark. Pure."""
    before_by_name = {b.get("name"): _mean_ns(b.get("machine_loop_ns"), "before", "after") for b in old_benches}
    notes = []
    for res in results:
        now = _mean_ns(res.machine_loop_ns, "before", "after")
        before = before_by_name.get(res.spec.name)
        note = _machine_note(now, before, f"{res.spec.name}'s machine") if now and before else ""
        if note:
            notes.append(note)
    return notes


def machine_difference(old: Mapping[str, float] | None, new: Mapping[str, float]) -> str:
    """A note when two runs' machines differ by more than ``REGRESSION`` on the reference loop
    (the mean of each run's two measurements), else ''. Pure."""
    before, now = _mean_ns(old, "start", "end"), _mean_ns(new, "start", "end")
    if before is None or now is None:
        return "note: the older run has no reference-loop measurement: its machine's speed is unknown"
    return _machine_note(now, before, "this machine")


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=str(ROOT), capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tools/bench", description=__doc__.splitlines()[0],
                                     epilog="Names: " + ", ".join(s.name for s in BENCHES) + " (and peers)")
    parser.add_argument("--quick", action="store_true", help="reduced sizes (a smoke test, figures not comparable)")
    parser.add_argument("--json", type=Path, help="write every figure and how it was measured to this file")
    parser.add_argument("--compare", type=Path, help="an earlier --json file: exit 1 when a figure is >15%% worse")
    parser.add_argument("--only", default="", help="comma-separated benchmark names (prefixes match: e2e, sink)")
    parser.add_argument("--skip", default="", help="comma-separated benchmark names to leave out")
    parser.add_argument("--peers", action="store_true", help="run the peer comparison (tools/bench_peers.py) only")
    parser.add_argument("--steps", type=int, help="with --peers: steps of the loop (default 200,000)")
    parser.add_argument("--log-dir", type=Path, help="keep each benchmark's output here (default: a temp dir)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    return parser


def _select(names: str, skip: str) -> list[BenchSpec]:
    wanted = [n for n in names.split(",") if n]
    dropped = [n for n in skip.split(",") if n]

    def match(spec: BenchSpec, pats: list[str]) -> bool:
        return any(spec.name == p or spec.name.startswith(p + ".") for p in pats)

    chosen = [s for s in BENCHES if (not wanted or match(s, wanted)) and not match(s, dropped)]
    if wanted and "peers" in wanted:
        chosen.append(PEERS)
    return chosen


def main(argv: Sequence[str] | None = None) -> int:
    """The ``tools/bench`` command. Main thread; blocks for the whole run."""
    args = build_parser().parse_args(argv)
    if args.list:
        for spec in (*BENCHES, PEERS):
            print(f"{spec.name:<14} {spec.script:<40} {spec.what}")
        return 0
    specs = [PEERS] if args.peers else _select(args.only, args.skip)
    if not specs:
        print("tools/bench: no benchmark matches", file=sys.stderr)
        return 2
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="bench-logs-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.timezone.utc)
    loop_ns = reference_loop_ns()
    machine = {"start": loop_ns}
    results: list[BenchResult] = []
    for n, spec in enumerate(specs, 1):
        extra = (spec.steps_option, str(args.steps)) if args.steps and spec.steps_option else ()
        print(f"[{n}/{len(specs)}] {spec.name}: {spec.script} ...", file=sys.stderr, flush=True)
        res = run_bench(spec, quick=args.quick, log_dir=log_dir, extra=extra)
        if res.seconds:  # it ran: the machine's speed around it (its "after" is the next one's "before")
            before_ns, loop_ns = loop_ns, reference_loop_ns()
            res.machine_loop_ns = {"before": before_ns, "after": loop_ns}
        speed = (f"; reference loop {res.machine_loop_ns['before']:.0f} -> {res.machine_loop_ns['after']:.0f} ns"
                 if res.machine_loop_ns else "")
        print(f"      {res.status} in {res.seconds:.1f} s, {len(res.figures)} figures{speed} {res.note}",
              file=sys.stderr, flush=True)
        results.append(res)
    machine["end"] = loop_ns
    figures = [fig for res in results for fig in res.figures]
    command = "tools/bench " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"\n{command.strip()}  ({started:%Y-%m-%d %H:%M} UTC, commit {_git('rev-parse', '--short', 'HEAD')}"
          f"{' + local changes' if _git('status', '--porcelain', '--untracked-files=no') else ''}, "
          f"{os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}, {machine_text(machine)}"
          f"{', QUICK sizes' if args.quick else ''})\n")
    if args.peers:
        print(render_peers(figures))
        for res in results:
            if res.status != "ok":
                print(f"\npeers: {res.status}: {res.note}")
    else:
        print(render_table(results))
    by_bench = machine_by_bench_text(results)
    if by_bench:
        print(f"\n{by_bench}")
    print(f"\n(each benchmark's own output: {log_dir})")
    if args.json:
        doc = {"v": FORMAT_VERSION, "date": started.isoformat(timespec="seconds"), "command": command.strip(),
               "commit": _git("rev-parse", "HEAD"), "quick": args.quick, "python": platform.python_version(),
               "sqlite": sqlite3.sqlite_version, "cpus": os.cpu_count(), "load_avg": os.getloadavg()[0],
               "machine_loop_ns": machine,
               "benches": [r.to_json() for r in results], "figures": figures}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n")
        print(f"figures written to {args.json}")
    rc = 0
    if args.compare:
        old = json.loads(args.compare.read_text())
        if bool(old.get("quick")) != args.quick:
            print("note: one of the two runs used --quick sizes; the comparison says little")
        entries = compare(old.get("figures", []), figures)
        print(f"\ncompared with {args.compare} ({old.get('date', '?')}, commit {str(old.get('commit', '?'))[:7]}):\n")
        print(render_compare(entries, str(args.compare)))
        other = machine_difference(old.get("machine_loop_ns"), machine)
        for note in ([other] if other else []) + bench_machine_differences(old.get("benches", []), results):
            print(f"\n{note}")
        regressed = [e["name"] for e in entries if e["regressed"]]
        if regressed:
            print(f"\nREGRESSED by more than {REGRESSION:.0%}: {', '.join(regressed)}")
            rc = 1
        else:
            print(f"\nno figure regressed by more than {REGRESSION:.0%}")
    if any(r.status == "error" for r in results):
        rc = 2
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
