"""The orjson decoder and the fast canonical-step path give exactly what the stdlib path gives."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from data_envelope import DROP, GRID, NOW, data_step
from json_compare import same_json

from gym_gui.ingest.records import (
    RecordRejected,
    RejectReason,
    _fast_canonical_step,
    _normalize_general,
    _parse_line_stdlib,
    normalize_line,
    normalize_record,
    parse_line,
)
from gym_gui.telemetry.events import Topic



def step(**fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "v": 1, "kind": "step", "run_id": "r1", "agent_id": "a1", "seq": 3, "ts": "2026-11-28T18:42:38.191590+00:00",
        "episode_index": 0, "step_index": 1, "action": 1, "observation": 5, "reward": 0.0, "terminated": True,
        "truncated": False, "info": {"prob": 1.0}, "render_payload": GRID,
    }
    for key, value in fields.items():
        if value is _DROP:
            record.pop(key, None)
        else:
            record[key] = value
    return record


_DROP = DROP  # (one sentinel for step() and data_step())


LINES = [
    json.dumps(step()).encode(),
    json.dumps(step(), separators=(",", ":")).encode(),
    b'{"a": 18446744073709551615, "b": 18446744073709551616, "c": -9223372036854775809, "d": 12345678901234567890123}',
    b'{"a": -9223372036854775808, "b": 9223372036854775807, "ns": 1700000000123456789}',
    b'{"a": 1e400, "b": -1e400, "c": 1e-400, "d": 0.1, "e": 1E2, "f": -0, "g": -0.0, "h": 5e-324}',
    b'{"s": "\\ud800 lone", "t": "\\u00e9\\u2028", "u": "\xc3\xa9"}',
    b'{"k": 1, "k": 2}',
    b'  {"padded": true}\r',
    b'{"deep": ' + b"[" * 300 + b"]" * 300 + b"}",
    b'{"deeper": ' + b"[" * 1500 + b"]" * 1500 + b"}",
    b'{"nested": {"x": [1, 2.5, null, true, false, "t"]}}',
    '{"str": "ok", "n": 3}',
    '{"lone": "\ud800"}',
]


@pytest.mark.parametrize("line", LINES, ids=range(len(LINES)))
def test_parse_line_matches_the_stdlib_decoder(line: bytes | str) -> None:
    got, reference = _outcome(lambda: parse_line(line)), _outcome(lambda: _parse_line_stdlib(line))
    assert got[0] == reference[0]
    assert same_json(got[1], reference[1])


def test_huge_integers_stay_exact_integers() -> None:
    record = parse_line(b'{"big": 123456789012345678901234567890, "neg": -9223372036854775809}')
    assert record == {"big": 123456789012345678901234567890, "neg": -9223372036854775809}
    assert type(record["big"]) is int and type(record["neg"]) is int


#: Numbers with 20 or more digits that are not integers (fraction digits, a mantissa before "." or "e",
#: exponent digits) and integers that are: the guard sends only the integers to the stdlib decoder.
LONG_DIGIT_RUNS = [
    (b'{"loss": 0.00048756704046806434}', False),
    (b'{"x": -0.000000000000000000000123}', False),
    (b'{"x": 123456789012345678901.5}', False),
    (b'{"x": 1234567890123456789012345e-5}', False),
    (b'{"x": 1.00000000000000011102230246251565404236316680908203125}', False),
    (b'{"x": 1e-00000000000000000001}', False),
    (b'{"x": 12345678901234567890}', True),
    (b'{"x": -1234567890123456789}', True),  # 19 digits and a minus: kept with the stdlib (fits, but harmless)
    (b'[12345678901234567890]', True),
    (b'{"a": 0.5, "b": 12345678901234567890123}', True),
    (b'{"a": 0.00048756704046806434, "b": 12345678901234567890}', True),
    (b'12345678901234567890', True),
    (b'{"s": "id-12345678901234567890"}', True),  # in a string: harmless, the stdlib gives the same
]


@pytest.mark.parametrize(("line", "flagged"), LONG_DIGIT_RUNS, ids=range(len(LONG_DIGIT_RUNS)))
def test_the_big_integer_guard_flags_integers_not_long_fractions(line: bytes, flagged: bool) -> None:
    from gym_gui.telemetry.json_text import may_hold_big_int

    assert may_hold_big_int(line) is flagged
    got = parse_line(line) if line.startswith(b"{") else None
    if got is not None:
        reference = _parse_line_stdlib(line)
        assert same_json(got, reference)
        assert [type(v) for v in got.values()] == [type(v) for v in reference.values()]


def test_orjson_reads_long_floats_as_the_stdlib_does() -> None:
    import random

    import orjson

    rng = random.Random(13)
    texts = []
    for _ in range(20_000):
        x = rng.random() * 10.0 ** rng.randint(-30, 30)
        texts += [repr(x), "%.25f" % x, "%.30e" % x, f"{rng.getrandbits(60)}.{rng.getrandbits(80)}"]
    for text in texts:
        assert orjson.loads(text) == json.loads(text), text


@pytest.mark.parametrize(("line", "reason"), [
    (b'{"reward": NaN}', RejectReason.NON_FINITE),
    (b'{"reward": Infinity}', RejectReason.NON_FINITE),
    (b'{"reward": -Infinity}', RejectReason.NON_FINITE),
    (b'{"a": "\xff"}', RejectReason.INVALID_UTF8),
    (b'\xef\xbb\xbf{}', RejectReason.INVALID_JSON),
    (b'{"a": "tab\there"}', RejectReason.INVALID_JSON),
    (b'{"a": 1,}', RejectReason.INVALID_JSON),
    (b'{"a": 1} {"b": 2}', RejectReason.INVALID_JSON),
    (b'[1]', RejectReason.NOT_AN_OBJECT),
    (b'"text"', RejectReason.NOT_AN_OBJECT),
    (b'null', RejectReason.NOT_AN_OBJECT),
])
def test_rejections_keep_their_reason(line: bytes, reason: str) -> None:
    with pytest.raises(RecordRejected) as info:
        parse_line(line)
    assert info.value.reason == reason
    with pytest.raises(RecordRejected) as reference:
        _parse_line_stdlib(line)
    assert reference.value.reason == reason


VARIANTS = [
    {},
    {"agent_id": _DROP},
    {"agent_id": None},
    {"agent_id": ""},
    {"agent_id": 7},
    {"seq": _DROP},
    {"seq": 4.0},
    {"seq": "4"},
    {"seq": True},
    {"reward": 1},
    {"reward": True},
    {"reward": 1e308},
    {"info": _DROP},
    {"info": None},
    {"info": [1]},
    {"render_payload": _DROP},
    {"render_payload": None},
    {"render_payload": json.dumps(GRID)},
    {"render_hint_json": "{\"fps\": 4}"},
    {"action": _DROP, "action_json": "[1, 2]"},
    {"observation": _DROP},
    {"terminated": 1},
    {"episode_index": 2.0},
    {"episode_index": "2"},
    {"ts": "2026-11-28T19:42:38+01:00"},
    {"ts": "2026-11-28T18:42:38"},
    {"ts": "2026-11-28T18:42:38Z"},
    {"ts": "nope+00:00"},
    {"ts": ""},
    {"ts": _DROP},
    {"ts": _DROP, "ts_unix_ns": 1700000000123456789},
    {"ts_unix_ns": 1700000000123456789},
    {"timestamp": "2026-11-28T18:42:38+00:00"},
    {"type": "step"},
    {"worker_id": "w1", "render_hint": "grid"},
    {"v": True},
    {"v": 1.0},
    {"v": 2},
    {"kind": "Step"},
    {"run_id": ""},
    {"run_id": _DROP},
    {"info": _DROP, "render_payload": _DROP},
    {"info": _DROP, "render_payload": _DROP, "reward": 1},
    {"info": _DROP, "render_payload": _DROP, "seq": _DROP},
    {"info": _DROP, "render_payload": _DROP, "ts": "nope+00:00"},
    {"info": _DROP, "render_payload": _DROP, "episode_index": 2**63},
    {"info": _DROP, "render_payload": _DROP, "reward": 1e308, "terminated": 1},
]


def _outcome(fn: Any) -> Any:
    try:
        return ("ok", fn())
    except RecordRejected as exc:
        return ("rejected", exc.reason)


@pytest.mark.parametrize("variant", VARIANTS, ids=[repr(v)[:60] for v in VARIANTS])
def test_fast_step_path_matches_the_general_path(variant: dict[str, Any]) -> None:
    record = step(**variant)
    line = json.dumps(record).encode()
    reference = _outcome(lambda: _normalize_general(copy.deepcopy(record), "agent-d", "run-d", NOW))
    fast = _outcome(lambda: normalize_line(line, default_agent_id="agent-d", default_run_id="run-d", now_iso=NOW))
    public = _outcome(lambda: tuple(attr for attr in _fields(normalize_record(
        record, default_agent_id="agent-d", default_run_id="run-d", now_iso=NOW))))
    assert fast[0] == reference[0] == public[0]
    if reference[0] == "rejected":
        assert fast[1] == reference[1] == public[1]
    else:
        for got in (fast[1], public[1]):
            assert got[:5] == reference[1][:5]
            assert same_json(_by_key(got[5]), _by_key(reference[1][5]))


def _by_key(payload: Any) -> dict[str, Any]:
    """A payload as a plain dict in key order (a StepPayload keeps the store's column order)."""
    return dict(sorted(dict(payload).items()))


def _fields(norm: Any) -> tuple[Any, ...]:
    return (norm.topic, norm.run_id, norm.agent_id, norm.seq, norm.ts_iso, norm.payload)


def test_normalize_record_does_not_modify_its_argument() -> None:
    record = step(worker_id="w1")
    before = copy.deepcopy(record)
    norm = normalize_record(record, default_agent_id="d", default_run_id=None, now_iso=NOW)
    assert record == before
    assert norm.topic is Topic.STEP_APPENDED and "v" not in norm.payload and "worker_id" in norm.payload


def test_fast_path_payload_keeps_the_worker_key_order_and_extras() -> None:
    record = step(worker_id="w1")
    topic, run_id, agent_id, seq, ts_iso, payload = normalize_line(
        json.dumps(record).encode(), default_agent_id="d", default_run_id=None, now_iso=NOW)
    assert (topic, run_id, agent_id, seq, ts_iso) == (Topic.STEP_APPENDED, "r1", "a1", 3, record["ts"])
    assert list(payload) == ["episode_index", "step_index", "action", "observation", "reward", "terminated",
                             "truncated", "info", "render_payload", "worker_id"]


def test_the_workers_step_lines_take_the_fast_path() -> None:
    assert _fast_canonical_step(step(), "d", False) is not None
    assert _fast_canonical_step(step(render_payload=None, info=_DROP, agent_id=_DROP, seq=_DROP), "d", False) is not None


DATA_VARIANTS = [
    {},
    {"agent_id": _DROP}, {"agent_id": None}, {"agent_id": ""}, {"agent_id": "caf\u00e9"}, {"agent_id": 7},
    {"run_id": _DROP}, {"run_id": ""}, {"run_id": "x" * 1025},
    {"seq": 9}, {"seq": 4.0}, {"seq": "4"}, {"seq": True},
    {"episode": _DROP}, {"episode": _DROP, "episode_index": 4}, {"episode": None, "episode_index": 4},
    {"episode": "3"}, {"episode": 3.0}, {"step": _DROP}, {"step": _DROP, "step_index": 2},
    {"action_json": _DROP}, {"action_json": "[1, 2]"}, {"action_json": "02"}, {"action_json": "nope"},
    {"action_json": "NaN"}, {"action_json": "1e400"}, {"action_json": "123456789012345678901234"},
    {"action_json": "\"\\ud800\""}, {"action_json": " 7 "}, {"action_json": 4}, {"action": 1},
    {"action_json": "[" * 600 + "]" * 600},
    {"observation_json": "[0.1, -2.5e-07]"}, {"observation_json": "{\"a\": {\"b\": null}}"},
    {"observation_json": _DROP, "observation": [1, 2]},
    {"reward": 1}, {"reward": True}, {"reward": "0.0"}, {"reward": _DROP}, {"reward": 1e308},
    {"terminated": 1}, {"terminated": None}, {"terminated": _DROP}, {"truncated": "no"},
    {"info": _DROP}, {"info": None}, {"info": [1]}, {"info": {"mask": [1, 0], "big": 2**70}},
    {"render_payload": _DROP}, {"render_payload": None}, {"render_payload": GRID}, {"render_payload": "[1]"},
    {"render_payload": "{\"kind\": \"grid\", \"x\": NaN}"}, {"render_payload": "{bad"}, {"render_payload": 3},
    {"render_hint_json": "{\"fps\": 4}"}, {"worker_id": "w1"}, {"episode_seed": 7}, {"frame_ref": "f"},
    {"ts_unix_ns": _DROP}, {"ts_unix_ns": 1714564800999999999}, {"ts_unix_ns": -5}, {"ts_unix_ns": 10**22},
    {"ts_unix_ns": 253402300800 * 10**9}, {"ts_unix_ns": 1.5e18}, {"ts_unix_ns": "1"},
    {"ts_unix_ns": _DROP, "ts": "2026-11-28T19:42:38+01:00"}, {"ts_unix_ns": _DROP, "timestamp": 1714564800.5},
    {"ts_unix_ns": _DROP, "timestamp": "2026-11-28T18:42:38"}, {"ts_unix_ns": _DROP, "ts": "nope"},
    {"type": "episode"}, {"v": 1},
]


@pytest.mark.parametrize("variant", DATA_VARIANTS, ids=[repr(v)[:60] for v in DATA_VARIANTS])
def test_fast_data_step_path_matches_the_general_path(variant: dict[str, Any]) -> None:
    record = data_step(**variant)
    line = json.dumps(record).encode()
    reference = _outcome(lambda: _normalize_general(copy.deepcopy(record), "agent-d", "run-d", NOW))
    fast = _outcome(lambda: normalize_line(line, default_agent_id="agent-d", default_run_id="run-d", now_iso=NOW))
    assert fast[0] == reference[0]
    if reference[0] == "rejected":
        assert fast[1] == reference[1]
    else:
        assert fast[1][:5] == reference[1][:5]
        assert same_json(_by_key(fast[1][5]), _by_key(reference[1][5]))


def test_the_existing_workers_step_lines_become_step_payloads() -> None:
    from gym_gui.telemetry.step_payload import StepPayload

    fields = normalize_line(json.dumps(data_step()).encode(), default_agent_id="d", default_run_id=None, now_iso=NOW)
    assert fields[:5] == (Topic.STEP_APPENDED, "r1", "a1", None, "2024-05-01T12:00:00.250000+00:00")
    assert type(fields[5]) is StepPayload and fields[5]["render_payload"] == GRID and fields[5]["action"] == 2


#: Data steps whose *_json strings hide a big integer (or its neighbours) behind \u escapes: the line's
#: own text passes the big-integer check, so such a line must still have its strings checked.
ESCAPED_LINES = [
    rb'{"type":"step","run_id":"r1","episode":3,"step":0,"action_json":"1234567890\u00312345678\u00399012345",'
    rb'"observation_json":"5","reward":0.0,"terminated":false,"truncated":false,"info":{}}',
    rb'{"type":"step","run_id":"r1","episode":3,"step":0,"action_json":"2","observation_json":"5",'
    rb'"reward":0.0,"terminated":false,"truncated":false,"info":{},'
    rb'"render_payload":"{\"kind\": \"grid\", \"n\": -123456789\u00301234567890}"}',
    rb'{"type":"step","run_id":"r1","episode":3,"step":0,"action_json":"[1\u002e12345678901234567890]",'
    rb'"observation_json":"5","reward":0.0,"terminated":false,"truncated":false,"info":{}}',
    rb'{"type":"step","run_id":"r1","episode":3,"step":0,"action_json":"2","observation_json":"[0.5, 7]",'
    rb'"reward":0.0,"terminated":false,"truncated":false,"info":{},'
    rb'"render_payload":"{\"kind\": \"grid\", \"cells\": [\"S\\\\F\\/F\\tF\"], \"agent\": [0, 1]}"}',
]


@pytest.mark.parametrize("line", ESCAPED_LINES, ids=range(len(ESCAPED_LINES)))
def test_escaped_strings_of_a_data_step_are_decoded_as_the_general_path_decodes_them(line: bytes) -> None:
    record = _parse_line_stdlib(line)
    reference = _outcome(lambda: _normalize_general(copy.deepcopy(record), "agent-d", "run-d", NOW))
    fast = _outcome(lambda: normalize_line(line, default_agent_id="agent-d", default_run_id="run-d", now_iso=NOW))
    assert fast[0] == reference[0] == "ok"
    assert fast[1][:5] == reference[1][:5]
    assert same_json(_by_key(fast[1][5]), _by_key(reference[1][5]))
    payload = dict(fast[1][5])
    for value in (payload["action"], (payload["render_payload"] or {}).get("n")):
        if isinstance(value, (int, float)) and abs(value) > 2**63:
            assert type(value) is int  # exact, as the stdlib reads it
