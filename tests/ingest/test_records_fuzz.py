"""Every line a worker can write is either an event or a rejection with a worker-facing reason.

Seeded random records of every family, with every field swapped for values of other types and
extreme magnitudes: ``normalize_line`` must never raise anything but RecordRejected, and never
the ``internal_error`` reason (which means the proxy itself failed). Deterministic: fixed seed.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from gym_gui.ingest.records import RecordRejected, RejectReason, normalize_line
from gym_gui.telemetry.events import TelemetryEvent

NOW = "2030-01-01T00:00:00+00:00"
STEP = {"v": 1, "kind": "step", "run_id": "r", "agent_id": "a", "seq": 3, "ts": "2026-01-01T00:00:00+00:00",
        "episode_index": 0, "step_index": 1, "action": 1, "observation": 5, "reward": 0.0, "terminated": False,
        "truncated": False, "info": {"prob": 1.0}, "render_payload": {"kind": "grid", "rows": 1, "cols": 1,
                                                                        "cells": ["S"], "agent": [0, 0]}}
BASES: list[dict[str, Any]] = [
    STEP,
    {"v": 1, "kind": "episode", "run_id": "r", "episode_index": 0, "total_reward": 1.0, "length": 3,
     "metadata": {"seed": 1}},
    {"v": 1, "kind": "heartbeat", "run_id": "r", "interval_s": 1.0},
    {"v": 1, "kind": "run_started", "run_id": "r", "env_id": "FrozenLake-v1", "config": {}},
    {"v": 1, "kind": "run_completed", "run_id": "r", "outcome": "completed", "summary": {}},
    {"event": "run_started", "run_id": "r", "timestamp": 1.5, "payload": {"env_id": "x", "config": {}}},
    {"event": "run_completed", "run_id": "r", "timestamp": 1.5, "payload": {"episodes": 2}},
    {"event": "heartbeat", "run_id": "r", "timestamp": 1.5, "payload": {}},
    {"type": "step", "run_id": "r", "agent_id": "a", "episode": 0, "step": 0, "action_json": "1",
     "observation_json": "[1, 2]", "reward": 0.5, "render_payload": "{\"kind\": \"grid\"}", "ts_unix_ns": 1},
    {"type": "episode", "run_id": "r", "episode": 0, "episode_return": 1.0, "steps": 3, "metadata_json": "{}"},
    {"type": "error", "run_id": "r", "message": "boom"},
]
EXTRA_KEYS = ["ts", "ts_unix_ns", "timestamp", "seq", "episode", "step", "metadata", "metadata_json",
              "render_hint_json", "action_json", "observation_json", "total_reward", "length", "steps", "outcome"]
ODD_VALUES: list[Any] = [
    None, True, False, 0, 1, -1, 2**63, -(2**63) - 1, 2**64, 10**30, 10**400, -(10**400), 0.5, -0.0, 1e308, -1e308,
    5e-324, 1e20, 253402300800, -62135596801, "", "x", "1", "2026-01-01T00:00:00", "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00", "2026-13-01T00:00:00+00:00", "null", "{}", "[1]", "{\"a\":", "\udcff", "é",
    [], [1, "a"], {}, {"k": [None]}, {"nested": {"deep": [1.5, {"x": None}]}},
]


def _mutations(rng: random.Random, count: int) -> list[dict[str, Any]]:
    out = []
    for _ in range(count):
        record = dict(rng.choice(BASES))
        keys = list(record) + EXTRA_KEYS
        for _ in range(rng.randint(1, 3)):
            key = rng.choice(keys)
            if rng.random() < 0.15:
                record.pop(key, None)
            else:
                record[key] = rng.choice(ODD_VALUES)
        out.append(record)
    return out


@pytest.mark.parametrize("seed", range(4))
def test_no_line_makes_the_proxy_fail(seed: int) -> None:
    rng = random.Random(seed)
    outcomes: dict[str, int] = {}
    for record in _mutations(rng, 1500):
        line = json.dumps(record).encode("utf-8", "surrogatepass")
        if rng.random() < 0.1:  # a truncated copy as well
            line = line[: rng.randint(0, len(line))]
        try:
            fields = normalize_line(line, default_agent_id="d", default_run_id=None, now_iso=NOW)
        except RecordRejected as exc:
            assert exc.reason in RejectReason.ALL and exc.reason != RejectReason.INTERNAL_ERROR, exc.detail
            outcomes[exc.reason] = outcomes.get(exc.reason, 0) + 1
            continue
        topic, run_id, agent_id, _seq, ts_iso, payload = fields
        TelemetryEvent(topic, run_id, agent_id, 1, ts_iso, payload)  # every accepted record makes an event
        dict(payload)  # and its payload reads back (a StepPayload decodes its JSON text)
        outcomes["accepted"] = outcomes.get("accepted", 0) + 1
    assert outcomes.get("accepted", 0) > 100 and len(outcomes) > 4  # the mutations reach both sides
