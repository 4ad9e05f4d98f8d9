"""A burst of rejected lines is logged rate-limited, and its end is never silent: when the worker's
output ends, the lines still suppressed are counted in one more log line per reason."""

from __future__ import annotations

import io
import logging

import pytest

from gym_gui.ingest.proxy import TelemetryProxy
from gym_gui.telemetry.run_bus import RunBus


def test_the_rejections_suppressed_at_the_end_of_a_burst_are_logged_with_their_count(
        caplog: pytest.LogCaptureFixture) -> None:
    proxy = TelemetryProxy(RunBus(), run_id="r1", decode_in_subprocess=False, name="worker")
    caplog.set_level(logging.WARNING, logger="gym_gui.ingest")
    proxy.attach(io.BytesIO(b"{broken\n" * 200 + b"[1]\n" * 3))
    assert proxy.wait(10)
    assert proxy.rejected_counts() == {"invalid_json": 200, "not_an_object": 3}
    lines = [r.getMessage() for r in caplog.records]
    for reason, n in (("invalid_json", 200), ("not_an_object", 3)):
        shown = [m for m in lines if f"rejected ({reason})" in m]
        # a burst: a line a second, each saying how many it stands for, and the rest counted at the end
        in_lines = len(shown) + sum(int(m.rsplit("(", 1)[1].split()[0]) for m in shown if "similar suppressed" in m)
        assert 1 <= len(shown) < n and f"{n - in_lines} similar worker warnings suppressed ({reason})" in lines, lines
    assert proxy.stop(1)
