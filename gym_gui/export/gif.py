"""An episode's frames to an animated GIF (Qt-free, Pillow).

"grid" payloads are drawn as GridView draws them (same colours, tiles, landmarks, walls, taxi,
passenger and destination; ``cell_px`` pixels per cell); "rgb" payloads are their PNGs. A step
without a frame repeats the frame before it (as the Replay tab shows it); a payload that cannot be
drawn is counted in ``bad_frames`` and repeats the previous frame too.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import sqlite3
from pathlib import Path
from typing import Any, Iterator, Mapping

from PIL import Image, ImageDraw

from gym_gui.export.tables import ExportError
from gym_gui.telemetry.json_text import load_json
from gym_gui.telemetry.step_layout import PHYSICAL, episode_steps_sql
from gym_gui.live.grid_payload import BadGridPayload, GridLayout, parse_layout, parse_state

__all__ = ["COLOURS", "episode_agents", "export_episode_gif", "render_grid", "render_payload"]

_log = logging.getLogger(__name__)

RGB = tuple[int, int, int]
#: The GridView's palette (gym_gui/ui/palette.py) as RGB triples; a test keeps them equal.
COLOURS: dict[str, Any] = {
    "TILES": {"S": (150, 200, 240), "F": (222, 236, 248), "H": (30, 50, 90), "C": (150, 75, 45), "G": (90, 190, 90)},
    "UNKNOWN_TILE": (160, 160, 160), "GRID_LINE": (120, 130, 140), "WALL": (20, 20, 20), "AGENT": (220, 40, 40),
    "TAXI_EMPTY": (245, 200, 20), "TAXI_LOADED": (40, 170, 60), "PASSENGER": (40, 90, 220),
    "DESTINATION": (200, 0, 200), "BACKGROUND": (45, 48, 52),
    "LANDMARKS": {"R": (235, 120, 120), "G": (130, 210, 130), "Y": (240, 225, 110), "B": (130, 160, 235)},
}


def _static_layer(layout: GridLayout, size: int) -> Image.Image:
    img = Image.new("RGB", (layout.cols * size, layout.rows * size), COLOURS["BACKGROUND"])
    draw = ImageDraw.Draw(img)
    for r, row in enumerate(layout.cells):
        for c, ch in enumerate(row):
            box = (c * size, r * size, (c + 1) * size - 1, (r + 1) * size - 1)
            draw.rectangle(box, fill=COLOURS["TILES"].get(ch, COLOURS["UNKNOWN_TILE"]), outline=COLOURS["GRID_LINE"])
            if ch in "SG" and size >= 14:
                draw.text((c * size + 3, r * size + 2), ch, fill=COLOURS["GRID_LINE"])
    for name, (r, c) in layout.landmarks:
        draw.rectangle((c * size + 1, r * size + 1, (c + 1) * size - 2, (r + 1) * size - 2),
                       fill=COLOURS["LANDMARKS"].get(name, COLOURS["UNKNOWN_TILE"]))
        draw.text((c * size + size // 2, r * size + size // 2), name, fill=COLOURS["WALL"], anchor="mm")
    width = max(2, size // 10)
    for r, c, side in layout.walls:
        if side == "E":
            x = (c + 1) * size
            draw.line((x, r * size, x, (r + 1) * size), fill=COLOURS["WALL"], width=width)
        else:
            y = (r + 1) * size
            draw.line((c * size, y, (c + 1) * size, y), fill=COLOURS["WALL"], width=width)
    return img


def render_grid(payload: Mapping[str, Any], *, cell_px: int = 48,
                layout: GridLayout | None = None, static: Image.Image | None = None) -> Image.Image:
    """One "grid" payload as an RGB image of ``cols x rows`` cells of ``cell_px`` pixels. Raises
    BadGridPayload. ``layout``/``static``: a parsed layout and its drawn static layer to reuse. Any thread."""
    layout = layout or parse_layout(payload)
    state = parse_state(payload, layout)
    size = max(4, int(cell_px))
    img = (static or _static_layer(layout, size)).copy()
    draw = ImageDraw.Draw(img)

    def box(cell: tuple[int, int], margin: float) -> tuple[float, float, float, float]:
        r, c = cell
        return (c * size + margin, r * size + margin, (c + 1) * size - margin, (r + 1) * size - margin)

    if state.destination is not None:
        draw.rectangle(box(state.destination, size * 0.08), outline=COLOURS["DESTINATION"], width=max(2, size // 12))
    if isinstance(state.passenger, tuple):
        r, c = state.passenger
        draw.ellipse(((c + 0.55) * size, (r + 0.55) * size, (c + 0.9) * size, (r + 0.9) * size),
                     fill=COLOURS["PASSENGER"], outline=COLOURS["WALL"])
    if state.agent is not None:
        if layout.env_family == "Taxi":
            colour = COLOURS["TAXI_LOADED"] if state.loaded else COLOURS["TAXI_EMPTY"]
            draw.rounded_rectangle(box(state.agent, size * 0.2), radius=size * 0.1, fill=colour,
                                   outline=COLOURS["WALL"])
            if state.loaded:
                draw.ellipse(box(state.agent, size * 0.38), fill=COLOURS["PASSENGER"])
        else:
            draw.ellipse(box(state.agent, size * 0.2), fill=COLOURS["AGENT"], outline=COLOURS["WALL"])
    return img


def _decode_rgb(payload: Mapping[str, Any]) -> Image.Image:
    if payload.get("encoding", "png") != "png":
        raise ValueError(f"unsupported encoding {payload.get('encoding')!r:.30}")
    data_b64 = payload.get("data_b64")
    if not isinstance(data_b64, str) or not data_b64:
        raise ValueError("data_b64 must be a non-empty string")
    try:
        data = base64.b64decode(data_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"data_b64 is not valid base64 ({exc})") from None
    with Image.open(io.BytesIO(data)) as img:
        return img.convert("RGB")


def render_payload(payload: Any, *, cell_px: int = 48) -> Image.Image:
    """A "grid" or "rgb" render payload as an RGB image; ValueError (BadGridPayload is one) when it
    cannot be drawn. Any thread; never blocks."""
    if not isinstance(payload, Mapping):
        raise ValueError(f"a render payload must be an object, got {type(payload).__name__}")
    kind = payload.get("kind")
    if kind == "grid":
        return render_grid(payload, cell_px=cell_px)
    if kind == "rgb":
        return _decode_rgb(payload)
    raise ValueError(f"unknown render payload kind {kind!r:.30}")


def _has_spans(conn: sqlite3.Connection) -> bool:
    """The file has schema version 4's ``episode_spans`` (an older file is read through its table ``steps``)."""
    return conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'episode_spans'").fetchone() is not None


#: Version 4: the episode's span, then a range of the step rows' primary key (not a scan of the view).
_AGENTS_V4 = ("SELECT k.agent_id FROM stream_keys k JOIN episode_spans p ON p.stream = k.stream "
              "AND p.episode_index = :ep WHERE k.run_id = :run AND EXISTS (SELECT 1 FROM step_rows s "
              "WHERE s.stream = k.stream AND s.seq_id BETWEEN p.first_seq AND p.last_seq AND s.episode_index = :ep) "
              "ORDER BY k.agent_id")
_PAYLOADS_V4 = episode_steps_sql(PHYSICAL["render_payload_json"])


def episode_agents(conn: sqlite3.Connection, run_id: str, episode_index: int) -> list[str]:
    """Stored agent ids ('' for none) that have steps in this episode. Thread owning ``conn``."""
    if _has_spans(conn):
        rows = conn.execute(_AGENTS_V4, {"run": run_id, "ep": episode_index}).fetchall()
    else:
        rows = conn.execute("SELECT DISTINCT agent_id FROM steps WHERE run_id = ? AND episode_index = ? "
                            "ORDER BY agent_id", (run_id, episode_index)).fetchall()
    return [a for (a,) in rows]


def _payloads(conn: sqlite3.Connection, run_id: str, agent_id: str, episode_index: int) -> Iterator[Any]:
    if _has_spans(conn):
        rows = conn.execute(_PAYLOADS_V4, {"run": run_id, "agent": agent_id, "ep": episode_index})
    else:
        rows = conn.execute("SELECT render_payload_json FROM steps WHERE run_id = ? AND agent_id = ? "
                            "AND episode_index = ? ORDER BY seq_id", (run_id, agent_id, episode_index))
    for (text,) in rows:
        yield None if text is None else load_json(text)


class _GridCache:
    """The last layout and its static layer, so a 1000-step episode draws its tiles once."""

    def __init__(self, cell_px: int) -> None:
        self.cell_px = cell_px
        self.source: Mapping[str, Any] | None = None
        self.layout: GridLayout | None = None
        self.static: Image.Image | None = None

    def render(self, payload: Mapping[str, Any]) -> Image.Image:
        src = self.source
        if src is None or any(src.get(k) != payload.get(k) for k in ("cells", "walls", "landmarks", "env_family",
                                                                       "rows", "cols")):
            self.layout = parse_layout(payload)
            self.static = _static_layer(self.layout, max(4, int(self.cell_px)))
            self.source = payload
        return render_grid(payload, cell_px=self.cell_px, layout=self.layout, static=self.static)


def export_episode_gif(conn: sqlite3.Connection, run_id: str, episode_index: int, out_path: str | Path, *,
                       agent_id: str | None = None, frame_ms: int = 100, cell_px: int = 48) -> dict[str, Any]:
    """Write episode ``episode_index`` of ``run_id`` (agent ``agent_id``; default: the episode's
    only or first agent) as an animated GIF, one frame per stored step, ``frame_ms`` each.

    Returns ``{"path", "frames", "steps", "bad_frames", "agent_id"}``. Any thread owning ``conn`` (not
    the GUI thread: it reads and encodes). Raises ExportError when the episode has no drawable frame.
    """
    agents = episode_agents(conn, run_id, episode_index)
    if not agents:
        raise ExportError(f"episode {episode_index} of run {run_id!r} has no stored steps")
    stored_agent = agent_id if agent_id is not None else agents[0]
    if stored_agent not in agents:
        raise ExportError(f"agent {agent_id!r} has no steps in episode {episode_index} of run {run_id!r} "
                          f"(agents: {', '.join(a or '(none)' for a in agents)})")
    grid = _GridCache(cell_px)
    frames: list[Image.Image] = []
    steps = bad = 0
    last: Image.Image | None = None
    for payload in _payloads(conn, run_id, stored_agent, episode_index):
        steps += 1
        if payload is not None:
            try:
                if isinstance(payload, Mapping) and payload.get("kind") == "grid":
                    last = grid.render(payload)
                else:
                    last = render_payload(payload, cell_px=cell_px)
            except (ValueError, OSError) as exc:  # BadGridPayload, a broken PNG
                bad += 1
                _log.debug("episode %d of %s: frame %d cannot be drawn: %s", episode_index, run_id, steps, exc)
        if last is not None:
            frames.append(last)
    if not frames:
        raise ExportError(f"episode {episode_index} of run {run_id!r} has {steps} steps but no drawable frame")
    size = frames[0].size
    frames = [f if f.size == size else f.resize(size) for f in frames]
    path = Path(out_path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:], duration=max(10, int(frame_ms)),
                   loop=0, optimize=False)
    _log.info("exported episode %d of run %s: %d frames to %s", episode_index, run_id, len(frames), path)
    return {"path": path, "frames": len(frames), "steps": steps, "bad_frames": bad, "agent_id": stored_agent}
