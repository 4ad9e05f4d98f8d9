"""JSON text of telemetry values: the one encoder of stored and transported JSON (Qt-free, pure).

orjson writes the text when it can say the same thing as the stdlib encoder, which remains the
reference (see ``encode_json``); ``load_json`` (the stdlib decoder) reads every such text back
exactly, including integers beyond 64 bits, NaN and infinities, and lone surrogates.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Mapping

import orjson

__all__ = ["dump_json", "encode_json", "json_default", "load_json", "stdlib_encode"]


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
    """Compact JSON text of ``value`` by the stdlib encoder (the reference). Raises TypeError. Any thread; pure."""
    if _c_encode is None:  # pragma: no cover - CPython always has the C accelerator
        return _py_encode(value)
    return _join(_c_encode(value, 0))


_orjson_dumps = orjson.dumps
#: Subclasses of str/int/dict/list, dataclasses and datetimes go to ``json_default`` as with the stdlib.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME


def encode_json(value: Any) -> str:
    """Compact JSON text of ``value``: orjson when its text means the same as the stdlib's, else the stdlib.

    orjson writes NaN and infinities as ``null`` (the stdlib writes ``NaN``/``Infinity``, which
    ``load_json`` reads back), so any output containing ``null`` is re-encoded by the stdlib, and so
    is anything orjson refuses: integers beyond 64 bits, lone surrogates, non-string keys, nesting
    deeper than 254, values ``json_default`` rejects (then the stdlib raises the same TypeError).
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


def dump_json(value: Any) -> str:
    """Compact JSON text of ``value`` (non-ASCII as UTF-8; lone surrogates escaped). Raises TypeError.

    Any thread; pure.
    """
    if type(value) is int:  # the common ToyText action/observation
        return int.__repr__(value)
    if value is None:
        return "null"
    return encode_json(value)
