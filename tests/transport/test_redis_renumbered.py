"""A stream written anew below the seq_ids the GUI already has: reported (counted ranges and a warning),
never skipped silently; what follows it is stored.

A real redis-server, RedisPublisher as the writer that numbers from 1 again (what a bridge without
its seq_id state did), the GUI side's RunBus, RedisTelemetrySource and DbSink into SQLite.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import pytest
import redis

from gym_gui.telemetry.events import TelemetryEvent
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore
from gym_gui.transport.redis_client import make_client
from gym_gui.transport.redis_keys import stream_key
from gym_gui.transport.redis_publisher import RedisPublisher
from gym_gui.transport.redis_renumbered import numbering_restarted
from gym_gui.transport.redis_source import RedisTelemetrySource
from gui_side import GuiSide, stored_seqs
from redis_helpers import RedisServer, wait_until

RUN, AGENT = "run-r", "a1"
KEY = stream_key(RUN, AGENT)


def a_run(factory: Any, count: int, marker: str) -> list[TelemetryEvent]:
    """``count`` events numbered from 1: a run start, then steps carrying ``marker``."""
    f = factory(RUN, AGENT, first_seq=1)
    return [f.started(env_id=marker), *[f.step(0, i, marker=marker) for i in range(count - 1)]]


def publish(server: RedisServer, events: list[TelemetryEvent]) -> None:
    pub = RedisPublisher(make_client(server.url))
    try:
        assert pub.publish(events).added == len(events)
    finally:
        pub.client.close()


def renumbered(gui: GuiSide) -> int:
    return int(gui.source.stats()["renumbered"])


@pytest.mark.parametrize("forget", ["key-deleted", "redis-restarted"])
def test_a_stream_written_anew_below_the_cursor_is_reported_and_its_new_events_are_stored(
        qtbot: Any, own_redis: Callable[..., RedisServer], store: TelemetrySQLiteStore, factory: Any,
        sources: list[RedisTelemetrySource], caplog: pytest.LogCaptureFixture, forget: str) -> None:
    server = own_redis()
    gui = GuiSide(store, server.url, sources).start()
    publish(server, a_run(factory, 40, "first"))
    wait_until(lambda: gui.received_seqs(RUN, AGENT) == list(range(1, 41)), message="the first run read")
    if forget == "key-deleted":
        with server.client() as c:
            c.delete(KEY)
    else:
        server.restart()  # without persistence: the stream and the index are gone
    rerun = a_run(factory, 60, "rerun")  # numbered from 1 again: seq_ids 1..40 are taken
    caplog.set_level(logging.WARNING, logger="gym_gui.transport")
    publish(server, rerun[:25])
    wait_until(lambda: renumbered(gui) == 25, message="the entries below the cursor counted")
    publish(server, rerun[25:])
    wait_until(lambda: gui.received_seqs(RUN, AGENT) == list(range(1, 61)), message="the rerun's new seq_ids read")
    stats = gui.source.stats()
    assert stats["renumbered"] == 40 and stats["renumbered_ranges"] == {f"{RUN}/{AGENT}": [(1, 40)]}
    assert gui.source.renumbered_ranges() == {(RUN, AGENT): [(1, 40)]}
    assert stats["lost"] == 0 and stats["vanished"] == {} and stats["rejected_total"] == 0
    received = sorted((e for e in gui.received() if e.stream == (RUN, AGENT)), key=lambda e: e.seq_id)
    assert [e.payload.get("marker") for e in received[1:40]] == ["first"] * 39  # what was stored stays
    assert [e.payload.get("marker") for e in received[40:]] == ["rerun"] * 20  # the rerun's events beyond it
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"stream {RUN}/{AGENT} was written anew below seq_id 40" in w for w in warnings), warnings
    assert any(f"stream {RUN}/{AGENT} passed seq_id 40 again: 40 renumbered entries were skipped (seq_ids 1..40)"
               in w for w in warnings), warnings
    gui.close()
    assert stored_seqs(store, RUN, AGENT) == list(range(1, 61))


def test_a_gui_started_after_the_stream_was_written_anew_reports_it_too(
        qtbot: Any, redis_server: RedisServer, store: TelemetrySQLiteStore, factory: Any,
        sources: list[RedisTelemetrySource]) -> None:
    first = GuiSide(store, redis_server.url, sources).start()
    publish(redis_server, a_run(factory, 40, "first"))
    wait_until(lambda: first.received_seqs(RUN, AGENT) == list(range(1, 41)), message="the first run read")
    first.close()  # the store holds 1..40
    with redis_server.client() as c:
        c.delete(KEY)
    rerun = a_run(factory, 50, "rerun")
    publish(redis_server, rerun[:25])
    second = GuiSide(store, redis_server.url, sources).start()  # resumes after the stored seq_id 40
    wait_until(lambda: renumbered(second) == 25, message="the renumbered entries found from the stored floor")
    publish(redis_server, rerun[25:])
    wait_until(lambda: second.received_seqs(RUN, AGENT) == list(range(41, 51)), message="the entries beyond 40")
    assert second.source.renumbered_ranges() == {(RUN, AGENT): [(1, 40)]} and renumbered(second) == 40
    second.close()
    assert stored_seqs(store, RUN, AGENT) == list(range(1, 51))


def test_trimming_and_a_writers_skip_are_not_renumbering(
        qtbot: Any, redis_server: RedisServer, store: TelemetrySQLiteStore, factory: Any,
        sources: list[RedisTelemetrySource]) -> None:
    gui = GuiSide(store, redis_server.url, sources, discover_interval_s=0.02).start()
    f = factory(RUN, AGENT, first_seq=1)
    publish(redis_server, [f.started(), *[f.step(0, i) for i in range(29)]])
    wait_until(lambda: len(gui.received_seqs(RUN, AGENT)) == 30, message="the first part read")
    with redis_server.client() as c:
        c.xtrim(KEY, maxlen=0, approximate=False)  # retention: every entry read (the anchor too) is gone
    f.seq += 5  # the writer skips seq_ids 31..35
    publish(redis_server, [f.step(0, i) for i in range(30, 40)])
    wait_until(lambda: gui.received_seqs(RUN, AGENT)[-1:] == [45], message="the second part read")
    checks = gui.source.stats()
    wait_until(lambda: gui.source.stats()["entries_read"] == checks["entries_read"] and renumbered(gui) == 0,
               message="a quiet stream")
    assert gui.source.stats()["renumbered"] == 0 and gui.source.stats()["renumbered_ranges"] == {}
    assert gui.received_seqs(RUN, AGENT) == list(range(1, 31)) + list(range(36, 46))
    gui.close()


def test_a_stream_that_lost_its_last_entries_is_the_same_stream_not_a_renumbered_one(
        qtbot: Any, redis_server: RedisServer, store: TelemetrySQLiteStore, factory: Any,
        sources: list[RedisTelemetrySource]) -> None:
    """A Redis that lost its last writes (AOF everysec after a crash, a failover) numbers below what the GUI
    read, but it is the same stream: the writer re-sends the tail (refused by the GUI as already read) and
    goes on; nothing is counted as renumbered, nothing stored twice."""
    gui = GuiSide(store, redis_server.url, sources, discover_interval_s=0.02).start()
    events = a_run(factory, 50, "only")
    publish(redis_server, events[:40])
    wait_until(lambda: gui.received_seqs(RUN, AGENT) == list(range(1, 41)), message="the first part read")
    with redis_server.client() as c:  # the tail 36..40 is gone and the stream's last id is 35 again
        c.xdel(KEY, *[f"{seq}-1" for seq in range(36, 41)])
        try:
            c.execute_command("XSETID", KEY, "35-1")
        except redis.ResponseError as exc:  # pragma: no cover - a server that refuses to move the last id back
            pytest.skip(f"XSETID to a lower id refused: {exc}")
    checks = gui.source.stats()["entries_read"]
    publish(redis_server, events[35:])  # the writer re-sends its tail, then goes on
    wait_until(lambda: gui.received_seqs(RUN, AGENT)[-1:] == [50], message="the rest read")
    assert gui.source.stats()["entries_read"] == checks + 10  # 41..50: the re-sent tail is below the cursor
    assert renumbered(gui) == 0 and gui.source.stats()["renumbered_ranges"] == {}
    assert gui.received_seqs(RUN, AGENT) == list(range(1, 51))
    gui.close()
    assert stored_seqs(store, RUN, AGENT) == list(range(1, 51))


def entry(seq: int, marker: bytes = b"a") -> tuple[bytes, dict[bytes, bytes]]:
    return f"{seq}-1".encode(), {b"topic": b"STEP_APPENDED", b"ts": marker, b"payload": b"{}"}


def info_of(first: int | None, last: int, deleted: int | None = 0) -> dict[str, Any]:
    info: dict[str, Any] = {"first-entry": entry(first) if first is not None else None,
                            "last-generated-id": f"{last}-1".encode()}
    if deleted is not None:  # Redis >= 7
        info["max-deleted-entry-id"] = f"{deleted}-1".encode() if deleted else b"0-0"
    return info


@pytest.mark.parametrize(("taken", "anchor", "info", "at_anchor", "restarted"), [
    (40, None, info_of(1, 25), None, True),  # numbered below what was taken
    (40, None, info_of(1, 40), None, False),  # the same stream, nothing new
    (40, entry(30), info_of(1, 60), [entry(30)], False),  # the anchor is still there: the same stream
    (40, entry(30), info_of(1, 35), [entry(30)], False),  # the same stream, which lost its tail (AOF everysec)
    (40, entry(30), info_of(1, 60), [entry(30, b"other")], True),  # another event under the anchor's id
    (40, entry(30), info_of(1, 60), [], True),  # the anchor is gone inside the stream, no XDEL: written anew
    (40, entry(30), info_of(1, 60, deleted=30), [], False),  # the anchor was XDELed
    (40, entry(30), info_of(1, 60, deleted=None), [], True),  # Redis < 7: no trace of XDEL
    (40, entry(30), info_of(35, 60), [], False),  # trimmed past the anchor (retention), numbered on
    (40, entry(30), info_of(35, 38), [], True),  # trimmed past the anchor and numbered below what was taken
    (40, entry(30), info_of(None, 60), [], False),  # emptied, numbered on
])
def test_numbering_restarted_tells_a_new_stream_from_trimming_and_xdel(
        taken: int, anchor: Any, info: dict[str, Any], at_anchor: Any, restarted: bool) -> None:
    assert numbering_restarted(taken, anchor, info, at_anchor) is restarted
