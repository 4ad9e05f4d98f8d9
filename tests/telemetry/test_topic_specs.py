"""Declared topics (gym_gui.telemetry.topic_specs): the tuples every consumer derives, and the start-up check."""

from __future__ import annotations

import pytest

from gym_gui.telemetry import topic_specs
from gym_gui.telemetry.events import Topic
from gym_gui.telemetry.topic_specs import (
    RowKind,
    TopicSpec,
    TopicSpecError,
    backfilled_topics,
    check_durable_rows,
    declare,
    durable_topics,
    lifecycle_topics,
    spec,
    transported_topics,
)

T = Topic


def test_tuples_are_the_ones_the_consumers_used() -> None:
    assert durable_topics() == (T.RUN_STARTED, T.RUN_HEARTBEAT, T.EPISODE_FINALIZED, T.RUN_COMPLETED,
                                T.STEP_APPENDED)
    assert transported_topics() == (T.RUN_STARTED, T.RUN_HEARTBEAT, T.STEP_APPENDED, T.EPISODE_FINALIZED,
                                    T.RUN_COMPLETED)
    assert lifecycle_topics() == (T.RUN_STARTED, T.RUN_HEARTBEAT, T.RUN_COMPLETED)
    assert set(backfilled_topics()) == {T.STEP_APPENDED, T.EPISODE_FINALIZED}


def test_every_topic_has_a_spec_and_every_durable_one_a_row() -> None:
    check_durable_rows(frozenset(RowKind))
    for topic in Topic:
        s = spec(topic)
        assert s.topic is topic
        assert s.durable == (s.row is not None)
        assert not s.backfilled or s.durable
    assert spec(T.STEP_APPENDED).row is RowKind.STEPS
    assert spec(T.RUN_HEARTBEAT).row is RowKind.RUN_ROW


def test_transport_derives_its_stream_topics() -> None:
    from gym_gui.transport.redis_entries import STREAM_TOPICS

    assert STREAM_TOPICS == transported_topics()


def test_a_durable_topic_without_a_row_is_refused_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(topic_specs._SPECS, T.CONTROL, TopicSpec(T.CONTROL, durable=True, transported=False,
                                                                lifecycle=False, backfilled=False))
    with pytest.raises(TopicSpecError, match="CONTROL is durable but declares no row kind"):
        check_durable_rows()
    assert T.CONTROL in durable_topics()


def test_a_topic_without_a_spec_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(topic_specs._SPECS, T.OVERFLOW)
    with pytest.raises(TopicSpecError, match="OVERFLOW has no TopicSpec"):
        check_durable_rows()
    with pytest.raises(KeyError, match="OVERFLOW"):
        spec(T.OVERFLOW)


def test_a_row_kind_the_store_cannot_write_is_refused() -> None:
    with pytest.raises(TopicSpecError, match="STEP_APPENDED is durable as RowKind.STEPS"):
        check_durable_rows(frozenset({RowKind.EPISODES, RowKind.RUN_EVENTS, RowKind.RUN_ROW}))


def test_declare_refuses_contradictions_and_duplicates() -> None:
    with pytest.raises(TopicSpecError, match="declared already"):
        declare(TopicSpec(T.CONTROL, durable=False, transported=False, lifecycle=False, backfilled=False))
    with pytest.raises(TopicSpecError, match="must be durable"):
        declare(TopicSpec(T.CONTROL, durable=False, transported=False, lifecycle=False, backfilled=True),
                replace=True)
    assert spec(T.CONTROL).durable is False
