"""The main window with real workers: tab titles, closing and reopening tabs from the Runs tab, a
requested replay selected, Cancel run vs Cancel all, the question when closing mid-run, mark as
failed, and exports through the Runs tab's actions."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path
from typing import Any, Iterator

import pytest

from gym_gui.ingest.worker_specs import WorkerSpec
from gym_gui.qt.app_services import AppServices
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.ui.tab_labels import TabLabels, short_env_name, tab_title
from gym_gui.ui.telemetry_window import MainWindow


@pytest.fixture
def windows(qtbot: Any) -> Iterator[list[MainWindow]]:
    made: list[MainWindow] = []
    yield made
    for window in made:
        assert window.shutdown(30)
        assert window.timers_active() == []


def open_window(qtbot: Any, windows: list[MainWindow], db_path: Path) -> MainWindow:
    services = AppServices(db_path, bus=RunBus())
    window = MainWindow(services)
    window.confirm_close = lambda _run_ids: True
    qtbot.addWidget(window)
    windows.append(window)
    services.start()
    window.show()
    return window


def quick(env_id: str = "FrozenLake-v1", episodes: int = 5) -> WorkerSpec:
    return WorkerSpec(env_id=env_id, episodes=episodes, step_rate_hz=0.0, heartbeat_interval_s=0.2)


def slow(episodes: int = 100_000) -> WorkerSpec:
    return WorkerSpec(episodes=episodes, step_rate_hz=200.0, heartbeat_interval_s=0.2)


def test_labels_count_runs_per_env() -> None:
    labels = TabLabels()
    assert [labels.label(r, e) for r, e in (("a", "FrozenLake-v1"), ("b", "Taxi-v3"), ("c", "FrozenLake-v1"))] == [
        "FrozenLake #1", "Taxi #1", "FrozenLake #2"]
    assert labels.label("a", "Taxi-v3") == "FrozenLake #1"  # fixed once given
    assert short_env_name("ns/CliffWalking-v1") == "CliffWalking" and short_env_name(None) == "Run"
    assert tab_title("Taxi #1", "", "Replay") == "Taxi #1 · no agent · Replay"


def test_tabs_say_which_run_and_agent_they_show_and_reopen_from_the_runs_tab(
        qtbot: Any, windows: list[MainWindow], db_path: Path) -> None:
    window = open_window(qtbot, windows, db_path)
    run_ids = []
    for env_id in ("FrozenLake-v1", "Taxi-v3", "FrozenLake-v1"):
        with qtbot.waitSignal(window.replay_opened, timeout=60000) as opened:
            window.start_run(quick(env_id))
        run_ids.append(opened.args[0])
    titles = window.tab_titles()
    taxi = window.services.registry.state(run_ids[1])
    assert taxi is not None and taxi.env_id is not None
    assert titles == ["Runs", "FrozenLake #1 · agent-1 · Online", "FrozenLake #1 · agent-1 · Replay",
                      "Taxi #1 · agent-1 · Online", "Taxi #1 · agent-1 · Replay",
                      "FrozenLake #2 · agent-1 · Online", "FrozenLake #2 · agent-1 · Replay"]
    index = titles.index("Taxi #1 · agent-1 · Replay")
    assert run_ids[1] in window.tabs.tabToolTip(index)
    # The Runs tab shows each run's label beside its id, so a tab's run is found there.
    runs = window.runs_view
    row = runs.visible_run_ids().index(run_ids[1])
    assert runs.proxy.index(row, 0).data() == f"Taxi #1 · {run_ids[1]}"
    # The Runs tab cannot be closed; the others can.
    assert window.tabs.tabBar().tabButton(0, window.tabs.tabBar().ButtonPosition.RightSide) is None
    window.tabs.tabCloseRequested.emit(0)
    assert window.tab_titles()[0] == "Runs"
    # Close the Taxi replay, then reopen it from the Runs tab: it comes back selected.
    window.tabs.tabCloseRequested.emit(index)
    assert "Taxi #1 · agent-1 · Replay" not in window.tab_titles()
    assert window.replay_tab(run_ids[1], "agent-1") is None
    window.tabs.setCurrentIndex(0)
    qtbot.waitUntil(lambda: window.runs_view.status_of(run_ids[1]) == "completed", timeout=10000)
    window.runs_view.select_runs([run_ids[1]])
    with qtbot.waitSignal(window.replay_opened, timeout=10000):
        window.runs_view.action_open_replay.trigger()
    assert window.current_tab_title() == "Taxi #1 · agent-1 · Replay"
    replay = window.replay_tab(run_ids[1], "agent-1")
    assert replay is not None and replay.episode_count() == 5
    # Asking again focuses the open tab, no second one.
    window.tabs.setCurrentIndex(0)
    window.runs_view.action_open_replay.trigger()
    assert window.current_tab_title() == "Taxi #1 · agent-1 · Replay"
    assert window.tab_titles().count("Taxi #1 · agent-1 · Replay") == 1
    # Close the first Online tab and reopen it: it reads the finished stream back from SQLite.
    first_online = window.tab_titles().index("FrozenLake #1 · agent-1 · Online")
    window.tabs.tabCloseRequested.emit(first_online)
    assert window.online_tab(run_ids[0], "agent-1") is None
    window.runs_view.select_runs([run_ids[0]])
    window.runs_view.action_open_live.trigger()
    assert window.current_tab_title() == "FrozenLake #1 · agent-1 · Online"
    controller = window.online_controller(run_ids[0], "agent-1")
    assert controller is not None
    stored = window.services.store.step_count(run_ids[0])
    qtbot.waitUntil(lambda: controller.stats()["steps_total"] == stored, timeout=10000)


def test_a_replay_opened_from_the_runs_tab_after_a_restart_is_selected(qtbot: Any, windows: list[MainWindow],
                                                                        db_path: Path) -> None:
    first = open_window(qtbot, windows, db_path)
    with qtbot.waitSignal(first.replay_opened, timeout=60000) as opened:
        first.start_run(quick())
    run_id = opened.args[0]
    assert first.shutdown(30)
    second = open_window(qtbot, windows, db_path)
    qtbot.waitUntil(lambda: second.runs_view.summary_of(run_id) is not None, timeout=10000)
    second.runs_view.select_runs([run_id])
    with qtbot.waitSignal(second.replay_opened, timeout=10000):
        second.runs_view.action_open_replay.trigger()
    assert second.current_tab_title() == "FrozenLake #1 · agent-1 · Replay"


def test_cancel_run_cancels_the_current_run_only_and_cancel_all_the_rest(qtbot: Any, windows: list[MainWindow],
                                                                        db_path: Path) -> None:
    window = open_window(qtbot, windows, db_path)
    a = window.start_run(slow())
    b = window.start_run(slow())
    assert a is not None and b is not None
    for run_id in (a, b):
        qtbot.waitUntil(lambda r=run_id: window.services.registry.status(r) is not None
                        and window.services.registry.status(r).value == "running", timeout=30000)
    a_tab = window.online_tab(a, "agent-1")
    window.tabs.setCurrentWidget(a_tab)
    assert window.current_run_id() == a
    window.launch_panel.cancel_button.click()
    qtbot.waitUntil(lambda: window.runs_view.status_of(a) == "cancelled", timeout=30000)
    qtbot.waitUntil(lambda: window.services.launcher.active_run_ids() == [b], timeout=10000)  # a's worker reaped
    qtbot.waitUntil(lambda: window.runs_view.status_of(b) == "running", timeout=10000)  # the Runs tab refreshes
    assert window.launch_panel.cancel_all_button.isEnabled()
    window.launch_panel.cancel_all_button.click()
    qtbot.waitUntil(lambda: window.runs_view.status_of(b) == "cancelled", timeout=30000)
    qtbot.waitUntil(lambda: not window.launch_panel.cancel_all_button.isEnabled(), timeout=10000)


def test_closing_mid_run_asks_and_keeps_the_window_when_told_to(qtbot: Any, windows: list[MainWindow],
                                                                 db_path: Path) -> None:
    window = open_window(qtbot, windows, db_path)
    run_id = window.start_run(slow())
    assert run_id is not None
    asked: list[list[str]] = []
    window.confirm_close = lambda run_ids: asked.append(run_ids) is not None  # "keep the window open"
    window.close()
    assert asked == [[run_id]]
    assert window.isVisible() and window.services.launcher.active_run_ids() == [run_id]
    window.confirm_close = lambda run_ids: True  # "cancel the runs and close"
    window.close()
    assert not window.isVisible()
    assert window.timers_active() == [] and window.services.launcher.active_run_ids() == []


def test_the_close_question_names_the_runs_as_the_tabs_do_and_enter_keeps_the_window(
        qtbot: Any, windows: list[MainWindow], db_path: Path) -> None:
    from qtpy.QtCore import Qt, QTimer
    from qtpy.QtTest import QTest
    from qtpy.QtWidgets import QApplication, QMessageBox

    from gym_gui.ui import telemetry_window

    window = open_window(qtbot, windows, db_path)
    window.confirm_close = lambda run_ids: telemetry_window._ask_close(window, window.run_names(run_ids))
    with qtbot.waitSignal(window.online_opened, timeout=30000):
        run_id = window.start_run(slow())
    assert run_id is not None
    seen: dict[str, Any] = {}

    def answer() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, answer)
            return
        seen["text"] = box.text()
        seen["default"] = box.defaultButton().text() if box.defaultButton() is not None else None
        QTest.keyClick(box, Qt.Key.Key_Return)  # what Enter does

    QTimer.singleShot(0, answer)
    assert not window.close()
    assert seen["default"] == "Keep the window open"
    assert "FrozenLake #1" in seen["text"] and run_id not in seen["text"]
    assert window.isVisible() and window.services.launcher.active_run_ids() == [run_id]
    window.confirm_close = lambda _run_ids: True  # the test's end closes it without asking


def test_the_window_opens_at_its_default_size_and_narrows_to_1024_px(qtbot: Any, windows: list[MainWindow],
                                                                       db_path: Path) -> None:
    from gym_gui.ui.telemetry_window import DEFAULT_SIZE_PX

    window = open_window(qtbot, windows, db_path)
    window.resize(*DEFAULT_SIZE_PX)
    qtbot.waitUntil(lambda: (window.width(), window.height()) == DEFAULT_SIZE_PX, timeout=5000)
    assert window.launch_panel.minimumSizeHint().width() <= 1000  # the launch row no longer holds it wide
    window.resize(1024, DEFAULT_SIZE_PX[1])
    qtbot.waitUntil(lambda: window.width() == 1024, timeout=5000)
    assert window.minimumSizeHint().width() <= 1024


def _replayed_quick_run(qtbot: Any, window: MainWindow, episodes: int) -> tuple[str, str, Any]:
    """Start a quick run of ``episodes`` and wait for its Replay tab: (run_id, agent_id, the tab)."""
    with qtbot.waitSignal(window.replay_opened, timeout=60000) as opened:
        window.start_run(quick(episodes=episodes))
    run_id, agent_id = opened.args
    replay = window.replay_tab(run_id, agent_id)
    assert replay is not None
    return run_id, agent_id, replay


def test_with_online_and_replay_tabs_the_window_fits_1024_by_700_and_does_not_grow(
        qtbot: Any, windows: list[MainWindow], db_path: Path) -> None:
    window = open_window(qtbot, windows, db_path)
    run_id, agent_id, replay = _replayed_quick_run(qtbot, window, 5)
    qtbot.waitUntil(lambda: replay.episode_count() == 5, timeout=10000)
    for tab in (window.online_tab(run_id, agent_id), replay):
        window.tabs.setCurrentWidget(tab)
        window.resize(1024, 700)
        qtbot.waitUntil(lambda: (window.width(), window.height()) == (1024, 700), timeout=5000)
        assert window.minimumSizeHint().height() <= 700 and window.minimumSizeHint().width() <= 1024


def test_mark_as_failed_finishes_a_silent_run_in_sqlite(qtbot: Any, windows: list[MainWindow], db_path: Path) -> None:
    window = open_window(qtbot, windows, db_path)
    run_id = window.start_run(slow())
    assert run_id is not None
    qtbot.waitUntil(lambda: window.runs_view.status_of(run_id) == "running", timeout=30000)
    window.tabs.setCurrentIndex(0)
    window.runs_view.select_runs([run_id])
    assert window.runs_view.action_mark_failed.isEnabled()
    with qtbot.waitSignal(window.services.launcher.run_exited, timeout=30000):  # its worker is stopped first
        window.runs_view.action_mark_failed.trigger()
    assert window.services.registry.status(run_id).value == "failed"  # type: ignore[union-attr]

    def stored_status() -> str | None:
        conn = sqlite3.connect(str(db_path))
        try:
            row = conn.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            return None if row is None else str(row[0])
        finally:
            conn.close()

    qtbot.waitUntil(lambda: stored_status() == "failed", timeout=30000)
    qtbot.waitUntil(lambda: window.services.launcher.active_run_ids() == [], timeout=30000)  # its worker stopped


def test_exports_from_the_runs_tab_write_the_files(qtbot: Any, windows: list[MainWindow], db_path: Path,
                                                   tmp_path: Path) -> None:
    window = open_window(qtbot, windows, db_path)
    with qtbot.waitSignal(window.replay_opened, timeout=60000) as opened:
        window.start_run(quick(episodes=4))
    run_id = opened.args[0]
    out = tmp_path / "exports"
    window.exporter.choose_directory = lambda _title: str(out)
    window.tabs.setCurrentIndex(0)
    qtbot.waitUntil(lambda: window.runs_view.status_of(run_id) == "completed", timeout=10000)
    window.runs_view.select_runs([run_id])
    with qtbot.waitSignal(window.exporter.finished, timeout=10000) as done:
        window.runs_view.action_export_csv.trigger()
    assert done.args[:2] == [run_id, "csv"]
    with (out / f"{run_id}-episodes.csv").open(newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 4
    # The GIF of the episode the Replay tab shows (its first, selected when it opened).
    replay = window.replay_tab(run_id, "agent-1")
    assert replay is not None
    qtbot.waitUntil(lambda: replay.episode_index is not None, timeout=10000)
    episode = replay.episode_index
    window.exporter.choose_episode = lambda _run, _default: pytest.fail("the Replay tab's episode is used")
    with qtbot.waitSignal(window.exporter.finished, timeout=20000) as gif:
        window.runs_view.action_export_gif.trigger()
    assert gif.args[2]["path"] == out / f"{run_id}-episode{episode}.gif"
    assert gif.args[2]["path"].stat().st_size > 0
    assert "episode GIF" in window.statusBar().currentMessage()


def test_compare_from_the_runs_tab_overlays_the_selected_runs(qtbot: Any, windows: list[MainWindow],
                                                              db_path: Path) -> None:
    window = open_window(qtbot, windows, db_path)
    run_ids = []
    for env_id in ("FrozenLake-v1", "FrozenLake-v1"):
        with qtbot.waitSignal(window.replay_opened, timeout=60000) as opened:
            window.start_run(quick(env_id, episodes=6))
        run_ids.append(opened.args[0])
    window.tabs.setCurrentIndex(0)
    qtbot.waitUntil(lambda: all(window.runs_view.status_of(r) == "completed" for r in run_ids), timeout=10000)
    window.runs_view.select_runs(run_ids)
    with qtbot.waitSignal(window.compare_opened, timeout=10000) as opened_compare:
        window.runs_view.action_compare.trigger()
    assert sorted(opened_compare.args[0]) == sorted(run_ids)
    view = window.tabs.currentWidget()
    assert window.current_tab_title() == "Compare · 2 runs"
    qtbot.waitUntil(lambda: len(view.runs()) == 2, timeout=10000)  # type: ignore[attr-defined]
    assert sorted(r.run_id for r in view.runs()) == sorted(run_ids)  # type: ignore[attr-defined]
    # Comparing again reuses the tab.
    window.runs_view.select_runs(run_ids[:1])
    window.runs_view.compare_button.click()
    assert window.tab_titles().count("Compare · 1 run") == 1 and not any(
        t == "Compare · 2 runs" for t in window.tab_titles())
    # A deleted run leaves the comparison; the tab closes with its last run.
    window.runs_view.select_runs(run_ids)
    window.runs_view.compare_button.click()
    window.runs_view.confirm = lambda _title, _text: True
    with qtbot.waitSignal(window.runs_view.run_deleted, timeout=10000):
        window.runs_view.delete_runs(run_ids[:1])
    assert "Compare · 1 run" in window.tab_titles()
    qtbot.waitUntil(lambda: [r.run_id for r in view.runs()] == run_ids[1:], timeout=10000)  # type: ignore[attr-defined]
    with qtbot.waitSignal(window.runs_view.run_deleted, timeout=10000):
        window.runs_view.delete_runs(run_ids[1:])
    assert not any(t.startswith("Compare") for t in window.tab_titles())


def test_the_replayed_episode_exports_as_gif_from_the_file_menu(qtbot: Any, windows: list[MainWindow], db_path: Path,
                                                                tmp_path: Path) -> None:
    window = open_window(qtbot, windows, db_path)
    run_id, agent_id, replay = _replayed_quick_run(qtbot, window, 3)
    window.tabs.setCurrentWidget(replay)
    qtbot.waitUntil(lambda: replay.episode_index is not None, timeout=10000)
    window.exporter.choose_directory = lambda _title: str(tmp_path)
    with qtbot.waitSignal(window.exporter.finished, timeout=20000) as done:
        window.action_export_episode_gif.trigger()
    result = done.args[2]
    assert result["path"] == tmp_path / f"{run_id}-episode{replay.episode_index}.gif"
    assert result["agent_id"] == agent_id and result["frames"] == result["steps"] > 0
    window.tabs.setCurrentIndex(0)  # no Replay tab current: nothing to export, and it says so
    window.action_export_episode_gif.trigger()
    assert "open a Replay tab" in window.statusBar().currentMessage()
