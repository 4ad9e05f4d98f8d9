"""Ids as they are shown in logs, summaries and terminals: printable, escaped and bounded (Qt-free, pure).

A worker chooses its run and agent ids; they may hold control characters (which would move a
terminal's cursor or recolour it), lone surrogates (which no UTF-8 stream can write) or megabytes
of text. ``shown_id`` is the one place that makes such an id safe to print: every character that
is not printable becomes a Python-style escape (``\\x1b``, ``\\ud800``), and the result is cut to
``max_chars`` with the number of characters left out.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DEFAULT_SHOWN_CHARS", "shown_id", "shown_text"]

#: How much of an id a log line or a summary shows.
DEFAULT_SHOWN_CHARS = 80


def shown_id(value: Any, max_chars: int = DEFAULT_SHOWN_CHARS) -> str:
    """``value`` (an id) as printable ASCII-safe text of at most about ``max_chars`` characters. Pure."""
    text = value if type(value) is str else repr(value)
    cut = len(text) - max_chars
    head = text[:max_chars] if cut > 0 else text
    if not head.isprintable() or not head.isascii():
        head = "".join(ch if ch.isprintable() and not 0xD800 <= ord(ch) <= 0xDFFF else _escape(ch) for ch in head)
    return f"{head}...(+{cut} chars)" if cut > 0 else head


def shown_text(value: str, max_chars: int = 2000) -> str:
    """Free text (a stderr tail, a reason) made safe to print: newlines and tabs kept, other controls escaped. Pure."""
    lines = value[:max_chars].split("\n")
    text = "\n".join(shown_id(line.replace("\t", "    "), max_chars) for line in lines)
    return text + (f"...(+{len(value) - max_chars} chars)" if len(value) > max_chars else "")


def _escape(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"
