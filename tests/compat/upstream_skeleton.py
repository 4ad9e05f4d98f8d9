"""A stand-in for the existing gym_gui's tree, built from EMBEDDING.md's facts, for side-by-side tests.

Each module imports what the existing module imports from the seed paths (EMBEDDING.md section 0)
and defines the names its callers use, so copying our modules beside it shows both whether any of
ours shadows one of its modules and whether its imports of our drop-ins resolve.
"""

from __future__ import annotations

import shutil
from pathlib import Path

#: path -> source of the existing application's modules that matter here.
UPSTREAM_MODULES: dict[str, str] = {
    "gym_gui/__init__.py": '"""the existing gym_gui"""\nUPSTREAM = True\n',
    "gym_gui/constants.py": (
        "def format_episode_id(run_id, index, worker_id=None):\n"
        "    return f'{run_id}-w{worker_id}-ep{index:06d}' if worker_id else f'{run_id}-ep{index:06d}'\n"
    ),
    "gym_gui/core/__init__.py": "",
    "gym_gui/core/data_model/__init__.py": "from gym_gui.core.data_model.telemetry_core import StepRecord, EpisodeRollup\n",
    "gym_gui/core/data_model/telemetry_core.py": (
        "from __future__ import annotations\n"
        "from dataclasses import dataclass, field\n"
        "from datetime import datetime, timezone\n"
        "from typing import Any, Mapping\n"
        "UPSTREAM_RECORDS = True\n"
        "def _now():\n    return datetime.now(timezone.utc)\n"
        "@dataclass(slots=True)\n"
        "class StepRecord:\n"
        "    episode_id: str\n    step_index: int\n    action: int | None\n    observation: Any\n"
        "    reward: float\n    terminated: bool\n    truncated: bool\n"
        "    info: Mapping[str, Any] = field(default_factory=dict)\n"
        "    timestamp: datetime = field(default_factory=_now)\n"
        "    render_payload: Any | None = None\n    agent_id: str | None = None\n"
        "    render_hint: Mapping[str, Any] | None = None\n    frame_ref: str | None = None\n"
        "    obs_ref: str | None = None\n    payload_version: int = 0\n    run_id: str | None = None\n"
        "    worker_id: str | None = None\n    time_step: int | None = None\n"
        "    space_signature: Mapping[str, Any] | None = None\n    vector_metadata: Mapping[str, Any] | None = None\n"
        "@dataclass(slots=True)\n"
        "class EpisodeRollup:\n"
        "    episode_id: str\n    total_reward: float\n    steps: int\n    terminated: bool\n    truncated: bool\n"
        "    metadata: Mapping[str, Any] = field(default_factory=dict)\n"
        "    timestamp: datetime = field(default_factory=_now)\n"
        "    agent_id: str | None = None\n    run_id: str | None = None\n"
        "    game_id: str | None = None\n    worker_id: str | None = None\n"
    ),
    "gym_gui/services/__init__.py": (
        "from gym_gui.services.telemetry import TelemetryService\n"
        "from gym_gui.services.trainer import RunRegistry\n"
    ),
    "gym_gui/services/telemetry.py": (
        "from gym_gui.telemetry import TelemetrySQLiteStore\n"
        "class TelemetryService:\n"
        "    def __init__(self, store: TelemetrySQLiteStore):\n        self.store = store\n"
    ),
    "gym_gui/services/telemetry/schema_validator.py": "VALIDATOR = True\n",
    "gym_gui/services/trainer/__init__.py": "from gym_gui.services.trainer.registry import RunRegistry, RunStatus\n",
    "gym_gui/services/trainer/registry.py": (
        "import enum\n"
        "class RunStatus(enum.Enum):\n    INIT = 'init'\n    TERMINATED = 'terminated'\n"
        "class RunRegistry:\n    def __init__(self, db_path=None):\n        self.db_path = db_path\n"
        "class GPUReservationError(RuntimeError):\n    pass\n"
    ),
    "gym_gui/services/trainer/streams.py": (
        "from gym_gui.telemetry.events import Topic, TelemetryEvent\n"
        "from gym_gui.telemetry.run_bus import get_bus\n"
        "class TelemetryAsyncHub:\n    pass\nclass TelemetryBridge:\n    pass\n"
    ),
    "gym_gui/services/trainer/launcher.py": (
        "class TrainerDaemonLaunchError(RuntimeError):\n    pass\n"
        "def ensure_trainer_daemon_running():\n    return None\n"
    ),
    "gym_gui/services/bootstrap.py": (
        "from gym_gui.telemetry import TelemetrySQLiteStore\n"
        "from gym_gui.telemetry.db_sink import TelemetryDBSink\n"
        "from gym_gui.telemetry.run_bus import get_bus, RunBus\n"
    ),
    "gym_gui/telemetry/__init__.py": "from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore\n",
    "gym_gui/telemetry/migrations.py": (
        "class Migration:\n    pass\nclass MigrationRunner:\n    pass\nclass WALConfiguration:\n    pass\n"
    ),
    "gym_gui/telemetry/replay_controller.py": (
        "from gym_gui.telemetry.events import Topic, TelemetryEvent\n"
        "from gym_gui.telemetry.run_bus import get_bus\n"
        "from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore\n"
        "class ReplayController:\n    pass\n"
    ),
    "gym_gui/telemetry/probes.py": "PROBES = True\n",
    "gym_gui/ui/__init__.py": "",
    "gym_gui/ui/main_window.py": "class MainWindow:\n    UPSTREAM = True\n",
    "gym_gui/app.py": "def main():\n    return 'upstream'\n",
    "gym_gui/__main__.py": "from gym_gui.app import main\nmain()\n",
    "gym_gui/controllers/__init__.py": "",
    "gym_gui/controllers/live_telemetry_controllers.py": (
        "from gym_gui.telemetry.events import Topic, TelemetryEvent\n"
        "from gym_gui.telemetry.run_bus import get_bus, RunBus\n"
    ),
}

#: Our seed-path drop-ins: they replace the existing modules of these paths.
DROP_INS = (
    "gym_gui/telemetry/__init__.py",
    "gym_gui/telemetry/events.py",
    "gym_gui/telemetry/run_bus.py",
    "gym_gui/telemetry/db_sink.py",
    "gym_gui/telemetry/sqlite_store.py",
)

#: The existing modules whose import must keep working after the copy, with a name each must offer.
UPSTREAM_IMPORTS = {
    "gym_gui.services": "TelemetryService",
    "gym_gui.services.telemetry": "TelemetryService",
    "gym_gui.services.trainer": "RunRegistry",
    "gym_gui.services.trainer.registry": "GPUReservationError",
    "gym_gui.services.trainer.streams": "TelemetryAsyncHub",
    "gym_gui.services.trainer.launcher": "ensure_trainer_daemon_running",
    "gym_gui.services.bootstrap": "TelemetryDBSink",
    "gym_gui.telemetry.migrations": "MigrationRunner",
    "gym_gui.telemetry.replay_controller": "ReplayController",
    "gym_gui.telemetry.probes": "PROBES",
    "gym_gui.ui.main_window": "MainWindow",
    "gym_gui.app": "main",
    "gym_gui.controllers.live_telemetry_controllers": "get_bus",
    "gym_gui.core.data_model": "EpisodeRollup",
}


def build_combined_tree(ours: Path, target: Path) -> list[str]:
    """Write the stand-in tree under ``target``, then copy our drop-ins and every module of ours whose
    path the stand-in does not use. Returns the relative paths copied from ours."""
    for rel, source in UPSTREAM_MODULES.items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    copied: list[str] = []
    for path in sorted((ours / "gym_gui").rglob("*.py")):
        rel = path.relative_to(ours).as_posix()
        if rel in DROP_INS or rel not in UPSTREAM_MODULES:
            dest = target / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
            copied.append(rel)
    return copied
