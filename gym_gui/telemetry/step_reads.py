"""Hot step reads on the version 4 layout, without the view (Qt-free).

``read_steps`` runs a SELECT of the raw ``step_rows`` columns (``RAW_COLUMNS`` over ``step_rows s
JOIN stream_keys k``), then resolves the interned values it met with one look-up per stream and
formats the integer timestamps in Python; it returns rows in the order and shape of
``sqlite_rows.STEP_READ_COLUMNS`` (what the view ``steps`` gives), ready for ``decode_step``.
Call it inside one read transaction (both queries see one snapshot). Any thread, on its own
connection.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Mapping, Sequence

from gym_gui.telemetry.sqlite_rows import STEP_READ_COLUMNS
from gym_gui.telemetry.step_layout import format_ts_us

__all__ = ["RAW_COLUMNS", "read_steps"]

_V3 = tuple(n.strip() for n in STEP_READ_COLUMNS.split(","))
_AT = {name: i for i, name in enumerate(_V3)}
_INFO, _RENDER, _TS = _AT["info_json"], _AT["render_payload_json"], _AT["ts_iso"]
#: The raw columns ``read_steps`` expects: ``STEP_READ_COLUMNS`` with ``ts_iso`` as ``s.ts_us``,
#: then ``s.stream`` and ``k.ts_base_us``.
RAW_COLUMNS = ", ".join(
    ["k.run_id", "k.agent_id"] + [("s.ts_us" if n == "ts_iso" else f"s.{n}") for n in _V3[2:]]
    + ["s.stream", "k.ts_base_us"])
_WIDTH = len(_V3)


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


def read_steps(conn: sqlite3.Connection, sql: str, params: Sequence[Any] | Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` (selecting ``RAW_COLUMNS``) as ``STEP_READ_COLUMNS`` rows. Caller's thread,
    inside a read transaction; blocks for the queries."""
    raw = conn.execute(sql, params).fetchall()
    wanted: dict[int, set[int]] = {}
    for row in raw:
        info, render = row[_INFO], row[_RENDER]
        if type(info) is int:
            wanted.setdefault(row[_WIDTH], set()).add(info)
        if type(render) is int:
            wanted.setdefault(row[_WIDTH], set()).add(render)
    values = _values(conn, wanted) if wanted else {}
    out = []
    second = -1
    head = ""
    for row in raw:
        info, render, ts = row[_INFO], row[_RENDER], row[_TS]
        if type(ts) is int:  # the text of the integer time; consecutive steps mostly share the second
            whole, micros = divmod(row[_WIDTH + 1] + ts, 1_000_000)
            if whole != second:
                second, head = whole, format_ts_us(whole * 1_000_000)[:20]
            ts = f"{head}{micros:06d}+00:00"
        if type(info) is int:
            info = values.get((row[_WIDTH], info))
        if type(render) is int:
            render = values.get((row[_WIDTH], render))
        out.append((*row[:_TS], ts, *row[_TS + 1:_INFO], info, render, *row[_RENDER + 1:_WIDTH]))
    return out
