"""The replay's reward strip draws the min/max bins of its steps (every spike visible), a long
episode converted and binned off the GUI thread, a zoom binned again down to the steps themselves,
a newer episode replacing an older one still being binned. Real RewardStrips under pytest-qt."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

from gym_gui.live import curve_jobs
from gym_gui.live.decimate import TAIL_ROWS
from gym_gui.ui.plots import reward_strip
from gym_gui.ui.plots.reward_strip import STRIP_OFFLOAD_ROWS, RewardStrip

LONG = 300_000


def make_strip(qtbot: Any) -> RewardStrip:
    strip = RewardStrip()
    qtbot.addWidget(strip)
    strip.resize(800, 120)
    strip.show()
    qtbot.waitExposed(strip)
    return strip


def long_rewards() -> list[float | None]:
    rewards: list[float | None] = [float(v) for v in np.sin(np.arange(LONG) * 0.37)]
    rewards[123_457] = 50.0  # one step's spike
    rewards[222_222] = -20.0
    rewards[1000] = None  # no reward stored: a gap
    return rewards


def test_a_short_episode_is_drawn_step_by_step(qtbot: Any) -> None:
    strip = make_strip(qtbot)
    strip.set_rewards([0.0, 1.0, None, 3.0])
    assert not strip.busy()
    assert np.array_equal(strip.rewards(), [0.0, 1.0, np.nan, 3.0], equal_nan=True)
    x, y = strip.drawn()
    assert x.tolist() == [0, 1, 2, 3] and np.array_equal(y, [0.0, 1.0, np.nan, 3.0], equal_nan=True)
    assert strip.return_curve.yData.tolist() == [0.0, 1.0, 1.0, 4.0]


def test_a_long_episode_is_binned_off_the_gui_thread_keeping_every_extreme(
        qtbot: Any, monkeypatch: Any) -> None:
    threads: list[str] = []
    original = curve_jobs.strip_arrays

    def observed(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return original(*args, **kwargs)

    monkeypatch.setattr(reward_strip, "strip_arrays", observed)
    strip = make_strip(qtbot)
    rewards = long_rewards()
    assert len(rewards) > STRIP_OFFLOAD_ROWS
    strip.set_rewards(rewards)
    assert strip.busy() and len(strip.rewards()) == 0  # set_rewards returned before converting
    qtbot.waitUntil(lambda: not strip.busy() and len(strip.rewards()) == LONG, timeout=20_000)
    assert threads == ["reward-strip"]
    x, y = strip.drawn()
    bins = max(reward_strip.STRIP_BINS, int(strip.plot_widget.getPlotItem().getViewBox().width()))
    assert len(x) <= 2 * bins + TAIL_ROWS + 1
    assert np.nanmax(y) == 50.0 and np.nanmin(y) == -20.0  # every spike is drawn
    assert x[0] == 0 and x[-1] == LONG - 1
    assert strip.return_curve.yData[-1] == pytest.approx(np.nansum(np.array(rewards, dtype=float)))


def test_zooming_a_long_episode_bins_the_steps_in_view_down_to_the_steps(qtbot: Any) -> None:
    strip = make_strip(qtbot)
    rewards = long_rewards()
    strip.set_rewards(rewards)
    qtbot.waitUntil(lambda: not strip.busy() and len(strip.rewards()) == LONG, timeout=20_000)
    view_box = strip.plot_widget.getPlotItem().getViewBox()
    view_box.setXRange(123_400, 123_500, padding=0)  # as a zoom does
    qtbot.waitUntil(lambda: len(strip.drawn()[0]) < 200, timeout=10_000)
    x, y = strip.drawn()
    first, last = int(x[0]), int(x[-1])
    assert first <= 123_400 and last >= 123_500 and x.tolist() == list(range(first, last + 1))
    assert y.tolist() == rewards[first: last + 1] and 50.0 in y.tolist()


def test_a_newer_episode_replaces_one_still_being_binned(qtbot: Any) -> None:
    strip = make_strip(qtbot)
    strip.set_rewards(long_rewards())
    strip.set_rewards([2.0, 4.0])  # another episode selected meanwhile
    assert strip.rewards().tolist() == [2.0, 4.0]
    qtbot.waitUntil(lambda: not strip.busy(), timeout=20_000)
    assert strip.rewards().tolist() == [2.0, 4.0] and strip.drawn()[1].tolist() == [2.0, 4.0]
    assert strip.stop(5) and not strip.worker.thread_alive()
