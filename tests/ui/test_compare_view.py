"""CompareView with runs in a real SQLite file read through a real StoreReader: overlaid curves of the
chosen runs (one per run and agent), smoothing, and the hyper-parameter table with differences."""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import pytest

from event_factory import EventFactory
from gym_gui.live.smoothing import ema_smooth
from gym_gui.qt.store_reader import StoreReader
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore
from gym_gui.ui.compare_view import CompareView, flatten_config


@pytest.fixture
def reader(store: TelemetrySQLiteStore) -> Iterator[StoreReader]:
    r = StoreReader(store)
    yield r
    assert r.stop(5)


def store_run(store: TelemetrySQLiteStore, run_id: str, config: dict[str, Any], agents: tuple[str, ...],
              episodes: int) -> None:
    for agent in agents:
        f = EventFactory(run_id, agent)
        events = [f.started("FrozenLake-v1", config=config)]
        for ep in range(episodes):
            events.append(f.episode(ep, 3, total_reward=float(ep)))
        store.write_events(events + [f.completed()])


def test_the_chosen_runs_are_overlaid_with_their_parameters_side_by_side(
        qtbot: Any, store: TelemetrySQLiteStore, reader: StoreReader) -> None:
    store_run(store, "run-a", {"episodes": 10, "alpha": 0.1, "net": {"layers": 2}, "step_rate_hz": 200.0,
                               "heartbeat_interval_s": 1.0, "env_kwargs": {"map_name": "4x4"}}, ("agent-1",), 10)
    store_run(store, "run-b", {"episodes": 10, "alpha": 0.5, "net": {"layers": 2}, "step_rate_hz": 0.0,
                               "env_kwargs": {"map_name": "4x4"}}, ("agent-1", "agent-2"), 6)
    store_run(store, "run-c", {"episodes": 3}, ("agent-1",), 3)  # not chosen
    view = CompareView(reader)
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.loaded, timeout=5000) as loaded:
        assert view.set_runs(["run-a", "run-b"])
    assert loaded.args[0] == ["run-a", "run-b"]
    assert view.legend_names() == ["FrozenLake-v1 run-a \u00b7 agent-1", "FrozenLake-v1 run-b \u00b7 agent-1",
                                   "FrozenLake-v1 run-b \u00b7 agent-2"]
    view.set_smoothing(0)
    x, y = view.curve_data("run-b", "agent-2")
    assert x.tolist() == list(range(6)) and y.tolist() == [float(i) for i in range(6)]
    view.set_smoothing(0.9)
    x, y = view.curve_data("run-a", "agent-1")
    assert np.allclose(y, ema_smooth(np.arange(10.0), 0.9)) and y[-1] < 9.0
    assert view.curve_data("run-c", "agent-1")[0].size == 0
    assert view.differing_keys() == ["alpha"]
    rows = {row[0]: row[1:] for row in view.table_rows()}
    assert rows["alpha \u2260"] == ["0.1", "0.5"] and rows["net.layers"] == ["2", "2"]
    # the telemetry's own settings are not learning parameters (as in the Runs tab); env options are
    assert rows["env_kwargs.map_name"] == ["4x4", "4x4"] and not any("step_rate_hz" in k or "heartbeat" in k
                                                                    for k in rows)
    assert rows["stored episodes"] == ["10", "12"] and rows["episodes"] == ["10", "10"] and rows["status"] == ["completed", "completed"]
    # Another choice replaces the comparison; an unknown run is listed as not stored.
    with qtbot.waitSignal(view.loaded, timeout=5000):
        view.set_runs(["run-c", "nope"])
    assert [r.run_id for r in view.runs()] == ["run-c", "nope"]
    assert {row[0]: row[1:] for row in view.table_rows()}["status"] == ["completed", "not stored"]
    # The grid is drawn by one item behind the curves, which a new comparison keeps.
    assert view.grid.scene() is view.plot.scene() and not view.plot.getAxis("left").grid


def test_smoothing_matches_tensorboards_debiased_ema() -> None:
    values = np.array([1.0, np.nan, 3.0, 5.0])
    last, k, expected = 0.0, 0, []
    for v in values:
        if np.isnan(v):
            expected.append(np.nan)
            continue
        k += 1
        last = last * 0.5 + 0.5 * v
        expected.append(last / (1 - 0.5 ** k))
    assert np.allclose(ema_smooth(values, 0.5), expected, equal_nan=True)
    assert flatten_config({"a": {"b": 1, "c": {}}, "d": [1]}) == {"a.b": 1, "a.c": {}, "d": [1]}


def test_smoothing_and_zoom_are_computed_off_the_gui_thread(
        qtbot: Any, store: TelemetrySQLiteStore, reader: StoreReader) -> None:
    """offload_rows=0: every drawing goes to the view's worker thread, as a long run's does."""
    store_run(store, "run-a", {"alpha": 0.1}, ("agent-1",), 400)
    view = CompareView(reader, offload_rows=0)
    qtbot.addWidget(view)
    view.resize(1000, 600)
    view.show()
    with qtbot.waitSignal(view.loaded, timeout=5000):
        view.set_runs(["run-a"])
    x, y = view.curve_data("run-a", "agent-1")  # the first drawing came with the read
    assert np.allclose(y, ema_smooth(np.arange(400.0), 0.8))
    with qtbot.waitSignal(view.drawn, timeout=5000):
        view.set_smoothing(0.5)
        assert view.busy()  # computed on the worker, not here
    assert np.allclose(view.curve_data("run-a", "agent-1")[1], ema_smooth(np.arange(400.0), 0.5))
    with qtbot.waitSignal(view.drawn, timeout=5000):
        view.plot.getViewBox().setXRange(100, 120, padding=0)  # as a zoom does
    x, y = view.curve_data("run-a", "agent-1")
    assert x.tolist() == list(range(99, 122)) and np.allclose(y, ema_smooth(np.arange(400.0), 0.5)[99:122])
    assert view.stop(5) and not view.worker.thread_alive()
