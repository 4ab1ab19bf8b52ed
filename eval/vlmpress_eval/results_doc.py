"""Write docs/results.md from the committed evaluation results, so the document and the data cannot
disagree:

    PYTHONPATH=training:eval .venv/bin/python -m vlmpress_eval.results_doc eval/results/*/points.json --out docs/results.md
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from .report import ANCHOR_ORDER, METRIC_LABELS, is_fraction

SHORT = {
    "mbv2_agree": "MBv2 agree",
    "mbv1_agree": "MBv1 agree",
    "mbv2_top1": "MBv2 top-1",
    "mbv1_top1": "MBv1 top-1",
    "embed_cos": "embed cos",
    "ocr_paddle": "PP-OCR",
    "ocr_tesseract": "Tesseract",
    "lvlm_agree": "LVLM agree",
    "lvlm_acc": "LVLM acc",
    "psnr": "PSNR dB",
    "msssim": "MS-SSIM",
}
ORDER = [
    "mbv2_agree",
    "mbv1_agree",
    "mbv2_top1",
    "mbv1_top1",
    "embed_cos",
    "ocr_paddle",
    "ocr_tesseract",
    "lvlm_agree",
    "lvlm_acc",
    "psnr",
    "msssim",
]


def fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:+.1f}"


def section(res: dict[str, Any], path: Path, out: Path) -> list[str]:
    name = path.parent.name  # the results folder: one set may be measured in several runs
    metrics = [m for m in ORDER if m in res["bd_rate"]]
    codecs = res["codecs"]
    lines = [f"## {name}", ""]
    lines.append(
        f"{res['images']} images; codecs {', '.join(codecs)}"
        + (f"; skipped: {', '.join(res['skipped'])}" if res["skipped"] else "")
        + f"; {res['seconds'] / 60:.0f} min on the development machine."
    )
    lines.append("")
    lines.append(
        f"Reproduce: `PYTHONPATH=training:eval .venv/bin/python -m vlmpress_eval.run {res['command'].split('vlmpress_eval.run', 1)[1].strip()}`"
    )
    lines.append("")
    for anchor in [a for a in ANCHOR_ORDER if a in res["points"]][:2]:
        lines.append(f"BD-rate (%) against **{anchor}** (negative: fewer bytes at equal score):")
        lines.append("")
        lines.append("| metric | " + " | ".join(c for c in codecs if c != anchor) + " |")
        lines.append("| --- |" + " --- |" * (len(codecs) - 1))
        for m in metrics:
            row = res["bd_rate"][m].get(anchor, {})
            lines.append(f"| {METRIC_LABELS.get(m, m)} | " + " | ".join(fmt(row.get(c)) for c in codecs if c != anchor) + " |")
        lines.append("")
    # the vlmpress curve itself, so a reader sees where the operating points are
    pts = res["points"].get("vlmpress", [])
    if pts:
        shown = [m for m in metrics if m in pts[0]["metrics"]]
        lines.append("vlmpress operating points (mean over images):")
        lines.append("")
        lines.append("| quality | bpp | " + " | ".join(SHORT.get(m, m) for m in shown) + " |")
        lines.append("| --- | --- |" + " --- |" * len(shown))
        for p in pts:
            vals = [p["metrics"].get(m) for m in shown]
            cells = [
                "n/a"
                if v is None
                else (f"{100 * v:.1f}%" if is_fraction(m) else f"{v:.3f}" if m in ("msssim", "embed_cos") else f"{v:.2f}")
                for m, v in zip(shown, vals)
            ]
            lines.append(f"| {p['setting']:g} | {p['bpp']:.3f} | " + " | ".join(cells) + " |")
        lines.append("")
    if res.get("originals"):
        lines.append(
            "Originals: " + ", ".join(f"{METRIC_LABELS.get(k, k)} {100 * v:.1f}%" for k, v in sorted(res["originals"].items())) + "."
        )
        lines.append("")
    plots = path.parent / "plots"
    rel = os.path.relpath(plots, out.parent)
    lines.append("Plots: " + ", ".join(f"[{m}]({rel}/{m}.svg)" for m in metrics))
    lines.append("")
    if "mbv1_agree" in metrics:
        lines.append(f"![{name}: unseen receiver]({rel}/mbv1_agree.png)")
    elif "ocr_paddle" in metrics:
        lines.append(f"![{name}: PP-OCRv4]({rel}/ocr_paddle.png)")
    lines.append("")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--intro", type=Path, help="markdown placed before the generated sections")
    args = ap.parse_args()
    lines = [args.intro.read_text().rstrip() if args.intro else "# Results", ""]
    for p in args.results:
        lines += section(json.loads(p.read_text()), p, args.out)
    args.out.write_text("\n".join(lines).rstrip() + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
