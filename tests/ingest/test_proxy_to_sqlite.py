"""Worker subprocess -> TelemetryProxy -> RunBus -> DbSink -> SQLite, with real parts throughout."""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
from pathlib import Path
from typing import Any, Iterator

import pytest

from gym_gui.ingest.proxy import TelemetryProxy
from gym_gui.telemetry.backpressure import BacklogGate
from gym_gui.qt.db_sink_thread import DbSink
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.run_bus import RunBus, Subscription
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore

QLEARN = [sys.executable, "-m", "gym_gui.workers.q_learning"]


class Pipeline:
    """The headless wiring of gym_gui.run, plus a lossless recorder of what was published."""

    def __init__(self, tmp_path: Path, *, run_id: str = "run-e2e", default_agent_id: str = "agent-0",
                 read_chunk_bytes: int = 64 * 1024, gate_wrapper: Any = None, **sink_tuning: Any) -> None:
        self.bus = RunBus()
        self.store = TelemetrySQLiteStore(tmp_path / "telemetry.sqlite")
        self.sink = DbSink(self.store, self.bus, **sink_tuning)
        self.recorded: dict[Topic, Subscription] = {
            t: self.bus.subscribe(t, "recorder", maxlen=None) for t in (Topic.STEP_APPENDED, Topic.EPISODE_FINALIZED, Topic.RUN_COMPLETED)
        }
        gate = self.sink.ingest_gate if gate_wrapper is None else gate_wrapper(self.sink.ingest_gate)
        self.proxy = TelemetryProxy(self.bus, default_agent_id=default_agent_id, run_id=run_id,
                                    seq_floor=self.store.max_seq_id, gate=gate, read_chunk_bytes=read_chunk_bytes)
        self.sink.start()

    def published(self, topic: Topic) -> list[TelemetryEvent]:
        return self.recorded[topic].drain()

    def close(self) -> None:
        assert self.proxy.stop(10)
        assert self.sink.stop(30)
        assert self.sink.isFinished()
        self.store.close()


@pytest.fixture
def pipelines(tmp_path: Path) -> Iterator[list[Pipeline]]:
    made: list[Pipeline] = []
    yield made
    for p in made:
        p.close()


def make(pipelines: list[Pipeline], tmp_path: Path, **kw: Any) -> Pipeline:
    p = Pipeline(tmp_path, **kw)
    pipelines.append(p)
    return p


def rows(store: TelemetrySQLiteStore, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    return store._reader().execute(sql, args).fetchall()


def run_to_persisted(qtbot: Any, p: Pipeline, argv: list[str], run_id: str, timeout_ms: int = 60_000) -> None:
    with qtbot.waitSignal(p.sink.run_persisted, timeout=timeout_ms, check_params_cb=lambda r: r == run_id):
        p.proxy.spawn(argv)
    assert p.proxy.wait(10)


def script(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "worker_script.py"
    path.write_text(textwrap.dedent(body))
    return [sys.executable, str(path)]


def test_q_learning_run_is_stored_exactly_once_and_in_order(qtbot: Any, tmp_path: Path, pipelines: list[Pipeline]) -> None:
    p = make(pipelines, tmp_path, run_id="run-q")
    argv = QLEARN + ["--episodes", "60", "--seed", "3", "--agent-id", "agent6", "--run-id", "run-q", "--heartbeat-interval-s", "0.05"]
    run_to_persisted(qtbot, p, argv, "run-q")
    published_steps = p.published(Topic.STEP_APPENDED)
    stored = rows(p.store, "SELECT agent_id, seq_id, episode_index, step_index, reward FROM steps WHERE run_id = ? ORDER BY seq_id", "run-q")
    assert len(stored) == len(published_steps) > 60
    assert [r[1] for r in stored] == [e.seq_id for e in published_steps]  # exactly once, same seq_ids
    assert {r[0] for r in stored} == {"agent6"}
    assert [(r[2], r[3]) for r in stored] == sorted((r[2], r[3]) for r in stored)
    assert [r[4] for r in stored] == [e.payload["reward"] for e in published_steps]
    episodes = p.store.episode_records("run-q")
    assert [e.episode_index for e in episodes] == list(range(60))
    assert all(e.agent_id == "agent6" for e in episodes)
    assert sum(e.length or 0 for e in episodes) == len(stored)
    assert rows(p.store, "SELECT COUNT(*) FROM episodes WHERE agent_id IS NULL OR agent_id = ''") == [(0,)]
    run = p.store.run("run-q")
    assert run is not None and run.status == "completed" and run.outcome == "completed"
    assert run.env_id == "FrozenLake-v1" and run.summary["episodes"] == 60
    assert p.store.max_seq_id("run-q", "agent6") == p.published(Topic.RUN_COMPLETED)[0].seq_id


def test_gym_gui_envelopes_land_with_episode_agent_reward_and_time(qtbot: Any, tmp_path: Path, pipelines: list[Pipeline]) -> None:
    lines = [
        {"event": "run_started", "run_id": "g1", "timestamp": 1700000000.0, "payload": {"env_id": "Taxi-v3", "config": {"lr": 0.1}}},
        {"type": "step", "run_id": "g1", "episode": 0, "step": 0, "action_json": "3", "observation_json": "[1, 2]",
         "reward": -1.0, "terminated": False, "truncated": False, "render_payload": "{\"kind\": \"grid\"}",
         "ts_unix_ns": 1700000001000000000, "worker_id": "w1"},
        {"type": "step", "run_id": "g1", "agent_id": "agent9", "episode_index": 0, "step_index": 0, "action": 1,
         "observation": 5, "reward": 20.0, "terminated": True, "truncated": False, "ts": "2023-11-14T22:13:22+00:00"},
        {"type": "episode", "run_id": "g1", "episode_id": "g1-ep000000", "episode_return": -1.0, "num_steps": 1,
         "terminated": False, "truncated": True, "metadata_json": "{\"episode_index\": 0, \"seed\": 5}",
         "timestamp": "2023-11-14T22:13:23+00:00"},
        {"type": "episode", "run_id": "g1", "agent_id": "agent9", "episode": 0, "total_reward": 20.0, "steps": 1,
         "terminated": True, "truncated": False, "metadata": {"note": "x"}},
        {"event": "heartbeat", "run_id": "g1", "timestamp": 1700000004.0, "payload": {"fps": 30}},
        {"event": "run_completed", "run_id": "g1", "timestamp": 1700000005.0, "payload": {"episodes": 1}},
    ]
    argv = script(tmp_path, f"""
        import json
        for line in {lines!r}:
            print(json.dumps(line))
    """)
    p = make(pipelines, tmp_path, run_id="unused", default_agent_id="agent6")
    run_to_persisted(qtbot, p, argv, "g1")
    steps = rows(p.store, "SELECT agent_id, episode_index, step_index, reward, ts_iso, terminated FROM steps ORDER BY agent_id")
    assert steps == [
        ("agent6", 0, 0, -1.0, "2023-11-14T22:13:21+00:00", 0),
        ("agent9", 0, 0, 20.0, "2023-11-14T22:13:22+00:00", 1),
    ]
    (step6,) = p.store.steps_for_episode("g1", "agent6", 0)
    assert step6.action == 3 and step6.observation == [1, 2] and step6.render_payload == {"kind": "grid"}
    assert step6.payload["worker_id"] == "w1"
    e6, e9 = p.store.episode_records("g1")
    assert (e6.agent_id, e6.episode_index, e6.total_reward, e6.length, e6.truncated) == ("agent6", 0, -1.0, 1, True)
    assert e6.payload["episode_id"] == "g1-ep000000" and e6.metadata == {"episode_index": 0, "seed": 5}
    assert e6.ts_iso == "2023-11-14T22:13:23+00:00"
    assert (e9.agent_id, e9.total_reward, e9.metadata) == ("agent9", 20.0, {"note": "x"})
    run = p.store.run("g1")
    assert run is not None and run.env_id == "Taxi-v3" and run.outcome == "completed"
    assert run.started_at == "2023-11-14T22:13:20+00:00" and run.last_heartbeat_at == "2023-11-14T22:13:24+00:00"


def test_bad_lines_interleaved_with_good_ones_lose_nothing_valid(qtbot: Any, tmp_path: Path, pipelines: list[Pipeline]) -> None:
    argv = script(tmp_path, """
        import json, sys
        out = sys.stdout.buffer
        bad = [b"\\xc3\\x28 broken utf-8", b"{truncated", b"[]", b'{"v": 1, "kind": "step", "run_id": "b1"}',
               b'{"v": 1, "kind": "step", "run_id": "b1", "episode_index": 0, "step_index": 9, "reward": NaN}',
               b'{"v": 1, "kind": "nope", "run_id": "b1"}', b"x" * 3000]
        n = 0
        for i, b in enumerate(bad * 5):
            step = {"v": 1, "kind": "step", "run_id": "b1", "episode_index": 0, "step_index": n, "action": 0,
                    "observation": 0, "reward": 1.0, "terminated": False, "truncated": False}
            out.write(json.dumps(step).encode() + b"\\n" + b + b"\\n")
            n += 1
        out.write(json.dumps({"v": 1, "kind": "episode", "run_id": "b1", "episode_index": 0, "total_reward": n,
                              "length": n}).encode() + b"\\n")
        out.write(json.dumps({"v": 1, "kind": "run_completed", "run_id": "b1", "outcome": "completed"}).encode() + b"\\n")
        out.write(b'{"v": 1, "kind": "st')
    """)
    p = make(pipelines, tmp_path, run_id="b1")
    p.proxy._max_line_bytes = 2048
    run_to_persisted(qtbot, p, argv, "b1")
    assert rows(p.store, "SELECT COUNT(*), MIN(step_index), MAX(step_index) FROM steps") == [(35, 0, 34)]
    assert len(p.store.episode_records("b1")) == 1
    assert p.proxy.rejected_counts() == {
        "invalid_utf8": 5, "invalid_json": 5, "not_an_object": 5, "missing_field": 5, "non_finite_number": 5,
        "unknown_record_type": 5, "oversized_line": 5, "partial_last_line": 1,
    }


def test_a_byte_order_mark_before_the_first_line_is_dropped_and_one_later_is_a_clear_rejection(
        qtbot: Any, tmp_path: Path, pipelines: list[Pipeline]) -> None:
    argv = script(tmp_path, """
        import json, sys
        out = sys.stdout.buffer
        def line(**record):
            return json.dumps({"v": 1, "run_id": "bom", **record}).encode()
        step = dict(kind="step", episode_index=0, action=0, observation=0, reward=1.0, terminated=False, truncated=False)
        out.write(b"\\xef\\xbb\\xbf" + line(kind="run_started", env_id="FrozenLake-v1", config={}) + b"\\n")
        out.write(line(step_index=0, **step) + b"\\n" + b"\\xef\\xbb\\xbf" + line(step_index=1, **step) + b"\\n")
        out.write(line(step_index=2, **step) + b"\\n" + line(kind="run_completed", outcome="completed") + b"\\n")
    """)
    p = make(pipelines, tmp_path, run_id="bom")
    run_to_persisted(qtbot, p, argv, "bom")
    run = p.store.run("bom")
    assert run is not None and run.env_id == "FrozenLake-v1" and run.outcome == "completed"
    assert rows(p.store, "SELECT step_index FROM steps ORDER BY seq_id") == [(0,), (2,)]
    assert p.proxy.rejected_counts() == {"invalid_json": 1}


def test_sigkill_mid_run_marks_the_run_failed_and_keeps_what_was_written(qtbot: Any, tmp_path: Path,
                                                                         pipelines: list[Pipeline]) -> None:
    p = make(pipelines, tmp_path, run_id="run-k")
    argv = QLEARN + ["--episodes", "100000", "--run-id", "run-k", "--agent-id", "agent6", "--step-rate-hz", "2000"]
    p.proxy.spawn(argv)
    steps: list[TelemetryEvent] = []
    while len(steps) < 200:
        assert p.recorded[Topic.STEP_APPENDED].wait(30)
        steps += p.published(Topic.STEP_APPENDED)
    with qtbot.waitSignal(p.sink.run_persisted, timeout=30_000):
        os.kill(p.proxy.process.pid, signal.SIGKILL)  # type: ignore[union-attr]
    steps += p.published(Topic.STEP_APPENDED)
    run = p.store.run("run-k")
    assert run is not None and run.status == "failed" and run.outcome == "failed"
    assert run.signal == "SIGKILL" and run.exit_code is None
    assert p.store.step_count("run-k") == len(steps)
    assert [r[0] for r in rows(p.store, "SELECT seq_id FROM steps ORDER BY seq_id")] == [e.seq_id for e in steps]


def test_worker_exiting_non_zero_is_failed_with_exit_code_and_stderr_tail(qtbot: Any, tmp_path: Path,
                                                                           pipelines: list[Pipeline]) -> None:
    p = make(pipelines, tmp_path, run_id="run-x")
    argv = QLEARN + ["--episodes", "50", "--run-id", "run-x", "--fail-after-steps", "30"]
    run_to_persisted(qtbot, p, argv, "run-x")
    run = p.store.run("run-x")
    assert run is not None and run.outcome == "failed" and run.exit_code == 1 and run.signal is None
    assert "Traceback" in (run.stderr_tail or "")
    assert p.store.step_count("run-x") == 30


class RecordingGate:
    """The sink's real gate, observed: the backlog each time the proxy asks before a read."""

    def __init__(self, gate: BacklogGate, backlog: Any) -> None:
        self.gate = gate
        self.backlog = backlog
        self.max_backlog_seen = 0

    def wait_until_open(self, timeout_s: float | None = None) -> bool:
        self.max_backlog_seen = max(self.max_backlog_seen, self.backlog())
        return self.gate.wait_until_open(timeout_s)


def test_slow_sink_pauses_the_reader_and_still_stores_everything(qtbot: Any, tmp_path: Path, pipelines: list[Pipeline]) -> None:
    chunk_bytes = 4096
    gates: list[RecordingGate] = []

    def wrap(gate: BacklogGate) -> RecordingGate:
        gates.append(RecordingGate(gate, lambda: pipelines[-1].sink.backlog()))
        return gates[-1]

    # The sink takes at most 50 rows per 50 ms (1,000 rows/s): far below what the worker writes
    # even on a loaded machine, so its backlog reaches the high water mark and the reader pauses.
    p = make(pipelines, tmp_path, run_id="run-s", read_chunk_bytes=chunk_bytes, gate_wrapper=wrap,
             high_water=300, low_water=100, batch_size=50, write_delay_s=0.05)
    argv = QLEARN + ["--episodes", "150", "--run-id", "run-s", "--seed", "1"]
    run_to_persisted(qtbot, p, argv, "run-s", timeout_ms=120_000)
    published = p.published(Topic.STEP_APPENDED)
    assert p.store.step_count("run-s") == len(published) > 900
    assert len(p.store.episode_records("run-s")) == 150
    lines_per_chunk = chunk_bytes // 100 + 1  # every record line is longer than 100 bytes
    assert gates[0].max_backlog_seen <= 300 + lines_per_chunk
    assert p.sink.ingest_gate.pauses > 0
    assert p.proxy.stats()["paused_s"] > 0


def test_a_restarted_proxy_continues_seq_after_the_stored_maximum(qtbot: Any, tmp_path: Path, pipelines: list[Pipeline]) -> None:
    def lines(n: int, outcome: str) -> list[str]:
        steps = [json.dumps({"v": 1, "kind": "step", "run_id": "r", "agent_id": "a", "seq": i, "episode_index": 0,
                             "step_index": i, "action": 0, "observation": 0, "reward": 0.0, "terminated": False,
                             "truncated": False}) for i in range(1, n + 1)]
        return steps + [json.dumps({"v": 1, "kind": "run_completed", "run_id": "r", "agent_id": "a", "outcome": outcome})]

    first = make(pipelines, tmp_path)
    with qtbot.waitSignal(first.sink.run_persisted, timeout=10_000):
        for line in lines(10, "failed"):
            first.proxy.feed_line(line)
    pipelines.remove(first)
    first.close()
    second = make(pipelines, tmp_path)  # same SQLite file, new bus, sink and proxy
    assert second.store.max_seq_id("r", "a") == 11
    for line in lines(5, "completed"):
        second.proxy.feed_line(line)
    assert second.sink.flush(10)
    seqs = [r[0] for r in rows(second.store, "SELECT seq_id FROM steps ORDER BY seq_id")]
    assert seqs == list(range(1, 11)) + list(range(12, 17))
    assert second.proxy.stats()["seq_reassigned"] == 5  # the five steps; run_completed carried no seq
