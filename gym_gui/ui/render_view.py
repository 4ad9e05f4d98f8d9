"""RenderView: one place that shows a step's render payload with the right renderer for its kind."""

from __future__ import annotations

from typing import Any, Mapping

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QLabel, QStackedWidget, QWidget

from gym_gui.ui.grid_view import GridView
from gym_gui.ui.video_view import VideoView

__all__ = ["RenderView"]

NO_FRAME_TEXT = "No frame yet"


#: The smallest size the renderer is squeezed to.
MIN_WIDTH_PX = 240
MIN_HEIGHT_PX = 120  # (the window still fits a 700 px screen with an Online tab and the debug dock)


class RenderView(QStackedWidget):
    """A GridView for "grid" payloads, a VideoView for "rgb" ones, a text label otherwise.

    The renderers are created up front (they are cheap) and kept, so switching back and forth
    keeps each one's cached layout. GUI thread only.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.placeholder = QLabel(NO_FRAME_TEXT)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.grid_view = GridView()
        self.video_view = VideoView()
        for widget in (self.placeholder, self.grid_view, self.video_view):
            self.addWidget(widget)
        self._kind: str | None = None
        self.unknown_count = 0
        self.setMinimumSize(MIN_WIDTH_PX, MIN_HEIGHT_PX)  # a frame stays readable when docks take space

    def set_payload(self, payload: Mapping[str, Any] | None) -> None:
        """Show ``payload`` with the renderer its ``kind`` names; None shows the "no frame" text.

        GUI thread only; never blocks, never raises because of the payload.
        """
        kind = payload.get("kind") if isinstance(payload, Mapping) else None
        if kind == "grid":
            self.grid_view.set_payload(payload)
            self._show("grid", self.grid_view)
        elif kind == "rgb":
            self.video_view.set_payload(payload)
            self._show("rgb", self.video_view)
        else:
            if payload is None:
                text = NO_FRAME_TEXT
            else:
                self.unknown_count += 1
                what = f"kind {kind!r:.30}" if isinstance(payload, Mapping) else type(payload).__name__
                text = f"Cannot draw this frame: unknown render payload ({what})"
            self.placeholder.setText(text)
            self._show(None, self.placeholder)

    def _show(self, kind: str | None, widget: QWidget) -> None:
        self._kind = kind
        if self.currentWidget() is not widget:
            self.setCurrentWidget(widget)

    @property
    def kind(self) -> str | None:
        """``"grid"``, ``"rgb"`` or None (placeholder shown). GUI thread; never blocks."""
        return self._kind

    def placeholder_text(self) -> str | None:
        """The text shown instead of a frame, or None while a frame is shown. GUI thread; never blocks."""
        if self._kind == "grid":
            return self.grid_view.placeholder_text()
        if self._kind == "rgb":
            return self.video_view.placeholder_text()
        return self.placeholder.text()
