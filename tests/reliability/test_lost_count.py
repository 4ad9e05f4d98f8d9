"""Issue 10, item 7: when the sink gives up, its lost count covers everything the worker wrote.

The store is full and stays full; the worker has written far more than the back-pressure
high-water mark (the rest waits in the pipes and the ingest child). After the sink gives up, the
proxy reads the rest; every event it publishes is counted as lost, not only the in-memory backlog
at the moment of giving up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore

STEPS = 4000


def test_the_lost_count_includes_what_was_still_in_the_pipes(tmp_path: Path, pipeline: Callable[..., object],
                                                             script: Callable[[str], list[str]]) -> None:
    store = TelemetrySQLiteStore(tmp_path / "full.sqlite")
    # not one more page: every write fails "disk full" (each step has its own long info text: a
    # batch does not fit the free room of the tables' pages and of the pages the migrations freed)
    store.set_max_page_count(store.page_count())
    p = pipeline(store=store, batch_size=50, high_water=100, low_water=20, retry_initial_s=0.01,
                 retry_max_s=0.05, abort_grace_s=2.0)
    worker = script(f"""
        import json, sys
        for i in range({STEPS}):
            sys.stdout.write(json.dumps({{"type": "step", "run_id": "run-r", "episode": 0, "step": i,
                                          "reward": 0.0, "info": {{"pad": "x" * 1000, "i": i}}}}) + "\\n")
        sys.stdout.write(json.dumps({{"event": "run_completed", "run_id": "run-r", "payload": {{}}}}) + "\\n")
    """)
    p.proxy.spawn(worker)
    assert _wait(lambda: p.sink.gate.is_paused, 20), "the proxy never waited for the failing sink"
    assert p.sink.stop(0.5) is False  # the store stays full: the sink gives up
    assert p.proxy.wait(30), "the proxy did not read the rest once the sink had given up"
    published = sum(p.proxy.stats()["events_published"].values())
    assert published == STEPS + 1
    stats = p.sink.stats()
    assert stats["persisted"] == 0
    assert stats["lost"] == published, f"lost {stats['lost']} of {published} unstored events"
    assert p.sink.backlog() == 0


def _wait(predicate: Callable[[], bool], timeout_s: float) -> bool:
    import time
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()
