"""Declared columns: one table declaration per stored record kind (steps, episodes, runs). Qt-free.

Each ``Column`` says its name, its SQL type (with constraints, or a generated expression), the
schema version that added it, and -- for a column that holds a payload value -- the payload key and
the ``Codec`` that encodes and decodes it. Everything positional derives from here by name:

- the DDL: ``Table.create_sql()`` (the columns of version 1) and ``Table.added_sql(version)`` (the
  ``ALTER TABLE ... ADD COLUMN`` of a later version; ``sqlite_schema.MIGRATIONS`` is built from them);
- the INSERTs: ``Table.insert_names()`` (the columns a writer binds, by name, in declaration order);
- the reads: ``Table.names(...)`` checks an explicit read list against the declaration;
- encode/decode of the columns added after the hand-written encoders (``Table.generic()``, see
  ``sqlite_rows``): ``Codec.fits`` / ``encode`` / ``decode``.

The columns of version 1 and 2 are encoded by hand-written code on the sink's hot path
(``sqlite_rows.encode_step``; ``generic=False``); a column declared later is generic: the store
writes its payload key when the value fits the codec (else the value stays in ``extra_json``, so
nothing is lost) and reads it back into the payload.

``add_column`` adds a declaration; it must run before any storage module reads the tables (they
derive their SQL once, at import), so a test adds one in a subprocess
(tests/telemetry/test_declared_topic_column.py). Reading the tables seals them. Any thread.
"""

from __future__ import annotations

import enum
import math
import threading
from typing import Any, NamedTuple

import orjson

from gym_gui.telemetry.data_model import format_episode_id
from gym_gui.telemetry.json_text import dump_json, load_json

__all__ = [
    "Codec",
    "Column",
    "EPISODES",
    "EPISODE_ID_SQL",
    "EP_INDEX_SQL",
    "RELEASED_VERSION",
    "RUNS",
    "STEPS",
    "Table",
    "TableDeclarationError",
    "WORKER_ID_SQL",
    "add_column",
    "episode_app_values",
    "episode_id_sql",
    "ep_index_sql",
    "plain_episode_id",
    "worker_id_sql",
    "latest_version",
    "tables",
]

_INT_MIN, _INT_MAX = -(1 << 63), (1 << 63) - 1


class TableDeclarationError(ValueError):
    """A column declaration that cannot be honoured (duplicate name, tables already in use, ...)."""


class Codec(enum.Enum):
    """How a payload value lives in a column (NULL always means: the key was absent)."""

    INTEGER = "integer"  # an int in SQLite's signed 64-bit range (not a bool)
    REAL = "real"  # a float that is not NaN, or such an int
    TEXT = "text"  # a str
    FLAG = "flag"  # a bool, stored 0/1
    JSON = "json"  # any value, stored as JSON text

    def fits(self, value: Any) -> bool:
        """The column can hold ``value`` exactly (otherwise the value goes to ``extra_json``)."""
        kind = type(value)
        if self is Codec.INTEGER:
            return kind is int and _INT_MIN <= value <= _INT_MAX
        if self is Codec.REAL:
            return (kind is float and not math.isnan(value) and not (value == 0.0 and math.copysign(1.0, value) < 0)
                    or kind is int and _INT_MIN <= value <= _INT_MAX)
        if self is Codec.TEXT:
            return kind is str
        if self is Codec.FLAG:
            return kind is bool
        return True

    def encode(self, value: Any) -> Any:
        """The stored form of a value that ``fits``."""
        if self is Codec.FLAG:
            return 1 if value else 0
        if self is Codec.JSON:
            return dump_json(value)
        return value

    def decode(self, stored: Any) -> Any:
        """The payload value of a non-NULL stored value."""
        if self is Codec.FLAG:
            return bool(stored)
        if self is Codec.JSON:
            return load_json(stored)
        return stored


class Column(NamedTuple):
    """One declared column (module doc). ``written``: the INSERT binds it (False for a generated
    column or one a trigger fills); ``generic``: encoded by the declaration (False: by the table's
    hand-written encoder)."""

    name: str
    sql: str
    added_in: int = 1
    key: str | None = None
    codec: Codec | None = None
    written: bool = True
    generic: bool = True


def _core(name: str, sql: str, key: str | None = None, codec: Codec | None = None) -> Column:
    return Column(name, sql, 1, key, codec, written=True, generic=False)


def _derived(name: str, sql: str, added_in: int) -> Column:
    return Column(name, sql, added_in, None, None, written=False, generic=False)


class Table:
    """The declaration of one table: ordered columns plus its key constraint."""

    def __init__(self, name: str, columns: list[Column], constraints: str, *, without_rowid: bool = False) -> None:
        self.name = name
        self._columns = columns
        self.constraints = constraints
        self.without_rowid = without_rowid

    def __repr__(self) -> str:
        return f"<Table {self.name}: {len(self._columns)} columns>"

    @property
    def columns(self) -> tuple[Column, ...]:
        """Every declared column, in order on disk. Seals the declarations (``add_column`` refuses after)."""
        _seal()
        return tuple(self._columns)

    def column(self, name: str) -> Column:
        """The column called ``name``; KeyError naming the table when it is not declared."""
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"table {self.name} declares no column {name!r}")

    def names(self, *names: str) -> tuple[str, ...]:
        """``names``, each checked to be a declared column (an explicit read or write list)."""
        for name in names:
            self.column(name)
        return names

    def insert_names(self) -> tuple[str, ...]:
        """The columns a writer binds (``written``), in declaration order."""
        return tuple(c.name for c in self.columns if c.written)

    def core_insert_names(self) -> tuple[str, ...]:
        """The written columns of the hand-written encoder (``generic=False``), in order: what a writer
        that knows nothing of later columns binds (they stay NULL; the value stays in the extras)."""
        return tuple(c.name for c in self.columns if c.written and not c.generic)

    def generic(self) -> tuple[Column, ...]:
        """The written payload columns encoded and decoded by the declaration, in order."""
        return tuple(c for c in self.columns if c.generic and c.written and c.key is not None)

    def insert_sql(self, verb: str = "INSERT OR IGNORE", names: tuple[str, ...] | None = None) -> str:
        """``{verb} INTO table (names...) VALUES (?,...)`` with an explicit column list."""
        names = self.insert_names() if names is None else self.names(*names)
        return f"{verb} INTO {self.name} ({', '.join(names)}) VALUES ({','.join('?' * len(names))})"

    def create_sql(self) -> str:
        """``CREATE TABLE`` with the columns of version 1."""
        lines = [f"    {c.name} {c.sql}" for c in self.columns if c.added_in == 1]
        tail = " WITHOUT ROWID" if self.without_rowid else ""
        if self.constraints:
            lines.append(f"    {self.constraints}")
        return f"CREATE TABLE {self.name} (\n" + ",\n".join(lines) + f"\n){tail}"

    def added_sql(self, version: int) -> tuple[str, ...]:
        """``ALTER TABLE ... ADD COLUMN`` of every column added in ``version`` (> 1), in order."""
        return tuple(f"ALTER TABLE {self.name} ADD COLUMN {c.name} {c.sql}"
                     for c in self.columns if c.added_in == version and version > 1)


def _extra(key: str, row: str = "") -> str:
    """SQL of the top-level ``key`` of ``extra_json`` (NULL when absent or the text is not strict JSON);
    ``row``: the columns' qualifier (``NEW.`` in a trigger's WHEN), else none.

    ``instr`` skips the JSON parse for the rows whose extras cannot hold the key (nearly all);
    ``json_valid`` guards ``json_extract``, which raises on the ``NaN`` tokens our extras may hold
    before SQLite 3.42 (such a row reads the default instead).
    """
    return (f"CASE WHEN instr({row}extra_json, '\"{key}\"') AND json_valid({row}extra_json) "
            f"THEN json_extract({row}extra_json, '$.{key}') END")


def worker_id_sql(row: str = "") -> str:
    """The worker id kept in the extras, or NULL (``row``: as for ``_extra``)."""
    return _extra("worker_id", row)


def episode_id_sql(row: str = "") -> str:
    """The existing app's episode id of a row, as ``record_rows.effective_episode_id`` reads it: the
    explicit one kept in the extras, else ``format_episode_id(run_id, episode_index, worker_id)``
    (``{run_id}-ep{index:06d}``, or ``{run_id}-w{worker}-ep{index:06d}`` with a worker id), else ''."""
    return (f"COALESCE({_extra('episode_id', row)}, CASE WHEN {row}episode_index >= 0 THEN {row}run_id "
            f"|| COALESCE('-w' || NULLIF({worker_id_sql(row)}, ''), '') || '-ep' || printf('%06d', {row}episode_index) "
            "ELSE '' END)")


def ep_index_sql(row: str = "") -> str:
    """``ep_index`` of an episode: the one kept in the extras (stored at another index), else episode_index."""
    return f"COALESCE({_extra('ep_index', row)}, {row}episode_index)"


#: The three expressions of a row's own columns (the steps' generated columns, the episodes' triggers).
WORKER_ID_SQL = worker_id_sql()
EPISODE_ID_SQL = episode_id_sql()
EP_INDEX_SQL = ep_index_sql()


def plain_episode_id(run_id: str, episode_index: int) -> str:
    """``EPISODE_ID_SQL`` of a row without extras (no explicit id, no worker id). Pure."""
    return format_episode_id(run_id, episode_index) if episode_index >= 0 else ""


_NO_APP_VALUES = (None, None, None)
_orjson_loads = orjson.loads


def episode_app_values(run_id: Any, episode_index: Any, extra_json: str | None) -> tuple[Any, Any, Any]:
    """``(EPISODE_ID_SQL, EP_INDEX_SQL, WORKER_ID_SQL)`` of an episodes row, computed here, or three
    Nones where that is not cheap to tell exactly (extras that are not a plain JSON object, values
    other than text or integers): the insert trigger then sets them (it runs whenever the given
    values are not the rule's, so a wrong guess costs time, never a wrong value). Pure."""
    if type(episode_index) is not int:
        return _NO_APP_VALUES
    if extra_json is None:
        return plain_episode_id(run_id, episode_index), episode_index, None
    try:
        extras = _orjson_loads(extra_json)  # (a value it rounds is told from the rule's by the trigger)
    except ValueError:
        return _NO_APP_VALUES
    if type(extras) is not dict:
        return _NO_APP_VALUES
    get = extras.get
    worker_id, episode_id, ep_index = get("worker_id"), get("episode_id"), get("ep_index")
    if not (worker_id is None or type(worker_id) is str) or not (episode_id is None or type(episode_id) is str):
        return _NO_APP_VALUES
    if ep_index is None:
        ep_index = episode_index
    elif type(ep_index) is not int:
        return _NO_APP_VALUES
    if episode_id is None:
        episode_id = format_episode_id(run_id, episode_index, worker_id) if episode_index >= 0 else ""
    return episode_id, ep_index, worker_id

_I, _R, _S, _F, _J = Codec.INTEGER, Codec.REAL, Codec.TEXT, Codec.FLAG, Codec.JSON

#: One row per STEP_APPENDED event. Version 2's columns are VIRTUAL generated ones (no bytes on
#: disk, no cost on insert) for the existing app's raw SQL.
STEPS = Table("steps", [
    _core("run_id", "TEXT NOT NULL"),
    _core("agent_id", "TEXT NOT NULL"),
    _core("seq_id", "INTEGER NOT NULL"),
    _core("episode_index", "INTEGER", "episode_index", _I),
    _core("step_index", "INTEGER", "step_index", _I),
    _core("action_json", "TEXT", "action", _J),
    _core("observation_json", "TEXT", "observation", _J),
    _core("reward", "REAL", "reward", _R),
    _core("terminated", "INTEGER", "terminated", _F),
    _core("truncated", "INTEGER", "truncated", _F),
    _core("info_json", "TEXT", "info", _J),
    _core("render_payload_json", "TEXT", "render_payload", _J),
    _core("extra_json", "TEXT"),
    _core("ts_iso", "TEXT NOT NULL"),
    _derived("episode_id", f"TEXT GENERATED ALWAYS AS ({EPISODE_ID_SQL}) VIRTUAL", 2),
    _derived("worker_id", f"TEXT GENERATED ALWAYS AS ({WORKER_ID_SQL}) VIRTUAL", 2),
], "PRIMARY KEY (run_id, agent_id, seq_id)")

#: One row per episode of a stream (EPISODE_FINALIZED). Version 2's columns are real ones filled by
#: triggers (``sqlite_schema``), so ``PRAGMA table_info(episodes)`` lists them.
EPISODES = Table("episodes", [
    _core("run_id", "TEXT NOT NULL"),
    _core("agent_id", "TEXT NOT NULL"),
    _core("episode_index", "INTEGER NOT NULL", "episode_index", _I),
    _core("seq_id", "INTEGER NOT NULL"),
    _core("total_reward", "REAL", "total_reward", _R),
    _core("length", "INTEGER", "length", _I),
    _core("terminated", "INTEGER", "terminated", _F),
    _core("truncated", "INTEGER", "truncated", _F),
    _core("outcome", "TEXT", "outcome", _S),
    _core("metadata_json", "TEXT", "metadata", _J),
    _core("extra_json", "TEXT"),
    _core("ts_iso", "TEXT NOT NULL"),
    _derived("episode_id", "TEXT", 2),
    _derived("ep_index", "INTEGER", 2),
    _derived("worker_id", "TEXT", 2),
], "PRIMARY KEY (run_id, agent_id, episode_index)")

#: One row per run, folded from its lifecycle events (``sqlite_runs``).
RUNS = Table("runs", [
    _core("run_id", "TEXT PRIMARY KEY"),
    _core("status", "TEXT NOT NULL"),
    _core("outcome", "TEXT"),
    _core("env_id", "TEXT"),
    _core("config_json", "TEXT"),
    _core("created_at", "TEXT NOT NULL"),
    _core("started_at", "TEXT"),
    _core("completed_at", "TEXT"),
    _core("last_heartbeat_at", "TEXT"),
    _core("last_heartbeat_json", "TEXT"),
    _core("exit_code", "INTEGER"),
    _core("signal", "TEXT"),
    _core("stderr_tail", "TEXT"),
    _core("summary_json", "TEXT"),
    _core("updated_at", "TEXT NOT NULL"),
], "")

#: The newest schema version files exist in; a column added later gets the next version.
RELEASED_VERSION = 6
_lock = threading.Lock()
_sealed = False


def _seal() -> None:
    global _sealed
    _sealed = True


def tables() -> tuple[Table, ...]:
    """The declared tables, in creation order. Any thread."""
    return (RUNS, STEPS, EPISODES)


def latest_version() -> int:
    """The highest schema version any declared column was added in. Any thread."""
    return max(c.added_in for t in tables() for c in t.columns)


def add_column(table: Table, column: Column) -> None:
    """Declare a new column of ``table`` (a generic payload column when ``key`` and ``codec`` are
    given). Start-up only, before any storage module is imported; TableDeclarationError when the
    tables are in use already, the name is taken, or the column is added in version 1."""
    with _lock:
        if _sealed:
            raise TableDeclarationError(
                f"cannot add {table.name}.{column.name}: the storage modules already derived their SQL "
                "(declare columns before importing them)")
        if any(c.name == column.name for c in table._columns):
            raise TableDeclarationError(f"{table.name} declares {column.name} already")
        if column.added_in <= RELEASED_VERSION:
            raise TableDeclarationError(
                f"{table.name}.{column.name}: a new column belongs to a new schema version (> {RELEASED_VERSION}); "
                "files of a released version must get it by a migration")
        if column.key is not None and any(c.key == column.key for c in table._columns):
            raise TableDeclarationError(f"{table.name} stores payload key {column.key!r} already")
        if (column.key is None) != (column.codec is None):
            raise TableDeclarationError(f"{table.name}.{column.name}: give both key and codec, or neither")
        table._columns.append(column)
