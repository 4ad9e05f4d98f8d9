"""Min/max-preserving decimation of a curve, incremental (PeakDecimator) or for a visible range
(decimate_range). Qt-free.

A curve of a million points cannot be handed to the painter whole: pyqtgraph's own downsampling
re-reads every point per refresh (O(n) on the GUI thread). Both forms here keep, per bin of
consecutive rows, the minimum and the maximum of ``y`` (NaNs ignored) at the bin's first ``x``, and
draw each bin as a vertical stroke from its minimum to its maximum (pyqtgraph's "peak" mode): every
episode is in some bin, so every spike stays visible. The rows after the last complete bin (fewer
than a bin) are drawn as they are when there are at most ``TAIL_ROWS`` of them, else as one more
stroke (their minimum and maximum at their first x) and their last row (the line ends at the last
point): a drawn curve has at most ``2 * bins + TAIL_ROWS + 1`` points.

``PeakDecimator`` keeps the bins of a whole series that grows at its end: bins double in size
(pairs merged) when there are more than ``max_bins``, so an update costs O(new rows + bins), never
O(n). ``update(x, y, changed_from)``: ``x`` and ``y`` are the full series (views are fine); rows
before the previous length are assumed unchanged unless ``changed_from`` says from which row they
changed: the bins from that row on are refolded (0: a rebuild). One owner thread (which may be a
worker that builds it and hands it over).

``decimate_range`` clips to a visible x-range (x sorted ascending) and bins just those rows:
zoomed in far enough, it returns the rows themselves, so the full data is there when zooming in.
Pure; any thread.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["TAIL_ROWS", "PeakDecimator", "decimate_range", "visible_rows"]

#: Rows after the last complete bin drawn as they are; more are folded into one stroke.
TAIL_ROWS = 8


def _bin_reduce(y: np.ndarray, bin_rows: int) -> tuple[np.ndarray, np.ndarray]:
    blocks = y.reshape(-1, bin_rows)
    with np.errstate(invalid="ignore"):
        return np.fmin.reduce(blocks, axis=1), np.fmax.reduce(blocks, axis=1)


def _strokes(bx: np.ndarray, lo: np.ndarray, hi: np.ndarray, tx: np.ndarray,
             ty: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two points per bin (its min then its max at its first x), then the tail rows (module doc)."""
    if len(ty) > TAIL_ROWS:
        with np.errstate(invalid="ignore"):
            t_lo, t_hi = np.fmin.reduce(ty), np.fmax.reduce(ty)
        tx, ty = np.array((tx[0], tx[0], tx[-1])), np.array((t_lo, t_hi, ty[-1]))
    ys = np.empty(2 * len(lo))
    ys[0::2], ys[1::2] = lo, hi
    return np.concatenate((np.repeat(bx, 2), tx)), np.concatenate((ys, ty))


class PeakDecimator:
    """Min/max per bin of one growing series (module doc). Owner's thread; no method blocks."""

    def __init__(self, max_bins: int = 4096) -> None:
        if max_bins < 2:
            raise ValueError("max_bins must be >= 2")
        self.max_bins = max_bins
        self.bin_rows = 1
        self._done_rows = 0  # rows folded into complete bins
        self._x = np.empty(0)
        self._lo = np.empty(0)
        self._hi = np.empty(0)
        self._out: tuple[np.ndarray, np.ndarray] = (np.empty(0), np.empty(0))
        self.rebuilds = 0  # updates that started from row 0
        self.rows = 0  # the series' length at the last update

    def update(self, x: np.ndarray, y: np.ndarray, changed_from: int | None = None) -> None:
        """Fold in the rows added since the last call, and refold from ``changed_from`` when rows
        before the end changed (module doc). Owner's thread; O(new or changed rows + bins)."""
        n = len(y)
        if changed_from is not None and changed_from < self._done_rows:
            keep = changed_from // self.bin_rows
            self._x, self._lo, self._hi = self._x[:keep], self._lo[:keep], self._hi[:keep]
            self._done_rows = keep * self.bin_rows
        if n < self._done_rows or self._done_rows == 0:
            if self.rows or changed_from is not None:
                self.rebuilds += 1
            self.bin_rows = 1
            while n // self.bin_rows > self.max_bins:
                self.bin_rows *= 2
            self._done_rows = 0
            self._x, self._lo, self._hi = np.empty(0), np.empty(0), np.empty(0)
        while True:
            b = self.bin_rows
            full = (n - self._done_rows) // b * b
            if full:
                seg = slice(self._done_rows, self._done_rows + full)
                lo, hi = _bin_reduce(y[seg], b)
                self._x = np.concatenate((self._x, x[seg][::b]))
                self._lo = np.concatenate((self._lo, lo))
                self._hi = np.concatenate((self._hi, hi))
                self._done_rows += full
            if len(self._lo) <= self.max_bins:
                break
            if len(self._lo) % 2:  # the odd last bin goes back to the pending rows
                self._x, self._lo, self._hi = self._x[:-1], self._lo[:-1], self._hi[:-1]
                self._done_rows -= b
            with np.errstate(invalid="ignore"):  # twice the rows per bin: merge pairs
                self._lo = np.fmin(self._lo[0::2], self._lo[1::2])
                self._hi = np.fmax(self._hi[0::2], self._hi[1::2])
            self._x = self._x[0::2]
            self.bin_rows = 2 * b
        if self.bin_rows == 1:  # a row per bin: the rows themselves (views)
            self._out = (x[:n], y[:n])
        else:
            tail = slice(self._done_rows, n)
            self._out = _strokes(self._x, self._lo, self._hi, x[tail], y[tail])
        self.rows = n

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` to draw: two points per bin (its min then its max at its first x), then the
        rows not in a complete bin as they are; up to ``max_bins`` rows, the rows themselves (views
        of the arrays given). Owner's thread."""
        return self._out


def visible_rows(x: np.ndarray, x_range: tuple[float, float] | None) -> tuple[int, int]:
    """Rows ``[lo, hi)`` of a sorted ``x`` within ``x_range``, plus one row beyond each edge (so the
    line reaches the border); all rows for None. Pure."""
    n = len(x)
    if x_range is None or n == 0:
        return 0, n
    lo = int(np.searchsorted(x, x_range[0], side="left"))
    hi = int(np.searchsorted(x, x_range[1], side="right"))
    return max(0, lo - 1), min(n, hi + 1)


def decimate_range(x: np.ndarray, y: np.ndarray, x_range: tuple[float, float] | None = None,
                   max_bins: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """The rows of ``(x, y)`` within ``x_range`` (None: all), as they are when there are at most
    ``2 * max_bins``, else as at most ``max_bins`` min/max strokes and a tail of fewer rows than a
    bin (module doc). New arrays. Pure; any thread; O(visible rows)."""
    lo, hi = visible_rows(x, x_range)
    rows = hi - lo
    if rows <= 2 * max_bins:
        return np.array(x[lo:hi], dtype=np.float64), np.array(y[lo:hi], dtype=np.float64)
    b = math.ceil(rows / max_bins)
    full = rows // b * b
    mins, maxs = _bin_reduce(np.asarray(y[lo: lo + full], dtype=np.float64), b)
    return _strokes(np.asarray(x[lo: lo + full: b], dtype=np.float64), mins, maxs,
                    np.asarray(x[lo + full: hi], dtype=np.float64), np.asarray(y[lo + full: hi], dtype=np.float64))
