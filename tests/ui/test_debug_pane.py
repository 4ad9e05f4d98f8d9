"""DebugPane over a real RunBus, a real TelemetryProxy and a real DbSink: subscriptions with drops,
rejected lines per reason, the sink's backlog, rate and errors, the OVERFLOW notices; its pump
flushes overflow notices, and the pane is proven stopped."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from event_factory import EventFactory
from event_loop_turns import run_turns
from gym_gui.ingest.proxy import TelemetryProxy
from gym_gui.qt.db_sink_thread import DbSink
from gym_gui.telemetry.events import Topic
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore
from gym_gui.ui.debug_pane import DebugPane
from gym_gui.ui.rows_table_model import ERROR, WARN
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QHeaderView


def make_pane(qtbot: Any, bus: RunBus, **kwargs: Any) -> DebugPane:
    pane = DebugPane(bus, **kwargs)
    qtbot.addWidget(pane)
    return pane


def source_values(pane: DebugPane, name: str) -> dict[str, str]:
    return {stat: value for source, stat, value in pane.source_model.texts() if source == name}


def test_subscriptions_show_queue_capacity_and_drops_after_an_overflow(qtbot: Any, bus: RunBus,
                                                                       factory: type[EventFactory]) -> None:
    ui = bus.subscribe(Topic.STEP_APPENDED, "ui-run1-agent1", maxlen=4, run_id="run1", agent_id="agent1")
    bus.subscribe(Topic.STEP_APPENDED, "db", maxlen=None)
    f = factory("run1", "agent1")
    for i in range(10):
        bus.publish(f.step(0, i))
    ui.drain(max_items=1)
    pane = make_pane(qtbot, bus)
    pane.refresh()
    rows = {row.cells[1]: row for row in pane.subscription_model.rows()}
    assert rows["ui-run1-agent1"].cells == ("STEP_APPENDED", "ui-run1-agent1", "run1/agent1", "3", "4", "6", "1")
    assert rows["ui-run1-agent1"].severity == WARN
    assert rows["db"].cells == ("STEP_APPENDED", "db", "*", "10", "lossless", "0", "0")
    assert "2 subscriptions, 6 events dropped" in pane.status_label.text()
    bus.unsubscribe(Topic.STEP_APPENDED, "db")
    pane.refresh()
    assert [row.cells[1] for row in pane.subscription_model.rows()] == ["ui-run1-agent1"]


def test_the_refresh_timer_reports_the_last_drops_of_a_burst(qtbot: Any, factory: type[EventFactory]) -> None:
    bus = RunBus(overflow_notice_interval_s=0.05)
    notices = bus.subscribe(Topic.OVERFLOW, "watch", maxlen=None)
    bus.subscribe(Topic.STEP_APPENDED, "slow", maxlen=2)
    f = factory("run1", "agent1")
    for i in range(5):  # the first drop is noticed at once ...
        bus.publish(f.step(0, i))
    for i in range(5, 8):  # ... these land inside the rate limit and wait for a flush
        bus.publish(f.step(0, i))
    lost = [tuple(r) for n in notices.drain() for r in n.payload["lost_ranges"]]
    assert lost and lost[-1][1] < 5  # nothing publishes any more: the burst's tail is still unreported
    pane = make_pane(qtbot, bus, refresh_interval_ms=10)
    pane.start()
    qtbot.waitUntil(lambda: len(notices) > 0, timeout=3000)
    tail = [tuple(r) for n in notices.drain() for r in n.payload["lost_ranges"]]
    assert tail[-1][1] == 5 and pane.notices_flushed >= 1  # seq 5 is the last one evicted (6 and 7 queued)
    pane.stop()
    assert not pane.is_refreshing()


def test_a_proxy_s_rejected_lines_are_shown_per_reason(qtbot: Any, bus: RunBus) -> None:
    proxy = TelemetryProxy(bus, run_id="run1")
    for line in (b"not json", b"{broken", b"[1, 2]", b'{"v": 1, "kind": "nope", "run_id": "r", "seq": 1}'):
        assert proxy.feed_line(line) is None
    pane = make_pane(qtbot, bus)
    pane.add_source("proxy worker-1", proxy.stats)
    pane.refresh()
    values = source_values(pane, "proxy worker-1")
    assert values["rejected_total"] == "4" and values["lines_read"] == "4"
    assert values["rejected.invalid_json"] == "2" and values["rejected.not_an_object"] == "1"
    assert values["rejected.unknown_record_type"] == "1"
    stats = [row.cells[1] for row in pane.source_model.rows() if row.cells[0] == "proxy worker-1"]
    assert stats[:2] == ["rejected_total", "rejected.invalid_json"]  # rejects first
    assert all(row.severity == WARN for row in pane.source_model.rows() if row.cells[1].startswith("rejected"))
    proxy.feed_line(b"\xff\xfe")
    pane.refresh()
    assert source_values(pane, "proxy worker-1")["rejected_total"] == "5"


def test_the_workers_blank_lines_reassigned_seq_ids_and_error_records_are_shown(qtbot: Any, bus: RunBus) -> None:
    import json
    import sys

    from gym_gui.qt.run_launcher import RunLauncher

    records = [{"v": 1, "kind": "run_started", "run_id": "run1", "agent_id": "a", "seq": 1, "env_id": "Toy-v0"},
               {"v": 1, "kind": "heartbeat", "run_id": "run1", "agent_id": "a", "seq": 1, "interval_s": 1.0},
               {"type": "error", "run_id": "run1", "message": "CUDA out of memory"},
               {"v": 1, "kind": "run_completed", "run_id": "run1", "agent_id": "a", "seq": 9, "outcome": "completed"}]
    script = "import sys; sys.stdout.write(" + repr("\n\n".join(json.dumps(r) for r in records) + "\n") + ")"
    launcher = RunLauncher(bus, poll_interval_ms=20)
    try:
        with qtbot.waitSignal(launcher.run_exited, timeout=30000):
            launcher.launch([sys.executable, "-c", script], run_id="run1")
        qtbot.waitUntil(lambda: launcher.active_run_ids() == [], timeout=10000)
        pane = make_pane(qtbot, bus)
        pane.add_source("workers", launcher.stats)
        pane.refresh()
        values = source_values(pane, "workers")
        assert (values["blank_lines"], values["seq_reassigned"], values["worker_errors"]) == ("3", "1", "1")
        assert values["lines_read"] == "7" and values["rejected_total"] == "0" and values["last_rejected"] == ""
    finally:
        assert launcher.stop(5)


def test_the_latest_rejected_line_is_shown_with_its_reason_and_run(qtbot: Any, bus: RunBus) -> None:
    import sys

    from gym_gui.qt.run_launcher import RunLauncher

    script = "import sys; sys.stdout.write('{\"v\": 1, \"kind\": \"nope\", \"run_id\": \"run2\"}\\n{truncated\\n')"
    launcher = RunLauncher(bus, poll_interval_ms=20)
    try:
        with qtbot.waitSignal(launcher.run_exited, timeout=30000):
            launcher.launch([sys.executable, "-c", script], run_id="run2")
        pane = make_pane(qtbot, bus)
        pane.add_source("workers", launcher.stats)
        pane.refresh()
        last = source_values(pane, "workers")["last_rejected"]
        assert last.endswith("[run2]") and " line 2 (invalid_json): " in last, last
        rows = {row.cells[1]: row for row in pane.source_model.rows() if row.cells[0] == "workers"}
        assert rows["last_rejected"].severity == WARN
    finally:
        assert launcher.stop(5)


@pytest.fixture
def sink(store: TelemetrySQLiteStore, bus: RunBus) -> Iterator[DbSink]:
    s = DbSink(store, bus, batch_size=8)
    s.start()
    yield s
    assert s.stop(10)
    assert s.isFinished() and not s.isRunning()


def test_the_sink_s_backlog_rate_and_errors_are_shown(qtbot: Any, bus: RunBus, sink: DbSink,
                                                     factory: type[EventFactory]) -> None:
    events = factory("run1", "agent1").run(episodes=4, length=5)
    for evt in events:
        bus.publish(evt)
    assert sink.flush(5)
    pane = make_pane(qtbot, bus, sources={"sink": sink.stats})
    pane.refresh()
    values = source_values(pane, "sink")
    assert values["persisted"] == str(len(events)) and values["backlog"] == "0"
    assert values["errors"] == "0" and values["retries"] == "0" and values["last_error"] == "-"
    assert float(values["rows_per_s"]) > 0
    durable = [row.cells for row in pane.subscription_model.rows() if row.cells[1] == "db-sink"]
    assert {cells[0] for cells in durable} >= {"STEP_APPENDED", "EPISODE_FINALIZED", "RUN_COMPLETED"}
    assert all(cells[3:6] == ("0", "lossless", "0") for cells in durable)


def test_a_failing_source_is_an_error_row_and_the_others_still_show(qtbot: Any, bus: RunBus) -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("proxy gone")

    pane = make_pane(qtbot, bus)
    pane.add_source("broken", broken)
    pane.add_source("weird", lambda: ["not", "a", "dict"])  # type: ignore[arg-type, return-value]
    pane.add_source("ok", lambda: {"backlog": 3, "nested": {}, "rate": 2.345, "flag": True})
    pane.refresh()
    rows = pane.source_model.rows()
    errors = {row.cells[0]: row.cells[2] for row in rows if row.severity == ERROR}
    assert errors == {"broken": "RuntimeError: proxy gone", "weird": "stats returned list, not a dict"}
    assert source_values(pane, "ok") == {"backlog": "3", "nested": "none", "rate": "2.3", "flag": "yes"}
    pane.remove_source("broken")
    pane.remove_source("broken")  # idempotent
    pane.refresh()
    assert pane.source_names() == ["weird", "ok"]


def test_start_and_stop_are_idempotent_and_stop_stops_the_timer(qtbot: Any, bus: RunBus) -> None:
    pane = make_pane(qtbot, bus, refresh_interval_ms=5)
    assert not pane.is_refreshing() and pane.refreshes == 0
    pane.start()
    pane.start()
    assert pane.is_refreshing() and pane.refreshes == 1
    qtbot.waitUntil(lambda: pane.refreshes >= 3, timeout=3000)
    pane.stop()
    pane.stop()
    assert not pane.is_refreshing()
    pane.start()
    pane.show()
    pane.close()
    assert not pane.is_refreshing()


def test_a_sink_that_cannot_write_shows_its_backlog_and_error(qtbot: Any, store: TelemetrySQLiteStore,
                                                             bus: RunBus, factory: type[EventFactory]) -> None:
    sink = DbSink(store, bus, batch_size=20, retry_initial_s=0.02, retry_max_s=0.1)
    sink.start()
    try:
        store.set_max_page_count(store.page_count())  # disk full
        f = factory("run1", "agent1")
        events = [f.started()] + [f.step(0, i, observation="x" * 3000) for i in range(40)]
        for evt in events:
            bus.publish(evt)
        pane = make_pane(qtbot, bus, sources={"sink": sink.stats}, refresh_interval_ms=10)
        pane.start()
        qtbot.waitUntil(lambda: int(source_values(pane, "sink").get("retries", "0")) >= 2, timeout=5000)
        values = source_values(pane, "sink")
        assert values["backlog"] == str(len(events)) and values["persisted"] == "0"
        assert "full" in values["last_error"] and int(values["errors"]) >= 1
        tinted = {row.cells[1] for row in pane.source_model.rows() if row.cells[0] == "sink" and row.severity == WARN}
        assert {"errors", "retries", "last_error"} <= tinted
        pane.stop()
        assert not pane.is_refreshing()
        store.set_max_page_count(0)
        assert sink.flush(5)
    finally:
        assert sink.stop(10)
    assert not sink.isRunning()


def test_the_tables_sit_side_by_side_with_ids_in_full_and_several_rows_visible(qtbot: Any, bus: RunBus) -> None:
    for i in range(8):
        bus.subscribe(Topic.STEP_APPENDED, f"ui-run-20261201T101949-57e19161-agent-{i}", maxlen=16,
                      run_id="run-20261201T101949-57e19161", agent_id=f"agent-{i}")
    pane = make_pane(qtbot, bus)
    pane.add_source("sink", lambda: {f"stat_{i}": i for i in range(10)})
    pane.resize(pane.sizeHint())
    pane.show()
    qtbot.waitExposed(pane)
    pane.refresh()
    view = pane.subscription_view
    qtbot.waitUntil(lambda: view.columnWidth(1) > 0)
    assert pane.splitter.orientation() == Qt.Orientation.Horizontal
    metrics = view.fontMetrics()
    for col, text in ((0, "STEP_APPENDED"), (1, "ui-run-20261201T101949-57e19161-agent-7"),
                      (2, "run-20261201T101949-57e19161/agent-7"), (4, "16")):
        assert view.columnWidth(col) >= metrics.horizontalAdvance(text), text  # never cut
    # Every column is as wide as its texts; what does not fit scrolls sideways; the person can resize.
    header = view.horizontalHeader()
    assert all(view.columnWidth(c) >= view.sizeHintForColumn(c) for c in range(header.count()))
    assert header.sectionResizeMode(1) == QHeaderView.ResizeMode.Interactive
    assert header.visualIndex(2) == header.count() - 1  # the stream filter (it repeats the subscriber) last
    header.resizeSection(1, 50)  # a person narrows the subscriber column: it stays so ...
    pane.refresh()
    assert view.columnWidth(1) == 50
    bus.subscribe(Topic.STEP_APPENDED, "ui-run-20261201T101949-57e19161-agent-with-a-longer-id", maxlen=16)
    pane.refresh()  # ... until a wider id arrives
    assert view.columnWidth(1) >= metrics.horizontalAdvance("ui-run-20261201T101949-57e19161-agent-with-a-longer-id")
    for table in (view, pane.source_view):
        rows_visible = table.viewport().height() // table.rowHeight(0)
        assert rows_visible >= 4, rows_visible


def test_overflow_notices_are_listed_per_subscription_and_stream(qtbot: Any, factory: type[EventFactory]) -> None:
    bus = RunBus(overflow_notice_interval_s=0.0)
    pane = make_pane(qtbot, bus, refresh_interval_ms=60_000)  # only the notices themselves wake it
    pane.start()
    slow = bus.subscribe(Topic.STEP_APPENDED, "ui-slow", maxlen=2)
    f = factory("run1", "agent1", first_seq=1)
    for i in range(6):
        bus.publish(f.step(0, i))  # seq 1..4 evicted
    qtbot.waitUntil(lambda: pane.notice_model.rowCount() == 1, timeout=3000)
    (row,) = pane.notice_model.rows()
    assert row.cells[:5] == ("STEP_APPENDED:ui-slow", "run1/agent1", "1-4", "4", "4") and row.severity == WARN
    assert pane.side_tabs.tabText(1) == "Overflow notices (1)"
    assert slow.dropped == 4 and pane.refreshes == 1  # no refresh was due: the notice woke the pump
    pane.stop()
    assert not pane.is_refreshing() and not any(s.subscriber_id == "debug-pane" for s in bus.subscriptions())


def test_a_refresh_that_changes_nothing_leaves_the_notices_tab_alone(qtbot: Any, bus: RunBus,
                                                                    factory: type[EventFactory]) -> None:
    from qtpy.QtCore import QEvent, QObject

    class Paints(QObject):
        count = 0

        def eventFilter(self, _obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt name)
            if event.type() == QEvent.Type.Paint:
                self.count += 1
            return False

    bus.subscribe(Topic.STEP_APPENDED, "ui-run1-agent1", maxlen=100, run_id="run1", agent_id="agent1")
    pane = make_pane(qtbot, bus)
    pane.show()
    qtbot.waitExposed(pane)
    pane.refresh()
    run_turns()  # the refresh's repaints delivered
    paints = Paints()
    pane.side_tabs.tabBar().installEventFilter(paints)
    f = factory("run1", "agent1")
    for i in range(3):  # the subscription's counts change, the notices do not
        bus.publish(f.step(0, i))
        pane.refresh()
        run_turns()  # a repaint the refresh caused would be delivered in these turns
    assert paints.count == 0
    assert pane.side_tabs.tabText(1).endswith("(0)")
