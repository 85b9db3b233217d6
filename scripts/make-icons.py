#!/usr/bin/env python3
"""Draw the 守护 Shouhu app icon and write every size Tauri bundles need.

Run by hand once (the PNG/ICO/ICNS files are committed; CI never runs this):

    python3 -m venv /tmp/iconvenv && /tmp/iconvenv/bin/pip install pillow
    /tmp/iconvenv/bin/python scripts/make-icons.py

Needs Pillow and the Noto Sans CJK font (Debian: fonts-noto-cjk).
The mark: a warm orange shield with a small heart, and the character 守 in white.
"""
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "icons"
FONT = "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc"
S = 1024  # master size; everything is drawn at 4x and scaled down

TOP = (245, 124, 58)  # warm orange
BOTTOM = (214, 69, 48)  # deeper red-orange
WHITE = (255, 255, 255, 255)
CREAM = (255, 236, 214, 255)


def sc_font(size: int) -> ImageFont.FreeTypeFont:
    for index in range(8):
        font = ImageFont.truetype(FONT, size, index=index)
        if font.getname()[0].endswith(" SC"):
            return font
    raise SystemExit("Noto Sans CJK SC not found in " + FONT)


def shield_points(size: int, inset: float) -> list[tuple[float, float]]:
    """A classic shield: flat top with rounded shoulders, pointed bottom."""
    w = size
    left, right = w * (0.10 + inset), w * (0.90 - inset)
    top = w * (0.10 + inset)
    pts: list[tuple[float, float]] = []
    # top edge with a slight dip in the middle
    steps = 40
    for i in range(steps + 1):
        t = i / steps
        x = left + (right - left) * t
        dip = -0.03 * w * (1 - (2 * t - 1) ** 2)
        pts.append((x, top + dip))
    # right side down to the point, a smooth curve
    for i in range(1, steps + 1):
        t = i / steps
        x = right - (right - w / 2) * (t**2.4)
        y = top + (w * (0.93 - inset) - top) * t
        pts.append((x, y))
    # left side back up
    for i in range(steps - 1, 0, -1):
        t = i / steps
        x = left + (w / 2 - left) * (t**2.4)
        y = top + (w * (0.93 - inset) - top) * t
        pts.append((x, y))
    return pts


def heart(draw: ImageDraw.ImageDraw, cx: float, cy: float, r: float, fill) -> None:
    draw.ellipse((cx - 2 * r, cy - r, cx, cy + r), fill=fill)
    draw.ellipse((cx, cy - r, cx + 2 * r, cy + r), fill=fill)
    draw.polygon([(cx - 1.95 * r, cy + 0.3 * r), (cx + 1.95 * r, cy + 0.3 * r), (cx, cy + 2.4 * r)], fill=fill)


def master() -> Image.Image:
    big = S * 4
    # vertical gradient clipped by the shield
    grad = Image.new("RGBA", (big, big))
    gd = ImageDraw.Draw(grad)
    for y in range(big):
        t = y / big
        c = tuple(round(TOP[i] + (BOTTOM[i] - TOP[i]) * t) for i in range(3))
        gd.line([(0, y), (big, y)], fill=c + (255,))
    mask = Image.new("L", (big, big), 0)
    ImageDraw.Draw(mask).polygon(shield_points(big, 0.0), fill=255)
    img = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    img.paste(grad, (0, 0), mask)

    draw = ImageDraw.Draw(img)
    # inner outline
    draw.line(shield_points(big, 0.035) + [shield_points(big, 0.035)[0]], fill=CREAM, width=big // 64, joint="curve")
    # the character
    font = sc_font(int(big * 0.50))
    box = draw.textbbox((0, 0), "守", font=font)
    tw, th = box[2] - box[0], box[3] - box[1]
    draw.text(((big - tw) / 2 - box[0], big * 0.43 - th / 2 - box[1]), "守", font=font, fill=WHITE)
    # small heart under it
    heart(draw, big / 2, big * 0.735, big * 0.038, CREAM)
    return img.resize((S, S), Image.LANCZOS)


def main() -> None:
    OUT.mkdir(exist_ok=True)
    m = master()
    for name, size in [("32x32.png", 32), ("64x64.png", 64), ("128x128.png", 128), ("128x128@2x.png", 256), ("icon.png", 512)]:
        m.resize((size, size), Image.LANCZOS).save(OUT / name, optimize=True)
    m.save(OUT / "icon.ico", sizes=[(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)])
    m.save(OUT / "icon.icns")
    for f in sorted(OUT.iterdir()):
        print(f"{f.name:18} {f.stat().st_size:>8} bytes")


if __name__ == "__main__":
    main()
