"""StoreReader: queries run off the GUI thread, results arrive on it, stop() ends the reader threads."""

from __future__ import annotations

import threading
from typing import Any

from gym_gui.qt.store_reader import StoreReader
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore


def test_query_runs_on_a_reader_thread_and_result_arrives_on_the_gui_thread(
        qtbot: Any, store: TelemetrySQLiteStore, factory: Any) -> None:
    store.write_events(factory("run1", "agent1").run(episodes=3, length=2))
    reader = StoreReader(store)
    gui = threading.get_ident()
    seen: dict[str, Any] = {}

    def query(s: TelemetrySQLiteStore) -> int:
        seen["query_thread"] = threading.get_ident()
        return len(s.episode_records("run1"))

    def done(n: int) -> None:
        seen["done_thread"], seen["episodes"] = threading.get_ident(), n

    assert reader.submit(query, done)
    qtbot.waitUntil(lambda: "episodes" in seen, timeout=5000)
    assert seen == {"query_thread": seen["query_thread"], "done_thread": gui, "episodes": 3}
    assert seen["query_thread"] != gui and reader.pending() == 0
    assert reader.stop(5) and reader.threads_alive() == 0


def test_errors_go_to_on_error_or_the_failed_signal(qtbot: Any, store: TelemetrySQLiteStore) -> None:
    reader = StoreReader(store)
    errors: list[BaseException] = []

    def boom(_s: TelemetrySQLiteStore) -> None:
        raise ValueError("bad query")

    reader.submit(boom, lambda _r: None, errors.append)
    qtbot.waitUntil(lambda: len(errors) == 1, timeout=5000)
    assert isinstance(errors[0], ValueError)
    with qtbot.waitSignal(reader.failed, timeout=5000) as blocker:
        reader.submit(boom, lambda _r: None)
    assert blocker.args == ["ValueError: bad query"]
    assert reader.stop(5)


def test_after_stop_nothing_is_submitted_or_delivered(qtbot: Any, store: TelemetrySQLiteStore) -> None:
    reader = StoreReader(store)
    release = threading.Event()
    delivered: list[Any] = []
    reader.submit(lambda s: release.wait(5), delivered.append)
    release.set()
    assert reader.stop(5) and reader.stop(5)  # idempotent
    assert reader.submit(lambda s: 1, delivered.append) is False
    qtbot.waitUntil(lambda: reader.pending() == 0, timeout=5000)  # the queued delivery ran, and dropped it
    assert delivered == [] and reader.threads_alive() == 0
