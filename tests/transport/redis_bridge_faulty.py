"""The bridge command with a fault injected into the proxy's reader thread (for the shutdown tests).

    python redis_bridge_faulty.py finish-raises|finish-hangs BRIDGE-ARGS... -- WORKER...

``finish-raises``: the reader thread dies where it completes the runs, after the worker ended (as it
did when a seq_id overflow made the synthesised RUN_COMPLETED raise). ``finish-hangs``: the reader
blocks there for ever. Either way the proxy never reports itself finished; the bridge must still end.
"""

from __future__ import annotations

import sys
import threading

from gym_gui.ingest.proxy import TelemetryProxy
from gym_gui.transport import redis_bridge


def _finish_raises(self: TelemetryProxy) -> None:
    raise RuntimeError("injected fault: the reader dies before the runs are completed")


def _finish_hangs(self: TelemetryProxy) -> None:
    threading.Event().wait()


FAULTS = {"finish-raises": _finish_raises, "finish-hangs": _finish_hangs}


def main() -> int:
    fault = sys.argv[1]
    assert callable(getattr(TelemetryProxy, "_finish", None)), "the proxy's reader no longer ends in _finish"
    TelemetryProxy._finish = FAULTS[fault]  # type: ignore[method-assign]
    return redis_bridge.main(sys.argv[2:])


if __name__ == "__main__":
    raise SystemExit(main())
