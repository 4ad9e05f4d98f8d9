"""redis_bridge on the worker side, as a real subprocess (and in-process where its state is observed).

Worker -> TelemetryProxy -> private RunBus -> RedisPump -> Redis -> RedisTelemetrySource -> RunBus
-> DbSink -> SQLite: every event once and in order; numbering continued by a restarted bridge; a
Redis outage paused the worker and lost nothing; the exit codes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from gym_gui.ingest.worker_specs import WorkerSpec
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore
from gym_gui.transport.redis_bridge import BRIDGE_CLIENT_NAME, RedisBridge
from gym_gui.transport.redis_client import make_client
from gym_gui.transport.redis_keys import stream_key
from gym_gui.transport.redis_packed import decode_packed
from gym_gui.transport.redis_source import RedisTelemetrySource
from gui_side import GuiSide, stored_seqs
from redis_helpers import RedisServer, bridge_argv, child_env, free_port, wait_until

FAKE_WORKER = [sys.executable, str(Path(__file__).with_name("redis_fake_worker.py"))]


def run_bridge(argv: list[str], timeout_s: float = 30.0) -> tuple[int, str, str]:
    proc = subprocess.run(argv, env=child_env(), capture_output=True, text=True, timeout=timeout_s)
    return proc.returncode, proc.stdout, proc.stderr


def summary_of(stdout: str) -> dict[str, str]:
    lines = [line for line in stdout.splitlines() if line.startswith("redis_bridge: outcomes=")]
    assert len(lines) == 1, stdout
    return dict(item.split("=", 1) for item in lines[0].split(" ")[1:])


def entries(server: RedisServer, run_id: str, agent_id: str) -> list[tuple[int, dict[bytes, bytes]]]:
    """Every event of the stream as ``(seq_id, {b"topic": ...})``: a format-2 entry gives its events."""
    with server.client() as c:
        raw_entries = c.xrange(stream_key(run_id, agent_id))
    out: list[tuple[int, dict[bytes, bytes]]] = []
    for raw, fields in raw_entries:
        seq = int(raw.split(b"-")[0])
        if fields.get(b"v") == b"2":
            for unit_seq, evt in decode_packed((run_id, agent_id), raw, fields[b"events"], seq):
                out.append((unit_seq, {b"topic": evt.topic.name.encode()}))
        else:
            out.append((seq, fields))
    return out


ENTRY_EVENTS = pytest.mark.parametrize("entry_events", ["1", "16"], ids=["format1", "format2"])


@ENTRY_EVENTS
def test_a_q_learning_run_through_the_bridge_is_stored_exactly_once_in_order(
        qtbot: Any, redis_server: RedisServer, store: TelemetrySQLiteStore,
        sources: list[RedisTelemetrySource], entry_events: str) -> None:
    gui = GuiSide(store, redis_server.url, sources).start()
    worker = WorkerSpec(env_id="FrozenLake-v1", episodes=20, seed=2, agent_id="agent-1", heartbeat_interval_s=0.05)
    argv = bridge_argv(redis_server.url, "--run-id", "run-q", "--batch-size", "16", "--entry-events", entry_events,
                       "--") + worker.argv("run-q")
    with qtbot.waitSignal(gui.sink.run_persisted, timeout=30_000, check_params_cb=lambda r: r == "run-q"):
        proc = subprocess.Popen(argv, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, out + err
    summary = summary_of(out)
    assert summary["outcomes"] == "run-q:completed" and summary["duplicates"] == "0"
    assert summary["unsent"] == "0" and summary["rejected_lines"] == "0"

    in_redis = entries(redis_server, "run-q", "agent-1")
    seqs = [seq for seq, _ in in_redis]
    assert seqs == list(range(1, len(seqs) + 1)) and int(summary["added"]) == len(seqs)
    assert gui.received_seqs("run-q", "agent-1") == seqs  # the source read each entry once
    heartbeats = {seq for seq, fields in in_redis if fields[b"topic"] == b"RUN_HEARTBEAT"}
    assert stored_seqs(store, "run-q", "agent-1") == [s for s in seqs if s not in heartbeats]
    steps = store._reader().execute(
        "SELECT seq_id, episode_index, step_index FROM steps WHERE run_id = 'run-q' ORDER BY seq_id").fetchall()
    assert [(e, s) for _, e, s in steps] == sorted((e, s) for _, e, s in steps)
    episodes = store.episode_records("run-q", "agent-1")
    assert [e.episode_index for e in episodes] == list(range(20))
    assert sum(e.length or 0 for e in episodes) == len(steps) == gui.source.stats()["published"]["STEP_APPENDED"]
    run = store.run("run-q")
    assert run is not None and run.outcome == "completed" and run.env_id == "FrozenLake-v1"
    assert store.max_seq_id("run-q", "agent-1") == seqs[-1]
    gui.close()


@ENTRY_EVENTS
def test_a_restarted_bridge_continues_the_streams_numbering(redis_server: RedisServer, entry_events: str) -> None:
    argv = bridge_argv(redis_server.url, "--run-id", "run-b", "--entry-events", entry_events, "--") + FAKE_WORKER + [
        "--run-id", "run-b", "--agent-id", "a1", "--steps", "25"]
    per_run = 1 + 25 + 2 + 1  # started, steps, episodes, completed
    for n in (1, 2):
        code, out, err = run_bridge(argv)
        assert code == 0, out + err
        summary = summary_of(out)
        assert (summary["added"], summary["duplicates"], summary["unsent"]) == (str(per_run), "0", "0")
    in_redis = entries(redis_server, "run-b", "a1")
    assert [seq for seq, _ in in_redis] == list(range(1, 2 * per_run + 1))  # no id reused, none lost
    topics = [fields[b"topic"] for _, fields in in_redis]
    assert topics[per_run] == b"RUN_STARTED" and topics[per_run - 1] == topics[-1] == b"RUN_COMPLETED"


def test_a_redis_outage_pauses_the_worker_and_loses_nothing(own_redis: Any, tmp_path: Path) -> None:
    server = own_redis(appendonly=True)
    go = tmp_path / "go"
    client = make_client(server.url, client_name=BRIDGE_CLIENT_NAME)
    bridge = RedisBridge(client, run_id="run-o", batch_size=100, high_water=300, low_water=100,
                         retry_max_s=0.1, flush_timeout_s=20)
    argv = FAKE_WORKER + ["--run-id", "run-o", "--agent-id", "a1", "--steps", "50",
                          "--wait-for", str(go), "--more-steps", "5000"]
    total = 1 + 5050 + 505 + 1
    result: dict[str, int] = {}
    runner = threading.Thread(target=lambda: result.setdefault("code", bridge.run(argv)), name="bridge-run",
                              daemon=True)
    runner.start()
    try:
        with server.client() as c:
            wait_until(lambda: c.xlen(stream_key("run-o", "a1")) == 1 + 50 + 5, message="the first part in Redis")
        server.stop()
        go.touch()  # the worker writes the rest while Redis is down
        wait_until(lambda: bridge.pump.gate.is_paused and bridge.pump.stats()["connection_errors"] >= 1,
                   message="back-pressure on the worker while Redis is down")
        assert not bridge.pump.connected
        assert bridge.proxy.stats()["lines_read"] < total  # the proxy stopped reading the worker
        assert bridge.pump.backlog() < 2_000  # bounded: the high-water mark plus what one read brought
    finally:
        if server.proc is None:
            server.start()  # also after a failed check, so the bridge can finish
        go.touch()
        runner.join(30)
        if runner.is_alive():
            bridge.request_stop()
            runner.join(30)
        client.close()
    assert not runner.is_alive() and result["code"] == 0
    assert bridge.pump.stats()["reconnects"] >= 1 and bridge.flushed
    seqs = [seq for seq, _ in entries(server, "run-o", "a1")]
    assert seqs == list(range(1, total + 1))


def test_a_failing_worker_exits_1_and_its_failure_reaches_redis(redis_server: RedisServer) -> None:
    argv = bridge_argv(redis_server.url, "--") + FAKE_WORKER + [
        "--run-id", "run-f", "--agent-id", "a1", "--steps", "3", "--exit-code", "3"]
    code, out, err = run_bridge(argv)
    assert code == 1, out + err
    assert summary_of(out)["outcomes"] == "run-f:failed"
    last_seq, last = entries(redis_server, "run-f", "a1")[-1]
    assert last_seq == 5 and last[b"topic"] == b"RUN_COMPLETED"
    payload = last[b"payload"].decode()
    assert '"outcome":"failed"' in payload and '"exit_code":3' in payload and "fails on purpose" in payload


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_or_sighup_cancels_the_worker_and_exits_130(redis_server: RedisServer, signum: int) -> None:
    argv = bridge_argv(redis_server.url, "--") + FAKE_WORKER + [
        "--run-id", "run-c", "--agent-id", "a1", "--steps", "20", "--hang"]
    proc = subprocess.Popen(argv, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: len(entries(redis_server, "run-c", "a1")) == 1 + 20 + 2, message="the worker's lines")
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, out + err
    assert summary_of(out)["outcomes"] == "run-c:cancelled"
    _, last = entries(redis_server, "run-c", "a1")[-1]
    assert last[b"topic"] == b"RUN_COMPLETED" and b'"outcome":"cancelled"' in last[b"payload"]


def test_a_bridge_stopped_before_its_worker_wrote_a_line_exits_130(redis_server: RedisServer, tmp_path: Path) -> None:
    started = tmp_path / "started"
    worker = [sys.executable, "-c", f"import pathlib, threading; pathlib.Path({str(started)!r}).touch(); "
                                    "threading.Event().wait()"]  # a worker still loading its model
    proc = subprocess.Popen(bridge_argv(redis_server.url, "--") + worker, env=child_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_until(started.exists, message="the worker's start")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, out + err
    assert summary_of(out)["outcomes"] == "none"


def test_rejected_worker_lines_make_a_completed_bridge_exit_3(redis_server: RedisServer) -> None:
    argv = bridge_argv(redis_server.url, "--") + FAKE_WORKER + [
        "--run-id", "run-r", "--agent-id", "a1", "--steps", "5", "--bad-lines", "2"]
    code, out, err = run_bridge(argv)
    assert code == 3, out + err
    summary = summary_of(out)
    assert summary["outcomes"] == "run-r:completed" and summary["rejected_lines"] == "2", out
    assert len(entries(redis_server, "run-r", "a1")) == 1 + 5 + 1  # every valid record was sent


def faulty_bridge_argv(fault: str, url: str, *options: str) -> list[str]:
    return [sys.executable, str(Path(__file__).with_name("redis_bridge_faulty.py")), fault,
            "--redis-url", url, *options]


def test_the_bridge_exits_by_itself_when_the_proxys_reader_dies(redis_server: RedisServer) -> None:
    argv = faulty_bridge_argv("finish-raises", redis_server.url, "--") + FAKE_WORKER + [
        "--run-id", "run-d", "--agent-id", "a1", "--steps", "20", "--exit-code", "3"]
    code, out, err = run_bridge(argv, timeout_s=30)  # it used to wait for ever
    assert code == 1, out + err
    summary = summary_of(out)
    assert summary["ingest"] == "broken" and summary["outcomes"] == "none" and summary["unsent"] == "0"
    assert "reader thread ended without finishing" in out and "injected fault" in err
    assert [seq for seq, _ in entries(redis_server, "run-d", "a1")] == list(range(1, 24))  # all it read is sent


EXHAUSTING_WORKER = """
import json, sys
def line(**kw):
    base = {"v": 1, "run_id": "run-x", "agent_id": "a1", "ts": "2026-12-01T00:00:00+00:00"}
    sys.stdout.write(json.dumps({**base, **kw}) + "\\n")
line(kind="run_started", seq=2**63 - 1, env_id="Fake-v0", config={})
line(kind="step", episode_index=0, step_index=0, action=0, observation=0, reward=0.0, terminated=False,
     truncated=False, info={}, render_payload=None)
line(kind="run_completed", outcome="completed", summary={})
"""


def test_a_worker_that_uses_the_last_seq_id_ends_the_bridge_with_its_records_counted(
        redis_server: RedisServer) -> None:
    argv = bridge_argv(redis_server.url, "--") + [sys.executable, "-c", EXHAUSTING_WORKER]
    code, out, err = run_bridge(argv, timeout_s=30)  # the reader used to die here and the bridge to hang
    assert code == 1, out + err
    summary = summary_of(out)
    assert summary["added"] == "1" and summary["unsent"] == "0" and int(summary["rejected_lines"]) >= 1
    assert [seq for seq, _ in entries(redis_server, "run-x", "a1")] == [2**63 - 1]


def test_sigterm_ends_the_bridge_when_the_proxys_reader_hangs(redis_server: RedisServer) -> None:
    argv = faulty_bridge_argv("finish-hangs", redis_server.url, "--stop-timeout-s", "1", "--flush-timeout-s", "1",
                              "--") + FAKE_WORKER + ["--run-id", "run-h", "--agent-id", "a1", "--steps", "20", "--hang"]
    proc = subprocess.Popen(argv, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: len(entries(redis_server, "run-h", "a1")) == 1 + 20 + 2, message="the worker's lines")
        os.kill(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=20)  # it used to ignore SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, out + err
    assert summary_of(out)["ingest"] == "broken" and "did not finish within 1.0 s" in out


def test_a_second_sigterm_stops_waiting_for_an_unreachable_redis(own_redis: Any, tmp_path: Path) -> None:
    server = own_redis()
    go = tmp_path / "go"
    argv = bridge_argv(server.url, "--retry-max-s", "0.1", "--flush-timeout-s", "120", "--") + FAKE_WORKER + [
        "--run-id", "run-w", "--agent-id", "a1", "--steps", "5", "--wait-for", str(go), "--more-steps", "10"]
    proc = subprocess.Popen(argv, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    retrying, stopping = threading.Event(), threading.Event()
    err_lines: list[str] = []

    def read_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            err_lines.append(line)
            if "Redis unavailable" in line:
                retrying.set()
            if "SIGTERM: stopping the worker" in line:
                stopping.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        wait_until(lambda: len(entries(server, "run-w", "a1")) == 1 + 5, message="the first part in Redis")
        server.stop()
        go.touch()  # the worker writes the rest and ends; the bridge cannot send it
        assert retrying.wait(20), "".join(err_lines)
        os.kill(proc.pid, signal.SIGTERM)
        assert stopping.wait(20), "".join(err_lines)  # two signals at once would be delivered as one
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)  # not the 120 s flush timeout
        except subprocess.TimeoutExpired:
            pytest.fail("".join(err_lines))
        assert proc.stdout is not None
        out = proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(5)
    assert proc.returncode == 130, out + "".join(err_lines)
    summary = summary_of(out)
    assert int(summary["unsent"]) > 0 and "were not sent to Redis" in out


def test_exit_2_when_the_worker_or_redis_cannot_be_reached(redis_server: RedisServer) -> None:
    code, out, err = run_bridge(bridge_argv(redis_server.url, "--", "/nonexistent/worker-binary"))
    assert code == 2, out + err
    with redis_server.client() as c:
        assert c.dbsize() == 0  # nothing was published
    code, out, err = run_bridge(bridge_argv(f"redis://127.0.0.1:{free_port()}/0", "--connect-timeout-s", "0.3",
                                            "--") + FAKE_WORKER + ["--run-id", "r", "--agent-id", "a"])
    assert code == 2 and "cannot reach Redis" in out, out + err
    code, out, err = run_bridge(bridge_argv(redis_server.url))  # no worker command
    assert code == 2 and "worker command" in err



def test_the_bridge_returns_when_the_run_ends_not_a_poll_interval_later(redis_server: RedisServer) -> None:
    """The proxy wakes the pump once it finished: a bridge polling every 10 minutes still returns
    as soon as the worker's run is in Redis."""
    client = make_client(redis_server.url, client_name=BRIDGE_CLIENT_NAME)
    bridge = RedisBridge(client, run_id="run-w")
    argv = FAKE_WORKER + ["--run-id", "run-w", "--agent-id", "a1", "--steps", "20"]
    result: dict[str, int] = {}
    runner = threading.Thread(target=lambda: result.setdefault("code", bridge.run(argv, poll_s=600.0)),
                              name="bridge-run", daemon=True)
    runner.start()
    try:
        runner.join(60)
    finally:
        if runner.is_alive():
            bridge.force_stop()
            runner.join(30)
        client.close()
    assert result == {"code": 0} and bridge.flushed
    assert entries(redis_server, "run-w", "a1")[-1][1][b"topic"] == b"RUN_COMPLETED"


def test_the_worker_starts_before_the_redis_client_is_made(redis_server: RedisServer) -> None:
    """With ``connect`` the bridge spawns the worker first and makes its client after (the import of
    redis-py runs beside the worker's start); the proxy holds the worker's events until the pump
    exists, and every one of them reaches Redis."""
    made: list[Any] = []
    bridge: RedisBridge

    def connect() -> Any:
        process = bridge.proxy.process
        made.append(process is not None and process.pid)
        client = make_client(redis_server.url, client_name=BRIDGE_CLIENT_NAME)
        made.append(client)
        return client

    bridge = RedisBridge(connect=connect, run_id="run-e")
    assert not hasattr(bridge, "pump")  # nothing of redis-py's side before the worker runs
    argv = FAKE_WORKER + ["--run-id", "run-e", "--agent-id", "a1", "--steps", "50"]
    try:
        code = bridge.run(argv)
    finally:
        for client in made[1:]:
            client.close()
    assert code == 0 and bridge.flushed
    assert isinstance(made[0], int) and made[0] > 0  # the worker had a pid when the client was made
    seqs = [seq for seq, _ in entries(redis_server, "run-e", "a1")]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= 52  # run started, 50 steps, ..., completed


def test_a_bridge_takes_a_client_or_connect_not_both() -> None:
    with pytest.raises(ValueError):
        RedisBridge()
    with pytest.raises(ValueError):
        RedisBridge(object(), connect=object)  # type: ignore[arg-type]


def test_the_bridge_module_imports_without_redis_py() -> None:
    """What runs before the worker is spawned does not import redis-py (its import is the longest
    part of the bridge's start)."""
    code = ("import sys, gym_gui.transport.redis_bridge as b; b.build_parser(); "
            "print(sorted(m for m in sys.modules if m == 'redis' or m.startswith('redis.')))")
    result = subprocess.run([sys.executable, "-c", code], env=child_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stdout + result.stderr


@pytest.mark.parametrize("query", ["", "?health_check_interval=0"], ids=["preflight", "redis-py-first"])
def test_the_command_sends_the_whole_run_whichever_way_it_reached_redis(redis_server: RedisServer, query: str) -> None:
    """A plain URL is checked by the stdlib preflight (the worker starts before redis-py is
    imported); a URL with options is left to redis-py, which is reached before the worker starts.
    Both print where they send and send every event once."""
    code, out, err = run_bridge(bridge_argv(redis_server.url + query, "--")
                                + FAKE_WORKER + ["--run-id", "run-u", "--agent-id", "a1", "--steps", "30"])
    assert code == 0, out + err
    assert f"-> 127.0.0.1:{redis_server.port}/0" in out
    summary = summary_of(out)
    seqs = [seq for seq, _ in entries(redis_server, "run-u", "a1")]
    assert seqs == list(range(1, len(seqs) + 1)) and int(summary["added"]) == len(seqs) >= 32
    assert summary["outcomes"] == "run-u:completed" and summary["unsent"] == "0"
