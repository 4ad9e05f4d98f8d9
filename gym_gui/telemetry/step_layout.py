"""The physical layout of steps (schema version 4): tables, the ``steps`` view, timestamps (Qt-free).

Version 4 keeps each step in ``step_rows`` (``WITHOUT ROWID``, primary key ``(stream, seq_id)``,
no other index) and gives raw SQL the version 3 columns through the VIEW ``steps``:

- ``stream_keys`` interns a stream ``(run_id, agent_id)`` as a small integer ``stream`` and holds
  the stream's time base ``ts_base_us``;
- ``step_rows.ts_us`` holds the event's ``ts_iso`` as integer microseconds since the epoch minus
  the stream's base when the text is the canonical ``YYYY-MM-DDTHH:MM:SS.ffffff+00:00`` form
  (formatting the integer back gives the same text), else the text itself;
- ``step_rows.info_json`` / ``render_payload_json`` hold the JSON text, or an INTEGER ``ref`` into
  ``step_values`` (one row per distinct text of a stream, written once);
- (version 5) a step whose info text was split into a template and its last number
  (``info_numbers``) holds that number in ``info_json`` (an INTEGER or REAL) and the template's
  ``ref`` in ``extra_json`` as a BLOB (``SPLIT_SQL``; the extras are otherwise always a JSON object
  text or NULL): the info text is the template, the number's text and ``}``;
- ``episode_spans`` holds the lowest and highest seq_id of each episode of a stream, so one
  episode's steps are a range of the primary key.

The physical columns derive from ``tables.STEPS`` (the view's columns), by name. Pure
declarations and functions; any thread.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta, timezone

from gym_gui.telemetry.info_numbers import number_text_sql, ref_sql
from gym_gui.telemetry.tables import EPISODE_ID_SQL, STEPS, WORKER_ID_SQL, Column, Table

__all__ = [
    "CANONICAL_TS_SQL",
    "SPLIT_SQL",
    "EPISODE_STEPS_SQL",
    "PHYSICAL",
    "STEP_ROWS_TABLE",
    "V4_STATEMENTS",
    "format_ts_us",
    "parse_ts_us",
    "physical_columns",
    "view_sql",
]

#: v3 columns whose physical column holds either the JSON text or an INTEGER reference.
INTERNED = ("info_json", "render_payload_json")
#: The physical name of a v3 column stored under another name.
_RENAMED = {"ts_iso": "ts_us"}
#: v3 columns that live in ``stream_keys`` (the step row keeps the integer ``stream``).
_KEYED = ("run_id", "agent_id")


def _physical_column(col: Column) -> Column:
    if col.name in INTERNED:
        return col._replace(sql="")  # no type: BLOB affinity keeps TEXT as TEXT and an INTEGER ref as INTEGER
    if col.name == "ts_iso":
        return col._replace(name="ts_us", sql="NOT NULL")
    return col


def _step_rows_table() -> Table:
    columns = [Column("stream", "INTEGER NOT NULL", 4, written=True, generic=False)]
    for col in STEPS.columns:
        if col.name in _KEYED or not col.written:
            continue
        columns.append(_physical_column(col))
    return Table("step_rows", columns, "PRIMARY KEY (stream, seq_id)", without_rowid=True)


#: The physical step table (``stream`` first, then the written columns of ``tables.STEPS`` but run_id/agent_id).
STEP_ROWS_TABLE = _step_rows_table()


def _physical_ddl(version: int) -> str:
    lines = [f"    {c.name} {c.sql}".rstrip() for c in STEP_ROWS_TABLE.columns if c.added_in <= version]
    return ("CREATE TABLE step_rows (\n" + ",\n".join(lines) + f",\n    {STEP_ROWS_TABLE.constraints}\n"
            ") WITHOUT ROWID")


# -- timestamps ------------------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_US = 1_000_000
_SECONDS_CACHE: dict[str, int | None] = {}


def _seconds(prefix: str) -> int | None:
    """Epoch seconds of ``YYYY-MM-DDTHH:MM:SS`` when formatting them back gives the same text (UTC, >= 1970)."""
    try:
        parsed = datetime.strptime(prefix, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    if parsed < _EPOCH or parsed.strftime("%Y-%m-%dT%H:%M:%S") != prefix:
        return None
    return int((parsed - _EPOCH).total_seconds())


def parse_ts_us(ts_iso: str) -> int | None:
    """Microseconds since the epoch of a canonical ``YYYY-MM-DDTHH:MM:SS.ffffff+00:00`` text whose
    ``format_ts_us`` is the same text, else None (the text is then stored as it is). Any thread."""
    if type(ts_iso) is not str or len(ts_iso) != 32 or ts_iso[19] != "." or not ts_iso.endswith("+00:00"):
        return None
    fraction = ts_iso[20:26]
    if not (fraction.isascii() and fraction.isdigit()):
        return None
    prefix = ts_iso[:19]
    seconds = _SECONDS_CACHE.get(prefix, -1)
    if seconds == -1:
        seconds = _seconds(prefix)
        if len(_SECONDS_CACHE) > 65536:
            _SECONDS_CACHE.clear()
        _SECONDS_CACHE[prefix] = seconds
    if seconds is None:
        return None
    return seconds * _US + int(fraction)


@functools.lru_cache(maxsize=4096)
def _prefix(seconds: int) -> str:
    return (_EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")


def format_ts_us(ts_us: int) -> str:
    """The canonical text of microseconds since the epoch (>= 0). Any thread."""
    seconds, micros = divmod(ts_us, _US)
    return f"{_prefix(seconds)}.{micros:06d}+00:00"


def _format_sql(us: str) -> str:
    return (f"strftime('%Y-%m-%dT%H:%M:%S', ({us}) / 1000000, 'unixepoch') "
            f"|| printf('.%06d+00:00', ({us}) % 1000000)")


def _parse_sql(text: str) -> str:
    return (f"(CAST(strftime('%s', substr({text}, 1, 19)) AS INTEGER) * 1000000 "
            f"+ CAST(substr({text}, 21, 6) AS INTEGER))")


def canonical_ts_sql(text: str) -> str:
    """SQL: ``text`` is a canonical timestamp that the integer form gives back exactly."""
    return (f"(typeof({text}) = 'text' AND {text} GLOB "
            "'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]+00:00'"
            f" AND {_parse_sql(text)} >= 0 AND {_format_sql(_parse_sql(text))} = {text})")


CANONICAL_TS_SQL = canonical_ts_sql("ts_iso")


def ts_text_sql(stored: str, base: str) -> str:
    """SQL: the ``ts_iso`` text of a stored ``ts_us`` value (an integer offset from ``base``, or the text)."""
    return f"CASE WHEN typeof({stored}) = 'integer' THEN {_format_sql(f'{base} + {stored}')} ELSE {stored} END"


#: SQL (version 5): the step row's info is split, ``s.info_json`` its number and ``s.extra_json`` its
#: template's ref as a BLOB (``info_numbers.ref_blob``; a row's extras are a JSON object text or NULL).
SPLIT_SQL = "typeof(s.extra_json) = 'blob'"


def _interned_sql(column: str, version: int = 5) -> str:
    value = f"(SELECT v.json FROM step_values v WHERE v.stream = s.stream AND v.ref = s.{column})"
    if column == "info_json" and version >= 5:  # a template and its number (info_numbers.join_info)
        template = f"(SELECT v.json FROM step_values v WHERE v.stream = s.stream AND v.ref = {ref_sql('s.extra_json')})"
        return (f"CASE WHEN {SPLIT_SQL} THEN {template} || {number_text_sql('s.info_json')} || '}}' "
                f"WHEN typeof(s.{column}) = 'integer' THEN {value} ELSE s.{column} END")
    return f"CASE WHEN typeof(s.{column}) = 'integer' THEN {value} ELSE s.{column} END"


def _extra_sql(version: int = 5) -> str:
    return f"CASE WHEN {SPLIT_SQL} THEN NULL ELSE s.extra_json END" if version >= 5 else "s.extra_json"


#: The SQL of each v3 ``steps`` column over ``step_rows s JOIN stream_keys k`` (this build's version).
PHYSICAL: dict[str, str] = {"run_id": "k.run_id", "agent_id": "k.agent_id", "ts_iso": ts_text_sql("s.ts_us", "k.ts_base_us")}
for _name in INTERNED:
    PHYSICAL[_name] = _interned_sql(_name)
PHYSICAL["extra_json"] = _extra_sql()
for _col in STEPS.columns:
    if _col.written and _col.name not in PHYSICAL:
        PHYSICAL[_col.name] = f"s.{_col.name}"


def physical_columns(names: str) -> str:
    """``names`` (a comma-separated list of v3 ``steps`` columns) as SQL over ``s`` and ``k``."""
    return ", ".join(PHYSICAL[n.strip()] for n in names.split(","))


def view_sql(version: int) -> str:
    """``CREATE VIEW steps`` with the v3 columns declared up to ``version`` (generated ones computed)."""
    parts = []
    for col in STEPS.columns:
        if col.added_in > version:
            continue
        if col.name == "episode_id":
            parts.append(f"{EPISODE_ID_SQL} AS episode_id")
        elif col.name == "worker_id":
            parts.append(f"{WORKER_ID_SQL} AS worker_id")
        elif col.name in INTERNED:
            parts.append(f"{_interned_sql(col.name, version)} AS {col.name}")
        elif col.name == "extra_json":
            parts.append(f"{_extra_sql(version)} AS {col.name}")
        else:
            parts.append(f"{PHYSICAL[col.name]} AS {col.name}")
    return ("CREATE VIEW steps AS SELECT " + ", ".join(parts)
            + " FROM step_rows s JOIN stream_keys k ON k.stream = s.stream")


def episode_steps_sql(columns: str) -> str:
    """SELECT of ``columns`` (SQL over ``s``/``k``) of one episode's steps in seq_id order: the
    episode's span, then a range of the primary key. Parameters ``:run``, ``:agent``, ``:ep``."""
    return (f"SELECT {columns} FROM stream_keys k JOIN episode_spans p ON p.stream = k.stream "
            "AND p.episode_index = :ep JOIN step_rows s ON s.stream = k.stream "
            "AND s.seq_id BETWEEN p.first_seq AND p.last_seq "
            "WHERE k.run_id = :run AND k.agent_id = :agent AND s.episode_index = :ep ORDER BY s.seq_id")


EPISODE_STEPS_SQL = episode_steps_sql

#: Values of a stream interned at most (the writer's map is bounded; later new texts go inline).
MAX_VALUES_PER_STREAM = 4096
#: Longer texts are never interned (a frame that never repeats would only cost memory).
MAX_INTERNED_CHARS = 2048

_INSERT_COLUMNS = ", ".join(c.name for c in STEP_ROWS_TABLE.columns if c.added_in <= 4)


def _copy_column(col: Column) -> str:
    if col.name == "stream":
        return "k.stream"
    if col.name in INTERNED:
        return (f"COALESCE((SELECT v.ref FROM temp.v4_values v WHERE v.stream = k.stream AND v.json = s.{col.name}), "
                f"s.{col.name})")
    if col.name == "ts_us":
        return f"CASE WHEN {canonical_ts_sql('s.ts_iso')} THEN {_parse_sql('s.ts_iso')} - k.ts_base_us ELSE s.ts_iso END"
    return f"s.{col.name}"


_TEXTS = " UNION ALL ".join(
    f"SELECT k.stream AS stream, s.seq_id AS seq_id, s.{name} AS json FROM steps s JOIN stream_keys k "
    f"ON k.run_id = s.run_id AND k.agent_id = s.agent_id WHERE typeof(s.{name}) = 'text' "
    f"AND length(s.{name}) <= {MAX_INTERNED_CHARS}"
    for name in INTERNED)

#: Version 4: the statements that move every step of a version 3 file into the new tables, in the
#: migration's transaction (texts that repeat within a stream are interned, the first 4096 per
#: stream; canonical timestamps become integers), then replace the table ``steps`` by the view.
V4_STATEMENTS: tuple[str, ...] = (
    """
    CREATE TABLE stream_keys (
        stream      INTEGER PRIMARY KEY,
        run_id      TEXT NOT NULL,
        agent_id    TEXT NOT NULL,
        ts_base_us  INTEGER NOT NULL DEFAULT 0,
        UNIQUE (run_id, agent_id)
    )
    """,
    _physical_ddl(4),
    """
    CREATE TABLE step_values (
        stream  INTEGER NOT NULL,
        ref     INTEGER NOT NULL,
        json    TEXT NOT NULL,
        PRIMARY KEY (stream, ref)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE episode_spans (
        stream         INTEGER NOT NULL,
        episode_index  INTEGER NOT NULL,
        first_seq      INTEGER NOT NULL,
        last_seq       INTEGER NOT NULL,
        PRIMARY KEY (stream, episode_index)
    ) WITHOUT ROWID
    """,
    "INSERT INTO stream_keys (run_id, agent_id, ts_base_us) SELECT run_id, agent_id, "
    f"COALESCE(MIN(CASE WHEN {CANONICAL_TS_SQL} THEN {_parse_sql('ts_iso')} END), 0) "
    "FROM steps GROUP BY run_id, agent_id ORDER BY MIN(rowid)",
    "CREATE TEMP TABLE v4_values AS SELECT stream, json, "
    "ROW_NUMBER() OVER (PARTITION BY stream ORDER BY MIN(seq_id)) - 1 AS ref "
    f"FROM ({_TEXTS}) GROUP BY stream, json HAVING COUNT(*) > 1",
    f"DELETE FROM temp.v4_values WHERE ref >= {MAX_VALUES_PER_STREAM}",
    "CREATE UNIQUE INDEX temp.v4_values_by_json ON v4_values (stream, json)",
    "INSERT INTO step_values (stream, ref, json) SELECT stream, ref, json FROM temp.v4_values",
    f"INSERT INTO step_rows ({_INSERT_COLUMNS}) SELECT "
    + ", ".join(_copy_column(c) for c in STEP_ROWS_TABLE.columns if c.added_in <= 4)
    + " FROM steps s JOIN stream_keys k ON k.run_id = s.run_id AND k.agent_id = s.agent_id",
    "INSERT INTO episode_spans (stream, episode_index, first_seq, last_seq) SELECT stream, episode_index, "
    "MIN(seq_id), MAX(seq_id) FROM step_rows WHERE episode_index IS NOT NULL GROUP BY stream, episode_index",
    "DROP TABLE temp.v4_values",
    "DROP TABLE steps",
    view_sql(4),
)


def added_statements(version: int) -> tuple[str, ...]:
    """Version >= 5: each ``tables.STEPS`` column added in ``version`` goes to ``step_rows``, and the
    view is made again with it."""
    added = [c for c in STEP_ROWS_TABLE.columns if c.added_in == version and version > 4]
    if not added:
        return ()
    return (*(f"ALTER TABLE step_rows ADD COLUMN {c.name} {c.sql}" for c in added),
            "DROP VIEW steps", view_sql(version))
