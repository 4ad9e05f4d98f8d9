"""The plots' work that grows with a run runs off the GUI thread: a long stored run's decimation, a
rolling-window change, a zoom's re-decimation; live appends stay O(new points); jobs are cancelled
by newer ones and by a closing tab, and the worker thread is proven stopped. Real CurvePanels under
pytest-qt; the timing itself is left to tools/bench_plots.py (the machine is shared)."""

from __future__ import annotations

import threading
import time
from typing import Any, Iterator

import numpy as np
import pytest
from qtpy.QtCore import QObject, Qt, QTimer, Signal

from gym_gui.live import decimate
from gym_gui.live.curves import CurveData, EpisodePoint
from gym_gui.live.plot_jobs import CancelToken
from gym_gui.ui.online_tab import AgentOnlineTab
from gym_gui.ui.plots.curve_panel import DECIMATED_BINS, CurvePanel
from gym_gui.ui.plots.plot_worker import PlotWorker

ROWS = 300_000
SPIKE_AT = 123_457


def big_data(rows: int = ROWS, window: int = 100) -> CurveData:
    index = np.arange(rows, dtype=float)
    ret = np.sin(index * 0.37)
    ret[SPIKE_AT] = 40.0  # one episode's spike must stay visible
    return CurveData.from_columns(index, ret, 20 + index % 17, (index % 3 > 0).astype(float), 1.8e9 + index * 0.01,
                                  {"epsilon": np.maximum(0.05, 1 - index / rows)}, window=window)


@pytest.fixture
def gui_work(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, int]]]:
    """Rows each PeakDecimator.update folded, by thread name (the real decimator, observed)."""
    seen: list[tuple[str, int]] = []
    original = decimate.PeakDecimator.update

    def update(self: decimate.PeakDecimator, x: np.ndarray, y: np.ndarray, changed_from: int | None = None) -> None:
        start = self.rows if changed_from is None else min(changed_from, self.rows)
        seen.append((threading.current_thread().name, len(y) - start))
        original(self, x, y, changed_from)

    monkeypatch.setattr(decimate.PeakDecimator, "update", update)
    yield seen


def on_gui(seen: list[tuple[str, int]]) -> int:
    """The most rows one update folded on the GUI (main) thread."""
    return max((rows for name, rows in seen if name == threading.main_thread().name), default=0)


def make_panel(qtbot: Any, data: CurveData | None = None) -> CurvePanel:
    panel = CurvePanel(data)
    qtbot.addWidget(panel)
    panel.resize(1000, 700)
    panel.show()
    qtbot.waitExposed(panel)
    return panel


def test_a_long_stored_run_is_decimated_off_the_gui_thread_and_every_episode_is_drawn(
        qtbot: Any, gui_work: list[tuple[str, int]]) -> None:
    panel = make_panel(qtbot)
    data = big_data()
    panel.set_data(data)
    assert panel.busy()  # handed to the worker: set_data returned before any O(n) work
    qtbot.waitUntil(lambda: not panel.busy(), timeout=20_000)
    x, y = panel.curve_data("return")
    assert 0 < len(x) <= 2 * DECIMATED_BINS + 2 * (ROWS // DECIMATED_BINS)
    assert np.nanmax(y) == 40.0 and np.nanmin(y) == data.column("return").min()  # every extreme is there
    assert x[0] == 0 and x[-1] == ROWS - 1  # first and last episodes
    assert on_gui(gui_work) <= panel._offload_rows  # the GUI thread folded no more than that
    assert any(name == "curve-panel" and rows == ROWS for name, rows in gui_work)
    for name in ("return_mean", "length", "success_rate", "meta:epsilon"):
        assert len(panel.curve_data(name)[0]) <= 2 * DECIMATED_BINS + 2 * (ROWS // DECIMATED_BINS)
    for chart in panel._charts.values():
        for curve in chart.curves.values():
            assert not curve.opts["autoDownsample"] and not curve.opts["clipToView"]


def test_live_appends_fold_in_the_new_episodes_only(qtbot: Any, gui_work: list[tuple[str, int]]) -> None:
    data = big_data()
    panel = make_panel(qtbot, data)
    qtbot.waitUntil(lambda: not panel.busy() and len(panel.curve_data("return")[0]) > 0, timeout=20_000)
    jobs_before = panel.worker.jobs.jobs_run
    gui_work.clear()
    for tick in range(5):
        first = ROWS + 20 * tick
        data.add_points([EpisodePoint(i, 1.0, 20.0, 1.0, 1.8e9 + i * 0.01, {"epsilon": 0.05})
                         for i in range(first, first + 20)])
        assert panel.refresh()
    assert panel.worker.jobs.jobs_run == jobs_before and not panel.busy()  # no worker job for a tick
    assert gui_work and max(rows for _name, rows in gui_work) == 20  # each update: the 20 new rows
    assert data.column("index").tolist() == list(range(ROWS + 100))  # every episode once
    assert panel.curve_data("return")[0][-1] == ROWS + 99


def test_a_late_episode_near_the_end_is_refolded_from_its_place(qtbot: Any,
                                                                 gui_work: list[tuple[str, int]]) -> None:
    data = big_data()
    data.add_points([EpisodePoint(i, 1.0, 20.0, 1.0, 0.0, {}) for i in range(ROWS + 1, ROWS + 10)])
    panel = make_panel(qtbot, data)
    qtbot.waitUntil(lambda: not panel.busy() and len(panel.curve_data("return")[0]) > 0, timeout=20_000)
    gui_work.clear()
    data.add_points([EpisodePoint(ROWS, -30.0, 20.0, 0.0, 0.0, {})])  # backfilled late
    panel.refresh()
    assert not panel.busy() and 0 < on_gui(gui_work) <= 2 * (ROWS // DECIMATED_BINS) + 20
    assert np.nanmin(panel.curve_data("return")[1]) == -30.0


def test_zooming_re_decimates_the_visible_range_off_thread_down_to_every_row(qtbot: Any) -> None:
    data = big_data()
    panel = make_panel(qtbot, data)
    qtbot.waitUntil(lambda: not panel.busy() and len(panel.curve_data("return")[0]) > 0, timeout=20_000)
    view_box = panel.plot_item("return").getViewBox()
    view_box.setXRange(SPIKE_AT - 50, SPIKE_AT + 50, padding=0)  # as a zoom does
    qtbot.waitUntil(lambda: len(panel.curve_data("return")[0]) < 200, timeout=10_000)
    x, y = panel.curve_data("return")
    rows = slice(int(x[0]), int(x[-1]) + 1)
    assert x.tolist() == data.column("index")[rows].tolist() and y.tolist() == data.column("return")[rows].tolist()
    assert x[0] <= SPIKE_AT - 50 and x[-1] >= SPIKE_AT + 50 and 40.0 in y
    view_box.setXRange(0, 200_000, padding=0)  # zoomed out again: bins of the visible rows
    qtbot.waitUntil(lambda: panel.curve_data("return")[0][-1] <= 200_001 and len(panel.curve_data("return")[0]) > 200,
                    timeout=10_000)
    x, y = panel.curve_data("return")
    assert len(x) <= 2 * max(DECIMATED_BINS, view_box.width()) + 2_000 and 40.0 in y
    view_box.enableAutoRange()  # "view all": it follows the data again
    qtbot.waitUntil(lambda: panel.curve_data("return")[0][-1] == ROWS - 1, timeout=10_000)


def test_a_rolling_window_change_on_a_long_run_is_computed_off_thread(qtbot: Any) -> None:
    data = big_data(window=100)
    panel = make_panel(qtbot, data)
    qtbot.waitUntil(lambda: not panel.busy(), timeout=20_000)
    panel.window_box.setValue(10)
    assert data.window == 100 and panel.busy()  # the GUI thread did not compute it
    qtbot.waitUntil(lambda: data.window == 10 and not panel.busy(), timeout=20_000)
    ret = data.column("return")
    assert data.column("return_mean")[-1] == pytest.approx(ret[-10:].mean())
    assert data.column("return_mean")[SPIKE_AT] == pytest.approx(ret[SPIKE_AT - 9: SPIKE_AT + 1].mean())


class _Marker(QObject):
    ping = Signal()


def flush_queued_deliveries(qtbot: Any) -> None:
    """Wait until every signal queued to the GUI thread so far was delivered: a marker queued now
    arrives after them (one thread's posted events are handled in order)."""
    marker, seen = _Marker(), []
    marker.ping.connect(lambda: seen.append(True), Qt.ConnectionType.QueuedConnection)
    marker.ping.emit()
    qtbot.waitUntil(lambda: bool(seen), timeout=5000)


def test_a_newer_job_cancels_the_older_and_stop_ends_the_thread(qtbot: Any) -> None:
    worker = PlotWorker()
    release = threading.Event()
    started = threading.Event()
    got: list[str] = []

    def slow(token: CancelToken) -> str:
        started.set()
        while not token.cancelled() and not release.wait(0.005):
            pass
        return "old"

    assert worker.submit("view", slow, got.append)
    assert started.wait(5)
    assert worker.submit("view", lambda _token: "new", got.append)  # the view changed
    qtbot.waitUntil(lambda: got == ["new"], timeout=5000)
    assert worker.jobs.jobs_run == 2 and not worker.pending()  # the old one returned early, unseen
    assert worker.submit("view", slow, got.append)
    worker.cancel()
    assert worker.stop(5) and not worker.thread_alive()
    assert not worker.submit("view", slow, got.append)  # stopped: nothing more runs
    flush_queued_deliveries(qtbot)  # any delivery the thread queued before it ended has been handled
    assert got == ["new"]


def test_closing_a_tab_stops_its_plot_worker(qtbot: Any) -> None:
    tab = AgentOnlineTab("run1", "agent1")
    qtbot.addWidget(tab)
    tab.curve_panel.set_data(big_data(1_000_000))
    assert tab.curve_panel.busy()
    tab.stop()  # what the window does when the tab's close button is pressed (then deleteLater)
    assert not tab.curve_panel.busy()  # the job is cancelled: nothing will be delivered
    qtbot.waitUntil(lambda: not tab.curve_panel.worker.thread_alive(), timeout=10_000)  # it ended by itself
    assert tab.curve_panel.stop(5)


def test_results_are_delivered_one_per_event_loop_turn(qtbot: Any) -> None:
    """Two results that reached the GUI thread together are handed over in two turns: a timer that
    the first delivery started (as a heartbeat or the paint it posts would be) runs before the
    second delivery, instead of the two in one stretch."""
    worker = PlotWorker()
    order: list[str] = []
    marker = QTimer()
    marker.setSingleShot(True)
    marker.setInterval(0)
    marker.timeout.connect(lambda: order.append("timer"))

    def first(result: str) -> None:
        order.append(result)
        marker.start()

    assert worker.submit("a", lambda _token: "a", first)
    assert worker.submit("b", lambda _token: "b", order.append)
    deadline = time.monotonic() + 10
    while worker.thread_alive() and time.monotonic() < deadline:  # both results queued, none handled yet
        threading.Event().wait(0.001)
    assert not worker.thread_alive() and order == []
    qtbot.waitUntil(lambda: len(order) == 3, timeout=5000)
    assert order == ["a", "timer", "b"] and worker.delivered == 2 and not worker.pending()
    assert worker.stop(5)


def test_a_result_cancelled_after_it_arrived_is_not_delivered(qtbot: Any) -> None:
    """A result waiting for its turn is dropped when its job is cancelled meanwhile (here by the
    delivery before it, as a closing view's stop() would)."""
    worker = PlotWorker()
    got: list[str] = []

    def first(result: str) -> None:
        got.append(result)
        worker.cancel("b")

    assert worker.submit("a", lambda _token: "a", first)
    assert worker.submit("b", lambda _token: "b", got.append)
    deadline = time.monotonic() + 10
    while worker.thread_alive() and time.monotonic() < deadline:  # both results queued, none handled yet
        threading.Event().wait(0.001)
    qtbot.waitUntil(lambda: not worker.pending(), timeout=5000)
    flush_queued_deliveries(qtbot)
    assert got == ["a"] and worker.delivered == 1
    assert worker.stop(5)
