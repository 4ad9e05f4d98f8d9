"""The pure-Python PNG encoder and the frame downscaler."""

from __future__ import annotations

import base64
import io
import os
import struct
import zlib

import numpy as np
import pytest

from gym_gui.workers.rgb_frames import PNG_SIGNATURE, decode_png, downscale, encode_png, rgb_payload


def _raw_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """Independent chunk walk (no gym_gui code): [(type, body)], CRCs checked."""
    assert data[:8] == PNG_SIGNATURE
    pos, out = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc
        out.append((kind, body))
        pos += 12 + length
    return out


def test_unfiltered_png_round_trips_through_plain_zlib() -> None:
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, size=(7, 11, 3), dtype=np.uint8)
    data = encode_png(img, filter_type=0)
    chunks = _raw_chunks(data)
    assert [k for k, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    width, height, depth, color_type, comp, filt, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (width, height, depth, color_type, comp, filt, interlace) == (11, 7, 8, 2, 0, 0, 0)
    raw = zlib.decompress(chunks[1][1])
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(7, 1 + 11 * 3)
    assert (rows[:, 0] == 0).all()
    assert np.array_equal(rows[:, 1:].reshape(7, 11, 3), img)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("filter_type", [0, 1, 2, None])
def test_round_trip_every_filter_and_channel_count(channels: int, filter_type: int | None) -> None:
    rng = np.random.default_rng(channels)
    img = rng.integers(0, 256, size=(9, 13, channels), dtype=np.uint8)
    back = decode_png(encode_png(img, filter_type=filter_type))
    assert back.shape == img.shape and np.array_equal(back, img)


def test_decoder_handles_average_and_paeth_rows() -> None:
    """Filters 3 and 4 (which our encoder never writes) decode correctly too."""
    rng = np.random.default_rng(7)
    img = rng.integers(0, 256, size=(4, 5, 3), dtype=np.uint8)
    bpp, stride = 3, 15
    rows = img.reshape(4, stride).astype(int)
    raw = bytearray()
    prev = [0] * stride
    for y in range(4):
        ftype = 3 if y % 2 == 0 else 4
        raw.append(ftype)
        for x in range(stride):
            a = rows[y][x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if ftype == 3:
                pred = (a + b) // 2
            else:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            raw.append((rows[y][x] - pred) & 0xFF)
        prev = list(rows[y])
    ihdr = struct.pack(">IIBBBBB", 5, 4, 8, 2, 0, 0, 0)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    data = PNG_SIGNATURE + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(raw))) + chunk(b"IEND", b"")
    assert np.array_equal(decode_png(data), img)


def test_decoder_rejects_corruption() -> None:
    data = bytearray(encode_png(np.zeros((2, 2, 3), dtype=np.uint8)))
    with pytest.raises(ValueError):
        decode_png(b"GIF89a" + bytes(data[6:]))
    data[20] ^= 0xFF  # inside IHDR: CRC no longer matches
    with pytest.raises(ValueError):
        decode_png(bytes(data))


def test_encoder_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        encode_png(np.zeros((2, 2, 3), dtype=np.float32))
    with pytest.raises(ValueError):
        encode_png(np.zeros((2, 2, 5), dtype=np.uint8))


def test_pygame_reads_our_png() -> None:
    """An independent decoder (SDL_image via pygame) reads the same pixels."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    pygame = pytest.importorskip("pygame")
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, size=(6, 10, 3), dtype=np.uint8)
    surf = pygame.image.load(io.BytesIO(encode_png(img)), "frame.png")
    assert surf.get_size() == (10, 6)
    pixels = pygame.surfarray.array3d(surf).transpose(1, 0, 2)  # surfarray is x-major
    assert np.array_equal(pixels, img)


def test_downscale_block_average() -> None:
    frame = np.zeros((400, 600, 3), dtype=np.uint8)
    frame[:4, :4] = 255
    frame[4:8, :4, 0] = 100
    frame[4:8, 0:2, 0] = 200  # half the block at 200, half at 100: mean 150
    small = downscale(frame, 160)
    assert small.shape == (100, 150, 3) and small.dtype == np.uint8
    assert small[0, 0].tolist() == [255, 255, 255]
    assert small[1, 0].tolist() == [150, 0, 0]
    assert small[5, 5].tolist() == [0, 0, 0]
    assert downscale(frame[:10, :100], 160).shape == (10, 100, 3)  # narrow frames unchanged
    assert downscale(np.zeros((9, 9), dtype=np.uint8), 3).shape == (3, 3)


def test_rgb_payload_fields() -> None:
    frame = np.full((400, 600, 3), 255, dtype=np.uint8)
    frame[300:, :] = 0
    p = rgb_payload(frame, target_width=160)
    assert set(p) == {"kind", "width", "height", "encoding", "data_b64"}
    assert (p["kind"], p["encoding"], p["width"], p["height"]) == ("rgb", "png", 150, 100)
    png = base64.b64decode(p["data_b64"])
    assert png.startswith(PNG_SIGNATURE)
    assert len(png) < 1000  # flat scene: tiny
    assert np.array_equal(decode_png(png), downscale(frame, 160))
