"""Issue 10, item 1: a stream that reaches seq_id 2**63 - 1 never kills the proxy nor hangs a run.

Its later lines become counted ``seq_exhausted`` rejections; a stream whose stored max_seq_id is
already at the limit reports every line as rejected, never "0 lost".
"""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path
from typing import Callable

from gym_gui.ingest.proxy import TelemetryProxy
from gym_gui.telemetry.events import MAX_SEQ_ID, Topic
from gym_gui.telemetry.run_bus import RunBus

LIMIT = MAX_SEQ_ID
EXHAUSTED = "seq_exhausted"  # RejectReason.SEQ_EXHAUSTED


def _step(seq: int | None, step: int, run_id: str = "r1") -> bytes:
    record = {"v": 1, "kind": "step", "run_id": run_id, "agent_id": "a", "episode_index": 0, "step_index": step,
              "action": 0, "observation": 0, "reward": 1.0, "terminated": False, "truncated": False,
              "ts": "2025-01-01T00:00:00+00:00"}
    if seq is not None:
        record["seq"] = seq
    return json.dumps(record).encode() + b"\n"


def _completed(run_id: str = "r1") -> bytes:
    return json.dumps({"v": 1, "kind": "run_completed", "run_id": run_id, "agent_id": "a",
                       "outcome": "completed"}).encode() + b"\n"


def test_an_exhausted_stream_rejects_its_later_lines_and_the_reader_lives_on() -> None:
    bus = RunBus()
    steps = bus.subscribe(Topic.STEP_APPENDED, "t", maxlen=None)
    done = bus.subscribe(Topic.RUN_COMPLETED, "t", maxlen=None)
    proxy = TelemetryProxy(bus, run_id="r1", decode_in_subprocess=False)
    lines = _step(LIMIT - 1, 0) + _step(LIMIT, 1) + _step(None, 2) + _step(LIMIT, 3) + _completed()
    lines += _step(5, 0, run_id="r2")  # another stream is unaffected
    proxy.attach(io.BytesIO(lines))
    assert proxy.wait(10), "the reader hung"
    assert [e.seq_id for e in steps.drain()] == [LIMIT - 1, LIMIT, 5]
    stats = proxy.stats()
    # two steps and the worker's own run_completed could get no seq_id; r2 gets a synthetic completion
    assert stats["rejected"] == {EXHAUSTED: 3}
    assert [e.run_id for e in done.drain()] == ["r2"]
    assert proxy.stop(1)


def test_a_spawned_worker_past_the_limit_ends_promptly(script: Callable[[str], list[str]]) -> None:
    bus = RunBus()
    steps = bus.subscribe(Topic.STEP_APPENDED, "t", maxlen=None)
    proxy = TelemetryProxy(bus, run_id="r1")
    argv = script(f"""
        import json, sys
        for i, seq in enumerate([{LIMIT}, None, None]):
            rec = {{"type": "step", "run_id": "r1", "episode": 0, "step": i, "reward": 0.0}}
            if seq is not None:
                rec["seq"] = seq
            print(json.dumps(rec), flush=True)
    """)
    proxy.spawn(argv)
    assert proxy.wait(20), "the reader hung"
    assert [e.seq_id for e in steps.drain()] == [LIMIT]
    assert proxy.stats()["rejected"] == {EXHAUSTED: 3}  # 2 steps + the synthetic completion
    assert proxy.stop(5)


def test_a_stored_stream_at_the_limit_reports_every_line_as_rejected() -> None:
    bus = RunBus()
    proxy = TelemetryProxy(bus, run_id="r1", seq_floor=lambda run_id, agent_id: LIMIT, decode_in_subprocess=False)
    proxy.attach(io.BytesIO(_step(None, 0) + _step(7, 1) + _completed()))
    assert proxy.wait(10)
    assert proxy.stats()["rejected"] == {EXHAUSTED: 3}


def test_the_cli_never_hangs_and_never_says_nothing_was_lost(tmp_path: Path, script: Callable[[str], list[str]],
                                                             cli: Callable[..., object]) -> None:
    worker = script(f"""
        import json
        print(json.dumps({{"v": 1, "kind": "run_started", "run_id": "cli-seq", "agent_id": "a"}}), flush=True)
        for i, seq in enumerate([{LIMIT - 1}, None, None]):
            rec = {{"type": "step", "run_id": "cli-seq", "agent_id": "a", "episode": 0, "step": i, "reward": 0.0}}
            if seq is not None:
                rec["seq"] = seq
            print(json.dumps(rec), flush=True)
        print(json.dumps({{"v": 1, "kind": "run_completed", "run_id": "cli-seq", "agent_id": "a",
                           "outcome": "completed"}}), flush=True)
    """)
    db = tmp_path / "seq.sqlite"
    first = cli("--db", str(db), "--run-id", "cli-seq", "--", *worker, timeout_s=60)
    out = first.stdout
    assert first.returncode != 0, out + first.stderr
    assert "seq_exhausted 2" in out and "Traceback" not in first.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT MAX(seq_id) FROM steps").fetchone()[0] == LIMIT
    # the stream is now full: a second run of it stores nothing and says so
    second = cli("--db", str(db), "--run-id", "cli-seq", "--", *worker, timeout_s=60)
    assert second.returncode != 0, second.stdout + second.stderr
    assert "seq_exhausted 5" in second.stdout and "rejected lines: none" not in second.stdout
    assert ("not stored: 5 (5 rejected lines, 0 events kept aside as malformed in run_events, 0 unstored events)"
            in second.stdout), second.stdout


def test_negative_and_non_int_worker_seqs_are_renumbered_never_published() -> None:
    """TelemetryEvent may accept a negative seq_id (existing producers send them); the proxy never makes one."""
    bus = RunBus()
    steps = bus.subscribe(Topic.STEP_APPENDED, "t", maxlen=None)
    proxy = TelemetryProxy(bus, run_id="r1", seq_floor=lambda run_id, agent_id: -40, decode_in_subprocess=False)
    proxy.attach(io.BytesIO(_step(-5, 0) + _step(None, 1) + _step(0, 2) + _step(2**64, 3) + _step(9, 4)))
    assert proxy.wait(10)
    assert [e.seq_id for e in steps.drain()] == [1, 2, 3, 4, 9]
    assert proxy.stats()["seq_reassigned"] == 3 and proxy.stats()["rejected"] == {}
