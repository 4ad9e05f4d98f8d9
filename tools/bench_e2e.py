#!/usr/bin/env python3
"""End-to-end benchmark: worker pipe -> TelemetryProxy -> RunBus -> DbSink -> committed SQLite rows.

A worker subprocess writes pre-built canonical v1 lines (docs/telemetry-jsonl.md) to its stdout as
fast as the pipe takes them: run_started, FrozenLake 4x4 steps (int action/observation, an ``info``
dict and a grid ``render_payload``; ``--payload scalar`` drops both), an ``episode`` record after
every ``--episode-length`` steps, a heartbeat every 20,000 steps and run_completed. The lines are
built with the workers' own encoder before the clock starts and handed to the worker in a file.

The GUI side is wired exactly as ``gym_gui.run`` wires it: one RunBus, a DbSink (real QThread,
product defaults) on a TelemetrySQLiteStore (WAL, synchronous=NORMAL), and a TelemetryProxy that
spawns the worker, reads its pipe and waits on ``sink.ingest_gate``. A live subscriber (bounded
STEP_APPENDED and EPISODE_FINALIZED subscriptions, drained every ``--live-poll-ms`` by a thread,
like the GUI's poll timer) is attached too. The process uses the product's GC setting
(``gym_gui.gc_tuning.tune_gc``).

Clock: from spawning the worker until ``sink.flush()`` returns, i.e. every row is committed. Before
reporting, the run is checked: every step stored exactly once (row count == distinct seq_ids ==
steps written), every episode stored, the run row completed, no line rejected, and the live
subscriber's delivered + dropped + queued == steps published.

Ceiling, measured in the same run: the step rows just committed are read back and inserted into
a fresh file with plain ``executemany`` (same row tuples, same schema, same PRAGMAs, same batch
size, one transaction per batch) -- SQLite alone, no parsing, no JSON, no bus.

Breakdown (also in the same run, unless ``--no-breakdown``): the proxy alone (same worker, pipe
and live subscriber; the durable subscriptions drained and dropped by a thread) and the sink alone
(the same events, decoded off the clock, published from the main thread into a fresh bus + DbSink
until flushed). Proxy and sink share one GIL and overlap little, see docs/performance.md.

``--envelope gym_gui`` writes the same run in the existing gym_gui workers' envelopes instead
(docs/telemetry-jsonl.md section 7: lifecycle ``{"event": ...}`` records, steps as ``{"type": "step",
"episode", "step", "action_json", "observation_json", ..., "ts_unix_ns"}`` with the render payload as
a JSON string, episodes with ``episode_return``/``num_steps``/``metadata_json``, no ``seq``);
``--envelope both`` runs both in every round, alternating, and reports gym_gui / canonical.

Usage: .venv/bin/python tools/bench_e2e.py [--steps N] [--payload grid|scalar] [--envelope E] [--repeat R] [--check]
Exits 1 with --check when the median end-to-end rate is below 100,000 steps/s.
(Internal: ``--emit FILE`` is the worker mode: copy FILE to stdout and exit.)
"""

from __future__ import annotations

import sys


def _emit(path: str) -> int:
    """Worker mode: copy the pre-built lines to stdout as fast as the pipe takes them."""
    from gym_gui.full_write import write_all  # light: typing only

    out = sys.stdout.buffer  # raw under PYTHONUNBUFFERED=1: a signal can make it take part of a block
    with open(path, "rb") as src:
        while True:
            block = src.read(1 << 20)
            if not block:
                break
            write_all(out, block)
    out.flush()
    return 0


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--emit":
    sys.exit(_emit(sys.argv[2]))  # before the heavy imports: the worker starts in ~20 ms

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sqlite3  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qtpy.QtCore import QCoreApplication  # noqa: E402

from gym_gui.gc_tuning import tune_gc  # noqa: E402
from gym_gui.ingest.proxy import TelemetryProxy  # noqa: E402
from gym_gui.qt.db_sink_thread import DbSink  # noqa: E402
from gym_gui.telemetry.events import TelemetryEvent, Topic, iso_from_unix_s  # noqa: E402
from gym_gui.telemetry.run_bus import RunBus, Waker  # noqa: E402
from gym_gui.telemetry.sink_core import DURABLE_TOPICS  # noqa: E402
from gym_gui.telemetry.sqlite_schema import MIGRATIONS, configure_connection  # noqa: E402
from gym_gui.telemetry.tables import STEPS  # noqa: E402
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore  # noqa: E402
from gym_gui.workers.jsonl_emitter import dumps_line  # noqa: E402
from bench_figures import figure, print_bench_json, target  # noqa: E402

TARGET_STEPS_PER_S = 100_000
TARGET_ENVELOPE_RATIO = 0.9  # issue 13 #3: the existing workers' envelope at >= 0.9x the canonical rate
ENVELOPES = ("canonical", "gym_gui")
AGENT = "agent-1"
CELLS = ["SFFF", "FHFH", "FFFH", "HFFG"]
HEARTBEAT_EVERY = 20_000


class Workload:
    """The lines one worker run writes, and what they must produce."""

    def __init__(self, path: Path, run_id: str, steps: int, episodes: int, lines: int, size: int) -> None:
        self.path = path
        self.run_id = run_id
        self.steps = steps
        self.episodes = episodes
        self.lines = lines
        self.bytes = size


def _gym_gui_record(kind: str, fields: dict[str, Any], run_id: str, ts_s: float) -> dict[str, Any]:
    """The record the existing gym_gui workers write for a canonical ``kind`` + ``fields`` (no seq)."""
    if kind == "step":
        record: dict[str, Any] = {
            "type": "step", "run_id": run_id, "agent_id": AGENT, "episode": fields["episode_index"],
            "step": fields["step_index"], "action_json": json.dumps(fields["action"]),
            "observation_json": json.dumps(fields["observation"]), "reward": fields["reward"],
            "terminated": fields["terminated"], "truncated": fields["truncated"],
        }
        if "info" in fields:
            record["info"] = fields["info"]
        if "render_payload" in fields:
            record["render_payload"] = json.dumps(fields["render_payload"])
        record["ts_unix_ns"] = int(ts_s * 1e9)
        return record
    if kind == "episode":
        index = fields["episode_index"]
        return {"type": "episode", "run_id": run_id, "agent_id": AGENT, "episode_id": f"{run_id}-ep{index:06d}",
                "episode_return": fields["total_reward"], "num_steps": fields["length"],
                "terminated": fields["terminated"], "truncated": fields["truncated"],
                "metadata_json": json.dumps({"episode_index": index, **fields["metadata"]})}
    payload = {k: v for k, v in fields.items() if k != "summary"}
    if kind == "run_completed":
        payload = dict(fields["summary"])
    elif kind == "heartbeat":
        payload = dict(fields["stats"])
    return {"event": kind, "run_id": run_id, "timestamp": ts_s, "payload": payload}


def build_workload(path: Path, run_id: str, steps: int, payload: str, episode_length: int,
                   envelope: str = "canonical") -> Workload:
    """Write the worker's lines to ``path``, encoded like our workers encode them: canonical v1, or
    (``envelope="gym_gui"``) the same records in the existing gym_gui workers' envelopes."""
    seq = 0
    lines = 0
    episodes = 0
    t0 = 1.8e9

    def line(kind: str, fields: dict[str, Any]) -> bytes:
        nonlocal seq, lines
        seq += 1
        lines += 1
        if envelope == "gym_gui":
            return dumps_line(_gym_gui_record(kind, fields, run_id, t0 + seq * 1e-5))
        record = {"v": 1, "kind": kind, "run_id": run_id, "agent_id": AGENT, "seq": seq,
                  "ts": iso_from_unix_s(t0 + seq * 1e-5)}
        record.update(fields)
        return dumps_line(record)

    with open(path, "wb") as out:
        out.write(line("run_started", {
            "env_id": "FrozenLake-v1", "config": {"episodes": steps // max(1, episode_length), "seed": 0},
            "worker": {"name": "tools.bench_e2e", "version": "1"}, "render_kind": payload,
            "env_family": "FrozenLake",
        }))
        episode = 0
        step_in_episode = 0
        ep_reward = 0.0
        position = 0
        for i in range(steps):
            action = (i * 7 + episode) % 4
            position = (position + (1, 4, 3, 5)[action]) % 16
            last = episode_length > 0 and step_in_episode == episode_length - 1
            reward = 1.0 if last and episode % 3 == 0 else 0.0
            fields: dict[str, Any] = {
                "episode_index": episode, "step_index": step_in_episode, "action": action,
                "observation": position, "reward": reward, "terminated": last, "truncated": False,
            }
            if payload == "grid":
                fields["info"] = {"prob": 1.0}
                fields["render_payload"] = {"kind": "grid", "env_family": "FrozenLake", "rows": 4, "cols": 4,
                                            "cells": CELLS, "agent": list(divmod(position, 4))}
            out.write(line("step", fields))
            ep_reward += reward
            step_in_episode += 1
            if last:
                out.write(line("episode", {
                    "episode_index": episode, "total_reward": ep_reward, "length": step_in_episode,
                    "terminated": True, "truncated": False, "outcome": "success" if ep_reward > 0 else "failure",
                    "metadata": {"epsilon": 0.05, "episode_seed": episode},
                }))
                episodes += 1
                episode += 1
                step_in_episode = 0
                ep_reward = 0.0
                position = 0
            if (i + 1) % HEARTBEAT_EVERY == 0:
                out.write(line("heartbeat", {"interval_s": 1.0, "stats": {"steps_done": i + 1}}))
        out.write(line("run_completed", {"outcome": "completed", "summary": {"steps": steps, "episodes": episodes}}))
    return Workload(path, run_id, steps, episodes, lines, path.stat().st_size)


class LiveSubscriber:
    """A GUI-like live consumer: bounded subscriptions drained by a thread every ``poll_s``."""

    def __init__(self, bus: RunBus, poll_s: float, maxlen: int) -> None:
        self.steps = bus.subscribe(Topic.STEP_APPENDED, "bench-live", maxlen=maxlen)
        self.episodes = bus.subscribe(Topic.EPISODE_FINALIZED, "bench-live", maxlen=maxlen)
        self.delivered = 0
        self.polls = 0
        self._poll_s = poll_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-live", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._poll_s):
            self.polls += 1
            batch = self.steps.drain()
            self.delivered += len(batch)
            if batch:
                batch[-1].payload.get("render_payload")  # the GUI draws only the newest frame per tick
            self.episodes.drain()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.delivered += len(self.steps.drain())


def run_e2e(work: Workload, db: Path, live_poll_s: float, live_maxlen: int) -> dict[str, Any]:
    """One end-to-end run into ``db``; returns figures after checking every row. Main thread."""
    store = TelemetrySQLiteStore(db)
    bus = RunBus()
    sink = DbSink(store, bus)
    live = LiveSubscriber(bus, live_poll_s, live_maxlen)
    proxy = TelemetryProxy(bus, default_agent_id=AGENT, run_id=work.run_id, seq_floor=store.max_seq_id,
                           gate=sink.ingest_gate, name="bench-worker")
    sink.start()
    live.start()
    children0 = _cpu_s(resource.RUSAGE_CHILDREN)
    try:
        self0 = _cpu_s(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        proxy.spawn([sys.executable, str(Path(__file__).resolve()), "--emit", str(work.path)])
        if not proxy.wait(300):
            raise RuntimeError("the worker did not finish within 300 s")
        t_read = time.perf_counter()
        if not sink.flush(300):
            raise RuntimeError("the sink did not flush within 300 s")
        t1 = time.perf_counter()
        self_cpu_s = _cpu_s(resource.RUSAGE_SELF) - self0
    finally:
        proxy.stop(5.0)  # the worker and the ingest child are reaped: their CPU time is counted below
        children_cpu_s = _cpu_s(resource.RUSAGE_CHILDREN) - children0
        live.stop()
        sink_stats = sink.stats()
        stopped = sink.stop(30)
    stats = proxy.stats()
    check = _verify(store, work, stats, sink_stats, live, stopped)
    store.close()
    elapsed = t1 - t0
    return {
        "elapsed_s": elapsed,
        "steps_per_s": work.steps / elapsed,
        "lines_per_s": work.lines / elapsed,
        "read_s": t_read - t0,
        "live_delivered": live.delivered,
        "live_dropped": live.steps.dropped,
        "gate_paused_s": sink_stats["gate_paused_s"],
        "batches": sink_stats["batches"],
        "batch_size": sink.core.batch_size,
        "self_cpu_us": self_cpu_s / work.steps * 1e6,
        "children_cpu_us": children_cpu_s / work.steps * 1e6,
        **check,
    }


def _cpu_s(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


class _Discard:
    """Drains the durable topics like the sink would and drops the events (the proxy-alone run)."""

    def __init__(self, bus: RunBus) -> None:
        self._waker = Waker()
        self._subs = [bus.subscribe(t, "bench-discard", maxlen=None, waker=self._waker) for t in DURABLE_TOPICS]
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-discard", daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._waker.wait(0.05)
            self.count += sum(len(sub.drain()) for sub in self._subs)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._waker.notify()
        self._thread.join()
        self.count += sum(len(sub.drain()) for sub in self._subs)


def run_proxy_alone(work: Workload, live_poll_s: float, live_maxlen: int) -> float:
    """Spawn -> every line published, with the durable topics drained and dropped (no sink): steps/s."""
    bus = RunBus()
    discard = _Discard(bus)
    live = LiveSubscriber(bus, live_poll_s, live_maxlen)
    proxy = TelemetryProxy(bus, default_agent_id=AGENT, run_id=work.run_id, name="bench-worker")
    discard.start()
    live.start()
    t0 = time.perf_counter()
    proxy.spawn([sys.executable, str(Path(__file__).resolve()), "--emit", str(work.path)])
    if not proxy.wait(300):
        raise RuntimeError("the worker did not finish within 300 s")
    elapsed = time.perf_counter() - t0
    proxy.stop(5.0)
    live.stop()
    discard.stop()
    if discard.count != work.lines:
        raise AssertionError(f"proxy alone published {discard.count} of {work.lines} events")
    return work.steps / elapsed


def decoded_events(work: Workload) -> list[TelemetryEvent]:
    """The events the proxy makes of the lines, in seq order (built off the clock, for the sink-alone run)."""
    bus = RunBus()
    subs = [bus.subscribe(t, "bench-record", maxlen=None) for t in DURABLE_TOPICS]
    proxy = TelemetryProxy(bus, default_agent_id=AGENT, run_id=work.run_id, name="bench-decode")
    with open(work.path, "rb") as stream:
        proxy.attach(stream)
        proxy.wait(300)
    return sorted((e for sub in subs for e in sub.drain()), key=lambda e: e.seq_id)


def run_sink_alone(events: list[TelemetryEvent], steps: int, db: Path) -> float:
    """Publish the decoded events from this thread into a bus + DbSink until flushed: steps/s."""
    store = TelemetrySQLiteStore(db)
    bus = RunBus()
    sink = DbSink(store, bus)
    sink.start()
    publish = bus.publish
    t0 = time.perf_counter()
    for evt in events:
        publish(evt)
    if not sink.flush(300):
        raise RuntimeError("the sink did not flush within 300 s")
    elapsed = time.perf_counter() - t0
    stats = sink.stats()
    sink.stop(30)
    store.close()
    if stats["persisted"] != len(events) or stats["lost"]:
        raise AssertionError(f"sink alone: {stats}")
    return steps / elapsed


def _verify(store: TelemetrySQLiteStore, work: Workload, stats: dict[str, Any], sink_stats: dict[str, Any],
            live: LiveSubscriber, stopped: bool) -> dict[str, Any]:
    """Every step exactly once, every episode, run completed, nothing rejected or lost; raises otherwise."""
    problems = []
    conn = sqlite3.connect(str(store.path))
    count, distinct, lo, hi = conn.execute(
        "SELECT COUNT(*), COUNT(DISTINCT seq_id), MIN(seq_id), MAX(seq_id) FROM steps WHERE run_id = ?",
        (work.run_id,)).fetchone()
    episodes = conn.execute("SELECT COUNT(*) FROM episodes WHERE run_id = ?", (work.run_id,)).fetchone()[0]
    status, outcome = conn.execute("SELECT status, outcome FROM runs WHERE run_id = ?", (work.run_id,)).fetchone()
    conn.close()
    if count != work.steps or distinct != work.steps:
        problems.append(f"steps stored {count} (distinct seq_id {distinct}), expected {work.steps}")
    if episodes != work.episodes:
        problems.append(f"episodes stored {episodes}, expected {work.episodes}")
    if (status, outcome) != ("completed", "completed"):
        problems.append(f"run row {status}/{outcome}")
    if stats["lines_read"] != work.lines or stats["rejected_total"] or stats["seq_reassigned"]:
        problems.append(f"proxy: {stats}")
    if sink_stats["persisted"] != work.lines or sink_stats["duplicates"] or sink_stats["lost"] or not stopped:
        problems.append(f"sink: {sink_stats}")
    queued = len(live.steps)
    if live.delivered + live.steps.dropped + queued != work.steps:
        problems.append(f"live: delivered {live.delivered} + dropped {live.steps.dropped} + queued {queued} "
                        f"!= {work.steps}")
    if problems:
        raise AssertionError("end-to-end run is wrong: " + "; ".join(problems))
    return {"stored_steps": count, "stored_episodes": episodes, "seq_range": (lo, hi)}


def run_raw(source_db: Path, db: Path, run_id: str, batch_size: int) -> float:
    """executemany of the committed step rows into a fresh file (same PRAGMAs, batch size); rows/s."""
    src = sqlite3.connect(str(source_db))
    columns = ", ".join(STEPS.insert_names())  # the stored columns of the version 3 table (v4: a view)
    rows = src.execute(f"SELECT {columns} FROM steps WHERE run_id = ? ORDER BY seq_id", (run_id,)).fetchall()
    src.close()
    insert = f"INSERT OR IGNORE INTO steps ({columns}) VALUES ({', '.join('?' * len(rows[0]))})"
    conn = sqlite3.connect(str(db), isolation_level=None)
    configure_connection(conn, busy_timeout_s=1.0)
    for statement in (s for version in MIGRATIONS[:3] for s in version):  # the version 3 table: the same
        conn.execute(statement)  # baseline as before schema v4
    t0 = time.perf_counter()
    for i in range(0, len(rows), batch_size):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(insert, rows[i:i + batch_size])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    stored = conn.execute("SELECT COUNT(*) FROM steps").fetchone()[0]
    conn.close()
    if stored != len(rows):
        raise AssertionError(f"raw: stored {stored} of {len(rows)} rows")
    return len(rows) / elapsed


#: DbSink is a QThread: the process keeps one Qt application object while the benchmark runs.
_QT_APP: QCoreApplication | None = None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--payload", choices=("grid", "scalar"), default="grid",
                        help="grid: info dict and 4x4 grid render payload; scalar: neither")
    parser.add_argument("--envelope", choices=(*ENVELOPES, "both"), default="canonical",
                        help="canonical v1 lines, the existing gym_gui workers' envelopes, or both alternating")
    parser.add_argument("--episode-length", type=int, default=100,
                        help="steps per episode (an episode record after each); 0 = no episode records")
    parser.add_argument("--repeat", type=int, default=3, help="alternating rounds; medians are reported")
    parser.add_argument("--live-poll-ms", type=float, default=16.0, help="live subscriber drain interval")
    parser.add_argument("--live-maxlen", type=int, default=4096, help="live subscription capacity")
    parser.add_argument("--no-breakdown", action="store_true", help="skip the proxy-alone and sink-alone runs")
    parser.add_argument("--check", action="store_true", help=f"exit 1 below {TARGET_STEPS_PER_S:,} steps/s")
    args = parser.parse_args()
    thresholds = tune_gc()  # what gym_gui.run does at start-up
    # The live subscriber's drops are counted and checked below; their per-drop warnings are noise here.
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("gym_gui.telemetry.run_bus").setLevel(logging.ERROR)
    global _QT_APP
    _QT_APP = QCoreApplication.instance() or QCoreApplication([])
    envelopes = ENVELOPES if args.envelope == "both" else (args.envelope,)
    e2e: dict[str, list[dict[str, Any]]] = {name: [] for name in envelopes}
    raw: list[float] = []
    proxy_alone: list[float] = []
    sink_alone: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench_e2e_") as tmp_name:
        tmp = Path(tmp_name)
        t_build = time.perf_counter()
        works = {name: build_workload(tmp / f"lines-{name}.jsonl", "bench-e2e", args.steps, args.payload,
                                      args.episode_length, name) for name in envelopes}
        t_build = time.perf_counter() - t_build
        work = works[envelopes[0]]
        poll_s = args.live_poll_ms / 1000
        for r in range(args.repeat):  # alternate, so every side sees the same machine state
            for name in envelopes:
                e2e[name].append(run_e2e(works[name], tmp / f"e2e-{name}-{r}.sqlite", poll_s, args.live_maxlen))
            batch_size = e2e[envelopes[0]][-1]["batch_size"]  # the product's (DbSink default)
            raw.append(run_raw(tmp / f"e2e-{envelopes[0]}-{r}.sqlite", tmp / f"raw-{r}.sqlite", work.run_id,
                               batch_size))
            if not args.no_breakdown:
                proxy_alone.append(run_proxy_alone(work, poll_s, args.live_maxlen))
                events = decoded_events(work)
                sink_alone.append(run_sink_alone(events, work.steps, tmp / f"sink-{r}.sqlite"))
                del events
    rates = {name: statistics.median(x["steps_per_s"] for x in e2e[name]) for name in envelopes}
    raw_rate = statistics.median(raw)
    print(f"steps={work.steps:,} lines={work.lines:,} payload={args.payload} "
          f"episode_length={args.episode_length} batch_size={batch_size} repeat={args.repeat} "
          f"(lines built in {t_build:.1f} s)")
    print(f"python={sys.version.split()[0]} sqlite={sqlite3.sqlite_version} cpus={os.cpu_count()} gc={thresholds}")
    for name in envelopes:
        w = works[name]
        print(f"envelope {name}: {w.bytes / w.lines:.0f} bytes/line")
        for r, x in enumerate(e2e[name]):
            print(f"  round {r}: {x['steps_per_s']:>9,.0f} steps/s  ({x['elapsed_s']:.2f} s; pipe drained at "
                  f"{x['read_s']:.2f} s; proxy paused by the gate {x['gate_paused_s']:.2f} s; {x['batches']} batches; "
                  f"live delivered {x['live_delivered']:,}, dropped {x['live_dropped']:,})"
                  + (f"; raw {raw[r]:>9,.0f} rows/s" if name == envelopes[0] else ""))
            print(f"           CPU per step: this process {x['self_cpu_us']:.1f} us (reader, bus, sink, live "
                  f"subscriber), worker + ingest child {x['children_cpu_us']:.1f} us")
    print(f"verified each round: {work.steps:,} step rows stored exactly once (count == distinct seq_ids), "
          f"{work.episodes:,} episodes, run completed, 0 lines rejected, live delivered + dropped == published")
    for name in envelopes:
        rate = rates[name]
        lines = statistics.median(x["lines_per_s"] for x in e2e[name])
        print(f"end to end (spawn -> committed), {name + ':':<10} {rate:>10,.0f} steps/s  ({lines:,.0f} lines/s, "
              f"{1e6 / rate:.1f} us/step)")
    rate = rates[envelopes[0]]
    print(f"raw sqlite executemany ceiling:    {raw_rate:>10,.0f} rows/s   ({1e6 / raw_rate:.1f} us/row)")
    print(f"ratio end-to-end / raw:            {rate / raw_rate:10.2f}")
    if len(envelopes) == 2:
        print(f"ratio gym_gui / canonical envelope: {rates['gym_gui'] / rates['canonical']:9.2f}  "
              f"(target >= {TARGET_ENVELOPE_RATIO})")
    if proxy_alone:
        p, k = statistics.median(proxy_alone), statistics.median(sink_alone)
        print(f"breakdown, each half alone: proxy (pipe -> bus) {p:,.0f} steps/s ({1e6 / p:.1f} us/step); "
              f"sink (bus -> committed) {k:,.0f} steps/s ({1e6 / k:.1f} us/step)")
    ok = rate >= TARGET_STEPS_PER_S
    print(f"target >= {TARGET_STEPS_PER_S:,} steps/s end to end: {'OK' if ok else 'BELOW TARGET'}")
    print_bench_json("e2e", _figures(args.payload, envelopes, rates, raw_rate, proxy_alone, sink_alone))
    return 1 if args.check and not ok else 0


def _figures(payload: str, envelopes: tuple[str, ...], rates: dict[str, float], raw_rate: float,
             proxy_alone: list[float], sink_alone: list[float]) -> list[dict[str, Any]]:
    """The BENCH_JSON figures (tools/bench_figures.py) of one invocation."""
    out = [figure(f"e2e.{payload}.{envelopes[0]}.steps_per_s", f"end to end, {envelopes[0]} lines, {payload} steps",
                  rates[envelopes[0]], "steps/s", "higher", baseline=raw_rate,
                  baseline_label="raw sqlite3 executemany of the same rows",
                  target=target(">=", TARGET_STEPS_PER_S, source="BRIEF 9"), note="rows verified")]
    if len(envelopes) == 2:
        out.append(figure(f"e2e.{payload}.gym_gui.steps_per_s", f"end to end, gym_gui envelope, {payload} steps",
                          rates["gym_gui"], "steps/s", "higher", baseline=rates["canonical"],
                          baseline_label="canonical lines, same run",
                          target=target(">=", TARGET_ENVELOPE_RATIO, on="ratio", source="issue 13 #3"),
                          note="rows verified"))
    if proxy_alone:
        out.append(figure(f"e2e.{payload}.proxy_alone.steps_per_s", f"proxy alone (pipe -> bus), {payload}",
                          statistics.median(proxy_alone), "steps/s", "higher"))
        out.append(figure(f"e2e.{payload}.sink_alone.steps_per_s", f"sink alone (bus -> committed), {payload}",
                          statistics.median(sink_alone), "steps/s", "higher"))
    return out


if __name__ == "__main__":
    sys.exit(main())
