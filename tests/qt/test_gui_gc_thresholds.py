"""The window's collector thresholds: short young collections (they hold the GIL, so they block the GUI thread)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from gym_gui.gc_tuning import DEFAULT_THRESHOLDS, ENV_VAR, GUI_THRESHOLDS, tune_gc


@pytest.fixture(autouse=True)
def restore_thresholds(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    before = gc.get_threshold()
    monkeypatch.delenv(ENV_VAR, raising=False)
    yield
    gc.set_threshold(*before)


def test_the_window_collects_young_objects_ten_times_as_often_as_the_headless_run() -> None:
    assert tune_gc(default=GUI_THRESHOLDS) == GUI_THRESHOLDS == gc.get_threshold()
    assert GUI_THRESHOLDS[0] * 10 == DEFAULT_THRESHOLDS[0] and GUI_THRESHOLDS[1:] == DEFAULT_THRESHOLDS[1:]


def test_the_environment_still_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "2000,3,4")
    assert tune_gc(default=GUI_THRESHOLDS) == (2000, 3, 4)
    monkeypatch.setenv(ENV_VAR, "nonsense")
    assert tune_gc(default=GUI_THRESHOLDS) == GUI_THRESHOLDS
