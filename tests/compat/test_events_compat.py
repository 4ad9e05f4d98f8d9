"""EMBEDDING.md section 1 (events): what the existing gym_gui producers and consumers rely on."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from typing import Any

import attrs
import pytest

import gym_gui.telemetry.events as events
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.run_bus import RunBus


@dataclasses.dataclass
class TimestampLike:
    """The shape of ``google.protobuf.Timestamp`` the daemon passes: truthy even when unset."""

    seconds: int = 0
    nanos: int = 0

    def ToDatetime(self) -> datetime:  # noqa: N802 - protobuf's name
        return datetime(1970, 1, 1) + timedelta(seconds=self.seconds, microseconds=self.nanos // 1000)


class OnlyToDatetime:
    """A Timestamp-like object without ``seconds``/``nanos`` (naive UTC, like protobuf's ToDatetime())."""

    def __init__(self, dt: datetime) -> None:
        self._dt = dt

    def ToDatetime(self) -> datetime:  # noqa: N802
        return self._dt


def hub_event(**overrides: Any) -> TelemetryEvent:
    """An event as the GUI's TelemetryAsyncHub builds it: every field by keyword."""
    fields: dict[str, Any] = dict(
        topic=Topic.STEP_APPENDED, run_id="r1", agent_id="", seq_id=-1, ts_iso="2025-01-01T00:00:00.123456Z",
        payload={"run_id": "r1", "agent_id": "", "episode_index": "0", "step_index": "7", "reward": 1.0},
    )
    fields.update(overrides)
    return TelemetryEvent(**fields)


def seconds_since(iso: str) -> float:
    return (datetime.now(timezone.utc) - datetime.fromisoformat(iso)).total_seconds()


def test_topic_members_the_callers_use_exist_and_compare_by_identity() -> None:
    for name in ("RUN_STARTED", "RUN_COMPLETED", "STEP_APPENDED", "EPISODE_FINALIZED", "OVERFLOW", "CONTROL"):
        member = getattr(Topic, name)
        assert member is Topic[name] and member.name == name
    assert Topic.CONTROL is not Topic.OVERFLOW
    assert f"{Topic.CONTROL.name}:live-ui-control" == "CONTROL:live-ui-control"  # the stats key shape


def test_construction_by_keyword_and_by_position_in_the_contract_order() -> None:
    payload = {"state": "STARVED"}
    by_kw = TelemetryEvent(topic=Topic.CONTROL, run_id="r1", agent_id="a1", seq_id=3,
                           ts_iso="2025-01-01T00:00:00Z", payload=payload)
    by_pos = TelemetryEvent(Topic.CONTROL, "r1", "a1", 3, "2025-01-01T00:00:00Z", payload)
    assert by_kw == by_pos
    assert [f.name for f in attrs.fields(TelemetryEvent)] == ["topic", "run_id", "agent_id", "seq_id", "ts_iso", "payload"]


def test_one_class_object_for_producers_and_consumers() -> None:
    from gym_gui.telemetry import events as again
    assert again.TelemetryEvent is TelemetryEvent is events.TelemetryEvent
    assert isinstance(hub_event(), again.TelemetryEvent)


def test_a_dict_payload_is_delivered_as_the_producers_own_object() -> None:
    payload = {"step_index": "7", "episode_index": "0"}
    bus = RunBus()
    q = bus.subscribe(Topic.STEP_APPENDED, "live-ui")
    bus.publish(hub_event(payload=payload))  # also through the lenient path ('' agent, -1 seq)
    got = q.get_nowait()
    assert got.payload is payload
    assert isinstance(got.payload, dict) and got.payload.get("step_index") == "7"
    assert set(got.payload.keys()) == {"step_index", "episode_index"}


def test_the_hub_values_are_accepted_and_normalised() -> None:
    evt = hub_event()
    assert evt.agent_id is None and evt.seq_id == -1
    assert evt.ts_iso == "2025-01-01T00:00:00.123456Z"  # a non-empty str is kept as sent
    assert evt.payload["step_index"] == "7"  # numbers as strings stay in the payload as sent


@pytest.mark.parametrize(("sent", "kept"), [(-1, -1), (0, 0), (1, 1), ("7", 7), ("-1", -1), ("0", 0),
                                             (-(2**63), -(2**63)), (2**63 - 1, 2**63 - 1)])
def test_seq_ids_of_both_producers(sent: Any, kept: int) -> None:
    evt = hub_event(seq_id=sent)
    assert evt.seq_id == kept and type(evt.seq_id) is int


def test_an_empty_time_becomes_now() -> None:
    evt = hub_event(ts_iso="")
    assert 0 <= seconds_since(evt.ts_iso) < 60
    assert evt.ts_iso.endswith("+00:00")


def test_a_timestamp_object_becomes_iso_utc_text() -> None:
    evt = hub_event(ts_iso=TimestampLike(seconds=1735689600, nanos=123456789), seq_id=0)
    assert evt.ts_iso == "2025-01-01T00:00:00.123456+00:00"
    assert evt.seq_id == 0


def test_an_unset_timestamp_becomes_now() -> None:
    evt = hub_event(ts_iso=TimestampLike())
    assert 0 <= seconds_since(evt.ts_iso) < 60


def test_a_to_datetime_only_object_and_datetimes() -> None:
    assert hub_event(ts_iso=OnlyToDatetime(datetime(2025, 1, 1, 12))).ts_iso == "2025-01-01T12:00:00+00:00"
    assert 0 <= seconds_since(hub_event(ts_iso=OnlyToDatetime(datetime(1970, 1, 1))).ts_iso) < 60  # unset
    aware = datetime(2025, 1, 1, 14, tzinfo=timezone(timedelta(hours=2)))
    assert hub_event(ts_iso=aware).ts_iso == "2025-01-01T12:00:00+00:00"
    assert hub_event(ts_iso=datetime(2025, 1, 1, 12, 0, 0, 5)).ts_iso == "2025-01-01T12:00:00.000005+00:00"


def test_a_real_protobuf_timestamp_when_protobuf_is_installed() -> None:
    timestamp_pb2 = pytest.importorskip("google.protobuf.timestamp_pb2")
    ts = timestamp_pb2.Timestamp(seconds=1735689600, nanos=5000)
    assert hub_event(ts_iso=ts).ts_iso == "2025-01-01T00:00:00.000005+00:00"
    assert 0 <= seconds_since(hub_event(ts_iso=timestamp_pb2.Timestamp()).ts_iso) < 60


def test_the_daemon_step_payload_with_a_timestamp_object_inside_is_kept_as_is() -> None:
    ts = TimestampLike(seconds=1735689600)
    payload = {"run_id": "r1", "agent_id": "", "episode_index": 0, "step_index": 3, "reward": 0.5,
               "terminated": False, "truncated": False, "timestamp": ts, "action": None, "worker_id": "w0"}
    evt = TelemetryEvent(topic=Topic.STEP_APPENDED, run_id="r1", agent_id="", seq_id=0, ts_iso=ts, payload=payload)
    assert evt.payload is payload and evt.payload["timestamp"] is ts
    assert (evt.agent_id, evt.seq_id, evt.ts_iso) == (None, 0, "2025-01-01T00:00:00+00:00")


def test_an_empty_run_id_is_accepted_and_kept() -> None:
    # The existing sink derives the run from the payload's episode_id when run_id is empty.
    assert hub_event(run_id="").run_id == ""


@pytest.mark.parametrize(("field", "value"), [("topic", "STEP_APPENDED"), ("topic", 3), ("run_id", 5),
                                              ("run_id", None), ("agent_id", 6), ("seq_id", 1.5),
                                              ("seq_id", "x7"), ("ts_iso", 12.0), ("payload", "text")])
def test_values_that_make_no_sense_still_raise_naming_the_field(field: str, value: Any) -> None:
    with pytest.raises(TypeError, match=field):
        hub_event(**{field: value})


def test_repr_and_str_name_the_topic_and_leave_out_time_and_payload() -> None:
    evt = TelemetryEvent(topic=Topic.STEP_APPENDED, run_id="r1", agent_id="", seq_id=7,
                         ts_iso="2025-01-01T00:00:00Z", payload={"big": "x" * 100})
    expected = "TelemetryEvent(topic=STEP_APPENDED, run_id=r1, agent_id=None, seq_id=7)"
    assert repr(evt) == expected and str(evt) == expected
    assert repr(hub_event(agent_id="a1", seq_id=0)) == "TelemetryEvent(topic=STEP_APPENDED, run_id=r1, agent_id=a1, seq_id=0)"


def test_events_stay_frozen_and_compare_field_by_field() -> None:
    a, b = hub_event(), hub_event()
    assert a == b and a is not b
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        a.seq_id = 8  # type: ignore[misc]
    assert hub_event(seq_id=8) != a


def test_int_and_str_subclasses_become_plain_values() -> None:
    class Counter(int):
        pass

    class Name(str):
        pass

    evt = hub_event(seq_id=Counter(5), run_id=Name("r9"), agent_id=Name("a1"), ts_iso=Name("2025-01-01T00:00:00Z"))
    assert (type(evt.seq_id), type(evt.run_id), type(evt.agent_id), type(evt.ts_iso)) == (int, str, str, str)
    assert (evt.seq_id, evt.run_id, evt.agent_id) == (5, "r9", "a1")
