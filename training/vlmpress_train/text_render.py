"""Rendered text for training: documents, tables, receipts and UI-like screens.

Much LVLM traffic is text and screenshots, where pixel-exact strokes matter. Pages are drawn with
PIL from the system's TrueType fonts (Debian fonts-dejavu-core / fonts-liberation2), so nothing is
downloaded and every sample is a pure function of the random generator.
"""

from __future__ import annotations

import functools
import random
import string
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONT_DIRS = ("/usr/share/fonts/truetype", "/usr/share/fonts/opentype")
_WORDS = (
    "invoice total amount date account model image vision report table revenue quarter budget user "
    "settings profile search results page status error warning order number price qty item customer "
    "address street city payment card cash change tax subtotal download upload file open save cancel "
    "the of and to in is for on with as by at from this that be are was it an or"
).split()


def _draws_latin(path: str) -> bool:
    """Icon and symbol fonts (glyphicons, ...) draw the same box for every letter: skip them."""
    try:
        font = ImageFont.truetype(path, 24)
    except OSError:
        return False
    a, b = font.getmask("A"), font.getmask("W")
    return a.size != (0, 0) and (a.size != b.size or bytes(a) != bytes(b))


@functools.lru_cache(maxsize=1)
def system_fonts() -> tuple[str, ...]:
    fonts: list[str] = []
    for d in FONT_DIRS:
        p = Path(d)
        if p.is_dir():
            fonts += [str(f) for f in sorted(p.rglob("*.ttf")) if "Math" not in f.name and _draws_latin(str(f))]
    if not fonts:
        raise RuntimeError("no TrueType fonts found: install fonts-dejavu-core")
    return tuple(fonts)


@functools.lru_cache(maxsize=256)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def _word(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.6:
        w = rng.choice(_WORDS)
        return w.capitalize() if rng.random() < 0.2 else w
    if r < 0.8:
        return f"{rng.randint(0, 9999)}" if rng.random() < 0.5 else f"{rng.uniform(0, 999):.2f}"
    return "".join(rng.choice(string.ascii_letters) for _ in range(rng.randint(2, 9)))


def _line(rng: random.Random, n: int) -> str:
    return " ".join(_word(rng) for _ in range(n))


def _colors(rng: random.Random) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    if rng.random() < 0.7:
        bg = tuple(rng.randint(225, 255) for _ in range(3))
        fg = tuple(rng.randint(0, 70) for _ in range(3))
    else:  # dark mode / coloured banners
        bg = tuple(rng.randint(0, 60) for _ in range(3))
        fg = tuple(rng.randint(190, 255) for _ in range(3))
    return bg, fg  # type: ignore[return-value]


def render_text_image(rng: random.Random, width: int, height: int, fonts: list[str] | None = None) -> Image.Image:
    """One synthetic text image of the given size, kind chosen at random."""
    fonts = list(fonts or system_fonts())
    kind = rng.choice(("document", "table", "receipt", "screen"))
    bg, fg = _colors(rng)
    im = Image.new("RGB", (width, height), bg)
    d = ImageDraw.Draw(im)
    font_path = rng.choice(fonts)
    size = rng.randint(9, 28)
    font = _font(font_path, size)
    if kind == "document":
        y = rng.randint(-size, size)
        x0 = rng.randint(2, 20)
        while y < height:
            d.text((x0, y), _line(rng, rng.randint(3, 12)), fill=fg, font=font)
            y += int(size * rng.uniform(1.15, 1.6))
    elif kind == "table":
        cols = rng.randint(2, 5)
        rows_h = int(size * 1.6)
        col_w = max(20, width // cols)
        for r, y in enumerate(range(0, height, rows_h)):
            if r % 2 and rng.random() < 0.5:
                d.rectangle((0, y, width, y + rows_h), fill=tuple(max(0, c - 18) for c in bg))
            for c in range(cols):
                d.text((c * col_w + 3, y + 2), _word(rng), fill=fg, font=font)
            d.line((0, y, width, y), fill=fg, width=1)
        for c in range(1, cols):
            d.line((c * col_w, 0, c * col_w, height), fill=fg, width=1)
    elif kind == "receipt":
        mono = [f for f in fonts if "Mono" in f] or fonts
        font = _font(rng.choice(mono), size)
        y = rng.randint(0, size)
        while y < height:
            left = _line(rng, rng.randint(1, 3))
            d.text((4, y), left, fill=fg, font=font)
            price = f"{rng.uniform(0, 500):8.2f}"
            tw = d.textlength(price, font=font)
            d.text((width - tw - 4, y), price, fill=fg, font=font)
            y += int(size * 1.3)
    else:  # screen: title bar, buttons, list items
        bar = tuple(rng.randint(0, 255) for _ in range(3))
        d.rectangle((0, 0, width, size * 2), fill=bar)
        d.text((6, size // 2), _line(rng, 3), fill=(255, 255, 255) if sum(bar) < 380 else (0, 0, 0), font=font)
        y = size * 2 + 6
        while y < height:
            if rng.random() < 0.3:
                bw = rng.randint(40, max(41, width // 2))
                btn = tuple(rng.randint(0, 255) for _ in range(3))
                d.rounded_rectangle((8, y, 8 + bw, y + int(size * 1.6)), radius=4, fill=btn)
                d.text((14, y + size // 4), _word(rng), fill=(255, 255, 255) if sum(btn) < 380 else (0, 0, 0), font=font)
                y += int(size * 2.0)
            else:
                d.text((10, y), _line(rng, rng.randint(2, 7)), fill=fg, font=font)
                y += int(size * 1.5)
                d.line((6, y - 3, width - 6, y - 3), fill=tuple(max(0, c - 30) for c in bg), width=1)
    return im
