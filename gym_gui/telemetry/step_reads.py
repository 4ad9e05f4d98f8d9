"""Hot step reads on the version 4 layout, without the view (Qt-free).

``read_steps`` runs a SELECT of the raw ``step_rows`` columns (``RAW_COLUMNS`` over ``step_rows s
JOIN stream_keys k``), then resolves the interned values it met with one look-up per stream and
formats the integer timestamps in Python; it returns rows in the order and shape of
``sqlite_rows.STEP_READ_COLUMNS`` (what the view ``steps`` gives), ready for ``decode_step``.

``stream_step_records`` (``episode_step_records``, ``step_records_after``) reads one stream's
rows with fewer columns (``RECORD_COLUMNS``: not the stream's keys and time base in every row) and
gives the ``StepRecord`` s that ``decode_step`` of the ``read_steps`` rows gives, with less Python
work per row: each distinct JSON text (an interned info or render payload, an action or
observation text) is decoded once (``read_json``) and kept between reads (bounded), and each read
gets one copy of each container value it hands out (orjson's reading of the text where that is
exact, a copy otherwise), shared by the records of that read that hold the same text: the records
are read-only, and no two reads share a mutable value (a record changed against that contract
changes no later read). Rows with extras go through ``decode_step`` itself; with declared generic
columns (``tables``) every row does. A read whose rows are all plain (``_plain_records``: no
extras, no split info, integer times, every payload column but the render payload set) is built a
column at a time, with no per-row branch: the same records, shared the same way.
``episode_step_records`` first tries one statement that gives the whole episode as one JSON array
(``_episode_json_records``, ``EPISODE_JSON_SQL``: the sqlite3 module no longer hands each column of
each row over one by one), the rewards and split numbers JSON cannot carry exactly read by a second
statement; a read it cannot take goes to the row fetch. Records are made by
``sqlite_records.StepRecordBuilder`` (``_build_record``).

An info stored as its last number and a template (schema version 5: the number in ``info_json``,
the template's ref as a BLOB in ``extra_json``, ``step_layout.SPLIT_SQL``) reads as the text
``info_numbers.join_info`` gives (the text the writer was handed), with no extras; the records get
the template's decoded object (kept between reads, like a text) with the number put in, a fresh
dict per record.

Call them inside one read transaction (both queries see one snapshot). Any thread, on its own
connection.
"""

from __future__ import annotations

import sqlite3
from array import array
from functools import partial
from itertools import repeat
from typing import Any, Callable, Mapping, Sequence

import attrs
import orjson

from gym_gui.telemetry.info_numbers import blob_ref, join_info
from gym_gui.telemetry.json_text import may_hold_big_int
from gym_gui.telemetry.sqlite_records import StepRecord, StepRecordBuilder
from gym_gui.telemetry.sqlite_rows import NO_AGENT, STEP_READ_COLUMNS, decode_step, read_json
from gym_gui.telemetry.step_layout import episode_steps_sql, format_ts_us

__all__ = [
    "EPISODE_RECORDS_SQL",
    "RAW_COLUMNS",
    "RECORDS_AFTER_SQL",
    "RECORD_COLUMNS",
    "StepValueCache",
    "episode_step_records",
    "read_steps",
    "step_records_after",
    "stream_step_records",
]

_V3 = tuple(n.strip() for n in STEP_READ_COLUMNS.split(","))
_AT = {name: i for i, name in enumerate(_V3)}
_INFO, _RENDER, _TS, _EXTRA = _AT["info_json"], _AT["render_payload_json"], _AT["ts_iso"], _AT["extra_json"]
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
        info, render, extra = row[_INFO], row[_RENDER], row[_EXTRA]
        if type(extra) is bytes:  # a split info: its template's ref
            wanted.setdefault(row[_WIDTH], set()).add(blob_ref(extra))
        elif type(info) is int:
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
    info, render, ts, extra = row[_INFO], row[_RENDER], row[_TS], row[_EXTRA]
    if type(ts) is int:
        ts = clock.text(row[_WIDTH + 1] + ts)
    if type(extra) is bytes:  # a split info (module doc)
        template = values.get((row[_WIDTH], blob_ref(extra)))
        info = None if template is None else join_info(template, info)
        extra = None
    elif type(info) is int:
        info = values.get((row[_WIDTH], info))
    if type(render) is int:
        render = values.get((row[_WIDTH], render))
    return (*row[:_TS], ts, *row[_TS + 1:_INFO], info, render, extra, *row[_EXTRA + 1:_WIDTH])


def _fresh(value: Any) -> Any:
    """A copy of a decoded JSON value: new dicts and lists, the same immutable leaves."""
    kind = type(value)
    if kind is dict:
        return {k: _fresh(v) for k, v in value.items()}
    if kind is list:
        return [_fresh(v) for v in value]
    return value


def _flat_copy(value: dict[str, Any], list_keys: tuple[str, ...]) -> dict[str, Any]:
    """A copy of a dict of immutable values and flat lists of them, its lists copied too."""
    out = value.copy()
    for key in list_keys:
        out[key] = out[key].copy()
    return out


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
    if kind is dict and all(type(v) in _SHARED_TYPES or type(v) is list and _SHARED_TYPES.issuperset(map(type, v))
                            for v in value.values()):
        # (a render payload: texts and numbers, flat lists of them) a copy is cheaper than a parse
        return value, partial(_flat_copy, value, tuple(k for k, v in value.items() if type(v) is list))
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


#: The columns ``stream_step_records`` reads of ``step_rows s``: one stream's, so neither the
#: stream's keys nor its time base in every row (each column of each row costs the sqlite3 module
#: a GIL release).
RECORD_COLUMNS = ("s.seq_id, s.ts_us, s.episode_index, s.step_index, s.reward, s.terminated, s.truncated, "
                  "s.action_json, s.observation_json, s.info_json, s.render_payload_json, s.extra_json")
_R_INFO, _R_RENDER, _R_EXTRA = 9, 10, 11
#: One episode's rows of a stream (``:stream``, ``:ep``): its span, then a range of the primary key.
EPISODE_RECORDS_SQL = (
    f"SELECT {RECORD_COLUMNS} FROM episode_spans p JOIN step_rows s ON s.stream = p.stream "
    "AND s.seq_id BETWEEN p.first_seq AND p.last_seq "
    "WHERE p.stream = :stream AND p.episode_index = :ep AND s.episode_index = :ep ORDER BY s.seq_id")
#: A stream's rows after a seq_id (``:stream``, ``:after``, ``:limit``).
RECORDS_AFTER_SQL = (f"SELECT {RECORD_COLUMNS} FROM step_rows s WHERE s.stream = :stream AND s.seq_id > :after "
                     "ORDER BY s.seq_id LIMIT :limit")
_STREAM_SQL = "SELECT stream, ts_base_us FROM stream_keys WHERE run_id = ? AND agent_id = ?"


#: Templates (``info_numbers``) decoded: text -> (the object with the number's key set to 0, that
#: key), or None when a record needs the whole text decoded (a value that is not immutable). Bounded.
_TEMPLATES: dict[str, tuple[dict[str, Any], str] | None] = {}


def _template(text: str) -> tuple[dict[str, Any], str] | None:
    found = _TEMPLATES.get(text, _ABSENT)
    if found is _ABSENT:
        zero, one = read_json(text + "0}"), read_json(text + "1}")
        keys = [k for k in zero if zero[k] != one[k]]
        found = None
        if len(keys) == 1 and _SHARED_TYPES.issuperset(map(type, zero.values())):
            found = (zero, keys[0])
        if len(text) <= _MAX_MAKER_CHARS:
            if len(_TEMPLATES) >= _MAX_MAKERS:
                _TEMPLATES.clear()
            _TEMPLATES[text] = found
    return found  # type: ignore[return-value]


def _split_value(template: str, number: Any) -> Any:
    """The decoded info of ``template`` and ``number``: equal to ``read_json(join_info(...))``."""
    found = _TEMPLATES.get(template, _ABSENT)
    if found is _ABSENT:
        found = _template(template)
    if found is None:
        return _handed(join_info(template, number))
    value = found[0].copy()
    value[found[1]] = number
    return value


def _handed(text: str) -> Any:
    """The value one read hands out for ``text``: the decoded value itself when it is immutable,
    else a fresh copy of it (never the cached one: nothing a caller does reaches a later read)."""
    value, copy = _MAKERS.get(text) or _made(text)
    return value if copy is None else copy()


def _interned(conn: sqlite3.Connection, stream: int,
              raw: list[tuple[Any, ...]]) -> tuple[dict[tuple[int, int], str], dict[int, Any]]:
    """The interned texts of ``stream`` that ``raw`` refers to, and their values as this read
    hands them out (``_handed``) by reference; a reference missing from ``step_values`` is in neither."""
    whole = {row[_R_RENDER] for row in raw}
    templates = set()
    for row in raw:
        extra = row[_R_EXTRA]
        if type(extra) is bytes:  # a split info: its template
            templates.add(blob_ref(extra))
        else:
            whole.add(row[_R_INFO])
    wanted = {ref for ref in whole | templates if type(ref) is int}
    if not wanted:
        return {}, {}
    values = _values(conn, {stream: wanted})
    return values, {ref: _handed(text) for (_, ref), text in values.items() if ref in whole}


class StepValueCache:
    """The interned texts (``step_values``: (stream, ref) -> JSON text) one read-only connection has
    read, kept between its reads while no other connection committed (``PRAGMA data_version``, read
    inside the read transaction after its first query: a deletion, a stream number used again, any
    write another process made is seen at the next read). Bounded. One connection's, one thread's."""

    __slots__ = ("version", "texts", "row_reads")
    MAX_TEXTS = 65536
    #: Reads of a stream's episodes that go to the row fetch at once after one that the JSON read
    #: (``_episode_json_records``) did not read well; then the JSON read is tried again.
    ROW_READS_AFTER_MISS = 15
    MAX_STREAMS = 1024

    def __init__(self) -> None:
        self.version: int | None = None
        self.texts: dict[tuple[int, int], str] = {}
        #: (run_id, stored agent_id) -> the episode reads left that go to the row fetch at once
        self.row_reads: dict[tuple[str, str], int] = {}

    def prefers_rows(self, key: tuple[str, str]) -> bool:
        """Whether this read of the stream ``key`` goes to the row fetch at once (counted). The
        connection's thread; no query."""
        left = self.row_reads.get(key)
        if not left:
            return False
        self.row_reads[key] = left - 1
        return True

    def missed(self, key: tuple[str, str]) -> None:
        """The JSON read of the stream ``key`` fell back or needed most rows again: its next
        ``ROW_READS_AFTER_MISS`` episode reads go to the row fetch. The connection's thread."""
        if len(self.row_reads) >= self.MAX_STREAMS:
            self.row_reads.clear()
        self.row_reads[key] = self.ROW_READS_AFTER_MISS

    def current(self, conn: sqlite3.Connection) -> dict[tuple[int, int], str]:
        """The texts still valid in ``conn``'s read transaction (emptied when another connection
        committed since). The connection's thread, inside a read transaction; one PRAGMA."""
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if version != self.version or len(self.texts) > self.MAX_TEXTS:
            self.version = version
            self.texts = {}
        return self.texts


def _cached_values(conn: sqlite3.Connection, stream: int, wanted: set[int],
                   cache: StepValueCache | None) -> dict[tuple[int, int], str]:
    """``_values(conn, {stream: wanted})``, the texts ``cache`` holds not read again."""
    if cache is None:
        return _values(conn, {stream: wanted})
    known = cache.current(conn)
    found = {key: known[key] for key in zip(repeat(stream), wanted) if key in known}
    if len(found) != len(wanted):
        fetched = _values(conn, {stream: {ref for ref in wanted if (stream, ref) not in found}})
        known.update(fetched)
        found.update(fetched)
    return found


_ABSENT: Any = object()
_RECORD_FIELDS = ("run_id", "agent_id", "seq_id", "ts_iso", "episode_index", "step_index", "reward", "terminated",
                  "truncated", "payload")


def _builds_records() -> bool:
    """Whether ``StepRecordBuilder`` makes the records ``StepRecord(...)`` makes (its slots set by
    attribute stores, then its class set to ``StepRecord``): ``StepRecord`` the plain slotted class
    of these ten fields without validators, converters or init hooks, and the switch of class
    allowed. Checked once at import."""
    fields = attrs.fields(StepRecord)
    if (tuple(f.name for f in fields) != _RECORD_FIELDS
            or any(f.validator is not None or f.converter is not None or not f.init for f in fields)
            or hasattr(StepRecord, "__attrs_post_init__") or hasattr(StepRecord, "__attrs_pre_init__")):
        return False
    values = ("run", None, 1, "2026-01-01T00:00:00.000000+00:00", 0, 1, 0.5, True, False, {"step_index": 1})
    try:
        made = _build_record(*values)
    except (TypeError, AttributeError):
        return False
    want = StepRecord(*values)
    return type(made) is StepRecord and made == want and repr(made) == repr(want)


def _build_record(run_id: str, agent_id: str | None, seq_id: int, ts_iso: str, episode_index: int | None,
                  step_index: int | None, reward: float | None, terminated: bool | None, truncated: bool | None,
                  payload: Mapping[str, Any]) -> StepRecord:
    """``StepRecord(...)`` made by ``StepRecordBuilder`` (attrs' frozen ``__init__`` costs an
    ``object.__setattr__`` call per field, about a quarter of a step read)."""
    record = _new(StepRecordBuilder)
    record.run_id = run_id
    record.agent_id = agent_id
    record.seq_id = seq_id
    record.ts_iso = ts_iso
    record.episode_index = episode_index
    record.step_index = step_index
    record.reward = reward
    record.terminated = terminated
    record.truncated = truncated
    record.payload = payload
    record.__class__ = StepRecord  # type: ignore[assignment]
    return record  # type: ignore[return-value]


_new = object.__new__
_BUILDS = _builds_records()


def _record_maker() -> Callable[..., StepRecord]:
    """A callable equal to ``StepRecord(...)`` for these positional fields: ``_build_record`` when
    it makes the same records (``_builds_records``), else ``StepRecord`` itself."""
    return _build_record if _BUILDS else StepRecord


_make_record = _record_maker()
#: "000" .. "999": a step's microseconds as two of these (no integer formatting per row).
_DIGITS3 = tuple(f"{n:03d}" for n in range(1000))


def stream_step_records(conn: sqlite3.Connection, run_id: str, agent_id: str, sql: str,
                        params: Mapping[str, Any], cache: StepValueCache | None = None) -> list[StepRecord]:
    """The StepRecords of the rows of one stream (``agent_id`` as stored: ``''`` for none) that
    ``sql`` selects (``RECORD_COLUMNS`` of ``step_rows s``, the stream as ``:stream``; e.g.
    ``EPISODE_RECORDS_SQL``), equal value for value to ``decode_step`` of what the view ``steps``
    gives. Each distinct JSON text (an interned info or render payload, an action or observation
    text) is decoded once and its value handed to every record of this read that holds it: the
    records of one read share the containers of equal texts (read-only, as the records are), no
    two reads share one. Caller's thread, inside a read transaction (its queries see one
    snapshot); blocks for the queries. ``cache``: ``conn``'s interned texts kept between reads, or None."""
    found = conn.execute(_STREAM_SQL, (run_id, agent_id)).fetchone()
    if found is None:
        return []
    stream, base_us = found
    raw = conn.execute(sql, {**params, "stream": stream}).fetchall()
    loaded = None if agent_id == NO_AGENT else agent_id
    if raw:
        plain = _plain_records(conn, run_id, loaded, stream, base_us, raw, cache)
        if plain is not None:
            return plain
    values, refs = _interned(conn, stream, raw)
    texts: dict[str, Any] = {}  # this read's value of each action / observation / info / render text
    out = []
    append = out.append
    digits, make_record = _DIGITS3, _make_record
    lo, hi, head = 0, -1, ""  # the second being formatted: [lo, hi) in the stream's time base, its text
    for seq_id, ts, ep, si, reward, term, trunc, action, observation, info, render, extra in raw:
        if type(ts) is int:  # (_TimeText.text, relative to the stream's base: small integers)
            if not lo <= ts < hi:
                whole_us = base_us + ts
                whole_us -= whole_us % 1_000_000
                lo, hi, head = whole_us - base_us, whole_us - base_us + 1_000_000, format_ts_us(whole_us)[:20]
            micros = ts - lo
            ts = f"{head}{digits[micros // 1000]}{digits[micros % 1000]}+00:00"
        number = _ABSENT
        if type(extra) is bytes:  # a split info (module doc): no extras
            number, template, extra = info, values.get((stream, blob_ref(extra))), None
        if extra is not None:  # the extras may hold any key: decode_step's own merge
            if type(info) is int:
                info = values.get((stream, info))
            if type(render) is int:
                render = values.get((stream, render))
            row = (run_id, agent_id, seq_id, ts, ep, si, reward, term, trunc, action, observation, info, render, extra)
            append(decode_step(row))
            continue
        if term is not None:
            term = True if term else False
        if trunc is not None:
            trunc = True if trunc else False
        if action is not None:
            a = texts.get(action, _ABSENT)
            if a is _ABSENT:
                a = texts[action] = _handed(action)
        else:
            a = _ABSENT
        if observation is not None:
            o = texts.get(observation, _ABSENT)
            if o is _ABSENT:
                o = texts[observation] = _handed(observation)
        else:
            o = _ABSENT
        if number is not _ABSENT:
            i = _ABSENT if template is None else _split_value(template, number)
        elif info is None:
            i = _ABSENT
        elif type(info) is int:
            i = refs.get(info, _ABSENT)  # (a reference missing from step_values: no info, as read_steps reads it)
        else:
            i = texts.get(info, _ABSENT)
            if i is _ABSENT:
                i = texts[info] = _handed(info)
        if render is None:
            r = _ABSENT
        elif type(render) is int:
            r = refs.get(render, _ABSENT)
        else:
            r = texts.get(render, _ABSENT)
            if r is _ABSENT:
                r = texts[render] = _handed(render)
        if (ep is not None and si is not None and a is not _ABSENT and o is not _ABSENT and reward is not None
                and term is not None and trunc is not None and i is not _ABSENT):
            if r is not _ABSENT:  # (one literal: no resize of a growing dict)
                payload: dict[str, Any] = {
                    "episode_index": ep, "step_index": si, "action": a, "observation": o, "reward": reward,
                    "terminated": term, "truncated": trunc, "info": i, "render_payload": r}
            else:
                payload = {"episode_index": ep, "step_index": si, "action": a, "observation": o, "reward": reward,
                           "terminated": term, "truncated": trunc, "info": i}
        else:  # decode_step's order: the non-NULL columns
            payload = {}
            if ep is not None:
                payload["episode_index"] = ep
            if si is not None:
                payload["step_index"] = si
            if a is not _ABSENT:
                payload["action"] = a
            if o is not _ABSENT:
                payload["observation"] = o
            if reward is not None:
                payload["reward"] = reward
            if term is not None:
                payload["terminated"] = term
            if trunc is not None:
                payload["truncated"] = trunc
            if i is not _ABSENT:
                payload["info"] = i
            if r is not _ABSENT:
                payload["render_payload"] = r
        append(make_record(run_id, loaded, seq_id, ts, ep, si, reward, term, trunc, payload))
    return out


_INT_OR_TEXT = frozenset({int, str})


_US_PER_S = 1_000_000
#: "000+00:00" .. "999+00:00": a time text's last three digits and its offset.
_TAILS = tuple(f"{n:03d}+00:00" for n in range(1000))


def _time_texts(base_us: int, ts_us: Sequence[int]) -> list[str]:
    """The canonical texts (``format_ts_us``) of a stream's integer times relative to ``base_us``
    (``stream_step_records``' formatting: each second's date and time formatted once)."""
    out = []
    append, digits, tails = out.append, _DIGITS3, _TAILS
    lo, hi, head = 0, -1, ""  # the second being formatted: [lo, hi) in the stream's time base, its text
    for ts in ts_us:
        if not lo <= ts < hi:
            whole_us = base_us + ts
            whole_us -= whole_us % _US_PER_S
            lo, hi, head = whole_us - base_us, whole_us - base_us + _US_PER_S, format_ts_us(whole_us)[:20]
        micros = ts - lo
        append(f"{head}{digits[micros // 1000]}{tails[micros % 1000]}")
    return out


def _plain_records(conn: sqlite3.Connection, run_id: str, loaded: str | None, stream: int, base_us: int,
                   raw: list[tuple[Any, ...]], cache: StepValueCache | None = None) -> list[StepRecord] | None:
    """``stream_step_records``' records of ``raw`` built a column at a time, when the whole read is
    plain: no extras and no split info, integer times, every payload column but the render payload
    non-NULL, info and render payload each an interned reference or a text, every reference found,
    the render payload NULL in every row or in none; None otherwise (the row loop reads it). The
    values are the ones the row loop gives, shared the same way (one value per text per read)."""
    n = len(raw)
    _seq, ts, eps, sis, rewards, terms, truncs, actions, observations, infos, renders, extras = zip(*raw)
    if (extras.count(None) != n or set(map(type, ts)) != {int}
            or None in eps or None in sis or None in rewards or None in terms or None in truncs):
        return None
    no_render = renders.count(None)
    if no_render not in (0, n):
        return None
    info_set, render_set = set(infos), set(renders) if not no_render else set()
    used = info_set | render_set
    shown = set(actions).union(observations)
    if None in shown or not _INT_OR_TEXT.issuperset(map(type, used)):  # (None is neither)
        return None
    wanted = {ref for ref in used if type(ref) is int}
    found = _cached_values(conn, stream, wanted, cache) if wanted else {}
    if len(found) != len(wanted):
        return None  # (a reference missing from step_values: the row loop's reading)
    texts = {text: _handed(text) for text in shown.union(used) if type(text) is str}
    for (_, ref), text in found.items():
        texts[ref] = _handed(text)
    get = texts.__getitem__
    columns = [eps, sis, map(get, actions), map(get, observations), rewards, map(bool, terms), map(bool, truncs),
               map(get, infos)]
    if not no_render:
        columns.append(map(get, renders))
    try:
        if no_render:
            payloads = [{"episode_index": e, "step_index": s, "action": a, "observation": o, "reward": r,
                         "terminated": t, "truncated": u, "info": i} for e, s, a, o, r, t, u, i in zip(*columns)]
        else:
            payloads = [{"episode_index": e, "step_index": s, "action": a, "observation": o, "reward": r,
                         "terminated": t, "truncated": u, "info": i, "render_payload": p}
                        for e, s, a, o, r, t, u, i, p in zip(*columns)]
    except KeyError:  # an action or observation that is no text (a BLOB by raw SQL): the row loop's reading
        return None
    terms, truncs = tuple(map(bool, terms)), tuple(map(bool, truncs))
    times = _time_texts(base_us, ts)
    if not _BUILDS:
        return list(map(StepRecord, repeat(run_id), repeat(loaded), _seq, times, eps, sis, rewards, terms, truncs,
                        payloads))
    return _built(run_id, loaded, _seq, times, eps, sis, rewards, terms, truncs, payloads)


def _built(run_id: str, loaded: str | None, *columns: Sequence[Any]) -> list[StepRecord]:
    """The records of these columns (``_RECORD_FIELDS`` from ``seq_id`` on), made by
    ``StepRecordBuilder`` (``_BUILDS``)."""
    records = list(map(_new, repeat(StepRecordBuilder, len(columns[0]))))
    record_class = StepRecord
    for record, seq_id, ts_iso, ep, si, reward, term, trunc, payload in zip(records, *columns):
        record.run_id = run_id
        record.agent_id = loaded
        record.seq_id = seq_id
        record.ts_iso = ts_iso
        record.episode_index = ep
        record.step_index = si
        record.reward = reward
        record.terminated = term
        record.truncated = trunc
        record.payload = payload
        record.__class__ = record_class
    return records  # type: ignore[return-value]


#: SQL: a step row's reward is a REAL with an integer value that a double holds exactly, so that
#: its integer's text (JSON) reads back as the same float.
_WHOLE_REWARD = ("(typeof(s.reward) = 'real' AND s.reward = CAST(s.reward AS INTEGER) "
                 "AND abs(s.reward) < 9007199254740992.0)")
#: SQL: a split row (``step_layout.SPLIT_SQL``) whose number is not an INTEGER.
_REAL_SPLIT = "(typeof(s.extra_json) = 'blob' AND typeof(s.info_json) <> 'integer')"
_EPISODE_ROWS = ("FROM stream_keys k JOIN episode_spans p ON p.stream = k.stream AND p.episode_index = :ep "
                 "JOIN step_rows s ON s.stream = k.stream AND s.seq_id BETWEEN p.first_seq AND p.last_seq "
                 "AND s.episode_index = :ep WHERE k.run_id = :run AND k.agent_id = :agent")
#: One episode's rows of a stream in one result row (``_episode_json_records``): the stream, its
#: time base, the number of rows, and the rows as one JSON array of arrays: seq_id, ts_us,
#: step_index, the action and observation texts, the reward when ``_WHOLE_REWARD`` (else null),
#: the flags, the info (without extras its column; a split info ``[the template's ref BLOB in hex,
#: its number when an INTEGER, else null]``; with extras ``false``), the render payload column.
#: One statement, and not every column of every row handed to Python one by one.
EPISODE_JSON_SQL = (
    "SELECT k.stream, k.ts_base_us, count(*), json_group_array(json_array("
    "s.seq_id, s.ts_us, s.step_index, s.action_json, s.observation_json, "
    f"CASE WHEN {_WHOLE_REWARD} THEN CAST(s.reward AS INTEGER) END, s.terminated, s.truncated, "
    "CASE WHEN s.extra_json IS NULL THEN s.info_json WHEN typeof(s.extra_json) = 'blob' THEN json_array("
    "hex(s.extra_json), CASE typeof(s.info_json) WHEN 'integer' THEN s.info_json END) ELSE json('false') END, "
    "s.render_payload_json)) " + _EPISODE_ROWS)
#: The reward and info column of the rows whose reward or split number ``EPISODE_JSON_SQL`` left
#: out (null there), in seq_id order.
_LEFT_OUT_SQL = (f"SELECT s.reward, s.info_json {_EPISODE_ROWS} AND (NOT {_WHOLE_REWARD} OR {_REAL_SPLIT}) "
                 "ORDER BY s.seq_id")
_int64s = partial(array, "q")
_joined = "".join
_NUMBER_TYPES = frozenset({int, float})
_INFO_TYPES = frozenset({int, str, list})


def _episode_json_records(conn: sqlite3.Connection, run_id: str, agent_id: str, episode_index: int,
                          cache: StepValueCache | None) -> list[StepRecord] | None:
    """One episode's records read through ``EPISODE_JSON_SQL`` when the episode is plain as
    ``_plain_records`` says, split infos allowed (its integer columns holding integers, its action
    and observation texts): the records the row loop gives, shared the same way; None otherwise
    (the row fetch reads it: a row with extras, another type, a missing reference, a BLOB, no JSON
    functions). The rewards and split numbers that are not integers are read by ``_LEFT_OUT_SQL``
    as they are stored. Caller's thread, inside a read transaction; blocks for the queries."""
    params = {"run": run_id, "agent": agent_id, "ep": episode_index}
    try:
        stream, base_us, n, text = conn.execute(EPISODE_JSON_SQL, params).fetchone()
    except sqlite3.OperationalError:  # a BLOB in a JSON column, or no JSON functions in this SQLite
        return None
    if not n:
        return []
    if not _BUILDS:
        return None
    try:
        rows = _orjson_loads(text)
    except orjson.JSONDecodeError:  # (a text that is not UTF-8: the row fetch says so)
        return None
    seqs, ts, sis, actions, observations, rewards, terms, truncs, infos, renders = zip(*rows)
    try:  # (C-level checks: an int64 array takes only integers (SQLite gives no bools), a join only texts)
        _int64s(seqs), _int64s(ts), _int64s(sis), _int64s(terms), _int64s(truncs)
        _joined(actions), _joined(observations)
    except (TypeError, OverflowError):  # (a REAL, a NULL, another type)
        return None
    if list(seqs) != sorted(seqs):  # (the aggregate's order is the primary key's: checked)
        rows.sort(key=_first)
        seqs, ts, sis, actions, observations, rewards, terms, truncs, infos, renders = zip(*rows)
    no_render = renders.count(None)
    info_types = set(map(type, infos))
    if no_render not in (0, n) or not _INFO_TYPES.issuperset(info_types):
        return None  # (with extras: false, a bool; no info: None)
    splits = [info for info in infos if type(info) is list] if list in info_types else []
    used = set(infos).union(renders) if not splits else set(i for i in infos if type(i) is not list).union(renders)
    if no_render:
        used.discard(None)
    if not _INT_OR_TEXT.issuperset(map(type, used)):
        return None
    templates = {int(ref, 16) for ref, _ in splits} if splits else set()
    wanted = {ref for ref in used if type(ref) is int} | templates
    found = _cached_values(conn, stream, wanted, cache) if wanted else {}
    if len(found) != len(wanted):
        return None  # (a reference missing from step_values: the row loop's reading)
    others = rewards.count(None)
    if others or None in map(_second, splits):
        left_out = conn.execute(_LEFT_OUT_SQL, params).fetchall()
        if cache is not None and 4 * len(left_out) > n:  # (most rows read twice: the row fetch reads them once)
            cache.missed((run_id, agent_id))
        filled = _filled(rewards, infos, left_out)
        if filled is None:
            return None
        floats, infos = filled
    else:
        floats = list(map(float, rewards))
    texts = {text: _handed(text) for text in used.union(actions, observations) if type(text) is str}
    whole = used - templates
    for (_, ref), value in found.items():
        if ref in whole:
            texts[ref] = _handed(value)
    get = texts.__getitem__
    if splits:
        info_values = [get(i) if type(i) is not list else _split_value(found[(stream, int(i[0], 16))], i[1])
                       for i in infos]
    else:
        info_values = list(map(get, infos))
    loaded = None if agent_id == NO_AGENT else agent_id
    new, builder, record_class, digits, tails = _new, StepRecordBuilder, StepRecord, _DIGITS3, _TAILS
    out = []
    append = out.append
    ep = episode_index
    lo, hi, head = 0, -1, ""  # the second being formatted: [lo, hi) in the stream's time base, its text
    for seq_id, t, si, a, o, reward, term, trunc, i, r in zip(seqs, ts, sis, actions, observations, floats, terms,
                                                                truncs, info_values, renders):
        if not lo <= t < hi:
            whole_us = base_us + t
            whole_us -= whole_us % _US_PER_S
            lo, hi, head = whole_us - base_us, whole_us - base_us + _US_PER_S, format_ts_us(whole_us)[:20]
        micros = t - lo
        term = True if term else False
        trunc = True if trunc else False
        record = new(builder)
        record.run_id = run_id
        record.agent_id = loaded
        record.seq_id = seq_id
        record.ts_iso = f"{head}{digits[micros // 1000]}{tails[micros % 1000]}"
        record.episode_index = ep
        record.step_index = si
        record.reward = reward
        record.terminated = term
        record.truncated = trunc
        if no_render:
            record.payload = {"episode_index": ep, "step_index": si, "action": get(a), "observation": get(o),
                              "reward": reward, "terminated": term, "truncated": trunc, "info": i}
        else:
            record.payload = {"episode_index": ep, "step_index": si, "action": get(a), "observation": get(o),
                              "reward": reward, "terminated": term, "truncated": trunc, "info": i,
                              "render_payload": get(r)}
        record.__class__ = record_class
        append(record)
    return out  # type: ignore[return-value]


def _filled(rewards: Sequence[int | None], infos: Sequence[Any],
            left_out: list[tuple[Any, Any]]) -> tuple[list[float], list[Any]] | None:
    """The rewards as floats and the infos with every split number, the values ``EPISODE_JSON_SQL``
    left out taken from ``left_out`` (``_LEFT_OUT_SQL``'s rows, in the same order); None when they
    do not match (a NULL reward, a number of another type)."""
    rows = iter(left_out)
    floats: list[float] = []
    filled: list[Any] = []
    for reward, info in zip(rewards, infos):
        split = type(info) is list
        if reward is None or split and info[1] is None:
            stored = next(rows, None)
            if stored is None:
                return None
            if reward is None:
                reward = stored[0]
                if type(reward) is not float:
                    return None
            if split and info[1] is None:
                if type(stored[1]) not in _NUMBER_TYPES:
                    return None
                info = [info[0], stored[1]]
        floats.append(float(reward))
        filled.append(info)
    if next(rows, None) is not None:
        return None
    return floats, filled


def _second(pair: list[Any]) -> Any:
    return pair[1]


def _first(row: list[Any]) -> Any:
    return row[0]


_EPISODE_V3_SQL = episode_steps_sql(RAW_COLUMNS)
_AFTER_V3_SQL = (f"SELECT {RAW_COLUMNS} FROM stream_keys k JOIN step_rows s ON s.stream = k.stream "
                 "WHERE k.run_id = :run AND k.agent_id = :agent AND s.seq_id > :after ORDER BY s.seq_id LIMIT :limit")


def episode_step_records(conn: sqlite3.Connection, run_id: str, agent_id: str, episode_index: int,
                         cache: StepValueCache | None = None) -> list[StepRecord]:
    """One episode's steps of a stream (``agent_id`` as stored) in seq_id order (``cache``: as
    ``stream_step_records``): the JSON read (``_episode_json_records``), else the row fetch
    (``stream_step_records``); after a JSON read that fell back or read most rows' numbers again,
    the stream's next reads go to the row fetch at once (``StepValueCache.prefers_rows``). Caller's
    thread, inside a read transaction; blocks for the queries."""
    if _FUSED:
        if cache is None or not cache.prefers_rows((run_id, agent_id)):
            whole = _episode_json_records(conn, run_id, agent_id, episode_index, cache)
            if whole is not None:
                return whole
            if cache is not None:
                cache.missed((run_id, agent_id))
        return stream_step_records(conn, run_id, agent_id, EPISODE_RECORDS_SQL, {"ep": episode_index}, cache)
    params = {"run": run_id, "agent": agent_id, "ep": episode_index}
    return [decode_step(row) for row in read_steps(conn, _EPISODE_V3_SQL, params)]


def step_records_after(conn: sqlite3.Connection, run_id: str, agent_id: str, after_seq_id: int,
                       limit: int, cache: StepValueCache | None = None) -> list[StepRecord]:
    """At most ``limit`` steps of a stream (``agent_id`` as stored) with seq_id > ``after_seq_id``,
    in seq_id order (``cache``: as ``stream_step_records``). Caller's thread, inside a read
    transaction; blocks for the queries."""
    if _FUSED:
        return stream_step_records(conn, run_id, agent_id, RECORDS_AFTER_SQL, {"after": after_seq_id, "limit": limit},
                                   cache)
    params = {"run": run_id, "agent": agent_id, "after": after_seq_id, "limit": limit}
    return [decode_step(row) for row in read_steps(conn, _AFTER_V3_SQL, params)]
