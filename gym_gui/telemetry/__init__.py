"""gym_gui telemetry: the Qt-free core (events, RunBus, the SQLite store, the sink core).

Re-exports ``TelemetrySQLiteStore`` for the existing gym_gui callers
(``from gym_gui.telemetry import TelemetrySQLiteStore``). The store module is imported on first
access of the name (PEP 562), so importing this package (e.g. for ``gym_gui.telemetry.events``)
stays cheap and never imports Qt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore

__all__ = ["TelemetrySQLiteStore"]


def __getattr__(name: str) -> Any:
    if name == "TelemetrySQLiteStore":
        from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore

        return TelemetrySQLiteStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
