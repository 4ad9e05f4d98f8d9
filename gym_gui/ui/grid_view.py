"""GridView: paints a "grid" render payload (FrozenLake, CliffWalking, Taxi) scaled to the widget."""

from __future__ import annotations

import logging
from typing import Any, Mapping

from qtpy.QtCore import QPointF, QRectF, QSize, Qt
from qtpy.QtGui import QFont, QPainter, QPaintEvent, QPen, QPixmap
from qtpy.QtWidgets import QSizePolicy, QWidget

from gym_gui.rate_limited_log import RateLimitedLog
from gym_gui.ui import palette
from gym_gui.live.grid_payload import BadGridPayload, GridLayout, GridState, parse_layout, parse_state, same_layout

__all__ = ["GridView"]

_log = logging.getLogger(__name__)
_rlog = RateLimitedLog(_log, interval_s=5.0)

NO_FRAME_TEXT = "No frame yet"


class GridView(QWidget):
    """Draws tiles, landmarks, walls, destination, passenger and agent of one grid payload.

    The static layer (tiles, landmarks, walls) is parsed once per layout and painted once per
    widget size into a cached pixmap; a new frame of the same run only parses and paints the
    agent, passenger and destination. Anything that is not a valid grid payload shows a
    placeholder text saying why; nothing here raises because of a payload. GUI thread only.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent, True)
        self._payload: Any = None
        self._layout_source: Mapping[str, Any] | None = None
        self._layout: GridLayout | None = None
        self._state: GridState | None = None
        self._error: str | None = None
        self._invalid_count = 0
        self._static: QPixmap | None = None
        self._static_key: tuple[Any, ...] | None = None
        self._layout_parses = 0
        self._static_paints = 0

    # -- data ------------------------------------------------------------------------------------
    def set_payload(self, payload: Mapping[str, Any] | None) -> None:
        """Show ``payload`` (a "grid" render payload) or, for None, the "no frame" placeholder.

        GUI thread only; never blocks, never raises because of the payload.
        """
        if payload is self._payload and payload is not None:
            return
        self._payload = payload
        if payload is None:
            self._state, self._error = None, None
            self.update()
            return
        try:
            if (self._layout is None or self._layout_source is None or not isinstance(payload, Mapping)
                    or not same_layout(self._layout_source, payload)):
                layout = parse_layout(payload)
                self._layout, self._layout_source = layout, payload
                self._layout_parses += 1
                self._static_key = None
            self._state = parse_state(payload, self._layout)
            self._error = None
        except BadGridPayload as exc:
            self._fail(str(exc))
        except Exception as exc:  # a payload must never take the view down
            self._fail(f"{type(exc).__name__}: {exc}")
        self.update()

    def _fail(self, reason: str) -> None:
        self._state, self._error = None, reason
        self._invalid_count += 1
        _rlog.log(logging.WARNING, "bad-grid", "grid payload not drawn: %s", reason)

    def has_frame(self) -> bool:
        """True when a valid payload is shown. GUI thread; never blocks."""
        return self._state is not None

    def placeholder_text(self) -> str | None:
        """The text shown instead of a frame, or None while a frame is shown. GUI thread; never blocks."""
        if self._state is not None:
            return None
        if self._error is not None:
            return f"Cannot draw this grid frame: {self._error}"
        return NO_FRAME_TEXT

    @property
    def invalid_count(self) -> int:
        """Payloads rejected since construction. GUI thread; never blocks."""
        return self._invalid_count

    @property
    def layout_parses(self) -> int:
        """How often the static layout was parsed (once per distinct layout). GUI thread; never blocks."""
        return self._layout_parses

    @property
    def static_paints(self) -> int:
        """How often the static layer was painted (once per layout and size). GUI thread; never blocks."""
        return self._static_paints

    def grid_layout(self) -> GridLayout | None:
        """The parsed static layout of the current payload, if any. GUI thread; never blocks."""
        return self._layout if self._state is not None else None

    def grid_state(self) -> GridState | None:
        """The parsed agent/passenger/destination of the current payload, if any. GUI thread; never blocks."""
        return self._state

    def cell_rect(self, row: int, col: int) -> QRectF:
        """Where cell (row, col) is drawn at the current size (for tests and overlays). GUI thread; never blocks."""
        origin, size = self._geometry()
        return QRectF(origin.x() + col * size, origin.y() + row * size, size, size)

    # -- Qt --------------------------------------------------------------------------------------
    def sizeHint(self) -> QSize:  # noqa: N802 (Qt name)
        """A comfortable default size. GUI thread; never blocks."""
        return QSize(320, 320)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt name)
        """Small enough for a split pane. GUI thread; never blocks."""
        return QSize(60, 60)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt name)
        """Paint the cached static layer and the moving parts. GUI thread; never blocks."""
        painter = QPainter(self)
        try:
            painter.fillRect(self.rect(), palette.BACKGROUND)
            text = self.placeholder_text()
            if text is not None or self._layout is None or self._state is None:
                painter.setPen(palette.PLACEHOLDER_TEXT)
                painter.drawText(self.rect().adjusted(8, 8, -8, -8), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                                 text or NO_FRAME_TEXT)
                return
            origin, size = self._geometry()
            if size <= 0:
                return
            painter.drawPixmap(origin, self._static_pixmap(size))
            painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            self._paint_state(painter, origin, size, self._state)
        finally:
            painter.end()

    # -- painting --------------------------------------------------------------------------------
    def _geometry(self) -> tuple[QPointF, float]:
        """Top-left corner and cell side (whole pixels) that fit the grid centred in the widget."""
        layout = self._layout
        if layout is None:
            return QPointF(0, 0), 0.0
        size = float(int(min(self.width() / layout.cols, self.height() / layout.rows)))
        x = (self.width() - size * layout.cols) / 2
        y = (self.height() - size * layout.rows) / 2
        return QPointF(int(x), int(y)), size

    def _static_pixmap(self, size: float) -> QPixmap:
        layout = self._layout
        assert layout is not None
        dpr = self.devicePixelRatioF()
        key = (id(layout), size, dpr)
        if self._static is not None and self._static_key == key:
            return self._static
        pixmap = QPixmap(int(size * layout.cols * dpr), int(size * layout.rows * dpr))
        pixmap.setDevicePixelRatio(dpr)
        pixmap.fill(palette.BACKGROUND)
        painter = QPainter(pixmap)
        try:
            self._paint_static(painter, layout, size)
        finally:
            painter.end()
        self._static, self._static_key = pixmap, key
        self._static_paints += 1
        return pixmap

    @staticmethod
    def _paint_static(painter: QPainter, layout: GridLayout, size: float) -> None:
        painter.setPen(QPen(palette.GRID_LINE, 1))
        for r, row in enumerate(layout.cells):
            for c, ch in enumerate(row):
                rect = QRectF(c * size, r * size, size, size)
                painter.fillRect(rect, palette.TILES.get(ch, palette.UNKNOWN_TILE))
                painter.drawRect(rect.adjusted(0, 0, -1, -1))
                if ch not in palette.TILES:
                    painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, "?")
                elif ch in "SG" and size >= 14:
                    painter.drawText(rect.adjusted(2, 1, 0, 0), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, ch)
        if layout.landmarks:
            font = QFont(painter.font())
            font.setBold(True)
            font.setPixelSize(max(6, int(size * 0.45)))
            painter.setFont(font)
            for name, (r, c) in layout.landmarks:
                rect = QRectF(c * size, r * size, size, size)
                painter.fillRect(rect.adjusted(1, 1, -1, -1), palette.LANDMARKS.get(name, palette.UNKNOWN_TILE))
                painter.setPen(palette.WALL)
                painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, name)
        wall_pen = QPen(palette.WALL, max(2.0, size / 10))
        wall_pen.setCapStyle(Qt.PenCapStyle.SquareCap)
        painter.setPen(wall_pen)
        for r, c, side in layout.walls:
            if side == "E":
                x = (c + 1) * size
                painter.drawLine(QPointF(x, r * size), QPointF(x, (r + 1) * size))
            else:
                y = (r + 1) * size
                painter.drawLine(QPointF(c * size, y), QPointF((c + 1) * size, y))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(QRectF(0, 0, layout.cols * size, layout.rows * size).adjusted(1, 1, -1, -1))

    def _paint_state(self, painter: QPainter, origin: QPointF, size: float, state: GridState) -> None:
        def rect_of(cell: tuple[int, int], margin: float) -> QRectF:
            r, c = cell
            return QRectF(origin.x() + c * size + margin, origin.y() + r * size + margin,
                          size - 2 * margin, size - 2 * margin)

        if state.destination is not None:
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.setPen(QPen(palette.DESTINATION, max(2.0, size / 12)))
            painter.drawRect(rect_of(state.destination, size * 0.08))
        if isinstance(state.passenger, tuple):  # bottom-right of its cell, so a landmark's name stays readable
            r, c = state.passenger
            painter.setPen(QPen(palette.WALL, 1))
            painter.setBrush(palette.PASSENGER)
            painter.drawEllipse(QRectF(origin.x() + (c + 0.55) * size, origin.y() + (r + 0.55) * size,
                                       size * 0.35, size * 0.35))
        if state.agent is not None:
            painter.setPen(QPen(palette.WALL, 1))
            if self._layout is not None and self._layout.env_family == "Taxi":
                painter.setBrush(palette.TAXI_LOADED if state.loaded else palette.TAXI_EMPTY)
                painter.drawRoundedRect(rect_of(state.agent, size * 0.2), size * 0.1, size * 0.1)
                if state.loaded:
                    painter.setPen(Qt.PenStyle.NoPen)
                    painter.setBrush(palette.PASSENGER)
                    painter.drawEllipse(rect_of(state.agent, size * 0.38))
            else:
                painter.setBrush(palette.AGENT)
                painter.drawEllipse(rect_of(state.agent, size * 0.2))
