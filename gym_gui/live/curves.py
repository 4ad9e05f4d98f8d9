"""CurveData: the learning curves of one stream, in growable numpy buffers (Qt-free).

One row per episode, kept sorted by episode index and keyed by it: an episode that arrives again
(live, then backfilled, then read from history) reaches the curves once. Columns: episode index,
return, length, success (1, 0 or NaN when the episode does not say; rule in ``curve_points``), wall
time (epoch seconds of the EPISODE_FINALIZED event), and one column per numeric field of the
episodes' ``metadata`` (NaN where an episode lacks it). Derived columns, recomputed only from the
first changed row on: steps at the episode's end (cumulative length, the "step" x-axis), the
rolling mean of the return and the rolling success rate over ``window`` episodes.

Heartbeats (RUN_HEARTBEAT's ``stats``) form a second table: wall time, ``steps_done``,
``episodes_done`` and one column per numeric stat, in arrival order. The store keeps only a run's
latest heartbeat, so these series exist for what a tab saw live.

Arrays handed out (``series``) are views of the buffers: valid until the next change, never copied.
Appends write only rows past the end, so a view handed to a worker thread keeps its rows; a change
of rows before the end (a late episode, a window change, a merge) bumps ``rewritten`` and is logged
with its first row (``changed_from``), so the worker's result can be dropped or patched from there.
Not thread-safe otherwise: one thread owns an instance (the GUI thread for a tab; a reader thread
while a history load builds one, handed over afterwards).
"""

from __future__ import annotations

import logging
import math
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Sequence

import numpy as np

from gym_gui.live.curve_columns import Columns
from gym_gui.live.curve_points import (
    META_SKIP,
    EpisodePoint,
    episode_success,
    iso_to_epoch_s,
    numeric_fields,
    point_from_payload,
)
from gym_gui.live.smoothing import rolling_mean_tail

__all__ = [
    "AXES",
    "BUILTIN_SERIES",
    "META_SKIP",
    "CurveData",
    "EpisodePoint",
    "WindowColumns",
    "episode_success",
    "iso_to_epoch_s",
    "numeric_fields",
    "point_from_payload",
]

_log = logging.getLogger(__name__)

#: The x-axes a series can be drawn against.
AXES = ("episode", "step", "wall")
#: The series every stream has (metadata ones are ``meta:<key>``, heartbeat ones ``hb:<key>``).
BUILTIN_SERIES = ("return", "return_mean", "length", "success_rate")
#: Most metadata / heartbeat keys turned into series per stream (more are counted, not plotted).
MAX_EXTRA_SERIES = 32
#: Rewrites remembered for ``changed_from`` (older ones count as "everything changed").
_REWRITE_LOG = 64
_NAN = math.nan
#: Numbers that are not worth a chart: the heartbeat's own axes and clock.
_HB_SKIP = frozenset({"episodes_done", "steps_done", "elapsed_s", "interval_s", "pid"})
_ROLLING = (("return", "return_mean"), ("success", "success_rate"))


class WindowColumns(NamedTuple):
    """The rolling columns of rows ``[0, rows)`` for ``window``, computed off the owner's thread."""

    window: int
    rows: int
    rewritten: int
    return_mean: np.ndarray
    success_rate: np.ndarray


class CurveData:
    """The curves of one stream (see the module doc). Owner's thread only; no method blocks."""

    def __init__(self, *, window: int = 100) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.window = window
        self._ep = Columns(("index", "return", "length", "success", "wall", "steps_end",
                             "return_mean", "success_rate"))
        self._meta_keys: list[str] = []
        self._hb = Columns(("wall", "steps_done", "episodes_done"))
        self._hb_keys: list[str] = []
        self._dirty_from: int | None = None
        self.duplicates = 0  # episodes offered again (ignored)
        self.extra_series_dropped = 0  # metadata / heartbeat keys beyond MAX_EXTRA_SERIES
        self.version = 0  # bumped by every change (views compare it to skip redraws)
        self.rewritten = 0  # bumped when rows before the end changed (not a plain append)
        self._rewrites: list[tuple[int, int]] = []  # (rewritten after the change, its first row)

    @classmethod
    def from_columns(cls, index: np.ndarray, total_reward: np.ndarray, length: np.ndarray, success: np.ndarray,
                     wall_s: np.ndarray, metadata: Mapping[str, np.ndarray] | None = None, *,
                     window: int = 100) -> CurveData:
        """Build from whole columns at once (a history load: vectorised, no per-row Python work).
        Rows are sorted by index and repeated indices keep their first row. Any thread (the new
        instance belongs to the caller until handed over)."""
        data = cls(window=window)
        index = np.asarray(index, dtype=np.float64)
        order: np.ndarray | slice
        if bool((index[1:] > index[:-1]).all()):
            order = slice(None)  # sorted, no repeats (a store's read): taken as they are
        else:
            order = np.argsort(index, kind="stable")
            sorted_index = index[order]
            keep = np.ones(len(order), dtype=bool)
            keep[1:] = sorted_index[1:] != sorted_index[:-1]
            order = order[keep]
        n = len(index[order])
        data.duplicates = int(len(index) - n)
        ep = data._ep
        for key in [k for k in (metadata or {}) if k not in META_SKIP][:MAX_EXTRA_SERIES]:
            data._meta_keys.append(key)
            ep.add_column(f"meta:{key}")
        data.extra_series_dropped = max(0, len(metadata or {}) - MAX_EXTRA_SERIES)
        ep.reserve(n)
        sources = {"index": index, "return": total_reward, "length": length, "success": success, "wall": wall_s}
        sources.update({f"meta:{k}": (metadata or {})[k] for k in data._meta_keys})
        for name, values in sources.items():
            ep.cols[name][:n] = np.asarray(values, dtype=np.float64)[order]
        ep.n = n
        data._recompute_all()
        data.version += 1
        return data

    # -- size ------------------------------------------------------------------------------------
    @property
    def episode_count(self) -> int:
        """Episodes held. Owner's thread."""
        return self._ep.n

    @property
    def heartbeat_count(self) -> int:
        """Heartbeats held. Owner's thread."""
        return self._hb.n

    def has_episode(self, episode_index: int) -> bool:
        """True when ``episode_index`` is held. Owner's thread."""
        idx = self._ep.view("index")
        pos = int(np.searchsorted(idx, episode_index))
        return pos < len(idx) and idx[pos] == episode_index

    def series_names(self) -> list[str]:
        """Every series: the built-in ones, then ``meta:<key>``, then ``hb:<key>`` in order of appearance."""
        return list(BUILTIN_SERIES) + [f"meta:{k}" for k in self._meta_keys] + [f"hb:{k}" for k in self._hb_keys]

    # -- adding ----------------------------------------------------------------------------------
    def add_episode_events(self, events: Iterable[Any]) -> int:
        """Add EPISODE_FINALIZED events (anything with ``payload`` and ``ts_iso``); returns how many
        were new. Payloads without an integer episode_index are skipped. Owner's thread."""
        points = [p for p in (point_from_payload(e.payload, e.ts_iso) for e in events) if p is not None]
        return self.add_points(points)

    def add_points(self, points: Sequence[EpisodePoint]) -> int:
        """Add episodes at their place by index (already held ones are counted as duplicates and
        ignored); returns how many were new. In-order points are appended in one go. Owner's thread."""
        if not points:
            return 0
        ep = self._ep
        held = ep.view("index")
        seen: set[int] = set()
        fresh: list[EpisodePoint] = []
        for p in points:
            i = p.episode_index
            if i in seen:
                self.duplicates += 1
                continue
            pos = int(np.searchsorted(held, i))
            if pos < len(held) and held[pos] == i:
                self.duplicates += 1
                continue
            seen.add(i)
            fresh.append(p)
        if not fresh:
            return 0
        fresh.sort(key=lambda p: p.episode_index)
        for key in sorted({k for p in fresh for k in p.metadata} - META_SKIP):
            if key not in self._meta_keys:
                if len(self._meta_keys) + len(self._hb_keys) >= MAX_EXTRA_SERIES:
                    self.extra_series_dropped += 1
                    continue
                self._meta_keys.append(key)
                ep.add_column(f"meta:{key}")
        start = ep.n
        first_new = fresh[0].episode_index
        ep.reserve(len(fresh))
        if start == 0 or first_new > ep.cols["index"][start - 1]:
            self._write_rows(ep.cols, start, fresh)
            ep.n += len(fresh)
            self._mark_dirty(start)
        else:
            self._insert_rows(fresh)
        self._recompute()
        self.version += 1
        return len(fresh)

    def _write_rows(self, cols: dict[str, np.ndarray], at: int, points: Sequence[EpisodePoint]) -> None:
        end = at + len(points)
        cols["index"][at:end] = [p.episode_index for p in points]
        cols["return"][at:end] = [p.total_reward for p in points]
        cols["length"][at:end] = [p.length for p in points]
        cols["success"][at:end] = [p.success for p in points]
        cols["wall"][at:end] = [p.wall_s for p in points]
        for key in self._meta_keys:
            cols[f"meta:{key}"][at:end] = [p.metadata.get(key, _NAN) for p in points]

    def _insert_rows(self, points: Sequence[EpisodePoint]) -> None:
        """Late episodes (e.g. backfilled): the rows from the first one's place on are merged by
        index in place (vectorised); rows before it stay as they are, so a late episode near the
        end costs the rows after it, not the run."""
        ep = self._ep
        n, k = ep.n, len(points)
        new = {name: np.full(k, _NAN) for name in ep.cols}
        self._write_rows(new, 0, points)
        first = int(np.searchsorted(ep.cols["index"][:n], new["index"][0]))
        order = np.argsort(np.concatenate([ep.cols["index"][first:n], new["index"]]), kind="stable")
        for name, col in ep.cols.items():
            merged = np.concatenate([col[first:n], new[name]])
            col[first: n + k] = merged[order]
        ep.n = n + k
        self._mark_dirty(first)
        self._log_rewrite(first)

    def add_heartbeat(self, ts_iso: Any, payload: Mapping[str, Any]) -> bool:
        """Add a RUN_HEARTBEAT payload (its ``stats`` numbers, else its top-level numbers); False
        when it carries no number. Owner's thread."""
        stats = payload.get("stats")
        source = stats if isinstance(stats, Mapping) else payload
        values = numeric_fields(source)
        values.pop("interval_s", None)
        if not values:
            return False
        hb = self._hb
        for key in values:
            if key not in _HB_SKIP and key not in self._hb_keys:
                if len(self._meta_keys) + len(self._hb_keys) >= MAX_EXTRA_SERIES:
                    self.extra_series_dropped += 1
                    continue
                self._hb_keys.append(key)
                hb.add_column(f"hb:{key}")
        hb.reserve(1)
        at = hb.n
        hb.cols["wall"][at] = iso_to_epoch_s(ts_iso)
        hb.cols["steps_done"][at] = values.get("steps_done", _NAN)
        hb.cols["episodes_done"][at] = values.get("episodes_done", _NAN)
        for key in self._hb_keys:
            hb.cols[f"hb:{key}"][at] = values.get(key, _NAN)
        hb.n += 1
        self.version += 1
        return True

    def merge_from(self, other: CurveData) -> int:
        """Take ``other``'s episodes (a history load) that this one lacks; returns how many were new.
        When ``other`` holds more, this one adopts ``other``'s buffers and puts its own few episodes
        back in (the big side is never copied row by row). Heartbeats stay this one's; ``other``
        must not be used afterwards. Owner's thread."""
        before = self._ep.n
        if other.episode_count > before:
            mine = self.points()
            self._ep, self._meta_keys = other._ep, list(other._meta_keys)
            self._log_rewrite(0)
            if other.window != self.window or other._dirty_from is not None:
                self._recompute_all()
            self.add_points(mine)
            self.duplicates += other.duplicates
            self.version += 1
        else:
            self.add_points(other.points())
        return self._ep.n - before

    def points(self) -> list[EpisodePoint]:
        """Every held episode as points (for merging). Owner's thread; O(n)."""
        ep = self._ep
        n = ep.n
        cols = {name: ep.cols[name][:n].tolist() for name in ("index", "return", "length", "success", "wall")}
        metas = {key: ep.cols[f"meta:{key}"][:n].tolist() for key in self._meta_keys}
        out = []
        for i in range(n):
            meta = {k: v[i] for k, v in metas.items() if not math.isnan(v[i])}
            out.append(EpisodePoint(int(cols["index"][i]), cols["return"][i], cols["length"][i],
                                    cols["success"][i], cols["wall"][i], meta))
        return out

    def set_window(self, window: int) -> None:
        """Change the rolling window (recomputes the derived columns). Owner's thread."""
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        if window != self.window:
            self.window = window
            self._recompute_all()
            self._log_rewrite(0)
            self.version += 1

    def window_job(self, window: int) -> Callable[[], WindowColumns]:
        """A function computing the rolling columns of the rows held now for ``window``, to run on
        any thread (it reads views of rows that appends do not touch); hand its result to
        ``adopt_window``. Owner's thread; O(1)."""
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        ep, rewritten = self._ep, self.rewritten
        sources = {src: ep.view(src) for src, _dst in _ROLLING}
        rows = ep.n

        def compute() -> WindowColumns:
            return WindowColumns(window, rows, rewritten, rolling_mean_tail(sources["return"], window),
                                 rolling_mean_tail(sources["success"], window))

        return compute

    def adopt_window(self, result: WindowColumns) -> bool:
        """Switch to ``result.window`` with the rolling columns a ``window_job`` computed; rows added
        since are computed here (their count plus the window). False, and nothing changes, when rows
        before the end changed since the job was made (make a new one). Owner's thread."""
        if result.rewritten != self.rewritten or result.rows > self._ep.n:
            return False
        ep = self._ep
        ep.cols["return_mean"][: result.rows] = result.return_mean
        ep.cols["success_rate"][: result.rows] = result.success_rate
        self.window = result.window
        self._log_rewrite(0)  # every rolling value may differ
        self._mark_dirty(result.rows)
        self._recompute()
        self.version += 1
        return True

    def changed_from(self, since_rewritten: int) -> int | None:
        """The first row changed by the rewrites after ``rewritten`` was ``since_rewritten``; None
        when there were none (only appends since). Owner's thread."""
        if since_rewritten == self.rewritten:
            return None
        later = [row for number, row in self._rewrites if number > since_rewritten]
        if since_rewritten > self.rewritten or len(later) < self.rewritten - since_rewritten:
            return 0  # not remembered: everything may have changed
        return min(later)

    # -- reading ---------------------------------------------------------------------------------
    def series(self, name: str, axis: str = "episode") -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` views of series ``name`` against ``axis`` ("episode", "step" or "wall": epoch
        seconds). Heartbeat series use the heartbeat's ``episodes_done`` / ``steps_done`` / time.
        Unknown names give empty arrays. Owner's thread; no copy."""
        if axis not in AXES:
            raise ValueError(f"axis must be one of {AXES}, got {axis!r}")
        if name.startswith("hb:"):
            hb = self._hb
            if name not in hb.cols:
                return np.empty(0), np.empty(0)
            x_name = {"episode": "episodes_done", "step": "steps_done", "wall": "wall"}[axis]
            return hb.view(x_name), hb.view(name)
        ep = self._ep
        y_name = {"return": "return", "return_mean": "return_mean", "length": "length",
                  "success_rate": "success_rate"}.get(name, name)
        if y_name not in ep.cols:
            return np.empty(0), np.empty(0)
        x_name = {"episode": "index", "step": "steps_end", "wall": "wall"}[axis]
        return ep.view(x_name), ep.view(y_name)

    def column(self, name: str) -> np.ndarray:
        """A raw episode column view (``index``, ``return``, ``length``, ``success``, ``wall``,
        ``steps_end``, ``return_mean``, ``success_rate``, ``meta:<key>``). Owner's thread."""
        return self._ep.view(name)

    # -- derived columns -------------------------------------------------------------------------
    def _mark_dirty(self, row: int) -> None:
        self._dirty_from = row if self._dirty_from is None else min(self._dirty_from, row)

    def _recompute_all(self) -> None:
        self._dirty_from = 0
        self._recompute()

    def _recompute(self) -> None:
        start = self._dirty_from
        self._dirty_from = None
        ep = self._ep
        n = ep.n
        if start is None or start >= n:
            return
        cols = ep.cols
        # Steps at each episode's end: cumulative length (a missing length counts 0).
        base = cols["steps_end"][start - 1] if start > 0 else 0.0
        lengths = np.nan_to_num(cols["length"][start:n], nan=0.0)
        cols["steps_end"][start:n] = base + np.cumsum(lengths)
        for src, dst in _ROLLING:
            cols[dst][start:n] = rolling_mean_tail(cols[src][:n], self.window, start)

    def _log_rewrite(self, first_row: int) -> None:
        self.rewritten += 1
        self._rewrites.append((self.rewritten, first_row))
        del self._rewrites[:-_REWRITE_LOG]
