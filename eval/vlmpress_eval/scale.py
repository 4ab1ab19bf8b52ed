"""How far text can be downscaled before OCR loses it: the floor under an image-token budget.

A token budget (`max_image_tokens`) is met by sending a smaller image. For photos that is the caller's
trade; for text it stops being one when the characters become too small to read. This renders the
harness's text set (documents, signs, tables, receipts at 11, 14, 20 and 28 px), downscales each page
(Lanczos, as the gateway does) to a list of scales, and reads every true line with PaddleOCR and
Tesseract at that size. For each target it records the smallest scale at which both engines keep
that share of their character accuracy on the full-size page, there and at every larger scale; the
policy builder puts these floors in the table and the gateway never downscales a text image below
the floor of the request's target.

    PYTHONPATH=training:eval .venv/bin/python -m vlmpress_eval.scale --out eval/results/text-scale
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm
from vlmpress_train.images import load_rgb

from .datasets import SHARED, load_items
from .metrics import char_accuracy
from .ocr import PaddleOcr, Tesseract
from .textset import write_set

SCALES = (1.0, 0.875, 0.75, 0.625, 0.5, 0.375)
TARGETS = (0.95, 0.98, 0.99)


def downscale(img: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return img
    h, w = img.shape[:2]
    return np.asarray(Image.fromarray(img).resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS))


def floors(retained: dict[str, dict[float, float]], targets: tuple[float, ...] = TARGETS) -> dict[str, float]:
    """floors[target] = the smallest scale from which every larger scale keeps `target` on every engine."""
    scales = sorted({s for per in retained.values() for s in per}, reverse=True)
    out: dict[str, float] = {}
    for t in targets:
        floor = 1.0
        for s in scales:
            if all(per[s] >= t for per in retained.values()):
                floor = s
            else:
                break
        out[f"{t:.2f}"] = floor
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=1, help="pages rendered per kind and font size")
    ap.add_argument("--scales", default=",".join(f"{s:g}" for s in SCALES))
    ap.add_argument("--models", type=Path, default=SHARED / "models")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    scales = sorted({1.0, *(float(s) for s in args.scales.split(","))}, reverse=True)
    folder = write_set(args.out / "textset", seeds=args.seeds)
    items = load_items(folder, args.models / "imagenet_synsets.txt")
    engines: dict[str, Any] = {"paddle": PaddleOcr(), "tesseract": Tesseract()}
    started = time.time()
    rows: list[dict[str, Any]] = []
    for it in tqdm(items, desc="text scale", unit="page", dynamic_ncols=True):
        img = np.asarray(load_rgb(it.path))
        truth = [text for text, _ in it.lines or ()]
        for s in scales:
            small = downscale(img, s)
            boxes = [tuple(round(v * s) for v in box) for _, box in it.lines or ()]
            row: dict[str, Any] = {"image": it.path.name, "scale": s}
            for name, engine in engines.items():
                row[f"ocr_{name}"] = float(np.mean([char_accuracy(t, g) for t, g in zip(truth, engine.read_lines(small, boxes))]))
            rows.append(row)
    accuracy = {name: {s: float(np.mean([r[f"ocr_{name}"] for r in rows if r["scale"] == s])) for s in scales} for name in engines}
    retained = {name: {s: per[s] / per[1.0] for s in scales} for name, per in accuracy.items()}
    command = "python -m vlmpress_eval.scale " + shlex.join(argv if argv is not None else sys.argv[1:])
    result = {
        "set": "text",
        "images": len(items),
        "command": command,
        "scale": {"accuracy": accuracy, "retained": retained, "floors": floors(retained)},
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scale.json").write_text(json.dumps(result, indent=1))
    lines = [
        f"`{command}`, {len(items)} pages, {time.time() - started:.0f} s",
        "",
        "| scale | " + " | ".join(f"{n} (kept)" for n in engines) + " |",
    ]
    lines.append("|" + " --- |" * (len(engines) + 1))
    for s in scales:
        lines.append(f"| {s:g} | " + " | ".join(f"{accuracy[n][s]:.3f} ({retained[n][s]:.3f})" for n in engines) + " |")
    lines += ["", "floors (smallest scale keeping the target on both engines): " + json.dumps(result["scale"]["floors"])]
    (args.out / "scale.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
