#!/usr/bin/env python3
"""Publish cost of RunBus vs blinker.Signal.send, side by side in one run.

Both fan out the same pre-built TelemetryEvents to N receivers that keep them in deques; the
deques are emptied between rounds so neither side pays for drops. RunBus's figure includes all
its per-event work: the route look-up, the appends, the waker check and the per-stream
sequence-gap check (no gap occurs here, so nothing is logged). Prints ns per publish for each and
the ratio RunBus/blinker (target: <= 0.20 with 4 subscribers). Best of several rounds.

The multi-topic case: 4 subscribers each take STEP_APPENDED, EPISODE_FINALIZED and RUN_HEARTBEAT
into one subscription (``subscribe_topics``), fed a mix of the three (one episode every 8 events,
one heartbeat every 64); blinker sends the same events on one Signal per topic to the same 4
receivers. For comparison it also prints RunBus with the three topics as three subscriptions per
subscriber (``subscribe_all``, the shape before multi-topic subscriptions).

    .venv/bin/python tools/bench_bus.py [--events 100000] [--rounds 7] [--clock wall|cpu]

``--clock cpu`` times with the thread's CPU time instead of the wall clock: on a machine that
other processes keep busy, time spent descheduled then does not count, so two commits can be
compared side by side (the figures are what the publishing thread itself spends).
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


MULTI_TOPICS = (Topic.STEP_APPENDED, Topic.EPISODE_FINALIZED, Topic.RUN_HEARTBEAT)
MULTI_SUBSCRIBERS = 4


def make_mixed_events(n: int) -> list[TelemetryEvent]:
    payload = {"episode_index": 0, "step_index": 0, "reward": 0.0}
    topics = [Topic.RUN_HEARTBEAT if i % 64 == 0 else Topic.EPISODE_FINALIZED if i % 8 == 0 else Topic.STEP_APPENDED
              for i in range(1, n + 1)]
    return [TelemetryEvent(topic, "run1", "agent6", i, "2026-01-01T00:00:00+00:00", payload)
            for i, topic in enumerate(topics, start=1)]


CLOCKS: dict[str, Callable[[], int]] = {"wall": time.perf_counter_ns, "cpu": time.thread_time_ns}
_clock = time.perf_counter_ns


def time_round(send: Callable[[TelemetryEvent], object], events: list[TelemetryEvent], reset: Callable[[], None]) -> float:
    reset()
    gc.collect()
    gc.disable()
    try:
        start = _clock()
        for evt in events:
            send(evt)
        return (_clock() - start) / len(events)
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


def bench_blinker_per_topic(n_subs: int, events: list[TelemetryEvent], rounds: int) -> float:
    signals = {topic: Signal() for topic in MULTI_TOPICS}
    queues = [deque() for _ in range(n_subs)]  # type: list[deque[TelemetryEvent]]
    for queue in queues:
        def receiver(sender: object, evt: TelemetryEvent, _append: Callable[[TelemetryEvent], None] = queue.append) -> None:
            _append(evt)
        for signal in signals.values():
            signal.connect(receiver, weak=False)

    def send(evt: TelemetryEvent) -> None:
        signals[evt.topic].send(None, evt=evt)

    def reset() -> None:
        for queue in queues:
            queue.clear()

    return min(time_round(send, events, reset) for _ in range(rounds))


def bench_run_bus_topics(n_subs: int, events: list[TelemetryEvent], rounds: int, *, split: bool) -> float:
    bus = RunBus()
    subs = []
    for i in range(n_subs):
        if split:
            subs += bus.subscribe_all(MULTI_TOPICS, f"sub{i}", maxlen=len(events) + 1).values()
        else:
            subs.append(bus.subscribe_topics(MULTI_TOPICS, f"sub{i}", maxlen=len(events) + 1))

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
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="wall: perf_counter (default); cpu: the publishing thread's CPU time")
    args = parser.parse_args(argv)
    global _clock
    _clock = CLOCKS[args.clock]
    events = make_events(args.events)
    print(f"RunBus.publish vs blinker.Signal.send, {args.events} events, best of {args.rounds} rounds, {args.clock} clock")
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
    if not hasattr(RunBus, "subscribe_topics"):  # an older bus, measured side by side with this script
        print_bench_json("bus", figures)
        return 0 if ok else 1
    mixed = make_mixed_events(args.events)
    blinker_ns = bench_blinker_per_topic(MULTI_SUBSCRIBERS, mixed, args.rounds)
    multi_ns = bench_run_bus_topics(MULTI_SUBSCRIBERS, mixed, args.rounds, split=False)
    split_ns = bench_run_bus_topics(MULTI_SUBSCRIBERS, mixed, args.rounds, split=True)
    print(f"{'4 x 3 topics':>11} {blinker_ns:>11.0f} {multi_ns:>10.0f} {multi_ns / blinker_ns:>6.3f}"
          f"   (one subscription per topic: {split_ns:.0f} ns, ratio {split_ns / blinker_ns:.3f})")
    figures.append(figure("bus.publish_ns.multi4", "RunBus.publish, 4 subscribers of 3 topics each (subscribe_topics)",
                          multi_ns, "ns/publish", "lower", baseline=blinker_ns,
                          baseline_label="blinker.Signal.send, one Signal per topic"))
    print(f"target at 4 subscribers: ratio <= {TARGET_RATIO_AT_4:.2f}: {'met' if ok else 'MISSED'}")
    print_bench_json("bus", figures)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
