"""Shared test set-up: this folder is on sys.path (rootdir conftest, rootdir-relative imports),
so tests import helpers such as json_compare and event_factory.

Fixtures for every test: a store in tmp_path, a private bus, and the event factory.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from event_factory import EventFactory
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore


@pytest.fixture
def factory() -> type[EventFactory]:
    return EventFactory


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "telemetry" / "runs.sqlite"


@pytest.fixture
def store(db_path: Path) -> Iterator[TelemetrySQLiteStore]:
    s = TelemetrySQLiteStore(db_path)
    yield s
    s.close()


@pytest.fixture
def bus() -> RunBus:
    return RunBus()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """In a pytest-xdist worker, captured text that holds lone surrogates (the tests of invalid
    UTF-8 log such names) is sent to the controller with them escaped: its channel encodes UTF-8
    strictly and would otherwise end the worker."""
    outcome = yield
    if hasattr(item.config, "workerinput"):
        report = outcome.get_result()
        report.sections = [(title, text.encode("utf-8", "backslashreplace").decode("utf-8"))
                           for title, text in report.sections]
