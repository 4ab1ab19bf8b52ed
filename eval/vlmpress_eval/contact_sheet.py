"""A contact sheet: original / plain AVIF / semantic AVIF at about the same bytes, per image.

    PYTHONPATH=training:eval .venv/bin/python -m vlmpress_eval.contact_sheet --out docs/images/semantic-avif-sheet.jpg

Both codecs run through the product CLI (sharp's AVIF; the shipped editor package before it). For
each image the semantic AVIF is made at `--quality`, and the plain AVIF at the quality whose size is
closest to it, so the columns compare what the same bytes buy.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from vlmpress_train.images import load_rgb

from .codecs import VlmpressCodec, temporary_workdir
from .datasets import SHARED

DEFAULT_IMAGES = [
    SHARED / "data" / "kodak" / "kodim23.png",
    SHARED / "data" / "imagenet-dev" / "n01443537_goldfish.JPEG",
    SHARED / "data" / "cbsd68" / "101085.png",
]


def tile(img: np.ndarray, label: str, width: int) -> Image.Image:
    im = Image.fromarray(img)
    im = im.resize((width, round(im.height * width / im.width)), Image.LANCZOS)
    out = Image.new("RGB", (im.width, im.height + 18), "white")
    out.paste(im, (0, 18))
    ImageDraw.Draw(out).text((4, 3), label, fill="black")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=Path, nargs="*", default=DEFAULT_IMAGES)
    ap.add_argument("--quality", type=int, default=35)
    ap.add_argument("--width", type=int, default=300, help="width of each tile")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    images = {p.stem: np.asarray(load_rgb(p)) for p in args.images if p.exists()}
    plain_q = list(range(max(1, args.quality - 30), min(100, args.quality + 6)))
    with temporary_workdir() as tmp:
        work = Path(tmp)
        semantic = VlmpressCodec(codec="semantic-avif", settings=[float(args.quality)], name="semantic-avif").run(images, work)
        plain = VlmpressCodec(codec="avif", settings=[float(q) for q in plain_q]).run(images, work)
    rows = []
    for key, img in images.items():
        s = semantic[(key, float(args.quality))]
        q = min(plain_q, key=lambda q: abs(plain[(key, float(q))].bytes - s.bytes))
        p = plain[(key, float(q))]
        px = img.shape[0] * img.shape[1]
        cells = [
            tile(img, f"{key} original", args.width),
            tile(p.image, f"plain AVIF q{q}: {p.bytes} B ({8 * p.bytes / px:.2f} bpp)", args.width),
            tile(s.image, f"semantic AVIF q{args.quality}: {s.bytes} B ({8 * s.bytes / px:.2f} bpp)", args.width),
        ]
        row = Image.new("RGB", (sum(c.width for c in cells), max(c.height for c in cells)), "white")
        x = 0
        for c in cells:
            row.paste(c, (x, 0))
            x += c.width
        rows.append(row)
    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), "white")
    y = 0
    for r in rows:
        sheet.paste(r, (0, y))
        y += r.height
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, **({"quality": 90} if args.out.suffix.lower() in (".jpg", ".jpeg") else {}))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
