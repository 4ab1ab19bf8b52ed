"""From measured points to what people read: BD-rate tables against every anchor and rate–accuracy plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .bdrate import bd_rate, overlap

#: strongest standard first: the anchor is VVC when measured, else the best one present
# sharp-avif is the gateway's own AVIF: the anchor the learned parts around it are measured against
ANCHOR_ORDER = ["vvc", "hevc", "avif", "sharp-avif", "webp", "jpeg"]

METRIC_LABELS = {
    "psnr": "PSNR (dB)",
    "msssim": "MS-SSIM",
    "mbv2_agree": "MobileNetV2 (teacher) top-1 agreement",
    "mbv2_top1": "MobileNetV2 true-label top-1",
    "mbv1_agree": "MobileNetV1-0.75 (unseen) top-1 agreement",
    "mbv1_top1": "MobileNetV1-0.75 true-label top-1",
    "embed_cos": "MobileNetV1 embedding cosine similarity",
    "lvlm_agree": "LVLM answer agreement with the original's answer",
    "lvlm_acc": "LVLM answers containing the reference answer",
    "ocr_paddle": "PP-OCRv4 character accuracy",
    "ocr_tesseract": "Tesseract character accuracy",
}


def is_fraction(metric: str) -> bool:
    """Scores kept as fractions in the JSON and shown as percentages."""
    return metric.endswith(("_agree", "_top1", "_acc")) or metric.startswith("ocr_")


def curve(points: dict[str, Any], codec: str, metric: str) -> tuple[list[float], list[float]]:
    rates, values = [], []
    for p in points[codec]:
        v = p["metrics"].get(metric)
        if v is not None:
            rates.append(p["bpp"])
            values.append(v)
    return rates, values


def bd_tables(points: dict[str, Any], metrics: list[str]) -> dict[str, dict[str, dict[str, float | None]]]:
    """bd[metric][anchor][codec] in percent; negative = fewer bytes than the anchor at equal quality."""
    anchors = [a for a in ANCHOR_ORDER if a in points]
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for m in metrics:
        out[m] = {}
        for a in anchors:
            ra, qa = curve(points, a, m)
            out[m][a] = {}
            for c in points:
                if c == a:
                    continue
                rt, qt = curve(points, c, m)
                out[m][a][c] = bd_rate(ra, qa, rt, qt) if len(ra) > 1 and len(rt) > 1 else None
    return out


def markdown(bd: dict[str, dict[str, dict[str, float | None]]], points: dict[str, Any]) -> str:
    lines: list[str] = []
    codecs = list(points)
    for metric, by_anchor in bd.items():
        if not by_anchor:
            continue
        lines.append(
            f"**{METRIC_LABELS.get(metric, metric)}** — BD-rate (%) of each codec (columns) against each anchor (rows); negative = fewer bytes at equal {metric}"
        )
        lines.append("")
        lines.append("| anchor | " + " | ".join(codecs) + " |")
        lines.append("| --- |" + " --- |" * len(codecs))
        for anchor, row in by_anchor.items():
            cells = []
            for c in codecs:
                if c == anchor:
                    cells.append("—")
                else:
                    v = row.get(c)
                    cells.append("n/a" if v is None else f"{v:+.1f}")
            lines.append(f"| {anchor} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def overlaps(points: dict[str, Any], metric: str, anchor: str) -> dict[str, tuple[float, float] | None]:
    _, qa = curve(points, anchor, metric)
    return {c: overlap(qa, curve(points, c, metric)[1]) for c in points if c != anchor}


def plot(points: dict[str, Any], metrics: list[str], out_dir: Path, title: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for m in metrics:
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        for codec in points:
            r, v = curve(points, codec, m)
            if r:
                style = dict(linewidth=2.4, color="black") if codec == "vlmpress" else dict(linewidth=1.2)
                ax.plot(r, [x * 100 if is_fraction(m) else x for x in v], marker="o", markersize=3, label=codec, **style)
        ax.set_xscale("log")
        ax.set_xlabel("bits per pixel (log scale)")
        ylabel = METRIC_LABELS.get(m, m)
        ax.set_ylabel(ylabel + (" (%)" if is_fraction(m) else ""))
        ax.set_title(f"{title}: {ylabel}", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        for ext in ("png", "svg"):
            f = out_dir / f"{m}.{ext}"
            fig.savefig(f, dpi=110)
            written.append(f)
        plt.close(fig)
    return written


def rereport(folder: Path) -> dict[str, Any]:
    """Recompute a result's BD-rate tables (points.json's `bd_rate`, bd_rate.md) from its points, after
    the anchors change; the measurements themselves are not touched."""
    import json

    res = json.loads((folder / "points.json").read_text())
    found = {k for c in res["points"].values() for p in c for k, v in p["metrics"].items() if v is not None}
    metrics = sorted(found, key=lambda m: (m not in ("psnr", "msssim"), m))  # the order run.py writes
    res["bd_rate"] = bd_tables(res["points"], metrics)
    res["anchor"] = next((a for a in ANCHOR_ORDER if a in res["points"]), None)
    (folder / "points.json").write_text(json.dumps(res, separators=(",", ":")))
    (folder / "bd_rate.md").write_text(markdown(res["bd_rate"], res["points"]) + "\n")
    return res


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="Recompute the BD-rate tables of result folders from their points.")
    ap.add_argument("folders", nargs="+", type=Path)
    for f in ap.parse_args().folders:
        rereport(f)
        print(f"rewrote {f}/points.json bd_rate and {f}/bd_rate.md")
