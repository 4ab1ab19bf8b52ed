"""Build the gateway's policy table from evaluation results.

    PYTHONPATH=training:eval .venv/bin/python -m vlmpress_eval.policy \\
        eval/results/imagenet-dev/points.json eval/results/text/points.json ... --out models/vlmp-mbv2-cpu-v1/policy.json

For every task class and target, the lowest vlmpress quality whose measured score — relative to the
original's — reaches the target at that quality and at every higher one (so one noisy point cannot
pick a quality below a failing one). Every other measured codec is costed the same way, so the table
also says which codec is cheapest for the class; the gateway uses the codecs it can produce.

Task classes and the metrics that must all reach the target:
- general: top-1 agreement of the teacher and of the unseen classifier (ImageNet photos, Kodak);
- text: PP-OCRv4 and Tesseract character accuracy (rendered text, photos with text);
- detail: the general metrics plus MS-SSIM (fine structure, for counting and small things).

The default target is the strictest one every measured class reaches. Each decision carries the
number of images behind it and, for the agreement metrics (a share of images), a Wilson 95 %
interval: with a hundred images one flipped photo moves agreement by a point.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

CLASSES: dict[str, list[str]] = {
    "general": ["mbv2_agree", "mbv1_agree"],
    "text": ["ocr_paddle", "ocr_tesseract"],
    "detail": ["mbv2_agree", "mbv1_agree", "msssim"],
}
TARGETS = (0.95, 0.98, 0.99)


def relative_curves(results: list[dict[str, Any]]) -> dict[str, dict[str, dict[float, dict[str, Any]]]]:
    """curves[codec][metric][setting] = {bpp, score (relative to the original), images}, pooled
    over every result file that measured the metric (weighted by image count)."""
    acc: dict[tuple[str, str, float], list[tuple[float, float, int]]] = defaultdict(list)
    for res in results:
        originals = res.get("originals", {})
        for codec, points in res["points"].items():
            for p in points:
                for metric, value in p["metrics"].items():
                    if value is None:
                        continue
                    ref = originals.get(metric, 1.0) or 1.0
                    acc[(codec, metric, float(p["setting"]))].append((p["bpp"], value / ref, p["images"]))
    curves: dict[str, dict[str, dict[float, dict[str, Any]]]] = defaultdict(lambda: defaultdict(dict))
    for (codec, metric, setting), rows in acc.items():
        n = sum(r[2] for r in rows)
        curves[codec][metric][setting] = {
            "bpp": sum(r[0] * r[2] for r in rows) / n,
            "score": sum(r[1] * r[2] for r in rows) / n,
            "images": n,
        }
    return curves


def wilson(share: float, n: int, z: float = 1.96) -> list[float]:
    """Wilson score interval of a proportion measured on n items."""
    if n <= 0:
        return [0.0, 1.0]
    p = min(1.0, max(0.0, share))
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]


def decision(curve: dict[str, dict[float, dict[str, Any]]], metrics: list[str], s: float) -> dict[str, Any]:
    """One setting as the table records it: rate, scores, how many images, intervals where binomial."""
    images = min(curve[m][s]["images"] for m in metrics)
    return {
        "setting": s,
        "bpp": curve[metrics[0]][s]["bpp"],
        "scores": {m: round(curve[m][s]["score"], 4) for m in metrics},
        "images": images,
        "ci95": {m: wilson(curve[m][s]["score"], curve[m][s]["images"]) for m in metrics if m.endswith("_agree")},
    }


def lowest_reaching(curve: dict[str, dict[float, dict[str, Any]]], metrics: list[str], target: float) -> dict[str, Any] | None:
    """The cheapest setting from which every higher setting reaches `target` on every metric."""
    if not all(m in curve for m in metrics):
        return None
    settings = sorted(set.intersection(*(set(curve[m]) for m in metrics)), key=lambda s: curve[metrics[0]][s]["bpp"])
    if not settings:
        return None
    ok = [all(curve[m][s]["score"] >= target for m in metrics) for s in settings]
    for i, s in enumerate(settings):
        if all(ok[i:]):
            return decision(curve, metrics, s)
    return None


#: what the gateway can produce: the learned codec and sharp's classical codecs in the VLMP container
GATEWAY_CODECS = ("vlmpress", "sharp-avif", "sharp-webp", "sharp-jpeg")


def best_effort(curves: dict[str, Any], metrics: list[str], codecs: list[str]) -> tuple[str, dict[str, Any]]:
    """The gateway codec and setting with the highest worst-metric score (ties: fewer bits)."""
    best: tuple[float, float, str, float] | None = None
    for c in codecs:
        curve = curves[c]
        if not all(m in curve for m in metrics):
            continue
        for s in set.intersection(*(set(curve[m]) for m in metrics)):
            worst = min(curve[m][s]["score"] for m in metrics)
            key = (worst, -curve[metrics[0]][s]["bpp"], c, s)
            if best is None or key > best:
                best = key
    if best is None:
        raise ValueError(f"no gateway codec measured {metrics}")
    _, _, c, s = best
    return c, decision(curves[c], metrics, s)


def default_target(table: dict[str, Any]) -> str:
    """The strictest target every measured class reaches with some gateway codec (else the mildest):
    a default nobody can reach would buy the top setting for every request and still miss."""
    measured = [e for e in table.values() if "targets" in e and e["targets"]]
    for t in sorted(TARGETS, reverse=True):
        if measured and all(e["targets"][f"{t:.2f}"]["reached"] for e in measured):
            return f"{t:.2f}"
    return f"{min(TARGETS):.2f}"


def build(results: list[dict[str, Any]], model: dict[str, str], gateway_codecs: tuple[str, ...] = GATEWAY_CODECS) -> dict[str, Any]:
    curves = relative_curves(results)
    if "vlmpress" not in curves:
        raise ValueError("the results contain no vlmpress points")
    table: dict[str, Any] = {}
    for cls, metrics in CLASSES.items():
        entry: dict[str, Any] = {"metrics": metrics, "targets": {}}
        if not all(m in curves["vlmpress"] for m in metrics):
            entry["missing"] = [m for m in metrics if m not in curves["vlmpress"]]
            table[cls] = entry
            continue
        for t in TARGETS:
            by_codec = {c: lowest_reaching(curves[c], metrics, t) for c in curves}
            reached = {c: r for c, r in by_codec.items() if r is not None}
            cheapest = min(reached, key=lambda c: reached[c]["bpp"]) if reached else None
            usable = {c: r for c, r in reached.items() if c in gateway_codecs}
            if usable:
                choice = min(usable, key=lambda c: usable[c]["bpp"])
                pick = usable[choice]
            else:
                # Nothing the gateway makes reaches the target: the setting that comes closest.
                choice, pick = best_effort(curves, metrics, [c for c in gateway_codecs if c in curves])
            entry["targets"][f"{t:.2f}"] = {
                "codec": choice,
                "quality": pick["setting"],
                "reached": bool(usable),
                "bpp": pick["bpp"],
                "scores": pick["scores"],
                "images": pick["images"],
                "ci95": pick["ci95"],
                "cheapest_measured": {"codec": cheapest, **reached[cheapest]} if cheapest else None,
                "per_codec_bpp": {c: round(r["bpp"], 4) for c, r in sorted(reached.items())},
            }
        table[cls] = entry
    return {
        "format": "vlmpress-policy",
        "format_version": 1,
        "model": model,
        "targets": [f"{t:.2f}" for t in TARGETS],
        "default_target": default_target(table),
        "classes": table,
        "built_from": [{"set": r["set"], "images": r["images"], "codecs": r["codecs"], "command": r.get("command")} for r in results],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="+", type=Path, help="points.json files written by vlmpress_eval.run")
    ap.add_argument("--out", type=Path, required=True, help="models/<name>/policy.json")
    args = ap.parse_args()
    manifest = json.loads((args.out.parent / "manifest.json").read_text())
    policy = build([json.loads(p.read_text()) for p in args.results], {"name": manifest["name"], "id": manifest["id"]})
    args.out.write_text(json.dumps(policy, indent=1) + "\n")
    for cls, e in policy["classes"].items():
        for t, d in e.get("targets", {}).items():
            print(
                f"{cls:8s} {t}: {d['codec']} q{d['quality']} {'reached' if d['reached'] else 'NOT reached'} bpp={d['bpp']:.3f} "
                f"scores={d['scores']} ci95={d['ci95']} n={d['images']} cheapest={d['cheapest_measured'] and d['cheapest_measured']['codec']}"
            )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
