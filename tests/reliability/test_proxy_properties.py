"""Property-based tests of the proxy and the store (hypothesis, derandomized and bounded).

- Any byte string as a line never makes the proxy fail (only reject, with a worker-facing reason)
  and never costs a neighbouring valid line.
- Any valid step record round-trips through the proxy and SQLite unchanged (integers beyond 64
  bits, unicode including lone surrogate escapes); an in-process payload with NaN and infinities
  where JSON columns allow them reads back the same.
"""

from __future__ import annotations

import io
import itertools
import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gym_gui.ingest.proxy import TelemetryProxy
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore
from json_compare import same_json

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
INTERNAL = "internal_error"


def _valid(step: int) -> bytes:
    return json.dumps({"type": "step", "run_id": "prop", "agent_id": "a", "episode": 0, "step": step,
                       "reward": 1.0}).encode()


def _published_steps(sub: Any) -> list[int]:
    return [e.payload["step_index"] for e in sub.drain() if e.run_id == "prop" and e.agent_id == "a"]


_ids = itertools.count()


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One store for every example (each example writes a stream of its own)."""
    store = TelemetrySQLiteStore(tmp_path_factory.mktemp("props") / "props.sqlite")
    yield store
    store.close()


json_scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: 0.0 if f == 0 else f),  # -0.0 is not ours
    st.text(max_size=20),
)
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)
record_like = st.dictionaries(
    st.sampled_from(["v", "kind", "type", "event", "run_id", "agent_id", "seq", "episode", "step", "reward",
                     "terminated", "info", "ts", "timestamp", "payload", "render_payload", "action_json"]),
    json_values, max_size=8)


@SETTINGS
@given(junk=st.one_of(st.binary(max_size=300), record_like.map(lambda r: json.dumps(r).encode())))
def test_any_bytes_as_a_line_never_crash_and_never_cost_a_neighbour(junk: bytes) -> None:
    bus = RunBus()
    steps = bus.subscribe(Topic.STEP_APPENDED, "t", maxlen=None)
    proxy = TelemetryProxy(bus, run_id="prop", decode_in_subprocess=False)
    junk_line = junk.replace(b"\n", b" ")
    proxy.feed_line(_valid(0))
    proxy.feed_line(junk_line)
    proxy.feed_line(_valid(1))
    got = _published_steps(steps)
    assert got[0] == 0 and got[-1] == 1, got
    assert INTERNAL not in proxy.stats()["rejected"], proxy.stats()["rejected"]


@SETTINGS
@given(junk=st.binary(max_size=400))
def test_any_bytes_in_a_stream_keep_every_valid_line_in_order(junk: bytes) -> None:
    bus = RunBus()
    steps = bus.subscribe(Topic.STEP_APPENDED, "t", maxlen=None)
    proxy = TelemetryProxy(bus, run_id="prop", decode_in_subprocess=False)
    stream = _valid(0) + b"\n" + junk + b"\n" + _valid(1) + b"\n"  # junk may hold newlines: several lines
    proxy.attach(io.BytesIO(stream))
    assert proxy.wait(10)
    got = _published_steps(steps)
    assert got[0] == 0 and got[-1] == 1, got
    assert INTERNAL not in proxy.stats()["rejected"], proxy.stats()["rejected"]


valid_steps = st.fixed_dictionaries({
    "episode_index": st.integers(min_value=0, max_value=2**63 - 1),
    "step_index": st.integers(min_value=0, max_value=2**63 - 1),
    "action": json_values,
    "observation": json_values,
    "reward": st.floats(allow_nan=False, allow_infinity=False).map(lambda f: 0.0 if f == 0 else f),
    "terminated": st.booleans(),
    "truncated": st.booleans(),
    "info": st.dictionaries(st.text(max_size=8), json_values, max_size=4),
    "render_payload": st.one_of(st.none(), st.dictionaries(st.text(max_size=8), json_values, max_size=3)),
})


@SETTINGS
@given(fields=valid_steps, unicode_id=st.text(alphabet=st.characters(blacklist_categories=["Cs"]), min_size=1,
                                              max_size=12))
def test_a_valid_step_record_round_trips_to_sqlite_unchanged(shared_store: TelemetrySQLiteStore,
                                                             fields: dict[str, Any], unicode_id: str) -> None:
    bus = RunBus()
    steps = bus.subscribe(Topic.STEP_APPENDED, "t", maxlen=None)
    proxy = TelemetryProxy(bus, run_id="prop", decode_in_subprocess=False)
    record = {"v": 1, "kind": "step", "run_id": f"prop-{next(_ids)}-{unicode_id}", "agent_id": "a", **fields}
    evt = proxy.feed_line(json.dumps(record).encode())
    assert evt is not None, proxy.stats()["rejected"]
    (published,) = steps.drain()
    shared_store.write_batch([published])
    (back,) = shared_store.events_after(published.run_id, "a", 0)
    assert back.run_id == record["run_id"] and back.seq_id == published.seq_id
    assert same_json(dict(back.payload), dict(published.payload))
    assert same_json({k: back.payload[k] for k in fields}, fields)


odd_floats = st.sampled_from([math.nan, math.inf, -math.inf, 5e-324, 1.7976931348623157e308])


@SETTINGS
@given(info=st.dictionaries(st.text(max_size=6), st.one_of(json_values, odd_floats,
                                                           st.text(alphabet=st.characters(), max_size=6)), max_size=5))
def test_an_in_process_payload_with_nan_and_surrogates_round_trips(shared_store: TelemetrySQLiteStore,
                                                                   info: dict[str, Any]) -> None:
    run_id = f"inproc-{next(_ids)}"
    evt = TelemetryEvent(Topic.STEP_APPENDED, run_id, "a", 1, "2025-01-01T00:00:00+00:00",
                         {"episode_index": 0, "step_index": 0, "action": 0, "observation": 0, "reward": 0.5,
                          "terminated": False, "truncated": False, "info": info, "render_payload": None})
    shared_store.write_batch([evt])
    (back,) = shared_store.events_after(run_id, "a", 0)
    assert same_json(dict(back.payload)["info"], info)
