"""The existing gym_gui workers' data steps: the layout fast path and the render payload texts give
exactly what the general path gives, and their values read back from SQLite unchanged."""

from __future__ import annotations

import copy
import itertools
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gym_gui.ingest import data_steps
from gym_gui.ingest.data_steps import fast_layout_data_step, render_text
from gym_gui.ingest.proxy import TelemetryProxy
from gym_gui.ingest.records import RecordRejected, _normalize_general, normalize_line
from gym_gui.telemetry.events import Topic
from gym_gui.telemetry.json_text import encode_json, load_json
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore
from gym_gui.telemetry.step_payload import StepPayload
from data_envelope import DROP as _DROP, GRID, NOW, data_step as worker_step
from json_compare import same_json

def _outcome(fn: Any) -> Any:
    try:
        return ("ok", fn())
    except RecordRejected as exc:
        return ("rejected", exc.reason, exc.detail)


def _by_key(payload: Any) -> dict[str, Any]:
    return dict(sorted(dict(payload).items()))


def assert_same_as_general(record: dict[str, Any]) -> Any:
    """normalize_line on the record's line gives what the general path gives for the record."""
    line = json.dumps(record).encode()
    reference = _outcome(lambda: _normalize_general(copy.deepcopy(record), "agent-d", "run-d", NOW))
    fast = _outcome(lambda: normalize_line(line, default_agent_id="agent-d", default_run_id="run-d", now_iso=NOW))
    assert fast[0] == reference[0]
    if reference[0] == "rejected":
        assert fast[1:] == reference[1:]
        return None
    assert fast[1][:5] == reference[1][:5]
    assert same_json(_by_key(fast[1][5]), _by_key(reference[1][5]))
    return fast[1]


LAYOUTS = [dict(zip(("agent_id", "info", "render_payload"), dropped))
           for dropped in itertools.product((None, _DROP), repeat=3)]


@pytest.mark.parametrize("dropped", LAYOUTS, ids=range(len(LAYOUTS)))
def test_every_layout_of_the_workers_takes_the_layout_path(dropped: dict[str, Any]) -> None:
    record = worker_step(**{k: v for k, v in dropped.items() if v is _DROP})
    fields = fast_layout_data_step(json.loads(json.dumps(record)), "agent-d", json.dumps(record).encode())
    assert fields is not None
    assert type(fields[5]) is StepPayload
    assert assert_same_as_general(record)[5] == fields[5]


#: Values of the workers' layout the general path converts, rejects or reads in its own way.
LAYOUT_VARIANTS = [
    {"agent_id": None}, {"agent_id": ""}, {"agent_id": "caf\u00e9"}, {"agent_id": 7}, {"agent_id": "x" * 1025},
    {"run_id": None}, {"run_id": ""}, {"run_id": 3}, {"run_id": "caf\u00e9"},
    {"episode": "3"}, {"episode": 3.0}, {"episode": None}, {"episode": 2**63}, {"step": -1}, {"step": True},
    {"action_json": "[1, 2]"}, {"action_json": "02"}, {"action_json": "nope"}, {"action_json": "NaN"},
    {"action_json": "1e400"}, {"action_json": "123456789012345678901234"}, {"action_json": "\"\\ud800\""},
    {"action_json": " 7 "}, {"action_json": "7 "}, {"action_json": 4}, {"action_json": None},
    {"action_json": "[" * 600 + "]" * 600}, {"action_json": ""}, {"action_json": "-3"}, {"action_json": "\u0663"},
    {"action_json": "0"}, {"action_json": "1023"}, {"action_json": "1024"}, {"action_json": "-0"}, {"action_json": "00"},
    {"observation_json": "0"}, {"observation_json": "63"}, {"observation_json": "\"7\""}, {"observation_json": "7.0"},
    {"observation_json": "[0.1, -2.5e-07]"}, {"observation_json": "{\"a\": {\"b\": null}}"},
    {"observation_json": "bad", "action_json": "bad"}, {"observation_json": "9"}, {"observation_json": "10"},
    {"reward": 1}, {"reward": True}, {"reward": "0.0"}, {"reward": None}, {"reward": 1e308}, {"reward": -0.0},
    {"terminated": 1}, {"terminated": None}, {"truncated": "no"},
    {"info": None}, {"info": [1]}, {"info": {"mask": [1, 0], "big": 2**70}}, {"info": {}},
    {"render_payload": None}, {"render_payload": GRID}, {"render_payload": "[1]"}, {"render_payload": "null"},
    {"render_payload": "{\"kind\": \"grid\", \"x\": NaN}"}, {"render_payload": "{bad"}, {"render_payload": 3},
    {"render_payload": "{\"kind\": \"grid\", \"big\": 123456789012345678901234}"},
    {"render_payload": "{\"kind\": \"grid\", \"x\": 1e400}"}, {"render_payload": "{\"k\": 1, \"k\": 2}"},
    {"render_payload": "{\"s\": \"\\ud800\"}"}, {"render_payload": "{\"s\": \"caf\u00e9 \\u00e9\"}"},
    {"render_payload": " {\"kind\":\"grid\"}\n"}, {"render_payload": "{\"d\": " + "[" * 600 + "]" * 600 + "}"},
    {"render_payload": "{\"bad\": 1, \"x\": [}", "action_json": "nope"},
    {"ts_unix_ns": 1714564800999999999}, {"ts_unix_ns": -5}, {"ts_unix_ns": 10**22}, {"ts_unix_ns": None},
    {"ts_unix_ns": 253402300800 * 10**9}, {"ts_unix_ns": -62135596801 * 10**9}, {"ts_unix_ns": 1.5e18},
    {"ts_unix_ns": "1"}, {"ts_unix_ns": True},
]


@pytest.mark.parametrize("variant", LAYOUT_VARIANTS, ids=[repr(v)[:60] for v in LAYOUT_VARIANTS])
def test_the_layout_path_matches_the_general_path(variant: dict[str, Any]) -> None:
    assert_same_as_general(worker_step(**variant))
    assert_same_as_general(worker_step(**variant))  # a second time: the render text may come from the cache


def test_a_render_text_is_validated_once_and_read_back_exactly() -> None:
    text = json.dumps({**GRID, "agent": [3, 2], "note": "caf\u00e9", "n": None})
    first = render_text(text, True)
    assert first is not None and render_text(text, False) is first  # kept: the same object, no second decode
    assert first == encode_json(json.loads(text)) and load_json(first) == json.loads(text)


@pytest.mark.parametrize("text", ["[1]", "null", "{bad", "{\"x\": NaN}", "{\"d\": " + "[" * 600 + "]" * 600 + "}"])
def test_a_bad_render_text_is_rejected_every_time(text: str) -> None:
    reasons = []
    for _ in range(2):
        with pytest.raises(RecordRejected) as info:
            render_text(text, True)
        reasons.append(info.value.reason)
    assert reasons[0] == reasons[1]
    assert text not in data_steps._RENDER_TEXTS


def test_the_render_text_table_stays_within_its_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data_steps, "_RENDER_TEXTS", {})
    monkeypatch.setattr(data_steps, "_cached_chars", 0)
    monkeypatch.setattr(data_steps, "MAX_RENDER_CACHE_CHARS", 1000)
    long_text = json.dumps({"kind": "rgb", "pixels": list(range(2000))})
    assert len(long_text) > data_steps.MAX_CACHED_RENDER_CHARS
    assert load_json(render_text(long_text, True) or "") == json.loads(long_text)
    assert long_text not in data_steps._RENDER_TEXTS  # a frame seldom repeats: not kept
    texts = [json.dumps({**GRID, "agent": [i, 0]}) for i in range(40)]
    for text in texts:
        assert load_json(render_text(text, True) or "") == json.loads(text)
        assert data_steps._cached_chars <= 1000
        assert sum(len(k) + len(v) for k, v in data_steps._RENDER_TEXTS.items()) == data_steps._cached_chars
    assert texts[-1] in data_steps._RENDER_TEXTS


def test_a_big_integer_hidden_by_an_escape_stays_exact_when_its_text_is_seen_again() -> None:
    """The same render text first in a line whose own text hides its big integer behind a \\u
    escape (so the strings are checked again), then in a plain line: both read it exactly."""
    escaped = (rb'{"type":"step","run_id":"r1","agent_id":"a1","episode":3,"step":0,"action_json":"2",'
               rb'"observation_json":"5","reward":0.0,"terminated":false,"truncated":false,"info":{},'
               rb'"render_payload":"{\"n\": 12345678901234567890\u00312}","ts_unix_ns":1714564800250000000}')
    plain = json.dumps(worker_step(info={}, render_payload='{"n": 1234567890123456789012}')).encode()
    for line in (escaped, plain, escaped):
        fields = normalize_line(line, default_agent_id="d", default_run_id=None, now_iso=NOW)
        n = fields[5]["render_payload"]["n"]
        assert type(n) is int and n == 1234567890123456789012


_ids = itertools.count()
SETTINGS = settings(max_examples=120, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: 0.0 if f == 0 else f),
    st.text(max_size=12),
)
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=10)


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Any:
    store = TelemetrySQLiteStore(tmp_path_factory.mktemp("data-steps") / "steps.sqlite")
    yield store
    store.close()


@SETTINGS
@given(render=st.dictionaries(st.text(max_size=8), json_values, max_size=4), action=json_values,
       compact=st.booleans(), repeat=st.booleans())
def test_a_workers_data_step_round_trips_to_sqlite_unchanged(shared_store: TelemetrySQLiteStore,
                                                             render: dict[str, Any], action: Any, compact: bool,
                                                             repeat: bool) -> None:
    bus = RunBus()
    steps = bus.subscribe(Topic.STEP_APPENDED, "t", maxlen=None)
    proxy = TelemetryProxy(bus, run_id="prop", decode_in_subprocess=False)
    separators = (",", ":") if compact else None
    record = worker_step(run_id=f"data-{next(_ids)}", action_json=json.dumps(action),
                         render_payload=json.dumps(render, separators=separators))
    for _ in range(2 if repeat else 1):
        assert proxy.feed_line(json.dumps(record).encode()) is not None, proxy.stats()["rejected"]
    published = steps.drain()
    shared_store.write_batch(published)
    back = shared_store.events_after(record["run_id"], "a1", 0)
    assert len(back) == len(published)
    for evt in back:
        assert same_json(evt.payload["render_payload"], render)
        assert same_json(evt.payload["action"], action)


def test_the_workers_lines_land_in_sqlite_with_their_values(tmp_path: Path) -> None:
    """Lines in the workers' layout through a real ingest child: every render payload reads back equal."""
    lines = [json.dumps(worker_step(step=i, render_payload=json.dumps({**GRID, "agent": [i % 4, i // 4]})))
             for i in range(16)] * 3
    source = tmp_path / "lines.jsonl"
    source.write_text("\n".join(lines) + "\n")
    bus = RunBus()
    steps = bus.subscribe(Topic.STEP_APPENDED, "t", maxlen=None)
    proxy = TelemetryProxy(bus, run_id="r1", name="data-steps")
    proxy.spawn([sys.executable, "-c", f"import sys; sys.stdout.write(open({str(source)!r}).read())"])
    assert proxy.wait(30)
    published = steps.drain()
    assert [e.payload["step_index"] for e in published] == [i for _ in range(3) for i in range(16)]
    store = TelemetrySQLiteStore(tmp_path / "steps.sqlite")
    try:
        store.write_batch(published)
        back = store.events_after("r1", "a1", 0)
        assert [e.payload["render_payload"] for e in back] == [{**GRID, "agent": [i % 4, i // 4]}
                                                               for _ in range(3) for i in range(16)]
    finally:
        store.close()
