"""Colours of the Qt layer's renderers and banners, defined once."""

from __future__ import annotations

from qtpy.QtGui import QColor

__all__ = [
    "AGENT", "BACKGROUND", "DESTINATION", "GRID_LINE", "LANDMARKS", "PASSENGER", "PLACEHOLDER_TEXT",
    "STALL_BANNER_CSS", "TAXI_EMPTY", "TAXI_LOADED", "TILES", "UNKNOWN_TILE", "WALL",
]

#: Tile colours of a "grid" payload's cell alphabet (docs/telemetry-jsonl.md, section 4).
TILES: dict[str, QColor] = {
    "S": QColor(150, 200, 240),  # start
    "F": QColor(222, 236, 248),  # floor / ice
    "H": QColor(30, 50, 90),  # hole
    "C": QColor(150, 75, 45),  # cliff
    "G": QColor(90, 190, 90),  # goal
}
UNKNOWN_TILE = QColor(160, 160, 160)
GRID_LINE = QColor(120, 130, 140)
WALL = QColor(20, 20, 20)
AGENT = QColor(220, 40, 40)
TAXI_EMPTY = QColor(245, 200, 20)
TAXI_LOADED = QColor(40, 170, 60)
PASSENGER = QColor(40, 90, 220)
DESTINATION = QColor(200, 0, 200)
#: Taxi's landmark squares by name.
LANDMARKS: dict[str, QColor] = {
    "R": QColor(235, 120, 120),
    "G": QColor(130, 210, 130),
    "Y": QColor(240, 225, 110),
    "B": QColor(130, 160, 235),
}
BACKGROUND = QColor(45, 48, 52)
PLACEHOLDER_TEXT = QColor(210, 210, 210)
STALL_BANNER_CSS = "QLabel { background: #f6d365; color: #3a2a00; padding: 6px; border-radius: 3px; }"
