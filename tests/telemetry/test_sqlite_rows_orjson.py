"""Row JSON made with orjson decodes to what the stdlib encoder's text decodes to."""

from __future__ import annotations

import collections
import enum
import json
import math
import types
from typing import Any

import numpy as np
import pytest
from json_compare import same_json

from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.json_text import stdlib_encode as _stdlib_encode
from gym_gui.telemetry.sqlite_rows import decode_step, dump_json, encode_step, load_json


class Level(enum.IntEnum):
    LOW = 1


class Text(str):
    pass


VALUES: list[Any] = [
    {"kind": "grid", "rows": 4, "cells": ["SFFF", "FHFH"], "agent": [1, 1]},
    {"prob": 1.0, "x": 0.1, "tiny": 5e-324, "big": 1e16, "neg": -0.0, "e": 1e-7},
    {"nan": math.nan, "inf": math.inf, "ninf": -math.inf, "nested": [1.0, math.nan]},
    {"none": None, "list": [None, 1]},
    {"huge": 2**70, "neg": -(2**63) - 1, "u64": 2**64 - 1, "i64": -(2**63)},
    {"lone": "\udcff", "ok": "é\u2028"},
    {1: "int key", None: "none key", 2.5: "float key"},
    {True: "bool key", False: "false key"},
    {"tuple": (1, 2), "set": {3, 1, 2}, "frozen": frozenset({"a"})},
    {"np_f": np.float64(1.5), "np_i": np.int64(3), "np_a": np.arange(3), "np_nan": np.float64("nan")},
    {"proxy": types.MappingProxyType({"a": 1}), "ordered": collections.OrderedDict(b=2, a=1)},
    {"intenum": Level.LOW, "text": Text("t")},
    {"deep": json.loads("[" * 200 + "]" * 200)},
    {"null-text": "null", "word": "nullable"},
    [1, "two", 3.0, True, None],
    "plain",
    3.25,
    True,
    None,
    7,
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_dump_json_means_what_the_stdlib_text_means(value: Any) -> None:
    assert same_json(load_json(dump_json(value)), load_json(_stdlib_encode(value)))


@pytest.mark.parametrize("value", [{"a": object()}, {"cycle": None}])
def test_unencodable_values_still_raise(value: dict[str, Any]) -> None:
    if "cycle" in value:
        value["cycle"] = value
    with pytest.raises((TypeError, ValueError, RecursionError)):
        dump_json(value)


def test_common_step_row_is_byte_identical_to_the_stdlib_encoding() -> None:
    payload = {"kind": "grid", "env_family": "FrozenLake", "rows": 4, "cols": 4,
               "cells": ["SFFF", "FHFH", "FFFH", "HFFG"], "agent": [1, 1]}
    assert dump_json(payload) == _stdlib_encode(payload)
    assert dump_json({"prob": 1.0}) == '{"prob":1.0}'


def test_step_flags_are_bound_as_integers_and_read_back_as_bools() -> None:
    payload = {"episode_index": 0, "step_index": 1, "action": 2, "observation": 3, "reward": 0.5,
               "terminated": True, "truncated": False, "info": {"p": 1.0}, "render_payload": None}
    evt = TelemetryEvent(Topic.STEP_APPENDED, "r", "a", 4, "2030-01-01T00:00:00+00:00", payload)
    row = encode_step(evt)
    assert row[8:10] == (1, 0) and type(row[8]) is int and type(row[9]) is int
    assert row[11] == "null" and row[12] is None
    back = decode_step((row[0], row[1], row[2], row[13], row[3], row[4], row[7], row[8], row[9],
                        row[5], row[6], row[10], row[11], row[12]))
    assert back.payload == payload and back.terminated is True and back.truncated is False


@pytest.mark.parametrize("stored", [b"[1]", b"{}", b"\xff", b""])
def test_a_stored_json_value_that_is_not_a_text_raises_a_clear_value_error(stored: Any) -> None:
    from gym_gui.telemetry.sqlite_rows import read_json

    with pytest.raises(ValueError, match="not a text"):
        read_json(stored)
