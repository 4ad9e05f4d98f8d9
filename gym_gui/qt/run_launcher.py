"""RunLauncher: starts training workers behind TelemetryProxies for the GUI, and stops them without blocking it."""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Mapping, Sequence

from qtpy.QtCore import QObject, QTimer, Signal

from gym_gui.ingest.proxy import DEFAULT_AGENT_ID, IngestGate, TelemetryProxy
from gym_gui.telemetry.run_bus import RunBus

__all__ = ["RunLauncher"]

_log = logging.getLogger(__name__)


class RunLauncher(QObject):
    """One TelemetryProxy per launched run, all publishing on one bus.

    ``run_exited(run_id, exit_code)`` is emitted on the GUI thread once a run's proxy has published
    everything, RUN_COMPLETED included (``exit_code`` is None for a worker that was never reaped).
    Finished proxies are polled by a QTimer; cancelling runs the proxy's blocking ``stop`` on a
    short-lived thread, so the GUI thread never waits for a worker. Workers are spawned on the GUI
    thread (the main thread), so they and their ingest children get the parent-death signal and
    end with the GUI, even after a ``kill -9`` (docs/reliability.md); a worker's run ends at its
    exit even when a grandchild keeps its pipes open.
    """

    run_exited = Signal(str, object)

    def __init__(
        self,
        bus: RunBus,
        *,
        seq_floor: Callable[[str, str], int | None] | None = None,
        gate: IngestGate | None = None,
        poll_interval_ms: int = 200,
        stop_timeout_s: float = 5.0,
        parent: QObject | None = None,
    ) -> None:
        """``seq_floor`` and ``gate`` are passed to every proxy (``store.max_seq_id``,
        ``sink.ingest_gate``). GUI thread; does not block."""
        super().__init__(parent)
        self._bus = bus
        self._seq_floor = seq_floor
        self._gate = gate
        self._stop_timeout_s = stop_timeout_s
        self._proxies: dict[str, TelemetryProxy] = {}
        self._exited: set[str] = set()
        self._stoppers: list[threading.Thread] = []
        self._stopped = False
        self._timer = QTimer(self)
        self._timer.setInterval(poll_interval_ms)
        self._timer.timeout.connect(self._poll)

    def launch(self, argv: Sequence[str], *, run_id: str, default_agent_id: str = DEFAULT_AGENT_ID,
               env: Mapping[str, str] | None = None, cwd: str | None = None) -> TelemetryProxy:
        """Start ``argv`` as the worker of ``run_id``. GUI thread; does not wait for the worker.

        Raises ValueError for a run id already launched, RuntimeError after ``stop()``, OSError when
        the program cannot start.
        """
        if self._stopped:
            raise RuntimeError("the launcher is stopped")
        if run_id in self._proxies:
            raise ValueError(f"run {run_id!r} was already launched")
        proxy = TelemetryProxy(self._bus, default_agent_id=default_agent_id, run_id=run_id,
                               seq_floor=self._seq_floor, gate=self._gate, name=f"worker-{run_id}")
        proxy.spawn(argv, env=env, cwd=cwd)
        self._proxies[run_id] = proxy
        if not self._timer.isActive():
            self._timer.start()
        return proxy

    def proxy(self, run_id: str) -> TelemetryProxy | None:
        """The proxy of a launched run. GUI thread."""
        return self._proxies.get(run_id)

    def launched(self, run_id: str) -> bool:
        """True for a run this launcher started, by its launch id or a run id its worker reported.
        GUI thread; never blocks."""
        return run_id in self._proxies or any(run_id in p.run_ids() for p in self._proxies.values())

    def active_run_ids(self) -> list[str]:
        """Launched runs whose worker output is not fully published yet. GUI thread; never blocks."""
        return [run_id for run_id, proxy in self._proxies.items() if not proxy.finished]

    def stats(self) -> dict[str, Any]:
        """Every proxy's stats summed (for the debug pane): lines read, blank lines, rejected lines
        per reason and the latest rejection, reassigned seq_ids, worker-reported errors, time paused.
        Any thread; never blocks."""
        rejected: dict[str, int] = {}
        per_run: dict[str, Any] = {}
        for run_id, proxy in list(self._proxies.items()):
            stats = proxy.stats()
            per_run[run_id] = stats
            for reason, count in stats["rejected"].items():
                rejected[reason] = rejected.get(reason, 0) + count
        return {
            "runs": len(per_run),
            "active": sum(1 for s in per_run.values() if not s["finished"]),
            "lines_read": sum(s["lines_read"] for s in per_run.values()),
            "blank_lines": sum(s["blank_lines"] for s in per_run.values()),
            "rejected": rejected,
            "rejected_total": sum(rejected.values()),
            "seq_reassigned": sum(s["seq_reassigned"] for s in per_run.values()),
            "worker_errors": sum(s["worker_errors"] for s in per_run.values()),
            # the latest of any worker, with its run: its text starts with its UTC time
            "last_rejected": max((f"{s['last_rejected']} [{run_id}]" for run_id, s in per_run.items()
                                  if s["last_rejected"]), default=""),
            "paused_s": sum(s["paused_s"] for s in per_run.values()),
        }

    def cancel(self, run_id: str) -> bool:
        """Ask a run's worker to stop (SIGTERM, then SIGKILL after the timeout). GUI thread; does not block.

        Returns False for an unknown or already finished run. The proxy then publishes the run's
        cancelled or failed RUN_COMPLETED as usual.
        """
        proxy = self._proxies.get(run_id)
        if proxy is None or proxy.finished:
            return False
        stopper = threading.Thread(target=proxy.stop, args=(self._stop_timeout_s,),
                                   name=f"stop-{run_id}", daemon=True)
        self._stoppers.append(stopper)
        stopper.start()
        return True

    def _poll(self) -> None:
        for run_id, proxy in self._proxies.items():
            if run_id not in self._exited and proxy.finished:
                self._exited.add(run_id)
                self.run_exited.emit(run_id, proxy.exit_code)
        self._stoppers = [t for t in self._stoppers if t.is_alive()]
        if len(self._exited) == len(self._proxies) and not self._stoppers:
            self._timer.stop()

    def is_polling(self) -> bool:
        """True while the poll timer runs. GUI thread."""
        return self._timer.isActive()

    def stop(self, timeout_s: float | None = None) -> bool:
        """Stop every worker and join every proxy thread; idempotent. GUI thread, at shutdown.

        Blocks up to about ``2 * timeout_s`` per running worker (the app is closing). Returns True
        when every proxy and stopper thread has ended.
        """
        self._stopped = True
        self._timer.stop()
        timeout_s = self._stop_timeout_s if timeout_s is None else timeout_s
        ok = all([proxy.stop(timeout_s) for proxy in self._proxies.values()])
        for stopper in self._stoppers:
            stopper.join(timeout_s)
        self._stoppers = [t for t in self._stoppers if t.is_alive()]
        return ok and not self._stoppers
