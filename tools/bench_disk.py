#!/usr/bin/env python3
"""Disk cost of a stored step, and read-back time, through the real store (issue 13 target 4).

For each variant (``scalar``: int action/observation, reward, flags, an empty ``info``, no render
payload; ``grid``: FrozenLake 4x4 steps with ``info`` and the ToyText grid render payload) the
worker's lines are written with the workers' own code (``JsonlEmitter``, ``workers.records``,
``GridRenderer``): run_started, ``--steps`` steps in ``--episodes`` episodes, an episode record
after each, run_completed. They are decoded by a ``TelemetryProxy`` (the events the app
publishes) and written to a fresh ``TelemetrySQLiteStore`` with ``write_batch`` in batches of
``--batch-size``, then the WAL is checkpointed. Measured, without VACUUM:

- bytes/step: (page_count * page_size after) - (the same for the empty file) over the steps; and
  per table and index from ``dbstat``: the steps table with its indexes per step, the episodes
  table per episode;
- baseline, in the same run: the same values in a minimal raw-sqlite3 table (rowid table, no index,
  a column per field in its natural type: integers, REAL reward, ``ts`` as integer microseconds,
  ``info`` and the render payload as compact JSON text), and a minimal episodes table;
- read-back, as a user's process reads: the written store closed and the run's events dropped, a
  store opened on the existing file, each read called once (its first call, reported apart), then
  ``--reads`` rounds in which each read runs right beside the raw ``SELECT ... fetchall()`` of the
  same rows from the same file (so both see the same machine); medians of wall and CPU time
  (``time.process_time``) and their ratios. The reads: the run's episode returns as the learning
  curves read them (``curve_reads.load_curves_from_store``: 2,000 returns by default), every
  episode record (``store.episode_records``) and one episode's steps (``store.steps_for_episode``,
  another episode each round).

Every row is checked: as many step rows as steps written, every episode, values read back equal.

Usage: .venv/bin/python tools/bench_disk.py [--steps 200000] [--episodes 2000] [--variant scalar|grid|both]
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import math
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gym_gui.ingest.proxy import TelemetryProxy  # noqa: E402
from gym_gui.telemetry.curve_reads import load_curves_from_store  # noqa: E402
from gym_gui.telemetry.events import TelemetryEvent  # noqa: E402
from gym_gui.telemetry.run_bus import RunBus  # noqa: E402
from gym_gui.telemetry.sink_core import DURABLE_TOPICS  # noqa: E402
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore  # noqa: E402
from gym_gui.workers.grid_render import GridRenderer  # noqa: E402
from gym_gui.workers.jsonl_emitter import JsonlEmitter  # noqa: E402
from gym_gui.workers.records import episode_fields, run_started_fields, step_fields  # noqa: E402
from bench_figures import figure, print_bench_json, target  # noqa: E402

RUN_ID = "bench-disk-run"
AGENT = "agent-1"
CELLS = ["SFFF", "FHFH", "FFFH", "HFFG"]
TARGET_BYTES_PER_STEP = 60.0  # issue 13 #4
TARGET_RETURNS_MS = 5.0
TARGET_EPISODE_MS = 1.0


def worker_lines(variant: str, steps: int, episodes: int) -> bytes:
    """The lines a ToyText worker writes for this run, made by the workers' own emitter and records."""
    out = io.BytesIO()
    emitter = JsonlEmitter(out, run_id=RUN_ID, agent_id=AGENT, batch_lines=4096)
    env = SimpleNamespace(observation_space="Discrete(16)", action_space="Discrete(4)")
    emitter.emit("run_started", run_started_fields(
        env, env_id="FrozenLake-v1", config={"episodes": episodes, "seed": 0},
        worker={"name": "tools.bench_disk", "version": "1"}, render_kind="grid" if variant == "grid" else "none",
        env_family="FrozenLake"))
    renderer = GridRenderer(env_family="FrozenLake", cells=CELLS)
    length = max(1, steps // episodes)
    done = 0
    for ep in range(episodes):
        n = length if ep < episodes - 1 else steps - done
        position, ep_return = 0, 0.0
        for t in range(n):
            action = (done * 7 + ep) % 4
            position = (position + (1, 4, 3, 5)[action]) % 16
            last = t == n - 1
            reward = 1.0 if last and ep % 3 == 0 else 0.0
            ep_return += reward
            if variant == "grid":
                info: dict[str, Any] = {"prob": 1.0}
                render = renderer.payload(position)
            else:
                info, render = {}, None
            emitter.emit("step", step_fields(ep, t, action, position, reward, last, False, info, render))
            done += 1
        emitter.emit("episode", episode_fields(ep, ep_return, n, True, False,
                                               "success" if ep_return > 0 else "failure",
                                               {"epsilon": 0.05, "episode_seed": ep}))
    emitter.emit("run_completed", {"outcome": "completed", "summary": {"steps": steps, "episodes": episodes}})
    emitter.close()
    return out.getvalue()


def decoded_events(lines: bytes) -> list[TelemetryEvent]:
    """The events the proxy publishes for ``lines``, in seq order."""
    bus = RunBus()
    subs = [bus.subscribe(t, "bench-disk", maxlen=None) for t in DURABLE_TOPICS]
    proxy = TelemetryProxy(bus, default_agent_id=AGENT, run_id=RUN_ID, name="bench-disk")
    proxy.attach(io.BytesIO(lines))
    if not proxy.wait(300):
        raise RuntimeError("the proxy did not read the lines within 300 s")
    stats = proxy.stats()
    if stats["rejected_total"]:
        raise AssertionError(f"lines rejected: {stats}")
    return sorted((e for sub in subs for e in sub.drain()), key=lambda e: e.seq_id)


def _pages_bytes(conn: sqlite3.Connection) -> int:
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return int(conn.execute("PRAGMA page_count").fetchone()[0]) * int(conn.execute("PRAGMA page_size").fetchone()[0])


def _dbstat(conn: sqlite3.Connection) -> dict[str, int]:
    """Bytes per table or index (``dbstat``), or {} when this SQLite has no dbstat."""
    try:
        return {name: int(size) for name, size in conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name")}
    except sqlite3.OperationalError:
        return {}


def store_figures(path: Path, events: list[TelemetryEvent], batch_size: int) -> dict[str, Any]:
    """Write ``events`` through the store; bytes used, per table, and the file after close."""
    store = TelemetrySQLiteStore(path)
    probe = sqlite3.connect(str(path))
    empty = _pages_bytes(probe)
    empty_tables = _dbstat(probe)
    for i in range(0, len(events), batch_size):
        store.write_batch(events[i:i + batch_size])
    used = _pages_bytes(probe) - empty
    tables = {k: v - empty_tables.get(k, 0) for k, v in _dbstat(probe).items()}
    indexes = {name: tbl for name, tbl in probe.execute("SELECT name, tbl_name FROM sqlite_schema WHERE type = 'index'")}
    probe.close()
    return {"store": store, "used": used, "tables": tables, "indexes": indexes}


def raw_figures(path: Path, events: list[TelemetryEvent], batch_size: int) -> int:
    """The same values in minimal tables (no index); bytes used."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE steps (episode INTEGER, step INTEGER, action INTEGER, observation INTEGER, "
                 "reward REAL, terminated INTEGER, truncated INTEGER, info TEXT, render TEXT, ts_us INTEGER)")
    conn.execute("CREATE TABLE episodes (episode INTEGER, total_reward REAL, length INTEGER, terminated INTEGER, "
                 "truncated INTEGER, outcome TEXT, metadata TEXT, ts_us INTEGER)")
    empty = _pages_bytes(conn)
    dumps = json.JSONEncoder(separators=(",", ":")).encode

    def ts_us(evt: TelemetryEvent) -> int:
        return int(datetime.fromisoformat(evt.ts_iso).timestamp() * 1e6)

    steps, episodes = [], []
    for e in events:
        p = e.payload
        if "step_index" in p and "total_reward" not in p:
            render = p.get("render_payload")
            steps.append((p["episode_index"], p["step_index"], p["action"], p["observation"], p["reward"],
                          int(p["terminated"]), int(p["truncated"]), dumps(dict(p.get("info") or {})),
                          None if render is None else dumps(render), ts_us(e)))
        elif "total_reward" in p:
            episodes.append((p["episode_index"], p["total_reward"], p["length"], int(p["terminated"]),
                             int(p["truncated"]), p.get("outcome"), dumps(p.get("metadata") or {}), ts_us(e)))
    for i in range(0, len(steps), batch_size):
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO steps VALUES (?,?,?,?,?,?,?,?,?,?)", steps[i:i + batch_size])
        conn.execute("COMMIT")
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO episodes VALUES (?,?,?,?,?,?,?,?)", episodes)
    conn.execute("COMMIT")
    used = _pages_bytes(conn) - empty
    conn.close()
    return used


class Timings:
    """Wall and CPU times (s) of the calls of one read, the first (untimed in the medians) apart."""

    def __init__(self) -> None:
        self.first_s = math.nan
        self.wall_s: list[float] = []
        self.cpu_s: list[float] = []

    def run(self, fn: Callable[[], Any], *, first: bool = False) -> Any:
        """Call ``fn`` once and keep its times. Main thread; blocks."""
        w0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        if first:
            self.first_s = wall
        else:
            self.wall_s.append(wall)
            self.cpu_s.append(cpu)
        return result

    @property
    def wall_ms(self) -> float:
        return statistics.median(self.wall_s) * 1000

    @property
    def cpu_ms(self) -> float:
        return statistics.median(self.cpu_s) * 1000


def _expected(events: list[TelemetryEvent], middle: int) -> dict[str, Any]:
    """What ``_check`` compares the read-backs with (so that the events can go before the reads)."""
    return {
        "returns": {e.payload["episode_index"]: e.payload["total_reward"] for e in events
                    if "total_reward" in e.payload},
        "middle": [(p["step_index"], p["action"], p["observation"], p["reward"], p["terminated"],
                    p.get("render_payload")) for e in events for p in [e.payload]
                   if "step_index" in p and "total_reward" not in p and p["episode_index"] == middle],
    }


#: The raw-sqlite baselines: the same rows from the same file, fetched without any decoding.
_RAW_RETURNS = ("SELECT episode_index, total_reward FROM episodes WHERE run_id = ? AND agent_id = ? "
                "ORDER BY episode_index")
_RAW_EPISODES = "SELECT * FROM episodes WHERE run_id = ? AND agent_id = ? ORDER BY episode_index"
# The stored rows of an episode as they lie on disk: its seq range from episode_spans, a range of
# step_rows on the primary key (what the store reads, without decoding a value).
_RAW_EPISODE = (
    "SELECT s.* FROM stream_keys k JOIN episode_spans p ON p.stream = k.stream AND p.episode_index = ? "
    "JOIN step_rows s ON s.stream = k.stream AND s.seq_id BETWEEN p.first_seq AND p.last_seq "
    "WHERE k.run_id = ? AND k.agent_id = ? AND s.episode_index = ? ORDER BY s.seq_id")


def read_back(path: Path, episodes: int, reads: int) -> dict[str, Any]:
    """The read-backs as a user's process makes them: a store opened on the existing file, each read
    called once (its first call: the reader connection opened, the statements prepared), then
    ``reads`` rounds in which every read runs right next to its raw-sqlite3 baseline, so both see
    the same machine; medians. One episode's steps: a different episode each round (the raw
    SELECT reads the same one). Main thread; blocks."""
    store = TelemetrySQLiteStore(path)
    conn = sqlite3.connect(str(path))
    key = (RUN_ID, AGENT)
    middle = episodes // 2
    t = {name: Timings() for name in ("returns", "raw_returns", "episodes", "raw_episodes", "episode", "raw_episode")}

    def one_round(i: int, first: bool = False) -> tuple[Any, Any, Any, Any]:
        ep = (middle + i) % episodes
        curves = t["returns"].run(lambda: load_curves_from_store(store, *key), first=first)
        raw_eps = t["raw_returns"].run(lambda: conn.execute(_RAW_RETURNS, key).fetchall(), first=first)
        eps = t["episodes"].run(lambda: store.episode_records(*key), first=first)
        t["raw_episodes"].run(lambda: conn.execute(_RAW_EPISODES, key).fetchall(), first=first)
        ep_steps = t["episode"].run(lambda: store.steps_for_episode(*key, ep), first=first)
        t["raw_episode"].run(lambda: conn.execute(_RAW_EPISODE, (ep, *key, ep)).fetchall(), first=first)
        return curves, raw_eps, eps, ep_steps

    curves, raw_eps, eps, ep_steps = one_round(0, first=True)
    for i in range(reads):
        one_round(i)
    stored_steps = store.step_count(*key)
    conn.close()
    store.close()
    return {"timings": t, "curves": curves, "raw_eps": raw_eps, "eps": eps, "ep_steps": ep_steps,
            "stored_steps": stored_steps, "middle": middle}


def measure(variant: str, steps: int, episodes: int, batch_size: int, reads: int, tmp: Path) -> dict[str, Any]:
    """One variant: write, measure bytes, read back and check. Main thread; blocks."""
    lines = worker_lines(variant, steps, episodes)
    line_bytes = len(lines) / steps
    events = decoded_events(lines)
    del lines
    written = store_figures(tmp / f"store-{variant}.sqlite", events, batch_size)
    store: TelemetrySQLiteStore = written.pop("store")
    store.close()
    file_bytes = store.path.stat().st_size
    raw_used = raw_figures(tmp / f"raw-{variant}.sqlite", events, batch_size)
    expected = _expected(events, episodes // 2)
    del events  # the reads run in a process that holds what a reader holds, not the written run
    gc.collect()
    r = read_back(store.path, episodes, reads)
    _check(expected, r["eps"], r["ep_steps"], r["stored_steps"], steps, episodes)
    if [float(x) for x in r["curves"].column("return")] != [float(v) for _, v in r["raw_eps"]]:
        raise AssertionError("the curves' returns differ from the stored ones")
    tables = written["tables"]
    step_names = ("steps", "step_rows", "step_values", "episode_spans", "stream_keys")  # (v4: steps is a view)
    step_tables = sum(v for k, v in tables.items() if k in step_names or written["indexes"].get(k) in step_names)
    episode_tables = sum(v for k, v in tables.items() if k == "episodes" or written["indexes"].get(k) == "episodes")
    return {"variant": variant, "line_bytes": line_bytes, "used": written["used"], "file_bytes": file_bytes,
            "tables": tables, "steps_tables": step_tables, "episode_tables": episode_tables, "raw_used": raw_used,
            "timings": r["timings"], "episode_steps": len(r["ep_steps"]), "returns": len(r["raw_eps"])}


def _check(expected: dict[str, Any], eps: list[Any], ep_steps: list[Any], stored: int, steps: int,
           episodes: int) -> None:
    """Every step stored, every episode, and the read-back values equal to the written ones."""
    problems = []
    if stored != steps:
        problems.append(f"{stored} step rows stored, {steps} written")
    if len(eps) != episodes:
        problems.append(f"{len(eps)} episodes read, {episodes} written")
    for rec in eps:
        if rec.total_reward != expected["returns"][rec.episode_index]:
            problems.append(f"episode {rec.episode_index}: return {rec.total_reward}")
            break
    got = [(s.step_index, s.action, s.observation, s.reward, s.terminated, s.render_payload) for s in ep_steps]
    if got != expected["middle"]:
        problems.append(f"episode {episodes // 2}'s steps read back differ from the written ones")
    if problems:
        raise AssertionError("; ".join(problems))


def _note(t: dict[str, Timings], name: str, reads: int) -> str:
    ours, raw = t[name], t[f"raw_{name}"]
    return (f"median of {reads}; CPU {ours.cpu_ms:.3f} ms (raw {raw.cpu_ms:.3f}); "
            f"first call {ours.first_s * 1000:.2f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--episodes", type=int, default=2000, help="the read-back reads all of them")
    parser.add_argument("--variant", choices=("scalar", "grid", "both"), default="both")
    parser.add_argument("--batch-size", type=int, default=2000, help="events per write_batch (DbSink's default)")
    parser.add_argument("--reads", type=int, default=41,
                        help="read-back rounds (each read beside its raw baseline); medians are reported")
    args = parser.parse_args(argv)
    variants = ("scalar", "grid") if args.variant == "both" else (args.variant,)
    figures = []
    with tempfile.TemporaryDirectory(prefix="bench_disk_") as tmp_name:
        for variant in variants:
            r = measure(variant, args.steps, args.episodes, args.batch_size, args.reads, Path(tmp_name))
            per_step = r["used"] / args.steps
            raw_per_step = r["raw_used"] / args.steps
            print(f"{variant}: {args.steps:,} steps in {args.episodes:,} episodes ({r['line_bytes']:.0f} bytes/line "
                  f"written by the worker); sqlite {sqlite3.sqlite_version}")
            print(f"  store: {r['used']:,} bytes used = {per_step:.1f} bytes/step (file after close "
                  f"{r['file_bytes']:,} bytes); raw minimal tables {r['raw_used']:,} = {raw_per_step:.1f} bytes/step")
            if r["tables"]:
                print(f"  steps table + its indexes {r['steps_tables'] / args.steps:.1f} bytes/step; episodes table + "
                      f"indexes {r['episode_tables'] / args.episodes:.1f} bytes/episode; per table/index (dbstat): "
                      + ", ".join(f"{k} {v:,}" for k, v in sorted(r["tables"].items(), key=lambda kv: -kv[1]) if v))
            t = r["timings"]
            print(f"  read-back, a store opened on the file, median of {args.reads} rounds (wall / CPU ms; first "
                  f"call wall), each beside its raw SELECT: all values read back equal")
            for name, what in (("returns", f"{r['returns']:,} episode returns (load_curves)"),
                               ("episodes", "every episode record (episode_records)"),
                               ("episode", f"one episode's {r['episode_steps']} steps (steps_for_episode)")):
                ours, raw = t[name], t[f"raw_{name}"]
                print(f"    {what}: {ours.wall_ms:.3f} / {ours.cpu_ms:.3f} ms (first {ours.first_s * 1000:.2f}); raw "
                      f"{raw.wall_ms:.3f} / {raw.cpu_ms:.3f} ms; ratio wall {ours.wall_ms / raw.wall_ms:.2f}, "
                      f"CPU {ours.cpu_ms / raw.cpu_ms:.2f}")
            minimal = "minimal raw sqlite3 tables, same values"
            figures += [
                figure(f"disk.{variant}.bytes_per_step", f"bytes/step on disk, {variant} steps", per_step, "bytes/step",
                       "lower", baseline=raw_per_step, baseline_label=minimal,
                       target=target("<=", TARGET_BYTES_PER_STEP, source="issue 13 #4"),
                       note="page_count*page_size delta after checkpoint"),
                figure(f"disk.{variant}.returns_ms", f"read back {r['returns']:,} episode returns, {variant}",
                       t["returns"].wall_ms, "ms", "lower", baseline=t["raw_returns"].wall_ms,
                       baseline_label="raw SELECT of the same rows",
                       target=target("<=", TARGET_RETURNS_MS, source="issue 13 #4"),
                       note=_note(t, "returns", args.reads)),
                figure(f"disk.{variant}.episodes_ms", f"read back {r['returns']:,} episode records, {variant}",
                       t["episodes"].wall_ms, "ms", "lower", baseline=t["raw_episodes"].wall_ms,
                       baseline_label="raw SELECT * of the same rows", note=_note(t, "episodes", args.reads)),
                figure(f"disk.{variant}.episode_ms", f"read back one episode's {r['episode_steps']} steps, {variant}",
                       t["episode"].wall_ms, "ms", "lower", baseline=t["raw_episode"].wall_ms,
                       baseline_label="raw SELECT of the same rows",
                       target=target("<=", TARGET_EPISODE_MS, source="issue 13 #4"),
                       note=_note(t, "episode", args.reads)),
            ]
            if r["tables"]:
                figures.append(figure(f"disk.{variant}.steps_table_bytes_per_step",
                                      f"steps table + its indexes (dbstat), {variant}",
                                      r["steps_tables"] / args.steps, "bytes/step", "lower"))
    print_bench_json("disk", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
