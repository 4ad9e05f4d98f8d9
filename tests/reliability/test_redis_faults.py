"""Redis restarted under a running bridge: with persistence nothing is lost, without it exactly the
lost seq_id ranges are reported and everything after the restart arrives. A bridge restarted with
the same run id after Redis lost its stream numbers on after what it sent before (its state dir),
so the GUI stores every new event.

Everything is real: a redis-server on loopback (restarted on the same port), the bridge as a
subprocess running a worker script, and the GUI side's RunBus, RedisTelemetrySource and sink
(``SinkCore``, the logic behind DbSink) writing a SQLite file in tmp_path.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from gym_gui.telemetry.events import TelemetryEvent
from gym_gui.telemetry.sink_core import SinkCore
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore
from gym_gui.transport.redis_entries import STREAM_TOPICS
from gym_gui.transport.redis_keys import stream_key
from gym_gui.transport.redis_source import RedisTelemetrySource

_TRANSPORT_TESTS = Path(__file__).resolve().parents[1] / "transport"
if str(_TRANSPORT_TESTS) not in sys.path:  # its helpers and fixtures are plain modules, not a package
    sys.path.insert(0, str(_TRANSPORT_TESTS))

from redis_fixtures import bridge_state_home, own_redis, sources  # noqa: E402,F401  (fixtures)
from redis_helpers import RedisServer, bridge_argv, child_env, wait_until  # noqa: E402

FAKE_WORKER = [sys.executable, str(_TRANSPORT_TESTS / "redis_fake_worker.py")]
AGENT = "a1"

pytestmark = pytest.mark.redis


TAIL_STEPS = 200


def tail_after_restart(tmp_path: Path) -> list[str]:
    """Worker arguments for a last part written only once ``tmp_path/after`` exists.

    The bridge can publish 20,000 steps before a restart issued after its first 1,000 are in Redis;
    the tests touch ``after`` once Redis has restarted, so the run always goes on after the restart.
    """
    return ["--wait-for", str(tmp_path / "after"), "--more-steps", str(TAIL_STEPS)]


def events_of(steps: int) -> int:
    """Events the fake worker writes for ``steps`` steps: the steps and one episode per 10."""
    return steps + steps // 10


class HeldGate:
    """The sink's gate, which the test can also hold shut (a GUI falling behind, on cue)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.open = threading.Event()
        self.open.set()
        self.parked = threading.Event()  # set once the reader waits on the held gate

    def wait_until_open(self, timeout_s: float | None = None) -> bool:
        if not self.open.is_set():
            self.parked.set()
            if not self.open.wait(timeout_s):
                return False
        return self.inner.wait_until_open(timeout_s)


class RemoteGui:
    """The GUI machine without Qt: a bus, the sink into ``store``, the Redis source and a lossless recorder."""

    def __init__(self, store: TelemetrySQLiteStore, url: str, made: list[RedisTelemetrySource]) -> None:
        self.store = store
        self.bus = RunBus()
        self.recorder = [self.bus.subscribe(t, "recorder", maxlen=None) for t in STREAM_TOPICS]
        self.persisted = threading.Event()
        self.sink = SinkCore(store, self.bus, max_delay_s=0.01, on_run_persisted=lambda _run: self.persisted.set())
        self.sink.start()
        self.gate = HeldGate(self.sink.gate)
        self.source = RedisTelemetrySource(self.bus, url=url, seq_floor=store.max_seq_id, gate=self.gate,
                                           block_ms=50, discover_interval_s=0.05, retry_max_s=0.1)
        made.append(self.source)
        self.source.start()
        self._seen: list[TelemetryEvent] = []

    def received(self) -> list[int]:
        """seq_ids of everything the source published so far, in arrival order."""
        for sub in self.recorder:
            self._seen += sub.drain()
        return [e.seq_id for e in sorted(self._seen, key=lambda e: e.seq_id)]

    def lost(self, run_id: str) -> list[tuple[int, int]]:
        return self.source.lost_ranges().get((run_id, AGENT), [])

    def close(self) -> None:
        assert self.source.stop(10.0)
        assert self.sink.stop(30.0)


@pytest.fixture
def gui(tmp_path: Path, sources: list[RedisTelemetrySource]) -> Iterator[Callable[[str], RemoteGui]]:
    """``gui(url)``: a RemoteGui on ``tmp_path/telemetry.sqlite``; ``close()`` it to restart the GUI."""
    store = TelemetrySQLiteStore(tmp_path / "telemetry.sqlite")
    made: list[RemoteGui] = []

    def start(url: str) -> RemoteGui:
        made.append(RemoteGui(store, url, sources))
        return made[-1]

    yield start
    for g in made:
        g.source.stop(10.0)
        g.sink.stop(30.0)
    store.close()


def stored_seqs(db: Path, run_id: str) -> list[int]:
    """Every stored seq_id of the stream (steps, episodes, run events), read through a connection of its own."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return sorted(r[0] for table in ("steps", "episodes", "run_events") for r in conn.execute(
            f"SELECT seq_id FROM {table} WHERE run_id = ? AND agent_id = ?", (run_id, AGENT)))


def start_bridge(server: RedisServer, run_id: str, *worker_args: str) -> subprocess.Popen[str]:
    argv = bridge_argv(server.url, "--run-id", run_id, "--retry-max-s", "0.1", "--batch-size", "64",
                       "--") + FAKE_WORKER + ["--run-id", run_id, "--agent-id", AGENT, *worker_args]
    return subprocess.Popen(argv, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(bridge: subprocess.Popen[str], timeout_s: float = 60.0) -> str:
    try:
        out, err = bridge.communicate(timeout=timeout_s)
    finally:
        if bridge.poll() is None:
            bridge.kill()
            bridge.wait()
    assert bridge.returncode == 0, out + err
    return out


def in_redis(server: RedisServer, run_id: str) -> int:
    with server.client() as c:
        return int(c.xlen(stream_key(run_id, AGENT)))


def test_redis_restarted_with_aof_while_a_bridge_publishes_loses_nothing(
        own_redis: Any, gui: Callable[[str], RemoteGui], tmp_path: Path) -> None:
    server = own_redis(appendonly=True)
    go = tmp_path / "go"
    g = gui(server.url)
    bridge = start_bridge(server, "run-aof", "--steps", "20", "--wait-for", str(go), "--more-steps", "20000",
                          *tail_after_restart(tmp_path))
    total = 1 + events_of(20) + events_of(20000) + events_of(TAIL_STEPS) + 1
    wait_until(lambda: len(g.received()) == 1 + events_of(20), message="the first part read")
    go.touch()
    wait_until(lambda: in_redis(server, "run-aof") > 1000, message="the bridge publishing")
    server.restart()  # while the worker writes and the bridge sends
    (tmp_path / "after").touch()
    finish(bridge)
    assert g.persisted.wait(30), g.sink.stats()
    assert g.received() == list(range(1, total + 1))  # every event once, nothing lost
    stats = g.source.stats()
    assert stats["lost"] == 0 and stats["lost_ranges"] == {} and stats["vanished"] == {}
    assert stats["connection_errors"] >= 1 and stats["reconnects"] >= 1
    g.close()
    assert stored_seqs(tmp_path / "telemetry.sqlite", "run-aof") == list(range(1, total + 1))


def test_redis_restarted_without_persistence_reports_exactly_what_was_lost(
        own_redis: Any, gui: Callable[[str], RemoteGui], tmp_path: Path) -> None:
    """A live GUI reads through an empty restart: what it had not read is reported lost, to the seq_id."""
    server = own_redis()
    go = tmp_path / "go"
    g = gui(server.url)
    bridge = start_bridge(server, "run-live", "--steps", "20", "--wait-for", str(go), "--more-steps", "20000",
                          *tail_after_restart(tmp_path))
    total = 1 + events_of(20) + events_of(20000) + events_of(TAIL_STEPS) + 1
    wait_until(lambda: len(g.received()) == 1 + events_of(20), message="the first part read")
    go.touch()
    wait_until(lambda: in_redis(server, "run-live") > 1000, message="the bridge publishing")
    server.restart()  # the streams and the index are gone
    (tmp_path / "after").touch()
    finish(bridge)
    assert g.persisted.wait(30), g.sink.stats()
    wait_until(lambda: not g.source.stats()["vanished"], message="the stream written again")
    received = g.received()
    assert len(received) == len(set(received)) and received[-1] == total  # no duplicate; the end arrived
    lost = g.lost("run-live")
    lost_seqs = [s for a, b in lost for s in range(a, b + 1)]
    assert sorted(received + lost_seqs) == list(range(1, total + 1))  # what did not arrive is reported lost
    assert g.source.stats()["lost"] == len(lost_seqs)
    restart_point = lost[-1][1] if lost else 0
    assert set(range(restart_point + 1, total + 1)) <= set(received)  # everything after the loss arrived
    g.close()
    assert stored_seqs(tmp_path / "telemetry.sqlite", "run-live") == received


def test_an_empty_restart_while_the_gui_is_behind_reports_the_unread_entries_lost(
        own_redis: Any, gui: Callable[[str], RemoteGui], tmp_path: Path) -> None:
    server = own_redis()
    go = tmp_path / "go"
    g = gui(server.url)
    bridge = start_bridge(server, "run-behind", "--steps", "20", "--wait-for", str(go), "--more-steps", "20000",
                          *tail_after_restart(tmp_path))
    part1, total = 1 + events_of(20), 1 + events_of(20) + events_of(20000) + events_of(TAIL_STEPS) + 1
    wait_until(lambda: len(g.received()) == part1, message="the first part read")
    g.gate.open.clear()  # the GUI falls behind: its source stops reading after seq 23
    assert g.gate.parked.wait(10)
    go.touch()
    wait_until(lambda: in_redis(server, "run-behind") > part1 + 1000, message="unread entries in Redis")
    server.restart()  # they are gone, while the bridge goes on publishing
    g.gate.open.set()
    (tmp_path / "after").touch()
    finish(bridge)
    assert g.persisted.wait(30), g.sink.stats()
    received = g.received()
    resumed_at = received[part1]  # the first entry read after the restart
    assert resumed_at > part1 + 1000 - 64  # at most one re-sent batch before what Redis held
    assert received == list(range(1, part1 + 1)) + list(range(resumed_at, total + 1))
    wait_until(lambda: g.lost("run-behind") == [(part1 + 1, resumed_at - 1)], message="the exact lost range")
    stats = g.source.stats()
    assert stats["lost"] == resumed_at - 1 - part1 and stats["vanished"] == {}
    g.close()
    assert stored_seqs(tmp_path / "telemetry.sqlite", "run-behind") == received


def test_a_gui_restarted_after_an_empty_redis_restart_finds_the_stream_and_reports_the_gap(
        own_redis: Any, gui: Callable[[str], RemoteGui], tmp_path: Path) -> None:
    server = own_redis()
    go1, go2 = tmp_path / "go1", tmp_path / "go2"
    first = gui(server.url)
    bridge = start_bridge(server, "run-gap", "--steps", "30", "--wait-for", str(go1), "--more-steps", "50",
                          "--wait-for", str(go2), "--more-steps", "20")
    part1, part2 = 1 + events_of(30), events_of(50)  # seq 1..34, then 35..89 while no GUI reads
    wait_until(lambda: len(first.received()) == part1, message="the first part read")
    first.close()  # the GUI quits; its store holds 1..34
    go1.touch()
    wait_until(lambda: in_redis(server, "run-gap") == part1 + part2, message="the second part in Redis")
    server.restart()  # Redis forgets 35..89 (and the index)
    second = gui(server.url)
    wait_until(lambda: second.source.stats()["connected"], message="the restarted GUI connected")
    assert second.source.streams() == []  # nothing to find yet
    go2.touch()  # the worker goes on: its first batch re-indexes the stream
    finish(bridge)
    assert second.persisted.wait(30), second.sink.stats()
    wait_until(lambda: second.lost("run-gap") == [(part1 + 1, part1 + part2)], message="the lost range")
    last = part1 + part2 + events_of(20) + 1
    assert second.received() == list(range(part1 + part2 + 1, last + 1))
    assert second.source.streams() == [("run-gap", AGENT)]
    assert second.source.stats()["lost"] == part2 and second.source.stats()["lost_ranges"] == {
        f"run-gap/{AGENT}": [(part1 + 1, part1 + part2)]}
    second.close()
    assert stored_seqs(tmp_path / "telemetry.sqlite", "run-gap") == list(range(1, part1 + 1)) + list(
        range(part1 + part2 + 1, last + 1))


@pytest.mark.parametrize("gui_behind", [False, True], ids=["gui-caught-up", "gui-behind"])
def test_a_bridge_restarted_after_an_empty_redis_restart_numbers_on_and_nothing_new_is_lost(
        own_redis: Any, gui: Callable[[str], RemoteGui], tmp_path: Path, gui_behind: bool) -> None:
    """Redis forgets the stream between two bridge runs of one run id: the second bridge continues after
    the first one's last seq_id (kept on the worker's machine), the GUI stores all of it; only what Redis
    lost before the GUI read it is missing, and that is reported to the seq_id."""
    server = own_redis()
    go = tmp_path / "go"
    g = gui(server.url)
    first = start_bridge(server, "run-again", "--steps", "20", "--wait-for", str(go), "--more-steps", "200")
    part1, first_total = 1 + events_of(20), 1 + events_of(20) + events_of(200) + 1
    wait_until(lambda: len(g.received()) == part1, message="the first part read")
    if gui_behind:
        g.gate.open.clear()  # the GUI stops reading after seq part1
        assert g.gate.parked.wait(10)
    go.touch()
    finish(first)
    assert in_redis(server, "run-again") == first_total
    if not gui_behind:
        wait_until(lambda: len(g.received()) == first_total, message="the first bridge's run read")
    read_before = len(g.received())
    server.restart()  # the stream and the index are gone; nobody writes until the bridge runs again
    g.gate.open.set()
    second = start_bridge(server, "run-again", "--steps", "30")
    out = finish(second)
    second_seqs = list(range(first_total + 1, first_total + 1 + 1 + events_of(30) + 1))
    wait_until(lambda: g.received()[-1:] == second_seqs[-1:], message="the second bridge's run read")
    assert g.received() == list(range(1, read_before + 1)) + second_seqs  # each new event once, under a new seq_id
    assert "state_errors=0" in out
    lost = [(read_before + 1, first_total)] if read_before < first_total else []
    wait_until(lambda: g.lost("run-again") == lost, message="exactly what Redis lost unread, reported")
    stats = g.source.stats()
    assert stats["lost"] == first_total - read_before and stats["renumbered"] == 0 and stats["vanished"] == {}
    g.close()
    assert stored_seqs(tmp_path / "telemetry.sqlite", "run-again") == g.received()
