"""Hot step reads on the version 4 layout, without the view (Qt-free).

``read_steps`` runs a SELECT of the raw ``step_rows`` columns (``RAW_COLUMNS`` over ``step_rows s
JOIN stream_keys k``), then resolves the interned values it met with one look-up per stream and
formats the integer timestamps in Python; it returns rows in the order and shape of
``sqlite_rows.STEP_READ_COLUMNS`` (what the view ``steps`` gives), ready for ``decode_step``.

``read_step_records`` runs the same SELECT and gives the ``StepRecord`` s that ``decode_step`` of
those rows gives, with less Python work per row: each distinct JSON text of the read (an interned
info or render payload, an action or observation text) is decoded once (``read_json``), and each
row gets its own copy of a container value (orjson's reading of the text where that is exact, a
copy otherwise), so no two records share a mutable value. Rows with extras go through
``decode_step`` itself.

Call them inside one read transaction (both queries see one snapshot). Any thread, on its own
connection.
"""

from __future__ import annotations

import sqlite3
from functools import partial
from typing import Any, Callable, Mapping, Sequence

import orjson

from gym_gui.telemetry.json_text import may_hold_big_int
from gym_gui.telemetry.sqlite_records import StepRecord
from gym_gui.telemetry.sqlite_rows import NO_AGENT, STEP_READ_COLUMNS, decode_step, read_json
from gym_gui.telemetry.step_layout import format_ts_us

__all__ = ["RAW_COLUMNS", "read_step_records", "read_steps"]

_V3 = tuple(n.strip() for n in STEP_READ_COLUMNS.split(","))
_AT = {name: i for i, name in enumerate(_V3)}
_INFO, _RENDER, _TS = _AT["info_json"], _AT["render_payload_json"], _AT["ts_iso"]
#: The raw columns ``read_steps`` expects: ``STEP_READ_COLUMNS`` with ``ts_iso`` as ``s.ts_us``,
#: then ``s.stream`` and ``k.ts_base_us``.
RAW_COLUMNS = ", ".join(
    ["k.run_id", "k.agent_id"] + [("s.ts_us" if n == "ts_iso" else f"s.{n}") for n in _V3[2:]]
    + ["s.stream", "k.ts_base_us"])
_WIDTH = len(_V3)
#: The columns ``read_step_records`` unpacks itself; with declared generic columns (``tables``)
#: every row goes through ``decode_step``.
_FUSED_COLUMNS = ("run_id", "agent_id", "seq_id", "ts_iso", "episode_index", "step_index", "reward", "terminated",
                  "truncated", "action_json", "observation_json", "info_json", "render_payload_json", "extra_json")
_FUSED = _V3 == _FUSED_COLUMNS
_SHARED_TYPES = frozenset({int, float, str, bool, type(None)})  # immutable: one object for every row
_orjson_loads = orjson.loads


def _values(conn: sqlite3.Connection, wanted: dict[int, set[int]]) -> dict[tuple[int, int], str]:
    found: dict[tuple[int, int], str] = {}
    for stream, refs in wanted.items():
        listed = sorted(refs)
        for start in range(0, len(listed), 500):
            part = listed[start:start + 500]
            for ref, text in conn.execute(
                    f"SELECT ref, json FROM step_values WHERE stream = ? AND ref IN ({','.join('?' * len(part))})",
                    (stream, *part)):
                found[(stream, ref)] = text
    return found


def _fetch(conn: sqlite3.Connection, sql: str,
           params: Sequence[Any] | Mapping[str, Any]) -> tuple[list[tuple[Any, ...]], dict[tuple[int, int], str]]:
    """The raw rows of ``sql`` and the interned texts they refer to."""
    raw = conn.execute(sql, params).fetchall()
    wanted: dict[int, set[int]] = {}
    for row in raw:
        info, render = row[_INFO], row[_RENDER]
        if type(info) is int:
            wanted.setdefault(row[_WIDTH], set()).add(info)
        if type(render) is int:
            wanted.setdefault(row[_WIDTH], set()).add(render)
    return raw, (_values(conn, wanted) if wanted else {})


class _TimeText:
    """The canonical text of a stream's integer times; consecutive steps mostly share the second,
    whose date and time are formatted once."""

    __slots__ = ("second", "head")

    def __init__(self) -> None:
        self.second = -1
        self.head = ""

    def text(self, us: int) -> str:
        whole, micros = divmod(us, 1_000_000)
        if whole != self.second:
            self.second, self.head = whole, format_ts_us(whole * 1_000_000)[:20]
        return f"{self.head}{micros:06d}+00:00"


def read_steps(conn: sqlite3.Connection, sql: str, params: Sequence[Any] | Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` (selecting ``RAW_COLUMNS``) as ``STEP_READ_COLUMNS`` rows. Caller's thread,
    inside a read transaction; blocks for the queries."""
    raw, values = _fetch(conn, sql, params)
    return [_v3_row(row, values, clock) for clock in [_TimeText()] for row in raw]


def _v3_row(row: tuple[Any, ...], values: dict[tuple[int, int], str], clock: _TimeText) -> tuple[Any, ...]:
    info, render, ts = row[_INFO], row[_RENDER], row[_TS]
    if type(ts) is int:
        ts = clock.text(row[_WIDTH + 1] + ts)
    if type(info) is int:
        info = values.get((row[_WIDTH], info))
    if type(render) is int:
        render = values.get((row[_WIDTH], render))
    return (*row[:_TS], ts, *row[_TS + 1:_INFO], info, render, *row[_RENDER + 1:_WIDTH])


def _fresh(value: Any) -> Any:
    """A copy of a decoded JSON value: new dicts and lists, the same immutable leaves."""
    kind = type(value)
    if kind is dict:
        return {k: _fresh(v) for k, v in value.items()}
    if kind is list:
        return [_fresh(v) for v in value]
    return value


def _maker(text: str) -> tuple[Any, Callable[[], Any] | None]:
    """``read_json(text)`` and how a row gets its own equal value: None (the value is immutable:
    every row shares it), else a callable giving a fresh copy."""
    value = read_json(text)
    kind = type(value)
    if kind in _SHARED_TYPES:
        return value, None
    if not value and (kind is dict or kind is list):
        return value, kind
    if kind is dict and _SHARED_TYPES.issuperset(map(type, value.values())):
        return value, value.copy
    try:
        raw = text.encode()
    except UnicodeEncodeError:  # a lone surrogate: only the stdlib reads it
        return value, partial(_fresh, value)
    if not may_hold_big_int(raw):
        try:
            exact = _orjson_loads(raw) == value
        except orjson.JSONDecodeError:
            exact = False
        if exact:
            return value, partial(_orjson_loads, raw)
    return value, partial(_fresh, value)


#: Decoded texts (``_maker``) kept between reads: a text decodes to one value for ever. Bounded.
_MAKERS: dict[str, tuple[Any, Callable[[], Any] | None]] = {}
_MAX_MAKERS, _MAX_MAKER_CHARS = 8192, 2048


def _made(text: str) -> tuple[Any, Callable[[], Any] | None]:
    found = _MAKERS.get(text)
    if found is None:
        found = _maker(text)
        if len(text) <= _MAX_MAKER_CHARS:
            if len(_MAKERS) >= _MAX_MAKERS:
                _MAKERS.clear()
            _MAKERS[text] = found
    return found


def _interned(conn: sqlite3.Connection,
              raw: list[tuple[Any, ...]]) -> tuple[dict[tuple[int, int], str], dict[int, dict[int, tuple[Any, Any]]]]:
    """The interned texts ``raw`` refers to, and their ``_made`` entries by stream and reference."""
    streams = {row[_WIDTH] for row in raw}
    refs = {row[_INFO] for row in raw} | {row[_RENDER] for row in raw}
    wanted = {ref for ref in refs if type(ref) is int}
    if not wanted:
        return {}, {}
    if len(streams) == 1:
        values = _values(conn, {streams.pop(): wanted})
    else:
        by_stream: dict[int, set[int]] = {}
        for row in raw:
            for ref in (row[_INFO], row[_RENDER]):
                if type(ref) is int:
                    by_stream.setdefault(row[_WIDTH], set()).add(ref)
        values = _values(conn, by_stream)
    entries: dict[int, dict[int, tuple[Any, Any]]] = {}
    for (stream, ref), text in values.items():
        entries.setdefault(stream, {})[ref] = _made(text)
    return values, entries


def read_step_records(conn: sqlite3.Connection, sql: str,
                      params: Sequence[Any] | Mapping[str, Any]) -> list[StepRecord]:
    """``decode_step`` of every row ``read_steps`` gives for ``sql`` (selecting ``RAW_COLUMNS``),
    the same records value for value, each with its own containers. Caller's thread, inside a read
    transaction; blocks for the queries."""
    raw = conn.execute(sql, params).fetchall()
    values, interned = _interned(conn, raw)
    if not _FUSED:
        return [decode_step(_v3_row(row, values, clock)) for clock in [_TimeText()] for row in raw]
    makers = _MAKERS
    out = []
    append = out.append
    second, head = -1, ""
    current, refs = None, {}
    for row in raw:
        (run_id, agent_id, seq_id, ts, ep, si, reward, term, trunc, action, observation, info, render,
         extra, stream, base_us) = row
        if type(ts) is int:  # (_TimeText.text, inline)
            whole, micros = divmod(base_us + ts, 1_000_000)
            if whole != second:
                second, head = whole, format_ts_us(whole * 1_000_000)[:20]
            ts = f"{head}{micros:06d}+00:00"
        if stream != current:
            current, refs = stream, interned.get(stream, {})
        if extra is not None:  # the extras may hold any key: decode_step's own merge
            if type(info) is int:
                info = values.get((stream, info))
            if type(render) is int:
                render = values.get((stream, render))
            append(decode_step((run_id, agent_id, seq_id, ts, ep, si, reward, term, trunc, action, observation,
                                info, render, extra)))
            continue
        payload: dict[str, Any] = {}  # decode_step's order: the non-NULL columns
        if ep is not None:
            payload["episode_index"] = ep
        if si is not None:
            payload["step_index"] = si
        if action is not None:
            found = makers.get(action) or _made(action)
            payload["action"] = found[0] if found[1] is None else found[1]()
        if observation is not None:
            found = makers.get(observation) or _made(observation)
            payload["observation"] = found[0] if found[1] is None else found[1]()
        if reward is not None:
            payload["reward"] = reward
        if term is not None:
            payload["terminated"] = term = bool(term)
        if trunc is not None:
            payload["truncated"] = trunc = bool(trunc)
        if info is not None:
            found = refs.get(info) if type(info) is int else makers.get(info) or _made(info)
            if found is not None:  # (a reference missing from step_values: no info, as read_steps reads it)
                payload["info"] = found[0] if found[1] is None else found[1]()
        if render is not None:
            found = refs.get(render) if type(render) is int else makers.get(render) or _made(render)
            if found is not None:
                payload["render_payload"] = found[0] if found[1] is None else found[1]()
        append(StepRecord(run_id, None if agent_id == NO_AGENT else agent_id, seq_id, ts, ep, si, reward, term,
                          trunc, payload))
    return out
