"""An info text as an interned template and its last number (schema version 5; Qt-free, pure).

A worker's ``info`` is usually a flat object of learner numbers whose values change every step
(``{"epsilon":0.95,"loss":0.0001999600079984003}``): its text never repeats, so interning whole
texts (``step_layout.MAX_VALUES_PER_STREAM``) stops helping after 4,096 steps. ``split_info`` cuts
such a text into a *template*, the text up to and including the colon before its last value
(``{"epsilon":0.95,"loss":``, never a JSON text itself: it ends with ``:``), interned like any
text, and the last value as a number the step row stores in its untyped ``info_json`` column (an
SQLite INTEGER or REAL: 0-8 bytes instead of the digits), the template's ref going to the row's
``extra_json`` as a BLOB of 1-3 bytes (``ref_blob``; ``step_layout.SPLIT_SQL``). ``join_info``
gives the same text back.

The rule is exact by construction: a text is split only when formatting its last value back
(``number_text``: ``int.__repr__`` for an integer, orjson for a float, what ``json_text.encode_json``
writes) gives the very characters it had, so ``join_info(*split_info(t)) == t`` and decoding either
text gives equal values. Refused (the text stays whole): a last value that is not a number (a
string, bool, null, object, array), an integer beyond 64 bits, ``-0`` or leading zeros, a float
written another way (the stdlib's ``1e-05``, ``NaN``/``Infinity``), ``-0.0`` (SQLite's ``printf`` loses
its sign, so the view could not give it), and floats of magnitude ``MAX_FLOAT`` or more (SQLite
3.40's ``printf('%!.17g')`` misformats some numbers above 2**300; see docs/schema.md "Version 5").

Any thread.
"""

from __future__ import annotations

import math
from typing import Union

import orjson

__all__ = ["MAX_FLOAT", "Number", "blob_ref", "join_info", "number_after", "number_text", "number_text_sql", "ref_blob",
           "ref_sql", "split_info"]

Number = Union[int, float]
#: Floats of at least this magnitude stay in the whole text.
MAX_FLOAT = 1e18
_INT_MIN, _INT_MAX = -(1 << 63), (1 << 63) - 1
_MAX_NUMBER_CHARS = 32
_dumps = orjson.dumps
_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError
_copysign = math.copysign


def number_text(number: Number) -> str:
    """The JSON text our encoder writes for a number ``split_info`` accepted. Pure."""
    if type(number) is int:
        return int.__repr__(number)
    return _dumps(number).decode()


def split_info(text: object) -> tuple[str, Number] | None:
    """``(template, number)`` of a JSON object text whose last value is a number that
    ``number_text`` writes back as it is, else None (module doc). ``text`` must be valid JSON (the
    store's texts are its encoder's). Pure."""
    if type(text) is not str or len(text) < 6 or text[-1] != "}" or text[0] != "{":
        return None
    colon = text.rfind(":")
    if colon < 3 or text[colon - 1] != '"':
        return None
    number = number_after(text, colon + 1)
    return None if number is None else (text[:colon + 1], number)


def number_after(text: str, start: int) -> Number | None:
    """The number ``split_info`` takes of ``text``, whose template is ``text[:start]``: the value
    between it and the closing ``}`` when ``number_text`` writes it back as it is, else None. With a
    template ``split_info`` gave for another text, ``(text[:start], number_after(text, start))`` is
    ``split_info(text)`` whenever this is not None (a number holds no ``:``). Pure.

    orjson reads the value (it refuses what is not one JSON value; ``NaN``, leading zeros), then the
    value must be an int in 64 bits or a float in the accepted range, and its text the one
    ``number_text`` writes (a float's always holds ``.`` or ``e``, an int's neither).
    """
    if text[-1:] != "}":
        return None
    num = text[start:-1]
    if len(num) > _MAX_NUMBER_CHARS:
        return None
    try:
        number = _loads(num)
    except _JSONDecodeError:
        return None
    if type(number) is float:
        if (-MAX_FLOAT < number < MAX_FLOAT and (number != 0.0 or _copysign(1.0, number) > 0.0)
                and _dumps(number).decode() == num):
            return number
        return None
    if type(number) is int and _INT_MIN <= number <= _INT_MAX and int.__repr__(number) == num:
        return number
    return None


def join_info(template: str, number: Number) -> str:
    """The info text of a template and its number (``split_info``'s inverse). Pure."""
    return f"{template}{number_text(number)}}}"


def ref_blob(ref: int) -> bytes:
    """A template's ref (0 .. 2**24 - 1) as the BLOB a split row keeps in ``extra_json``: big-endian,
    1 byte below 256, 2 below 65,536 (a row's extras are otherwise a JSON text or NULL). Pure."""
    return ref.to_bytes(1 if ref < 0x100 else 2 if ref < 0x10000 else 3, "big")


def blob_ref(blob: bytes) -> int:
    """``ref_blob``'s inverse. Pure."""
    return int.from_bytes(blob, "big")


def _byte_sql(hex_text: str, index: int) -> str:
    digit = "(instr('0123456789ABCDEF', substr({}, {}, 1)) - 1)"
    return f"({digit.format(hex_text, 2 * index + 1)} * 16 + {digit.format(hex_text, 2 * index + 2)})"


def ref_sql(column: str) -> str:
    """SQL: the ref of a ``ref_blob`` BLOB in ``column`` (``blob_ref``)."""
    h = f"hex({column})"
    b0, b1, b2 = (_byte_sql(h, i) for i in range(3))
    return (f"CASE length({column}) WHEN 1 THEN {b0} WHEN 2 THEN {b0} * 256 + {b1} "
            f"ELSE ({b0} * 256 + {b1}) * 256 + {b2} END")


def number_text_sql(column: str) -> str:
    """SQL: a JSON number text of ``column`` (an INTEGER as its digits, a REAL with 17 significant
    digits: the same float64 when parsed, for the floats ``split_info`` accepts)."""
    return f"CASE typeof({column}) WHEN 'integer' THEN CAST({column} AS TEXT) ELSE printf('%!.17g', {column}) END"
