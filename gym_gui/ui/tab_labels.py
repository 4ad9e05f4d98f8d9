"""Short run labels for tab titles: ``FrozenLake #3 · agent-1 · Online`` (Qt-free)."""

from __future__ import annotations

import re

__all__ = ["TabLabels", "short_env_name", "tab_title"]

_VERSION = re.compile(r"-v\d+$")
SEPARATOR = " \u00b7 "


def short_env_name(env_id: str | None) -> str:
    """``FrozenLake-v1`` -> ``FrozenLake``, ``ns/Taxi-v3`` -> ``Taxi``; ``Run`` when unknown. Any thread."""
    if not env_id:
        return "Run"
    return _VERSION.sub("", env_id.rsplit("/", 1)[-1]) or env_id


def tab_title(label: str, agent_id: str, kind: str) -> str:
    """``{label} · {agent} · {kind}``; an empty agent id reads ``no agent``. Any thread."""
    return SEPARATOR.join((label, agent_id or "no agent", kind))


class TabLabels:
    """One label per run, fixed once given: the env's short name and a per-env counter in the order
    runs get their first tab. Thread of its owner (the GUI thread)."""

    def __init__(self) -> None:
        self._labels: dict[str, str] = {}
        self._counts: dict[str, int] = {}

    def label(self, run_id: str, env_id: str | None) -> str:
        """The run's label (given on the first call). Owner's thread; never blocks."""
        known = self._labels.get(run_id)
        if known is not None:
            return known
        name = short_env_name(env_id)
        self._counts[name] = self._counts.get(name, 0) + 1
        label = self._labels[run_id] = f"{name} #{self._counts[name]}"
        return label

    def known(self, run_id: str) -> str | None:
        """The run's label if it has one. Owner's thread."""
        return self._labels.get(run_id)
