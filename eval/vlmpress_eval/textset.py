"""Rendered text with its ground truth: documents, signs, tables and receipts at several font
sizes, where image compression hurts LVLMs most. A pure function of the seed: the same files on
every machine (given the same Debian fonts), so results are comparable run to run.

    python -m vlmpress_eval.textset --out /tmp/textset      # writes PNGs + truth.json
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont
from vlmpress_train.text_render import _line, system_fonts

KINDS = ("document", "sign", "table", "receipt")
FONT_SIZES = (11, 14, 20, 28)


@dataclass
class TextLine:
    text: str
    box: tuple[int, int, int, int]  # left, top, right, bottom


def _font(rng: random.Random, size: int, mono: bool = False) -> ImageFont.FreeTypeFont:
    fonts = [f for f in system_fonts() if ("Mono" in f) == mono and not any(k in f for k in ("Bold", "Oblique", "Italic", "Light"))]
    return ImageFont.truetype(rng.choice(fonts or list(system_fonts())), size)


def _put(
    draw: ImageDraw.ImageDraw,
    xy: tuple[int, int],
    text: str,
    font: ImageFont.FreeTypeFont,
    fill: tuple[int, int, int],
    lines: list[TextLine],
) -> int:
    draw.text(xy, text, font=font, fill=fill)
    l, t, r, b = draw.textbbox(xy, text, font=font)
    lines.append(TextLine(text, (l, t, r, b)))
    return b


def render(kind: str, size: int, seed: int) -> tuple[Image.Image, list[TextLine]]:
    rng = random.Random(f"{kind}-{size}-{seed}")
    lines: list[TextLine] = []
    gap = max(4, size // 2)
    if kind == "document":
        img = Image.new("RGB", (640, 480), (250, 250, 247))
        d = ImageDraw.Draw(img)
        font = _font(rng, size)
        y = 16
        # At most 12 lines: OCR reads every line of every reconstruction, and that dominates the run time.
        while y + size * 2 < 470 and len(lines) < 12:
            y = _put(d, (20, y), _line(rng, max(3, 560 // (size * 3))), font, (20, 20, 25), lines) + gap
    elif kind == "sign":
        bg = rng.choice([(0, 90, 50), (20, 50, 140), (170, 20, 20), (240, 190, 0)])
        fg = (0, 0, 0) if bg == (240, 190, 0) else (255, 255, 255)
        img = Image.new("RGB", (640, 360), (120, 130, 125))
        d = ImageDraw.Draw(img)
        d.rounded_rectangle((30, 40, 610, 320), radius=18, fill=bg, outline=fg, width=4)
        font = _font(rng, size * 2)
        y = 70
        for _ in range(3):
            if y + size * 2 > 300:
                break
            y = _put(d, (60, y), _line(rng, 2 if size >= 20 else 3), font, fg, lines) + gap * 2
    elif kind == "table":
        img = Image.new("RGB", (640, 480), (255, 255, 255))
        d = ImageDraw.Draw(img)
        font = _font(rng, size)
        cols = [20, 200, 360, 500]
        row_h = size + 2 * gap
        y = 14
        while y + row_h < 470 and len(lines) < 40:
            d.line((10, y - gap // 2, 630, y - gap // 2), fill=(160, 160, 170), width=1)
            for i, x in enumerate(cols):
                cell = _line(rng, 1) if i == 0 else f"{rng.uniform(0, 9999):.2f}"
                _put(d, (x, y), cell, font, (10, 10, 30), lines)
            y += row_h
    elif kind == "receipt":
        img = Image.new("RGB", (360, 560), (244, 242, 236))
        d = ImageDraw.Draw(img)
        font = _font(rng, size, mono=True)
        y = 16
        y = _put(d, (20, y), _line(rng, 2).upper(), font, (30, 30, 30), lines) + gap * 2
        total = 0.0
        while y + size * 4 < 540:
            price = rng.uniform(0.5, 99)
            total += price
            y = _put(d, (20, y), f"{_line(rng, 1)[:12]:<12} {price:8.2f}", font, (30, 30, 30), lines) + gap
        _put(d, (20, y + gap), f"{'TOTAL':<12} {total:8.2f}", font, (0, 0, 0), lines)
    else:
        raise ValueError(f"unknown kind {kind}")
    return img, lines


def write_set(out: Path, seeds: int = 2) -> Path:
    """Render every kind x font size x seed into `out`; truth.json maps file name -> lines."""
    out.mkdir(parents=True, exist_ok=True)
    truth: dict[str, list[dict]] = {}
    for kind in KINDS:
        for size in FONT_SIZES:
            for seed in range(seeds):
                img, lines = render(kind, size, seed)
                name = f"{kind}-{size:02d}px-{seed}.png"
                img.save(out / name)
                truth[name] = [asdict(line) for line in lines]
    (out / "truth.json").write_text(json.dumps(truth, indent=1))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seeds", type=int, default=2)
    args = ap.parse_args()
    write_set(args.out, args.seeds)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
