"""The durable-path sink at its seed path (Qt-free).

``TelemetryDBSink`` (added next) is the existing gym_gui's sink. ``DbSink``, this project's QThread
shell around ``SinkCore``, lives in ``gym_gui.qt.db_sink_thread``; ``from gym_gui.telemetry.db_sink
import DbSink`` still works and imports Qt only then (PEP 562 module ``__getattr__``), so importing
this module never imports a Qt binding.
"""

from __future__ import annotations

from typing import Any

__all__: list[str] = []


def __getattr__(name: str) -> Any:
    """``DbSink`` on first use, from the Qt shell module (imports qtpy); anything else: AttributeError."""
    if name == "DbSink":
        from gym_gui.qt.db_sink_thread import DbSink

        return DbSink
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
