"""One str object per run or agent id seen by the line decoder (Qt-free).

The ids of a read's steps are then one object each, which marshal writes once per frame and the
reader keys its per-stream tables with. Any thread (a benign, bounded cache).
"""

from __future__ import annotations

__all__ = ["shared_id"]

_STREAM_IDS: dict[str, str] = {}
#: Ids kept at most; the table is emptied when full (a new id is then shared from its next line on).
_MAX_STREAM_IDS = 4096


def shared_id(text: str) -> str:
    """The one str object equal to ``text`` (``text`` itself the first time). Any thread; pure."""
    shared = _STREAM_IDS.get(text)
    if shared is not None:
        return shared
    if len(_STREAM_IDS) >= _MAX_STREAM_IDS:
        _STREAM_IDS.clear()
    return _STREAM_IDS.setdefault(text, text)
