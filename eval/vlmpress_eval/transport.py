"""Transport copies: what re-encoding a reconstruction for the upstream LVLM API costs the receivers.

None of the major LVLM APIs accepts AVIF or our container, so the proxy forwards each reconstruction
re-encoded in a format the API takes (PNG, JPEG, WebP). This measures, for reconstructions at the
stored settings the policy uses, how often each receiver's prediction on the transport copy equals its
prediction on the reconstruction (`*_keep`), how OCR character accuracy moves (text set), and the
bytes each copy costs next to the client's own JPEG and the lossless PNG the proxy used to send.

    PYTHONPATH=training:eval .venv/bin/python -m vlmpress_eval.transport --set imagenet-dev --stride 2 \\
        --out eval/results/transport-imagenet
    PYTHONPATH=training:eval .venv/bin/python -m vlmpress_eval.transport --set text --receivers "" \\
        --out eval/results/transport-text

Transport encoders are Pillow's libwebp (method 4, sharp's default effort) and libjpeg-turbo (4:2:0):
the same libraries and quality scales as the gateway's sharp.
"""

from __future__ import annotations

import argparse
import io
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm
from vlmpress_train.images import load_rgb

from .codecs import VlmpressCodec, temporary_workdir
from .datasets import SHARED, load_items, named_set
from .metrics import char_accuracy
from .ocr import PaddleOcr, Tesseract
from .policy import wilson
from .receivers import load_receivers
from .textset import write_set

TRANSPORTS = ["png", "webp:lossless", "webp:75", "webp:85", "webp:90", "webp:95", "jpeg:90", "jpeg:95"]


def encode(img: np.ndarray, transport: str) -> bytes:
    fmt, _, q = transport.partition(":")
    buf = io.BytesIO()
    im = Image.fromarray(img)
    if fmt == "png":
        im.save(buf, format="PNG", compress_level=6)
    elif fmt == "webp" and q == "lossless":
        im.save(buf, format="WEBP", lossless=True, method=4)
    elif fmt == "webp":
        im.save(buf, format="WEBP", quality=int(q), method=4)
    elif fmt == "jpeg":
        im.save(buf, format="JPEG", quality=int(q), subsampling="4:2:0")
    else:
        raise ValueError(f"unknown transport {transport}")
    return buf.getvalue()


def decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", default="imagenet-dev", help="a set under ../shared/data, text (rendered, with truth), or a folder")
    ap.add_argument("--stride", type=int, default=1)
    ap.add_argument("--seeds", type=int, default=2, help="text set: pages rendered per kind and font size")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--stored", default="85,55,25", help="sharp-avif qualities of the stored reconstructions")
    ap.add_argument("--transports", default=",".join(TRANSPORTS))
    ap.add_argument("--receivers", default="mbv2,mbv1")
    ap.add_argument("--models", type=Path, default=SHARED / "models")
    ap.add_argument("--chunk", type=int, default=50)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(2)

    folder = write_set(args.out / "textset", seeds=args.seeds) if args.set == "text" else named_set(args.set)
    items = load_items(folder, args.models / "imagenet_synsets.txt", args.limit, args.stride)
    if not items:
        print(f"no images in {folder}", file=sys.stderr)
        return 2
    qualities = [float(q) for q in args.stored.split(",")]
    transports = args.transports.split(",")
    receivers = load_receivers([r for r in args.receivers.split(",") if r], args.models)
    ocr: dict[str, Any] = {"paddle": PaddleOcr(), "tesseract": Tesseract()} if (folder / "truth.json").exists() else {}
    stored_codec = VlmpressCodec(codec="avif", settings=qualities)

    rows: list[dict[str, Any]] = []
    started = time.time()
    with temporary_workdir() as tmp, tqdm(total=len(items), desc=folder.name, unit="img", dynamic_ncols=True) as bar:
        for c in range(0, len(items), args.chunk):
            chunk = items[c : c + args.chunk]
            work = Path(tmp) / f"chunk{c}"
            work.mkdir()
            originals = {it.key: np.asarray(load_rgb(it.path)) for it in chunk}
            coded = stored_codec.run(originals, work)
            for it in chunk:
                img = originals[it.key]
                client = len(encode(img, "jpeg:90"))
                for q in qualities:
                    rec = coded[(it.key, q)]
                    copies = {t: encode(rec.image, t) for t in transports}
                    images = [rec.image, *(decode(b) for b in copies.values())]
                    top1 = {r: rc.outputs(images).argmax(axis=1) for r, rc in receivers.items() if rc.spec.kind == "classifier"}
                    ocr_acc: dict[str, list[float]] = {}
                    for name, engine in ocr.items():
                        truth = [text for text, _ in it.lines or ()]
                        boxes = [box for _, box in it.lines or ()]
                        ocr_acc[name] = [
                            float(np.mean([char_accuracy(t, g) for t, g in zip(truth, engine.read_lines(im, boxes))])) for im in images
                        ]
                    for i, t in enumerate(transports):
                        row: dict[str, Any] = {
                            "image": it.key,
                            "stored_quality": q,
                            "transport": t,
                            "stored_bytes": rec.bytes,
                            "client_jpeg90_bytes": client,
                            "bytes": len(copies[t]),
                        }
                        for r, p in top1.items():
                            row[f"{r}_keep"] = bool(p[i + 1] == p[0])
                            if it.label is not None:
                                row[f"{r}_right_rec"] = bool(p[0] == it.label)
                                row[f"{r}_right"] = bool(p[i + 1] == it.label)
                        for name, acc in ocr_acc.items():
                            row[f"ocr_{name}_rec"] = acc[0]
                            row[f"ocr_{name}"] = acc[i + 1]
                        rows.append(row)
                bar.update()

    summary: list[dict[str, Any]] = []
    for q in qualities:
        for t in transports:
            sel = [r for r in rows if r["stored_quality"] == q and r["transport"] == t]
            s: dict[str, Any] = {
                "stored_quality": q,
                "transport": t,
                "images": len(sel),
                "median_bytes": float(np.median([r["bytes"] for r in sel])),
                "median_ratio_to_client_jpeg90": float(np.median([r["bytes"] / r["client_jpeg90_bytes"] for r in sel])),
                "share_above_client_jpeg90": float(np.mean([r["bytes"] > r["client_jpeg90_bytes"] for r in sel])),
                "median_stored_bytes": float(np.median([r["stored_bytes"] for r in sel])),
            }
            for r in receivers:
                k = sum(x[f"{r}_keep"] for x in sel)
                s[f"{r}_keep"] = k / len(sel)
                s[f"{r}_keep_ci95"] = wilson(k / len(sel), len(sel))
                labelled = [x for x in sel if f"{r}_right" in x]
                if labelled:
                    # True-label accuracy of the reconstruction and of its copy, and the images that
                    # changed: right to wrong (lost) and wrong to right (gained).
                    s[f"{r}_acc_rec"] = float(np.mean([x[f"{r}_right_rec"] for x in labelled]))
                    s[f"{r}_acc"] = float(np.mean([x[f"{r}_right"] for x in labelled]))
                    s[f"{r}_lost"] = sum(x[f"{r}_right_rec"] and not x[f"{r}_right"] for x in labelled)
                    s[f"{r}_gained"] = sum(x[f"{r}_right"] and not x[f"{r}_right_rec"] for x in labelled)
            for name in ocr:
                s[f"ocr_{name}_rec"] = float(np.mean([x[f"ocr_{name}_rec"] for x in sel]))
                s[f"ocr_{name}"] = float(np.mean([x[f"ocr_{name}"] for x in sel]))
            summary.append(s)

    args.out.mkdir(parents=True, exist_ok=True)
    command = "python -m vlmpress_eval.transport " + shlex.join(argv if argv is not None else sys.argv[1:])
    (args.out / "transport.json").write_text(json.dumps({"command": command, "summary": summary, "rows": rows}, indent=1))
    cols = ["stored_quality", "transport", "median_bytes", "median_ratio_to_client_jpeg90", "share_above_client_jpeg90"]
    cols += [f"{r}_keep" for r in receivers]
    cols += [f"{r}_{k}" for r in receivers for k in ("acc_rec", "acc", "lost", "gained") if f"{r}_{k}" in summary[0]]
    cols += [f"ocr_{n}{s}" for n in ocr for s in ("_rec", "")]
    lines = [
        f"`{command}`, {len(items)} images, {time.time() - started:.0f} s",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + " --- |" * len(cols),
    ]
    for s in summary:
        lines.append("| " + " | ".join(f"{s[c]:.3f}" if isinstance(s[c], float) else str(s[c]) for c in cols) + " |")
    (args.out / "transport.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
