"""Values of the existing gym_gui's telemetry rows as ours: episode ids, blobs, flags (Qt-free, pure).

Used by ``legacy_convert`` (the mapping is in its docstring and docs/schema.md). Any thread.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from gym_gui.telemetry.data_model import format_episode_id
from gym_gui.telemetry.json_text import dump_json

__all__ = ["bounded", "default_episode_id", "flag_or_none", "json_text_or_none", "parse_episode_id", "plain"]

_PLAIN_ID = re.compile(r"(.+)-ep([0-9]+)", re.DOTALL)
_WORKER_ID = re.compile(r"(.+)-w([^-]+)-ep([0-9]+)", re.DOTALL)
_INT_MIN, _INT_MAX = -(1 << 63), (1 << 63) - 1


def default_episode_id(run_id: str, episode_index: int | None, worker_id: Any = None) -> str | None:
    """The id our schema derives for a row (``format_episode_id``), None for a negative or no index."""
    if type(episode_index) is not int or episode_index < 0:
        return None
    return format_episode_id(run_id, episode_index, worker_id if type(worker_id) is str and worker_id else None)


def parse_episode_id(episode_id: Any, run_id: str | None = None,
                     worker_id: str | None = None) -> tuple[str | None, int | None]:
    """``(run_id, episode_index)`` read from an app episode id, each None when it cannot be told.

    A known ``run_id``/``worker_id`` (the row's columns) settles ids that read both ways.
    """
    if type(episode_id) is not str:
        return None, None
    if run_id:
        for prefix in (f"{run_id}-ep", f"{run_id}-w{worker_id}-ep" if worker_id else None):
            if prefix and episode_id.startswith(prefix) and episode_id[len(prefix):].isascii() \
                    and episode_id[len(prefix):].isdigit():
                return run_id, bounded(int(episode_id[len(prefix):]))
    if worker_id:
        head, sep, tail = episode_id.rpartition(f"-w{worker_id}-ep")
        if sep and head and tail.isascii() and tail.isdigit():
            return head, bounded(int(tail))
    match = _WORKER_ID.fullmatch(episode_id) or _PLAIN_ID.fullmatch(episode_id)
    if match is None:
        return None, None
    return match.group(1), bounded(int(match.groups()[-1]))


def bounded(value: int) -> int | None:
    """``value`` when SQLite's INTEGER holds it, else None."""
    return value if _INT_MIN <= value <= _INT_MAX else None


def plain(value: Any) -> Any:
    """A column value as a JSON-able value: bytes as UTF-8 text, or tagged base64 when not UTF-8."""
    if isinstance(value, (bytes, memoryview)):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return {"__legacy_bytes_base64__": base64.b64encode(raw).decode("ascii")}
    return value


def json_text_or_none(value: Any) -> str | None:
    """The JSON text a blob holds, verbatim, or None when it holds no UTF-8 JSON."""
    if isinstance(value, (bytes, memoryview)):
        try:
            text = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return None
    elif type(value) is str:
        text = value
    elif type(value) is int or type(value) is float:
        return dump_json(value)
    else:
        return None
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return None
    return text


def flag_or_none(value: Any) -> int | None:
    """A 0/1 flag as it is, anything else None."""
    return value if type(value) is int and value in (0, 1) else None
