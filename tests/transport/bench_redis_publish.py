"""Publish-rate figures of the Redis transport's worker side (not collected by pytest).

    .venv/bin/python tests/transport/bench_redis_publish.py [--events 100000] [--rounds 3]

Starts a private redis-server on loopback (no persistence) and measures, per round:
- ``publisher``: RedisPublisher.publish of ToyText-like step events in batches of 512, in-process,
  with the bridge's durable seq_id state as its guard (entries/s, the cost the pump pays per
  batch; and this process's CPU time per entry);
- ``bridge``: ``python -m gym_gui.transport.redis_bridge`` running the fake worker of the tests,
  from spawn to exit (entries/s = entries in Redis / wall time, process start included; and the
  CPU time per entry of the bridge, its ingest child and the worker together).
Prints one line per round and the medians. On a shared machine the CPU figures are the steadier.
The bridges' seq_id state goes to a temporary ``XDG_STATE_HOME``, never the home directory.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / "tools"))

from event_factory import EventFactory  # noqa: E402
from gym_gui.transport.redis_client import make_client  # noqa: E402
from gym_gui.transport.redis_keys import stream_key  # noqa: E402
from gym_gui.transport.redis_publisher import RedisPublisher  # noqa: E402
from gym_gui.transport.redis_seq_state import SeqState  # noqa: E402
from redis_helpers import RedisServer, bridge_argv, child_env, redis_server_binary  # noqa: E402
from bench_figures import figure, print_bench_json, target  # noqa: E402


def publisher_rate(server: RedisServer, events: int, run_id: str, state_dir: Path) -> tuple[float, float]:
    """(entries/s, CPU us per entry of this process)."""
    f = EventFactory(run_id, "a1", first_seq=1)
    batch = [f.step(0, i) for i in range(events)]
    state = SeqState(state_dir)
    assert state.prepare() is None
    pub = RedisPublisher(make_client(server.url), retention=None, seq_guard=state)
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(batch), 512):
        pub.publish(batch[i:i + 512])
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert pub.added == events, pub.stats()
    assert state.close()
    pub.client.close()
    return events / elapsed, cpu / events * 1e6


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bridge_rate(server: RedisServer, steps: int, run_id: str) -> tuple[float, float]:
    """(entries/s, CPU us per entry of the bridge, its ingest child and the worker)."""
    worker = [sys.executable, str(HERE / "redis_fake_worker.py"), "--run-id", run_id, "--agent-id", "a1",
              "--steps", str(steps)]
    argv = bridge_argv(server.url, "--run-id", run_id, "--retention", "0", "--") + worker
    started, cpu = time.perf_counter(), _children_cpu_s()
    proc = subprocess.run(argv, env=child_env(), capture_output=True, text=True, timeout=600)
    elapsed, cpu = time.perf_counter() - started, _children_cpu_s() - cpu
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with server.client() as c:
        added = int(c.xlen(stream_key(run_id, "a1")))
    return added / elapsed, cpu / added * 1e6


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["XDG_STATE_HOME"] = str(Path(tmp) / "xdg-state")  # the bridges' seq_id state (child_env)
        server = RedisServer(redis_server_binary(), Path(tmp))
        server.start()
        try:
            figures: dict[str, list[tuple[float, float]]] = {"publisher": [], "bridge": []}
            for r in range(args.rounds):
                with server.client() as c:
                    c.flushall()
                figures["publisher"].append(publisher_rate(server, args.events, f"pub-{r}", Path(tmp) / "state"))
                figures["bridge"].append(bridge_rate(server, args.events, f"bridge-{r}"))
                print(f"round {r}: " + ", ".join(f"{name} {v[-1][0]:,.0f} entries/s {v[-1][1]:.1f} us CPU/entry"
                                                 for name, v in figures.items()), flush=True)
            medians = {}
            for name, values in figures.items():
                rate = statistics.median(v[0] for v in values)
                cpu_us = statistics.median(v[1] for v in values)
                medians[name] = rate
                print(f"{name}: median {rate:,.0f} entries/s, {cpu_us:.1f} us CPU/entry over {len(values)} rounds")
            print_bench_json("redis", [  # tools/bench_figures.py: the line tools/bench reads
                figure("redis.publisher.entries_per_s", "RedisPublisher.publish in-process", medians["publisher"],
                       "entries/s", "higher"),
                figure("redis.bridge.entries_per_s", "redis_bridge: worker -> Redis, spawn to exit", medians["bridge"],
                       "entries/s", "higher", baseline=medians["publisher"], baseline_label="publisher in-process",
                       target=target(">=", 150_000, source="issue 13 #6")),
            ])
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
