#!/usr/bin/env python3
"""Draws MoE Studio's icon — a grid of experts, the hot ones (on the GPU) in orange, the others
(on the CPU) in teal, on a dark rounded square — as an SVG and as PNGs at the freedesktop
sizes, into resources/icons/. The PNGs are committed; run this again only when the design
changes. Standard library only (zlib for PNG), antialiased by 4x4 supersampling.

  python3 tools/make_icons.py
"""
import os
import struct
import zlib

SIZES = [16, 22, 24, 32, 48, 64, 128, 256, 512]
BACKGROUND = (31, 41, 55)
GPU = (249, 115, 22)
CPU = (20, 184, 166)
# 4 x 4 experts in a 64-unit square; 1 = hot (GPU-resident).
HOT = [[1, 0, 0, 1],
       [0, 1, 0, 0],
       [0, 0, 1, 0],
       [1, 0, 0, 1]]
MARGIN, CELL, GAP, RADIUS, CELL_RADIUS = 10.0, 9.0, 2.0, 12.0, 2.0


def rounded(x, y, x0, y0, w, h, r):
    """Whether (x, y) lies in the rounded rectangle (x0, y0, w, h) with corner radius r."""
    if not (x0 <= x <= x0 + w and y0 <= y <= y0 + h):
        return False
    cx = min(max(x, x0 + r), x0 + w - r)
    cy = min(max(y, y0 + r), y0 + h - r)
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r


def cells():
    for i, row in enumerate(HOT):
        for j, hot in enumerate(row):
            yield MARGIN + j * (CELL + GAP), MARGIN + i * (CELL + GAP), GPU if hot else CPU


def colour_at(x, y):
    """RGBA at (x, y) in the 64-unit design."""
    if not rounded(x, y, 2, 2, 60, 60, RADIUS):
        return (0, 0, 0, 0)
    for cx, cy, colour in cells():
        if rounded(x, y, cx, cy, CELL, CELL, CELL_RADIUS):
            return colour + (255,)
    return BACKGROUND + (255,)


def png(size):
    ss = 4
    rows = []
    for py in range(size):
        row = bytearray([0])  # filter: none
        for px in range(size):
            acc = [0, 0, 0, 0]
            for sy in range(ss):
                for sx in range(ss):
                    r, g, b, a = colour_at((px + (sx + 0.5) / ss) * 64 / size,
                                           (py + (sy + 0.5) / ss) * 64 / size)
                    acc[0] += r * a
                    acc[1] += g * a
                    acc[2] += b * a
                    acc[3] += a
            n = ss * ss
            alpha = acc[3] / n
            if acc[3]:
                row += bytes([round(acc[0] / acc[3]), round(acc[1] / acc[3]),
                              round(acc[2] / acc[3]), round(alpha)])
            else:
                row += bytes(4)
        rows.append(bytes(row))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) +
            chunk(b"IDAT", zlib.compress(b"".join(rows), 9)) + chunk(b"IEND", b""))


def svg():
    hexc = lambda c: "#%02x%02x%02x" % c
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">',
             f'  <rect x="2" y="2" width="60" height="60" rx="{RADIUS:g}" fill="{hexc(BACKGROUND)}"/>']
    for x, y, colour in cells():
        parts.append(f'  <rect x="{x:g}" y="{y:g}" width="{CELL:g}" height="{CELL:g}" '
                     f'rx="{CELL_RADIUS:g}" fill="{hexc(colour)}"/>')
    parts.append("</svg>\n")
    return "\n".join(parts)


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "resources", "icons")
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "moestudio.svg"), "w") as f:
        f.write(svg())
    for size in SIZES:
        with open(os.path.join(root, f"moestudio-{size}.png"), "wb") as f:
            f.write(png(size))


if __name__ == "__main__":
    main()
