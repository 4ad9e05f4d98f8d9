"""Normalisation of canonical and legacy gym_gui records, and the rejection of bad ones."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gym_gui.ingest import records
from gym_gui.ingest.records import RecordRejected, RejectReason, normalize_record, parse_line
from gym_gui.telemetry.events import Topic

NOW = "2030-01-01T00:00:00+00:00"


def norm(record: dict[str, Any], **kw: Any) -> Any:
    kw.setdefault("default_agent_id", "agent-default")
    kw.setdefault("default_run_id", None)
    return normalize_record(record, now_iso=NOW, **kw)


def rejected(line: bytes | str | dict[str, Any]) -> str:
    with pytest.raises(RecordRejected) as info:
        record = parse_line(json.dumps(line) if isinstance(line, dict) else line)
        norm(record)
    return info.value.reason


def test_canonical_step() -> None:
    n = norm({
        "v": 1, "kind": "step", "run_id": "r1", "agent_id": "a1", "seq": 7, "ts": "2026-01-01T00:00:01.5+00:00",
        "episode_index": 2, "step_index": 3, "action": 1, "observation": 5, "reward": 1, "terminated": True,
        "truncated": False, "info": {"p": 1.0}, "render_payload": {"kind": "grid"}, "worker_id": "w1",
    })
    assert (n.topic, n.run_id, n.agent_id, n.seq) == (Topic.STEP_APPENDED, "r1", "a1", 7)
    assert n.ts_iso == "2026-01-01T00:00:01.5+00:00"
    assert n.payload == {
        "episode_index": 2, "step_index": 3, "action": 1, "observation": 5, "reward": 1.0, "terminated": True,
        "truncated": False, "info": {"p": 1.0}, "render_payload": {"kind": "grid"}, "worker_id": "w1",
    }
    assert type(n.payload["reward"]) is float


def test_canonical_lifecycle_and_episode() -> None:
    started = norm({"v": 1, "kind": "run_started", "run_id": "r1", "env_id": "FrozenLake-v1", "config": {"seed": 1}, "pid": 4})
    assert started.topic is Topic.RUN_STARTED and started.agent_id == "agent-default"
    assert started.payload == {"env_id": "FrozenLake-v1", "config": {"seed": 1}, "pid": 4}
    assert started.ts_iso == NOW  # no time in the record: the proxy's receive time
    episode = norm({"v": 1, "kind": "episode", "run_id": "r1", "episode_index": 4, "total_reward": 1.0, "length": 9,
                    "terminated": True, "truncated": False, "outcome": "success", "metadata": {"epsilon": 0.5}})
    assert episode.payload == {"episode_index": 4, "total_reward": 1.0, "length": 9, "terminated": True,
                               "truncated": False, "outcome": "success", "metadata": {"epsilon": 0.5}}
    done = norm({"v": 1, "kind": "run_completed", "run_id": "r1", "outcome": "completed", "summary": {"episodes": 5}})
    assert done.payload == {"outcome": "completed", "exit_code": None, "signal": None, "stderr_tail": None, "summary": {"episodes": 5}}
    beat = norm({"v": 1, "kind": "heartbeat", "run_id": "r1", "interval_s": 1.0, "stats": {"steps_done": 3}})
    assert beat.topic is Topic.RUN_HEARTBEAT and beat.payload == {"interval_s": 1.0, "stats": {"steps_done": 3}}


@pytest.mark.parametrize(("event", "topic", "outcome"), [
    ("run_started", Topic.RUN_STARTED, None),
    ("run_completed", Topic.RUN_COMPLETED, "completed"),
    ("run_failed", Topic.RUN_COMPLETED, "failed"),
    ("run_cancelled", Topic.RUN_COMPLETED, "cancelled"),
    ("heartbeat", Topic.RUN_HEARTBEAT, None),
    ("checkpoint_saved", Topic.RUN_HEARTBEAT, None),
    ("checkpoint_loaded", Topic.RUN_HEARTBEAT, None),
])
def test_gym_gui_lifecycle_envelope(event: str, topic: Topic, outcome: str | None) -> None:
    n = norm({"event": event, "run_id": "r9", "timestamp": 1700000000.25, "payload": {"env": "Taxi-v3", "path": "/x"}})
    assert n.topic is topic and n.run_id == "r9" and n.agent_id == "agent-default"
    assert n.ts_iso == "2023-11-14T22:13:20.250000+00:00"
    if outcome is not None:
        assert n.payload["outcome"] == outcome
        assert n.payload["summary"] == {"env": "Taxi-v3", "path": "/x"}  # the payload is the summary
    if event == "run_started":
        assert n.payload["env_id"] == "Taxi-v3"
    if event.startswith("checkpoint"):
        assert n.payload["event"] == event and n.payload["path"] == "/x"


def test_gym_gui_step_with_aliases() -> None:
    n = norm({
        "type": "step", "run_id": "r1", "agent_id": "agent6", "episode": 3, "step": 11,
        "action_json": "[0, 1]", "observation_json": "{\"pos\": 4}", "reward": -1.0, "terminated": False,
        "truncated": True, "render_payload": "{\"kind\": \"grid\", \"rows\": 4}", "render_hint_json": "{\"fps\": 30}",
        "frame_ref": "frames/3/11.png", "payload_version": 2, "episode_seed": 42, "worker_id": "w7",
        "ts_unix_ns": 1700000000123456789,
    })
    assert n.topic is Topic.STEP_APPENDED and n.agent_id == "agent6"
    p = n.payload
    assert (p["episode_index"], p["step_index"], p["action"], p["observation"]) == (3, 11, [0, 1], {"pos": 4})
    assert (p["reward"], p["terminated"], p["truncated"]) == (-1.0, False, True)
    assert p["render_payload"] == {"kind": "grid", "rows": 4} and p["render_hint"] == {"fps": 30}
    assert (p["frame_ref"], p["payload_version"], p["episode_seed"], p["worker_id"]) == ("frames/3/11.png", 2, 42, "w7")
    assert n.ts_iso == "2023-11-14T22:13:20.123457+00:00"


@pytest.mark.parametrize("time_field", [{"ts": "2026-03-01T10:00:00Z"}, {"timestamp": "2026-03-01T10:00:00+00:00"},
                                        {"ts": "2026-03-01T11:00:00+01:00"}, {"ts": "2026-03-01T10:00:00"}])
def test_step_times_are_normalised_to_utc(time_field: dict[str, str]) -> None:
    n = norm({"type": "step", "run_id": "r", "episode_index": 0, "step_index": 0, "reward": 0, **time_field})
    assert n.ts_iso == "2026-03-01T10:00:00+00:00"


def test_gym_gui_episode_with_metadata_json_and_episode_id() -> None:
    n = norm({"type": "episode", "run_id": "r1", "episode_id": "r1-ep000003", "episode_return": 2.5, "num_steps": 17,
              "terminated": True, "truncated": False, "metadata_json": "{\"episode_index\": 3, \"seed\": 9}"})
    assert n.topic is Topic.EPISODE_FINALIZED and n.agent_id == "agent-default"
    assert n.payload["episode_index"] == 3 and n.payload["total_reward"] == 2.5 and n.payload["length"] == 17
    assert n.payload["metadata"] == {"episode_index": 3, "seed": 9} and n.payload["episode_id"] == "r1-ep000003"
    plain = norm({"type": "episode", "run_id": "r1", "episode": 4, "total_reward": 1, "steps": 3, "metadata": {"k": 1}})
    assert plain.payload["episode_index"] == 4 and plain.payload["metadata"] == {"k": 1}


def test_gym_gui_error_record_becomes_a_heartbeat_with_the_error() -> None:
    n = norm({"type": "error", "run_id": "r1", "message": "CUDA out of memory"})
    assert n.topic is Topic.RUN_HEARTBEAT and n.payload == {"event": "error", "message": "CUDA out of memory"}


def test_missing_run_id_uses_the_default_or_is_rejected() -> None:
    record = {"v": 1, "kind": "heartbeat"}
    assert norm(record, default_run_id="run-x").run_id == "run-x"
    with pytest.raises(RecordRejected) as info:
        norm(record)
    assert info.value.reason == RejectReason.MISSING_FIELD


@pytest.mark.parametrize(("line", "reason"), [
    (b"\xff\xfe{}", RejectReason.INVALID_UTF8),
    (b"{\"v\": 1, \"kind\": \"st", RejectReason.INVALID_JSON),
    (b"not json", RejectReason.INVALID_JSON),
    (b"[1, 2]", RejectReason.NOT_AN_OBJECT),
    (b"42", RejectReason.NOT_AN_OBJECT),
    (b"{\"v\": 1, \"kind\": \"step\", \"run_id\": \"r\", \"episode_index\": 0, \"step_index\": 0, \"reward\": NaN}", RejectReason.NON_FINITE),
    (b"{\"v\": 1, \"kind\": \"step\", \"run_id\": \"r\", \"episode_index\": 0, \"step_index\": 0, \"reward\": 1e999}", RejectReason.NON_FINITE),
    (b"{\"v\": 1, \"kind\": \"step\", \"run_id\": \"r\", \"episode_index\": 0, \"step_index\": 0, \"reward\": -Infinity}", RejectReason.NON_FINITE),
    (b"{\"v\": 1, \"kind\": \"step\", \"run_id\": \"r\", \"step_index\": 0, \"reward\": 0}", RejectReason.MISSING_FIELD),
    (b"{\"v\": 1, \"kind\": \"step\", \"run_id\": \"r\", \"episode_index\": \"0\", \"step_index\": 0, \"reward\": 0}", RejectReason.WRONG_TYPE),
    (b"{\"v\": 1, \"kind\": \"step\", \"run_id\": \"r\", \"episode_index\": 0, \"step_index\": 0, \"reward\": true}", RejectReason.WRONG_TYPE),
    (b"{\"v\": 1, \"kind\": \"step\", \"run_id\": \"r\", \"episode_index\": 0, \"step_index\": 0, \"reward\": 0, \"terminated\": \"yes\"}", RejectReason.WRONG_TYPE),
    (b"{\"v\": 1, \"kind\": \"step\", \"run_id\": 5, \"episode_index\": 0, \"step_index\": 0, \"reward\": 0}", RejectReason.WRONG_TYPE),
    (b"{\"v\": 1, \"kind\": \"episode\", \"run_id\": \"r\", \"episode_index\": 0, \"total_reward\": 0, \"length\": 1, \"metadata\": [1]}", RejectReason.WRONG_TYPE),
    (b"{\"v\": 1, \"kind\": \"run_completed\", \"run_id\": \"r\", \"outcome\": \"great\"}", RejectReason.WRONG_TYPE),
    (b"{\"v\": 1, \"kind\": \"teleport\", \"run_id\": \"r\"}", RejectReason.UNKNOWN_TYPE),
    (b"{\"type\": \"metrics\", \"run_id\": \"r\"}", RejectReason.UNKNOWN_TYPE),
    (b"{\"event\": \"run_exploded\", \"run_id\": \"r\"}", RejectReason.UNKNOWN_TYPE),
    (b"{\"hello\": \"world\"}", RejectReason.UNKNOWN_TYPE),
    (b"{\"v\": 2, \"kind\": \"step\"}", RejectReason.UNSUPPORTED_VERSION),
    (b"{\"type\": \"step\", \"run_id\": \"r\", \"episode\": 0, \"step\": 0, \"reward\": 0, \"ts\": \"yesterday\"}", RejectReason.WRONG_TYPE),
    (b"{\"type\": \"step\", \"run_id\": \"r\", \"episode\": 0, \"step\": 0, \"reward\": 0, \"action_json\": \"{oops\"}", RejectReason.WRONG_TYPE),
])
def test_bad_lines_are_rejected_with_a_reason(line: bytes, reason: str) -> None:
    assert rejected(line) == reason


_STEP_LINE = {"v": 1, "kind": "step", "run_id": "r", "agent_id": "a", "seq": 1, "ts": "2026-01-01T00:00:00+00:00",
              "episode_index": 0, "step_index": 0, "action": 0, "observation": 0, "reward": 0.0,
              "terminated": False, "truncated": False, "info": {}, "render_payload": None}


@pytest.mark.parametrize(("record", "reason"), [
    ({**_STEP_LINE, "reward": 10**400}, RejectReason.NON_FINITE),  # 1e400 written as an integer
    ({**_STEP_LINE, "reward": -(10**309)}, RejectReason.NON_FINITE),
    ({"v": 1, "kind": "episode", "run_id": "r", "episode_index": 0, "total_reward": 10**400, "length": 1},
     RejectReason.NON_FINITE),
    ({**_STEP_LINE, "ts": "0001-01-01T00:00:00+01:00"}, RejectReason.OUT_OF_RANGE),  # year 0 in UTC
    ({**_STEP_LINE, "ts": "9999-12-31T23:59:59-01:00"}, RejectReason.OUT_OF_RANGE),  # year 10000 in UTC
    ({**_STEP_LINE, "ts": 253402300800}, RejectReason.OUT_OF_RANGE),
    ({**_STEP_LINE, "ts": -1e300}, RejectReason.OUT_OF_RANGE),
    ({**_STEP_LINE, "ts": 10**30}, RejectReason.OUT_OF_RANGE),
    ({**_STEP_LINE, "ts_unix_ns": 10**400}, RejectReason.OUT_OF_RANGE),
    ({**_STEP_LINE, "ts_unix_ns": -(10**22)}, RejectReason.OUT_OF_RANGE),
    ({"event": "run_started", "run_id": "r", "timestamp": 1e20, "payload": {}}, RejectReason.OUT_OF_RANGE),
    ({"type": "episode", "run_id": "r", "episode": 0, "episode_return": 1.0, "steps": 3, "timestamp": -62135596801},
     RejectReason.OUT_OF_RANGE),
], ids=lambda value: repr(value)[-40:])
def test_values_beyond_a_double_or_a_datetime_are_rejected_not_raised(record: dict[str, Any], reason: str) -> None:
    line = json.dumps(record).encode()
    assert rejected(line) == reason
    with pytest.raises(RecordRejected) as info:  # the proxy's path, with its fast paths
        records.normalize_line(line, default_agent_id="a", default_run_id=None, now_iso=NOW)
    assert info.value.reason == reason


def test_a_bug_while_reading_a_line_is_an_internal_error_rejection(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(record: dict[str, Any], default_agent_id: str, owned: bool, *more: Any) -> None:
        raise KeyError("simulated")

    monkeypatch.setattr(records, "_fast_canonical_step", broken)
    with pytest.raises(RecordRejected) as info:
        records.normalize_line(json.dumps(_STEP_LINE), default_agent_id="a", default_run_id=None, now_iso=NOW)
    assert info.value.reason == RejectReason.INTERNAL_ERROR
    assert info.value.detail.startswith("KeyError: 'simulated' at test_records.py:")


def test_every_reason_key_is_distinct() -> None:
    assert len(set(RejectReason.ALL)) == len(RejectReason.ALL)


def test_a_byte_order_mark_before_a_line_is_named_in_its_rejection() -> None:
    with pytest.raises(RecordRejected) as caught:
        parse_line(b'\xef\xbb\xbf{"v": 1}')
    assert caught.value.reason == RejectReason.INVALID_JSON and "byte order mark" in caught.value.detail
