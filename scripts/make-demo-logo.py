#!/usr/bin/env python3
"""Writes src/demo-logo.png, the demo organisation's logo: a white belfry on a blue rounded
square, drawn pixel by pixel with the standard library only (no artwork copied from anywhere).
Run again only to change the drawing; the PNG is committed and embedded by src/demo.rs."""
import struct
import zlib
from pathlib import Path

SIZE = 96
BLUE = (0x1B, 0x4F, 0x72, 0xFF)
WHITE = (0xFF, 0xFF, 0xFF, 0xFF)
CLEAR = (0, 0, 0, 0)


def inside_rounded_square(x, y, radius=16):
    cx = min(max(x, radius), SIZE - 1 - radius)
    cy = min(max(y, radius), SIZE - 1 - radius)
    return (x - cx) ** 2 + (y - cy) ** 2 <= radius ** 2


def belfry(x, y):
    # Spire, belfry with an arched opening, tower body, base.
    if 14 <= y < 30 and abs(x - 48) <= (y - 14) * 0.6:
        return True
    if 30 <= y < 48 and 34 <= x <= 62:
        arch = 38 <= y and 43 <= x <= 53 and not (y < 42 and (x - 48) ** 2 + (y - 42) ** 2 > 25)
        return not arch
    if 48 <= y < 76 and 38 <= x <= 58:
        return True
    if 76 <= y < 82 and 26 <= x <= 70:
        return True
    return False


def pixel(x, y):
    if not inside_rounded_square(x, y):
        return CLEAR
    return WHITE if belfry(x, y) else BLUE


def png(width, height, rows):
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + bytes(c for px in row for c in px) for row in rows)
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


rows = [[pixel(x, y) for x in range(SIZE)] for y in range(SIZE)]
out = Path(__file__).resolve().parent.parent / "src" / "demo-logo.png"
out.write_bytes(png(SIZE, SIZE, rows))
print(f"wrote {out} ({out.stat().st_size} bytes)")
