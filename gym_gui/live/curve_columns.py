"""Columns: named float64 columns of one length in buffers that double when full. Qt-free.

Rows ``[0, n)`` are the data; appends write rows ``>= n`` (so a view of ``[0, n)`` handed to a
reader thread stays valid: its rows do not move), growth copies into new buffers (the old ones
stay alive while a view holds them). Rewrites of rows ``< n`` are the owner's business: CurveData
bumps its ``rewritten`` counter and logs the first changed row so readers drop stale results.
One owner thread.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

__all__ = ["INITIAL_CAPACITY", "Columns"]

INITIAL_CAPACITY = 256


class Columns:
    """Named float64 columns of one length (module doc). Owner's thread; no method blocks."""

    def __init__(self, names: Sequence[str]) -> None:
        self.n = 0
        self._cap = INITIAL_CAPACITY
        self.cols: dict[str, np.ndarray] = {name: np.full(self._cap, math.nan) for name in names}

    def add_column(self, name: str) -> np.ndarray:
        """A new all-NaN column. Owner's thread."""
        col = np.full(self._cap, math.nan)
        self.cols[name] = col
        return col

    def reserve(self, extra: int) -> None:
        """Room for ``extra`` more rows (new buffers, twice as large, when full). Owner's thread."""
        need = self.n + extra
        if need <= self._cap:
            return
        cap = self._cap
        while cap < need:
            cap *= 2
        for name, old in self.cols.items():
            new = np.full(cap, math.nan)
            new[: self.n] = old[: self.n]
            self.cols[name] = new
        self._cap = cap

    def view(self, name: str) -> np.ndarray:
        """Rows ``[0, n)`` of a column (a view, no copy). Owner's thread."""
        return self.cols[name][: self.n]
