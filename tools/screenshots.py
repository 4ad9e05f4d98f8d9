#!/usr/bin/env python3
"""Render the main views of the real window offscreen to PNGs (``tools/screenshots`` runs this).

Builds the real MainWindow on a fresh SQLite file, trains three short real runs with the built-in
workers (FrozenLake Q-learning twice with different seeds, CartPole once), and grabs:

- ``online.png``: the Online tab of a run in progress (frame, learning curves, counters);
- ``replay.png``: the Replay tab of a finished run, an episode loaded, the scrubber halfway;
- ``compare.png``: the Runs tab's comparison of the two FrozenLake runs (curves and parameters);
- ``runs.png``: the Runs tab with the three runs;
- ``debug.png``: the telemetry debug dock.

Usage: tools/screenshots [OUT_DIR]   (default docs/images)
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qtpy.QtCore import QSize  # noqa: E402
from qtpy.QtWidgets import QApplication, QGraphicsView, QWidget  # noqa: E402

from gym_gui.ingest.worker_specs import WorkerSpec  # noqa: E402
from gym_gui.qt.app_services import AppServices  # noqa: E402
from gym_gui.telemetry.run_bus import RunBus  # noqa: E402
from gym_gui.ui.telemetry_window import MainWindow  # noqa: E402

WINDOW_SIZE = QSize(1400, 1000)


def wait_until(app: QApplication, condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        app.processEvents()
        time.sleep(0.01)


def settle(app: QApplication, seconds: float = 0.3) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def grab(widget: QWidget, path: Path) -> None:
    """Save what ``widget`` shows once no chart view holds its repaint: the Online tab lets a refresh's
    charts repaint at the next turn (updates off on their viewports until then), and a widget whose
    updates are off renders nothing."""
    app = QApplication.instance()
    views = widget.findChildren(QGraphicsView)
    wait_until(app, lambda: all(v.viewport().updatesEnabled() for v in views), 10, "the charts' repaint")
    pixmap = widget.grab()
    if not pixmap.save(str(path)):
        raise RuntimeError(f"could not write {path}")
    print(f"wrote {path} ({pixmap.width()}x{pixmap.height()})")


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else Path(__file__).resolve().parent.parent / "docs" / "images"
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory(prefix="screenshots-") as tmp:
        services = AppServices(Path(tmp) / "telemetry.sqlite", bus=RunBus())
        window = MainWindow(services)
        window.resize(WINDOW_SIZE)
        window.show()
        services.start()
        try:
            # Two finished FrozenLake runs to compare, and a CartPole run watched live.
            finished: list[str] = []
            for seed, episodes in ((0, 400), (1, 400)):
                run_id = window.start_run(WorkerSpec(env_id="FrozenLake-v1", episodes=episodes, seed=seed,
                                                     heartbeat_interval_s=0.2))
                finished.append(run_id)
                wait_until(app, lambda r=run_id: window.runs_view.status_of(r) == "completed", 120, f"{run_id} to end")
            live = window.start_run(WorkerSpec(env_id="CartPole-v1", episodes=40, step_rate_hz=0.0,
                                               heartbeat_interval_s=0.2))
            wait_until(app, lambda: window.online_tab(live, "agent-1") is not None, 30, "the live tab")
            online = window.online_tab(live, "agent-1")
            assert online is not None
            wait_until(app, lambda: online.episodes_seen >= 15, 240, "15 live episodes")
            window.tabs.setCurrentWidget(online)
            settle(app)
            grab(window.debug_dock, out / "debug.png")
            window.debug_dock.hide()  # it has its own picture; the views get the room
            settle(app)
            grab(window, out / "online.png")

            window.open_replay(finished[0])
            wait_until(app, lambda: window.replay_tab(finished[0], "agent-1") is not None, 30, "the replay tab")
            replay = window.replay_tab(finished[0], "agent-1")
            assert replay is not None
            rows = replay.episode_model.rows()  # the longest successful episode, else the longest
            target = max(rows, key=lambda r: ((r.total_reward or 0) > 0, r.length or 0)).episode_index
            replay.select_episode(target)
            wait_until(app, lambda: replay.episode_index == target and replay.step_count > 0, 30, "the steps")
            replay.set_position(replay.step_count // 2)
            window.tabs.setCurrentWidget(replay)
            settle(app)
            grab(window, out / "replay.png")

            wait_until(app, lambda: window.runs_view.status_of(live) == "completed", 300, "the live run to end")
            window.tabs.setCurrentIndex(0)
            window.runs_view.select_runs(finished)
            settle(app)
            grab(window, out / "runs.png")
            view = window.open_compare(finished)
            assert view is not None
            wait_until(app, lambda: len(view.runs()) == 2, 30, "the comparison")  # type: ignore[attr-defined]
            settle(app)
            grab(window, out / "compare.png")
        finally:
            window.shutdown(30)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
