"""CurveData: the learning curves of one stream, in growable numpy buffers (Qt-free).

One row per episode, kept sorted by episode index and keyed by it: an episode that arrives again
(live, then backfilled, then read from history) reaches the curves once. Columns: episode index,
return, length, success (1, 0 or NaN when the episode does not say), wall time (epoch seconds of the
EPISODE_FINALIZED event), and one column per numeric field of the episodes' ``metadata`` (NaN where
an episode lacks it). Derived columns, recomputed only from the first changed row on: steps at the
episode's end (cumulative length, the "step" x-axis), the rolling mean of the return and the
rolling success rate over ``window`` episodes.

Heartbeats (RUN_HEARTBEAT's ``stats``) form a second table: wall time, ``steps_done``,
``episodes_done`` and one column per numeric stat, in arrival order. The store keeps only a run's
latest heartbeat, so these series exist for what a tab saw live.

Success (``episode_success``): the worker's own boolean, if any, wins: ``success`` or ``is_success``
in the payload or in its ``metadata`` (Gymnasium's ``info["is_success"]`` convention). Else the
``outcome`` text our workers write: ``success`` counts 1, ``failure`` / ``failed`` / ``truncated``
count 0. Else a terminated episode with a positive return counts 1, another terminated or truncated
episode 0. An episode that says none of this is NaN and left out of the rate.

Arrays handed out (``series``) are views of the buffers: valid until the next change, never copied.
Not thread-safe: one thread owns an instance (the GUI thread for a tab; a reader thread while a
history load builds one, handed over afterwards).
"""

from __future__ import annotations

import logging
import math
from datetime import datetime
from typing import Any, Iterable, Mapping, NamedTuple, Sequence

import numpy as np

__all__ = [
    "AXES",
    "BUILTIN_SERIES",
    "CurveData",
    "EpisodePoint",
    "episode_success",
    "iso_to_epoch_s",
    "numeric_fields",
]

_log = logging.getLogger(__name__)

#: The x-axes a series can be drawn against.
AXES = ("episode", "step", "wall")
#: The series every stream has (metadata ones are ``meta:<key>``, heartbeat ones ``hb:<key>``).
BUILTIN_SERIES = ("return", "return_mean", "length", "success_rate")
#: Most metadata / heartbeat keys turned into series per stream (more are counted, not plotted).
MAX_EXTRA_SERIES = 32
_INITIAL_CAPACITY = 256
_NAN = math.nan
_SUCCESS_OUTCOMES = {"success": 1.0, "succeeded": 1.0, "failure": 0.0, "failed": 0.0, "truncated": 0.0}
#: Numbers that are not worth a chart: the heartbeat's own axes and clock, ids and seeds.
_HB_SKIP = frozenset({"episodes_done", "steps_done", "elapsed_s", "interval_s", "pid"})
META_SKIP = frozenset({"seed", "episode_seed", "env_seed", "pid", "worker_id", "episode_index"})


class EpisodePoint(NamedTuple):
    """One episode as the curves need it (NaN for a missing number)."""

    episode_index: int
    total_reward: float
    length: float
    success: float
    wall_s: float
    metadata: Mapping[str, float]


def _num(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _NAN
    value = float(value)
    return value if math.isfinite(value) else _NAN


def numeric_fields(mapping: Any, *, skip: frozenset[str] = frozenset()) -> dict[str, float]:
    """The finite int/float values of a mapping's top-level keys (bools excluded). Pure."""
    if not isinstance(mapping, Mapping):
        return {}
    out: dict[str, float] = {}
    for key, value in mapping.items():
        if type(key) is str and key not in skip:
            number = _num(value)
            if not math.isnan(number):
                out[key] = number
    return out


def iso_to_epoch_s(ts_iso: Any) -> float:
    """Epoch seconds of an ISO-8601 text (naive texts are taken as UTC), NaN if unreadable. Pure."""
    if type(ts_iso) is not str:
        return _NAN
    try:
        stamp = datetime.fromisoformat(ts_iso.replace("Z", "+00:00"))
    except ValueError:
        return _NAN
    if stamp.tzinfo is None:
        return (stamp - datetime(1970, 1, 1)).total_seconds()
    return stamp.timestamp()


def episode_success(payload: Mapping[str, Any]) -> float:
    """1.0, 0.0 or NaN (unknown) for an EPISODE_FINALIZED payload; rule in the module doc. Pure."""
    metadata = payload.get("metadata")
    for source in (payload, metadata if isinstance(metadata, Mapping) else {}):
        for key in ("success", "is_success"):
            value = source.get(key)
            if type(value) is bool:
                return 1.0 if value else 0.0
    outcome = payload.get("outcome")
    if isinstance(outcome, str) and outcome.lower() in _SUCCESS_OUTCOMES:
        return _SUCCESS_OUTCOMES[outcome.lower()]
    if payload.get("terminated") is True:
        total = _num(payload.get("total_reward"))
        return 1.0 if total > 0 else 0.0
    if payload.get("truncated") is True:
        return 0.0
    return _NAN


def point_from_payload(payload: Mapping[str, Any], ts_iso: Any) -> EpisodePoint | None:
    """The curve point of an EPISODE_FINALIZED payload, None without an integer episode_index. Pure."""
    index = payload.get("episode_index")
    if type(index) is not int:
        return None
    return EpisodePoint(index, _num(payload.get("total_reward")), _num(payload.get("length")),
                        episode_success(payload), iso_to_epoch_s(ts_iso), numeric_fields(payload.get("metadata")))


class _Columns:
    """Named float64 columns of one length in buffers that double when full."""

    def __init__(self, names: Sequence[str]) -> None:
        self.n = 0
        self._cap = _INITIAL_CAPACITY
        self.cols: dict[str, np.ndarray] = {name: np.full(self._cap, _NAN) for name in names}

    def add_column(self, name: str) -> np.ndarray:
        col = np.full(self._cap, _NAN)
        self.cols[name] = col
        return col

    def reserve(self, extra: int) -> None:
        need = self.n + extra
        if need <= self._cap:
            return
        cap = self._cap
        while cap < need:
            cap *= 2
        for name, old in self.cols.items():
            new = np.full(cap, _NAN)
            new[: self.n] = old[: self.n]
            self.cols[name] = new
        self._cap = cap

    def view(self, name: str) -> np.ndarray:
        return self.cols[name][: self.n]


class CurveData:
    """The curves of one stream (see the module doc). Owner's thread only; no method blocks."""

    def __init__(self, *, window: int = 100) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.window = window
        self._ep = _Columns(("index", "return", "length", "success", "wall", "steps_end",
                             "return_mean", "success_rate"))
        self._meta_keys: list[str] = []
        self._hb = _Columns(("wall", "steps_done", "episodes_done"))
        self._hb_keys: list[str] = []
        self._dirty_from: int | None = None
        self.duplicates = 0  # episodes offered again (ignored)
        self.extra_series_dropped = 0  # metadata / heartbeat keys beyond MAX_EXTRA_SERIES
        self.version = 0  # bumped by every change (views compare it to skip redraws)
        self.rewritten = 0  # bumped when rows before the end changed (not a plain append)

    @classmethod
    def from_columns(cls, index: np.ndarray, total_reward: np.ndarray, length: np.ndarray, success: np.ndarray,
                     wall_s: np.ndarray, metadata: Mapping[str, np.ndarray] | None = None, *,
                     window: int = 100) -> CurveData:
        """Build from whole columns at once (a history load: vectorised, no per-row Python work).
        Rows are sorted by index and repeated indices keep their first row. Any thread (the new
        instance belongs to the caller until handed over)."""
        data = cls(window=window)
        index = np.asarray(index, dtype=np.float64)
        order = np.argsort(index, kind="stable")
        sorted_index = index[order]
        keep = np.ones(len(order), dtype=bool)
        keep[1:] = sorted_index[1:] != sorted_index[:-1]
        order = order[keep]
        data.duplicates = int(len(index) - len(order))
        ep = data._ep
        n = len(order)
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
        """Late episodes (e.g. backfilled): rebuild the raw columns merged by index (vectorised)."""
        self.rewritten += 1
        ep = self._ep
        n, k = ep.n, len(points)
        new = {name: np.full(k, _NAN) for name in ep.cols}
        self._write_rows(new, 0, points)
        order = np.argsort(np.concatenate([ep.cols["index"][:n], new["index"]]), kind="stable")
        for name, col in ep.cols.items():
            merged = np.concatenate([col[:n], new[name]])
            col[: n + k] = merged[order]
        ep.n = n + k
        first_changed = int(np.argmax(order != np.arange(n + k))) if n else 0
        self._mark_dirty(first_changed)

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
            self.rewritten += 1
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
            self.rewritten += 1
            self.version += 1

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
        w = self.window
        lo = max(0, start - w)  # rows whose values enter the windows of rows start..n-1
        for src, dst in (("return", "return_mean"), ("success", "success_rate")):
            values = cols[src][lo:n]
            valid = ~np.isnan(values)
            csum = np.concatenate(([0.0], np.cumsum(np.where(valid, values, 0.0))))
            ccount = np.concatenate(([0], np.cumsum(valid)))
            rows = np.arange(start, n) - lo + 1  # prefix lengths up to and including each row
            left = np.maximum(0, rows - w)
            total = csum[rows] - csum[left]
            count = ccount[rows] - ccount[left]
            with np.errstate(invalid="ignore", divide="ignore"):
                cols[dst][start:n] = np.where(count > 0, total / np.maximum(count, 1), _NAN)
