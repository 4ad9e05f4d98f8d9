"""The process-wide RunBus: ``get_bus()`` builds it lazily, ``reset_bus()`` forgets it (Qt-free).

The existing gym_gui callers (EMBEDDING.md section 2) cache ``get_bus()`` or call it per event;
whoever holds a bus keeps it after ``reset_bus()``. ``gym_gui.telemetry.run_bus`` re-exports
these names (and reads ``_default_bus`` through to here).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from gym_gui.telemetry.run_bus import RunBus

__all__ = ["get_bus", "reset_bus"]

_default_bus: RunBus | None = None
_default_bus_lock = threading.Lock()


def get_bus() -> RunBus:
    """The process-wide RunBus, created on first use as ``RunBus()`` (max_queue 2048). Any thread."""
    global _default_bus
    bus = _default_bus
    if bus is None:
        with _default_bus_lock:
            if _default_bus is None:
                from gym_gui.telemetry.run_bus import RunBus  # imported here: run_bus imports this module
                _default_bus = RunBus()
            bus = _default_bus
    return bus


def reset_bus() -> None:
    """Forget the process-wide bus; the next ``get_bus()`` builds a new one. Whoever holds the old
    bus keeps it. Any thread."""
    global _default_bus
    with _default_bus_lock:
        _default_bus = None


def _reset_default_bus_for_tests(factory: Callable[[], RunBus] | None = None) -> RunBus:
    """Replace the process-wide bus (tests only). Returns the new bus."""
    global _default_bus
    with _default_bus_lock:
        if factory is None:
            from gym_gui.telemetry.run_bus import RunBus
            factory = RunBus
        _default_bus = factory()
        return _default_bus
