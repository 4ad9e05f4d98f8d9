#!/usr/bin/env python3
"""Durable-path benchmark: persisted rows/s through RunBus + DbSink vs raw sqlite3 executemany.

Both sides write the same step events into the same schema, with the same PRAGMAs (WAL,
synchronous=NORMAL) and the same batch size, one transaction per batch, in one process run:

- raw: a hand-written writer turns each batch of events into the same row tuples (the same
  columns, JSON text from the same encoder, byte for byte what the store writes) and calls
  ``executemany`` -- the floor any writer of these rows pays;
- sink: the events are published on a RunBus from this thread while a DbSink (a real QThread)
  drains, orders, batches and commits them; the clock stops when ``flush()`` returns;
- for reference, raw executemany of tuples built before the clock starts (SQLite alone).

Usage: .venv/bin/python tools/bench_sink.py [--rows N] [--batch-size B] [--repeat R] [--payload grid|scalar]
Prints both rates and the ratio sink/raw (target >= 0.70); exits 1 below the target with --check.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qtpy.QtCore import QCoreApplication  # noqa: E402

from gym_gui.qt.db_sink_thread import DbSink  # noqa: E402
from gym_gui.telemetry.events import TelemetryEvent, Topic, iso_from_unix_s  # noqa: E402
from gym_gui.telemetry.run_bus import RunBus  # noqa: E402
from gym_gui.telemetry.sqlite_rows import dump_json  # noqa: E402
from gym_gui.telemetry.sqlite_schema import MIGRATIONS, configure_connection  # noqa: E402
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore  # noqa: E402
from bench_figures import figure, print_bench_json, target  # noqa: E402

TARGET = 0.70
GRID = [["S", "F", "F", "F"], ["F", "H", "F", "H"], ["F", "F", "F", "H"], ["H", "F", "F", "G"]]


def make_events(rows: int, payload_kind: str = "grid") -> list[TelemetryEvent]:
    """FrozenLake-like steps of one stream: int action/observation, info, a 4x4 grid render payload.

    ``payload_kind="scalar"`` drops info, render payload and extras (the smallest step a worker sends).
    """
    events = []
    for seq in range(rows):
        payload: dict[str, Any] = {
            "episode_index": seq // 100,
            "step_index": seq % 100,
            "action": seq % 4,
            "observation": seq % 16,
            "reward": 0.0,
            "terminated": False,
            "truncated": False,
            "info": {"prob": 1.0},
            "render_payload": {"mode": "grid", "grid": GRID, "agent_position": [seq % 4, (seq // 4) % 4]},
            "render_hint": "grid",
            "worker_id": "w1",
        }
        if payload_kind == "scalar":
            for key in ("info", "render_payload", "render_hint", "worker_id"):
                del payload[key]
        events.append(TelemetryEvent(Topic.STEP_APPENDED, "bench", "agent1", seq, iso_from_unix_s(1.8e9 + seq),
                                     payload))
    return events


_STEP_KEYS = {"episode_index", "step_index", "action", "observation", "reward", "terminated", "truncated",
              "info", "render_payload"}


def raw_rows(events: list[TelemetryEvent]) -> list[tuple[Any, ...]]:
    """What a hand-written writer would bind for the same steps table (no checks, no extras logic)."""
    dumps = dump_json
    out = []
    for e in events:
        p = e.payload
        extra = {k: v for k, v in p.items() if k not in _STEP_KEYS}
        info = p.get("info")
        render = p.get("render_payload")
        out.append((e.run_id, e.agent_id, e.seq_id, p["episode_index"], p["step_index"], dumps(p["action"]),
                    dumps(p["observation"]), p["reward"], p["terminated"], p["truncated"],
                    None if info is None else dumps(info), None if render is None else dumps(render),
                    dumps(extra) if extra else None, e.ts_iso))
    return out


def _raw(path: Path, events: list[TelemetryEvent], batch_size: int, prebuilt: bool) -> float:
    conn = sqlite3.connect(str(path), isolation_level=None)
    configure_connection(conn, busy_timeout_s=1.0)
    for statement in (s for version in MIGRATIONS[:3] for s in version):  # the version 3 table (schema v4:
        conn.execute(statement)  # steps is a view), the same baseline as before
    sql = "INSERT OR IGNORE INTO steps VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
    batches = [events[i:i + batch_size] for i in range(0, len(events), batch_size)]
    ready = [raw_rows(b) for b in batches] if prebuilt else None
    t0 = time.perf_counter()
    for n, batch in enumerate(batches):
        rows = ready[n] if ready is not None else raw_rows(batch)
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, rows)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    assert conn.execute("SELECT COUNT(*) FROM steps").fetchone()[0] == len(events)
    conn.close()
    return len(events) / elapsed


def bench_raw(path: Path, events: list[TelemetryEvent], batch_size: int) -> float:
    return _raw(path, events, batch_size, prebuilt=False)


def bench_prebuilt(path: Path, events: list[TelemetryEvent], batch_size: int) -> float:
    return _raw(path, events, batch_size, prebuilt=True)


def bench_sink(path: Path, events: list[TelemetryEvent], batch_size: int) -> float:
    store = TelemetrySQLiteStore(path)
    bus = RunBus()
    sink = DbSink(store, bus, batch_size=batch_size, high_water=10 * len(events))
    sink.start()
    publish = bus.publish
    t0 = time.perf_counter()
    for e in events:
        publish(e)
    assert sink.flush(120), "sink did not flush"
    elapsed = time.perf_counter() - t0
    stats = sink.stats()
    assert sink.stop(30)
    assert stats["persisted"] == len(events) and stats["lost"] == 0, stats
    assert store.max_seq_id("bench", "agent1") == len(events) - 1
    store.close()
    return len(events) / elapsed


def measure(name: str, fn: Callable[[Path, list[TelemetryEvent], int], float], events: list[TelemetryEvent],
            batch_size: int, tmp: Path, run: int) -> float:
    return fn(tmp / f"{name}-{run}.sqlite", events, batch_size)


#: DbSink is a QThread: the process keeps one Qt application object while the benchmark runs.
_QT_APP: QCoreApplication | None = None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3, help="alternating runs per side; the median is kept")
    parser.add_argument("--payload", choices=("grid", "scalar"), default="grid",
                        help="grid: steps with info, a 4x4 grid render payload and extras; scalar: without them")
    parser.add_argument("--check", action="store_true", help=f"exit 1 if the ratio is below {TARGET}")
    args = parser.parse_args()
    global _QT_APP
    _QT_APP = QCoreApplication.instance() or QCoreApplication([])
    events = make_events(args.rows, args.payload)
    sides = {"raw": bench_raw, "sink": bench_sink, "prebuilt": bench_prebuilt}
    rates: dict[str, list[float]] = {name: [] for name in sides}
    with tempfile.TemporaryDirectory(prefix="bench_sink_") as tmp_name:
        tmp = Path(tmp_name)
        for run in range(args.repeat):  # alternate, so every side sees the same machine state
            for name, fn in sides.items():
                rates[name].append(measure(name, fn, events, args.batch_size, tmp, run))
    median = {name: statistics.median(r) for name, r in rates.items()}
    ratio = median["sink"] / median["raw"]

    def line(label: str, name: str) -> str:
        runs = ", ".join(f"{r:,.0f}" for r in rates[name])
        return f"{label:<40}: {median[name]:>10,.0f} rows/s  (runs: {runs})"

    print(f"rows={args.rows} payload={args.payload} batch_size={args.batch_size} repeat={args.repeat} "
          f"sqlite={sqlite3.sqlite_version} "
          f"python={sys.version.split()[0]} cpus={os.cpu_count()}")
    print(line("raw sqlite3 executemany (rows built)", "raw"))
    print(line("RunBus + DbSink (QThread)", "sink"))
    print(line("reference: executemany, rows prebuilt", "prebuilt"))
    print(f"ratio sink/raw: {ratio:.2f}  (target >= {TARGET:.2f}) {'OK' if ratio >= TARGET else 'BELOW TARGET'};"
          f"  sink/prebuilt: {median['sink'] / median['prebuilt']:.2f}")
    kind = args.payload
    print_bench_json("sink", [
        figure(f"sink.{kind}.rows_per_s", f"RunBus + DbSink, {kind} steps", median["sink"], "rows/s", "higher",
               baseline=median["raw"], baseline_label="raw sqlite3 executemany",
               target=target(">=", TARGET, on="ratio", source="docs/performance.md")),
        figure(f"sink.{kind}.prebuilt_rows_per_s", f"reference: executemany of prebuilt rows, {kind}",
               median["prebuilt"], "rows/s", "higher"),
    ])
    return 1 if args.check and ratio < TARGET else 0


if __name__ == "__main__":
    sys.exit(main())
