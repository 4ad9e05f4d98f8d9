"""compare_arrays: what a run comparison draws, computed off the GUI thread. Qt-free.

For each stream (one run's agent) and the chosen metric, x-axis and smoothing weight: the series
(wall time counted from the stream's first episode), its TensorBoard smoothing over the whole
series (``ema_smooth``: smoothing needs every point, so it runs before decimation), then both the
raw and the smoothed curve clipped to the visible x-range and decimated to min/max bins
(``decimate_range``: every episode is in a bin; zoomed in, the rows themselves). Smoothed series
are kept in a cache the caller owns, keyed by stream, metric, axis and weight, so a zoom or pan
only re-decimates. The CurveData read are stored runs nobody changes.
"""

from __future__ import annotations

from typing import Hashable, Mapping, NamedTuple

import numpy as np

from gym_gui.live.curves import CurveData
from gym_gui.live.decimate import decimate_range
from gym_gui.live.plot_jobs import CancelToken
from gym_gui.live.smoothing import ema_smooth

__all__ = ["CompareArrays", "StreamArrays", "compare_arrays"]

#: (stream key, metric, axis, weight) -> (x, smoothed y) of the whole series.
SmoothCache = dict[tuple[Hashable, str, str, float], tuple[np.ndarray, np.ndarray]]


class StreamArrays(NamedTuple):
    """One stream's curves as drawn: raw and smoothed, each decimated for the range."""

    raw_x: np.ndarray
    raw_y: np.ndarray
    smooth_x: np.ndarray
    smooth_y: np.ndarray


class CompareArrays(NamedTuple):
    """A comparison's drawing: per stream arrays, the request they answer, new cache entries."""

    streams: dict[Hashable, StreamArrays]
    metric: str
    axis: str
    weight: float
    x_range: tuple[float, float] | None
    smoothed: SmoothCache


def compare_arrays(streams: Mapping[Hashable, CurveData], metric: str, axis: str, weight: float,
                   x_range: tuple[float, float] | None, max_bins: int, token: CancelToken,
                   cache: SmoothCache | None = None) -> CompareArrays | None:
    """The drawing of ``streams`` (module doc); None once ``token`` is cancelled. ``cache``: smoothed
    series already computed (read only here; the new ones come back in ``smoothed``). Any thread;
    O(rows) for a new metric, axis or weight, O(visible rows) otherwise."""
    out: dict[Hashable, StreamArrays] = {}
    fresh: SmoothCache = {}
    for key, data in streams.items():
        if token.cancelled():
            return None
        cache_key = (key, metric, axis, weight)
        known = (cache or {}).get(cache_key)
        if known is None:
            x, y = data.series(metric, axis)
            if axis == "wall" and len(x) and np.isfinite(x).any():
                x = x - np.nanmin(x)
            known = (x, ema_smooth(y, weight) if weight > 0 else y)
            fresh[cache_key] = known
        x, smooth = known
        y = data.series(metric, axis)[1]
        rx, ry = decimate_range(x, y, x_range, max_bins)
        sx, sy = decimate_range(x, smooth, x_range, max_bins)
        out[key] = StreamArrays(rx, ry, sx, sy)
    return CompareArrays(out, metric, axis, weight, x_range, fresh)
