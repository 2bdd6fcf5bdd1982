"""Real, small image files for static.dw.com URLs: a flat grey picture at DW's size for the format.

The JPEG is a valid baseline file written by hand: one grey channel, every 8x8 block a zero DC
difference and an end-of-block, so it stays tiny at any size. A comment segment names the image,
so every id has its own bytes (and digest).
"""

from __future__ import annotations

import struct
import zlib
from functools import lru_cache

# DW's image formats: id suffix -> (width, height), as listed in the API's `sizes`.
FORMAT_SIZES = {"301": (220, 124), "302": (460, 259), "303": (700, 394), "304": (940, 529)}
DEFAULT_SIZE = (700, 394)

CONTENT_TYPES = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif"}

# A 1x1 transparent GIF, the classic tracking pixel.
_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def jpeg(width: int, height: int, comment: str = "") -> bytes:
    """A valid grey baseline JPEG of the given size."""
    blocks = ((width + 7) // 8) * ((height + 7) // 8)
    # Each block: DC code "0" (difference 0) + AC code "0" (end of block) = 2 bits; pad with 1s.
    bits = "00" * blocks
    bits += "1" * (-len(bits) % 8)
    scan = bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits), 8))
    out = [b"\xff\xd8", _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")]
    if comment:
        out.append(_segment(0xFE, comment.encode("utf-8")[:60000]))
    out.append(_segment(0xDB, b"\x00" + bytes([1] * 64)))
    out.append(_segment(0xC0, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00"))
    one_code = bytes([1] + [0] * 15)  # one code of length 1
    out.append(_segment(0xC4, b"\x00" + one_code + b"\x00"))  # DC table 0: category 0
    out.append(_segment(0xC4, b"\x10" + one_code + b"\x00"))  # AC table 0: end of block
    out.append(_segment(0xDA, b"\x01\x01\x00\x00\x3f\x00"))
    out.append(scan)
    out.append(b"\xff\xd9")
    return b"".join(out)


def png(width: int, height: int) -> bytes:
    """A valid grey 8-bit PNG of the given size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


@lru_cache(maxsize=4096)
def image_bytes(image_id: int, fmt: str, ext: str) -> bytes:
    """The bytes served for `/image/<id>_<fmt>.<ext>`."""
    width, height = FORMAT_SIZES.get(fmt, DEFAULT_SIZE)
    ext = ext.lower()
    if ext == "png":
        return png(min(width, 64), min(height, 36))
    if ext == "gif":
        return _GIF
    return jpeg(width, height, f"DW stand-in image {image_id}_{fmt}")
