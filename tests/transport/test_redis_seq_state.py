"""The bridge's durable seq_id state: a restarted bridge never reuses a seq_id, even when Redis lost
the stream, whether the earlier bridge exited or was killed.

Real files in tmp_path, a real redis-server, the bridge as a subprocess (SIGKILLed where it says so).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from gym_gui.transport.redis_keys import stream_key
from gym_gui.transport.redis_seq_state import DEFAULT_MIN_HEADROOM, SeqState, SeqStateError, default_state_dir
from redis_helpers import RedisServer, bridge_argv, child_env, wait_until

FAKE_WORKER = [sys.executable, str(Path(__file__).with_name("redis_fake_worker.py"))]
KEY = stream_key("run-s", "a1")


def seqs_in_redis(server: RedisServer, run_id: str) -> list[int]:
    with server.client() as c:
        return [int(raw.split(b"-")[0]) for raw, _ in c.xrange(stream_key(run_id, "a1"))]


def summary_of(stdout: str) -> dict[str, str]:
    lines = [line for line in stdout.splitlines() if line.startswith("redis_bridge: outcomes=")]
    assert len(lines) == 1, stdout
    return dict(item.split("=", 1) for item in lines[0].split(" ")[1:])


def run_bridge(server: RedisServer, run_id: str, *options: str, steps: int = 10) -> tuple[int, str, str]:
    argv = bridge_argv(server.url, "--run-id", run_id, *options, "--") + FAKE_WORKER + [
        "--run-id", run_id, "--agent-id", "a1", "--steps", str(steps)]
    proc = subprocess.run(argv, env=child_env(), capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stdout, proc.stderr


def test_the_bound_on_disk_always_covers_what_was_sent_and_is_exact_after_close(tmp_path: Path) -> None:
    state = SeqState(tmp_path / "state", interval_s=30.0, min_headroom=50)
    assert state.prepare() is None
    for seq in range(1, 501):
        state.reserve({KEY: seq})
        bound = state.floor(KEY)
        assert bound is not None and bound >= seq  # a killed bridge could never reuse seq
    # each write reserves >= 50 ahead and the next comes once half is used: at most one per 25 batches
    assert state.stats()["writes"] <= 500 // 25 + 1
    assert state.close()
    assert state.floor(KEY) == 500
    record = json.loads(state.path_of(KEY).read_text())
    assert record["stream_key"] == KEY and record["closed"] is True and record["last_sent_seq_id"] == 500
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == [state.path_of(KEY).name]  # no temp files


def test_the_renewal_thread_moves_the_bound_without_the_publisher_waiting(tmp_path: Path) -> None:
    state = SeqState(tmp_path / "state", interval_s=0.02, min_headroom=1000)
    assert state.prepare() is None
    state.reserve({KEY: 5})  # the stream's first batch: one synchronous write
    assert state.stats()["sync_writes"] == 1 and state.floor(KEY) == 1005
    state.reserve({KEY: 600})  # within the reservation: no write on the publishing thread
    assert state.stats()["sync_writes"] == 1
    wait_until(lambda: state.floor(KEY) == 600 + 4 * 595, message="the renewed bound")
    assert state.stats()["sync_writes"] == 1 and state.stats()["errors"] == 0
    assert state.close() and state.floor(KEY) == 600


def test_a_claimed_stream_is_sent_without_a_synchronous_write(tmp_path: Path) -> None:
    """The first reservation is written when the numbering starts, the next ones in the background
    once half of the current one is used: the publishing thread never waits for the disk."""
    state = SeqState(tmp_path / "state", interval_s=30.0, min_headroom=1000)
    assert state.prepare() is None
    state.claim(KEY, 70)  # numbered after 70 (kept by an earlier bridge, or Redis's last id)
    assert state.floor(KEY) == 1070 and state.stats()["writes"] == 1
    for seq in range(71, 700, 50):
        state.reserve({KEY: seq})  # beyond 570 (half the reservation): the renewal thread is woken
    wait_until(lambda: (state.floor(KEY) or 0) > 1070, message="the renewal woken before the reservation ran out")
    assert state.stats()["sync_writes"] == 0
    assert state.close() and state.floor(KEY) == 671


def test_a_failing_state_write_is_counted_retried_at_a_bounded_rate_and_recovers(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    state = SeqState(folder, interval_s=0.05, min_headroom=10)
    assert state.prepare() is None
    state.reserve({KEY: 5})
    shutil.rmtree(folder)
    folder.write_text("")  # the dir is gone (a file where it was): every write fails
    state.reserve({KEY: 100})  # beyond the bound: the write fails, the batch goes out anyway
    assert state.stats()["errors"] == 1 and "NotADirectoryError" in str(state.stats()["last_error"])
    for seq in range(101, 400):
        state.reserve({KEY: seq})  # each batch wakes the renewal thread; it retries once per interval
    assert state.stats()["errors"] < 30
    folder.unlink()
    folder.mkdir()  # the disk is back
    wait_until(lambda: (state.floor(KEY) or 0) >= 399, message="the bound written again")
    assert state.close() and state.floor(KEY) == 399


def test_a_damaged_state_file_is_an_error_not_a_silent_restart_from_1(tmp_path: Path) -> None:
    state = SeqState(tmp_path)
    assert state.floor(KEY) is None  # a stream never sent from this machine
    state.path_of(KEY).write_text("{not json")
    with pytest.raises(SeqStateError, match="cannot read"):
        state.floor(KEY)
    state.path_of(KEY).write_text(json.dumps({"stream_key": KEY, "bound_seq_id": -3}))
    with pytest.raises(SeqStateError, match="no valid bound"):
        state.floor(KEY)


def test_the_default_state_dir_follows_xdg_state_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_state_dir() == tmp_path / "gym_gui" / "redis-bridge"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/path")  # not absolute: ignored, as the spec says
    assert default_state_dir() == Path.home() / ".local" / "state" / "gym_gui" / "redis-bridge"


def test_a_bridge_restarted_after_its_stream_was_deleted_numbers_on(redis_server: RedisServer) -> None:
    code, out, err = run_bridge(redis_server, "run-d")
    assert code == 0, out + err
    first = seqs_in_redis(redis_server, "run-d")
    assert first == list(range(1, 1 + 1 + 10 + 1 + 1))
    with redis_server.client() as c:
        c.delete(stream_key("run-d", "a1"))  # an operator's DEL, or a Redis that lost its data
    code, out, err = run_bridge(redis_server, "run-d")
    assert code == 0, out + err
    assert seqs_in_redis(redis_server, "run-d") == list(range(first[-1] + 1, 2 * first[-1] + 1))  # exactly on
    assert summary_of(out)["state_errors"] == "0"


def test_a_killed_bridge_is_never_followed_by_a_reused_seq_id(redis_server: RedisServer, tmp_path: Path) -> None:
    """SIGKILL leaves no time to save the last seq_id: the reservation on disk still covers what was sent."""
    go = tmp_path / "go"
    argv = bridge_argv(redis_server.url, "--run-id", "run-k", "--batch-size", "8", "--") + FAKE_WORKER + [
        "--run-id", "run-k", "--agent-id", "a1", "--steps", "200", "--wait-for", str(go), "--more-steps", "10"]
    proc = subprocess.Popen(argv, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: len(seqs_in_redis(redis_server, "run-k")) == 1 + 200 + 20, message="the first part")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        go.touch()  # a worker that outlived the bridge ends
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.communicate()
    sent = seqs_in_redis(redis_server, "run-k")
    with redis_server.client() as c:
        c.delete(stream_key("run-k", "a1"))
    code, out, err = run_bridge(redis_server, "run-k")
    assert code == 0, out + err
    again = seqs_in_redis(redis_server, "run-k")
    assert again[0] > sent[-1]  # nothing the killed bridge sent is numbered again
    assert again[0] <= sent[-1] + max(DEFAULT_MIN_HEADROOM, 4 * len(sent)) + 1  # it skips at most the reservation
    assert again == list(range(again[0], again[0] + len(again)))


def test_an_unusable_state_dir_stops_the_bridge_before_the_worker_starts(redis_server: RedisServer,
                                                                          tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, out, err = run_bridge(redis_server, "run-u", "--state-dir", str(blocker / "state"))
    assert code == 2, out + err
    assert "cannot keep the seq_id state in" in out and "--state-dir" in out
    assert seqs_in_redis(redis_server, "run-u") == []


def test_a_damaged_state_file_is_counted_and_reported_by_the_bridge(redis_server: RedisServer, tmp_path: Path) -> None:
    state_dir = tmp_path / "bridge-state"
    SeqState(state_dir).prepare()
    SeqState(state_dir).path_of(stream_key("run-c", "a1")).write_text("garbage")
    code, out, err = run_bridge(redis_server, "run-c", "--state-dir", str(state_dir))
    assert code == 0, out + err
    assert summary_of(out)["state_errors"] == "1"
    assert "could not be kept" in out and "may reuse seq_ids" in out
    assert seqs_in_redis(redis_server, "run-c") == list(range(1, 14))
    assert SeqState(state_dir).floor(stream_key("run-c", "a1")) == 13  # rewritten at exit


def test_the_state_writes_of_concurrent_reservations_keep_the_bound(tmp_path: Path) -> None:
    """The renewal thread and the publisher's synchronous writes interleave: the bound never drops below
    what was reserved before the file was read."""
    state = SeqState(tmp_path / "state", interval_s=0.001, min_headroom=1)
    assert state.prepare() is None
    failures: list[str] = []
    done = threading.Event()

    def publish() -> None:
        for seq in range(1, 3000):
            state.reserve({KEY: seq})
            bound = state.floor(KEY)
            if bound is None or bound < seq:
                failures.append(f"seq {seq} sent beyond the bound {bound}")
        done.set()

    threading.Thread(target=publish, daemon=True).start()
    assert done.wait(60)
    assert failures == []
    assert state.close() and state.floor(KEY) == 2999
