"""Cycle-collector settings for the long-running telemetry processes (Qt-free): thresholds, freezes, flat values.

The ingest path allocates a handful of containers per worker line (the decoded record and its
nested dicts and lists, the event, row tuples) and keeps up to the sink's high-water mark of them
alive in queues. With CPython's default thresholds (700, 10, 10) the collector runs a young
collection every ~90 lines and keeps promoting the queued events, so older generations are
rescanned again and again: about a fifth of the proxy's time at full speed
(docs/performance.md, "End to end"). Raising the young threshold makes collections rare and
cheap per object while still collecting cycles.

``tune_gc()`` is called once at start-up by ``gym_gui.run.main`` (and the GUI app), and by
``tools/bench_e2e.py`` and ``tools/bench_live.py`` so the benchmarks measure what the product
runs. The GUI app also calls ``freeze_startup_objects()`` once its window is built; from then on
each Online tab freezes its charts once built (``freeze_long_lived``) and a closed tab's leftovers
are collected (``thaw_and_collect``), docs/tuning.md. The environment variable
``GYM_GUI_GC_THRESHOLDS`` overrides it: ``"default"`` keeps CPython's thresholds, ``"G0,G1,G2"``
sets others.
"""

from __future__ import annotations

import gc
import logging
import os
from typing import NoReturn

__all__ = ["DEFAULT_THRESHOLDS", "ENV_VAR", "GUI_THRESHOLDS", "MAX_FROZEN_BETWEEN_THAWS", "NOT_FLAT",
           "exit_after_freezing", "freeze_long_lived", "freeze_startup_objects", "freezing", "stop_freezing", "thaw_and_collect",
           "tune_gc", "untracked_value"]

_log = logging.getLogger(__name__)

#: (generation 0, 1, 2) thresholds: a young collection every 100,000 net container allocations
#: (about 0.25 s of full-speed ingest), an older one every 20 of those, a full one every 10 of those.
DEFAULT_THRESHOLDS: tuple[int, int, int] = (100_000, 20, 10)
#: The GUI's: a young collection runs on whichever thread allocates, holding the GIL, so its length
#: is a GUI-thread block; 100,000 young objects took 47-53 ms of CPU (eight live runs, loaded
#: machine), 10,000 take 3-7 ms (docs/tuning.md). The older generations as above.
GUI_THRESHOLDS: tuple[int, int, int] = (10_000, 20, 10)
ENV_VAR = "GYM_GUI_GC_THRESHOLDS"


def tune_gc(thresholds: tuple[int, int, int] | None = None, *,
            default: tuple[int, int, int] = DEFAULT_THRESHOLDS) -> tuple[int, int, int]:
    """Set the collector thresholds (``thresholds``, else ``$GYM_GUI_GC_THRESHOLDS``, else ``default``:
    ``DEFAULT_THRESHOLDS``, or ``GUI_THRESHOLDS`` for the window).

    Returns the thresholds in force. Process-wide: call once from the main thread at start-up;
    never blocks. A malformed environment value is logged and ignored.
    """
    if thresholds is None:
        thresholds = _from_env(os.environ.get(ENV_VAR, "").strip(), default)
    if thresholds is not None:
        gc.set_threshold(*thresholds)
    g0, g1, g2 = gc.get_threshold()
    return (g0, g1, g2)


#: A ``freeze_long_lived`` that brings the objects frozen since the last collection of everything to
#: this many thaws instead: what frozen garbage may hold when no tab closes for a long time, 64 of
#: the window's young generations. Counted in objects, not calls, so the many freezes that move a
#: chart's few hundred objects (or nothing new) do not bring the pause of a thaw closer.
MAX_FROZEN_BETWEEN_THAWS = 64 * GUI_THRESHOLDS[0]
_freezing = False
_frozen_at_thaw = 0  # gc.get_freeze_count() right after the last collection of everything
_frozen_total = 0  # the frozen objects: that count plus what each freeze_long_lived moved since


def freeze_startup_objects() -> int:
    """Collect once, then move every object alive now (modules, Qt wrappers, widgets built at
    start-up) out of the collector's view, so a later full collection only walks what the app
    allocated since: the GUI thread's longest collector pause shrinks with it. Also turns on
    ``freeze_long_lived`` (the window freezes each tab's charts once built). Main thread, once,
    after start-up; blocks for that one collection. Returns the objects frozen."""
    global _freezing, _frozen_at_thaw, _frozen_total
    gc.collect()
    gc.freeze()
    _freezing, _frozen_at_thaw = True, gc.get_freeze_count()
    _frozen_total = _frozen_at_thaw
    return _frozen_at_thaw


def freezing() -> bool:
    """True once ``freeze_startup_objects`` ran (and ``stop_freezing`` did not). Any thread; never blocks."""
    return _freezing


def freeze_long_lived() -> int:
    """Move what is alive now out of the collector's view, without a collection (O(1): no pause),
    at a point where the objects just built live long (a tab's charts). A no-op returning 0 unless
    ``freeze_startup_objects`` ran. Cycles frozen are never collected until ``thaw_and_collect``:
    at most what the young generations held, a call (docs/tuning.md); the call that brings the
    objects frozen since the last thaw to ``MAX_FROZEN_BETWEEN_THAWS`` thaws instead (and blocks for
    its collection). The objects it moves are counted in the three generations before the freeze
    (what a full collection would walk: the few thousand objects allocated since the last freeze),
    never with ``gc.get_freeze_count()``, which walks every frozen object (the whole start-up heap:
    3-18 ms a call). Main thread; otherwise never blocks. Returns the objects frozen (all of them)."""
    global _frozen_total
    if not _freezing:
        return 0
    moved = 0
    for generation in range(3):
        moved += len(gc.get_objects(generation))
    gc.freeze()
    _frozen_total += moved
    if _frozen_total - _frozen_at_thaw >= MAX_FROZEN_BETWEEN_THAWS:
        return thaw_and_collect()
    return _frozen_total


def thaw_and_collect() -> int:
    """Unfreeze everything, collect everything (one full collection of the whole heap: the pause
    ``freeze_startup_objects`` had), and freeze what is left: the garbage cycles the freezes kept
    (a closed tab's widgets) are freed. A no-op returning 0 unless ``freeze_startup_objects`` ran.
    Main thread, at a point where a pause is expected (a tab closed); blocks for that collection.
    Returns the objects frozen."""
    global _frozen_at_thaw, _frozen_total
    if not _freezing:
        return 0
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    _frozen_at_thaw = _frozen_total = gc.get_freeze_count()
    return _frozen_at_thaw


def stop_freezing() -> None:
    """Unfreeze everything and turn ``freeze_long_lived`` off (tests). Main thread; never blocks."""
    global _freezing, _frozen_at_thaw, _frozen_total
    gc.unfreeze()
    _freezing, _frozen_at_thaw, _frozen_total = False, 0, 0


#: Types whose instances the collector never tracks (they cannot hold references).
_ATOMIC: frozenset[type] = frozenset({int, float, bool, str, bytes, type(None), complex})
_NOT_FLAT: object = object()


def untracked_value(value: object, *, depth: int = 4) -> object:
    """``value`` in a form the cycle collector does not track, for rows a model keeps for long:
    atomic values as they are, lists and tuples (nested up to ``depth``) as tuples of such values;
    anything else (a dict, an object) as the sentinel ``NOT_FLAT`` (the caller keeps a text of it).

    A plain tuple of atomic values and such tuples stops being tracked at the first young
    collection that sees it (a tuple holding any other container, even an untracked dict, stays
    tracked), so a table of such rows adds nothing to what a full collection walks. Any thread; pure.
    """
    kind = type(value)
    if kind in _ATOMIC:
        return value
    if (kind is list or kind is tuple) and depth > 0:
        items = tuple(value)  # type: ignore[call-overload]
        for item in items:
            if type(item) not in _ATOMIC:
                items = tuple(untracked_value(item, depth=depth - 1) for item in items)
                if any(item is _NOT_FLAT for item in items):
                    return _NOT_FLAT
                break
        return items
    return _NOT_FLAT


NOT_FLAT = _NOT_FLAT


def _from_env(value: str, default: tuple[int, int, int]) -> tuple[int, int, int] | None:
    if not value:
        return default
    if value.lower() == "default":
        return None
    try:
        parts = tuple(int(p) for p in value.split(","))
        if len(parts) != 3 or parts[0] < 1 or min(parts) < 0:
            raise ValueError
    except ValueError:
        _log.warning("ignoring %s=%r: expected 'default' or three integers G0,G1,G2 (G0 >= 1)", ENV_VAR, value)
        return default
    return (parts[0], parts[1], parts[2])


def exit_after_freezing(code: int) -> NoReturn:
    """End a command's process with ``code``, its heap frozen first, so that the interpreter's
    collections at exit do not walk it (about half of ``python -m gym_gui.run``'s 18-33 ms teardown
    after a 200,000-step run, docs/tuning.md). Objects are still released as modules are torn down.

    Main thread, as the last statement of a ``__main__`` block, once every file is closed; never
    from code a test calls in-process (the frozen heap would stay uncollected there).
    """
    gc.freeze()
    raise SystemExit(code)
