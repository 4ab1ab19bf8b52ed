"""Figures for the model card: per quality level, Kodak bpp/PSNR and validation-split teacher agreement,
with Pillow JPEG at matched bpp measured in the same run.

    python -m vlmpress_train.evaluate --package models/vlmp-mbv2-small --out runs/eval.json

All codec numbers go through the exported package (ONNX graphs + integer tables), not PyTorch.
"""

from __future__ import annotations

import argparse
import io
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from .data import validation_split
from .images import imagenet_label, list_images, load_rgb, resize_center_crop, to_tensor
from .package_codec import PackageCodec
from .teachers.tflite_graph import TFLiteClassifier

JPEG_QUALITIES = (1, 2, 3, 5, 8, 10, 13, 16, 20, 25, 30, 40, 50, 60, 70, 80, 90, 95)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * math.log10(255.0**2 / mse)


def jpeg_sweep(img: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
    """(quality, bytes, decoded) for every JPEG quality, Pillow defaults (4:2:0, baseline)."""
    out = []
    for q in JPEG_QUALITIES:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=q)
        out.append((q, buf.tell(), np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))))
    return out


def closest_jpeg(sweep: list[tuple[int, int, np.ndarray]], target_bytes: float) -> tuple[int, int, np.ndarray]:
    return min(sweep, key=lambda s: abs(s[1] - target_bytes))


class Receiver:
    """A classifier applied to a 224x224 uint8 image (resized to its own input when that differs)."""

    def __init__(self, path: Path, size: int, resize_to: int) -> None:
        self.net = TFLiteClassifier(path).eval()
        self.size, self.resize_to = size, resize_to

    @torch.no_grad()
    def top1(self, img: np.ndarray) -> int:
        im = Image.fromarray(img)
        if self.size != img.shape[0]:
            im = resize_center_crop(im, self.resize_to, self.size)
        return int(self.net(to_tensor(im)).argmax(1))


def coded_and_jpeg(
    codec: PackageCodec, img: np.ndarray, q: float, sweep: list[tuple[int, int, np.ndarray]]
) -> tuple[int, np.ndarray, int, np.ndarray]:
    """The codec's bytes and reconstruction at quality q, and the JPEG of the sweep closest in bytes."""
    enc = codec.encode(img, q)
    nbytes = codec.bytes_estimate(enc)
    rec = codec.decode(enc, q)
    _, jpeg_bytes, jpeg_img = closest_jpeg(sweep, nbytes)
    return nbytes, rec, jpeg_bytes, jpeg_img


def evaluate(
    package: Path, shared: Path, levels: list[float], val_count: int = 100, kodak_limit: int = 24, log: Callable[[str], None] = print
) -> dict[str, Any]:
    torch.set_num_threads(2)
    codec = PackageCodec(package, threads=2)
    models = shared / "models"
    teacher = Receiver(models / "tf2_mobilenet_v2_1.0_224_ptq.tflite", 224, 224)
    unseen = Receiver(models / "mobilenet_v1_0.75_192_quant.tflite", 192, 219)
    synsets = (models / "imagenet_synsets.txt").read_text().split()
    result: dict[str, Any] = {"package": codec.manifest["name"], "model_id": codec.manifest["id"], "levels": {}}

    # --- validation split: 224x224 crops, the receiver's own view of the photo ---
    val = validation_split(shared / "data" / "imagenet-dev", val_count)
    rows: dict[float, dict[str, list[float]]] = {
        q: {k: [] for k in ("bpp", "agree", "true", "agree_v1", "jpeg_bpp", "jpeg_agree", "jpeg_agree_v1")} for q in levels
    }
    ref_true = ref_true_v1 = 0
    for path in tqdm(val, desc="val", dynamic_ncols=True):
        img = np.asarray(resize_center_crop(load_rgb(path), 256, 224))
        label = imagenet_label(path, synsets)
        p0, p0_v1 = teacher.top1(img), unseen.top1(img)
        ref_true += p0 == label
        ref_true_v1 += p0_v1 == label
        sweep = jpeg_sweep(img)
        pixels = img.shape[0] * img.shape[1]
        for q in levels:
            nbytes, rec, jb, jimg = coded_and_jpeg(codec, img, q, sweep)
            p = teacher.top1(rec)
            r = rows[q]
            r["bpp"].append(nbytes * 8 / pixels)
            r["agree"].append(float(p == p0))
            r["true"].append(float(p == label))
            r["agree_v1"].append(float(unseen.top1(rec) == p0_v1))
            r["jpeg_bpp"].append(jb * 8 / pixels)
            r["jpeg_agree"].append(float(teacher.top1(jimg) == p0))
            r["jpeg_agree_v1"].append(float(unseen.top1(jimg) == p0_v1))
    result["validation"] = {
        "images": len(val),
        "crop": "short side 256, centre 224",
        "original_true_top1": ref_true / len(val),
        "original_true_top1_v1": ref_true_v1 / len(val),
    }

    # --- Kodak: full 768x512 images, bpp and PSNR ---
    kodak = list_images(shared / "data" / "kodak")[:kodak_limit]
    krows: dict[float, dict[str, list[float]]] = {q: {k: [] for k in ("bpp", "psnr", "jpeg_bpp", "jpeg_psnr")} for q in levels}
    for path in tqdm(kodak, desc="kodak", dynamic_ncols=True):
        img = np.asarray(load_rgb(path))
        sweep = jpeg_sweep(img)
        pixels = img.shape[0] * img.shape[1]
        for q in levels:
            nbytes, rec, jb, jimg = coded_and_jpeg(codec, img, q, sweep)
            k = krows[q]
            k["bpp"].append(nbytes * 8 / pixels)
            k["psnr"].append(psnr(img, rec))
            k["jpeg_bpp"].append(jb * 8 / pixels)
            k["jpeg_psnr"].append(psnr(img, jimg))
    for q in levels:
        r, k = rows[q], krows[q]
        result["levels"][str(q)] = {
            "val_bpp": float(np.mean(r["bpp"])),
            "val_agree": float(np.mean(r["agree"])),
            "val_true_top1": float(np.mean(r["true"])),
            "val_agree_unseen_v1": float(np.mean(r["agree_v1"])),
            "val_jpeg_bpp": float(np.mean(r["jpeg_bpp"])),
            "val_jpeg_agree": float(np.mean(r["jpeg_agree"])),
            "val_jpeg_agree_unseen_v1": float(np.mean(r["jpeg_agree_v1"])),
            "kodak_bpp": float(np.mean(k["bpp"])),
            "kodak_psnr": float(np.mean(k["psnr"])),
            "kodak_jpeg_bpp": float(np.mean(k["jpeg_bpp"])),
            "kodak_jpeg_psnr": float(np.mean(k["jpeg_psnr"])),
        }
    log(markdown_table(result))
    return result


def markdown_table(result: dict[str, Any]) -> str:
    lines = [
        "| q | val bpp | agree (teacher) | true top-1 | agree (unseen V1) | JPEG bpp | JPEG agree | JPEG agree V1 "
        "| Kodak bpp | Kodak PSNR | JPEG bpp | JPEG PSNR |",
        "|" + "---|" * 12,
    ]
    for q, r in result["levels"].items():
        lines.append(
            f"| {q} | {r['val_bpp']:.3f} | {100 * r['val_agree']:.1f}% | {100 * r['val_true_top1']:.1f}% "
            f"| {100 * r['val_agree_unseen_v1']:.1f}% | {r['val_jpeg_bpp']:.3f} | {100 * r['val_jpeg_agree']:.1f}% "
            f"| {100 * r['val_jpeg_agree_unseen_v1']:.1f}% | {r['kodak_bpp']:.3f} | {r['kodak_psnr']:.2f} "
            f"| {r['kodak_jpeg_bpp']:.3f} | {r['kodak_jpeg_psnr']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description="Evaluate an exported vlmpress model package.")
    ap.add_argument("--package", required=True)
    ap.add_argument("--shared", default="../shared")
    ap.add_argument("--levels", default="1,2,3,4,5,6,7,8")
    ap.add_argument("--val-count", type=int, default=100)
    ap.add_argument("--kodak", type=int, default=24)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    levels = [float(x) for x in args.levels.split(",")]
    res = evaluate(Path(args.package), Path(args.shared), levels, args.val_count, args.kodak)
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
