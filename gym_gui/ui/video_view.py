"""VideoView: shows an "rgb" render payload (a base64 PNG frame) scaled to the widget, aspect kept."""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Any, Mapping

from qtpy.QtCore import QRectF, QSize, Qt
from qtpy.QtGui import QImage, QPainter, QPaintEvent
from qtpy.QtWidgets import QSizePolicy, QWidget

from gym_gui.rate_limited_log import RateLimitedLog
from gym_gui.ui import palette

__all__ = ["VideoView"]

_log = logging.getLogger(__name__)
_rlog = RateLimitedLog(_log, interval_s=5.0)

NO_FRAME_TEXT = "No frame yet"


class _BadFrame(ValueError):
    pass


def _decode(payload: Any) -> QImage:
    """The QImage of an "rgb" payload; raises _BadFrame with a short reason."""
    if not isinstance(payload, Mapping):
        raise _BadFrame(f"payload must be an object, got {type(payload).__name__}")
    if payload.get("kind") != "rgb":
        raise _BadFrame(f"kind must be 'rgb', got {payload.get('kind')!r:.30}")
    encoding = payload.get("encoding", "png")
    if encoding != "png":
        raise _BadFrame(f"unsupported encoding {encoding!r:.30}")
    data_b64 = payload.get("data_b64")
    if not isinstance(data_b64, str) or not data_b64:
        raise _BadFrame("data_b64 must be a non-empty string")
    try:
        data = base64.b64decode(data_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _BadFrame(f"data_b64 is not valid base64 ({exc})") from None
    image = QImage.fromData(data, "PNG")
    if image.isNull():
        raise _BadFrame(f"data_b64 is not a readable PNG ({len(data)} bytes)")
    return image


class VideoView(QWidget):
    """Draws the newest RGB frame, scaled to fit with its aspect ratio kept.

    ``set_payload`` only stores the payload: the PNG is decoded when the frame is painted (or
    asked for), so frames replaced before the next paint, or sent to a hidden view, cost nothing.
    A payload that cannot be decoded shows a placeholder and counts in ``decode_errors``; nothing
    here raises because of a payload. GUI thread only.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent, True)
        self._payload: Any = None
        self._pending = False
        self._image: QImage | None = None
        self._error: str | None = None
        self._decode_errors = 0
        self._decoded = 0

    # -- data ------------------------------------------------------------------------------------
    def set_payload(self, payload: Mapping[str, Any] | None) -> None:
        """Show ``payload`` (an "rgb" render payload) or, for None, the "no frame" placeholder.

        GUI thread only; never blocks (the decode happens at the next paint), never raises.
        """
        if payload is self._payload and payload is not None:
            return
        self._payload = payload
        self._pending = payload is not None
        if payload is None:
            self._image, self._error = None, None
        self.update()

    def _ensure_decoded(self) -> None:
        if not self._pending:
            return
        self._pending = False
        try:
            self._image, self._error = _decode(self._payload), None
            self._decoded += 1
        except _BadFrame as exc:
            self._fail(str(exc))
        except Exception as exc:  # a payload must never take the view down
            self._fail(f"{type(exc).__name__}: {exc}")

    def _fail(self, reason: str) -> None:
        self._image, self._error = None, reason
        self._decode_errors += 1
        _rlog.log(logging.WARNING, "bad-rgb", "rgb frame not shown: %s", reason)

    def image(self) -> QImage | None:
        """The decoded frame shown now (decoding a pending one), or None. GUI thread; never blocks."""
        self._ensure_decoded()
        return self._image

    def has_frame(self) -> bool:
        """True when a decodable frame is shown. GUI thread; never blocks."""
        return self.image() is not None

    def placeholder_text(self) -> str | None:
        """The text shown instead of a frame, or None while a frame is shown. GUI thread; never blocks."""
        self._ensure_decoded()
        if self._image is not None:
            return None
        if self._error is not None:
            return f"Cannot show this frame: {self._error}"
        return NO_FRAME_TEXT

    @property
    def decode_errors(self) -> int:
        """Frames that could not be decoded since construction. GUI thread; never blocks."""
        return self._decode_errors

    @property
    def frames_decoded(self) -> int:
        """Frames decoded since construction (only those actually displayed or asked for). GUI thread; never blocks."""
        return self._decoded

    def image_rect(self) -> QRectF:
        """Where the frame is drawn at the current size (empty without a frame). GUI thread; never blocks."""
        image = self.image()
        if image is None or image.width() == 0 or image.height() == 0:
            return QRectF()
        scale = min(self.width() / image.width(), self.height() / image.height())
        w, h = image.width() * scale, image.height() * scale
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    # -- Qt --------------------------------------------------------------------------------------
    def sizeHint(self) -> QSize:  # noqa: N802 (Qt name)
        """Twice a CartPole frame. GUI thread; never blocks."""
        return QSize(300, 200)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt name)
        """Small enough for a split pane. GUI thread; never blocks."""
        return QSize(60, 40)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt name)
        """Decode a pending frame and draw it. GUI thread; never blocks."""
        painter = QPainter(self)
        try:
            painter.fillRect(self.rect(), palette.BACKGROUND)
            text = self.placeholder_text()
            if text is not None or self._image is None:
                painter.setPen(palette.PLACEHOLDER_TEXT)
                painter.drawText(self.rect().adjusted(8, 8, -8, -8), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                                 text or NO_FRAME_TEXT)
                return
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            painter.drawImage(self.image_rect(), self._image)
        finally:
            painter.end()
