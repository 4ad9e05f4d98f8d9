"""load_stream_curves: a stream's stored learning curves read on a StoreReader thread."""

from __future__ import annotations

from typing import Callable

from gym_gui.live.curves import CurveData
from gym_gui.qt.store_reader import StoreReader
from gym_gui.telemetry.curve_reads import load_curves_from_store
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore

__all__ = ["load_stream_curves"]


def load_stream_curves(reader: StoreReader, run_id: str, agent_id: str | None, on_done: Callable[[CurveData], None],
                       on_error: Callable[[BaseException], None] | None = None, *, window: int = 100) -> bool:
    """Read the stored curves of ``(run_id, agent_id)`` on a reader thread; ``on_done(CurveData)``
    runs later on the reader's owner thread. False when the reader is stopped. GUI thread; never blocks."""

    def query(store: TelemetrySQLiteStore) -> CurveData:
        return load_curves_from_store(store, run_id, agent_id, window=window)

    return reader.submit(query, on_done, on_error)
