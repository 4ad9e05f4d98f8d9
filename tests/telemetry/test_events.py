from __future__ import annotations

import attrs
import pytest

from gym_gui.telemetry import events as events_module
from gym_gui.telemetry.events import MAX_SEQ_ID, MIN_SEQ_ID, TelemetryEvent, Topic, iso_from_unix_s, utc_now_iso


def make(**overrides: object) -> TelemetryEvent:
    fields: dict[str, object] = dict(
        topic=Topic.STEP_APPENDED, run_id="run1", agent_id="agent6", seq_id=1, ts_iso=utc_now_iso(), payload={}
    )
    fields.update(overrides)
    return TelemetryEvent(**fields)  # type: ignore[arg-type]


def test_topics_are_the_seven_of_the_contract() -> None:
    assert [t.name for t in Topic] == [
        "RUN_STARTED", "RUN_HEARTBEAT", "RUN_COMPLETED", "STEP_APPENDED", "EPISODE_FINALIZED", "OVERFLOW", "CONTROL",
    ]
    assert all(t.value == t.name for t in Topic)
    assert Topic["STEP_APPENDED"] is Topic.STEP_APPENDED


def test_event_is_frozen_with_slots_and_knows_its_stream() -> None:
    evt = make()
    assert evt.stream == ("run1", "agent6")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        evt.seq_id = 2  # type: ignore[misc]
    assert not hasattr(evt, "__dict__")


def test_agent_id_may_be_none() -> None:
    assert make(agent_id=None).stream == ("run1", None)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("topic", "STEP_APPENDED"),
        ("topic", None),
        ("run_id", 5),
        ("run_id", None),
        ("agent_id", 6),
        ("seq_id", 1.0),
        ("seq_id", True),
        ("seq_id", None),
        ("seq_id", 2**63),  # beyond SQLite's INTEGER
        ("seq_id", -(2**63) - 1),
        ("seq_id", "7.0"),
        ("seq_id", "seven"),
        ("seq_id", "9" * 30),
        pytest.param("seq_id", 10**5000, id="seq_id-too-long-for-repr"),
        ("ts_iso", None),
        ("ts_iso", 5),
        ("ts_iso", object()),
        ("payload", [1, 2]),
        ("payload", None),
    ],
)
def test_wrong_field_types_fail_with_the_field_named(field: str, value: object) -> None:
    with pytest.raises(TypeError, match=field):
        make(**{field: value})


def test_iso_helpers_are_utc() -> None:
    assert iso_from_unix_s(0.0) == "1970-01-01T00:00:00+00:00"
    assert utc_now_iso().endswith("+00:00")


def test_seq_id_range_is_sqlites_signed_64_bit_and_the_fast_check_uses_the_same_bounds() -> None:
    assert (MIN_SEQ_ID, MAX_SEQ_ID) == (-(2**63), 2**63 - 1)
    assert make(seq_id=MIN_SEQ_ID).seq_id == MIN_SEQ_ID and make(seq_id=MAX_SEQ_ID).seq_id == MAX_SEQ_ID
    consts = TelemetryEvent.__init__.__code__.co_consts
    assert MIN_SEQ_ID in consts and MAX_SEQ_ID in consts
    assert events_module.MIN_SEQ_ID == MIN_SEQ_ID


def test_well_formed_events_never_enter_the_lenient_path(monkeypatch: pytest.MonkeyPatch) -> None:
    entered: list[TelemetryEvent] = []
    monkeypatch.setattr(events_module, "_normalise_or_raise", entered.append)
    make()
    make(agent_id=None, seq_id=0, payload={"a": 1})
    make(seq_id=-1, run_id="")  # the widened range and the empty run_id are on the fast path too
    assert entered == []
    make(agent_id="")  # what the existing producers send: the lenient path, only then
    assert len(entered) == 1


def test_checked_event_is_the_event_the_constructor_makes() -> None:
    from gym_gui.telemetry.events import checked_event
    from gym_gui.telemetry.step_payload import StepPayload

    payload = StepPayload((1, 2, 3, 4, 0.5, False, True, '{"a":1}', None))
    for agent in ("agent-1", None):
        made = TelemetryEvent(Topic.STEP_APPENDED, "r", agent, 7, "2026-01-01T00:00:00.000001+00:00", payload)
        fast = checked_event(Topic.STEP_APPENDED, "r", agent, 7, "2026-01-01T00:00:00.000001+00:00", payload)
        assert type(fast) is TelemetryEvent and fast == made and fast.payload is payload
        assert (fast.topic, fast.run_id, fast.agent_id, fast.seq_id, fast.ts_iso) == (
            made.topic, made.run_id, made.agent_id, made.seq_id, made.ts_iso)
