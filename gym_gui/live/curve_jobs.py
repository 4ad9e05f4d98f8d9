"""The plot worker's jobs over array views of a CurveData: whole-series decimators, a visible
range's bins; and the reward strip's arrays of one episode. Qt-free, pure apart from reading the
views (rows appends do not touch, see ``live.curves``); each checks its token between series and
returns None once cancelled.
"""

from __future__ import annotations

import math
from typing import Mapping, NamedTuple, Sequence

import numpy as np

from gym_gui.live.curves import CurveData
from gym_gui.live.decimate import PeakDecimator, decimate_range
from gym_gui.live.plot_jobs import CancelToken

__all__ = ["StripArrays", "Views", "build_decimators", "decimate_views", "strip_arrays", "strip_view", "wall_offset"]

#: Series name -> (x, y) views.
Views = Mapping[str, tuple[np.ndarray, np.ndarray]]


def build_decimators(views: Views, max_bins: int, token: CancelToken) -> dict[str, PeakDecimator] | None:
    """A PeakDecimator per series, fed its rows. Any thread; O(rows)."""
    out: dict[str, PeakDecimator] = {}
    for name, (x, y) in views.items():
        if token.cancelled():
            return None
        decimator = PeakDecimator(max_bins=max_bins)
        decimator.update(x, y)
        out[name] = decimator
    return out


def decimate_views(views: Views, x_range: tuple[float, float], max_bins: int,
                   token: CancelToken) -> dict[str, tuple[np.ndarray, np.ndarray]] | None:
    """Each series' rows within ``x_range``, binned to at most ``max_bins`` min/max strokes (the
    rows themselves when fewer). Any thread; O(visible rows)."""
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, (x, y) in views.items():
        if token.cancelled():
            return None
        out[name] = decimate_range(x, y, x_range, max_bins)
    return out


def wall_offset(data: CurveData) -> float:
    """Epoch seconds of the stream's first point (episode or heartbeat): the wall-time axis's zero.
    The data's owner thread; O(series)."""
    firsts = [data.series("return", "wall")[0][:1]]
    firsts += [data.series(n, "wall")[0][:1] for n in data.series_names() if n.startswith("hb:")][:1]
    values = np.concatenate(firsts)
    values = values[np.isfinite(values)]
    return float(values.min()) if len(values) else 0.0


class StripArrays(NamedTuple):
    """An episode's rewards as the reward strip draws them: every step's reward and the return so
    far (full resolution, kept for zooming), their min/max bins for ``x_range``, and the y-bounds
    of both series (a constant reward gets a band of 1 around it)."""

    values: np.ndarray
    returns: np.ndarray
    rewards_xy: tuple[np.ndarray, np.ndarray]
    returns_xy: tuple[np.ndarray, np.ndarray]
    y_bounds: tuple[float, float]


def strip_arrays(rewards: Sequence[float | None] | np.ndarray, x_range: tuple[float, float] | None,
                 max_bins: int, token: CancelToken | None = None) -> StripArrays | None:
    """One reward per scrubber position (None: none stored, a gap) as ``StripArrays``; None once
    ``token`` is cancelled. Any thread; O(steps)."""
    if isinstance(rewards, np.ndarray):
        values = np.asarray(rewards, dtype=np.float64)
    else:
        values = np.fromiter((math.nan if r is None else float(r) for r in rewards), np.float64, len(rewards))
    if token is not None and token.cancelled():
        return None
    returns = np.cumsum(np.nan_to_num(values, nan=0.0))
    shown = np.concatenate((values[np.isfinite(values)], returns))
    low, high = (float(shown.min()), float(shown.max())) if len(shown) else (0.0, 1.0)
    if high - low < 1e-9:  # a constant reward (e.g. all 0): a readable band around it
        low, high = low - 1.0, high + 1.0
    rewards_xy, returns_xy = strip_view(values, returns, x_range, max_bins)
    return StripArrays(values, returns, rewards_xy, returns_xy, (low, high))


def strip_view(values: np.ndarray, returns: np.ndarray, x_range: tuple[float, float] | None,
               max_bins: int) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The rewards and returns within ``x_range`` (scrubber positions), min/max-binned
    (``decimate_range``). Any thread; O(visible steps)."""
    x = np.arange(len(values), dtype=np.float64)
    return decimate_range(x, values, x_range, max_bins), decimate_range(x, returns, x_range, max_bins)
