"""StepPayload: a step payload whose info and render payload travel as JSON text.

It must be indistinguishable from the dict it replaces for every reader (mapping protocol,
equality, values after decoding) and give the store the row the dict would give.
"""

from __future__ import annotations

import copy
import math
import pickle
from collections.abc import Mapping
from typing import Any

import pytest
from json_compare import same_json
from named_value import NamedValue

from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.json_text import dump_json, encode_json, load_json
from gym_gui.telemetry.sqlite_rows import decode_step, encode_step
from gym_gui.telemetry.step_payload import STEP_PAYLOAD_KEYS, StepPayload, compact_step

GRID = {"kind": "grid", "env_family": "FrozenLake", "rows": 4, "cols": 4,
        "cells": ["SFFF", "FHFH", "FFFH", "HFFG"], "agent": [1, 1]}


def step(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "episode_index": 3, "step_index": 7, "action": 2, "observation": 5, "reward": 0.5,
        "terminated": False, "truncated": True, "info": {"prob": 1.0}, "render_payload": GRID,
    }
    payload.update(changes)
    return payload


def event(payload: Mapping[str, Any], agent_id: str | None = "agent-1") -> TelemetryEvent:
    return TelemetryEvent(Topic.STEP_APPENDED, "run-1", agent_id, 11, "2026-11-28T10:00:00+00:00", payload)


def test_reads_like_the_dict_it_replaces() -> None:
    source = step()
    compact = compact_step(source)
    assert type(compact) is StepPayload and isinstance(compact, Mapping)
    assert compact == source and source == compact and not compact != source
    assert list(compact) == list(STEP_PAYLOAD_KEYS) == list(source)
    assert len(compact) == 9 and "info" in compact and "v" not in compact and 3 not in compact
    assert compact["render_payload"] == GRID and compact["info"] == {"prob": 1.0}
    assert compact.get("reward") == 0.5 and compact.get("missing") is None and compact.get("missing", 4) == 4
    assert dict(compact.items()) == source and list(compact.values()) == list(source.values())
    with pytest.raises(KeyError):
        compact["missing"]
    assert compact != step(reward=0.25)
    assert repr(compact).startswith("StepPayload({'episode_index': 3")


def test_the_two_objects_travel_as_the_stores_json_text() -> None:
    compact = compact_step(step())
    assert compact is not None
    assert compact.fields == (3, 7, 2, 5, 0.5, False, True, encode_json({"prob": 1.0}), encode_json(GRID))
    assert compact_step(step(render_payload=None)).fields[8] is None  # type: ignore[union-attr]


def test_decoding_happens_once_and_gives_back_the_exact_values() -> None:
    info = {"huge": 2**70, "nan": math.nan, "lone": "\udcff", "é": [None, True, -0.0, 5e-324]}
    compact = compact_step(step(info=info))
    assert compact is not None
    first = compact["info"]
    assert compact["info"] is first and compact.get("info") is first
    assert same_json(first, info)


def test_copies_and_pickles_keep_the_fields() -> None:
    compact = compact_step(step())
    assert compact is not None
    for clone in (copy.copy(compact), copy.deepcopy(compact), pickle.loads(pickle.dumps(compact))):
        assert type(clone) is StepPayload and clone.fields == compact.fields and clone == compact


@pytest.mark.parametrize("changes", [
    {"extra": 1},
    {"episode_index": 1.0}, {"episode_index": 2**63}, {"step_index": True}, {"step_index": -(2**63) - 1},
    {"reward": math.nan}, {"reward": "1"}, {"reward": None}, {"reward": 2**63},
    {"terminated": 1}, {"truncated": None},
    {"info": None}, {"info": [1]}, {"render_payload": "grid"}, {"render_payload": [GRID]},
    {"info": {"obj": NamedValue("<opaque>")}},
], ids=repr)
def test_other_shapes_stay_dicts(changes: dict[str, Any]) -> None:
    assert compact_step(step(**changes)) is None


@pytest.mark.parametrize("key", ["action", "observation", "info", "render_payload", "reward"])
def test_a_missing_key_stays_a_dict(key: str) -> None:
    payload = step()
    del payload[key]
    payload["other"] = 0  # still nine keys
    assert compact_step(payload) is None
    del payload["other"]
    assert compact_step(payload) is None


@pytest.mark.parametrize("changes", [
    {}, {"render_payload": None}, {"info": {}}, {"action": [0.5, -1.0], "observation": [[1, 2], [3, 4]]},
    {"action": True, "observation": None}, {"action": 2**70, "observation": "text"},
    {"reward": 3}, {"reward": -0.0}, {"info": {"nan": math.nan, "inf": -math.inf}},
    {"render_payload": {"kind": "grid", "cells": ["é\u2028", "\udcff"], "none": None}},
    {"episode_index": -(2**63), "step_index": 2**63 - 1},
], ids=repr)
def test_the_store_gets_the_row_the_dict_would_give(changes: dict[str, Any]) -> None:
    source = step(**changes)
    compact = compact_step(source)
    assert compact is not None
    for agent_id in ("agent-1", None):
        row = encode_step(event(compact, agent_id))
        assert row == encode_step(event(source, agent_id))
        stored = decode_step((row[0], row[1], row[2], row[13], row[3], row[4], row[7], row[8], row[9],
                              row[5], row[6], row[10], row[11], row[12]))
        assert same_json(stored.payload, dict(source))


@pytest.mark.parametrize("changes", [
    {}, {"render_payload": None}, {"info": {}}, {"action": [0.5, -1.0], "observation": {"pos": [1, 2]}},
    {"action": True, "observation": None}, {"action": 2**70}, {"reward": 3}, {"reward": math.inf},
    {"reward": 1e-07}, {"info": {"nan": math.nan, "s": "\udcff é"}},
], ids=repr)
def test_its_json_text_means_the_dict(changes: dict[str, Any]) -> None:
    source = step(**changes)
    compact = compact_step(source)
    assert compact is not None
    assert same_json(load_json(compact.to_json()), load_json(dump_json(source)))
    assert same_json(load_json(compact.to_json()), source)


def test_events_take_it_as_their_payload() -> None:
    compact = compact_step(step())
    assert compact is not None
    assert event(compact).payload is compact
