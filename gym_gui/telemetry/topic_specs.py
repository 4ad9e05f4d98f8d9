"""Declared topics: what each ``Topic`` is for, in one table (Qt-free).

Every consumer that used to keep its own tuple of topics (the sink's durable set, the Redis
transport's stream topics, the registry's and the live view's lifecycle topics, the live view's
backfilled topics) derives it from here, so adding a topic is one ``TopicSpec`` entry plus its
tests (docs/architecture.md, "How to add a topic").

A spec says:

- ``durable``: the sink stores it; it then needs a ``row`` (how the store keeps it). A durable
  topic without one is refused when a store or a sink is built (``check_durable_rows`` raises
  ``TopicSpecError``), never counted lost at run time;
- ``transported``: the Redis transport carries it;
- ``lifecycle``: it reports a run's life (started, alive, completed): the registry and the live
  view follow it and the store folds it into the ``runs`` row;
- ``backfilled``: the live view fills a lost range of it from SQLite (``events_after`` reads it
  back), which needs it durable;
- ``row``: the ``RowKind`` the store writes it as;
- ``normalise``: an optional pure function the store applies to an event before mapping it to a
  row (the durable path's boundary; None: the event is stored as it is).

``Topic`` stays the plain ``enum.Enum`` of ``events`` (the existing app compares its members with
``is``); ``declare`` adds the spec of a member that ``events`` does not list (a test adds one in a
subprocess, see tests/telemetry/test_declared_topic_column.py). The tuples below are computed on
each call from the table, which a declaration changes; consumers may take them once at
construction. Everything here may be called from any thread; ``declare`` belongs to start-up.
"""

from __future__ import annotations

import enum
import threading
from typing import Callable, NamedTuple

from gym_gui.telemetry.events import TelemetryEvent, Topic

__all__ = [
    "RowKind",
    "TopicSpec",
    "TopicSpecError",
    "backfilled_topics",
    "check_durable_rows",
    "declare",
    "durable_topics",
    "lifecycle_topics",
    "spec",
    "specs",
    "transported_topics",
]


class RowKind(enum.Enum):
    """How the store keeps a durable topic (docs/schema.md has the tables)."""

    #: One ``steps`` row per event (``sqlite_rows.encode_step``).
    STEPS = "steps"
    #: One ``episodes`` row per event, keyed by episode_index (``sqlite_rows.encode_episode``).
    EPISODES = "episodes"
    #: One ``run_events`` row per event: topic name, time and payload JSON.
    RUN_EVENTS = "run_events"
    #: No row of its own: only the ``runs`` row changes (a lifecycle topic such as a heartbeat).
    RUN_ROW = "runs"


class TopicSpecError(ValueError):
    """A topic declaration the durable path cannot honour (e.g. durable without a row kind)."""


Normaliser = Callable[[TelemetryEvent], TelemetryEvent]


class TopicSpec(NamedTuple):
    """What one topic is for (module doc). Immutable (a NamedTuple: cheap to declare at import); share it freely."""

    topic: Topic
    durable: bool
    transported: bool
    lifecycle: bool
    backfilled: bool
    row: RowKind | None = None
    normalise: Normaliser | None = None


_T = Topic
#: The declarations, in the order the tuples list them (the order the existing code used).
_SPECS: dict[Topic, TopicSpec] = {s.topic: s for s in (
    TopicSpec(_T.RUN_STARTED, durable=True, transported=True, lifecycle=True, backfilled=False,
              row=RowKind.RUN_EVENTS),
    TopicSpec(_T.RUN_HEARTBEAT, durable=True, transported=True, lifecycle=True, backfilled=False,
              row=RowKind.RUN_ROW),
    TopicSpec(_T.STEP_APPENDED, durable=True, transported=True, lifecycle=False, backfilled=True,
              row=RowKind.STEPS),
    TopicSpec(_T.EPISODE_FINALIZED, durable=True, transported=True, lifecycle=False, backfilled=True,
              row=RowKind.EPISODES),
    TopicSpec(_T.RUN_COMPLETED, durable=True, transported=True, lifecycle=True, backfilled=False,
              row=RowKind.RUN_EVENTS),
    # A notice about another event's seq_id on one bus: neither stored nor transported.
    TopicSpec(_T.OVERFLOW, durable=False, transported=False, lifecycle=False, backfilled=False),
    # The existing GUI hub's credit notices: live only.
    TopicSpec(_T.CONTROL, durable=False, transported=False, lifecycle=False, backfilled=False),
)}
#: The sink's order of its durable topics (controls first, steps last), as sink_core listed them.
_DURABLE_ORDER = (_T.RUN_STARTED, _T.RUN_HEARTBEAT, _T.EPISODE_FINALIZED, _T.RUN_COMPLETED, _T.STEP_APPENDED)
_lock = threading.Lock()


def spec(topic: Topic) -> TopicSpec:
    """The spec of ``topic``; KeyError naming it when it has none. Any thread."""
    try:
        return _SPECS[topic]
    except KeyError:
        raise KeyError(f"topic {getattr(topic, 'name', topic)!r} has no TopicSpec (declare it in topic_specs)") from None


def specs() -> tuple[TopicSpec, ...]:
    """Every declared spec, in declaration order. Any thread."""
    return tuple(_SPECS.values())


def _ordered(flag: str) -> tuple[Topic, ...]:
    if flag == "durable":
        known = [t for t in _DURABLE_ORDER if _SPECS[t].durable]
        return tuple(known + [t for t, s in _SPECS.items() if s.durable and t not in _DURABLE_ORDER])
    return tuple(t for t, s in _SPECS.items() if getattr(s, flag))


def durable_topics() -> tuple[Topic, ...]:
    """Topics the sink stores: RUN_STARTED, RUN_HEARTBEAT, EPISODE_FINALIZED, RUN_COMPLETED,
    STEP_APPENDED, then any declared later. Any thread."""
    return _ordered("durable")


def transported_topics() -> tuple[Topic, ...]:
    """Topics the Redis transport carries: RUN_STARTED, RUN_HEARTBEAT, STEP_APPENDED,
    EPISODE_FINALIZED, RUN_COMPLETED, then any declared later. Any thread."""
    return _ordered("transported")


def lifecycle_topics() -> tuple[Topic, ...]:
    """Run lifecycle topics: RUN_STARTED, RUN_HEARTBEAT, RUN_COMPLETED (then any declared later). Any thread."""
    return _ordered("lifecycle")


def backfilled_topics() -> tuple[Topic, ...]:
    """Topics the live view backfills from SQLite: STEP_APPENDED, EPISODE_FINALIZED (then any
    declared later). Any thread."""
    return _ordered("backfilled")


def declare(new: TopicSpec, *, replace: bool = False) -> None:
    """Add the spec of a topic (or, with ``replace=True``, change one). Start-up only: call it
    before building buses' consumers, sinks and stores (they take the tuples once). Any thread.

    Raises TopicSpecError when the topic is declared already (without ``replace``) or the spec
    contradicts itself (backfilled but not durable); a durable spec without ``row`` is accepted
    here and refused by ``check_durable_rows`` when a store or a sink starts.
    """
    if type(new.topic) is not Topic:
        raise TopicSpecError(f"TopicSpec.topic must be a Topic, got {new.topic!r}")
    if new.backfilled and not new.durable:
        raise TopicSpecError(f"{new.topic.name}: a backfilled topic must be durable (it is read back from SQLite)")
    with _lock:
        if new.topic in _SPECS and not replace:
            raise TopicSpecError(f"{new.topic.name} is declared already")
        _SPECS[new.topic] = new


def check_durable_rows(handled: frozenset[RowKind] | None = None) -> None:
    """Raise TopicSpecError naming every durable topic without a row kind (or with one outside
    ``handled``, the kinds the caller can write), and every Topic member without a spec. Any thread.

    The store and the sink call it when they are built, so a topic that would be counted lost is
    refused at start-up instead.
    """
    problems: list[str] = []
    for topic in Topic:
        s = _SPECS.get(topic)
        if s is None:
            problems.append(f"{topic.name} has no TopicSpec")
        elif s.durable and s.row is None:
            problems.append(f"{topic.name} is durable but declares no row kind (TopicSpec.row)")
        elif s.durable and handled is not None and s.row not in handled:
            problems.append(f"{topic.name} is durable as {s.row}, which this store cannot write")
    if problems:
        raise TopicSpecError("topic declarations the durable path cannot honour: " + "; ".join(problems)
                             + " (see docs/architecture.md, 'How to add a topic')")
