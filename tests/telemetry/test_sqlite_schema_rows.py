"""Row encoding details the schema cannot hold by itself: the sign of a -0.0 reward."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from gym_gui.telemetry.events import TelemetryEvent
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore
from gym_gui.telemetry.step_payload import compact_step


def _negative_zero(value: Any) -> bool:
    return type(value) is float and value == 0.0 and math.copysign(1.0, value) < 0.0


def _as_step_payload(evt: TelemetryEvent) -> TelemetryEvent:
    compact = compact_step(evt.payload)
    assert compact is not None, "the factory's step is in the workers' exact layout"
    return TelemetryEvent(evt.topic, evt.run_id, evt.agent_id, evt.seq_id, evt.ts_iso, compact)


@pytest.mark.parametrize("kind", ["dict", "step_payload", "dict_slow_path"])
def test_a_negative_zero_reward_reads_back_negative_zero(store: TelemetrySQLiteStore, db_path: Path,
                                                          factory: Any, kind: str) -> None:
    f = factory()
    if kind == "dict_slow_path":  # a misfit elsewhere in the payload takes the per-column path
        step = f.step(0, 0, reward=-0.0, terminated="no")
    else:
        step = f.step(0, 0, reward=-0.0)
    if kind == "step_payload":
        step = _as_step_payload(step)
    plain = f.step(0, 1, reward=0.0)
    episode = f.episode(0, 2, total_reward=-0.0)
    result = store.write_batch([step, plain, episode])
    assert result.inserted == 3 and not result.rejected

    first, second = store.steps_for_episode("run1", "agent1", 0)
    assert _negative_zero(first.reward) and _negative_zero(first.payload["reward"])
    assert second.reward == 0.0 and not _negative_zero(second.reward) and not _negative_zero(second.payload["reward"])
    (ep,) = store.episode_records("run1", "agent1")
    assert _negative_zero(ep.total_reward) and _negative_zero(ep.payload["total_reward"])
    events = store.events_after("run1", "agent1", -1)
    assert _negative_zero(events[0].payload["reward"]) and _negative_zero(events[2].payload["total_reward"])
    if kind != "step_payload":
        assert dict(events[0].payload) == dict(step.payload)

    conn = sqlite3.connect(str(db_path))  # raw SQL keeps summing plain numbers: the column holds 0.0
    assert conn.execute("SELECT SUM(reward), typeof(reward) FROM steps WHERE seq_id = ?",
                        (step.seq_id,)).fetchone() == (0.0, "real")
    assert conn.execute("SELECT total_reward FROM episodes").fetchone() == (0.0,)
    assert conn.execute("SELECT extra_json FROM steps WHERE seq_id = ?", (plain.seq_id,)).fetchone() == (None,)
    conn.close()
