"""Environment id resolution across Gymnasium versions. Qt-free.

Gymnasium renamed some ToyText ids between releases (Taxi-v3 -> Taxi-v4 in 1.x, CliffWalking-v0 ->
CliffWalking-v1). Workers accept any of the names and use the one the installed Gymnasium has, so
a command line written for one version keeps working on the other.
"""

from __future__ import annotations

import re

import gymnasium as gym

__all__ = ["ENV_ALIASES", "resolve_env_id"]

#: Equivalent ids, tried in order when the requested one is not registered.
ENV_ALIASES: dict[str, tuple[str, ...]] = {
    "Taxi-v3": ("Taxi-v4",),
    "Taxi-v4": ("Taxi-v3",),
    "CliffWalking-v0": ("CliffWalking-v1",),
    "CliffWalking-v1": ("CliffWalking-v0",),
}

_VERSIONED = re.compile(r"^(?P<name>[A-Za-z0-9_]+)-v(?P<version>\d+)$")


def resolve_env_id(requested: str) -> str:
    """The registered id for ``requested``; raise ``KeyError`` with a message if there is none.

    Accepts registered ids, the aliases in :data:`ENV_ALIASES` and bare names such as ``"Taxi"``
    (the highest registered version). Any thread, never blocks.
    """
    registry = gym.registry
    if requested in registry:
        return requested
    for alt in ENV_ALIASES.get(requested, ()):
        if alt in registry:
            return alt
    if "-v" not in requested and "/" not in requested:
        versions = []
        for env_id in registry:
            m = _VERSIONED.match(env_id)
            if m and m.group("name") == requested:
                versions.append((int(m.group("version")), env_id))
        if versions:
            return max(versions)[1]
    raise KeyError(f"unknown environment id {requested!r} (gymnasium {gym.__version__})")
