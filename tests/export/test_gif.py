"""An episode's frames to an animated GIF: grid frames drawn like the GridView, CartPole's PNGs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageSequence

from conftest import REPO  # type: ignore[import-not-found]
from gym_gui.export.gif import COLOURS, export_episode_gif, render_payload
from gym_gui.export.tables import ExportError, open_readonly
from gym_gui.telemetry.json_text import load_json


def frames_of(path: Path) -> list[Image.Image]:
    """Each frame once per 100 ms it is shown (the GIF encoder merges repeated frames into one longer one)."""
    out: list[Image.Image] = []
    with Image.open(path) as img:
        for frame in ImageSequence.Iterator(img):
            out += [frame.convert("RGB")] * round(frame.info["duration"] / 100)
    return out


def stored_payloads(db: Path, run_id: str, episode: int) -> list[object]:
    conn = open_readonly(db)
    rows = conn.execute("SELECT render_payload_json FROM steps WHERE run_id = ? AND episode_index = ? ORDER BY seq_id",
                        (run_id, episode)).fetchall()
    return [None if t is None else load_json(t) for (t,) in rows]


def test_a_frozenlake_episode_has_one_frame_per_step_with_the_agent_where_it_was(worker_db: Path,
                                                                                 tmp_path: Path) -> None:
    conn = open_readonly(worker_db)
    result = export_episode_gif(conn, "r-lake", 1, tmp_path / "lake.gif", cell_px=20)
    payloads = stored_payloads(worker_db, "r-lake", 1)
    assert result["steps"] == len(payloads) and result["bad_frames"] == 0 and result["agent_id"] == "agent-1"
    frames = frames_of(result["path"])
    assert len(frames) == result["frames"] == len(payloads)
    first = payloads[0]
    assert isinstance(first, dict) and first["kind"] == "grid"
    assert frames[0].size == (first["cols"] * 20, first["rows"] * 20)
    for frame, payload in zip(frames, payloads):
        assert isinstance(payload, dict)
        r, c = payload["agent"]
        centre = frame.getpixel((c * 20 + 10, r * 20 + 10))
        assert max(abs(a - b) for a, b in zip(centre, COLOURS["AGENT"])) < 40  # the red agent (GIF palette)


def test_a_taxi_frame_draws_the_taxi_and_walls(worker_db: Path, tmp_path: Path) -> None:
    payloads = [p for p in stored_payloads(worker_db, "r-taxi", 0) if p is not None]
    payload = payloads[0]
    assert isinstance(payload, dict)
    image = render_payload(payload, cell_px=30)
    r, c = payload["agent"]
    colour = COLOURS["TAXI_LOADED"] if payload.get("passenger") == "in_taxi" else COLOURS["TAXI_EMPTY"]
    assert image.getpixel((c * 30 + 15, r * 30 + 9)) == colour
    conn = open_readonly(worker_db)
    result = export_episode_gif(conn, "r-taxi", 0, tmp_path / "taxi.gif")
    assert result["frames"] == result["steps"] == len(stored_payloads(worker_db, "r-taxi", 0))


def test_a_cartpole_episode_keeps_its_frames_and_repeats_the_last_one_between_them(worker_db: Path,
                                                                                    tmp_path: Path) -> None:
    payloads = stored_payloads(worker_db, "r-pole", 0)
    with_frame = [p for p in payloads if p is not None]
    assert with_frame and isinstance(with_frame[0], dict) and with_frame[0]["kind"] == "rgb"
    conn = open_readonly(worker_db)
    result = export_episode_gif(conn, "r-pole", 0, tmp_path / "pole.gif")
    first_index = next(i for i, p in enumerate(payloads) if p is not None)
    assert result["frames"] == len(payloads) - first_index  # steps before the first frame have none to repeat
    frames = frames_of(result["path"])
    assert frames[0].size == (with_frame[0]["width"], with_frame[0]["height"])


def test_an_episode_without_steps_or_frames_is_a_clear_error(worker_db: Path, tmp_path: Path) -> None:
    conn = open_readonly(worker_db)
    with pytest.raises(ExportError, match="no stored steps"):
        export_episode_gif(conn, "r-lake", 999, tmp_path / "x.gif")
    with pytest.raises(ExportError, match="agent 'nobody'"):
        export_episode_gif(conn, "r-lake", 0, tmp_path / "x.gif", agent_id="nobody")
    assert not (tmp_path / "x.gif").exists()


def test_the_gif_command(worker_db: Path, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "gym_gui.export", "r-lake", "--db", str(worker_db), "gif",
                           "--episode", "0", "--out", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=60, env={**os.environ})
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "r-lake-episode0.gif").is_file() and "frames of episode 0" in proc.stdout
    missing = subprocess.run([sys.executable, "-m", "gym_gui.export", "r-lake", "--db", str(worker_db), "gif"],
                             cwd=REPO, capture_output=True, text=True, timeout=60, env={**os.environ})
    assert missing.returncode == 2 and "--episode" in missing.stderr


def test_the_export_package_imports_no_qt() -> None:
    code = "import sys, gym_gui.export, gym_gui.export.gif, gym_gui.export.__main__; print('qtpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_the_gif_colours_are_the_grid_views() -> None:
    from gym_gui.ui import palette

    def rgb(colour: object) -> tuple[int, int, int]:
        return (colour.red(), colour.green(), colour.blue())  # type: ignore[attr-defined]

    for name, value in COLOURS.items():
        if isinstance(value, dict):
            assert {k: rgb(v) for k, v in getattr(palette, name).items()} == value, name
        else:
            assert rgb(getattr(palette, name)) == value, name
