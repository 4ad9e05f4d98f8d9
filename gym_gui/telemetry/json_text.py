"""JSON text of telemetry values: the one encoder of stored and transported JSON (Qt-free, pure).

orjson writes the text when it can say the same thing as the stdlib encoder, which remains the
reference (see ``encode_json``); ``load_json`` (the stdlib decoder) reads every such text back
exactly, including integers beyond 64 bits, NaN and infinities, and lone surrogates.

Nesting: one limit, ``MAX_JSON_DEPTH`` (512 levels of arrays and objects), for both directions.
``encode_json`` writes every value up to it and raises ``NestingTooDeep`` (a ValueError) beyond
it; ``load_json_exact`` and the proxy's line decoder refuse deeper text. (The stdlib encoder and
decoder fail near 990 levels from a shallow stack, orjson's decoder at 1,024 and its encoder at
254, so without one rule a value could be read that could then not be written.)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Callable

import orjson

__all__ = ["MAX_JSON_DEPTH", "NestingTooDeep", "quarantine_text", "decoded_keys", "dump_json", "encode_json", "json_default",
           "load_json", "load_json_exact", "may_hold_big_int", "nesting_exceeds", "stdlib_encode", "text_nesting_exceeds"]

#: The deepest nesting of arrays and objects a stored or transported JSON value may have.
MAX_JSON_DEPTH = 512


class NestingTooDeep(ValueError):
    """A value or text nested deeper than ``MAX_JSON_DEPTH``."""

    def __init__(self, limit: int = MAX_JSON_DEPTH) -> None:
        super().__init__(f"nested deeper than {limit} levels of arrays and objects")
        self.limit = limit


#: The types a decoded JSON scalar has: never a container, so no ABC check (``isinstance`` of the
#: typing alias ``Mapping`` took about 0.5 us, the ABC 0.2; a v2 entry of 256 steps has 2,800 scalars).
_SCALAR_TYPES = frozenset((str, int, float, bool, type(None)))


def nesting_exceeds(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """True if ``value`` nests dicts/lists/tuples (or other Mappings) deeper than ``limit``. Any thread; pure.

    Iterative (no recursion limit); visits every container once.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        item, depth = pop()
        kind = type(item)
        if kind is dict:
            children: Any = item.values()
        elif kind is list or kind is tuple:
            children = item
        elif kind not in _SCALAR_TYPES and isinstance(item, Mapping):
            children = item.values()
        else:
            continue
        if depth > limit:
            return True
        for child in children:
            ck = type(child)
            if ck is dict or ck is list or ck is tuple or (ck not in _SCALAR_TYPES and isinstance(child, Mapping)):
                push((child, depth + 1))
    return False


def text_nesting_exceeds(text: str | bytes, value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """``nesting_exceeds(value, limit)`` for ``value`` decoded from (or encoded as) ``text``, cheaply:
    text with at most ``limit`` opening brackets cannot nest deeper, so only such text is walked. Pure."""
    if len(text) <= 2 * limit:
        return False
    if type(text) is str:
        opened = text.count("[") + text.count("{")
    else:
        opened = text.count(b"[") + text.count(b"{")
    return opened > limit and nesting_exceeds(value, limit)


def json_default(value: Any) -> Any:
    """Make numpy values and read-only mappings JSON-encodable; anything else is a TypeError. Any thread."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _make_c_encoder() -> Callable[[Any, int], Any] | None:
    """The C JSON encoder, built once: compact separators, ASCII escapes, no circular check.

    ``json.dumps`` builds such an object on every call, which costs more than encoding a small dict.
    Without the circular check a cycle raises RecursionError, reported like any unencodable payload.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython always has the C accelerator
        return None
    return make(None, json_default, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, True)


_c_encode = _make_c_encoder()
_join = "".join
_py_encode = json.JSONEncoder(default=json_default, separators=(",", ":"), check_circular=False).encode
#: The reference decoder of every JSON text this package writes.
load_json = json.loads


def stdlib_encode(value: Any) -> str:
    """Compact JSON text of ``value`` by the stdlib encoder (the reference).

    Raises TypeError, or NestingTooDeep beyond ``MAX_JSON_DEPTH``. Any thread; pure.
    """
    try:
        if _c_encode is None:  # pragma: no cover - CPython always has the C accelerator
            text = _py_encode(value)
        else:
            text = _join(_c_encode(value, 0))
    except RecursionError:
        raise NestingTooDeep() from None
    if text_nesting_exceeds(text, value):
        raise NestingTooDeep()
    return text


_orjson_dumps = orjson.dumps
#: Subclasses of str/int/dict/list, dataclasses and datetimes go to ``json_default`` as with the stdlib.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME


def encode_json(value: Any) -> str:
    """Compact JSON text of ``value``: orjson when its text means the same as the stdlib's, else the stdlib.

    orjson writes NaN and infinities as ``null`` (the stdlib writes ``NaN``/``Infinity``, which
    ``load_json`` reads back), so any output containing ``null`` is re-encoded by the stdlib, and so
    is anything orjson refuses: integers beyond 64 bits, lone surrogates, non-string keys, nesting
    deeper than 254, values ``json_default`` rejects (then the stdlib raises the same TypeError).
    A value nested deeper than ``MAX_JSON_DEPTH`` raises ``NestingTooDeep`` (a ValueError).
    The text may differ from the stdlib's in form only (raw UTF-8 instead of ``\\u`` escapes,
    ``1e-7`` for ``1e-07``); it decodes to the same value. One difference in meaning: orjson encodes
    ``enum.Enum`` members (by value) and ``uuid.UUID`` (as text), which the stdlib refuses; such
    payloads, which only an in-process publisher can make, are stored instead of kept aside.
    Any thread; pure.
    """
    try:
        text = _orjson_dumps(value, json_default, _ORJSON_OPTIONS).decode()
    except TypeError:  # orjson.JSONEncodeError
        return stdlib_encode(value)
    if "null" in text:  # (faster on str than on bytes)
        return stdlib_encode(value)
    return text


def quarantine_text(value: Any, max_repr_chars: int = 100_000) -> str:
    """JSON text of a value that failed normal encoding, to keep it aside: never raises. Any thread; pure.

    Unknown objects become their ``repr``; a value nested deeper than ``MAX_JSON_DEPTH`` (or one
    the stdlib cannot encode at all) becomes ``{"repr": "..."}``, its ``repr`` cut to
    ``max_repr_chars`` (or a note when even that fails, e.g. a value too deep for ``repr``).
    """
    try:
        if nesting_exceeds(value):
            raise NestingTooDeep()
        return json.dumps(dict(value) if isinstance(value, Mapping) else value, default=repr)
    except Exception:  # e.g. keys that are not strings, too deep, a repr that raises
        pass
    try:
        text = repr(value)[:max_repr_chars]
    except Exception:  # RecursionError for a value nested too deeply, a broken __repr__
        text = f"<a {type(value).__name__} that cannot be shown>"
    return json.dumps({"repr": text})


def dump_json(value: Any) -> str:
    """Compact JSON text of ``value`` (non-ASCII as UTF-8; lone surrogates escaped). Raises TypeError.

    Any thread; pure.
    """
    if type(value) is int:  # the common ToyText action/observation
        return int.__repr__(value)
    if value is None:
        return "null"
    return encode_json(value)


# orjson reads integers beyond 64 bits as floats, where the stdlib keeps them exact. Such a number
# is a run of at least 20 digits, or of a minus sign and 19 digits, that is neither a fraction nor a
# mantissa or exponent (no "." or "e" beside it): texts holding such a run take the stdlib decoder.
# The check maps digits and minus signs to "0", ".", "e" and "E" to "." and everything else to " "
# (one bytes operation in C), then looks for a run of 20 "0" that no "." touches. The digits of a
# fraction are not an integer: a float such as 0.00048756704046806434 (a loss of a Python loop,
# written as repr writes it) is read the same by both decoders (tests/ingest/test_records_orjson.py),
# so it keeps orjson's speed.
_DIGIT_MAP = bytes(0x30 if (0x30 <= b <= 0x39 or b == 0x2D) else 0x2E if b in (0x2E, 0x45, 0x65) else 0x20
                   for b in range(256))
_LONG_RUN = b"0" * 20
_orjson_loads = orjson.loads
_OrjsonError = orjson.JSONDecodeError


def decoded_keys(keys: tuple[str, ...]) -> tuple[str, ...]:
    """``keys`` as the str objects orjson gives when it decodes them (its key cache hands out the
    same objects again): a decoded record's key tuple then equals this one item by item by identity,
    without comparing the texts (about 100 ns a 15-key line). Equal to ``keys`` either way. Pure."""
    return tuple(_orjson_loads(_orjson_dumps(dict.fromkeys(keys))))


def may_hold_big_int(raw: bytes) -> bool:
    """True if ``raw`` has a run of 20 digits or minus signs with no ``.``/``e``/``E`` beside it (maybe an
    integer orjson would round). Pure."""
    mapped = raw.translate(_DIGIT_MAP)
    start = mapped.find(_LONG_RUN)
    while start >= 0:  # (a run starts here: find gives the leftmost 20, so before it is " " or ".")
        end = mapped.find(b" ", start)
        if end < 0:
            end = len(mapped)
        dot = mapped.find(b".", start, end)
        if dot >= 0:  # a mantissa before "." or "e" (or digits after "e"): a float in both decoders
            end = dot
        elif start == 0 or mapped[start - 1] != 0x2E:  # not a fraction or exponent either: an integer
            return True
        start = mapped.find(_LONG_RUN, end)
    return False


def load_json_exact(raw: bytes) -> Any:
    """Decode JSON text with orjson where that gives what ``load_json`` gives, else with ``load_json``.

    Integers beyond 64 bits stay exact, and ``NaN``/``Infinity`` (which ``dump_json`` writes) are
    read. Raises ValueError: not JSON, not UTF-8, or ``NestingTooDeep`` (deeper than
    ``MAX_JSON_DEPTH``). Any thread; pure.
    """
    if not may_hold_big_int(raw):
        try:
            value = _orjson_loads(raw)
        except _OrjsonError:  # NaN/Infinity, lone surrogate escapes, deep nesting...: the stdlib decides
            pass
        else:
            if text_nesting_exceeds(raw, value):
                raise NestingTooDeep()
            return value
    try:
        value = load_json(raw)
    except RecursionError:
        raise NestingTooDeep() from None
    if text_nesting_exceeds(raw, value):
        raise NestingTooDeep()
    return value
