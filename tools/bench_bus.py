#!/usr/bin/env python3
"""Publish cost of RunBus vs blinker.Signal.send, side by side in one run.

Both fan out the same pre-built TelemetryEvents to N receivers that keep them in deques; the
deques are emptied between rounds so neither side pays for drops. RunBus's figure includes all
its per-event work: the route look-up, the appends, the waker check and the per-stream
sequence-gap check (no gap occurs here, so nothing is logged). Prints ns per publish for each and
the ratio RunBus/blinker (target: <= 0.20 with 4 subscribers). Best of several rounds.

    .venv/bin/python tools/bench_bus.py [--events 100000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections import deque
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from blinker import Signal  # noqa: E402

from gym_gui.telemetry.events import TelemetryEvent, Topic  # noqa: E402
from gym_gui.telemetry.run_bus import RunBus  # noqa: E402
from bench_figures import figure, print_bench_json, target  # noqa: E402

TARGET_RATIO_AT_4 = 0.20


def make_events(n: int) -> list[TelemetryEvent]:
    payload = {"episode_index": 0, "step_index": 0, "reward": 0.0}
    return [TelemetryEvent(Topic.STEP_APPENDED, "run1", "agent6", i, "2026-01-01T00:00:00+00:00", payload) for i in range(1, n + 1)]


def time_round(send: Callable[[TelemetryEvent], object], events: list[TelemetryEvent], reset: Callable[[], None]) -> float:
    reset()
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter_ns()
        for evt in events:
            send(evt)
        return (time.perf_counter_ns() - start) / len(events)
    finally:
        gc.enable()


def bench_blinker(n_subs: int, events: list[TelemetryEvent], rounds: int) -> float:
    signal = Signal()
    queues = [deque() for _ in range(n_subs)]  # type: list[deque[TelemetryEvent]]
    for queue in queues:
        def receiver(sender: object, evt: TelemetryEvent, _append: Callable[[TelemetryEvent], None] = queue.append) -> None:
            _append(evt)
        signal.connect(receiver, weak=False)

    def send(evt: TelemetryEvent) -> None:
        signal.send(None, evt=evt)

    def reset() -> None:
        for queue in queues:
            queue.clear()

    return min(time_round(send, events, reset) for _ in range(rounds))


def bench_run_bus(n_subs: int, events: list[TelemetryEvent], rounds: int) -> float:
    bus = RunBus()
    subs = [bus.subscribe(Topic.STEP_APPENDED, f"sub{i}", maxlen=len(events) + 1) for i in range(n_subs)]

    def reset() -> None:
        for sub in subs:
            sub.drain()

    result = min(time_round(bus.publish, events, reset) for _ in range(rounds))
    assert all(sub.dropped == 0 for sub in subs)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    events = make_events(args.events)
    print(f"RunBus.publish vs blinker.Signal.send, {args.events} events, best of {args.rounds} rounds")
    print(f"{'subscribers':>11} {'blinker ns':>11} {'RunBus ns':>10} {'ratio':>6}")
    ok = True
    figures = []
    for n_subs in (1, 4, 16):
        blinker_ns = bench_blinker(n_subs, events, args.rounds)
        bus_ns = bench_run_bus(n_subs, events, args.rounds)
        ratio = bus_ns / blinker_ns
        print(f"{n_subs:>11} {blinker_ns:>11.0f} {bus_ns:>10.0f} {ratio:>6.3f}")
        if n_subs == 4:
            ok = ratio <= TARGET_RATIO_AT_4
        figures.append(figure(f"bus.publish_ns.{n_subs}", f"RunBus.publish, {n_subs} subscribers", bus_ns,
                              "ns/publish", "lower", baseline=blinker_ns, baseline_label="blinker.Signal.send",
                              target=target("<=", TARGET_RATIO_AT_4, on="ratio", source="docs/performance.md")
                              if n_subs == 4 else None))
    print(f"target at 4 subscribers: ratio <= {TARGET_RATIO_AT_4:.2f}: {'met' if ok else 'MISSED'}")
    print_bench_json("bus", figures)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
