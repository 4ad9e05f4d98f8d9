"""LaunchPanel: choose an environment and start or cancel a training run."""

from __future__ import annotations

import logging

from qtpy.QtCore import Signal
from qtpy.QtWidgets import (QComboBox, QDoubleSpinBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSpinBox,
                             QWidget)

from gym_gui.ingest.worker_specs import RGB_ENVS, TOY_TEXT_ENVS, WorkerSpec

__all__ = ["LaunchPanel", "installed_env_ids"]

_log = logging.getLogger(__name__)

#: Narrowest widths (px) of the option fields: the row fits a window about 1,000 px wide (a field
#: gets its full width whenever there is room; below, long texts are cut, never the window held wide).
MIN_FIELD_WIDTHS_PX = {"env": 110, "episodes": 60, "step_rate_hz": 70, "seed": 56, "agent_id": 64}


def installed_env_ids(env_ids: tuple[str, ...]) -> list[str]:
    """``env_ids`` as the installed Gymnasium registers them (Taxi-v3 is Taxi-v4 in Gymnasium 1.x), so
    the list shows the env the worker will report. Unchanged when Gymnasium cannot be asked. GUI thread;
    imports Gymnasium once (about 0.2 s)."""
    try:
        from gym_gui.workers.envs import resolve_env_id
    except ImportError as exc:  # the window still starts; the worker reports what it resolves
        _log.info("gymnasium is not importable here (%s): env ids shown as written", exc)
        return list(env_ids)
    shown: list[str] = []
    for env_id in env_ids:
        try:
            resolved = resolve_env_id(env_id)
        except KeyError:
            resolved = env_id
        if resolved not in shown:
            shown.append(resolved)
    return shown


class LaunchPanel(QWidget):
    """A row of run options with Start and Cancel buttons. GUI thread only.

    ``start_requested(WorkerSpec)`` when Start is clicked; ``cancel_requested()`` when "Cancel run"
    is (the current run); ``cancel_all_requested()`` when "Cancel all" is.
    """

    start_requested = Signal(object)
    cancel_requested = Signal()
    cancel_all_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.env = QComboBox()
        self.env.addItems(installed_env_ids((*TOY_TEXT_ENVS, *RGB_ENVS)))
        self.episodes = QSpinBox()
        self.episodes.setRange(1, 1_000_000)
        self.episodes.setValue(300)
        self.step_rate_hz = QDoubleSpinBox()
        self.step_rate_hz.setRange(0.0, 1_000_000.0)
        self.step_rate_hz.setDecimals(0)
        self.step_rate_hz.setValue(200.0)
        self.step_rate_hz.setSpecialValueText("unlimited")
        self.step_rate_hz.setToolTip("worker step rate limit in steps per second (0 = as fast as possible)")
        self.agent_id = QLineEdit("agent-1")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.start_button = QPushButton("Start run")
        self.cancel_button = QPushButton("Cancel run")
        self.cancel_button.setToolTip("cancel the run of the current tab (or the run selected in the Runs tab)")
        self.cancel_button.setEnabled(False)
        self.cancel_all_button = QPushButton("Cancel all")
        self.cancel_all_button.setToolTip("cancel every run started from this window that is still going")
        self.cancel_all_button.setEnabled(False)
        for name, width in MIN_FIELD_WIDTHS_PX.items():
            getattr(self, name).setMinimumWidth(width)
        layout = QHBoxLayout(self)
        for label, widget in (("Env", self.env), ("Episodes", self.episodes), ("Steps/s", self.step_rate_hz),
                              ("Seed", self.seed), ("Agent", self.agent_id)):
            layout.addWidget(QLabel(label))
            layout.addWidget(widget)
        layout.addStretch(1)
        layout.addWidget(self.start_button)
        layout.addWidget(self.cancel_button)
        layout.addWidget(self.cancel_all_button)
        self.start_button.clicked.connect(lambda: self.start_requested.emit(self.spec()))
        self.cancel_button.clicked.connect(self.cancel_requested.emit)
        self.cancel_all_button.clicked.connect(self.cancel_all_requested.emit)

    def spec(self) -> WorkerSpec:
        """The run the options describe. GUI thread."""
        return WorkerSpec(env_id=self.env.currentText(), episodes=self.episodes.value(), seed=self.seed.value(),
                          agent_id=self.agent_id.text().strip() or "agent-1",
                          step_rate_hz=float(self.step_rate_hz.value()))

    def set_spec(self, spec: WorkerSpec) -> None:
        """Show ``spec``'s options (an env id under its installed name, if it has another). GUI thread."""
        env_id = spec.env_id
        if self.env.findText(env_id) < 0:
            shown = installed_env_ids((env_id,))[0]
            if self.env.findText(shown) >= 0:
                env_id = shown
            else:
                self.env.addItem(env_id)
        self.env.setCurrentText(env_id)
        self.episodes.setValue(spec.episodes)
        self.seed.setValue(spec.seed)
        self.agent_id.setText(spec.agent_id)
        self.step_rate_hz.setValue(spec.step_rate_hz)

    def set_running(self, running: bool) -> None:
        """Enable the Cancel buttons while a launched run is active. GUI thread."""
        self.cancel_button.setEnabled(running)
        self.cancel_all_button.setEnabled(running)
