"""Fixtures for the worker tests."""

from __future__ import annotations

from typing import Callable, Iterator

import pytest

from worker_helpers import LiveWorker


@pytest.fixture
def live_worker() -> Iterator[Callable[..., LiveWorker]]:
    started: list[LiveWorker] = []

    def start(module: str, *args: str) -> LiveWorker:
        w = LiveWorker(module, *args)
        started.append(w)
        return w

    yield start
    for w in started:
        w.kill()
