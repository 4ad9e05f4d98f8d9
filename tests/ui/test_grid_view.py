"""GridView paints real ToyText payloads (grabbed to an image and sampled) and never fails on bad ones."""

from __future__ import annotations

from typing import Any

import pytest
from qtpy.QtGui import QColor, QImage

from gym_gui.ui import palette
from gym_gui.ui.grid_view import GridView
from ui_payloads import frozenlake_payload, json_copy, renderer


def make_view(qtbot: Any, w: int = 240, h: int = 240) -> GridView:
    view = GridView()
    qtbot.addWidget(view)
    view.resize(w, h)
    return view


def pixel(image: QImage, view: GridView, row: int, col: int, dx: float = 0.5, dy: float = 0.5) -> QColor:
    """The colour at a relative point (dx, dy) of cell (row, col)."""
    rect = view.cell_rect(row, col)
    dpr = image.devicePixelRatio()
    return image.pixelColor(int((rect.x() + dx * rect.width()) * dpr), int((rect.y() + dy * rect.height()) * dpr))


def test_frozenlake_tiles_and_agent_are_painted_where_the_payload_says(qtbot: Any) -> None:
    view = make_view(qtbot)
    payload = frozenlake_payload(0)  # agent on S at (0, 0)
    assert payload["cells"] == ["SFFF", "FHFH", "FFFH", "HFFG"]
    view.set_payload(payload)
    assert view.has_frame() and view.placeholder_text() is None
    image = view.grab().toImage()
    assert pixel(image, view, 0, 0) == palette.AGENT
    assert pixel(image, view, 0, 1) == palette.TILES["F"]
    assert pixel(image, view, 1, 1) == palette.TILES["H"]
    assert pixel(image, view, 3, 3, 0.7, 0.7) == palette.TILES["G"]
    assert pixel(image, view, 0, 0, 0.9, 0.9) == palette.TILES["S"]  # the tile shows around the marker
    # The agent moves: its new cell shows the marker, the old one its tile again.
    view.set_payload(frozenlake_payload(6))  # (1, 2)
    image = view.grab().toImage()
    assert pixel(image, view, 1, 2) == palette.AGENT
    assert pixel(image, view, 0, 0) == palette.TILES["S"]


def test_cliffwalking_is_4_by_12_with_cliff_tiles(qtbot: Any) -> None:
    env, grid = renderer("CliffWalking-v1")
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(0)  # up: (2, 0)
    view = make_view(qtbot, 600, 200)
    view.set_payload(json_copy(grid.payload(obs)))
    image = view.grab().toImage()
    assert view.cell_rect(0, 0).width() == view.cell_rect(0, 0).height() == 50  # square cells, fitted
    assert pixel(image, view, 2, 0) == palette.AGENT
    assert all(pixel(image, view, 3, c) == palette.TILES["C"] for c in range(1, 11))
    assert pixel(image, view, 3, 0, 0.8, 0.8) == palette.TILES["S"]


def test_taxi_draws_landmarks_walls_passenger_destination_and_a_loaded_taxi(qtbot: Any) -> None:
    env, grid = renderer("Taxi-v3")
    taxi = env.unwrapped
    view = make_view(qtbot, 250, 250)
    # Taxi at (2, 2), passenger waiting at landmark 0 (R, (0, 0)), destination landmark 3 (B, (4, 3)).
    payload = json_copy(grid.payload(taxi.encode(2, 2, 0, 3)))
    assert payload["passenger"] == [0, 0] and payload["destination"] == [4, 3]
    view.set_payload(payload)
    image = view.grab().toImage()
    assert pixel(image, view, 2, 2) == palette.TAXI_EMPTY
    assert pixel(image, view, 0, 0, 0.72, 0.72) == palette.PASSENGER
    assert pixel(image, view, 0, 0, 0.3, 0.3) == palette.LANDMARKS["R"]
    assert pixel(image, view, 0, 4, 0.2, 0.8) == palette.LANDMARKS["G"]
    assert pixel(image, view, 4, 3, 0.5, 0.08) == palette.DESTINATION  # its frame, top edge
    assert pixel(image, view, 4, 3, 0.2, 0.5) == palette.LANDMARKS["B"]  # inside the frame: the landmark
    # Walls: Taxi has one east of (0, 1); there is none east of (0, 2).
    assert [0, 1, "E"] in payload["walls"] and [0, 2, "E"] not in payload["walls"]
    assert pixel(image, view, 0, 1, 1.0, 0.5) == palette.WALL
    assert pixel(image, view, 0, 2, 1.0, 0.5) != palette.WALL
    # Passenger picked up: drawn inside the taxi, not at a landmark.
    loaded = json_copy(grid.payload(taxi.encode(1, 3, 4, 3)))
    assert loaded["passenger"] == "in_taxi"
    view.set_payload(loaded)
    image = view.grab().toImage()
    assert pixel(image, view, 1, 3, 0.25, 0.5) == palette.TAXI_LOADED
    assert pixel(image, view, 1, 3) == palette.PASSENGER
    assert pixel(image, view, 0, 0, 0.72, 0.72) == palette.LANDMARKS["R"]
    assert view.grid_state() is not None and view.grid_state().loaded


def test_the_static_layer_is_parsed_once_per_layout_and_painted_once_per_size(qtbot: Any) -> None:
    env, grid = renderer("FrozenLake-v1", is_slippery=False)
    view = make_view(qtbot)
    for obs in range(16):  # JSON copies: equal layouts, distinct objects, as from the proxy
        view.set_payload(json_copy(grid.payload(obs)))
        view.grab()
    assert view.layout_parses == 1 and view.static_paints == 1
    view.resize(300, 200)
    view.grab()
    assert view.static_paints == 2 and view.layout_parses == 1
    env8, grid8 = renderer("FrozenLake-v1", is_slippery=False, map_name="8x8")
    view.set_payload(json_copy(grid8.payload(0)))
    image = view.grab().toImage()
    assert view.layout_parses == 2 and view.grid_layout() is not None and view.grid_layout().rows == 8
    assert pixel(image, view, 0, 0) == palette.AGENT


def test_it_scales_to_the_widget_and_keeps_cells_square(qtbot: Any) -> None:
    view = make_view(qtbot, 100, 100)
    view.set_payload(frozenlake_payload(0))
    small = view.cell_rect(0, 0)
    view.resize(400, 300)
    big = view.cell_rect(0, 0)
    assert small.width() == 25 and big.width() == big.height() == 75
    assert view.cell_rect(3, 3).right() <= 400 and view.cell_rect(3, 3).bottom() <= 300


BAD_PAYLOADS: list[tuple[Any, str]] = [
    ("not a dict", "object"),
    ({"kind": "rgb"}, "kind"),
    ({"kind": "grid", "rows": 2, "cols": 2, "cells": ["SF"], "agent": [0, 0]}, "cells"),
    ({"kind": "grid", "rows": "2", "cols": 2, "cells": ["SF", "HG"]}, "rows"),
    ({"kind": "grid", "rows": 2, "cols": 2, "cells": ["SF", "HGX"]}, "cells[1]"),
    ({"kind": "grid", "rows": 2, "cols": 2, "cells": ["SF", "HG"], "agent": [5, 0]}, "outside"),
    ({"kind": "grid", "rows": 2, "cols": 2, "cells": ["SF", "HG"], "agent": "here"}, "agent"),
    ({"kind": "grid", "rows": 2, "cols": 2, "cells": ["SF", "HG"], "walls": [[0, 0, "W"]]}, "wall"),
    ({"kind": "grid", "rows": 100000, "cols": 1, "cells": ["S"]}, "out of range"),
    ({"grid": [["S", "F"], ["H", "G"]], "agent": [0, 1]}, "kind"),  # the factory's old shape
]


@pytest.mark.parametrize(("payload", "reason"), BAD_PAYLOADS)
def test_a_bad_payload_shows_a_placeholder_saying_why(qtbot: Any, payload: Any, reason: str) -> None:
    view = make_view(qtbot)
    view.set_payload(frozenlake_payload(0))
    view.set_payload(payload)
    assert not view.has_frame() and view.invalid_count == 1
    text = view.placeholder_text()
    assert text is not None and text.startswith("Cannot draw") and reason in text
    image = view.grab().toImage()  # paints the text, does not raise
    colours = {image.pixel(x, y) for x in range(0, image.width(), 3) for y in range(0, image.height(), 3)}
    assert QColor(palette.AGENT).rgb() not in colours and len(colours) > 1
    view.set_payload(frozenlake_payload(5))  # a good frame after a bad one draws again
    assert view.has_frame() and view.placeholder_text() is None


def test_none_shows_no_frame_and_unknown_tiles_draw_grey(qtbot: Any) -> None:
    view = make_view(qtbot)
    assert view.placeholder_text() == "No frame yet"
    view.grab()
    view.set_payload({"kind": "grid", "rows": 1, "cols": 2, "cells": ["SZ"], "agent": [0, 0]})
    image = view.grab().toImage()
    assert view.has_frame() and pixel(image, view, 0, 1, 0.2, 0.2) == palette.UNKNOWN_TILE
    view.set_payload(None)
    assert view.placeholder_text() == "No frame yet" and view.invalid_count == 0

