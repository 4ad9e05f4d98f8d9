"""The whole app in one window: a real worker watched live, persisted, replayed; history; cancel; shutdown."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from gym_gui.qt.app_services import AppServices
from gym_gui.ingest.worker_specs import WorkerSpec
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.ui.telemetry_window import MainWindow
from gym_gui.workers.envs import resolve_env_id

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def windows(qtbot: Any) -> Iterator[list[MainWindow]]:
    """Windows made by a test; each is proven shut down (timers, threads, workers) afterwards."""
    made: list[MainWindow] = []
    yield made
    for window in made:
        assert window.shutdown(30)
        assert window.timers_active() == []
        services = window.services
        assert not services.sink.isRunning() and services.reader.threads_alive() == 0
        assert services.launcher.active_run_ids() == []


def open_window(qtbot: Any, windows: list[MainWindow], db_path: Path) -> MainWindow:
    services = AppServices(db_path, bus=RunBus())
    window = MainWindow(services)
    window.confirm_close = lambda _run_ids: True  # a test's end closes the window without asking
    qtbot.addWidget(window)
    windows.append(window)
    services.start()
    window.show()
    return window


def test_a_run_is_watched_live_persisted_and_replayed(qtbot: Any, windows: list[MainWindow], db_path: Path) -> None:
    window = open_window(qtbot, windows, db_path)
    spec = WorkerSpec(episodes=30, step_rate_hz=0.0, heartbeat_interval_s=0.2)
    with qtbot.waitSignal(window.online_opened, timeout=5000):
        run_id = window.start_run(spec)
    assert run_id is not None
    assert window.tab_titles()[:2] == ["Runs", "FrozenLake #1 · agent-1 · Online"]
    with qtbot.waitSignal(window.replay_opened, timeout=60000) as blocker:
        pass
    assert blocker.args == [run_id, "agent-1"]
    assert "FrozenLake #1 · agent-1 · Replay" in window.tab_titles()
    assert window.current_tab_title() == "FrozenLake #1 · agent-1 · Online"  # a replay nobody asked for opens behind
    store = window.services.store
    stored_steps = store.step_count(run_id)
    assert len(store.episode_records(run_id, "agent-1")) == 30
    controller = window.online_controller(run_id, "agent-1")
    assert controller is not None
    # Live view: every stored step was seen live or backfilled, exactly once.
    qtbot.waitUntil(lambda: controller.stats()["steps_total"] == stored_steps, timeout=10000)
    assert window.runs_view.status_of(run_id) == "completed"
    replay = window.replay_tab(run_id, "agent-1")
    assert replay is not None and replay.episode_count() == 30


def test_history_runs_reopen_as_replays_after_a_restart(qtbot: Any, windows: list[MainWindow], db_path: Path) -> None:
    first = open_window(qtbot, windows, db_path)
    with qtbot.waitSignal(first.replay_opened, timeout=60000):
        run_id = first.start_run(WorkerSpec(episodes=5, heartbeat_interval_s=0.0))
    assert first.shutdown(30)
    second = open_window(qtbot, windows, db_path)
    qtbot.waitUntil(lambda: second.runs_view.status_of(run_id) == "completed", timeout=10000)
    assert second.tab_titles() == ["Runs"]  # history opens no live tab
    with qtbot.waitSignal(second.replay_opened, timeout=10000) as blocker:
        second.open_replay(run_id)
    assert blocker.args == [run_id, "agent-1"]
    replay = second.replay_tab(run_id, "agent-1")
    assert replay is not None and replay.episode_count() == 5


def test_a_deleted_run_stays_gone_after_a_restart(qtbot: Any, windows: list[MainWindow], db_path: Path) -> None:
    from event_factory import EventFactory

    first = open_window(qtbot, windows, db_path)
    lake, taxi = EventFactory("r-lake", "agent-1"), EventFactory("r-taxi", "agent-1")
    first.services.store.write_batch([lake.started("FrozenLake-v1"), *lake.episodes(2, 3), lake.completed(),
                                      taxi.started("Taxi-v3"), *taxi.episodes(1, 3), taxi.completed()])
    qtbot.waitUntil(lambda: first.runs_view.summary_of("r-lake") is not None
                    and first.runs_view.status_of("r-taxi") == "completed", timeout=10000)
    first.runs_view.confirm = lambda _title, _text: True
    with qtbot.waitSignal(first.runs_view.run_deleted, timeout=5000):
        first.runs_view.delete_runs(["r-lake"])
    assert first.shutdown(30)
    second = open_window(qtbot, windows, db_path)
    qtbot.waitUntil(lambda: second.services.registry.stored_loaded and second.runs_view.refreshes >= 1,
                    timeout=10000)
    assert second.services.registry.state("r-lake") is None  # the registry does not report it
    assert second.runs_view.status_of("r-lake") is None and second.runs_view.status_of("r-taxi") == "completed"


def test_mark_failed_on_a_running_run_stops_it_then_records_one_failed_outcome_after_its_events(
        qtbot: Any, windows: list[MainWindow], db_path: Path) -> None:
    from gym_gui.telemetry.events import Topic

    window = open_window(qtbot, windows, db_path)
    services = window.services
    seen = services.bus.subscribe_topics(list(Topic), "test-all", maxlen=None)
    run_id = window.start_run(WorkerSpec(episodes=100000, step_rate_hz=200.0, heartbeat_interval_s=0.2))
    assert run_id is not None
    qtbot.waitUntil(lambda: window.online_tab(run_id, "agent-1") is not None
                    and window.online_tab(run_id, "agent-1").steps_seen >= 20, timeout=30000)
    with qtbot.waitSignal(services.launcher.run_exited, timeout=30000):
        window.mark_failed(run_id)  # returns at once: the worker is stopping
        assert services.registry.status(run_id).value == "running"
    state = services.registry.state(run_id)
    assert state is not None and state.status.value == "failed" and state.reason == "marked as failed in the Runs tab"
    events = [e for e in seen.drain() if e.run_id == run_id and e.agent_id == "agent-1"]
    seqs = [e.seq_id for e in events]
    assert seqs == sorted(set(seqs))  # no seq_id used twice, none going back
    completions = [e for e in events if e.topic is Topic.RUN_COMPLETED]
    assert [c.payload["outcome"] for c in completions] == ["cancelled", "failed"]
    assert events[-1] is completions[-1] and completions[-1].payload["source"] == "update_run_outcome"
    qtbot.waitUntil(lambda: (services.store.run(run_id) or services.store.run("?")) is not None
                    and services.store.run(run_id).status == "failed", timeout=10000)
    assert services.store.run(run_id).outcome == "failed" and services.sink.stats()["conflicts"] == 0
    qtbot.waitUntil(lambda: window.runs_view.status_of(run_id) == "failed", timeout=10000)
    tab = window.online_tab(run_id, "agent-1")
    qtbot.waitUntil(lambda: tab.header_text("status") == "failed", timeout=10000)
    assert services.bus.sequence_gaps == 0


def test_cancel_ends_the_run_cancelled_and_still_replays_what_it_did(qtbot: Any, windows: list[MainWindow],
                                                                      db_path: Path) -> None:
    window = open_window(qtbot, windows, db_path)
    run_id = window.start_run(WorkerSpec(episodes=100_000, step_rate_hz=200.0, heartbeat_interval_s=0.2))
    assert run_id is not None
    controller = window.online_controller(run_id, "agent-1")
    assert controller is not None
    qtbot.waitUntil(lambda: controller.stats()["episodes_total"] >= 2, timeout=30000)
    assert window.launch_panel.cancel_button.isEnabled()
    with qtbot.waitSignal(window.replay_opened, timeout=30000):
        window.launch_panel.cancel_button.click()
    assert window.runs_view.status_of(run_id) == "cancelled"
    qtbot.waitUntil(lambda: not window.launch_panel.cancel_button.isEnabled(), timeout=5000)  # worker reaped
    replay = window.replay_tab(run_id, "agent-1")
    assert replay is not None and replay.episode_count() >= 2


def test_the_app_command_runs_a_training_run_to_its_replay(tmp_path: Path) -> None:
    db = tmp_path / "demo.sqlite"
    proc = subprocess.run(
        [sys.executable, "-m", "gym_gui", "--db", str(db), "--start", "--episodes", "10", "--step-rate-hz", "0",
         "--quit-when-replayed"],
        cwd=REPO, capture_output=True, text=True, timeout=90,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "replay ready: tab FrozenLake #1 · agent-1 · Replay (completed)" in proc.stdout
    assert f"database: {db.resolve()}" in proc.stdout


# A worker in the existing gym_gui envelopes with two agents: lifecycle records carry no agent_id.
TWO_AGENT_WORKER = r"""
import json, sys
def out(record):
    sys.stdout.write(json.dumps(record) + "\n")
out({"event": "run_started", "run_id": "r-two", "timestamp": 1800000000.0, "payload": {"env_id": "FrozenLake-v1"}})
for episode in range(4):
    for agent in ("agent-a", "agent-b"):
        for step in range(25):
            out({"type": "step", "run_id": "r-two", "agent_id": agent, "episode_index": episode, "step_index": step,
                 "action": step % 4, "observation": step % 16, "reward": 0.0, "terminated": step == 24,
                 "truncated": False, "ts_unix_ns": 1800000000000000000 + step})
        out({"type": "episode", "run_id": "r-two", "agent_id": agent, "episode_index": episode,
             "total_reward": 1.0, "steps": 25, "terminated": True, "truncated": False})
out({"event": "run_completed", "run_id": "r-two", "timestamp": 1800000001.0, "payload": {"outcome": "completed"}})
"""


def test_a_worker_command_opens_a_tab_per_agent_and_each_sees_every_step(
        qtbot: Any, windows: list[MainWindow], db_path: Path) -> None:
    window = open_window(qtbot, windows, db_path)
    opened: list[list[Any]] = []
    window.replay_opened.connect(lambda run_id, agent_id: opened.append([run_id, agent_id]))
    launch_id = window.start_command([sys.executable, "-c", TWO_AGENT_WORKER])  # the worker names its run r-two
    assert launch_id is not None and launch_id != "r-two"
    qtbot.waitUntil(lambda: len(opened) >= 2, timeout=30000)
    assert sorted(a for _r, a in opened) == ["agent-a", "agent-b"]
    for agent in ("agent-a", "agent-b"):
        controller = window.online_controller("r-two", agent)
        assert controller is not None  # opened when the registry saw the stream, after its first events
        # Everything before the tab opened came back from SQLite, nothing twice.
        qtbot.waitUntil(lambda c=controller: c.stats()["steps_total"] == 100 and c.stats()["pending_backfill"] == 0,
                        timeout=10000)
        assert controller.stats()["episodes_total"] == 4
        replay = window.replay_tab("r-two", agent)
        assert replay is not None and replay.episode_count() == 4
    # The lifecycle records carry no agent: their stream (the default agent) gets no tab of its own.
    expected = sorted(["Runs", "FrozenLake #1 · agent-a · Online", "FrozenLake #1 · agent-b · Online",
                       "FrozenLake #1 · agent-a · Replay", "FrozenLake #1 · agent-b · Replay"])
    qtbot.waitUntil(lambda: sorted(window.tab_titles()) == expected, timeout=10000)


def test_the_app_command_runs_a_worker_command_to_its_replay(tmp_path: Path) -> None:
    db = tmp_path / "command.sqlite"
    proc = subprocess.run(
        [sys.executable, "-m", "gym_gui", "--db", str(db), "--quit-when-replayed", "--",
         sys.executable, "-c", TWO_AGENT_WORKER],
        cwd=REPO, capture_output=True, text=True, timeout=90,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "run r-two" not in proc.stdout  # the window names the run; the worker's own run_id is r-two
    assert "replay ready: tab FrozenLake #1 · agent-" in proc.stdout and "(completed)" in proc.stdout


def test_a_worker_command_that_dies_silently_shows_as_a_failed_run(qtbot: Any, windows: list[MainWindow],
                                                                    db_path: Path) -> None:
    window = open_window(qtbot, windows, db_path)
    run_id = window.start_command([sys.executable, "-c", "import sys; sys.stderr.write('no gym here\\n'); sys.exit(3)"])
    assert run_id is not None
    qtbot.waitUntil(lambda: window.runs_view.status_of(run_id) == "failed", timeout=30000)
    state = window.services.registry.state(run_id)
    assert state is not None and state.outcome == "failed"
    # Its only stream is the proxy's failed completion: the tab, opened after it, reads it from SQLite.
    # It carries no step, so its tab shows once the run is persisted and no other stream has data.
    qtbot.waitUntil(lambda: window.tab_titles() == ["Runs", "Run #1 · agent-0 · Online"], timeout=10000)
    tab = window.online_tab(run_id, "agent-0")
    assert tab is not None
    qtbot.waitUntil(lambda: tab.header_text("status") == "failed (exit code 3)", timeout=10000)
    assert "no gym here" in tab.header_tooltip("status")


def test_the_start_button_launches_the_options_shown(qtbot: Any, windows: list[MainWindow], db_path: Path) -> None:
    window = open_window(qtbot, windows, db_path)
    panel = window.launch_panel
    panel.set_spec(WorkerSpec(env_id="Taxi-v3", episodes=3, agent_id="taxi-1", step_rate_hz=0.0))
    taxi = resolve_env_id("Taxi-v3")  # the list shows the installed name (Taxi-v4 in Gymnasium 1.x)
    assert panel.spec() == WorkerSpec(env_id=taxi, episodes=3, agent_id="taxi-1", step_rate_hz=0.0)
    with qtbot.waitSignal(window.replay_opened, timeout=60000) as blocker:
        panel.start_button.click()
    run_id, agent_id = blocker.args
    assert agent_id == "taxi-1" and window.runs_view.status_of(run_id) == "completed"
    state = window.services.registry.state(run_id)
    assert state is not None and state.env_id == taxi  # the env the list showed is the one that ran
    replay = window.replay_tab(run_id, "taxi-1")
    assert replay is not None and replay.episode_count() == 3


def test_help_shows_the_worker_command_form() -> None:
    proc = subprocess.run([sys.executable, "-m", "gym_gui", "--help"], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    usage = proc.stdout.splitlines()[0]
    assert usage == "usage: python -m gym_gui [options] [-- WORKER CMD [ARG ...]]"
    assert "Anything after -- is a worker command" in proc.stdout
    assert "python -m gym_gui --db runs/x.sqlite -- python my_worker.py" in proc.stdout


def test_a_normal_start_without_xdg_runtime_dir_prints_no_qt_warning(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    env.update(QT_QPA_PLATFORM="offscreen", TMPDIR=str(tmp_path))
    proc = subprocess.run(
        [sys.executable, "-m", "gym_gui", "--db", str(tmp_path / "x.sqlite"), "--start", "--episodes", "3",
         "--step-rate-hz", "0", "--quit-when-replayed"],
        cwd=REPO, capture_output=True, text=True, timeout=90, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "XDG_RUNTIME_DIR" not in proc.stderr and "QStandardPaths" not in proc.stderr, proc.stderr
    runtime = tmp_path / f"gym-gui-runtime-{os.getuid()}"
    assert runtime.is_dir() and (runtime.stat().st_mode & 0o777) == 0o700
