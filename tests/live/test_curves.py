"""CurveData and the curve reads: every episode once, rolling figures, success rule, stored history."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from gym_gui.live.curves import CurveData, EpisodePoint, episode_success, iso_to_epoch_s, point_from_payload
from gym_gui.telemetry.curve_reads import PARTIAL_OUTCOME, load_curves_from_store, partial_episodes_from_store
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore

TS = "2024-05-01T12:00:{:02d}.000000+00:00"


def _point(i: int, ret: float = 1.0, length: float = 10.0, success: float = math.nan,
           meta: dict[str, float] | None = None) -> EpisodePoint:
    return EpisodePoint(i, ret, length, success, 1000.0 + i, meta or {})


def _episode(run: str, seq: int, index: int, reward: float, **extra: object) -> TelemetryEvent:
    payload = {"episode_index": index, "total_reward": reward, "length": 3, "terminated": True,
               "truncated": False, **extra}
    return TelemetryEvent(Topic.EPISODE_FINALIZED, run, "a", seq, TS.format(seq % 60), payload)


def _step(run: str, seq: int, episode: int, step: int, reward: float) -> TelemetryEvent:
    payload = {"episode_index": episode, "step_index": step, "action": 0, "observation": 0, "reward": reward,
               "terminated": False, "truncated": False, "info": {}, "render_payload": None}
    return TelemetryEvent(Topic.STEP_APPENDED, run, "a", seq, TS.format(seq % 60), payload)


def test_every_episode_reaches_the_curves_once_whatever_the_order() -> None:
    data = CurveData(window=3)
    assert data.add_points([_point(i, ret=i) for i in range(5)]) == 5
    # live again, backfilled late episodes, a history with everything: nothing twice
    assert data.add_points([_point(3), _point(4)]) == 0
    assert data.add_points([_point(7, ret=7), _point(6, ret=6), _point(5, ret=5)]) == 3
    history = CurveData.from_columns(np.arange(10), np.arange(10.0), np.full(10, 10.0), np.full(10, np.nan),
                                     np.arange(10.0))
    assert data.merge_from(history) == 2
    assert data.column("index").tolist() == list(range(10))
    assert data.column("return").tolist() == [float(i) for i in range(10)]
    assert data.duplicates == 2 + 8
    # rolling mean over 3 episodes and cumulative steps, recomputed across the merge
    assert data.column("return_mean").tolist() == pytest.approx([0, 0.5, 1, 2, 3, 4, 5, 6, 7, 8])
    assert data.column("steps_end").tolist() == [10.0 * (i + 1) for i in range(10)]


def test_late_episode_recomputes_the_derived_columns_from_its_place() -> None:
    data = CurveData(window=2)
    data.add_points([_point(0, ret=0), _point(2, ret=2, length=5)])
    data.add_points([_point(1, ret=4, length=1)])
    assert data.column("index").tolist() == [0, 1, 2]
    assert data.column("return_mean").tolist() == pytest.approx([0, 2, 3])
    assert data.column("steps_end").tolist() == [10, 11, 16]


def test_success_rate_is_rolling_over_known_episodes() -> None:
    data = CurveData(window=2)
    data.add_points([_point(0, success=1.0), _point(1, success=math.nan), _point(2, success=0.0),
                     _point(3, success=0.0)])
    rate = data.column("success_rate").tolist()
    assert rate[:3] == [1.0, 1.0, 0.0] and rate[3] == 0.0


@pytest.mark.parametrize(("payload", "expected"), [
    ({"metadata": {"is_success": True}, "terminated": True, "total_reward": -1}, 1.0),
    ({"success": False, "outcome": "success"}, 0.0),
    ({"outcome": "success", "truncated": True}, 1.0),  # CartPole: 500 steps, truncated, a success
    ({"outcome": "failure", "terminated": True, "total_reward": 20.0}, 0.0),
    ({"terminated": True, "total_reward": 1.0}, 1.0),
    ({"terminated": True, "total_reward": 0.0}, 0.0),
    ({"truncated": True}, 0.0),
    ({"total_reward": 3.0}, None),
])
def test_success_rule(payload: dict[str, object], expected: float | None) -> None:
    found = episode_success(payload)
    assert (math.isnan(found) if expected is None else found == expected)


def test_metadata_and_heartbeat_numbers_become_series() -> None:
    data = CurveData()
    data.add_points([_point(0, meta={"epsilon": 1.0}), _point(1, meta={"epsilon": 0.5, "loss": 2.0})])
    assert data.add_heartbeat(TS.format(1), {"interval_s": 1.0, "stats": {"steps_done": 30, "episodes_done": 2,
                                                                         "steps_per_s": 12.5, "epsilon": 0.4}})
    assert not data.add_heartbeat(TS.format(2), {"stats": {"note": "x"}})
    names = data.series_names()
    assert names[:4] == ["return", "return_mean", "length", "success_rate"]
    assert {"meta:epsilon", "meta:loss", "hb:steps_per_s", "hb:epsilon"} <= set(names)
    x, y = data.series("meta:loss", "episode")
    assert x.tolist() == [0, 1] and math.isnan(y[0]) and y[1] == 2.0
    x, y = data.series("hb:steps_per_s", "step")
    assert x.tolist() == [30] and y.tolist() == [12.5]
    x, _ = data.series("return", "wall")
    assert x.tolist() == [1000.0, 1001.0]


def test_views_are_not_copies_and_buffers_grow() -> None:
    data = CurveData()
    data.add_points([_point(i) for i in range(1000)])
    x, y = data.series("return", "episode")
    assert x.base is not None and len(x) == 1000
    assert iso_to_epoch_s("2024-05-01T12:00:00+00:00") == iso_to_epoch_s("2024-05-01T12:00:00")
    assert point_from_payload({"episode_index": "3"}, None) is None


def test_stored_curves_and_partial_episode(tmp_path: Path) -> None:
    store = TelemetrySQLiteStore(tmp_path / "t.sqlite")
    try:
        run = "r1"
        events = [TelemetryEvent(Topic.RUN_STARTED, run, "a", 1, TS.format(1), {"config": {"episodes": 5}})]
        seq = 2
        for ep in range(3):
            for st in range(3):
                events.append(_step(run, seq, ep, st, 1.0))
                seq += 1
            events.append(_episode(run, seq, ep, 3.0, outcome="success" if ep == 1 else "failure",
                                   metadata={"epsilon": 1.0 - ep / 10, "tag": "x"}))
            seq += 1
        for st in range(2):  # episode 3 never finished: the worker died
            events.append(_step(run, seq, 3, st, 0.5))
            seq += 1
        store.write_batch(events)
        data = load_curves_from_store(store, run, "a", window=2)
        assert data.column("index").tolist() == [0, 1, 2]
        assert data.column("success").tolist() == [0.0, 1.0, 0.0]
        assert data.series("meta:epsilon")[1].tolist() == pytest.approx([1.0, 0.9, 0.8])
        partial = partial_episodes_from_store(store, run)
        assert [(p.agent_id, p.episode_index, p.length, p.total_reward, p.outcome) for p in partial] == [
            ("a", 3, 2, 1.0, PARTIAL_OUTCOME)]
        assert store.steps_for_episode(run, "a", 3)  # replayable: its steps are there
    finally:
        store.close()


def test_peak_decimation_is_incremental_and_keeps_every_extreme() -> None:
    from gym_gui.live.decimate import PeakDecimator

    rng = np.random.default_rng(1)
    y = rng.normal(size=100_000)
    y[::97] = np.nan
    y[54_321] = 50.0  # a spike
    x = np.arange(len(y), dtype=float)
    dec = PeakDecimator(max_bins=512)
    for end in (10, 1000, 1001, 33_333, 100_000):  # appended piece by piece
        dec.update(x[:end], y[:end])
        dx, dy = dec.arrays()
        assert len(dx) <= 2 * 512 + 2 * dec.bin_rows
        assert np.nanmax(dy) == np.nanmax(y[:end]) and np.nanmin(dy) == np.nanmin(y[:end])
        assert dx[0] == 0 and np.all(np.diff(dx) >= 0)
    assert dec.rebuilds == 0
    whole = PeakDecimator(max_bins=512)
    whole.update(x, y)
    assert np.array_equal(whole.arrays()[1], dec.arrays()[1], equal_nan=True)
    y2 = y.copy()
    y2[99_000] = -60.0  # a late change near the end: only the bins from there are refolded
    dec.update(x, y2, changed_from=99_000)
    again = PeakDecimator(max_bins=512)
    again.update(x, y2)
    assert dec.rebuilds == 0 and np.array_equal(again.arrays()[1], dec.arrays()[1], equal_nan=True)
    dec.update(x, y, changed_from=0)  # everything may have changed: rebuilt
    assert dec.rebuilds == 1 and np.array_equal(whole.arrays()[1], dec.arrays()[1], equal_nan=True)


def test_range_decimation_keeps_every_extreme_and_the_rows_when_zoomed_in() -> None:
    from gym_gui.live.decimate import decimate_range

    rng = np.random.default_rng(2)
    n = 1_000_000
    x = np.arange(n, dtype=float)
    y = rng.normal(size=n)
    y[777_777] = 99.0
    y[123] = -99.0
    dx, dy = decimate_range(x, y, None, max_bins=1000)
    assert len(dx) <= 2 * 1000 + 1000 and np.nanmax(dy) == 99.0 and np.nanmin(dy) == -99.0
    dx, dy = decimate_range(x, y, (700_000.0, 800_000.0), max_bins=1000)
    assert dx[0] <= 700_000 and dx[-1] >= 800_000 and len(dx) <= 3000 and 99.0 in dy
    inside = (x >= 700_000) & (x <= 800_000)
    assert np.nanmin(dy) <= y[inside].min() and np.nanmax(dy) >= y[inside].max()
    dx, dy = decimate_range(x, y, (500_000.0, 500_100.0), max_bins=1000)  # zoomed in: the rows themselves
    assert dx.tolist() == list(range(499_999, 500_102)) and dy.tolist() == y[499_999:500_102].tolist()


@pytest.mark.parametrize("extra", [
    {"metadata": {"is_success": True}, "total_reward": -1.0},
    {"success": False, "outcome": "success"},
    {"outcome": "success", "terminated": False, "truncated": True},
    {"outcome": "Failure"},
    {"terminated": True, "total_reward": 1.0, "outcome": None},
    {"terminated": True, "total_reward": 0.0, "outcome": None},
    {"terminated": False, "truncated": True, "outcome": None},
    {"terminated": False, "truncated": False, "outcome": "goal"},
    {"metadata": {"success": False, "loss": float("nan")}, "outcome": "success"},
])
def test_the_stored_success_matches_the_live_rule(tmp_path: Path, extra: dict[str, object]) -> None:
    """SQLite computes success for stored curves; it must say what episode_success says live."""
    store = TelemetrySQLiteStore(tmp_path / "s.sqlite")
    try:
        evt = _episode("r", 1, 0, 2.0, **extra)
        store.write_batch([evt])
        stored = load_curves_from_store(store, "r", "a").column("success")[0]
        live = episode_success(evt.payload)
        assert (math.isnan(stored) and math.isnan(live)) or stored == live
        wall = load_curves_from_store(store, "r", "a").column("wall")[0]
        assert abs(wall - iso_to_epoch_s(evt.ts_iso)) < 0.002
    finally:
        store.close()


def test_a_window_computed_off_thread_is_adopted_unless_rows_were_rewritten() -> None:
    data = CurveData(window=2)
    data.add_points([_point(i, ret=float(i)) for i in range(6)])
    job = data.window_job(3)
    data.add_points([_point(6, ret=6.0)])  # appended meanwhile: computed at adoption
    assert data.adopt_window(job()) and data.window == 3
    assert data.column("return_mean").tolist() == pytest.approx([0, 0.5, 1, 2, 3, 4, 5])
    data.add_points([_point(10, ret=1.0)])
    job = data.window_job(1)
    data.add_points([_point(8, ret=1.0)])  # a late one: rows before the end changed
    assert not data.adopt_window(job()) and data.window == 3


def test_changed_from_names_the_first_rewritten_row() -> None:
    data = CurveData()
    data.add_points([_point(i) for i in range(0, 20, 2)])
    since = data.rewritten
    data.add_points([_point(20)])
    assert data.changed_from(since) is None  # appends only
    data.add_points([_point(15)])  # lands at row 8
    assert data.changed_from(since) == 8
    data.set_window(7)
    assert data.changed_from(since) == 0


def test_the_followed_range_steps_instead_of_moving_at_every_point() -> None:
    from gym_gui.live.follow_range import follow_range

    shown = follow_range(0.0, 1_000_000.0)
    assert shown == (0.0, 1_100_000.0)
    changes = 0
    for last in range(1_000_000, 1_300_000, 20):
        new = follow_range(0.0, float(last), shown)
        changes += new != shown
        shown = new
        assert shown[0] == 0.0 and shown[1] >= last
    assert changes <= 3
    from gym_gui.live.follow_range import stepped_range

    y_shown = stepped_range(-1.13, 1.43)
    assert y_shown[0] < -1.13 and y_shown[1] > 1.43
    for top in np.linspace(1.43, 1.45, 50):  # a return creeping up keeps its y-axis
        assert stepped_range(-1.13, float(top), y_shown) == y_shown
    assert stepped_range(-1.13, 9.0, y_shown)[1] > 9.0


def test_plot_jobs_run_the_newest_per_key_and_leave_no_thread() -> None:
    import threading

    from gym_gui.live.plot_jobs import PlotJobs
    from polling import wait_until

    delivered: list[object] = []
    newest = threading.Event()

    def deliver(job: object) -> None:
        delivered.append(job.result)  # type: ignore[attr-defined]
        if job.result == "newest":  # type: ignore[attr-defined]
            newest.set()

    jobs = PlotJobs(deliver, name="test-plot-jobs")
    gate = threading.Event()
    assert jobs.submit("a", lambda token: "first" if gate.wait(5) else "timeout") is not None
    assert jobs.submit("b", lambda token: "replaced while queued") is not None
    assert jobs.submit("b", lambda token: "newest") is not None
    gate.set()
    assert newest.wait(5)
    assert delivered == ["first", "newest"]
    wait_until(lambda: not jobs.thread_alive(), 5.0)  # no job left: the thread ended by itself
    assert jobs.submit("c", lambda token: "again") is not None  # a new job starts a new thread
    assert jobs.stop(5) and not jobs.thread_alive()
    assert jobs.submit("d", lambda token: "after stop") is None
