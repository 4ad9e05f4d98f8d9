"""A step line's render payload taken from the line (``render_texts``) decodes exactly as the whole line does."""

from __future__ import annotations

import json
from typing import Any, Iterator

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gym_gui.ingest import render_texts
from gym_gui.ingest.records import RecordRejected, normalize_line
from gym_gui.telemetry.step_payload import StepPayload

NOW = "2026-12-02T00:00:00+00:00"
HEAD = (b'{"v":1,"kind":"step","run_id":"r1","agent_id":"a1","seq":%s,"ts":"2026-11-28T18:42:38.191590+00:00",'
        b'"episode_index":0,"step_index":1,"action":1,"observation":5,"reward":%s,"terminated":false,'
        b'"truncated":false,"info":%s')
MEMBER = b',"render_payload":'
GRID = b'{"kind":"grid","env_family":"FrozenLake","rows":4,"cols":4,"cells":["SFFF","FHFH","FFFH","HFFG"],"agent":[1,2]}'


@pytest.fixture(autouse=True)
def fresh_table() -> Iterator[None]:
    render_texts.reset()
    yield
    render_texts.reset()


def decoded(line: bytes) -> Any:
    """normalize_line's result, exactly: a StepPayload as its fields, a rejection as its reason and detail."""
    try:
        fields = normalize_line(line, default_agent_id="a", default_run_id="r", now_iso=NOW)
    except RecordRejected as exc:
        return ("rejected", exc.reason, exc.detail)
    payload = fields[5]
    return fields[:5] + ((("StepPayload",) + payload.fields) if type(payload) is StepPayload else payload,)


def decoded_whole(line: bytes) -> Any:
    """The reference: the line decoded whole, without the table."""
    was = render_texts._enabled[0]
    render_texts._enabled[0] = False
    try:
        return decoded(line)
    finally:
        render_texts._enabled[0] = was


def step_line(render: bytes, *, seq: bytes = b"3", reward: bytes = b"0.5", info: bytes = b'{"prob":1.0}',
              before: bytes = b"", member: bytes = MEMBER, end: bytes = b"}") -> bytes:
    return HEAD % (seq, reward, info) + before + member + render + end


def test_a_repeated_render_payload_is_taken_from_the_line_and_gives_the_same_step() -> None:
    first = step_line(GRID)
    assert decoded(first) == decoded_whole(first)
    assert render_texts._texts == {GRID: orjson.dumps(orjson.loads(GRID)).decode()}
    second = step_line(GRID, seq=b"4", reward=b"1", info=b'{"prob":0.25,"x":[1,2]}')
    hits = render_texts._counts[0]
    assert decoded(second) == decoded_whole(second)
    assert render_texts._counts[0] == hits + 1  # taken from the line, not decoded


@pytest.mark.parametrize("render", [
    b'{"a":1,"render_payload":{"b":2}}',  # a nested key of that name: its tail does not decode
    b'{"a":"x,\\"render_payload\\":1"}',  # the member's bytes inside a string are escaped
    b'{"frame":"' + b"A" * 600 + b'"}',  # longer than MAX_TEXT_BYTES
])
def test_render_payloads_that_cannot_be_cut_cleanly_are_not_remembered(render: bytes) -> None:
    line = step_line(render)
    assert decoded(line) == decoded_whole(line)
    if b"render_payload\\" in render:
        assert render not in render_texts._texts or render_texts._texts[render] == orjson.dumps(orjson.loads(render)).decode()
    else:
        assert render_texts._texts == {}


@pytest.mark.parametrize("line", [
    step_line(GRID, end=b',"v":2}'),  # a key after the render payload
    step_line(GRID, end=b"} "),  # trailing space
    HEAD % (b"3", b"0.5", b"{}") + MEMBER + b"null" + MEMBER + GRID + b"}",  # render_payload twice
    step_line(GRID, seq=b"123456789012345678901234567890"),  # an integer beyond 64 bits
    step_line(GRID, seq=b'"3"'),  # a wrong type
    step_line(GRID, reward=b"NaN"),  # not JSON for orjson
    step_line(GRID, info=b"[1]"),  # info not an object
    step_line(GRID, info=b'{"p":1'),  # not JSON at all
    b'{"v":1' + MEMBER + GRID + b"}",  # another layout
])
def test_a_remembered_render_payload_after_any_other_head_decodes_as_the_whole_line(line: bytes) -> None:
    decoded(step_line(GRID))  # remembered
    assert GRID in render_texts._texts
    assert decoded(line) == decoded_whole(line)


def test_cutting_stops_when_render_payloads_seldom_repeat() -> None:
    for i in range(render_texts.WARMUP_LINES + 10):
        line = step_line(b'{"kind":"grid","agent":[%d,0]}' % i)
        assert decoded(line)[0] is not None
    assert render_texts._enabled[0] is False
    line = step_line(b'{"kind":"grid","agent":[3,0]}')  # remembered earlier, no longer looked up
    assert decoded(line) == decoded_whole(line)


_SCALARS = (st.none() | st.booleans() | st.integers(-(1 << 70), 1 << 70)
            | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=6))
_KEYS = st.sampled_from(["render_payload", "kind", "v", "agent", ",\"render_payload\":"]) | st.text(max_size=4)
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=3),
                       max_leaves=12)


@st.composite
def _texts(draw: st.DrawFn, objects: bool) -> bytes:
    value = draw(st.dictionaries(_KEYS, _VALUES, max_size=4) if objects else _VALUES)
    form = draw(st.sampled_from(["orjson", "spaced", "ascii"]))
    try:
        if form == "orjson":
            return orjson.dumps(value)
    except TypeError:  # an integer beyond 64 bits
        pass
    return json.dumps(value, ensure_ascii=form == "ascii", separators=None if form == "spaced" else (",", ":")).encode()


@settings(max_examples=300, deadline=None)
@given(render=_texts(True), seq=st.sampled_from([b"3", b"-1", b'"s"', b"18446744073709551616"]),
       reward=st.sampled_from([b"0.5", b"1", b"1e400", b'"x"', b"-0.0"]), info=_texts(True),
       before=st.sampled_from([b"", MEMBER + b"null", b',"x":1']), member=st.sampled_from([MEMBER, b', "render_payload": ']),
       end=st.sampled_from([b"}", b"} ", b',"v":2}', MEMBER + b"null}", b"}}"]))
def test_any_line_decodes_with_the_table_as_it_does_whole(render: bytes, seq: bytes, reward: bytes, info: bytes,
                                                          before: bytes, member: bytes, end: bytes) -> None:
    render_texts.reset()
    primer = step_line(render, info=info)  # its render payload remembered, when it can be
    assert decoded(primer) == decoded_whole(primer)
    line = step_line(render, seq=seq, reward=reward, info=info, before=before, member=member, end=end)
    assert decoded(line) == decoded_whole(line)
    assert decoded(primer) == decoded_whole(primer)  # a hit now, when remembered
