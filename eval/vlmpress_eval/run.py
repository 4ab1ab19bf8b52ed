"""The rate–accuracy harness.

    PYTHONPATH=training:eval .venv/bin/python -m vlmpress_eval.run --set imagenet-dev --limit 200 --out results/imagenet-dev
    ... --images /my/photos --out results/mine      # any folder; labels from ImageNet synset file names where present
    ... --questions qa.jsonl --lvlm-url http://127.0.0.1:8000/v1 --lvlm-model Qwen/Qwen2-VL-7B-Instruct --out results/qa
                                                     # a real LVLM as the receiver (lvlm.py)

Every image goes through every codec at every setting; every reconstruction goes to every receiver.
Writes `points.json` (config, the mean of every metric at every codec setting, and every per-image
row), `bd_rate.md` (BD-rate of each codec against each anchor present, per metric) and `plots/`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm
from vlmpress_train.images import load_rgb

from .codecs import Codec, codec_named, temporary_workdir
from .datasets import SHARED, Item, items_from_questions, load_items, named_set, text_photo_items
from .lvlm import LvlmReceiver, contains_answer, load_questions, normalise
from .metrics import char_accuracy, cosine, msssim, psnr
from .ocr import PaddleOcr, Tesseract
from .receivers import load_receivers
from .report import ANCHOR_ORDER, bd_tables, markdown, plot
from .textset import write_set

PEOPLE_METRICS = ["psnr", "msssim"]
ROOT = Path(__file__).resolve().parents[2]


def ocr_scores(engines: dict[str, Any], it: Item, img: np.ndarray, recs: list[np.ndarray]) -> list[dict[str, float]]:
    """Character accuracy of every reconstruction (index 0: the original) per OCR engine: against the
    true text for rendered text, against the engine's own reading of the original otherwise."""
    scores: list[dict[str, float]] = [{} for _ in range(len(recs) + 1)]
    for name, engine in engines.items():
        images = [img, *recs]
        if it.lines is not None:
            truth = [text for text, _ in it.lines]
            for i, im in enumerate(images):
                got = engine.read_lines(im, [box for _, box in it.lines])
                scores[i][f"ocr_{name}"] = float(np.mean([char_accuracy(t, g) for t, g in zip(truth, got)]))
        else:
            reference = engine.read(img)
            if not reference.strip():
                continue  # nothing legible in the original: no score
            for i, im in enumerate(images):
                scores[i][f"ocr_{name}"] = char_accuracy(reference, engine.read(im)) if i else 1.0
    return scores


def evaluate_chunk(
    items: list[Item],
    codecs: dict[str, Codec],
    receivers: dict[str, Any],
    work: Path,
    lvlm: LvlmReceiver | None = None,
    ocr: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    originals = {it.key: np.asarray(load_rgb(it.path)) for it in items}
    coded = {name: c.run(originals, work) for name, c in codecs.items()}
    rows = []
    for it in items:
        img = originals[it.key]
        pixels = img.shape[0] * img.shape[1]
        variants = [(name, s) for name, c in codecs.items() for s in c.settings]
        recs = [coded[name][(it.key, s)] for name, s in variants]
        outs = {r: rec.outputs([img] + [x.image for x in recs]) for r, rec in receivers.items()}
        answers = lvlm.ask_many([img] + [x.image for x in recs], it.question) if lvlm and it.question else None
        ocr_by_image = ocr_scores(ocr, it, img, [x.image for x in recs]) if ocr else None
        for i, ((name, s), x) in enumerate(zip(variants, recs), start=1):
            m: dict[str, float | None] = {"psnr": psnr(img, x.image), "msssim": msssim(img, x.image)}
            for r, o in outs.items():
                if receivers[r].spec.kind == "embedding":
                    m[f"{r}_cos"] = cosine(o[0], o[i])
                else:
                    m[f"{r}_agree"] = float(o[i].argmax() == o[0].argmax())
                    if it.label is not None:
                        m[f"{r}_top1"] = float(o[i].argmax() == it.label)
            if ocr_by_image is not None:
                m.update(ocr_by_image[i])
            if answers is not None:
                m["lvlm_agree"] = float(normalise(answers[i]) == normalise(answers[0]))
                if it.answer is not None:
                    m["lvlm_acc"] = float(contains_answer(answers[i], it.answer))
            rows.append({"image": it.path.name, "codec": name, "setting": s, "bytes": x.bytes, "bpp": 8 * x.bytes / pixels, "metrics": m})
        for r, o in outs.items():
            if receivers[r].spec.kind == "classifier" and it.label is not None:
                rows.append(
                    {
                        "image": it.path.name,
                        "codec": "original",
                        "setting": 0,
                        "bytes": it.path.stat().st_size,
                        "bpp": 8 * it.path.stat().st_size / pixels,
                        "metrics": {f"{r}_top1": float(o[0].argmax() == it.label)},
                    }
                )
        if ocr_by_image is not None and it.lines is not None and ocr_by_image[0]:
            rows.append(
                {
                    "image": it.path.name,
                    "codec": "original",
                    "setting": 0,
                    "bytes": it.path.stat().st_size,
                    "bpp": 8 * it.path.stat().st_size / pixels,
                    "metrics": ocr_by_image[0],
                }
            )
        if answers is not None and it.answer is not None:
            rows.append(
                {
                    "image": it.path.name,
                    "codec": "original",
                    "setting": 0,
                    "bytes": it.path.stat().st_size,
                    "bpp": 8 * it.path.stat().st_size / pixels,
                    "metrics": {"lvlm_acc": float(contains_answer(answers[0], it.answer))},
                    "answer": answers[0],
                }
            )
    return rows


def aggregate(rows: list[dict[str, Any]], codec_order: list[str]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[tuple[str, float], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r["codec"] != "original":
            groups[(r["codec"], r["setting"])].append(r)
    points: dict[str, list[dict[str, Any]]] = {}
    for codec in codec_order:
        pts = []
        for (c, s), rs in groups.items():
            if c != codec:
                continue
            names = sorted({k for r in rs for k in r["metrics"]})
            metrics = {}
            for k in names:
                vals = [r["metrics"][k] for r in rs if r["metrics"].get(k) is not None]
                metrics[k] = float(np.mean(vals)) if vals else None
            pts.append(
                {
                    "setting": s,
                    "images": len(rs),
                    "bpp": float(np.mean([r["bpp"] for r in rs])),
                    "bytes": float(np.mean([r["bytes"] for r in rs])),
                    "metrics": metrics,
                }
            )
        if pts:
            points[codec] = sorted(pts, key=lambda p: p["bpp"])
    return points


def reusable_rows(
    folders: list[Path], items: list[Item], names: list[str], receivers: list[str], ocr: list[str]
) -> dict[str, tuple[Path, list[dict[str, Any]]]]:
    """Per codec of `names`, the rows an earlier run measured on exactly these images with the same
    receivers and OCR engines, from the first of `folders` that has them (with the folder): a candidate
    is compared with anchors already measured without coding them again (the gateway's classical
    codecs are deterministic, and so are its networks on one machine)."""
    want = {it.path.name for it in items}
    out: dict[str, tuple[Path, list[dict[str, Any]]]] = {}
    for folder in folders:
        res = json.loads((folder / "points.json").read_text())
        rows = res.get("rows") or []
        measured_ocr = sorted({k[len("ocr_") :] for r in rows for k in r["metrics"] if k.startswith("ocr_")})
        if sorted(res.get("receivers", [])) != sorted(receivers) or measured_ocr != sorted(ocr):
            continue
        for name in (n for n in names if n not in out):
            mine = [r for r in rows if r["codec"] == name]
            if mine and {r["image"] for r in mine} == want:
                out[name] = (folder, mine)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--set",
        default="imagenet-dev",
        help="a development set under ../shared/data (imagenet-dev, kodak, ...), text (rendered now, with truth), text-photos (imagenet-dev photos with text, OCR), or a folder",
    )
    ap.add_argument("--images", type=Path, help="any folder of images (overrides --set)")
    ap.add_argument("--limit", type=int, help="evaluate the first N images (after --stride)")
    ap.add_argument("--stride", type=int, default=1, help="take every k-th image (a spread-out subset)")
    ap.add_argument(
        "--codecs",
        default="vlmpress,jpeg,webp,avif,hevc,vvc",
        help="comma-separated; also checkpoint:restoration=PATH[+preeditor=PATH] (an editor package built from checkpoints)",
    )
    ap.add_argument("--receivers", default="mbv2,mbv1,embed")
    ap.add_argument("--models", type=Path, default=SHARED / "models", help="folder with the receivers' TFLite files")
    ap.add_argument("--chunk", type=int, default=16, help="images coded per batch (one vlmpress process per batch)")
    ap.add_argument("--ocr", help="OCR receivers: paddle,tesseract (default: both on rendered text, none elsewhere)")
    ap.add_argument("--questions", type=Path, help="LVLM mode: JSONL of {image, question, answer} (lvlm.py)")
    ap.add_argument("--lvlm-url", help="OpenAI-compatible base URL of the LVLM, e.g. http://127.0.0.1:8000/v1")
    ap.add_argument("--lvlm-model", default="default")
    ap.add_argument("--lvlm-key-env", help="environment variable holding the LVLM's API key")
    ap.add_argument("--lvlm-concurrency", type=int, default=4)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument(
        "--reuse",
        type=Path,
        action="append",
        default=[],
        help="an earlier result folder (repeatable; the first that has a codec wins): its rows for any of --codecs measured on exactly these images (same receivers and OCR) are taken, not coded again",
    )
    ap.add_argument("--text-seeds", type=int, default=1, help="--set text: render each kind and font size with this many seeds")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)

    folder = args.images or named_set(args.set)
    if args.set == "text" and not args.images:
        folder = write_set(args.out / "textset", seeds=args.text_seeds)
    lvlm = None
    if args.lvlm_url or args.questions:
        if not (args.lvlm_url and args.questions):
            print("LVLM mode needs both --lvlm-url and --questions", file=sys.stderr)
            return 2
        key = os.environ.get(args.lvlm_key_env) if args.lvlm_key_env else None
        lvlm = LvlmReceiver(args.lvlm_url, args.lvlm_model, key, concurrency=args.lvlm_concurrency)
        folder = args.questions.parent
        items = items_from_questions(load_questions(args.questions), args.models / "imagenet_synsets.txt")[:: args.stride][: args.limit]
    elif args.set == "text-photos" and not args.images:
        folder = named_set("imagenet-dev")
        items = text_photo_items(folder, args.models / "imagenet_synsets.txt")[:: args.stride][: args.limit]
        if args.ocr is None:
            args.ocr = "paddle,tesseract"
    else:
        items = load_items(folder, args.models / "imagenet_synsets.txt", args.limit, args.stride)
    if not items:
        print(f"no images in {folder}", file=sys.stderr)
        return 2
    codecs: dict[str, Codec] = {}
    skipped: list[str] = []
    for name in args.codecs.split(","):
        c = codec_named(name)
        if c is None:
            print(f"unknown codec {name}", file=sys.stderr)
            return 2
        why = c.available()
        if why:
            print(f"skipping {name}: {why}", file=sys.stderr)
            skipped.append(name)
            continue
        codecs[c.name if name.startswith("checkpoint:") else name] = c
    receivers = load_receivers([r for r in args.receivers.split(",") if r], args.models)
    ocr_names = [
        n for n in (args.ocr if args.ocr is not None else ("paddle,tesseract" if (folder / "truth.json").exists() else "")).split(",") if n
    ]
    ocr: dict[str, Any] = {}
    for n in ocr_names:
        if n not in ("paddle", "tesseract"):
            print(f"unknown OCR engine {n} (paddle, tesseract)", file=sys.stderr)
            return 2
        ocr[n] = PaddleOcr() if n == "paddle" else Tesseract()

    order = list(codecs)
    reused = reusable_rows(args.reuse, items, order, list(receivers), list(ocr))
    for name, (source, _) in reused.items():
        print(f"{name}: rows taken from {source}", file=sys.stderr)
        del codecs[name]
    started = time.time()
    rows: list[dict[str, Any]] = [r for _, mine in reused.values() for r in mine]
    with temporary_workdir() as tmp, tqdm(total=len(items), desc=f"{folder.name}", unit="img", dynamic_ncols=True) as bar:
        for i in range(0, len(items), args.chunk):
            chunk = items[i : i + args.chunk]
            work = Path(tmp) / f"chunk{i}"
            work.mkdir()
            rows.extend(evaluate_chunk(chunk, codecs, receivers, work, lvlm, ocr))
            bar.update(len(chunk))

    points = aggregate(rows, order)
    metrics = sorted(
        {k for c in points.values() for p in c for k, v in p["metrics"].items() if v is not None},
        key=lambda m: (m not in PEOPLE_METRICS, m),
    )
    bd = bd_tables(points, metrics)
    originals = [r for r in rows if r["codec"] == "original"]
    reference = {
        k: float(np.mean([r["metrics"][k] for r in originals if k in r["metrics"]])) for k in {k for r in originals for k in r["metrics"]}
    }
    args.out.mkdir(parents=True, exist_ok=True)
    result = {
        # relative to the repository, so results name no machine's paths
        "set": os.path.relpath(folder.resolve(), ROOT),
        "images": len(items),
        "codecs": order,
        # codec -> the result folder its rows came from
        **({"reused": {name: os.path.relpath(source.resolve(), ROOT) for name, (source, _) in reused.items()}} if reused else {}),
        "skipped": sorted(skipped),
        "receivers": list(receivers),
        "anchor": next((a for a in ANCHOR_ORDER if a in points), None),
        "originals": reference,
        "points": points,
        "bd_rate": bd,
        "seconds": round(time.time() - started, 1),
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "command": " ".join(["python -m vlmpress_eval.run", *(argv if argv is not None else sys.argv[1:])]),
        "rows": rows,
    }
    (args.out / "points.json").write_text(json.dumps(result, separators=(",", ":")))
    (args.out / "bd_rate.md").write_text(markdown(bd, points) + "\n")
    plot(points, metrics, args.out / "plots", folder.name)
    print(markdown({m: {result["anchor"]: bd[m][result["anchor"]]} for m in metrics if result["anchor"]}, points))
    print(f"wrote {args.out}/points.json, bd_rate.md, plots/ ({result['seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
