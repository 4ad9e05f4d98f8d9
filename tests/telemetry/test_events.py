from __future__ import annotations

import attrs
import pytest

from gym_gui.telemetry.events import TelemetryEvent, Topic, iso_from_unix_s, utc_now_iso


def make(**overrides: object) -> TelemetryEvent:
    fields: dict[str, object] = dict(
        topic=Topic.STEP_APPENDED, run_id="run1", agent_id="agent6", seq_id=1, ts_iso=utc_now_iso(), payload={}
    )
    fields.update(overrides)
    return TelemetryEvent(**fields)  # type: ignore[arg-type]


def test_topics_are_the_six_of_the_contract() -> None:
    assert [t.name for t in Topic] == [
        "RUN_STARTED", "RUN_HEARTBEAT", "RUN_COMPLETED", "STEP_APPENDED", "EPISODE_FINALIZED", "OVERFLOW",
    ]
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
        ("run_id", ""),
        ("run_id", 5),
        ("agent_id", ""),
        ("agent_id", 6),
        ("seq_id", -1),
        ("seq_id", 1.0),
        ("seq_id", True),
        ("seq_id", 2**63),  # beyond SQLite's INTEGER
        pytest.param("seq_id", 10**5000, id="seq_id-too-long-for-repr"),
        ("ts_iso", None),
        ("payload", [1, 2]),
    ],
)
def test_wrong_field_types_fail_with_the_field_named(field: str, value: object) -> None:
    with pytest.raises(TypeError, match=field):
        make(**{field: value})


def test_iso_helpers_are_utc() -> None:
    assert iso_from_unix_s(0.0) == "1970-01-01T00:00:00+00:00"
    assert utc_now_iso().endswith("+00:00")
