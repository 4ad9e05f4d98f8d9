"""gc_tuning: the product's collector thresholds and their environment override."""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator

import pytest

import weakref

from gym_gui import gc_tuning
from gym_gui.gc_tuning import (DEFAULT_THRESHOLDS, ENV_VAR, GUI_THRESHOLDS, freeze_long_lived, freeze_startup_objects,
                               freezing, stop_freezing, thaw_and_collect, tune_gc)


@pytest.fixture(autouse=True)
def restore_thresholds(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    before = gc.get_threshold()
    monkeypatch.delenv(ENV_VAR, raising=False)
    yield
    gc.set_threshold(*before)


def test_default_thresholds_are_applied() -> None:
    gc.set_threshold(700, 10, 10)
    assert tune_gc() == DEFAULT_THRESHOLDS == gc.get_threshold()
    assert DEFAULT_THRESHOLDS[0] > 700 and gc.isenabled()


def test_explicit_thresholds_win() -> None:
    assert tune_gc((5000, 5, 5)) == (5000, 5, 5) == gc.get_threshold()


def test_environment_override(monkeypatch: pytest.MonkeyPatch) -> None:
    gc.set_threshold(700, 10, 10)
    monkeypatch.setenv(ENV_VAR, "default")
    assert tune_gc() == (700, 10, 10)
    monkeypatch.setenv(ENV_VAR, " 2000,3,4 ")
    assert tune_gc() == (2000, 3, 4)


@pytest.mark.parametrize("value", ["abc", "1,2", "0,1,1", "1,-1,1"])
def test_malformed_environment_value_is_reported_and_ignored(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, value: str
) -> None:
    monkeypatch.setenv(ENV_VAR, value)
    with caplog.at_level(logging.WARNING, logger="gym_gui.gc_tuning"):
        assert tune_gc() == DEFAULT_THRESHOLDS
    assert ENV_VAR in caplog.text


def test_freezing_moves_what_is_alive_out_of_the_collectors_view() -> None:
    try:
        alive = [[i] for i in range(1000)]
        frozen = freeze_startup_objects()
        assert frozen >= len(alive) and gc.get_freeze_count() == frozen and freezing()
    finally:
        stop_freezing()
    assert gc.get_freeze_count() == 0 and not freezing()


def test_the_window_collects_young_objects_ten_times_as_often_as_the_headless_run() -> None:
    """Short young collections in the window: they hold the GIL, so they block the GUI thread."""
    assert tune_gc(default=GUI_THRESHOLDS) == GUI_THRESHOLDS == gc.get_threshold()
    assert GUI_THRESHOLDS[0] * 10 == DEFAULT_THRESHOLDS[0] and GUI_THRESHOLDS[1:] == DEFAULT_THRESHOLDS[1:]


def test_the_environment_still_wins_over_the_windows_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "2000,3,4")
    assert tune_gc(default=GUI_THRESHOLDS) == (2000, 3, 4)
    monkeypatch.setenv(ENV_VAR, "nonsense")
    assert tune_gc(default=GUI_THRESHOLDS) == GUI_THRESHOLDS


def test_untracked_value_flattens_what_the_collector_would_walk() -> None:
    from gym_gui.gc_tuning import NOT_FLAT, untracked_value

    assert untracked_value(3) == 3 and untracked_value("x") == "x" and untracked_value(None) is None
    assert untracked_value([0.5, [1, 2]]) == (0.5, (1, 2))
    assert untracked_value({"a": 1}) is NOT_FLAT and untracked_value([object()]) is NOT_FLAT
    deep = [[[[[1]]]]]
    assert untracked_value(deep) is NOT_FLAT  # deeper than ``depth``: its text is kept instead
    flat = untracked_value([1.0, (2, "b")])
    for _ in range(3):
        gc.collect()
    assert not gc.is_tracked(flat)


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


def test_long_lived_freezes_are_off_until_the_startup_freeze() -> None:
    assert not freezing()
    assert freeze_long_lived() == 0 and thaw_and_collect() == 0 and gc.get_freeze_count() == 0


def test_a_frozen_cycle_is_kept_until_thawed_then_collected() -> None:
    freed: list[bool] = []
    try:
        freeze_startup_objects()
        node = _Node()
        ref = weakref.ref(node, lambda _r: freed.append(True))
        before = gc.get_freeze_count()
        assert freeze_long_lived() > before  # O(1): no collection, the cycle is frozen alive
        del node
        gc.collect()
        assert ref() is not None and not freed  # frozen garbage: not collected
        thaw_and_collect()
        assert ref() is None and freed and freezing() and gc.get_freeze_count() > 0
    finally:
        stop_freezing()


def test_a_freeze_that_brings_the_frozen_objects_to_the_bound_thaws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gc_tuning, "MAX_FROZEN_BETWEEN_THAWS", 1_000)
    try:
        freeze_startup_objects()
        node = _Node()
        ref = weakref.ref(node)
        freeze_long_lived()
        del node
        for _ in range(20):  # freezes of nothing new do not count
            freeze_long_lived()
        assert ref() is not None
        kept = [_Node() for _ in range(600)]
        freeze_long_lived()  # about 600 objects more: still under the bound
        assert ref() is not None
        kept += [_Node() for _ in range(600)]
        freeze_long_lived()  # over 1,000 since the thaw: a thaw and a full collection
        assert ref() is None and all(n.me is n for n in kept)
        node = _Node()
        ref = weakref.ref(node)
        freeze_long_lived()  # counted from that thaw again
        del node
        freeze_long_lived()
        assert ref() is not None
    finally:
        stop_freezing()


def test_exit_after_freezing_exits_with_the_code_after_atexit_handlers_with_the_heap_frozen() -> None:
    import subprocess
    import sys

    script = ("import atexit, gc\n"
              "from gym_gui.gc_tuning import exit_after_freezing\n"
              "atexit.register(lambda: print('atexit ran, frozen', gc.get_freeze_count() > 1000, flush=True))\n"
              "exit_after_freezing(3)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 3, done.stderr
    assert done.stdout == "atexit ran, frozen True\n"


def test_a_command_interrupted_before_its_own_handlers_exits_130_with_one_line() -> None:
    import subprocess
    import sys

    script = ("import os, signal\n"
              "from gym_gui.command_exit import command_exit\n"
              "def main():\n"
              "    os.kill(os.getpid(), signal.SIGINT)  # Ctrl+C while the command still imports\n"
              "    signal.pause()\n"
              "command_exit(main)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (130, "", "interrupted\n")
