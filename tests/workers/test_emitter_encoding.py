"""JsonlEmitter lines: the same values as the stdlib reference encoder, valid JSONL v1 that the
proxy reads on its fast path, cheap timestamps that equal datetime's, and the stdlib fallback when
orjson is not installed."""

from __future__ import annotations

import enum
import io
import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gym_gui.ingest.records import normalize_line
from gym_gui.telemetry.step_payload import StepPayload
from gym_gui.workers.jsonl_emitter import JsonlEmitter
from gym_gui.workers.jsonl_encoding import HAVE_ORJSON, UtcSecondClock, stdlib_encode_object, to_jsonable
from gym_gui.workers.records import episode_fields, step_fields

REPO = Path(__file__).resolve().parents[2]
COMMON = ("v", "kind", "run_id", "agent_id", "seq", "ts")
GRID = {"kind": "grid", "env_family": "FrozenLake", "rows": 4, "cols": 4,
        "cells": ["SFFF", "FHFH", "FFFH", "HFFG"], "agent": [1, 1]}


def emitted(*records: tuple[str, Any]) -> list[bytes]:
    out = io.BytesIO()
    em = JsonlEmitter(out, run_id="run-1", agent_id="agent-1")
    for kind, fields in records:
        em.emit(kind, fields)
    em.close()
    return out.getvalue().split(b"\n")[:-1]


def reference(fields: dict[str, Any]) -> Any:
    """What the stdlib reference path (the previous emitter's encoder) makes of ``fields``."""
    return json.loads(stdlib_encode_object(fields))


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


class Colour(enum.IntEnum):
    RED = 1


EDGE_VALUES: dict[str, Any] = {
    "np_int": np.int64(-3),
    "np_uint_max": np.uint64(2**64 - 1),
    "np_float32": np.float32(0.1),  # written as the double it widens to, like the stdlib path
    "np_float16": np.float16(0.1),
    "np_bool": np.bool_(True),
    "np_array_f32": np.array([0.1, 2.5], dtype=np.float32),
    "np_array_i8": np.array([1, 0, 1], dtype=np.int8),
    "np_non_contiguous": np.arange(6).reshape(2, 3)[:, :1],
    "nan": float("nan"),
    "inf": [float("inf"), -float("inf"), np.float64("nan")],
    "big_int": 2**70,
    "neg_big_int": -(2**70),
    "u64": 2**64 - 1,
    "tuple": (1, (2, 3)),
    "set": {3, 1, 2},
    "bytes": b"abc",
    "non_ascii": "caf\u00e9 \u2028 \U0001f600",
    "lone_surrogate": "x\ud800y",
    "int_keys": {1: "a", 2: {3: None}},
    "int_enum": Colour.RED,
    "deep": nested(300),  # deeper than orjson takes
    "float_forms": [1e-7, 1e16, 1.5e300, -0.0, 0.1 + 0.2],
}


@pytest.mark.parametrize("name", sorted(EDGE_VALUES))
def test_values_read_back_as_the_stdlib_reference_gives_them(name: str) -> None:
    fields = {"x": EDGE_VALUES[name], "after": 1}
    (line,) = emitted(("step", fields))
    text = line.decode("utf-8")
    assert "NaN" not in text and "Infinity" not in text
    record = json.loads(text)
    assert list(record)[:6] == list(COMMON)
    assert {k: record[k] for k in ("x", "after")} == reference(fields)


def test_big_integers_are_written_digit_for_digit() -> None:
    (line,) = emitted(("step", {"n": 2**70 + 1, "m": -(2**65)}))
    assert b'"n":1180591620717411303425,"m":-36893488147419103232}' in line


def test_float32_is_the_exact_double_not_the_shortest_float32_text() -> None:
    (line,) = emitted(("step", {"f": np.float32(0.1)}))
    assert json.loads(line)["f"] == float(np.float32(0.1)) == 0.10000000149011612


def test_common_fields_win_and_come_first_for_any_mapping() -> None:
    class Fields(dict):  # type: ignore[type-arg]
        pass

    lines = emitted(("step", {"seq": 99, "ts": "x", "kind": "evil", "a": 1}), ("step", Fields(b=2)),
                    ("custom_kind", {}), ("episode", None))
    records = [json.loads(line) for line in lines]
    assert [r["seq"] for r in records] == [1, 2, 3, 4]
    assert records[0]["kind"] == "step" and records[0]["a"] == 1 and records[0]["ts"] != "x"
    assert records[1]["b"] == 2 and records[2]["kind"] == "custom_kind"
    for record in records:
        assert list(record)[:6] == list(COMMON)
    assert lines[3].endswith(b'+00:00"}')


def test_ids_with_json_and_format_characters() -> None:
    out = io.BytesIO()
    em = JsonlEmitter(out, run_id='r "100%" \\ \u00e9', agent_id="a%d%s")
    em.emit("step", {"x": 1})
    em.close()
    record = json.loads(out.getvalue())
    assert record["run_id"] == 'r "100%" \\ \u00e9' and record["agent_id"] == "a%d%s" and record["x"] == 1


def test_unencodable_value_raises_without_using_a_seq() -> None:
    out = io.BytesIO()
    em = JsonlEmitter(out, run_id="r", agent_id="a")
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    with pytest.raises((ValueError, TypeError, RecursionError)):
        em.emit("step", {"c": cyclic})
    with pytest.raises(TypeError):
        em.emit("", {})
    assert em.emit("step", {"ok": True}) == 1
    em.close()
    assert json.loads(out.getvalue())["seq"] == 1


def test_timestamps_equal_datetime_text_across_seconds_and_backward_steps() -> None:
    clock = UtcSecondClock()
    base = 1_764_583_199_999_998  # 2025-12-01T09:59:59.999998Z, two microseconds before a new second
    for now_us in [base, base + 1, base + 2, base + 3, base + 1_000_000, base - 5_000_000, base, 0, 253_402_300_799_999_999]:
        want = datetime.fromtimestamp(now_us // 1_000_000, timezone.utc).replace(microsecond=now_us % 1_000_000)
        assert clock.iso(now_us) == want.isoformat(timespec="microseconds")


def test_emitted_ts_is_the_wall_clock_time_of_the_emit() -> None:
    before = datetime.now(timezone.utc)
    lines = emitted(*[("step", {"i": i}) for i in range(50)])
    after = datetime.now(timezone.utc)
    stamps = [datetime.fromisoformat(json.loads(line)["ts"]) for line in lines]
    assert all(before <= ts <= after for ts in stamps)
    assert stamps == sorted(stamps)


def test_the_proxy_reads_emitted_step_lines_on_its_fast_path() -> None:
    lines = emitted(
        ("run_started", {"env_id": "FrozenLake-v1", "config": {}, "worker": {"name": "t"}, "pid": 1}),
        ("step", step_fields(0, 0, 2, 5, 0.0, False, False, {"prob": 1.0}, GRID)),
        ("step", step_fields(0, 1, np.int64(1), [0.1, -2.5e-7], -1, False, True, {}, None)),
        ("episode", episode_fields(0, -1.0, 2, False, True, "truncated", {"epsilon": 0.5})),
        ("heartbeat", {"interval_s": 1.0, "stats": {"steps_done": 2, "mean_return_last_100": float("nan")}}),
        ("run_completed", {"outcome": "completed", "summary": {"episodes": 1}}),
    )
    results = [normalize_line(line, default_agent_id="d", default_run_id=None, now_iso="2000-01-01T00:00:00+00:00")
               for line in lines]
    assert [r[3] for r in results] == [1, 2, 3, 4, 5, 6]
    assert all(r[1] == "run-1" and r[2] == "agent-1" for r in results)
    for r, line in zip(results, lines):
        assert r[4] == json.loads(line)["ts"]  # the worker's time text is kept
    assert type(results[1][5]) is StepPayload and type(results[2][5]) is StepPayload  # the fast path
    assert dict(results[1][5]) == {**step_fields(0, 0, 2, 5, 0.0, False, False, {"prob": 1.0}, GRID)}
    assert results[2][5]["observation"] == [0.1, -2.5e-7] and results[2][5]["reward"] == -1.0
    assert results[4][5]["stats"]["mean_return_last_100"] is None


def test_emit_step_writes_the_line_of_emit_step_fields() -> None:
    """emit_step(...) is emit("step", step_fields(...)) byte for byte, but for ts; it shares seq and batch."""
    cases: list[tuple[Any, ...]] = [
        (0, 0, 2, 5, 0.0, False, False, {"prob": 1.0}, GRID),
        (0, 1, np.int64(1), [0.1, -2.5e-7, float("nan")], -1, False, True, {}, None),
        (3, 7, {"k": [1, 2]}, "caf\u00e9", 1e-7, True, False, {"big": 2**70, "mask": np.array([1, 0])}, None),
        (4, 0, None, None, 2.5, False, False, None, {"kind": "rgb", "data_b64": "AAAA"}),
    ]
    a, b = io.BytesIO(), io.BytesIO()
    general = JsonlEmitter(a, run_id="run-1", agent_id="agent-1")
    fast = JsonlEmitter(b, run_id="run-1", agent_id="agent-1")
    for case in cases:
        general.emit("step", step_fields(*case))
        assert fast.emit_step(*case) == general.seq
    fast.emit("episode", episode_fields(4, 1.0, 1, False, False, "cancelled", {}))
    assert fast.emit_step(*cases[0]) == len(cases) + 2  # one seq for both calls, in line order
    general.close()
    fast.close()

    def without_ts(line: bytes) -> bytes:
        head, rest = line.split(b',"ts":"', 1)
        stamp, tail = rest.split(b'"', 1)
        assert datetime.fromisoformat(stamp.decode()).utcoffset() is not None and len(stamp) == 32
        return head + tail

    lines_a, lines_b = a.getvalue().splitlines(), b.getvalue().splitlines()
    assert [without_ts(x) for x in lines_a] == [without_ts(x) for x in lines_b[:len(cases)]]
    results = [normalize_line(line, default_agent_id="d", default_run_id=None, now_iso="2000-01-01T00:00:00+00:00")
               for line in lines_b]
    assert type(results[0][5]) is StepPayload and dict(results[0][5]) == step_fields(*cases[0])
    assert [r[3] for r in results] == [1, 2, 3, 4, 5, 6]


def test_emit_step_refuses_after_close_and_keeps_its_seq_on_unencodable_values() -> None:
    out = io.BytesIO()
    em = JsonlEmitter(out, run_id="r", agent_id="a")
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    with pytest.raises((ValueError, TypeError, RecursionError)):
        em.emit_step(0, 0, cyclic, 0, 0.0, False, False, {}, None)
    assert em.emit_step(0, 0, 1, 0, 0.0, False, False, {}, None) == 1
    em.close()
    with pytest.raises(RuntimeError):
        em.emit_step(0, 1, 1, 0, 0.0, False, False, {}, None)
    assert json.loads(out.getvalue())["seq"] == 1


_NO_ORJSON = """
import sys
sys.modules["orjson"] = None
import io, json
import numpy as np
from gym_gui.workers import jsonl_encoding
from gym_gui.workers.jsonl_emitter import JsonlEmitter
assert not jsonl_encoding.HAVE_ORJSON
out = io.BytesIO()
em = JsonlEmitter(out, run_id="r", agent_id="a")
em.emit("step", {"f": np.float32(0.1), "n": float("nan"), "big": 2**70, "s": "caf\\u00e9", "k": {1: 2}})
em.emit("episode", None)
em.close()
sys.stdout.write(out.getvalue().decode("ascii"))
"""


def test_without_orjson_the_stdlib_encoder_writes_the_same_values() -> None:
    proc = subprocess.run([sys.executable, "-c", _NO_ORJSON], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    step, episode = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.stdout.isascii()  # the stdlib form: \\u escapes
    assert {k: step[k] for k in ("f", "n", "big", "s", "k")} == {
        "f": 0.10000000149011612, "n": None, "big": 2**70, "s": "caf\u00e9", "k": {"1": 2}}
    assert list(step)[:6] == list(COMMON) and episode["seq"] == 2 and episode["kind"] == "episode"


def test_to_jsonable_is_still_exported() -> None:
    assert to_jsonable({1: (np.int8(2), float("inf"))}) == {"1": [2, None]}
    assert HAVE_ORJSON in (True, False)
