"""Records in the existing gym_gui workers' data envelope (docs/telemetry-jsonl.md section 7), for the ingest tests."""

from __future__ import annotations

import json
from typing import Any

from named_value import NamedValue

NOW = "2030-01-01T00:00:00+00:00"
GRID = {"kind": "grid", "env_family": "FrozenLake", "rows": 4, "cols": 4,
        "cells": ["SFFF", "FHFH", "FFFH", "HFFG"], "agent": [1, 1]}
#: A field value that removes the key from the record.
DROP = NamedValue("DROP")


def data_step(**fields: Any) -> dict[str, Any]:
    """A data step with the keys in the order the existing gym_gui workers write them; ``fields``
    replace values in place (the layout stays the workers') or, given ``DROP``, remove the key."""
    record: dict[str, Any] = {
        "type": "step", "run_id": "r1", "agent_id": "a1", "episode": 3, "step": 0, "action_json": "2",
        "observation_json": "5", "reward": 0.0, "terminated": False, "truncated": False, "info": {"prob": 1.0},
        "render_payload": json.dumps(GRID), "ts_unix_ns": 1714564800250000000,
    }
    for key, value in fields.items():
        if value is DROP:
            record.pop(key, None)
        else:
            record[key] = value
    return record
