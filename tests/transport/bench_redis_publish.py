"""Publish-rate figures of the Redis transport's worker side, beside redis-py in the same run (not collected by pytest).

    .venv/bin/python tests/transport/bench_redis_publish.py [--events 100000] [--rounds 3] [--payload grid|scalar]

Starts a private redis-server on loopback (no persistence, no retention) and measures, per round,
alternating, on the same ToyText step events (StepPayloads, as the proxy publishes them):
- ``redis-py``: a redis-py pipeline of the same XADDs (fields already made), 512 per execute, in
  this process: the in-run baseline, what a plain client gets from this redis-server now;
- ``publisher``: ``RedisPublisher.publish`` in batches of 512, with the bridge's durable seq_id
  state as its guard (entries/s, and this process's CPU time per entry);
- each of ``publisher``, ``pump`` and ``bridge`` also as ``.v2``: 64 events of a stream per entry
  (wire format 2, ``entry_events`` / ``--entry-events``; rates in events/s);
- ``pump``: the bridge's publishing path in-process: a producer thread publishes the events on a
  RunBus (waiting on the pump's gate, as the proxy does), a ``RedisPump`` sends them;
- ``bridge``: ``python -m gym_gui.transport.redis_bridge`` running a worker that writes pre-built
  canonical lines (``tools/bench_e2e.py --emit``, the steps of ``tools/bench_e2e.py``), from spawn to
  exit, process starts included (entries/s = entries in Redis / wall time; and the CPU time per
  entry of the bridge, its ingest child and the worker together), and its publishing rate: events
  over the time from the first entry in Redis to the last (XLEN seen every 5 ms), the three
  interpreters' starts and the bridge's exit not counted.
Also the redis-server's own CPU time per entry, from ``INFO cpu``. Prints one line per round, the
medians, and the BENCH_JSON line (tools/bench_figures.py). The bridges' seq_id state goes to a
temporary ``XDG_STATE_HOME``, never the home directory. On a shared machine read the ratios.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tools"))

from bench_e2e import AGENT, build_workload  # noqa: E402
from bench_figures import figure, print_bench_json, target  # noqa: E402
from event_factory import EventFactory  # noqa: E402
from gym_gui.gc_tuning import tune_gc  # noqa: E402
from gym_gui.telemetry.events import TelemetryEvent  # noqa: E402
from gym_gui.telemetry.run_bus import RunBus  # noqa: E402
from gym_gui.telemetry.step_payload import compact_step  # noqa: E402
from gym_gui.transport.redis_client import make_client  # noqa: E402
from gym_gui.transport.redis_entries import encode_fields  # noqa: E402
from gym_gui.transport.redis_keys import entry_id, stream_key  # noqa: E402
from gym_gui.transport.redis_publisher import RedisPublisher  # noqa: E402
from gym_gui.transport.redis_pump import RedisPump  # noqa: E402
from gym_gui.transport.redis_seq_state import SeqState  # noqa: E402
from redis_helpers import RedisServer, bridge_argv, child_env, redis_server_binary  # noqa: E402

BATCH = 512
#: Events per entry of the ``.v2`` cases (wire format 2, ``--entry-events``).
ENTRY_EVENTS = 64


def make_events(run_id: str, events: int, payload: str) -> list[TelemetryEvent]:
    """ToyText steps (10 a episode) as the proxy publishes them: StepPayloads."""
    f = EventFactory(run_id, "a1", first_seq=1)
    out = []
    for i in range(events):
        evt = f.step(i // 10, i % 10, **({"render_payload": None, "info": {}} if payload == "scalar" else {}))
        out.append(TelemetryEvent(evt.topic, evt.run_id, evt.agent_id, evt.seq_id, evt.ts_iso,
                                  compact_step(evt.payload) or evt.payload))
    return out


def redis_cpu_s(server: RedisServer) -> float:
    with server.client() as c:
        info = c.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def redis_py_rate(server: RedisServer, batch: list[TelemetryEvent]) -> tuple[float, float]:
    """(entries/s, CPU us per entry of this process) of a redis-py pipeline of the same XADDs."""
    client = make_client(server.url)
    key = stream_key(batch[0].run_id, batch[0].agent_id)
    made = [(entry_id(evt.seq_id), encode_fields(evt)) for evt in batch]
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(made), BATCH):
        pipe = client.pipeline(transaction=False)
        for id_, fields in made[i:i + BATCH]:
            pipe.xadd(key, fields, id=id_)  # type: ignore[arg-type]
        pipe.execute()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert client.xlen(key) == len(batch)
    client.close()
    return len(batch) / elapsed, cpu / len(batch) * 1e6


def publisher_rate(server: RedisServer, batch: list[TelemetryEvent], state_dir: Path,
                   entry_events: int = 1) -> tuple[float, float]:
    """(events/s, CPU us per event of this process)."""
    state = SeqState(state_dir)
    assert state.prepare() is None
    pub = RedisPublisher(make_client(server.url), retention=None, seq_guard=state, entry_events=entry_events)
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(batch), BATCH):
        pub.publish(batch[i:i + BATCH])
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert pub.added == len(batch), pub.stats()
    assert state.close()
    pub.client.close()
    return len(batch) / elapsed, cpu / len(batch) * 1e6


def pump_rate(server: RedisServer, batch: list[TelemetryEvent], entry_events: int = 1) -> tuple[float, float]:
    """(events/s, CPU us per event of this process): producer thread -> RunBus -> RedisPump -> Redis."""
    bus = RunBus()
    client = make_client(server.url)
    pump = RedisPump(bus, RedisPublisher(client, retention=None, entry_events=entry_events), batch_size=BATCH)

    def produce() -> None:
        wait, publish = pump.gate.wait_until_open, bus.publish
        for evt in batch:
            wait(None)
            publish(evt)

    started, cpu = time.perf_counter(), time.process_time()
    producer = threading.Thread(target=produce, name="producer")
    producer.start()
    while producer.is_alive():
        pump.step(0.05)
    producer.join()
    assert pump.finish(60.0)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert pump.publisher.added == len(batch), pump.stats()
    client.close()
    return len(batch) / elapsed, cpu / len(batch) * 1e6


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


#: How often the bridge case looks at the stream's length (XLEN) while the bridge runs.
WATCH_INTERVAL_S = 0.005


def bridge_rate(server: RedisServer, steps: int, run_id: str, payload: str, tmp: Path,
                entry_events: int = 1) -> tuple[float, float, float]:
    """(events/s spawn to exit, CPU us per event of the bridge, its ingest child and the worker,
    events/s publishing: from the first entry in Redis to the last, seen by XLEN every
    ``WATCH_INTERVAL_S``)."""
    work = build_workload(tmp / f"{run_id}.jsonl", run_id, steps, payload, 10)
    worker = [sys.executable, str(ROOT / "tools" / "bench_e2e.py"), "--emit", str(work.path)]
    argv = bridge_argv(server.url, "--run-id", run_id, "--retention", "0", "--entry-events", str(entry_events),
                       "--") + worker
    key = stream_key(run_id, AGENT)
    first = last = None
    length = 0
    pause = threading.Event()
    started, cpu = time.perf_counter(), _children_cpu_s()
    proc = subprocess.Popen(argv, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    with server.client() as c:
        while proc.poll() is None:
            now_length = c.xlen(key)
            now = time.perf_counter()
            if now_length > length:
                first = now if first is None else first
                length, last = now_length, now
            pause.wait(WATCH_INTERVAL_S)
        out, err = proc.communicate(timeout=900)
        elapsed, cpu = time.perf_counter() - started, _children_cpu_s() - cpu
        if c.xlen(key) > length:  # the last entries came after the last look: the bridge's exit bounds them
            first = started if first is None else first
            last = started + elapsed
    assert proc.returncode == 0, out + err
    summary = out.strip().splitlines()[-1]
    added = int(summary.split(" added=")[1].split()[0])  # events (an entry of format 2 holds several)
    assert added >= steps and " duplicates=0 " in summary, summary
    publishing = added / (last - first) if first is not None and last is not None and last > first else 0.0
    return added / elapsed, cpu / added * 1e6, publishing


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--payload", choices=("grid", "scalar"), default="grid")
    args = parser.parse_args()
    tune_gc()  # as the bridge does
    names = ("redis-py", "publisher", "publisher.v2", "pump", "pump.v2", "bridge", "bridge.v2")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        os.environ["XDG_STATE_HOME"] = str(tmp / "xdg-state")  # the bridges' seq_id state (child_env)
        server = RedisServer(redis_server_binary(), tmp / "redis")
        server.start()
        figures: dict[str, list[tuple[float, float, float]]] = {name: [] for name in names}
        publishing_rates: dict[str, list[float]] = {"bridge": [], "bridge.v2": []}
        try:
            for r in range(args.rounds):
                for name in names:
                    with server.client() as c:
                        c.flushall()
                    before = redis_cpu_s(server)
                    packed = ENTRY_EVENTS if name.endswith(".v2") else 1
                    if name.startswith("bridge"):
                        rate, cpu_us, publishing = bridge_rate(server, args.events, f"{name}-{r}", args.payload, tmp,
                                                               packed)
                        publishing_rates[name].append(publishing)
                        n = args.events
                    else:
                        batch = make_events(f"{name}-{r}", args.events, args.payload)
                        n = len(batch)
                        if name == "redis-py":
                            rate, cpu_us = redis_py_rate(server, batch)
                        elif name.startswith("publisher"):
                            rate, cpu_us = publisher_rate(server, batch, tmp / "state", packed)
                        else:
                            rate, cpu_us = pump_rate(server, batch, packed)
                    figures[name].append((rate, cpu_us, (redis_cpu_s(server) - before) / n * 1e6))
                print(f"round {r}: " + ", ".join(f"{name} {v[-1][0]:,.0f} entries/s ({v[-1][1]:.1f} us CPU/entry, "
                                                 f"redis-server {v[-1][2]:.1f})" for name, v in figures.items())
                      + "; publishing (first entry to last): " + ", ".join(
                          f"{name} {v[-1]:,.0f} events/s" for name, v in publishing_rates.items()), flush=True)
        finally:
            server.stop()
    medians: dict[str, float] = {}
    for name, values in figures.items():
        medians[name] = statistics.median(v[0] for v in values)
        print(f"{name}: median {medians[name]:,.0f} entries/s, {statistics.median(v[1] for v in values):.1f} us "
              f"CPU/entry, redis-server {statistics.median(v[2] for v in values):.1f} us CPU/entry, "
              f"over {len(values)} rounds (x{medians[name] / medians['redis-py']:.2f} redis-py)")
    publishing = {name: statistics.median(v) for name, v in publishing_rates.items()}
    print(f"bridge publishing, first entry in Redis to the last: median {publishing['bridge']:,.0f} events/s "
          f"(format 2: {publishing['bridge.v2']:,.0f}), over {len(publishing_rates['bridge'])} rounds")
    note = f"{args.events} {args.payload} steps, load average {os.getloadavg()[0]:.1f} at the end"
    base: dict[str, Any] = {"baseline": medians["redis-py"], "baseline_label": "redis-py pipeline, same XADDs, same run"}
    print_bench_json("redis", [  # tools/bench_figures.py: the line tools/bench reads
        figure("redis.publisher.entries_per_s", "RedisPublisher.publish in-process", medians["publisher"],
               "entries/s", "higher", **base, target=target(">=", 150_000, source="issue 13 #6"), note=note),
        figure("redis.pump.entries_per_s", "bus -> RedisPump -> Redis in-process (the bridge's publishing path)",
               medians["pump"], "entries/s", "higher", **base, target=target(">=", 150_000, source="issue 13 #6"),
               note=note),
        figure("redis.bridge.entries_per_s", "redis_bridge: worker -> Redis, spawn to exit", medians["bridge"],
               "entries/s", "higher", **base, target=target(">=", 150_000, source="issue 13 #6"),
               note=note + "; worker, ingest child, bridge and redis-server on 2 cores"),
        figure("redis.bridge.publishing_events_per_s",
               "redis_bridge publishing: first entry in Redis to the last (process starts and exit not counted)",
               publishing["bridge"], "events/s", "higher", **base, target=target(">=", 150_000, source="issue 13 #6"),
               note=note + f"; XLEN seen every {WATCH_INTERVAL_S * 1e3:.0f} ms"),
        figure("redis.bridge.v2.publishing_events_per_s",
               f"redis_bridge publishing, {ENTRY_EVENTS} events per entry (wire format 2): first entry to the last",
               publishing["bridge.v2"], "events/s", "higher", baseline=publishing["bridge"],
               baseline_label="bridge publishing, one event per entry, same run",
               target=target(">=", 150_000, source="issue 13 #6"), note=note),
        *(figure(f"redis.{name}.v2.events_per_s", f"{label}, {ENTRY_EVENTS} events per entry (wire format 2)",
                 medians[f"{name}.v2"], "events/s", "higher", baseline=medians[name],
                 baseline_label=f"{name}, one event per entry, same run",
                 target=target(">=", 150_000, source="issue 13 #6"), note=note)
          for name, label in (("publisher", "RedisPublisher.publish in-process"),
                              ("pump", "bus -> RedisPump -> Redis in-process"),
                              ("bridge", "redis_bridge --entry-events: worker -> Redis, spawn to exit"))),
    ])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
