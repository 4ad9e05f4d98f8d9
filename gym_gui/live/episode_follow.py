"""EpisodeFollower: when to read a running run's stored episodes again (Qt-free).

A run without lifecycle records (steps and episodes only) is replayed while it runs. No notice
says which episodes the sink has committed, so the ReplayController reads the stored episodes
when it sees an EPISODE_FINALIZED live; the sink commits a little later (its batch delay), so an
episode seen live may not be stored yet. This class keeps the episodes seen live and not found
stored yet ("wanted"), says when the next read is due (at once after news, then after 1, 2, 4,
... ticks, at most ``max_backoff_ticks``), gives a wanted episode up after ``give_up_ticks``
(e.g. one the sink kept aside as malformed), and tells whether a read found more episodes.

Episodes published before the follower's subscription existed are not seen live: for
``start_window_ticks`` after the start, reads are also due (with the same backoff) until one finds
stored episodes. One owner thread (the controller's GUI thread) calls everything; ticks are the
owner's poll intervals since its start (``replay_view.ReplayView`` counts them on its clock, so
the schedule holds however often a pump ticks it).
"""

from __future__ import annotations

import logging
from typing import Iterable

from gym_gui.telemetry.events import TelemetryEvent
from gym_gui.telemetry.sqlite_records import EpisodeRecord

__all__ = ["EpisodeFollower", "EpisodesByAgent", "episode_index_of"]

_log = logging.getLogger(__name__)

#: Episodes per agent, in episode_index order; the stream without agent id is ``""``.
EpisodesByAgent = dict[str, list[EpisodeRecord]]
#: (agent_id as on the bus, episode_index or None: satisfied by any new stored episode).
_Wanted = tuple["str | None", "int | None"]
_AT_START: _Wanted = ("\x00published before start", None)


def episode_index_of(evt: TelemetryEvent) -> int | None:
    """The episode index of an EPISODE_FINALIZED payload: an int, or digits (the existing producers
    send uint64 fields as str); else None."""
    value = evt.payload.get("episode_index")
    if type(value) is int:
        return value
    if type(value) is str and value.isdigit():
        return int(value)
    return None


class EpisodeFollower:
    """The read schedule of one followed run. Not thread-safe: one owner thread; nothing blocks."""

    def __init__(self, *, start_tick: int = 0, max_backoff_ticks: int = 10, give_up_ticks: int = 200,
                 start_window_ticks: int = 50) -> None:
        for name, value in (("max_backoff_ticks", max_backoff_ticks), ("give_up_ticks", give_up_ticks),
                            ("start_window_ticks", start_window_ticks)):
            if type(value) is not int or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        self.max_backoff_ticks = max_backoff_ticks
        self.give_up_ticks = give_up_ticks
        self._start_until = start_tick + start_window_ticks
        self._wanted: dict[_Wanted, int] = {_AT_START: start_tick}  # -> tick first wanted
        self._next_tick = start_tick
        self._backoff = 1
        self._reading = False
        self._news_while_reading = False
        self._progress: EpisodesByAgent | None = None
        self.given_up = 0

    @property
    def progress(self) -> EpisodesByAgent | None:
        """The stored episodes of the last read that found more, or None. Owner thread; never blocks."""
        return self._progress

    @property
    def wanted(self) -> int:
        """Episodes seen live (or possibly published before the start) not found stored yet. Owner
        thread; never blocks."""
        return len(self._wanted)

    def saw(self, events: Iterable[TelemetryEvent | None], tick: int) -> None:
        """Episodes drained live at ``tick`` (None: some were dropped from the buffer): a read is due
        now. Owner thread; never blocks."""
        news = False
        for evt in events:
            key: _Wanted = (None, None) if evt is None else (evt.agent_id, episode_index_of(evt))
            self._wanted.setdefault(key, tick)
            news = True
        if news:
            self._news_while_reading = self._reading
            self._next_tick = min(self._next_tick, tick)
            self._backoff = 1

    @property
    def next_read_tick(self) -> int | None:
        """The tick from which the next read is due, or None (nothing wanted, or a read in flight).
        Owner thread; never blocks."""
        return self._next_tick if self._wanted and not self._reading else None

    def read_due(self, tick: int) -> bool:
        """True when a read should start at ``tick`` (something is wanted, none in flight, backoff
        over). Owner thread; never blocks."""
        return bool(self._wanted) and not self._reading and tick >= self._next_tick

    def read_started(self) -> None:
        """A read was submitted; ``read_done`` or ``read_failed`` follows. Owner thread; never blocks."""
        self._reading = True
        self._news_while_reading = False

    def read_done(self, episodes: EpisodesByAgent, tick: int) -> bool:
        """A read's result landed at ``tick``; True (and ``progress`` updated) when it found more
        episodes. Owner thread; never blocks."""
        self._reading = False
        stored = {(e.agent_id, e.episode_index) for eps in episodes.values() for e in eps}
        before = self._progress or {}
        grew = any(len(eps) > len(before.get(agent, ())) for agent, eps in episodes.items())
        for key, since in list(self._wanted.items()):
            agent_id, index = key
            if (key in stored) if index is not None else grew:
                del self._wanted[key]
            elif key == _AT_START:
                if tick >= self._start_until:
                    del self._wanted[key]  # nothing was on its way
            elif tick - since >= self.give_up_ticks:
                _log.info("episode %s of agent %s seen live is still not stored after %d ticks; giving up on it",
                          index, agent_id, tick - since)
                self.given_up += 1
                del self._wanted[key]
        if grew:
            self._progress = episodes
        self._schedule(tick, again_now=self._news_while_reading)
        return grew

    def read_failed(self, tick: int) -> None:
        """A read failed at ``tick``: try again after the backoff (not at every tick). Owner thread;
        never blocks."""
        self._reading = False
        self._schedule(tick, again_now=False)

    def _schedule(self, tick: int, *, again_now: bool) -> None:
        if again_now:
            self._next_tick = tick
            return
        self._next_tick = tick + self._backoff
        self._backoff = min(self._backoff * 2, self.max_backoff_ticks)
