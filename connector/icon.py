"""The connector and Teams app icons, drawn in code (a white paper plane on the brand colour), so no
binary asset needs to be kept in sync by hand; plus the small PNG writer and reader they and the tests share.

Microsoft's icon guidance for certified connectors: a 230x230 PNG, a solid background in the brand
colour (not white, not transparent), a one-colour white logo with room around it. The brand colour and
the logo are the project's own, not Microsoft Teams' purple and chat bubble.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

SIZE = 230
BRAND = (0x0B, 0x6E, 0x5F)
BRAND_HEX = "#{:02X}{:02X}{:02X}".format(*BRAND)
WHITE = (0xFF, 0xFF, 0xFF)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Teams app package icon sizes (app manifest "icons": color 192x192, outline 32x32 white on transparent).
COLOR_ICON_SIZE = 192
OUTLINE_ICON_SIZE = 32

Pixel = tuple[int, ...]

# The paper plane in the 230x230 design grid: nose top right, wings left, tail bottom, a fold inside.
# It stays within 40..190 on both axes, the padding the guidance asks for.
PLANE = ((188.0, 42.0), (40.0, 108.0), (98.0, 130.0), (122.0, 190.0))


def _in_polygon(x: float, y: float, polygon: tuple[tuple[float, float], ...]) -> bool:
    """Even-odd ray casting: a point is inside when a ray to its right crosses the edges an odd number of times."""
    inside = False
    j = len(polygon) - 1
    for i, (xi, yi) in enumerate(polygon):
        xj, yj = polygon[j]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def _in_logo(x: float, y: float) -> bool:
    return _in_polygon(x, y, PLANE)


def _scaled(size: int) -> Callable[[int, int], bool]:
    """The logo at any size: sample the design grid at each pixel's centre."""
    scale = SIZE / size
    return lambda x, y: _in_logo((x + 0.5) * scale, (y + 0.5) * scale)


def encode_png(width: int, height: int, pixel: Callable[[int, int], Pixel], *, alpha: bool = False) -> bytes:
    """An 8-bit RGB (or RGBA) PNG; ``pixel(x, y)`` gives each pixel's channels."""
    rows = b"".join(b"\x00" + bytes(c for x in range(width) for c in pixel(x, y)) for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 6 if alpha else 2, 0, 0, 0)
    return PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def icon_png() -> bytes:
    """The custom connector's icon: 230x230, the white logo on the brand colour."""
    inside = _scaled(SIZE)
    return encode_png(SIZE, SIZE, lambda x, y: WHITE if inside(x, y) else BRAND)


def color_icon_png(size: int = COLOR_ICON_SIZE) -> bytes:
    """The Teams app's full-colour icon: the white bubble on the brand colour."""
    inside = _scaled(size)
    return encode_png(size, size, lambda x, y: WHITE if inside(x, y) else BRAND)


def outline_icon_png(size: int = OUTLINE_ICON_SIZE) -> bytes:
    """The Teams app's outline icon: white only, on a transparent background (Teams tints it)."""
    inside = _scaled(size)
    return encode_png(size, size, lambda x, y: (*WHITE, 255) if inside(x, y) else (0, 0, 0, 0), alpha=True)


# ---- reading PNGs (icon checks in app packages, screenshot checks in tests) --------------------
class PngError(ValueError):
    """The bytes are not a PNG this reader understands."""


@dataclass(frozen=True, slots=True)
class PngImage:
    width: int
    height: int
    channels: int  # 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA
    pixels: bytes  # rows top to bottom, ``channels`` bytes per pixel, no filter bytes

    def rgba(self, x: int, y: int) -> tuple[int, int, int, int]:
        at = (y * self.width + x) * self.channels
        p = self.pixels[at : at + self.channels]
        if self.channels == 1:
            return (p[0], p[0], p[0], 255)
        if self.channels == 2:
            return (p[0], p[0], p[0], p[1])
        if self.channels == 3:
            return (p[0], p[1], p[2], 255)
        return (p[0], p[1], p[2], p[3])


_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, without decoding the image."""
    if not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        raise PngError("not a PNG file")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def read_png(data: bytes) -> PngImage:
    """Decode an 8-bit, non-interlaced grey/RGB(A) PNG (what icons and Chromium screenshots are)."""
    width, height = png_size(data)
    depth, color_type, _, _, interlace = data[24], data[25], data[26], data[27], data[28]
    if depth != 8 or color_type not in _CHANNELS or interlace:
        raise PngError(f"unsupported PNG (bit depth {depth}, colour type {color_type}, interlace {interlace})")
    channels = _CHANNELS[color_type]
    idat = bytearray()
    at = 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind = data[at + 4 : at + 8]
        if kind == b"IDAT":
            idat += data[at + 8 : at + 8 + length]
        at += 12 + length
    raw = zlib.decompress(bytes(idat))
    stride = width * channels
    out = bytearray(stride * height)
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind = raw[start]
        row = bytearray(raw[start + 1 : start + 1 + stride])
        _unfilter(kind, row, previous, channels)
        out[y * stride : (y + 1) * stride] = row
        previous = row
    return PngImage(width, height, channels, bytes(out))


def _unfilter(kind: int, row: bytearray, prior: bytearray, bpp: int) -> None:
    # The five PNG filter types (RFC 2083 section 6); encoders such as Skia pick one per row.
    if kind == 0:
        return
    for i in range(len(row)):
        left = row[i - bpp] if i >= bpp else 0
        up = prior[i]
        if kind == 1:
            row[i] = (row[i] + left) & 0xFF
        elif kind == 2:
            row[i] = (row[i] + up) & 0xFF
        elif kind == 3:
            row[i] = (row[i] + ((left + up) >> 1)) & 0xFF
        elif kind == 4:
            upper_left = prior[i - bpp] if i >= bpp else 0
            p = left + up - upper_left
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - upper_left)
            predictor = left if pa <= pb and pa <= pc else (up if pb <= pc else upper_left)
            row[i] = (row[i] + predictor) & 0xFF
        else:
            raise PngError(f"unknown PNG filter type {kind}")
