"""Learning curves in the Online tab and the CurvePanel: every episode once (live, backfill and history
from a real SQLite file through a real controller), worker numbers as charts, axes, progress, tooltips."""

from __future__ import annotations

from typing import Any, Iterator

import pyqtgraph as pg
import pytest
import qtpy
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QGraphicsItem

from event_factory import EventFactory
from gym_gui.live.curves import CurveData
from gym_gui.live.live_batch import LiveBatch
from gym_gui.qt.live_controller import LiveTelemetryController
from gym_gui.qt.store_reader import StoreReader
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore
from gym_gui.ui.online_header import HEADER_FIELDS
from gym_gui.ui.online_tab import AgentOnlineTab
from gym_gui.ui.plots.chart_view_box import ChartViewBox
from gym_gui.ui.plots.curve_loader import load_stream_curves
from gym_gui.ui.plots.curve_panel import CurvePanel


def make_tab(qtbot: Any) -> AgentOnlineTab:
    tab = AgentOnlineTab("run1", "agent1")
    qtbot.addWidget(tab)
    tab.resize(1000, 700)
    return tab


def batch(steps: list[TelemetryEvent] = (), episodes: list[TelemetryEvent] = (), **totals: Any) -> LiveBatch:  # type: ignore[assignment]
    return LiveBatch("run1", "agent1", steps=tuple(steps), episodes=tuple(episodes),
                     latest_step=steps[-1] if steps else None, **totals)


def test_pyqtgraph_follows_the_binding_qtpy_chose() -> None:
    assert pg.Qt.QT_LIB == qtpy.API_NAME


def test_the_online_tab_plots_every_episode_once_and_worker_numbers(qtbot: Any, factory: type[EventFactory]) -> None:
    f = factory("run1", "agent1")
    tab = make_tab(qtbot)
    tab.on_run_started(f.started("CartPole-v1", config={"episodes": 10}))
    episodes = [f.episode(i, 4, total_reward=float(i), metadata={"epsilon": 1.0 - i / 10}) for i in range(6)]
    tab.on_batch(batch(episodes=episodes[:3]))
    tab.on_batch(batch(episodes=[episodes[5], episodes[2]]))  # a newer one, and one again
    tab.on_batch(batch(episodes=[episodes[3], episodes[4]], backfilled=2))  # late ones, backfilled
    x, y = tab.curve_panel.curve_data("return")
    assert x.tolist() == [0, 1, 2, 3, 4, 5] and y.tolist() == [0, 1, 2, 3, 4, 5]
    assert tab.curves.duplicates == 1
    # a new number's chart is built in an event-loop turn of its own (10 to 20 ms), not in the refresh
    assert "epsilon (episode metadata)" not in tab.curve_panel.chart_titles()
    qtbot.waitUntil(lambda: "epsilon (episode metadata)" in tab.curve_panel.chart_titles(), timeout=5000)
    # its curve and first data at the turn after (the chart is not painted in between)
    qtbot.waitUntil(lambda: len(tab.curve_panel.curve_data("meta:epsilon")[1]) > 0, timeout=5000)
    assert tab.curve_panel.curve_data("meta:epsilon")[1].tolist() == pytest.approx([1, 0.9, 0.8, 0.7, 0.6, 0.5])
    tab.on_heartbeat(f.heartbeat(stats={"steps_done": 24, "episodes_done": 6, "steps_per_s": 1234.5678, "loss": 0.25}))
    # two new numbers: their charts are built one per event-loop turn (a chart takes 10 to 25 ms)
    qtbot.waitUntil(lambda: "loss (heartbeat)" in tab.curve_panel.chart_titles(), timeout=5000)
    qtbot.waitUntil(lambda: len(tab.curve_panel.curve_data("hb:loss")[1]) > 0, timeout=5000)
    assert tab.curve_panel.curve_data("hb:loss")[1].tolist() == [0.25]
    assert tab.header_text("steps_per_s") == "1,234.6"
    tab.curve_panel.set_axis("step")
    assert tab.curve_panel.curve_data("return")[0].tolist() == [4, 8, 12, 16, 20, 24]
    tab.curve_panel.set_axis("wall")
    wall = tab.curve_panel.curve_data("return")[0]
    assert wall[0] == 0.0 and all(b > a for a, b in zip(wall, wall[1:]))
    # progress: 6 of 10, with an ETA from the run's pace
    text = tab.header_text("progress")
    assert text.startswith("6 / 10 (60%, ETA ") and text.endswith("s)")


def test_curves_get_pre_decimated_arrays_and_cached_axes(qtbot: Any) -> None:
    """pyqtgraph's own downsampling would re-read every point at every refresh: the panel hands
    small arrays instead (tests/ui/test_plot_offload.py), and caches the axes' pictures."""
    panel = CurvePanel(CurveData())
    qtbot.addWidget(panel)
    for chart in panel._charts.values():
        assert chart.plot.getAxis("bottom").cacheMode() == QGraphicsItem.CacheMode.DeviceCoordinateCache
        for curve in chart.curves.values():
            assert not curve.opts["autoDownsample"] and not curve.opts["clipToView"]
        # no label, so no SI prefix: a range change does not set an axis's label text again
        assert not any(chart.plot.getAxis(name).autoSIPrefix for name in chart.plot.axes)


def test_a_charts_context_menu_is_built_at_the_first_right_click(qtbot: Any) -> None:
    """A chart is built without its ViewBox's context menu (a third of its construction); the
    first right click builds it and shows pyqtgraph's menu, and later clicks reuse it."""
    panel = CurvePanel(CurveData())
    qtbot.addWidget(panel)
    panel.resize(900, 500)
    panel.show()
    qtbot.waitExposed(panel)
    qtbot.waitUntil(lambda: not panel.ranges_pending(), timeout=5000)
    view_box = panel.plot_item("return").getViewBox()
    assert isinstance(view_box, ChartViewBox) and view_box.menu is None and view_box.menuEnabled()
    centre = panel.graphics.mapFromScene(view_box.mapToScene(view_box.boundingRect().center()))
    for clicks in (1, 2):
        qtbot.mouseClick(panel.graphics.viewport(), Qt.MouseButton.RightButton, pos=centre)
        qtbot.waitUntil(lambda: view_box.menu is not None and view_box.menu.isVisible(), timeout=5000)
        assert view_box.menus_built == 1
        assert "View All" in [action.text() for action in view_box.menu.actions()]
        view_box.menu.close()
    assert view_box.getMenu(None) is view_box.menu and view_box.menus_built == 1
    assert panel.plot_item("length").getViewBox().menu is None  # the other charts' menus: not yet


def test_every_counter_says_what_it_counts(qtbot: Any) -> None:
    tab = make_tab(qtbot)
    for key, _caption in HEADER_FIELDS:
        assert len(tab.header_tooltip(key)) > 20, key
    assert "Steps seen" in tab.header_tooltip("backfilled")


def test_show_tables_label_matches_the_tables(qtbot: Any, factory: type[EventFactory]) -> None:
    tab = make_tab(qtbot)
    tab.show()
    assert tab.tables_visible() and tab.tables_button.text() == "Hide tables" and tab.tables_button.isChecked()
    tab.set_tables_visible(False)
    assert not tab.tables_visible() and tab.tables_button.text() == "Show tables"


def test_the_episode_table_follows_the_newest_row(qtbot: Any, factory: type[EventFactory]) -> None:
    f = factory("run1", "agent1")
    tab = make_tab(qtbot)
    tab.show()
    qtbot.waitExposed(tab)
    tab.on_batch(batch(episodes=[f.episode(i, 2) for i in range(200)]))
    bar = tab.episode_view.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0 and bar.value() == bar.maximum(), timeout=2000)
    bar.setValue(0)  # the person scrolls up: no more following
    tab.on_batch(batch(episodes=[f.episode(i, 2) for i in range(200, 260)]))
    assert bar.value() == 0


@pytest.fixture
def reader(store: TelemetrySQLiteStore) -> Iterator[StoreReader]:
    r = StoreReader(store)
    yield r
    r.stop()


def test_history_backfill_and_live_reach_the_curves_once(
        qtbot: Any, bus: RunBus, store: TelemetrySQLiteStore, reader: StoreReader, factory: type[EventFactory]) -> None:
    """A tab opened late: its controller reads the stream's history from SQLite, then goes live;
    the history curves read separately (as the Replay tab and CompareView do) are merged in too."""
    f = factory("run1", "agent1")
    history = [f.started("CartPole-v1", config={"episodes": 12}), *f.episodes(5, 3)]
    store.write_batch(history)
    controller = LiveTelemetryController(bus, "run1", "agent1", reader=reader, poll_interval_ms=10,
                                         history_after_seq_id=-1)
    tab = make_tab(qtbot)
    controller.run_started.connect(tab.on_run_started)
    controller.batch_ready.connect(tab.on_batch)
    controller.start()
    try:
        live = f.episodes(4, 3, first_episode=5)
        for evt in live:
            bus.publish(evt)
        store.write_batch(live)
        qtbot.waitUntil(lambda: tab.curves.episode_count == 9, timeout=5000)
        loaded: list[CurveData] = []
        assert load_stream_curves(reader, "run1", "agent1", loaded.append)
        qtbot.waitUntil(lambda: bool(loaded), timeout=5000)
        assert tab.curves.merge_from(loaded[0]) == 0
        assert tab.curves.column("index").tolist() == list(range(9))
        assert tab.episodes_seen == 9 and tab.header_text("progress").startswith("9 / 12 (75%")
    finally:
        controller.stop()
