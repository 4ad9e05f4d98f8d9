"""PeakDecimator: an append-only series kept as min/max pairs per bin of rows, updated incrementally. Qt-free.

A curve of a million points cannot be handed to the painter whole at every tick: pyqtgraph's own
downsampling re-reads every point per refresh (O(n) per tick). This keeps, for one series, the
minimum and maximum of ``y`` per bin of ``bin_rows`` consecutive rows (NaNs ignored), with the
first ``x`` of each bin; bins double in size (pairs merged) when there are more than ``max_bins``,
so an update costs O(new rows + bins), never O(n). The output (``arrays``) draws each bin as a
vertical stroke from its minimum to its maximum, pyqtgraph's "peak" mode: spikes stay visible.

``update(x, y, rewritten)``: ``x`` and ``y`` are the full series (views are fine); rows before the
previous length are assumed unchanged unless ``rewritten`` differs from the previous call's (a
late episode inserted, a window change): then it rebuilds. One owner thread.
"""

from __future__ import annotations

import numpy as np

__all__ = ["PeakDecimator"]


def _bin_reduce(y: np.ndarray, bin_rows: int) -> tuple[np.ndarray, np.ndarray]:
    blocks = y.reshape(-1, bin_rows)
    with np.errstate(invalid="ignore"):
        return np.fmin.reduce(blocks, axis=1), np.fmax.reduce(blocks, axis=1)


class PeakDecimator:
    """Min/max per bin of one series (module doc). Owner's thread; no method blocks."""

    def __init__(self, max_bins: int = 4096) -> None:
        if max_bins < 2:
            raise ValueError("max_bins must be >= 2")
        self.max_bins = max_bins
        self.bin_rows = 1
        self._done_rows = 0  # rows folded into complete bins
        self._x = np.empty(0)
        self._lo = np.empty(0)
        self._hi = np.empty(0)
        self._rewritten: object = None
        self._out: tuple[np.ndarray, np.ndarray] = (np.empty(0), np.empty(0))
        self.rebuilds = 0

    def update(self, x: np.ndarray, y: np.ndarray, rewritten: object = None) -> None:
        """Fold in the rows added since the last call (or rebuild, see the module doc). Owner's thread."""
        n = len(y)
        if rewritten != self._rewritten or n < self._done_rows:
            self._rewritten = rewritten
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
        tail = slice(self._done_rows, n)
        tx, ty = x[tail], y[tail]
        xs = np.repeat(self._x, 2)
        ys = np.empty(2 * len(self._lo))
        ys[0::2], ys[1::2] = self._lo, self._hi
        self._out = (np.concatenate((xs, tx)), np.concatenate((ys, ty)))

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` to draw: two points per bin (its min then its max at its first x), then the
        rows not in a complete bin as they are. Owner's thread."""
        return self._out
