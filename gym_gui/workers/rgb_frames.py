"""RGB frame payloads: downscaling and a tiny pure-Python PNG encoder/decoder (zlib + struct).

Qt-free, no Pillow. Frames from ``render_mode="rgb_array"`` (H x W x 3 uint8) are block-averaged
down to about ``target_width`` pixels wide and encoded as 8-bit truecolour PNG, which the "rgb"
render payload carries base64-encoded (docs/telemetry-jsonl.md). :func:`decode_png` reads back
what :func:`encode_png` writes (and any 8-bit non-interlaced greyscale/RGB/RGBA PNG), for tests
and tools; the GUI can hand the bytes to ``QImage.fromData``.
"""

from __future__ import annotations

import base64
import math
import struct
import zlib
from typing import Any

import numpy as np

__all__ = ["PNG_SIGNATURE", "downscale", "encode_png", "decode_png", "rgb_payload"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_COLOR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type
_CHANNELS = {v: k for k, v in _COLOR_TYPES.items()}


def downscale(frame: np.ndarray, target_width: int = 160) -> np.ndarray:
    """Block-average ``frame`` (H x W [x C], uint8) by the integer factor ceil(W / target_width).

    The result is ``H // f`` x ``W // f`` (edge pixels that do not fill a block are dropped), so
    a 600 x 400 CartPole frame becomes 150 x 100 for ``target_width=160``. Frames no wider than
    ``target_width`` are returned unchanged. Any thread, never blocks.
    """
    if frame.ndim not in (2, 3):
        raise ValueError(f"frame must be H x W or H x W x C, got shape {frame.shape}")
    height, width = frame.shape[:2]
    if target_width < 1:
        raise ValueError("target_width must be >= 1")
    factor = max(1, math.ceil(width / target_width))
    if factor == 1:
        return np.ascontiguousarray(frame, dtype=np.uint8)
    h, w = height // factor, width // factor
    if h == 0 or w == 0:
        raise ValueError(f"frame {width}x{height} is too small for factor {factor}")
    cropped = frame[: h * factor, : w * factor]
    # Summing f*f strided views is several times faster than one multi-axis reduction.
    acc = np.zeros((h, w) + frame.shape[2:], dtype=np.uint32)
    for i in range(factor):
        for j in range(factor):
            acc += cropped[i::factor, j::factor]
    n = factor * factor
    return ((acc + n // 2) // n).astype(np.uint8)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _filter_rows(pixels: np.ndarray, filter_type: int) -> bytes:
    """Apply one PNG filter (0 none, 1 sub, 2 up) to every row; prepend the filter byte."""
    height, row_bytes = pixels.shape[0], pixels.shape[1] * (pixels.shape[2] if pixels.ndim == 3 else 1)
    rows = pixels.reshape(height, row_bytes)
    if filter_type == 0:
        filtered = rows
    elif filter_type == 1:
        bpp = pixels.shape[2] if pixels.ndim == 3 else 1
        filtered = rows.copy()
        filtered[:, bpp:] = rows[:, bpp:] - rows[:, :-bpp]  # uint8 arithmetic wraps mod 256
    elif filter_type == 2:
        filtered = rows.copy()
        filtered[1:] = rows[1:] - rows[:-1]
    else:
        raise ValueError(f"unsupported filter type {filter_type}")
    out = np.empty((height, row_bytes + 1), dtype=np.uint8)
    out[:, 0] = filter_type
    out[:, 1:] = filtered
    return out.tobytes()


def encode_png(pixels: np.ndarray, *, level: int = 6, filter_type: int | None = None) -> bytes:
    """Encode an 8-bit image (H x W grey, or H x W x 1/2/3/4) as PNG bytes. Any thread.

    ``filter_type`` 0 (none), 1 (sub) or 2 (up) is used for every row; ``None`` tries the three
    and keeps the smallest result (cheap for the ~160-pixel frames this is meant for). Blocks only
    for the CPU time of zlib.
    """
    arr = np.ascontiguousarray(pixels)
    if arr.dtype != np.uint8:
        raise ValueError(f"pixels must be uint8, got {arr.dtype}")
    if arr.ndim == 2:
        channels = 1
    elif arr.ndim == 3 and arr.shape[2] in _COLOR_TYPES:
        channels = arr.shape[2]
    else:
        raise ValueError(f"pixels must be H x W or H x W x 1..4, got shape {arr.shape}")
    height, width = arr.shape[:2]
    if height == 0 or width == 0:
        raise ValueError("empty image")
    header = struct.pack(">IIBBBBB", width, height, 8, _COLOR_TYPES[channels], 0, 0, 0)
    candidates = (filter_type,) if filter_type is not None else (0, 1, 2)
    idat = min((zlib.compress(_filter_rows(arr, f), level) for f in candidates), key=len)
    return PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def decode_png(data: bytes) -> np.ndarray:
    """Decode an 8-bit, non-interlaced PNG to H x W x C uint8 (C = 1, 2, 3 or 4). Any thread.

    Checks the signature and every chunk CRC; raises ``ValueError`` on anything else.
    """
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG (bad signature)")
    pos = len(PNG_SIGNATURE)
    header: tuple[int, ...] | None = None
    idat = bytearray()
    while pos < len(data):
        if pos + 8 > len(data):
            raise ValueError("truncated chunk header")
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        if len(body) != length or zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            raise ValueError(f"bad {kind!r} chunk (length or CRC)")
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    if header is None:
        raise ValueError("missing IHDR")
    width, height, depth, color_type, _comp, _filt, interlace = header
    if depth != 8 or color_type not in _CHANNELS or interlace != 0:
        raise ValueError(f"unsupported PNG: depth {depth}, colour type {color_type}, interlace {interlace}")
    bpp = _CHANNELS[color_type]
    stride = width * bpp
    raw = zlib.decompress(bytes(idat))
    if len(raw) != height * (stride + 1):
        raise ValueError("IDAT size does not match the header")
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(height, stride + 1)
    out = np.zeros((height, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.uint8)
    for y in range(height):
        ftype, line = int(rows[y, 0]), rows[y, 1:]
        if ftype == 0:
            cur = line.copy()
        elif ftype == 1:
            cur = (np.cumsum(line.reshape(width, bpp).astype(np.uint32), axis=0) % 256).astype(np.uint8).ravel()
        elif ftype == 2:
            cur = line + prev
        elif ftype in (3, 4):
            cur = np.zeros(stride, dtype=np.uint8)
            for x in range(stride):
                a = int(cur[x - bpp]) if x >= bpp else 0
                b = int(prev[x])
                if ftype == 3:
                    pred = (a + b) // 2
                else:
                    c = int(prev[x - bpp]) if x >= bpp else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[x] = (int(line[x]) + pred) & 0xFF
        else:
            raise ValueError(f"bad filter type {ftype} in row {y}")
        out[y] = cur
        prev = cur
    return out.reshape(height, width, bpp)


def rgb_payload(frame: np.ndarray, *, target_width: int = 160) -> dict[str, Any]:
    """The "rgb" render payload for an rgb_array frame: downscaled, PNG, base64. Any thread."""
    small = downscale(frame, target_width)
    png = encode_png(small, filter_type=2)  # "up" suits flat rendered scenes and is the cheapest
    return {
        "kind": "rgb",
        "width": int(small.shape[1]),
        "height": int(small.shape[0]),
        "encoding": "png",
        "data_b64": base64.b64encode(png).decode("ascii"),
    }
