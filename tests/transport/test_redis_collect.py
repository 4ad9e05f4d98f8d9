"""The headless collector (``python -m gym_gui.run --redis-url``) as real subprocesses.

A bridge subprocess publishes a worker's run to a real redis-server; the collector subprocess
persists it into SQLite: the rows equal what the worker wrote, exit 0 with --until-complete; a
SIGTERM mid-run stores what was read and exits 143; a restarted collector resumes with no gap and
no duplicate; no Qt is imported.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gym_gui.ingest.worker_specs import WorkerSpec
from gym_gui.telemetry.events import Topic
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore
from gym_gui.transport.redis_keys import stream_key
from gym_gui.transport.redis_packed import decode_packed
from gui_side import stored_seqs
from redis_helpers import REPO, RedisServer, bridge_argv, child_env, wait_until

COLLECT = [sys.executable, "-m", "gym_gui.run"]
FAKE_WORKER = [sys.executable, str(Path(__file__).with_name("redis_fake_worker.py"))]
STEP_FIELDS = ("episode_index", "step_index", "action", "observation", "reward", "terminated", "truncated", "info",
               "render_payload")


def collector(url: str, db: Path, *options: str) -> subprocess.Popen[str]:
    return subprocess.Popen(COLLECT + ["--redis-url", url, "--db", str(db), "--progress-interval-s", "0.05", *options],
                            env=child_env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def redis_seqs(server: RedisServer, run_id: str, agent_id: str) -> list[int]:
    with server.client() as c:
        return [int(raw.split(b"-")[0]) for raw, _fields in c.xrange(stream_key(run_id, agent_id))]


def events_in_redis(server: RedisServer, run_id: str, agent_id: str) -> list[tuple[int, bytes]]:
    """``(seq_id, topic)`` of every event of the stream; a format-2 entry gives its events."""
    with server.client() as c:
        raw_entries = c.xrange(stream_key(run_id, agent_id))
    out: list[tuple[int, bytes]] = []
    for raw, fields in raw_entries:
        if fields.get(b"v") == b"2":
            out += [(seq, evt.topic.name.encode())
                    for seq, evt in decode_packed((run_id, agent_id), raw, fields[b"events"], int(raw.split(b"-")[0]))]
        else:
            out.append((int(raw.split(b"-")[0]), fields[b"topic"]))
    return out


def stored_steps(db: Path, run_id: str, agent_id: str) -> list[dict[str, Any]]:
    store = TelemetrySQLiteStore(db)
    try:
        events = store.events_after(run_id, agent_id, 0, limit=1_000_000)
        return [{k: e.payload.get(k) for k in STEP_FIELDS} for e in events if e.topic is Topic.STEP_APPENDED]
    finally:
        store.close()


@pytest.mark.parametrize("entry_events", ["1", "16"], ids=["format1", "format2"])
def test_a_real_workers_run_through_the_bridge_is_collected_exactly_and_exits_0(
        redis_server: RedisServer, tmp_path: Path, entry_events: str) -> None:
    worker = WorkerSpec(env_id="FrozenLake-v1", episodes=30, seed=3, agent_id="agent-1", heartbeat_interval_s=0.05)
    written = subprocess.run(worker.argv("run-c"), env=child_env(), capture_output=True, text=True, timeout=60)
    assert written.returncode == 0, written.stderr
    records = [json.loads(line) for line in written.stdout.splitlines()]
    expected = [{k: r.get(k) for k in STEP_FIELDS} for r in records if r["kind"] == "step"]
    db = tmp_path / "collected.sqlite"
    coll = collector(redis_server.url, db, "--run-id", "run-c", "--until-complete", "--idle-exit-s", "60")
    other = subprocess.run(bridge_argv(redis_server.url, "--run-id", "other", "--") + FAKE_WORKER + [
        "--run-id", "other", "--agent-id", "a1", "--steps", "5"], env=child_env(), capture_output=True, timeout=60)
    assert other.returncode == 0
    bridge = subprocess.run(bridge_argv(redis_server.url, "--run-id", "run-c", "--entry-events", entry_events, "--")
                            + worker.argv("run-c"),
                            env=child_env(), capture_output=True, text=True, timeout=60)
    assert bridge.returncode == 0, bridge.stdout + bridge.stderr
    out, err = coll.communicate(timeout=60)
    assert coll.returncode == 0, out + err
    assert "Traceback" not in err
    assert "streams   1" in out and "not stored: nothing" in out and "outcome completed" in out
    assert stored_steps(db, "run-c", "agent-1") == expected  # the worker's steps, each once, in order
    store = TelemetrySQLiteStore(db)
    try:
        run = store.run("run-c")
        assert run is not None and run.status == "completed" and run.env_id == "FrozenLake-v1"
        assert [e.episode_index for e in store.episode_records("run-c", "agent-1")] == list(range(30))
        assert store.run("other") is None  # not asked for: left unread
        stored = stored_seqs(store, "run-c", "agent-1")
    finally:
        store.close()
    in_redis = events_in_redis(redis_server, "run-c", "agent-1")
    assert [seq for seq, _ in in_redis] == list(range(1, len(in_redis) + 1))
    assert stored == [seq for seq, topic in in_redis if topic != b"RUN_HEARTBEAT"]  # heartbeats fold into the run row


def test_the_collector_imports_no_qt() -> None:
    probe = "import sys, gym_gui.redis_collect, gym_gui.run; print('qtpy' in sys.modules, 'PyQt5' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], env=child_env(), capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["False", "False"], result.stdout + result.stderr


def test_sigterm_stores_what_was_read_exits_143_and_a_restart_resumes_without_gap_or_duplicate(
        redis_server: RedisServer, tmp_path: Path) -> None:
    go = tmp_path / "go"
    db = tmp_path / "collected.sqlite"
    bridge = subprocess.Popen(bridge_argv(redis_server.url, "--run-id", "run-t", "--") + FAKE_WORKER + [
        "--run-id", "run-t", "--agent-id", "a1", "--steps", "3000", "--wait-for", str(go), "--more-steps", "2000"],
        env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first_part = 1 + 3000 + 300
    try:
        wait_until(lambda: len(redis_seqs(redis_server, "run-t", "a1")) == first_part, 30, message="first part in Redis")
        coll = collector(redis_server.url, db)
        assert coll.stdout is not None
        for line in coll.stdout:
            if line.startswith("streams") and int(line.split()[3]) > 0:
                break  # reading is under way
        coll.send_signal(signal.SIGTERM)
        out, err = coll.communicate(timeout=60)
        assert coll.returncode == 143, out + err
        assert "terminated (SIGTERM)" in out and "summary:" in out
        read = int(out.split(" entries read")[0].rsplit(" ", 1)[1])
        store = TelemetrySQLiteStore(db)
        try:
            assert stored_seqs(store, "run-t", "a1") == list(range(1, read + 1))  # every entry read is stored
            run = store.run("run-t")
            assert run is not None and run.status == "running"  # the remote run goes on
        finally:
            store.close()

        go.touch()  # the worker writes the rest and completes while no collector runs
        b_out, b_err = bridge.communicate(timeout=60)
        assert bridge.returncode == 0, b_out + b_err
        again = collector(redis_server.url, db, "--until-complete")
        out, err = again.communicate(timeout=60)
        assert again.returncode == 0, out + err
        assert "not stored: nothing" in out and "outcome completed" in out
    finally:
        bridge.kill()
        bridge.wait(10)
    total = first_part + 2000 + 200 + 1
    assert redis_seqs(redis_server, "run-t", "a1") == list(range(1, total + 1))
    store = TelemetrySQLiteStore(db)
    try:
        assert stored_seqs(store, "run-t", "a1") == list(range(1, total + 1))  # no gap, no duplicate
        assert store.step_count("run-t", "a1") == 5000
    finally:
        store.close()


def test_a_collector_given_an_unreachable_redis_or_a_command_cannot_start(tmp_path: Path) -> None:
    db = tmp_path / "x.sqlite"
    result = subprocess.run(COLLECT + ["--redis-url", "redis://127.0.0.1:1/0", "--connect-timeout-s", "0.2",
                                       "--db", str(db)], env=child_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "cannot reach Redis" in result.stdout, result.stdout + result.stderr
    assert not db.exists()
    result = subprocess.run(COLLECT + ["--redis-url", "redis://127.0.0.1:1/0", "--", "python", "w.py"],
                            env=child_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "unrecognized arguments" in result.stderr


def test_entries_trimmed_before_they_were_read_are_reported_and_exit_3(
        redis_server: RedisServer, tmp_path: Path) -> None:
    bridge = subprocess.run(bridge_argv(redis_server.url, "--run-id", "run-l", "--retention", "100", "--")
                            + FAKE_WORKER + ["--run-id", "run-l", "--agent-id", "a1", "--steps", "3000"],
                            env=child_env(), capture_output=True, text=True, timeout=60)
    assert bridge.returncode == 0, bridge.stdout + bridge.stderr
    held = redis_seqs(redis_server, "run-l", "a1")
    assert held[0] > 1 and held == list(range(held[0], held[-1] + 1))
    db = tmp_path / "collected.sqlite"
    coll = collector(redis_server.url, db, "--until-complete")
    out, err = coll.communicate(timeout=60)
    assert coll.returncode == 3, out + err
    assert f"lost in Redis (reported by the source): {held[0] - 1} (run-l/a1 1..{held[0] - 1})" in out
    store = TelemetrySQLiteStore(db)
    try:
        assert stored_seqs(store, "run-l", "a1") == held
    finally:
        store.close()


def test_a_stream_another_live_collector_writes_is_left_unread_and_exits_1(
        redis_server: RedisServer, tmp_path: Path) -> None:
    go = tmp_path / "go"
    db = tmp_path / "collected.sqlite"
    bridge = subprocess.Popen(bridge_argv(redis_server.url, "--run-id", "run-o", "--") + FAKE_WORKER + [
        "--run-id", "run-o", "--agent-id", "a1", "--steps", "20", "--wait-for", str(go), "--more-steps", "10"],
        env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = collector(redis_server.url, db, "--until-complete")
    try:
        assert first.stdout is not None
        for line in first.stdout:
            if line.startswith("streams") and int(line.split()[5]) == 1 + 20 + 2:
                break  # the first collector owns the stream and stored its first part
        second = collector(redis_server.url, db, "--idle-exit-s", "1")
        out, err = second.communicate(timeout=60)
        assert second.returncode == 1, out + err
        assert "is being written by another live process" in out and f"pid {first.pid}" in out
        go.touch()
        rest, err = first.communicate(timeout=60)
        assert first.returncode == 0, rest + err
    finally:
        go.touch()
        bridge.communicate(timeout=60)
        first.kill()
        first.wait(10)
    store = TelemetrySQLiteStore(db)
    try:
        assert stored_seqs(store, "run-o", "a1") == list(range(1, 1 + 30 + 3 + 1 + 1))
    finally:
        store.close()
