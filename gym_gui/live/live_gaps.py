"""Gaps in one stream's live view and their read-back from SQLite (Qt-free).

A live controller sees two kinds of gaps:

- **lost ranges**: seq_ids its bounded STEP_APPENDED + EPISODE_FINALIZED subscription dropped
  (``Subscription.take_lost_ranges``). Every event of those topics in the range was dropped, so
  none of them can also arrive live.
- **checks** after a stall: the seq_ids between the last one seen before the stall and the first
  one seen after it. A **history** check is one left open at the top, for a stream that began
  before the controller: it is read up to what SQLite holds until the first live event closes
  it, or, if none comes, until the run's row is terminal (the stream is over). Nothing says what they were (heartbeats use seq_ids too), and some may
  still be queued in a subscription, so a check keeps the seq_ids delivered inside it and lets
  each event through once, live or from SQLite, whichever comes first.

``GapTracker.plan`` snapshots what to read; ``read_gaps`` runs on a reader thread; ``apply`` (back
on the owner's thread) advances the gaps and returns the recovered events. The sink commits a
stream in seq_id order (a prefix), so once ``store.max_seq_id`` reaches a seq_id every event up
to it is readable; a gap is read up to there and retried later for the rest. When the run is
completed and its row is terminal in SQLite (the sink commits RUN_COMPLETED last, with the rest
of the run), whatever of a gap is still beyond ``max_seq_id`` will never come: it is given up
and, for lost ranges, counted as unrecoverable.
"""

from __future__ import annotations

from typing import Iterable

import attrs

from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.sqlite_records import RunRecord
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore
from gym_gui.telemetry.topic_specs import backfilled_topics

__all__ = ["BACKFILL_TOPICS", "GapPlan", "GapRead", "GapReadResult", "GapTracker", "read_gaps"]

#: The upper end of a history check that no live event has closed yet.
HISTORY_OPEN_END = 2**63 - 1
#: The topics a live controller backfills from SQLite.
BACKFILL_TOPICS: frozenset[Topic] = frozenset(backfilled_topics())


@attrs.frozen(slots=True)
class GapRead:
    """One gap as planned: read ``topics`` events with ``first <= seq_id <= last``."""

    key: int
    topics: frozenset[Topic]
    first: int
    last: int


@attrs.frozen(slots=True)
class GapPlan:
    """What one backfill query reads: the stream, its open gaps, at most ``limit`` rows in all."""

    run_id: str
    agent_id: str
    reads: tuple[GapRead, ...]
    limit: int


@attrs.frozen(slots=True)
class GapReadResult:
    """What ``read_gaps`` found.

    ``run``: the run's stored row (lifecycle for a stream whose start or end was never seen live);
    ``terminal``: that row was terminal before anything else was read; ``max_seq_id``: the
    stream's highest stored seq_id, read next; ``covered``: per gap key, the seq_id up to which
    the gap was read (``first - 1`` when nothing could be read) and the matching events.
    """

    terminal: bool
    max_seq_id: int | None
    covered: tuple[tuple[int, int, tuple[TelemetryEvent, ...]], ...]
    run: RunRecord | None = None


def read_gaps(store: TelemetrySQLiteStore, plan: GapPlan) -> GapReadResult:
    """Read the planned gaps from ``store``. A reader thread; blocks on SQLite reads only.

    Order matters: the run row, then ``max_seq_id``, then the events, so that a terminal run
    means every event of the run was committed before the events were read.
    """
    run = store.run(plan.run_id)
    terminal = run is not None and run.is_terminal
    top = store.max_seq_id(plan.run_id, plan.agent_id)
    budget = plan.limit
    covered: list[tuple[int, int, tuple[TelemetryEvent, ...]]] = []
    for gap in plan.reads:
        end = gap.last if top is None else min(gap.last, top)
        if top is None or end < gap.first or budget <= 0:
            covered.append((gap.key, gap.first - 1, ()))
            continue
        limit = min(budget, end - gap.first + 1)
        rows = store.events_after(plan.run_id, plan.agent_id, gap.first - 1, limit)
        budget -= len(rows)
        # A full page ending inside the gap may have more rows after it; otherwise all up to ``end`` are in.
        reached = rows[-1].seq_id if len(rows) == limit and rows[-1].seq_id < end else end
        events = tuple(e for e in rows if e.seq_id <= reached and e.topic in gap.topics)
        covered.append((gap.key, reached, events))
    return GapReadResult(terminal, top, tuple(covered), run)


@attrs.define(slots=True)
class _Gap:
    key: int
    topics: frozenset[Topic]
    first: int  # next seq_id to read
    last: int
    lost: bool  # a lost range (counted) rather than a stall check
    open_ended: bool = False  # a history check no live event has closed yet


@attrs.define(slots=True)
class _Check:
    """The seq_ids delivered inside a stall check, kept while duplicates can still arrive."""

    gap_key: int
    first: int
    last: int
    seen: set[int] = attrs.Factory(set)
    read: bool = False


class GapTracker:
    """Open gaps of one stream, the stall checks' delivered seq_ids, and the counts.

    Not thread-safe: the owner's thread calls everything; only ``read_gaps`` runs elsewhere.
    ``unrecoverable`` counts seq_ids of lost ranges given up (an upper bound on events: a range
    of one topic can span seq_ids of the stream's other topics).
    """

    def __init__(self) -> None:
        self._gaps: list[_Gap] = []
        self._checks: list[_Check] = []
        self._next_key = 0
        self.unrecoverable = 0

    def __bool__(self) -> bool:
        """True while some gap waits to be read."""
        return bool(self._gaps)

    @property
    def checks_open(self) -> int:
        """Stall checks still remembering delivered seq_ids."""
        return len(self._checks)

    def pending(self) -> int:
        """Seq_ids of lost ranges still waiting to be read back (an upper bound on events)."""
        return sum(g.last - g.first + 1 for g in self._gaps if g.lost)

    def _add(self, topics: frozenset[Topic], first: int, last: int, lost: bool) -> int:
        key = self._next_key
        self._next_key += 1
        self._gaps.append(_Gap(key, topics, first, last, lost))
        return key

    def add_lost(self, topics: Topic | Iterable[Topic], ranges: Iterable[tuple[int, int]]) -> int:
        """Open a gap per lost ``(first, last)`` range of ``topics`` (one topic, or those of a
        multi-topic subscription, whose ranges span them all); returns the seq_ids added."""
        kinds = frozenset((topics,)) if isinstance(topics, Topic) else frozenset(topics)
        added = 0
        for first, last in ranges:
            self._add(kinds, first, last, lost=True)
            added += last - first + 1
        return added

    def count_unrecoverable(self, ranges: Iterable[tuple[int, int]]) -> int:
        """Count lost ranges that nobody will read back (no reader); returns the seq_ids counted."""
        counted = sum(last - first + 1 for first, last in ranges)
        self.unrecoverable += counted
        return counted

    def add_check(self, first: int, last: int) -> None:
        """Open a stall check for steps and episodes with ``first <= seq_id <= last``."""
        if first > last:
            return
        key = self._add(BACKFILL_TOPICS, first, last, lost=False)
        self._checks.append(_Check(key, first, last))

    def add_history(self, first: int) -> int:
        """Open a history check from ``first`` with no end yet; returns its key for ``close_history``."""
        key = self._add(BACKFILL_TOPICS, first, HISTORY_OPEN_END, lost=False)
        self._gaps[-1].open_ended = True
        self._checks.append(_Check(key, first, HISTORY_OPEN_END))
        return key

    def close_history(self, key: int, last: int) -> None:
        """End the history check ``key`` at ``last`` (the seq_id before the first live event)."""
        for gap in self._gaps:
            if gap.key == key:
                gap.last, gap.open_ended = last, False
        for check in self._checks:
            if check.gap_key == key:
                check.last = last
        self._drop_done()

    def _drop_done(self) -> None:
        done = {g.key for g in self._gaps if g.first > g.last}
        if done:
            self._gaps = [g for g in self._gaps if g.key not in done]
            for check in self._checks:
                check.read = check.read or check.gap_key in done

    def admit(self, events: list[TelemetryEvent]) -> list[TelemetryEvent]:
        """The events not delivered yet; remembers those inside stall checks. Cheap without checks."""
        if not self._checks:
            return events
        return [e for e in events if self._admit_one(e)]

    def _admit_one(self, evt: TelemetryEvent) -> bool:
        seq = evt.seq_id
        for check in self._checks:
            if check.first <= seq <= check.last:
                if seq in check.seen:
                    return False
                check.seen.add(seq)
        return True

    def retire_checks(self, horizon: float) -> None:
        """Forget checks that were read and end below ``horizon``, the lowest seq_id still deliverable live."""
        self._checks = [c for c in self._checks if not (c.read and c.last < horizon)]

    def plan(self, run_id: str, agent_id: str, limit: int) -> GapPlan:
        """Snapshot of the open gaps, oldest first, for one query of at most ``limit`` rows."""
        reads = tuple(GapRead(g.key, g.topics, g.first, g.last) for g in self._gaps)
        return GapPlan(run_id, agent_id, reads, limit)

    def apply(self, plan: GapPlan, result: GapReadResult, *, run_completed: bool
              ) -> tuple[list[TelemetryEvent], bool]:
        """Advance the gaps by ``result``; returns the recovered events (seq_id order) and whether
        anything moved. ``run_completed``: the owner saw the run's RUN_COMPLETED, so gaps still
        beyond the stored seq_ids of a terminal run are given up.
        """
        gaps = {g.key: g for g in self._gaps}
        recovered: list[TelemetryEvent] = []
        moved = False
        for key, reached, events in result.covered:
            gap = gaps.get(key)
            if gap is None or reached < gap.first:
                continue
            moved = True
            recovered += self.admit([e for e in events if gap.first <= e.seq_id])
            gap.first = reached + 1
        if result.terminal:
            top = -1 if result.max_seq_id is None else result.max_seq_id
            for read in plan.reads:
                gap = gaps.get(read.key)
                # An open history check ends with the stream; other gaps only once the owner saw the end.
                if gap is not None and (run_completed or gap.open_ended) and top < gap.first <= gap.last:
                    if gap.lost:
                        self.unrecoverable += gap.last - gap.first + 1
                    gap.first = gap.last + 1
                    moved = True
        self._drop_done()
        recovered.sort(key=lambda e: e.seq_id)
        return recovered, moved
