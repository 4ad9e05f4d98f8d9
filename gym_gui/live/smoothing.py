"""ema_smooth: TensorBoard's curve smoothing (a debiased exponential moving average), and
rolling_mean_tail: a rolling mean over a window of rows, both vectorised. Qt-free, pure.

``weight`` is TensorBoard's slider value in [0, 1): 0 leaves the curve as it is, 0.9 averages over
about the last 10 points. NaN points are skipped (they neither move the average nor get a value:
they stay NaN). The debias divides by ``1 - weight ** k`` after k finite points, so the curve does
not start at 0. Computed in blocks with closed forms (no Python loop per point): a million points
take a few milliseconds.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["ema_smooth", "rolling_mean_tail"]


def _block_size(weight: float) -> int:
    # weight ** -block must stay far from float64's range (1e308) for the closed form.
    return max(1, min(1024, int(250 / max(1e-9, -math.log10(weight)))))


def ema_smooth(values: np.ndarray, weight: float) -> np.ndarray:
    """The smoothed copy of ``values`` (a new float64 array of the same length). Pure."""
    values = np.asarray(values, dtype=np.float64)
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"weight must be in [0, 1), got {weight}")
    out = np.full(len(values), np.nan)
    finite = np.isfinite(values)
    v = values[finite]
    n = len(v)
    if n == 0:
        return out
    if weight == 0.0:
        out[finite] = v
        return out
    w = weight
    smoothed = np.empty(n)
    block = min(_block_size(w), n)
    k = np.arange(block, dtype=np.float64)
    pw, inv, pw1 = w ** k, w ** -k, w ** (k + 1)  # the same for every block
    last = 0.0
    for start in range(0, n, block):
        chunk = v[start:start + block]
        m = len(chunk)
        # y_j = w^(j+1) * last + (1 - w) * sum_{i<=j} w^(j-i) v_i
        y = pw1[:m] * last + (1.0 - w) * (np.cumsum(chunk * inv[:m]) * pw[:m])
        smoothed[start:start + m] = y
        last = float(y[-1])
    debias = 1.0 - w ** np.arange(1, n + 1, dtype=np.float64)
    out[finite] = smoothed / debias
    return out


def rolling_mean_tail(values: np.ndarray, window: int, start: int = 0) -> np.ndarray:
    """The mean of the finite values among the last ``window`` rows up to and including each row
    ``start .. len(values) - 1`` (NaN where that window holds none), as a new array of
    ``len(values) - start`` rows. Reads only rows ``start - window ..`` (a tail costs its length plus
    the window, not the whole series). Pure; any thread."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    n = len(values)
    if start >= n:
        return np.empty(0)
    lo = max(0, start - window)  # rows whose values enter the windows of rows start..n-1
    part = np.asarray(values[lo:n], dtype=np.float64)
    valid = ~np.isnan(part)
    csum = np.empty(n - lo + 1)  # prefix sums of the finite values, and their counts
    csum[0] = 0.0
    np.cumsum(np.where(valid, part, 0.0), out=csum[1:])
    ccount = np.empty(n - lo + 1, dtype=np.intp)
    ccount[0] = 0
    np.cumsum(valid, out=ccount[1:])
    # The prefix lengths up to and including each row are first..end-1; the window's start is
    # 0 for the prefixes up to ``window`` long (their sums as they are), the prefix length less
    # ``window`` after: slices.
    first, end = start - lo + 1, n - lo + 1
    zeros = first + max(0, min(end, window + 1) - first)
    left = slice(zeros - window, max(zeros, end) - window)
    total, count = np.empty(end - first), np.empty(end - first, dtype=np.intp)
    total[:zeros - first], count[:zeros - first] = csum[first:zeros], ccount[first:zeros]
    np.subtract(csum[zeros:end], csum[left], out=total[zeros - first:])
    np.subtract(ccount[zeros:end], ccount[left], out=count[zeros - first:])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)
