"""TelemetryProxy with real subprocess workers: ordering, bad input, supervision."""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from gym_gui.ingest.records import RejectReason
from gym_gui.ingest.proxy import TelemetryProxy
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.run_bus import RunBus, Subscription
from polling import wait_until


def canonical(kind: str, **fields: Any) -> str:
    return json.dumps({"v": 1, "kind": kind, "run_id": fields.pop("run_id", "r1"), **fields})


def step(episode: int, index: int, **fields: Any) -> str:
    return canonical("step", episode_index=episode, step_index=index, action=0, observation=index,
                     reward=float(index), terminated=False, truncated=False, **fields)


class Recorder:
    """Lossless subscriptions to every topic of a bus."""

    def __init__(self, bus: RunBus) -> None:
        self.subs: dict[Topic, Subscription] = {t: bus.subscribe(t, "test", maxlen=None) for t in Topic}
        self.events: list[TelemetryEvent] = []

    def collect(self) -> list[TelemetryEvent]:
        for sub in self.subs.values():
            self.events += sub.drain()
        self.events.sort(key=lambda e: (e.run_id, e.agent_id or "", e.seq_id))
        return self.events

    def of(self, topic: Topic) -> list[TelemetryEvent]:
        return [e for e in self.collect() if e.topic is topic]

    def wait_for(self, topic: Topic, count: int, timeout_s: float = 20.0) -> list[TelemetryEvent]:
        sub = self.subs[topic]
        got: list[TelemetryEvent] = []
        while len(got) < count:
            assert sub.wait(timeout_s), f"timed out waiting for {count} {topic.name}, got {len(got)}"
            got += sub.drain()
        self.events += got
        return got


@pytest.fixture(params=[True, False], ids=["ingest-process", "in-thread"])
def in_child(request: pytest.FixtureRequest) -> bool:
    """Whether spawn() decodes in the ingest child process or on the reader thread."""
    return bool(request.param)


def worker_script(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "worker.py"
    path.write_text(textwrap.dedent(body))
    return [sys.executable, str(path)]


def test_feed_line_assigns_increasing_seq_across_topics_and_default_agent() -> None:
    bus = RunBus()
    rec = Recorder(bus)
    proxy = TelemetryProxy(bus, default_agent_id="agent6")
    proxy.feed_line(canonical("run_started", env_id="FrozenLake-v1"))
    proxy.feed_line(step(0, 0))
    proxy.feed_line(step(0, 1, agent_id="agent7"))
    proxy.feed_line(canonical("episode", episode_index=0, total_reward=1.0, length=2))
    proxy.feed_line(canonical("run_completed", outcome="completed"))
    events = rec.collect()
    by_stream = {(e.agent_id, e.topic.name): e.seq_id for e in events}
    assert by_stream == {
        ("agent6", "RUN_STARTED"): 1, ("agent6", "STEP_APPENDED"): 2, ("agent7", "STEP_APPENDED"): 1,
        ("agent6", "EPISODE_FINALIZED"): 3, ("agent6", "RUN_COMPLETED"): 4,
    }
    assert proxy.stats()["events_published"] == {"RUN_STARTED": 1, "STEP_APPENDED": 2, "EPISODE_FINALIZED": 1, "RUN_COMPLETED": 1}


def test_worker_seq_is_honoured_when_increasing_and_replaced_when_not() -> None:
    bus = RunBus()
    rec = Recorder(bus)
    proxy = TelemetryProxy(bus)
    for seq in (5, 9, 9, 3, 12):
        proxy.feed_line(step(0, seq, seq=seq))
    assert [e.seq_id for e in rec.collect()] == [5, 9, 10, 11, 12]
    assert proxy.stats()["seq_reassigned"] == 2


def test_a_worker_seq_beyond_64_bits_is_replaced() -> None:
    bus = RunBus()
    rec = Recorder(bus)
    proxy = TelemetryProxy(bus)
    for seq in (5, 2**63, 2**200, 9):
        proxy.feed_line(step(0, 0, seq=seq))
    assert [e.seq_id for e in rec.collect()] == [5, 6, 7, 9]
    assert proxy.stats()["seq_reassigned"] == 2


def test_a_spawned_worker_s_seq_is_honoured_or_replaced_like_fed_lines(in_child: bool, tmp_path: Path) -> None:
    lines = [canonical("run_started", env_id="FrozenLake-v1", seq=2)]
    lines += [step(0, i, seq=seq) for i, seq in enumerate((5, 9, 9, 3, 12))]
    lines += [step(0, 0, seq=4, agent_id="agent7"), step(0, 1, agent_id="agent7"), step(0, 2, seq=7, run_id="r2")]
    bus = RunBus()
    rec = Recorder(bus)
    floors = {("r2", "agent-0"): 10}
    proxy = TelemetryProxy(bus, decode_in_subprocess=in_child, seq_floor=lambda run, agent: floors.get((run, agent)))
    proxy.spawn(worker_script(tmp_path, f"""
        import sys
        sys.stdout.write({json.dumps(chr(10).join(lines) + chr(10))})
    """))
    assert proxy.wait(30)
    got = [(e.run_id, e.agent_id, e.topic.name, e.seq_id) for e in rec.collect() if e.topic is not Topic.RUN_COMPLETED]
    assert got == [
        ("r1", "agent-0", "RUN_STARTED", 2),
        *[("r1", "agent-0", "STEP_APPENDED", seq) for seq in (5, 9, 10, 11, 12)],
        ("r1", "agent7", "STEP_APPENDED", 4), ("r1", "agent7", "STEP_APPENDED", 5),
        ("r2", "agent-0", "STEP_APPENDED", 11),
    ]
    stats = proxy.stats()
    assert stats["seq_reassigned"] == 3
    assert stats["events_published"] == {"RUN_STARTED": 1, "STEP_APPENDED": 8, "RUN_COMPLETED": 2}


def test_common_steps_are_published_as_step_payloads_and_others_as_dicts(in_child: bool, tmp_path: Path) -> None:
    grid = {"kind": "grid", "rows": 1, "cols": 2, "cells": ["SG"], "agent": [0, 0]}
    lines = [step(0, 0, info={"prob": 1.0}, render_payload=grid), step(0, 1), step(0, 2, worker_note="extra"),
             step(0, 3, info={"big": 2**70, "s": "\u00e9"})]
    expected = [json.loads(line) for line in lines]
    for record in expected:
        for key in ("v", "kind", "run_id"):
            del record[key]
        record.setdefault("info", {})
        record.setdefault("render_payload", None)
    bus = RunBus()
    rec = Recorder(bus)
    fed = TelemetryProxy(RunBus(), default_agent_id="agent-0")
    fed_payloads = [fed.feed_line(line).payload for line in lines]  # type: ignore[union-attr]
    proxy = TelemetryProxy(bus, decode_in_subprocess=in_child)
    proxy.spawn(worker_script(tmp_path, f"""
        import sys
        sys.stdout.write({json.dumps(chr(10).join(lines) + chr(10))})
    """))
    assert proxy.wait(30)
    spawned = [e.payload for e in rec.of(Topic.STEP_APPENDED)]
    for payloads in (fed_payloads, spawned):
        assert [type(p).__name__ for p in payloads] == ["StepPayload", "StepPayload", "dict", "StepPayload"]
        assert payloads == expected
        assert payloads[3]["info"]["big"] == 2**70


def test_seq_continues_after_the_stored_floor() -> None:
    bus = RunBus()
    rec = Recorder(bus)
    floors = {("r1", "agent-0"): 41}
    proxy = TelemetryProxy(bus, seq_floor=lambda run, agent: floors.get((run, agent)))
    proxy.feed_line(step(0, 0, seq=1))
    proxy.feed_line(step(0, 1))
    proxy.feed_line(step(0, 2, run_id="r2"))
    assert [(e.run_id, e.seq_id) for e in rec.collect()] == [("r1", 42), ("r1", 43), ("r2", 1)]


def test_bad_lines_are_counted_and_every_good_line_around_them_is_delivered(in_child: bool, tmp_path: Path) -> None:
    good = [step(0, i) for i in range(6)]
    bad = [
        b"\xff\xfe not utf-8",
        b"{\"v\": 1, \"kind\": \"st",
        b"[1, 2, 3]",
        json.dumps({"v": 1, "kind": "step", "run_id": "r1", "step_index": 0, "reward": 0}).encode(),
        json.dumps({"v": 1, "kind": "step", "run_id": "r1", "episode_index": "x", "step_index": 0, "reward": 0}).encode(),
        b"{\"v\": 1, \"kind\": \"step\", \"run_id\": \"r1\", \"episode_index\": 0, \"step_index\": 0, \"reward\": NaN}",
        json.dumps({"v": 1, "kind": "warp", "run_id": "r1"}).encode(),
        b"{\"pad\": \"" + b"x" * 5000 + b"\"}",
        canonical("step", episode_index=0, step_index=9, action=0, observation=0, reward=10**400).encode(),
        step(0, 9, ts="0001-01-01T00:00:00+01:00").encode(),  # year 0 in UTC; both once ended the decoder
    ]
    lines: list[bytes] = []
    for i, b in enumerate(bad):
        lines += [good[i % len(good)].encode() if i < len(good) else step(1, i).encode(), b]
    lines += [b"", canonical("run_completed", outcome="completed").encode()]
    payload = b"\n".join(lines) + b"\n" + b"{\"v\": 1, \"kind\": \"step\", \"run_id\": \"r1\", \"episode_in"
    data_file = tmp_path / "lines.bin"
    data_file.write_bytes(payload)
    argv = worker_script(tmp_path, f"""
        import sys
        sys.stdout.buffer.write(open({str(data_file)!r}, "rb").read())
    """)
    bus = RunBus()
    rec = Recorder(bus)
    proxy = TelemetryProxy(bus, decode_in_subprocess=in_child, max_line_bytes=4096, read_chunk_bytes=1000)
    proxy.spawn(argv)
    assert proxy.wait(30)
    steps = rec.of(Topic.STEP_APPENDED)
    assert len(steps) == len(bad)  # one good line before each bad one
    assert proxy.rejected_counts() == {
        RejectReason.INVALID_UTF8: 1, RejectReason.INVALID_JSON: 1, RejectReason.NOT_AN_OBJECT: 1,
        RejectReason.MISSING_FIELD: 1, RejectReason.WRONG_TYPE: 1, RejectReason.NON_FINITE: 2,
        RejectReason.UNKNOWN_TYPE: 1, RejectReason.OVERSIZED: 1, RejectReason.PARTIAL: 1,
        RejectReason.OUT_OF_RANGE: 1,
    }
    stats = proxy.stats()
    assert stats["blank_lines"] == 1 and stats["lines_read"] == len(lines) + 1
    done = rec.of(Topic.RUN_COMPLETED)
    assert [e.payload["outcome"] for e in done] == ["completed"]
    assert proxy.stop(5)


def test_a_complete_last_line_without_newline_is_kept(in_child: bool, tmp_path: Path) -> None:
    argv = worker_script(tmp_path, f"""
        import sys
        sys.stdout.write({step(0, 0)!r} + "\\n" + {canonical("run_completed", outcome="completed")!r})
    """)
    bus = RunBus()
    rec = Recorder(bus)
    proxy = TelemetryProxy(bus, decode_in_subprocess=in_child)
    proxy.spawn(argv)
    assert proxy.wait(30)
    assert [e.topic for e in rec.collect()] == [Topic.STEP_APPENDED, Topic.RUN_COMPLETED]
    assert proxy.rejected_counts() == {}


def test_worker_killed_mid_line_yields_failed_completion_with_the_signal(in_child: bool, tmp_path: Path) -> None:
    argv = worker_script(tmp_path, f"""
        import signal, sys
        sys.stderr.write("about to hang\\n")  # before the lines the test waits for
        sys.stderr.flush()
        lines = [{canonical("run_started", env_id="X")!r}] + [{step(0, 0)!r}, {step(0, 1)!r}, {step(0, 2)!r}]
        partial = '{{"v": 1, "kind": "step", "run_id": "r1", "episode_ind'
        sys.stdout.buffer.write(("\\n".join(lines) + "\\n" + partial).encode())  # one write: all or nothing
        sys.stdout.buffer.flush()
        signal.pause()  # hang until killed
    """)
    bus = RunBus()
    rec = Recorder(bus)
    proxy = TelemetryProxy(bus, decode_in_subprocess=in_child, run_id="r1")
    proc = proxy.spawn(argv)
    rec.wait_for(Topic.STEP_APPENDED, 3)
    os.kill(proc.pid, signal.SIGKILL)
    assert proxy.wait(30)
    (done,) = rec.of(Topic.RUN_COMPLETED)
    assert done.payload["outcome"] == "failed"
    assert done.payload["signal"] == "SIGKILL" and done.payload["exit_code"] is None
    assert "about to hang" in done.payload["stderr_tail"]
    assert done.seq_id == 5  # after run_started and the three steps
    assert [e.seq_id for e in rec.of(Topic.STEP_APPENDED)] == [2, 3, 4]
    assert proxy.rejected_counts() == {RejectReason.PARTIAL: 1}
    assert proxy.exit_code == -signal.SIGKILL
    assert proxy.stop(5)


def test_worker_exiting_non_zero_is_failed_with_exit_code_and_stderr_tail(in_child: bool, tmp_path: Path) -> None:
    argv = worker_script(tmp_path, f"""
        import sys
        print({step(0, 0)!r}, flush=True)
        print("x" * 20000, file=sys.stderr)
        raise SystemExit("ValueError: the environment exploded")
    """)
    bus = RunBus()
    rec = Recorder(bus)
    proxy = TelemetryProxy(bus, decode_in_subprocess=in_child, stderr_tail_bytes=500)
    proxy.spawn(argv)
    assert proxy.wait(30)
    (done,) = rec.of(Topic.RUN_COMPLETED)
    assert done.payload["outcome"] == "failed" and done.payload["exit_code"] == 1 and done.payload["signal"] is None
    assert done.payload["stderr_tail"].endswith("the environment exploded\n")
    assert len(done.payload["stderr_tail"]) <= 500
    assert done.run_id == "r1" and done.seq_id == 2


def test_worker_that_dies_before_any_record_fails_the_configured_run(in_child: bool, tmp_path: Path) -> None:
    argv = worker_script(tmp_path, "import sys; sys.exit(3)")
    bus = RunBus()
    rec = Recorder(bus)
    proxy = TelemetryProxy(bus, decode_in_subprocess=in_child, run_id="run-42", default_agent_id="agent6")
    proxy.spawn(argv)
    assert proxy.wait(30)
    (done,) = rec.of(Topic.RUN_COMPLETED)
    assert (done.run_id, done.agent_id, done.payload["exit_code"], done.payload["outcome"]) == ("run-42", "agent6", 3, "failed")


def test_on_finished_is_called_once_on_the_reader_thread_after_everything_is_published(
        in_child: bool, tmp_path: Path) -> None:
    argv = worker_script(tmp_path, "import sys; sys.exit(0)")
    bus = RunBus()
    rec = Recorder(bus)
    calls: list[tuple[bool, str, int]] = []
    proxy = TelemetryProxy(bus, decode_in_subprocess=in_child, run_id="run-f", name="w",
                           on_finished=lambda: calls.append((proxy.finished, threading.current_thread().name,
                                                             len(rec.of(Topic.RUN_COMPLETED)))))
    proxy.spawn(argv)
    assert proxy.wait(30)
    wait_until(lambda: calls, message="on_finished")  # right after ``finished`` turned True
    assert proxy.stop(5)
    assert calls == [(True, "w-reader", 1)]


def test_clean_exit_without_run_completed_is_still_failed(in_child: bool, tmp_path: Path) -> None:
    argv = worker_script(tmp_path, f"print({step(0, 0)!r})")
    bus = RunBus()
    rec = Recorder(bus)
    proxy = TelemetryProxy(bus, decode_in_subprocess=in_child)
    proxy.spawn(argv)
    assert proxy.wait(30)
    (done,) = rec.of(Topic.RUN_COMPLETED)
    assert done.payload["outcome"] == "failed" and done.payload["exit_code"] == 0
    assert "without run_completed" in done.payload["summary"]["reason"]


@pytest.mark.parametrize(("sigterm_handler", "stop_timeout_s", "ended_by"), [
    ("signal.SIG_DFL", 5.0, "SIGTERM"),
    ("signal.SIG_IGN", 0.5, "SIGKILL"),  # ignores the polite request: killed after the timeout
])
def test_stop_ends_a_running_worker_as_cancelled_and_joins_threads(
    in_child: bool, tmp_path: Path, sigterm_handler: str, stop_timeout_s: float, ended_by: str
) -> None:
    argv = worker_script(tmp_path, f"""
        import signal
        signal.signal(signal.SIGTERM, {sigterm_handler})
        print({step(0, 0)!r}, flush=True)
        signal.pause()  # run until a signal ends the process
    """)
    bus = RunBus()
    rec = Recorder(bus)
    proxy = TelemetryProxy(bus, decode_in_subprocess=in_child)
    proxy.spawn(argv)
    rec.wait_for(Topic.STEP_APPENDED, 1)  # the handler is installed before the first line
    proxy.stop(stop_timeout_s)  # its joins are bounded by the timeout: on a loaded machine the
    assert proxy.wait(30)       # reader may need longer to reap the killed worker and publish
    assert proxy.stop(stop_timeout_s)  # idempotent, and every thread has ended
    assert proxy.finished
    (done,) = rec.of(Topic.RUN_COMPLETED)
    assert done.payload["outcome"] == "cancelled" and done.payload["signal"] == ended_by


def test_concurrent_stops_send_one_sigterm(in_child: bool, tmp_path: Path) -> None:
    # The worker counts SIGTERMs and finishes its work on the first: a second one must not arrive.
    argv = worker_script(tmp_path, f"""
        import signal, sys, threading
        got = []
        done = threading.Event()
        def on_term(signum, frame):
            got.append(signum)
            done.set()
        signal.signal(signal.SIGTERM, on_term)
        print({step(0, 0)!r}, flush=True)
        done.wait()
        threading.Event().wait(0.3)  # finishing up: a second stop() call lands here
        sys.stderr.write(f"sigterms={{len(got)}}" + chr(10))
        sys.exit(0)
    """)
    bus = RunBus()
    rec = Recorder(bus)
    proxy = TelemetryProxy(bus, decode_in_subprocess=in_child)
    proxy.spawn(argv)
    rec.wait_for(Topic.STEP_APPENDED, 1)
    stoppers = [threading.Thread(target=proxy.stop, args=(5.0,)) for _ in range(3)]
    for t in stoppers:
        t.start()
    for t in stoppers:
        t.join(15)
    assert proxy.finished and proxy.exit_code == 0
    (done,) = rec.of(Topic.RUN_COMPLETED)
    assert "sigterms=1" in (done.payload["stderr_tail"] or "")


def test_a_proxy_reads_one_source(in_child: bool, tmp_path: Path) -> None:
    proxy = TelemetryProxy(RunBus(), decode_in_subprocess=in_child)
    proxy.spawn(worker_script(tmp_path, "pass"))
    with pytest.raises(RuntimeError, match="already"):
        proxy.spawn(worker_script(tmp_path, "pass"))
    assert proxy.wait(30) and proxy.stop(5)
