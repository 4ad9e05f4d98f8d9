"""RunsView over a real SQLite file and a real StoreReader: aggregates, refresh from another writer,
sort, filters, and the context menu's actions (triggered as QActions)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Iterator

import pytest
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import QApplication, QMessageBox

from event_factory import EventFactory
from gym_gui.qt.store_reader import StoreReader
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore
from gym_gui.ui.runs_table_model import COLUMNS
from gym_gui.ui.runs_view import STATUS_FILTERS, RunsView


@pytest.fixture
def reader(store: TelemetrySQLiteStore) -> Iterator[StoreReader]:
    r = StoreReader(store)
    yield r
    assert r.stop(5)


def make_view(qtbot: Any, reader: StoreReader, **kwargs: Any) -> RunsView:
    view = RunsView(reader, refresh_interval_ms=kwargs.pop("refresh_interval_ms", 100), **kwargs)
    qtbot.addWidget(view)
    view.resize(1200, 400)
    view.show()
    return view


def write_runs(store: TelemetrySQLiteStore) -> None:
    lake = EventFactory("r-lake", "agent-1")
    store.write_batch([lake.started("FrozenLake-v1"), *lake.episodes(3, 4), lake.completed()])
    taxi = EventFactory("r-taxi", "agent-2")
    store.write_batch([taxi.started("Taxi-v3"), *taxi.episodes(5, 2), taxi.completed("failed")])
    going = EventFactory("r-going", "agent-1")
    store.write_batch([going.started("CartPole-v1"), *going.episodes(1, 10)])


def refreshed(qtbot: Any, view: RunsView, count: int) -> None:
    qtbot.waitUntil(lambda: view.model.rowCount() == count and all(
        view.summary_of(r) is not None for r in view.model.run_ids()), timeout=5000)


def test_stored_runs_are_listed_with_their_aggregates(qtbot: Any, store: TelemetrySQLiteStore,
                                                      reader: StoreReader) -> None:
    write_runs(store)
    view = make_view(qtbot, reader)
    view.start()
    refreshed(qtbot, view, 3)
    texts = {view.run_at(r): [view.proxy.index(r, c).data() for c in range(len(COLUMNS))]
             for r in range(view.proxy.rowCount())}
    lake = dict(zip(COLUMNS, texts["r-lake"]))
    assert (lake["status"], lake["env"], lake["agents"], lake["episodes"], lake["steps"]) == (
        "completed", "FrozenLake-v1", "agent-1", "3", "12")
    assert (lake["last return"], lake["best return"]) == ("2", "2")
    assert lake["hyper-parameters"] == "alpha=0.1" and lake["started"] and lake["duration"].endswith(" s")
    assert dict(zip(COLUMNS, texts["r-taxi"]))["status"] == "failed"
    assert dict(zip(COLUMNS, texts["r-going"]))["status"] == "running"
    assert view.count_label.text() == "3 runs"
    metrics = view.table.fontMetrics()  # columns fit their texts once the rows arrive (none elided)
    for column, text in (("env", "FrozenLake-v1"), ("status", "completed"), ("started", lake["started"])):
        assert view.table.columnWidth(COLUMNS.index(column)) >= metrics.horizontalAdvance(text), column


def test_runs_another_process_writes_appear_and_an_unchanged_file_is_not_read_again(
        qtbot: Any, store: TelemetrySQLiteStore, reader: StoreReader, db_path: Path) -> None:
    write_runs(store)
    view = make_view(qtbot, reader)
    view.start()
    refreshed(qtbot, view, 3)
    first = view.summary_of("r-lake")
    before = view.refreshes
    qtbot.waitUntil(lambda: view.refreshes >= before + 3, timeout=5000)
    assert view.summary_of("r-lake") is first  # nothing changed: the aggregates were not read again
    with TelemetrySQLiteStore(db_path) as other:  # another process's store on the same file
        f = EventFactory("r-elsewhere", "agent-9")
        other.write_batch([f.started("CliffWalking-v1"), *f.episodes(2, 3), f.completed()])
    qtbot.waitUntil(lambda: view.summary_of("r-elsewhere") is not None, timeout=5000)
    summary = view.summary_of("r-elsewhere")
    assert summary is not None and (summary.episodes, summary.steps) == (2, 6)
    assert view.summary_of("r-lake") is first


def test_columns_sort_by_value_and_the_filters_narrow_the_rows(qtbot: Any, store: TelemetrySQLiteStore,
                                                               reader: StoreReader) -> None:
    write_runs(store)
    view = make_view(qtbot, reader)
    view.start()
    refreshed(qtbot, view, 3)
    view.table.sortByColumn(COLUMNS.index("episodes"), Qt.SortOrder.DescendingOrder)
    assert view.visible_run_ids() == ["r-taxi", "r-lake", "r-going"]  # 5, 3, 1 episodes (numbers, not texts)
    view.table.sortByColumn(COLUMNS.index("steps"), Qt.SortOrder.AscendingOrder)
    assert view.visible_run_ids() == ["r-taxi", "r-going", "r-lake"]  # 10, 10, 12 steps
    view.filter_edit.setText("taxi")
    assert view.visible_run_ids() == ["r-taxi"]
    view.filter_edit.setText("agent-1 CartPole")
    assert view.visible_run_ids() == ["r-going"]
    assert view.count_label.text() == "1 of 3 runs"
    view.filter_edit.clear()
    view.status_filter.setCurrentText("failed")
    assert view.visible_run_ids() == ["r-taxi"]
    view.status_filter.setCurrentText(next(k for k in STATUS_FILTERS if k.startswith("going")))
    assert view.visible_run_ids() == ["r-going"]
    view.set_run("r-going", "stalled", "CartPole-v1", ("agent-1",))  # the registry's live status wins
    assert view.visible_run_ids() == ["r-going"] and view.status_of("r-going") == "stalled"


def test_the_menu_actions_emit_for_the_selected_runs(qtbot: Any, store: TelemetrySQLiteStore,
                                                     reader: StoreReader) -> None:
    write_runs(store)
    view = make_view(qtbot, reader)
    view.start()
    refreshed(qtbot, view, 3)
    menu = view.context_menu()
    assert [a.text() for a in menu.actions() if a.text()] == [
        "Open live", "Open replay", "Compare selected runs", "Export episodes and steps as CSV...",
        "Export episodes and steps as JSONL...", "Export an episode as GIF...", "Mark as failed", "Delete..."]
    view.select_runs(["r-lake", "r-taxi"])
    with qtbot.waitSignal(view.compare_requested) as compare:
        view.action_compare.trigger()
    assert sorted(compare.args[0]) == ["r-lake", "r-taxi"]
    view.select_runs(["r-lake"])
    with qtbot.waitSignal(view.replay_requested) as replay:
        view.action_open_replay.trigger()
    assert replay.args == ["r-lake"]
    with qtbot.waitSignal(view.live_requested) as live:
        view.action_open_live.trigger()
    assert live.args == ["r-lake"]
    for action, fmt in ((view.action_export_csv, "csv"), (view.action_export_jsonl, "jsonl"),
                        (view.action_export_gif, "gif")):
        with qtbot.waitSignal(view.export_requested) as export:
            action.trigger()
        assert export.args == ["r-lake", fmt]
    assert not view.action_mark_failed.isEnabled()  # a finished run
    view.select_runs(["r-going"])
    assert view.action_mark_failed.isEnabled() and not view.action_delete.isEnabled()  # running: not deletable
    with qtbot.waitSignal(view.mark_failed_requested) as failed:
        view.action_mark_failed.trigger()
    assert failed.args == ["r-going"]


def counts(db_path: Path, run_id: str) -> tuple[int, int]:
    conn = sqlite3.connect(str(db_path))
    try:
        steps = conn.execute("SELECT COUNT(*) FROM steps WHERE run_id = ?", (run_id,)).fetchone()[0]
        episodes = conn.execute("SELECT COUNT(*) FROM episodes WHERE run_id = ?", (run_id,)).fetchone()[0]
        return steps, episodes
    finally:
        conn.close()


def test_delete_asks_then_removes_that_run_and_nothing_else(qtbot: Any, store: TelemetrySQLiteStore,
                                                            reader: StoreReader, db_path: Path) -> None:
    write_runs(store)
    view = make_view(qtbot, reader)
    view.start()
    refreshed(qtbot, view, 3)
    asked: list[str] = []
    view.confirm = lambda title, text: asked.append(text) is not None and False  # the person says Cancel
    view.select_runs(["r-lake"])
    view.action_delete.trigger()
    assert len(asked) == 1 and "r-lake" in asked[0]
    assert counts(db_path, "r-lake") == (12, 3) and view.status_of("r-lake") == "completed"
    view.confirm = lambda title, text: True
    with qtbot.waitSignal(view.run_deleted, timeout=5000) as deleted:
        view.action_delete.trigger()
    assert deleted.args == ["r-lake"]
    assert view.status_of("r-lake") is None
    assert counts(db_path, "r-lake") == (0, 0)
    assert counts(db_path, "r-taxi") == (10, 5) and counts(db_path, "r-going") == (10, 1)
    before = view.refreshes
    qtbot.waitUntil(lambda: view.refreshes >= before + 2, timeout=5000)
    assert sorted(view.model.run_ids()) == ["r-going", "r-taxi"]  # a refresh does not bring it back


def test_delete_through_the_real_question_box(qtbot: Any, store: TelemetrySQLiteStore, reader: StoreReader,
                                              db_path: Path) -> None:
    write_runs(store)
    view = make_view(qtbot, reader)
    view.start()
    refreshed(qtbot, view, 3)
    view.select_runs(["r-taxi", "r-going"])  # the running one is not deleted
    seen: list[str] = []

    def answer() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, answer)
            return
        seen.append(box.text())
        box.button(QMessageBox.StandardButton.Yes).click()

    QTimer.singleShot(0, answer)
    with qtbot.waitSignal(view.run_deleted, timeout=5000) as deleted:
        view.action_delete.trigger()
    assert deleted.args == ["r-taxi"]
    assert "r-taxi" in seen[0] and "1 selected run(s) still going are not deleted" in seen[0]
    assert counts(db_path, "r-taxi") == (0, 0) and counts(db_path, "r-going") == (10, 1)


def test_columns_fit_while_shown_at_most_once_per_interval_and_a_hidden_tab_fits_when_shown(
        qtbot: Any, reader: StoreReader) -> None:
    view = RunsView(reader)
    qtbot.addWidget(view)
    view.resize(1200, 400)
    for i in range(20):  # the registry's news of runs while the tab is hidden: no fit at all
        view.set_run(f"r-{i}", "running", "FrozenLake-v1", ("agent-1",))
    assert view.fits == 0
    view.show()  # shown: one fit, the columns as wide as their texts
    qtbot.waitExposed(view)
    assert view.fits == 1
    metrics = view.table.fontMetrics()
    assert view.table.columnWidth(COLUMNS.index("env")) >= metrics.horizontalAdvance("FrozenLake-v1")
    for i in range(20):  # a burst of news: one more fit, at the interval's end
        view.set_run(f"r-{i}", "stalled", "FrozenLake-v1-with-a-much-longer-name", ("agent-1",))
    assert view.fits == 1
    qtbot.waitUntil(lambda: view.fits == 2, timeout=5000)
    assert view.table.columnWidth(COLUMNS.index("env")) >= metrics.horizontalAdvance(
        "FrozenLake-v1-with-a-much-longer-name")
    view.stop()
