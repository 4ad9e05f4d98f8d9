"""The plot worker's jobs over array views of a CurveData: whole-series decimators, a visible
range's bins. Qt-free, pure apart from reading the views (rows appends do not touch, see
``live.curves``); each checks its token between series and returns None once cancelled.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from gym_gui.live.curves import CurveData
from gym_gui.live.decimate import PeakDecimator, decimate_range
from gym_gui.live.plot_jobs import CancelToken

__all__ = ["Views", "build_decimators", "decimate_views", "wall_offset"]

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
