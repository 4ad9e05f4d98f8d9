"""The windowed gym_gui telemetry app: ``python -m gym_gui`` (also the console script ``gym-gui``).

    python -m gym_gui --db runs/telemetry.sqlite
    python -m gym_gui --db runs/demo.sqlite --start --env FrozenLake-v1 --episodes 300 --step-rate-hz 500
    python -m gym_gui --db runs/x.sqlite --default-agent-id agent6 -- python my_worker.py --flag

``--start`` launches a run of the built-in worker at once; anything after ``--`` is a worker
command launched at once instead (JSONL on stdout; an Online tab opens per agent it reports); ``--quit-when-replayed`` closes the app
once that run's Replay tabs are open (a smoke test of the whole path; exit code 0 when the run
completed, 1 otherwise).
"""

from __future__ import annotations

import argparse
import logging
import os
import stat
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from gym_gui.gc_tuning import GUI_THRESHOLDS, freeze_startup_objects, tune_gc
from gym_gui.run import split_command
from gym_gui.ingest.proxy import DEFAULT_AGENT_ID
from gym_gui.ingest.worker_specs import WorkerSpec

__all__ = ["build_parser", "ensure_runtime_dir", "main"]

DEFAULT_DB_PATH = Path("runs") / "telemetry.sqlite"
USAGE = "python -m gym_gui [options] [-- WORKER CMD [ARG ...]]"
EPILOG = """\
worker command:
  Anything after -- is a worker command, started at once: it writes JSONL telemetry on stdout
  (docs/telemetry-jsonl.md) and an Online tab opens per agent it reports.

examples:
  python -m gym_gui --db runs/demo.sqlite --start --env FrozenLake-v1 --episodes 300
  python -m gym_gui --db runs/x.sqlite -- python my_worker.py --flag
  python -m gym_gui --db runs/x.sqlite --default-agent-id agent6 -- python my_worker.py
  python -m gym_gui --redis-url redis://host:6379/0        (remote workers, docs/transport-redis.md)
"""


def ensure_runtime_dir(environ: "os._Environ[str] | dict[str, str] | None" = None) -> Path | None:
    """Give Qt a private runtime directory when ``XDG_RUNTIME_DIR`` is unset (as on a plain ssh or
    container session), so it does not warn "QStandardPaths: XDG_RUNTIME_DIR not set" on every start.

    Uses ``$TMPDIR/gym-gui-runtime-<uid>`` (created 0700; refused unless it is ours and private).
    Returns the directory set, or None when the variable was already set or no directory could be
    made. Main thread, before the QApplication; blocks on a mkdir.
    """
    env = os.environ if environ is None else environ
    if env.get("XDG_RUNTIME_DIR"):
        return None
    uid = os.getuid() if hasattr(os, "getuid") else 0
    path = Path(tempfile.gettempdir()) / f"gym-gui-runtime-{uid}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        info = path.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid:
            return None
        if stat.S_IMODE(info.st_mode) != 0o700:
            path.chmod(0o700)
    except OSError:
        return None
    env["XDG_RUNTIME_DIR"] = str(path)
    return path


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (also used by tools/demo)."""
    parser = argparse.ArgumentParser(prog="python -m gym_gui", usage=USAGE, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     description="Watch training runs live; every event persisted to SQLite.")
    parser.add_argument("--db", type=Path, default=DEFAULT_DB_PATH, help="SQLite file (created if missing)")
    parser.add_argument("--start", action="store_true", help="start a run of the built-in worker at once")
    parser.add_argument("--env", default="FrozenLake-v1", help="env of the run: ToyText (Q-learning) or CartPole-v1")
    parser.add_argument("--episodes", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--agent-id", default="agent-1")
    parser.add_argument("--step-rate-hz", type=float, default=200.0, help="worker step rate limit, 0 = unlimited")
    parser.add_argument("--default-agent-id", default=DEFAULT_AGENT_ID,
                        help="agent id for the records of a worker command that carry none")
    parser.add_argument("--redis-url", default=None,
                        help="also watch remote workers publishing to this Redis (redis://host:6379/0)")
    parser.add_argument("--quit-when-replayed", action="store_true",
                        help="close once the started run's Replay tabs are open (smoke test)")
    parser.add_argument("--log-level", default="WARNING")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the app until its window closes. Main (GUI) thread; blocks in the Qt event loop."""
    from qtpy.QtCore import QCoreApplication, QEvent
    from qtpy.QtWidgets import QApplication

    from gym_gui.qt.app_services import AppServices
    from gym_gui.ui.telemetry_window import DEFAULT_SIZE_PX, MainWindow

    own_args, command = split_command(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(own_args)
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.WARNING),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    tune_gc(default=GUI_THRESHOLDS)  # short young collections: they block the GUI thread (gc_tuning.py)
    ensure_runtime_dir()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    services = AppServices(args.db, redis_url=args.redis_url)
    window = MainWindow(services)
    spec = WorkerSpec(env_id=args.env, episodes=args.episodes, seed=args.seed, agent_id=args.agent_id,
                      step_rate_hz=args.step_rate_hz)
    window.launch_panel.set_spec(spec)
    freeze_startup_objects()  # shorter collector pauses on the GUI thread (gym_gui/gc_tuning.py)
    services.start()
    window.resize(*DEFAULT_SIZE_PX)
    window.show()
    print(f"database: {args.db.resolve()}", flush=True)
    outcome: dict[str, str] = {}
    started = bool(command) or args.start
    if started:
        if command:
            run_id = window.start_command(command, default_agent_id=args.default_agent_id)
        else:
            run_id = window.start_run(spec)
        if run_id is None:
            window.shutdown()
            return 2
        print(f"run {run_id}: {' '.join(command) or f'{spec.env_id}, {spec.episodes} episodes'}", flush=True)

        def on_status(changed_run: str, status: str) -> None:
            if services.launcher.launched(changed_run):  # a worker command may name its runs itself
                outcome["status"] = status

        def on_replay(replayed_run: str, agent_id: str) -> None:
            if services.launcher.launched(replayed_run):
                tab = window.replay_tab(replayed_run, agent_id)
                title = window.tabs.tabText(window.tabs.indexOf(tab)) if tab is not None else agent_id
                print(f"replay ready: tab {title} ({outcome.get('status', '?')})", flush=True)
                if args.quit_when_replayed:
                    window.confirm_close = lambda _run_ids: True  # the smoke test closes without asking
                    window.close()

        services.registry.status_changed.connect(on_status)
        window.replay_opened.connect(on_replay)
    app.exec()
    ok = window.shutdown()
    # Destroy the widgets (and their plots) now, while the QApplication exists: left to the
    # interpreter's teardown, the order is arbitrary and Qt can crash on the way out.
    window.deleteLater()
    QCoreApplication.sendPostedEvents(None, int(QEvent.Type.DeferredDelete))
    del window
    if started:
        return 0 if ok and outcome.get("status") == "completed" else 1
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
