"""AppServices: the telemetry services one GUI process runs, started and stopped in the right order."""

from __future__ import annotations

import logging
import sqlite3
import sys
from pathlib import Path

from gym_gui.frame_paced_gc import DEFAULT_INTERVAL_MS, FramePacedCollector
from gym_gui.ingest.worker_process import ChildNice, set_child_nice
from gym_gui.qt.gui_pump import GuiPump
from gym_gui.qt.store_reader import StoreReader
from gym_gui.qt.run_launcher import RunLauncher
from gym_gui.qt.run_registry import RunRegistry
from gym_gui.qt.db_sink_thread import DbSink
from gym_gui.telemetry.run_bus import RunBus, get_bus
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore
from gym_gui.telemetry.stream_owners import InterruptedRun
from gym_gui.transport.redis_source import RedisTelemetrySource

__all__ = ["AppServices", "GUI_CHILD_NICE", "GUI_SWITCH_INTERVAL_S"]

_log = logging.getLogger(__name__)

#: The ``nice`` increments of the workers and ingest children the window starts (docs/tuning.md):
#: eight runs are sixteen busy children, and the window must keep up with them on two cores.
GUI_CHILD_NICE = ChildNice(worker=10, ingest=10)
#: The interpreter's thread switch interval while the services run (CPython's default is 5 ms): a
#: thread that wants the lock another one holds waits at most this long before asking for it, and
#: the GUI thread asks for it at every turn of the event loop (docs/tuning.md).
GUI_SWITCH_INTERVAL_S = 0.001


class AppServices:
    """The store, bus, DbSink, StoreReader, GuiPump, RunRegistry, RunLauncher (and a Redis source) of one app.

    Created and driven on the GUI thread. ``pump`` is the window's one GUI pump: every Qt-free view
    of the window (live and replay controllers, ...) registers on it (``pump.add(view)``) and
    subscribes with ``pump.waker``. ``start()`` starts the pump, the sink thread, the registry and
    the Redis reader; ``stop()`` stops workers and the Redis reader first, then the registry and the
    pump, then drains the sink, then closes the store.
    """

    def __init__(self, db_path: str | Path, *, bus: RunBus | None = None, stall_missed_intervals: int = 3,
                 redis_url: str | None = None, pump: GuiPump | None = None,
                 child_nice: ChildNice = GUI_CHILD_NICE,
                 young_collection_interval_ms: int | None = DEFAULT_INTERVAL_MS,
                 gil_switch_interval_s: float | None = GUI_SWITCH_INTERVAL_S) -> None:
        """Open (and migrate) the database and build the services. GUI thread; blocks briefly on
        opening the SQLite file. ``redis_url``: also read the streams of remote workers from that
        Redis server (docs/transport-redis.md), resuming after the last persisted seq_ids.

        Runs left ``running`` by a process that is gone (a killed GUI or CLI) are marked
        ``interrupted`` here (``interrupted_runs``, logged). The launcher's workers number their
        streams through ``store.claim_stream``: a stream another live process writes is refused
        (its records are ``stream_owned`` rejections). ``pump``: the window's GUI pump (None: a
        ``GuiPump()``, one display frame between ticks); the registry ticks on it too. ``child_nice``:
        how much lower the priority of the workers and ingest children this process starts is
        (process-wide, ``worker_process.set_child_nice``; ``$GYM_GUI_CHILD_NICE`` overrides it).
        ``young_collection_interval_ms``: while started, the pump's ticks collect the young
        generation at most this often (``frame_paced_gc``; None: CPython's automatic collections only).
        ``gil_switch_interval_s``: while started, the process's ``sys.setswitchinterval`` (the
        longest the GUI thread waits for the interpreter lock that a reader or the sink thread
        holds; None: leave it), restored by ``stop()`` (docs/tuning.md)."""
        self.db_path = Path(db_path)
        set_child_nice(child_nice)
        self.store = TelemetrySQLiteStore(self.db_path)
        self.interrupted_runs: list[InterruptedRun] = []
        try:
            self.interrupted_runs = self.store.mark_interrupted_runs()
        except sqlite3.Error as exc:  # (e.g. locked for longer than the busy timeout): checked next time
            _log.warning("could not check %s for interrupted runs: %s: %s", self.db_path, type(exc).__name__, exc)
        self.bus = bus if bus is not None else get_bus()
        self.sink = DbSink(self.store, self.bus)
        self.reader = StoreReader(self.store)
        self.pump = pump if pump is not None else GuiPump()
        self.registry = RunRegistry(self.bus, reader=self.reader, pump=self.pump,
                                    stall_missed_intervals=stall_missed_intervals)
        self.launcher = RunLauncher(self.bus, seq_floor=self.store.claim_stream, gate=self.sink.ingest_gate)
        self.collector = None if young_collection_interval_ms is None else FramePacedCollector(
            interval_ms=young_collection_interval_ms)
        self._switch_interval_s = gil_switch_interval_s
        self._switch_interval_before_s: float | None = None
        self.redis_source: RedisTelemetrySource | None = None
        if redis_url:
            self.redis_source = RedisTelemetrySource(self.bus, url=redis_url, seq_floor=self.store.max_seq_id,
                                                     gate=self.sink.ingest_gate)
        self._started = False
        self._stopped = False

    def start(self) -> None:
        """Start the pump, the sink thread and the registry; idempotent. GUI thread; does not block."""
        if self._started or self._stopped:
            return
        self._started = True
        if self._switch_interval_s is not None:
            self._switch_interval_before_s = sys.getswitchinterval()
            sys.setswitchinterval(self._switch_interval_s)
        self.pump.start()
        if self.collector is not None:
            self.pump.add_tick_listener(self.collector)
        self.sink.start()
        self.registry.start()
        if self.redis_source is not None:
            self.redis_source.start()

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Stop workers, registry, sink (after writing everything it holds) and readers, then close the
        store; idempotent. GUI thread, at shutdown; blocks up to about ``timeout_s`` plus the workers'
        stop timeouts. Returns True when everything was persisted and every thread has ended."""
        if self._stopped:
            return True
        self._stopped = True
        ok = self.launcher.stop()
        if self.redis_source is not None:
            ok = self.redis_source.stop() and ok
        self.registry.stop()
        if self.collector is not None:
            self.pump.remove_tick_listener(self.collector)
        self.pump.stop()
        if self._started:
            ok = self.sink.flush(timeout_s) and ok
            ok = self.sink.stop(timeout_s) and ok
        ok = self.reader.stop(timeout_s) and ok
        self.store.close()
        if (self._switch_interval_before_s is not None and self._switch_interval_s is not None
                and abs(sys.getswitchinterval() - self._switch_interval_s) < 1e-7):
            sys.setswitchinterval(self._switch_interval_before_s)  # (unless someone set another since)
        if not ok:
            _log.warning("telemetry services stopped with work left: see the sink's stats %s", self.sink.stats())
        return ok
