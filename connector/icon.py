"""The connector icon, drawn in code (a PNG with the brand colour and a speech bubble), so no binary
asset needs to be kept in sync by hand."""

from __future__ import annotations

import struct
import zlib

SIZE = 160
BRAND = (0x4B, 0x53, 0xBC)
WHITE = (0xFF, 0xFF, 0xFF)


def _pixel(x: int, y: int) -> tuple[int, int, int]:
    # A rounded speech bubble in the middle, with a tail at the bottom left.
    in_body = 36 <= x <= 124 and 44 <= y <= 104
    in_tail = 52 <= x <= 76 and 104 < y <= 128 and (x - 52) <= (128 - y)
    return WHITE if in_body or in_tail else BRAND


def icon_png() -> bytes:
    rows = b"".join(b"\x00" + bytes(c for x in range(SIZE) for c in _pixel(x, y)) for y in range(SIZE))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", SIZE, SIZE, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")
