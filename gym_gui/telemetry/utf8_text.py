"""Text that UTF-8 can hold: a Python ``str`` may carry lone surrogates (``"\\udc80"``, from a JSON
``\\udc80`` escape the stdlib decoder keeps, or from ``surrogateescape``), which no UTF-8 stream,
SQLite text or Redis key can store. Pure; any thread."""

from __future__ import annotations

__all__ = ["lone_surrogate_at", "storable_ids"]


def lone_surrogate_at(text: str) -> int | None:
    """The index of the first lone surrogate of ``text``, or None when UTF-8 can hold it all."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return None


def storable_ids(run_id: str, agent_id: str | None) -> bool:
    """True when a run id and an agent id (None: the stream has none) can both be stored as text."""
    return lone_surrogate_at(run_id) is None and (agent_id is None or lone_surrogate_at(agent_id) is None)
