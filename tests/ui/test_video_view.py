"""VideoView decodes real CartPole rgb payloads lazily, keeps the aspect ratio, counts bad frames;
RenderView picks the renderer by payload kind."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from qtpy.QtGui import QColor

from gym_gui.ui import palette
from gym_gui.ui.render_view import RenderView
from gym_gui.ui.video_view import VideoView
from gym_gui.workers.rgb_frames import decode_png
from ui_payloads import cartpole_payload, frozenlake_payload


def make_view(qtbot: Any, w: int, h: int) -> VideoView:
    view = VideoView()
    qtbot.addWidget(view)
    view.resize(w, h)
    return view


def test_a_real_cartpole_frame_decodes_to_its_size_with_the_same_pixels(qtbot: Any) -> None:
    payload = cartpole_payload(0)
    assert (payload["width"], payload["height"]) == (150, 100)
    view = make_view(qtbot, 300, 300)
    view.set_payload(payload)
    image = view.image()
    assert image is not None and (image.width(), image.height()) == (150, 100)
    reference = decode_png(base64.b64decode(payload["data_b64"]))  # the workers' own decoder
    for x, y in [(0, 0), (75, 70), (75, 50), (149, 99), (40, 80)]:
        r, g, b = (int(v) for v in reference[y, x, :3])
        assert image.pixelColor(x, y) == QColor(r, g, b)
    assert view.has_frame() and view.placeholder_text() is None and view.decode_errors == 0


def test_the_frame_keeps_its_aspect_ratio_centred_in_the_widget(qtbot: Any) -> None:
    view = make_view(qtbot, 300, 300)
    view.set_payload(cartpole_payload(0))
    rect = view.image_rect()
    assert (rect.width(), rect.height()) == (300, 200) and (rect.x(), rect.y()) == (0, 50)
    view.resize(600, 100)
    rect = view.image_rect()
    assert (rect.width(), rect.height()) == (150, 100) and rect.x() == 225
    grabbed = view.grab().toImage()
    assert grabbed.pixelColor(10, 50) == palette.BACKGROUND  # letterbox
    assert grabbed.pixelColor(300, 5) == QColor(255, 255, 255)  # CartPole's white sky


def test_only_the_frame_actually_displayed_is_decoded(qtbot: Any) -> None:
    view = make_view(qtbot, 150, 100)
    for i in range(3):
        view.set_payload(cartpole_payload(i))
    assert view.frames_decoded == 0
    view.grab()
    assert view.frames_decoded == 1
    view.grab()
    assert view.frames_decoded == 1
    view.set_payload(cartpole_payload(1))
    assert view.image() is not None and view.frames_decoded == 2


GOOD = "iVBORw0KGgo="  # a PNG signature only: valid base64, not a readable image


@pytest.mark.parametrize(("payload", "reason"), [
    ({"kind": "rgb", "encoding": "png", "data_b64": "!!not base64!!"}, "base64"),
    ({"kind": "rgb", "encoding": "png", "data_b64": GOOD}, "readable PNG"),
    ({"kind": "rgb", "encoding": "jpeg", "data_b64": GOOD}, "encoding"),
    ({"kind": "rgb", "encoding": "png"}, "data_b64"),
    ({"kind": "grid"}, "kind"),
    ([1, 2, 3], "object"),
])
def test_bad_frames_show_a_placeholder_and_are_counted(qtbot: Any, payload: Any, reason: str) -> None:
    view = make_view(qtbot, 200, 120)
    view.set_payload(payload)
    view.grab()  # paints the placeholder, does not raise
    text = view.placeholder_text()
    assert not view.has_frame() and view.decode_errors == 1
    assert text is not None and text.startswith("Cannot show") and reason in text
    view.set_payload(cartpole_payload(0))
    assert view.has_frame() and view.decode_errors == 1
    view.set_payload(None)
    assert view.placeholder_text() == "No frame yet"


def test_render_view_picks_the_renderer_by_kind(qtbot: Any) -> None:
    view = RenderView()
    qtbot.addWidget(view)
    view.resize(300, 200)
    assert view.kind is None and view.placeholder_text() == "No frame yet"
    view.set_payload(frozenlake_payload(0))
    assert view.kind == "grid" and view.currentWidget() is view.grid_view and view.placeholder_text() is None
    view.set_payload(cartpole_payload(0))
    assert view.kind == "rgb" and view.currentWidget() is view.video_view and view.placeholder_text() is None
    view.set_payload({"kind": "ascii", "text": "..."})
    assert view.currentWidget() is view.placeholder and view.unknown_count == 1
    assert "unknown render payload" in (view.placeholder_text() or "")
    view.set_payload({"kind": "grid", "rows": 0})
    assert view.kind == "grid" and "Cannot draw" in (view.placeholder_text() or "")
    view.set_payload(None)
    assert view.kind is None and view.placeholder_text() == "No frame yet"
    view.grab()
