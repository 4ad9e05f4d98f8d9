"""The field rules of worker JSONL records: reject reasons, typed field readers, JSON text fields, times (Qt-free).

Shared by ``records`` (the line decoder and its fast paths) and ``record_payloads`` (every record
family and alias). Every function is pure and may be called from any thread; a value that breaks a
rule raises ``RecordRejected`` with a stable ``RejectReason`` key.

``*_json`` text fields are decoded by orjson where that gives what the stdlib gives (as
``records.parse_line`` does for lines), by the stdlib decoder otherwise and for every text orjson
refuses, so results and reject reasons are those of the stdlib alone (docs/performance.md, "End
to end"). Unix times become ISO text through ``unix_time.iso_from_unix``, equal to
``datetime.fromtimestamp(t, timezone.utc).isoformat()``.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Any, Callable

import orjson

from gym_gui.ingest.unix_time import iso_from_unix
from gym_gui.telemetry.json_text import MAX_JSON_DEPTH, may_hold_big_int, text_nesting_exceeds
from gym_gui.telemetry.utf8_text import lone_surrogate_at

__all__ = ["MAX_ID_CHARS", "RecordRejected", "RejectReason"]

#: The longest run or agent id accepted: ids key every per-stream table, so this bounds their memory.
MAX_ID_CHARS = 1024

class RejectReason:
    """Stable keys for rejected lines (shown in the debug pane and the proxy's stats)."""

    INVALID_UTF8 = "invalid_utf8"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    NON_FINITE = "non_finite_number"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    UNKNOWN_TYPE = "unknown_record_type"
    UNSUPPORTED_VERSION = "unsupported_version"
    OUT_OF_RANGE = "out_of_range"
    OVERSIZED = "oversized_line"
    PARTIAL = "partial_last_line"
    TOO_DEEP = "nested_too_deeply"
    ID_TOO_LONG = "id_too_long"
    SEQ_EXHAUSTED = "seq_exhausted"
    TOO_MANY_STREAMS = "too_many_streams"
    INTERNAL_ERROR = "internal_error"

    ALL = (
        INVALID_UTF8, INVALID_JSON, NOT_AN_OBJECT, NON_FINITE, MISSING_FIELD, WRONG_TYPE,
        UNKNOWN_TYPE, UNSUPPORTED_VERSION, OUT_OF_RANGE, OVERSIZED, PARTIAL, TOO_DEEP, ID_TOO_LONG,
        SEQ_EXHAUSTED, TOO_MANY_STREAMS, INTERNAL_ERROR,
    )


class RecordRejected(ValueError):
    """A line or record that cannot become an event; ``reason`` is a RejectReason key."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _reject_constant(name: str) -> Any:
    raise RecordRejected(RejectReason.NON_FINITE, f"{name} is not a finite number")


def _finite_float(text: str) -> float:
    value = float(text)
    if value - value != 0.0:  # inf: a number beyond the double range (``1e400``)
        raise RecordRejected(RejectReason.NON_FINITE, f"{text[:40]} is beyond the range of a double")
    return value


_decode_json: Callable[[str], Any] = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float).decode
_orjson_loads = orjson.loads
_OrjsonError = orjson.JSONDecodeError


def _too_deep(what: str) -> RecordRejected:
    return RecordRejected(RejectReason.TOO_DEEP,
                          f"{what} nests arrays and objects deeper than {MAX_JSON_DEPTH} levels (the most stored)")


# -- field helpers ---------------------------------------------------------------------------------
_MISSING = object()


def _first(record: dict[str, Any], *names: str) -> Any:
    for name in names:
        value = record.get(name, _MISSING)
        if value is not _MISSING and value is not None:
            return value
    return _MISSING


def _require(record: dict[str, Any], *names: str) -> Any:
    value = _first(record, *names)
    if value is _MISSING:
        raise RecordRejected(RejectReason.MISSING_FIELD, f"needs {' or '.join(names)}")
    return value


def _int(value: Any, name: str) -> int:
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    raise RecordRejected(RejectReason.WRONG_TYPE, f"{name} must be an integer, got {value!r:.60}")


def _number(value: Any, name: str) -> float:
    if type(value) is float:
        if not math.isfinite(value):
            raise RecordRejected(RejectReason.NON_FINITE, f"{name} is {value}")
        return value
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:  # the number 1e400 written as an integer
            raise RecordRejected(RejectReason.NON_FINITE, f"{name} is an integer beyond a double's range") from None
    raise RecordRejected(RejectReason.WRONG_TYPE, f"{name} must be a number, got {value!r:.60}")


def _bool(value: Any, name: str) -> bool:
    if type(value) is bool:
        return value
    if type(value) is int and value in (0, 1):
        return bool(value)
    raise RecordRejected(RejectReason.WRONG_TYPE, f"{name} must be a boolean, got {value!r:.60}")


def _str(value: Any, name: str) -> str:
    if type(value) is str and value:
        return value
    raise RecordRejected(RejectReason.WRONG_TYPE, f"{name} must be a non-empty string, got {value!r:.60}")


def _id(value: Any, name: str) -> str:
    """A run or agent id: a non-empty string of at most MAX_ID_CHARS characters that UTF-8 can hold."""
    text = _str(value, name)
    if len(text) > MAX_ID_CHARS:
        raise RecordRejected(RejectReason.ID_TOO_LONG, f"{name} has {len(text)} characters; the most is {MAX_ID_CHARS}")
    at = lone_surrogate_at(text)
    if at is not None:
        raise RecordRejected(RejectReason.WRONG_TYPE, f"{name} holds a lone surrogate at character {at} "
                                                      "(an id must be text a database can store)")
    return text


def _dict(value: Any, name: str) -> dict[str, Any]:
    if value is _MISSING:
        return {}
    if type(value) is dict:
        return value
    raise RecordRejected(RejectReason.WRONG_TYPE, f"{name} must be an object, got {type(value).__name__}")


def _json_value(value: Any, name: str) -> Any:
    """Decode a ``*_json`` string field; other types pass through.

    orjson first, where it gives what the stdlib gives: not for text that may hold an integer
    beyond 64 bits, and any text it refuses goes to the stdlib decoder, which accepts it or
    classifies the error as before.
    """
    if type(value) is not str:
        return value
    if len(value) < _BIG_INT_DIGITS or _no_big_int(value):
        try:
            decoded = _orjson_loads(value)
        except _OrjsonError:
            pass
        else:
            if text_nesting_exceeds(value, decoded, MAX_JSON_DEPTH - 1):  # it is stored inside its payload
                raise _too_deep(name)
            return decoded
    try:
        decoded = _decode_json(value)
    except RecordRejected:
        raise
    except RecursionError:
        raise _too_deep(name) from None
    except ValueError as exc:
        raise RecordRejected(RejectReason.WRONG_TYPE, f"{name} is not valid JSON: {exc}") from None
    if text_nesting_exceeds(value, decoded, MAX_JSON_DEPTH - 1):  # it is stored inside its payload
        raise _too_deep(name)
    return decoded


#: Text shorter than this cannot hold the 20-digit run ``may_hold_big_int`` looks for.
_BIG_INT_DIGITS = 20


def _no_big_int(text: str) -> bool:
    try:
        return not may_hold_big_int(text.encode("utf-8"))
    except UnicodeEncodeError:  # lone surrogates: the stdlib decides
        return False


def _json_object(value: Any, name: str) -> dict[str, Any]:
    return _dict(_json_value(value, name), name)


def _checked_json_value(value: Any, name: str, strings_checked: bool) -> Any:
    """``_json_value`` for a string of a line whose text was already checked for big integers.

    ``strings_checked``: the line went through orjson after ``may_hold_big_int`` found nothing and
    holds no ``\\u`` escape. The other escapes turn into characters the check reads as it read the
    escape (neither digits, minus signs, ``.`` nor ``e``), so no string of such a line can hold what
    the check looks for, and it is not run again on each ``*_json`` field. Same result otherwise.
    """
    if not strings_checked or type(value) is not str:
        return _json_value(value, name)
    if len(value) < _BIG_INT_DIGITS and value.isdigit() and value.isascii() and (value[0] != "0" or len(value) == 1):
        return int(value)  # a plain non-negative integer (an action or observation index): what orjson gives
    try:
        decoded = _orjson_loads(value)
    except _OrjsonError:
        return _json_value(value, name)  # the stdlib decides, as there
    if len(value) > _SHALLOW_CHARS and text_nesting_exceeds(value, decoded, MAX_JSON_DEPTH - 1):
        raise _too_deep(name)  # it is stored inside its payload
    return decoded


#: Text this short cannot nest deeper than ``MAX_JSON_DEPTH - 1`` (each level takes two characters).
_SHALLOW_CHARS = 2 * (MAX_JSON_DEPTH - 1)


def _iso_from_text(value: Any, name: str) -> str:
    text = _str(value, name)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise RecordRejected(RejectReason.WRONG_TYPE, f"{name} is not an ISO-8601 time: {text!r:.60}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc).isoformat()
    if text.endswith("+00:00"):
        return text  # already canonical: keep the worker's exact text
    try:
        return parsed.astimezone(timezone.utc).isoformat()
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is in year 0 in UTC
        raise RecordRejected(RejectReason.OUT_OF_RANGE, f"{name} {text!r:.60} is outside years 1-9999 in UTC") from None


def _iso_from_unix(seconds: float, name: str) -> str:
    """Unix seconds to ISO-8601 UTC, or OUT_OF_RANGE outside what a datetime holds (years 1-9999)."""
    try:
        return iso_from_unix(seconds)
    except (OverflowError, ValueError, OSError):
        raise RecordRejected(RejectReason.OUT_OF_RANGE, f"{name} {seconds!r:.30} is outside years 1-9999") from None


def _data_time(record: dict[str, Any], now_iso: str) -> str:
    ns = record.get("ts_unix_ns")
    if ns is not None:
        ns = _int(ns, "ts_unix_ns")
        if not -_MAX_UNIX_NS <= ns <= _MAX_UNIX_NS:  # also keeps ns / 1e9 from overflowing a float
            raise RecordRejected(RejectReason.OUT_OF_RANGE, "ts_unix_ns is outside years 1-9999")
        return _iso_from_unix(ns / 1e9, "ts_unix_ns")
    for name in ("ts", "timestamp"):
        value = record.get(name)
        if value is not None:
            if type(value) in (int, float):
                return _iso_from_unix(_number(value, name), name)
            return _iso_from_text(value, name)
    return now_iso


#: More than any time a datetime holds (year 9999 is about 2.5e11 s after 1970).
_MAX_UNIX_NS = 10**21


def _rest(record: dict[str, Any], used: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in used}

