"""Encoding of canonical JSONL v1 records (docs/telemetry-jsonl.md): values, lines, timestamps. Qt-free.

orjson encodes when it is installed; the stdlib encoder is the reference and the fallback, and it
takes over whenever orjson refuses a value, so both give the same values:

- NaN and +-infinity become ``null`` (orjson writes them so; the stdlib path cleans them with
  :func:`to_jsonable`);
- integers beyond 64 bits, non-string keys, lone surrogates and nesting orjson does not take go
  to the stdlib encoder, which writes them exactly as before (big integers digit for digit);
- numpy scalars and arrays become ``.tolist()`` values through the ``default`` hook in both
  encoders, so a float32 is written as the exact double it widens to (``0.10000000149011612``),
  not as orjson's shortest float32 text (its ``OPT_SERIALIZE_NUMPY`` is deliberately not used);
- orjson writes non-ASCII text as UTF-8 instead of ``\\u`` escapes and ``1e-7`` instead of
  ``1e-07``: the same values. It also writes ``enum.Enum`` members by value and datetimes,
  dataclasses and UUIDs natively where the stdlib path writes their ``repr``.

Every function here is pure (or reads the clock) and may be called from any thread; none blocks.
"""

from __future__ import annotations

import json
import math
import time
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

_orjson: Any
try:  # pragma: no cover - exercised by the orjson-less test run
    import orjson as _orjson
except ImportError:  # pragma: no cover
    _orjson = None

__all__ = [
    "HAVE_ORJSON",
    "SCHEMA_VERSION",
    "UtcSecondClock",
    "dumps_line",
    "encode_object",
    "stdlib_encode_object",
    "to_jsonable",
    "utc_now_iso",
]

#: Value of the ``"v"`` field of every canonical record.
SCHEMA_VERSION = 1

#: Whether orjson is importable (the fast encoder); the stdlib encoder is used alone without it.
HAVE_ORJSON = _orjson is not None


def utc_now_iso() -> str:
    """Current UTC time, ISO-8601 with microseconds and ``+00:00``. Any thread, never blocks."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _json_default(obj: Any) -> Any:
    """Encoder hook: numpy scalars/arrays, sets and bytes; anything else becomes its repr."""
    if isinstance(obj, (bytes, bytearray)):
        return bytes(obj).decode("utf-8", "replace")
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    tolist = getattr(obj, "tolist", None)  # numpy scalar or ndarray
    if callable(tolist):
        return tolist()
    return repr(obj)


def to_jsonable(obj: Any) -> Any:
    """Return a copy of ``obj`` made of JSON types only. Any thread, never blocks.

    numpy scalars and arrays become Python numbers and lists, tuples and sets become lists,
    mapping keys become strings, non-finite floats (NaN, +-inf) become ``None`` (JSONL v1 forbids
    them), bytes are decoded as UTF-8 and unknown objects become their ``repr``.
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    converted = _json_default(obj)
    return converted if isinstance(converted, str) else to_jsonable(converted)


#: One shared encoder (``json.dumps`` with options builds a new one per call). Stateless, thread-safe.
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False, default=_json_default)


def stdlib_encode_object(obj: Any) -> bytes:
    """The reference encoding of ``obj`` (compact, ASCII), non-finite floats as ``null``. Any thread.

    Raises what the stdlib encoder raises for values it cannot take (e.g. ``TypeError`` for a
    tuple key, ``RecursionError`` for a cycle).
    """
    try:
        text = _ENCODER.encode(obj)
    except ValueError:  # NaN or infinity somewhere: clean the copy, then encode
        text = json.dumps(to_jsonable(obj), separators=(",", ":"), allow_nan=False)
    return text.encode("utf-8")


if _orjson is not None:
    _orjson_dumps: Callable[..., bytes] = _orjson.dumps
    _ORJSON_ERROR: type[Exception] = _orjson.JSONEncodeError
    _NEWLINE = _orjson.OPT_APPEND_NEWLINE

    def encode_object(obj: Any) -> bytes:
        """Compact UTF-8 JSON of ``obj`` (orjson, stdlib where orjson refuses). Any thread, never blocks."""
        try:
            return _orjson_dumps(obj, default=_json_default)
        except _ORJSON_ERROR:
            return stdlib_encode_object(obj)

    def dumps_line(record: Mapping[str, Any]) -> bytes:
        """Encode one record as a compact UTF-8 JSON line ending in ``\\n``. Any thread, never blocks."""
        try:
            return _orjson_dumps(record, default=_json_default, option=_NEWLINE)
        except _ORJSON_ERROR:
            return stdlib_encode_object(record) + b"\n"

else:  # pragma: no cover - exercised by the orjson-less test run

    def encode_object(obj: Any) -> bytes:
        """Compact JSON of ``obj`` with the stdlib encoder (orjson is not installed). Any thread."""
        return stdlib_encode_object(obj)

    def dumps_line(record: Mapping[str, Any]) -> bytes:
        """Encode one record as a compact JSON line ending in ``\\n``. Any thread, never blocks."""
        return stdlib_encode_object(record) + b"\n"


class UtcSecondClock:
    """The ``ts`` text of the current UTC second, made once per second instead of once per record.

    :meth:`now_us` reads the wall clock in microseconds; the text of a time is
    ``prefix(second) + ".%06d+00:00" % microseconds``, where :attr:`prefix` is the
    ``YYYY-MM-DDTHH:MM:SS`` of :attr:`second_us`'s second, renewed by :meth:`advance`. Not
    thread-safe: its owner serialises the calls (the emitter calls it under its lock).
    """

    __slots__ = ("prefix", "second_us", "next_second_us")

    def __init__(self) -> None:
        self.prefix = ""
        self.second_us = 0
        self.next_second_us = 0  # forces advance() on first use

    @staticmethod
    def now_us() -> int:
        """Unix time in whole microseconds (floor). Any thread, never blocks."""
        return time.time_ns() // 1000

    def advance(self, now_us: int) -> None:
        """Make :attr:`prefix` the text of ``now_us``'s second (also after a backward clock step)."""
        second = now_us // 1_000_000
        self.second_us = second * 1_000_000
        self.next_second_us = self.second_us + 1_000_000
        self.prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))

    def iso(self, now_us: int) -> str:
        """The ISO-8601 text of ``now_us`` (``...T12:00:00.123456+00:00``); advances when needed."""
        if not self.second_us <= now_us < self.next_second_us:
            self.advance(now_us)
        return "%s.%06d+00:00" % (self.prefix, now_us - self.second_us)
