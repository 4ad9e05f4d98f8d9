"""Parsing a "grid" render payload (docs/telemetry-jsonl.md, section 4) into what GridView draws.

Qt-free. The static part (:class:`GridLayout`: tiles, walls, landmarks) is the same in every step
of a run, so a view parses it once and reuses it while ``cells``/``walls``/``landmarks`` compare
equal; :class:`GridState` (agent, passenger, destination) is parsed for every frame. A payload
that does not follow the spec raises :class:`BadGridPayload` with a short reason for the placeholder.
"""

from __future__ import annotations

from typing import Any, Mapping

import attrs

__all__ = ["BadGridPayload", "GridLayout", "GridState", "MAX_GRID_SIDE", "parse_layout", "parse_state", "same_layout"]

#: Larger grids are rejected (no ToyText env comes close; it bounds the painting work).
MAX_GRID_SIDE = 256

Cell = tuple[int, int]


class BadGridPayload(ValueError):
    """The payload cannot be drawn; ``str(exc)`` says why."""


@attrs.frozen(slots=True)
class GridLayout:
    """The static part of a grid payload."""

    rows: int
    cols: int
    cells: tuple[str, ...]
    env_family: str | None
    landmarks: tuple[tuple[str, Cell], ...] = ()
    walls: tuple[tuple[int, int, str], ...] = ()


@attrs.frozen(slots=True)
class GridState:
    """The per-step part of a grid payload; ``passenger`` is a cell, ``"in_taxi"`` or None."""

    agent: Cell | None
    passenger: Cell | str | None = None
    destination: Cell | None = None

    @property
    def loaded(self) -> bool:
        """True when the passenger rides in the taxi. Any thread; never blocks."""
        return self.passenger == "in_taxi"


def _int(value: Any, name: str) -> int:
    if type(value) is not int:
        raise BadGridPayload(f"{name} must be an integer, got {type(value).__name__}")
    return value


def _cell(value: Any, name: str, rows: int, cols: int) -> Cell:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise BadGridPayload(f"{name} must be [row, col], got {value!r:.40}")
    r, c = _int(value[0], f"{name} row"), _int(value[1], f"{name} col")
    if not (0 <= r < rows and 0 <= c < cols):
        raise BadGridPayload(f"{name} {[r, c]} is outside the {rows} x {cols} grid")
    return r, c


def same_layout(layout_source: Mapping[str, Any], payload: Mapping[str, Any]) -> bool:
    """True when ``payload`` has the same static fields as ``layout_source``.
    Any thread; never blocks (cheap for ToyText sizes)."""
    return (
        layout_source.get("cells") == payload.get("cells")
        and layout_source.get("walls") == payload.get("walls")
        and layout_source.get("landmarks") == payload.get("landmarks")
        and layout_source.get("env_family") == payload.get("env_family")
    )


def parse_layout(payload: Any) -> GridLayout:
    """The static layout of ``payload``; raises BadGridPayload. Any thread; never blocks."""
    if not isinstance(payload, Mapping):
        raise BadGridPayload(f"payload must be an object, got {type(payload).__name__}")
    if payload.get("kind") != "grid":
        raise BadGridPayload(f"kind must be 'grid', got {payload.get('kind')!r:.30}")
    rows, cols = _int(payload.get("rows"), "rows"), _int(payload.get("cols"), "cols")
    if not (0 < rows <= MAX_GRID_SIDE and 0 < cols <= MAX_GRID_SIDE):
        raise BadGridPayload(f"grid size {rows} x {cols} is out of range 1..{MAX_GRID_SIDE}")
    cells = payload.get("cells")
    if not isinstance(cells, (list, tuple)) or len(cells) != rows:
        raise BadGridPayload(f"cells must be a list of {rows} strings")
    for r, row in enumerate(cells):
        if not isinstance(row, str) or len(row) != cols:
            raise BadGridPayload(f"cells[{r}] must be a string of {cols} characters")
    family = payload.get("env_family")
    landmarks: list[tuple[str, Cell]] = []
    raw_landmarks = payload.get("landmarks")
    if raw_landmarks is not None:
        if not isinstance(raw_landmarks, Mapping):
            raise BadGridPayload("landmarks must be an object {name: [row, col]}")
        for name, cell in raw_landmarks.items():
            landmarks.append((str(name), _cell(cell, f"landmark {name}", rows, cols)))
    walls: list[tuple[int, int, str]] = []
    raw_walls = payload.get("walls")
    if raw_walls is not None:
        if not isinstance(raw_walls, (list, tuple)):
            raise BadGridPayload("walls must be a list of [row, col, side]")
        for wall in raw_walls:
            if not isinstance(wall, (list, tuple)) or len(wall) != 3 or wall[2] not in ("E", "S"):
                raise BadGridPayload(f"wall {wall!r:.40} must be [row, col, 'E' or 'S']")
            r, c = _cell(wall[:2], "wall", rows, cols)
            walls.append((r, c, wall[2]))
    return GridLayout(
        rows=rows,
        cols=cols,
        cells=tuple(cells),
        env_family=family if isinstance(family, str) else None,
        landmarks=tuple(landmarks),
        walls=tuple(walls),
    )


def parse_state(payload: Mapping[str, Any], layout: GridLayout) -> GridState:
    """The agent, passenger and destination of ``payload`` on ``layout``; raises BadGridPayload.
    Any thread; never blocks."""
    rows, cols = layout.rows, layout.cols
    agent = payload.get("agent")
    passenger = payload.get("passenger")
    destination = payload.get("destination")
    return GridState(
        agent=None if agent is None else _cell(agent, "agent", rows, cols),
        passenger=passenger if passenger in (None, "in_taxi") else _cell(passenger, "passenger", rows, cols),
        destination=None if destination is None else _cell(destination, "destination", rows, cols),
    )
