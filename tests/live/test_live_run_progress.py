"""Numbers for people and a run's progress text."""

from __future__ import annotations

import math

from gym_gui.live.run_progress import fmt_count, fmt_duration, fmt_number, progress_of, total_episodes


def test_numbers_for_people() -> None:
    assert [fmt_count(v) for v in (0, 1234, 1234567, None, 3.0)] == ["0", "1,234", "1,234,567", "-", "3"]
    assert [fmt_number(v) for v in (3, 3.0, -1.25, 0.3333333, 123.456, 12345.6, 0.000123456, None, math.nan)] == [
        "3", "3", "-1.25", "0.33", "123.5", "12,346", "0.000123", "-", "-"]
    assert [fmt_duration(v) for v in (4.25, 42, 65, 3600 + 180, 90000, None, -1)] == [
        "4.2s", "42s", "1m 05s", "1h 03m", "1d 01h", "-", "-"]


def test_progress_with_and_without_a_total() -> None:
    assert total_episodes({"episodes": 500}) == 500 and total_episodes({"episodes": 0}) is None
    assert total_episodes(None) is None
    p = progress_of(150, 154, 500, 1000.0, 1155.0)  # a tab that opened late: the index says 155 done
    assert p.done == 155 and p.text() == "155 / 500 (31%, ETA 5m 45s)"
    assert progress_of(3, 2, None, None, None).text() == "3"
    assert progress_of(10, 9, 10, 0.0, 5.0).text() == "10 / 10 (100%)"
    assert progress_of(150, 154, 500, 1000.0, 1155.0, ended=True).text() == "155 / 500 (31%)"  # over: no ETA
