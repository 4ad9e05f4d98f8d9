"""The proxy's ingest process: decodes on another core, survives Ctrl+C, and its death is handled."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from gym_gui.ingest.chunk_decoder import ChunkDecoder
from gym_gui.ingest.frames import TOPICS, read_frame
from gym_gui.ingest.ingest_child import child_argv
from gym_gui.ingest.line_reader import LineReader
from gym_gui.ingest.proxy import TelemetryProxy
from gym_gui.telemetry.events import Topic
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.telemetry.step_payload import StepPayload

LINES = b"".join([
    json.dumps({"v": 1, "kind": "step", "run_id": "r1", "episode_index": 0, "step_index": i, "action": 0,
                "observation": i, "reward": 1.0, "terminated": False, "truncated": False}).encode() + b"\n"
    for i in range(5)
]) + b"\n[1]\n" + b"x" * 300 + b"\n{\"v\": 1, \"kind\": \"ste"


def test_the_child_decodes_exactly_like_the_in_process_decoder() -> None:
    argv = child_argv(default_agent_id="agent6", default_run_id="r0", max_line_bytes=200, read_chunk_bytes=64)
    result = subprocess.run(argv, input=LINES, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    frames = []
    pipe = io.BytesIO(result.stdout)
    while (frame := read_frame(pipe)) is not None:
        frames.append(frame)
    decoder = ChunkDecoder(default_agent_id="agent6", default_run_id="r0", max_line_bytes=200)
    expected = [decoder.decode(c, "now") for c in LineReader(io.BytesIO(LINES), max_line_bytes=200, read_chunk_bytes=64)]
    assert sum(f[0] for f in frames) == sum(e[0] for e in expected) == 9
    assert sum(f[1] for f in frames) == 1  # the blank line
    def timeless(items: list[tuple]) -> list[tuple]:  # records without a time are stamped on arrival
        return [item[:4] + item[5:] if len(item) == 6 else item for item in items]

    got_items = [(TOPICS[item[0]],) + item[1:5] + (StepPayload(item[5]) if type(item[5]) is tuple else item[5],)
                 if len(item) == 6 else item for f in frames for item in f[2]]
    assert any(type(item[5]) is StepPayload for item in got_items if len(item) == 6)
    assert timeless(got_items) == timeless([item for e in expected for item in e[2]])
    assert [i[0] for i in got_items if len(i) == 3] == ["not_an_object", "oversized_line", "partial_last_line"]
    assert [i[3] for i in got_items if len(i) == 6] == [None] * 5  # no worker seq: the parent assigns it


def test_ctrl_c_to_the_process_group_does_not_stop_decoding(tmp_path: Path) -> None:
    gate = tmp_path / "gate.fifo"
    os.mkfifo(gate)
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(f"""
        import json
        def step(i):
            print(json.dumps({{"v": 1, "kind": "step", "run_id": "r1", "episode_index": 0, "step_index": i,
                               "action": 0, "observation": 0, "reward": 0.0, "terminated": False,
                               "truncated": False}}), flush=True)
        step(0)
        open({str(gate)!r}).close()  # blocks until the test has interrupted the ingest process
        step(1)
        step(2)
    """))
    bus = RunBus()
    steps = bus.subscribe(Topic.STEP_APPENDED, "test", maxlen=None)
    proxy = TelemetryProxy(bus)
    proxy.spawn([sys.executable, str(script)])
    assert steps.wait(30)
    assert proxy._ingest_proc is not None
    proxy._ingest_proc.send_signal(signal.SIGINT)  # what a terminal's Ctrl+C sends to the whole group
    with open(gate, "w"):
        pass  # let the worker go on
    assert proxy.wait(30)
    assert [e.payload["step_index"] for e in steps.drain()] == [0, 1, 2]
    assert proxy._ingest_proc.returncode == 0


def test_if_the_ingest_process_dies_the_worker_is_stopped_and_the_run_failed(tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent("""
        import json
        i = 0
        while True:
            print(json.dumps({"v": 1, "kind": "step", "run_id": "r1", "episode_index": 0, "step_index": i,
                              "action": 0, "observation": 0, "reward": 0.0, "terminated": False, "truncated": False}),
                  flush=True)
            i += 1  # as fast as the pipe takes it
    """))
    bus = RunBus()
    steps = bus.subscribe(Topic.STEP_APPENDED, "test", maxlen=None)
    done = bus.subscribe(Topic.RUN_COMPLETED, "test", maxlen=None)
    proxy = TelemetryProxy(bus)
    proc = proxy.spawn([sys.executable, str(script)])
    assert steps.wait(30)
    assert proxy._ingest_proc is not None
    proxy._ingest_proc.kill()
    assert proxy.wait(30)
    assert proc.poll() is not None  # the worker does not run on unobserved
    (completion,) = done.drain()
    assert completion.payload["outcome"] == "failed"
    assert proxy.stop(5)


def test_the_pipes_to_and_from_the_ingest_process_hold_many_batches(tmp_path: Path) -> None:
    """The worker's stdout (a full emitter batch is 70-100 KB, more than Linux's default 64 KiB) and
    the frames' pipe both have the enlarged capacity."""
    import fcntl

    from gym_gui.ingest.frames import INGEST_PIPE_BYTES

    script = tmp_path / "worker.py"
    script.write_text("import signal\nsignal.pause()\n")
    proxy = TelemetryProxy(RunBus())
    proxy.spawn([sys.executable, str(script)])
    try:
        assert proxy._ingest_proc is not None and proxy._ingest_proc.stdout is not None
        with open("/proc/sys/fs/pipe-max-size") as limit:
            expected = min(INGEST_PIPE_BYTES, int(limit.read()))
        assert fcntl.fcntl(proxy._ingest_proc.stdout.fileno(), fcntl.F_GETPIPE_SZ) >= expected
        # the worker's stdout is the ingest process's stdin: the same pipe, opened through /proc
        worker_pipe = os.open(f"/proc/{proxy._ingest_proc.pid}/fd/0", os.O_RDONLY | os.O_NONBLOCK)
        try:
            assert fcntl.fcntl(worker_pipe, fcntl.F_GETPIPE_SZ) >= expected
        finally:
            os.close(worker_pipe)
    finally:
        assert proxy.stop(5)
