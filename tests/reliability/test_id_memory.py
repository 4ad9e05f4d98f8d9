"""Issue 10, item 5: memory is bounded however many and however long the ids a worker sends.

Ids longer than ``MAX_ID_CHARS`` are counted rejections (nothing of them is kept), a proxy numbers
at most ``max_streams`` streams, and log lines show ids cut short.
"""

from __future__ import annotations

import json
import logging
import tracemalloc

import pytest

from gym_gui.ingest.proxy import TelemetryProxy
from gym_gui.telemetry.run_bus import RunBus


def _step(run_id: str, seq: int | None = None) -> str:
    record = {"type": "step", "run_id": run_id, "episode": 0, "step": 0, "reward": 0.0}
    if seq is not None:
        record["seq"] = seq
    return json.dumps(record)


def test_many_long_distinct_run_ids_keep_nothing() -> None:
    proxy = TelemetryProxy(RunBus(), run_id="mem", decode_in_subprocess=False)
    lines = [_step(f"{i:06d}" + "x" * 65_536) for i in range(150)]  # 150 distinct ids of 64 KiB
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for line in lines:
            proxy.feed_line(line)
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    retained = after - before
    assert retained < 1_000_000, f"{retained} bytes kept for ids that were rejected"  # the ids alone: 9.8 MB
    assert proxy.stats()["rejected"] == {"id_too_long": 150}
    assert proxy.run_ids() == ["mem"]


def test_the_stream_table_is_bounded() -> None:
    proxy = TelemetryProxy(RunBus(), run_id="mem", decode_in_subprocess=False)
    limit = 10_000  # DEFAULT_MAX_STREAMS
    for i in range(limit + 50):
        proxy.feed_line(_step(f"run-{i}"))
    assert len(proxy._last_seq) == limit
    assert proxy.stats()["rejected"] == {"too_many_streams": 50}


def test_log_lines_show_ids_cut_short(caplog: pytest.LogCaptureFixture) -> None:
    proxy = TelemetryProxy(RunBus(), run_id="mem", decode_in_subprocess=False)
    long_id = "r" * 1000  # accepted, but never written to a log in full
    with caplog.at_level(logging.WARNING):
        proxy.feed_line(_step(long_id, seq=10))
        proxy.feed_line(_step(long_id, seq=3))  # goes backwards: reassigned and logged
        proxy.feed_line('{"type": "error", "run_id": "' + long_id + '", "message": "' + "m" * 5000 + '"}')
    messages = [r.getMessage() for r in caplog.records]
    assert any("sent seq" in m for m in messages) and any("reported an error" in m for m in messages)
    assert max(len(m) for m in messages) < 600, max(messages, key=len)[:200]
