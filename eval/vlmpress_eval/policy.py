"""Build the gateway's policy table from evaluation results.

    PYTHONPATH=training:eval .venv/bin/python -m vlmpress_eval.policy \\
        eval/results/imagenet-dev/points.json eval/results/text/points.json ... --out models/vlmp-mbv2-cpu-v1/policy.json

For every task class, measure and target, the lowest quality whose measured score — relative to the
original's — reaches the target at that quality and at every higher one (so one noisy point cannot
pick a quality below a failing one). Every other measured codec is costed the same way, so the table
also says which codec is cheapest for the class; the gateway uses the codecs it can produce.

Two measures, and per task class the metrics that must all reach the target:
- accuracy (targets "0.95", "0.98", "0.99"): the task accuracy the reconstruction keeps relative to
  the original's — true-label top-1 of the teacher and of the unseen classifier (general; plus MS-SSIM
  for detail), OCR character accuracy against the true text (text);
- agreement (targets "agreement:0.95", ...): the strict option — the share of images whose top-1 equals
  the original's (general, detail), OCR against the engine's reading of the original (text).

Accuracy decisions also carry the paired 95 % bootstrap interval of the change against the original
(same images) and whether every interval contains 0 ("within noise"). The default target is the
mildest accuracy target whose general-class choice is within noise of the original and which every
measured class reaches: it saves bytes only where the accuracy lost cannot be told from noise. Each
decision carries the number of images behind it and, for the agreement metrics (a share of images), a
Wilson 95 % interval: with a hundred images one flipped photo moves agreement by a point.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

CLASSES: dict[str, list[str]] = {
    "general": ["mbv2_agree", "mbv1_agree"],
    "text": ["ocr_paddle", "ocr_tesseract"],
    "detail": ["mbv2_agree", "mbv1_agree", "msssim"],
}
#: task accuracy kept, relative to the original's (the default measure)
ACCURACY: dict[str, list[str]] = {
    "general": ["mbv2_top1", "mbv1_top1"],
    "text": ["ocr_paddle", "ocr_tesseract"],
    "detail": ["mbv2_top1", "mbv1_top1", "msssim"],
}
MEASURES: dict[str, dict[str, list[str]]] = {"accuracy": ACCURACY, "agreement": CLASSES}
TARGETS = (0.95, 0.98, 0.99)


def target_key(measure: str, t: float) -> str:
    return f"{t:.2f}" if measure == "accuracy" else f"{measure}:{t:.2f}"


def first_measurement(results: list[dict[str, Any]]) -> list[tuple[dict[str, Any], set[str]]]:
    """Per result file, the codecs it adds: a codec measured again on the same set and images (a new
    codec's run repeats its anchor, e.g. sharp-avif beside semantic-avif) is counted once."""
    seen: set[tuple[str, str, int]] = set()
    out = []
    for res in results:
        codecs = set()
        for codec in [*res.get("points", {}), "original"]:
            key = (str(res.get("set")), codec, int(res.get("images", 0)))
            if key not in seen or codec == "original":
                seen.add(key)
                codecs.add(codec)
        out.append((res, codecs))
    return out


def paired_changes(results: list[dict[str, Any]]) -> dict[tuple[str, str, float], np.ndarray]:
    """changes[(codec, metric, setting)] = per-image score minus the original's on the same image,
    pooled over every result file with per-image rows for the metric."""
    out: dict[tuple[str, str, float], list[float]] = defaultdict(list)
    for res, counted in first_measurement(results):
        original: dict[tuple[str, str], float] = {}
        coded = [r for r in res.get("rows", []) if "codec" in r]
        for r in coded:
            if r["codec"] == "original":
                for m, v in r["metrics"].items():
                    original[(r["image"], m)] = v
        for r in coded:
            if r["codec"] == "original" or r["codec"] not in counted:
                continue
            for m, v in r["metrics"].items():
                ref = original.get((r["image"], m))
                if v is not None and ref is not None:
                    out[(r["codec"], m, float(r["setting"]))].append(v - ref)
    return {k: np.asarray(v) for k, v in out.items()}


def change_interval(diffs: np.ndarray, resamples: int = 2000, seed: int = 0) -> list[float]:
    """Mean change and its 95 % bootstrap interval (images resampled together, so pairing is kept)."""
    rng = np.random.default_rng(seed)
    means = diffs[rng.integers(0, len(diffs), (resamples, len(diffs)))].mean(axis=1)
    return [round(float(diffs.mean()), 4), round(float(np.quantile(means, 0.025)), 4), round(float(np.quantile(means, 0.975)), 4)]


def relative_curves(results: list[dict[str, Any]]) -> dict[str, dict[str, dict[float, dict[str, Any]]]]:
    """curves[codec][metric][setting] = {bpp, score (relative to the original), images}, pooled
    over every result file that measured the metric (weighted by image count)."""
    acc: dict[tuple[str, str, float], list[tuple[float, float, int]]] = defaultdict(list)
    for res, counted in first_measurement(results):
        originals = res.get("originals", {})
        for codec, points in res.get("points", {}).items():
            if codec not in counted:
                continue
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


#: what the gateway can produce: the learned codec, sharp's classical codecs in the VLMP container, and
#: semantic AVIF (the editor package's networks around sharp's AVIF)
GATEWAY_CODECS = ("vlmpress", "sharp-avif", "sharp-webp", "sharp-jpeg", "semantic-avif", "sharp-avif-screen")
#: AVIF with libaom's screen-content tools: measured for rendered text only (on photos with scene text
#: it loses, text-photos-screen), so each entry choosing it also records the choice without it, which
#: the gateway takes for an image that does not look rendered, or when its avifenc is missing
SCREEN_CODECS = ("sharp-avif-screen",)


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


def class_curves(curves: dict[str, Any], metrics: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The measured rate-score points of every codec that measured all of `metrics`, cheapest first:
    what the inspector page plots behind a decision."""
    out: dict[str, list[dict[str, Any]]] = {}
    for codec in sorted(curves):
        curve = curves[codec]
        if not all(m in curve for m in metrics):
            continue
        settings = sorted(set.intersection(*(set(curve[m]) for m in metrics)), key=lambda s: curve[metrics[0]][s]["bpp"])
        out[codec] = [
            {"setting": s, "bpp": round(curve[metrics[0]][s]["bpp"], 4), "scores": {m: round(curve[m][s]["score"], 4) for m in metrics}}
            for s in settings
        ]
    return out


def default_target(table: dict[str, Any]) -> str:
    """The mildest accuracy target that every measured class reaches and whose general-class choice is
    within noise of the original; else the strictest accuracy target every measured class reaches
    (else the mildest): a default nobody can reach would buy the top setting and still miss."""
    measured = [e for e in table.values() if "targets" in e and e["targets"]]
    reached = [t for t in TARGETS if measured and all(e["targets"][target_key("accuracy", t)]["reached"] for e in measured)]
    general = table.get("general", {}).get("targets", {})
    for t in sorted(reached):
        if general.get(target_key("accuracy", t), {}).get("within_noise"):
            return target_key("accuracy", t)
    return target_key("accuracy", max(reached) if reached else min(TARGETS))


def choose(
    curves: dict[str, Any], reached: dict[str, dict[str, Any]], metrics: list[str], codecs: tuple[str, ...]
) -> tuple[str, dict[str, Any], bool]:
    """The cheapest of `codecs` that reaches the target; else the setting that comes closest (False)."""
    usable = {c: r for c, r in reached.items() if c in codecs}
    if usable:
        choice = min(usable, key=lambda c: usable[c]["bpp"])
        return choice, usable[choice], True
    choice, pick = best_effort(curves, metrics, [c for c in codecs if c in curves])
    return choice, pick, False


def build(results: list[dict[str, Any]], model: dict[str, str], gateway_codecs: tuple[str, ...] = GATEWAY_CODECS) -> dict[str, Any]:
    curves = relative_curves(results)
    changes = paired_changes(results)
    # Text floors under token budgets (vlmpress_eval.scale): the smallest scale OCR survives per target.
    text_floors = next((r["scale"]["floors"] for r in results if "scale" in r), None)
    if "vlmpress" not in curves:
        raise ValueError("the results contain no vlmpress points")
    table: dict[str, Any] = {}
    for cls in CLASSES:
        entry: dict[str, Any] = {"metrics": {measure: classes[cls] for measure, classes in MEASURES.items()}, "targets": {}}
        needed = sorted({m for classes in MEASURES.values() for m in classes[cls]})
        if not all(m in curves["vlmpress"] for m in needed):
            entry["missing"] = [m for m in needed if m not in curves["vlmpress"]]
            table[cls] = entry
            continue
        entry["curves"] = {measure: class_curves(curves, classes[cls]) for measure, classes in MEASURES.items()}
        for (measure, classes), t in [(mc, t) for mc in MEASURES.items() for t in TARGETS]:
            metrics = classes[cls]
            by_codec = {c: lowest_reaching(curves[c], metrics, t) for c in curves}
            reached = {c: r for c, r in by_codec.items() if r is not None}
            cheapest = min(reached, key=lambda c: reached[c]["bpp"]) if reached else None
            choice, pick, ok = choose(curves, reached, metrics, gateway_codecs)
            decided: dict[str, Any] = {
                "measure": measure,
                "metrics": metrics,
                "codec": choice,
                "quality": pick["setting"],
                "reached": ok,
                "bpp": pick["bpp"],
                "scores": pick["scores"],
                "images": pick["images"],
                "ci95": pick["ci95"],
                "cheapest_measured": {"codec": cheapest, **reached[cheapest]} if cheapest else None,
                "per_codec_bpp": {c: round(r["bpp"], 4) for c, r in sorted(reached.items())},
            }
            if choice in SCREEN_CODECS:
                alt, alt_pick, alt_ok = choose(curves, reached, metrics, tuple(c for c in gateway_codecs if c not in SCREEN_CODECS))
                decided["without_screen"] = {
                    "codec": alt,
                    "quality": alt_pick["setting"],
                    "reached": alt_ok,
                    "bpp": alt_pick["bpp"],
                    "scores": alt_pick["scores"],
                }
            if measure == "accuracy":
                paired = {
                    m: changes[(choice, m, float(pick["setting"]))] for m in metrics if (choice, m, float(pick["setting"])) in changes
                }
                decided["change_ci95"] = {m: change_interval(d) for m, d in paired.items()}
                decided["within_noise"] = bool(paired) and all(lo <= 0 <= hi for _, lo, hi in decided["change_ci95"].values())
            if cls == "text" and text_floors:
                decided["min_scale"] = text_floors[f"{t:.2f}"]
            entry["targets"][target_key(measure, t)] = decided
        table[cls] = entry
    return {
        "format": "vlmpress-policy",
        "format_version": 2,
        "model": model,
        "targets": [target_key(measure, t) for measure in MEASURES for t in TARGETS],
        "default_target": default_target(table),
        "classes": table,
        "built_from": [
            {"set": r["set"], "images": r["images"], "codecs": r.get("codecs", []), "command": r.get("command")} for r in results
        ],
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
