"""Render payload texts a step line repeats, taken from the line instead of decoded again (Qt-free).

A ToyText worker's step line ends with its render payload: ``...,"render_payload":{...}}``, and a
run repeats few of them (one per agent position). Decoding that object and encoding it again for
the store is about a quarter of the ingest child's work on such a line. So the decoder remembers
each render text it decoded, as the bytes the line carried (``remember``), with the canonical
text it made of them; a later line that ends with the same bytes is decoded without them
(``cut``): its head (the line up to ``,"render_payload":``, closed with ``}``) is decoded and the
remembered text is its render payload.

Why that is the same decoding: in valid JSON the bytes ``,"render_payload":`` can only be a member
separator and the key ``render_payload`` (a quote inside a string is escaped), so the bytes
after the line's last such key, up to its closing ``}``, are valid JSON only when they are that
key's value and the line ends there (from a nested key they would close more than they open).
``remember`` keeps bytes only once they decoded to the line's render payload; a line whose tail
is such bytes and whose head decodes to the other keys of the layout is that head's object with
that render payload, as the whole line's decoding would give (the key bytes hold no digit, so a
long integer cannot straddle them, and short lines cannot nest too deeply). Lines longer than
``MAX_LINE_BYTES`` are never cut.

The decoder stops remembering (and cutting) once misses outnumber hits fourfold after
``WARMUP_LINES`` lines: render payloads that seldom repeat (a large grid, frames) then cost only
the one ``endswith`` check a line. One process-wide table; the decoding threads of one process may
share it (a dict's get and set are atomic). Pure but for that table.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["MAX_LINE_BYTES", "MAX_TEXTS", "MAX_TEXT_BYTES", "WARMUP_LINES", "cut", "remember", "reset"]

#: The member that ends a step line of our workers' layout.
_MEMBER = b',"render_payload":'
_AFTER_MEMBER = len(_MEMBER)
#: Lines longer than this are decoded whole (``records._SHALLOW_BYTES``: no nesting check needed).
MAX_LINE_BYTES = 1024
#: Render texts longer than this are not remembered (frames: seldom repeated).
MAX_TEXT_BYTES = 512
#: Texts remembered at most; the table is emptied when full.
MAX_TEXTS = 4096
#: Lines looked at before the hit rate may turn the cutting off.
WARMUP_LINES = 2048

_texts: dict[bytes, str] = {}
_counts = [0, 0]  # hits, misses
_enabled = [True]
_loads = orjson.loads
_OrjsonError = orjson.JSONDecodeError


def cut(line: bytes) -> tuple[bytes, str] | None:
    """``(head, render_json)`` when ``line`` ends with a render payload remembered before: ``head``
    is the line without it (closed with ``}``), ``render_json`` its canonical text; else None."""
    if not _enabled[0] or len(line) > MAX_LINE_BYTES or not line.endswith(b"}}"):
        return None
    at = line.rfind(_MEMBER)
    if at < 0:
        return None
    text = _texts.get(line[at + _AFTER_MEMBER:-1])
    counts = _counts
    if text is None:
        counts[1] += 1
        if counts[1] > 4 * counts[0] and counts[0] + counts[1] > WARMUP_LINES:
            _enabled[0] = False
        return None
    counts[0] += 1
    return line[:at] + b"}", text


def remember(line: bytes, render: Any, render_json: str) -> None:
    """Remember the bytes of ``line``'s render payload (``render``, which the whole line decoded to,
    written by the store as ``render_json``), if they are its value as ``cut`` would take them."""
    if not _enabled[0] or len(line) > MAX_LINE_BYTES or not line.endswith(b"}}"):
        return
    at = line.rfind(_MEMBER)
    if at < 0:
        return
    tail = line[at + _AFTER_MEMBER:-1]
    if len(tail) > MAX_TEXT_BYTES:
        return
    try:
        if _loads(tail) != render:  # (equal whenever it decodes at all: see the module doc)
            return
    except _OrjsonError:
        return
    if len(_texts) >= MAX_TEXTS:
        _texts.clear()
    _texts[tail] = render_json


def reset() -> None:
    """Forget every text and count, and cut again (tests)."""
    _texts.clear()
    _counts[0] = _counts[1] = 0
    _enabled[0] = True
