"""The rows after a decimated curve's last complete bin: a few drawn as they are, more folded into
one min/max stroke and the last row, so a drawn curve has at most 2 * bins + TAIL_ROWS + 1 points
whatever the bin size, and keeps every extreme and its last point."""

from __future__ import annotations

import numpy as np

from gym_gui.live.decimate import TAIL_ROWS, PeakDecimator, decimate_range


def series(rows: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.arange(rows, dtype=np.float64)
    return x, np.sin(x * 0.37)


def test_a_long_tail_becomes_one_stroke_and_the_last_row() -> None:
    x, y = series(1_000_000 + 1_500)  # 2,048 rows per bin at 512 bins: 1,500 rows after the last bin
    y[-700] = 9.0  # a spike in the tail
    y[-600] = -9.0
    dec = PeakDecimator(max_bins=512)
    dec.update(x, y)
    dx, dy = dec.arrays()
    assert dec.bin_rows == 2048
    assert len(dx) <= 2 * 512 + TAIL_ROWS + 1
    assert dx[-1] == x[-1] and dy[-1] == y[-1]  # the line ends at the newest point
    assert dy.max() == 9.0 and dy.min() == -9.0  # the tail's extremes are drawn
    assert np.all(np.diff(dx) >= 0)


def test_a_short_tail_is_drawn_as_it_is() -> None:
    x, y = series(2048 * 512 + TAIL_ROWS)
    dec = PeakDecimator(max_bins=512)
    dec.update(x, y)
    dx, dy = dec.arrays()
    assert dx[-TAIL_ROWS:].tolist() == x[-TAIL_ROWS:].tolist() and dy[-TAIL_ROWS:].tolist() == y[-TAIL_ROWS:].tolist()


def test_live_appends_keep_the_point_count_bounded_and_every_extreme() -> None:
    x, y = series(600_000)
    dec = PeakDecimator(max_bins=512)
    for end in range(500_000, 600_001, 20_000):
        dec.update(x[:end], y[:end])
        dx, dy = dec.arrays()
        assert len(dx) <= 2 * 512 + TAIL_ROWS + 1
        assert dy.max() == y[:end].max() and dy.min() == y[:end].min() and dx[-1] == end - 1


def test_a_zoomed_out_range_has_a_bounded_tail_too() -> None:
    x, y = series(1_000_000)
    y[999_990] = 5.0
    dx, dy = decimate_range(x, y, (0.0, 999_999.0), max_bins=600)
    assert len(dx) <= 2 * 600 + TAIL_ROWS + 1 and dy.max() == 5.0 and dx[-1] == 999_999
