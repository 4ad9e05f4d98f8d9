"""The GUI machine's wiring for the transport tests: RunBus, DbSink and RedisTelemetrySource over one store.

A uniquely named module (not conftest) so tests import it directly without package clashes.
"""

from __future__ import annotations

from typing import Any

from gym_gui.qt.db_sink_thread import DbSink
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.run_bus import RunBus, Subscription
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore
from gym_gui.transport.redis_entries import STREAM_TOPICS
from gym_gui.transport.redis_source import RedisTelemetrySource


class GuiSide:
    """A bus with a lossless recorder, a running DbSink and a source reading into the bus."""

    def __init__(self, store: TelemetrySQLiteStore, url: str, sources: list[RedisTelemetrySource],
                 bus: RunBus | None = None, **source_kw: Any) -> None:
        self.store = store
        self.bus = bus or RunBus()
        self.recorder: dict[Topic, Subscription] = {
            t: self.bus.subscribe(t, "recorder", maxlen=None) for t in STREAM_TOPICS}
        self.sink = DbSink(store, self.bus, max_delay_s=0.01)
        self.sink.start()
        source_kw.setdefault("block_ms", 50)
        source_kw.setdefault("discover_interval_s", 0.05)
        source_kw.setdefault("retry_max_s", 0.2)
        self.source = RedisTelemetrySource(self.bus, url=url, seq_floor=store.max_seq_id,
                                           gate=self.sink.ingest_gate, **source_kw)
        sources.append(self.source)
        self._seen: list[TelemetryEvent] = []

    def start(self) -> "GuiSide":
        self.source.start()
        return self

    def received(self) -> list[TelemetryEvent]:
        """Everything the source published so far, per stream in seq_id order (checked by the caller)."""
        for sub in self.recorder.values():
            self._seen += sub.drain()
        return list(self._seen)

    def received_seqs(self, run_id: str, agent_id: str | None) -> list[int]:
        return sorted(e.seq_id for e in self.received() if e.run_id == run_id and e.agent_id == agent_id)

    def close(self) -> None:
        assert self.source.stop(10.0) and not self.source.is_running()
        assert self.sink.stop(10.0)
        assert self.sink.isFinished()
        for topic in self.recorder:
            self.bus.unsubscribe(topic, "recorder")


def stored_seqs(store: TelemetrySQLiteStore, run_id: str, agent_id: str) -> list[int]:
    """Every stored seq_id of a stream (steps, episodes, run events; heartbeats only update the run row)."""
    conn = store._reader()
    seqs: list[int] = []
    for table in ("steps", "episodes", "run_events"):
        seqs += [r[0] for r in conn.execute(
            f"SELECT seq_id FROM {table} WHERE run_id = ? AND agent_id = ?", (run_id, agent_id))]
    return sorted(seqs)
