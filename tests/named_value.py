"""A value known only by its name, for tests: its repr is that name in every process, so the test
ids that show it are the same in each pytest-xdist worker (``object()`` shows its address)."""

from __future__ import annotations


class NamedValue:
    """A value (a sentinel, or something JSON has no form for) whose repr is ``name``."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name
