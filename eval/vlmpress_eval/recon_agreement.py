"""Receiver agreement of two encoders of the same images: the gateway's and the browser's (written by
`node dist/bench/browser.js --out DIR` as NNNN-original.png, NNNN-gateway.png, NNNN-browser.png).

For each receiver: the share of images whose top-1 label survives each encoder, their paired
difference with a bootstrap 95 % interval, and how often the two reconstructions get the same label.

    PYTHONPATH=training:eval .venv/bin/python -m vlmpress_eval.recon_agreement DIR [--receivers mbv2,mbv1]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from .receivers import load_receivers

ENCODERS = ("gateway", "browser")


def top1(outputs: np.ndarray) -> np.ndarray:
    return outputs.argmax(axis=1)


def paired_interval(diffs: np.ndarray, resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    rng = np.random.default_rng(seed)
    means = diffs[rng.integers(0, len(diffs), (resamples, len(diffs)))].mean(axis=1)
    return float(diffs.mean()), float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def compare(folder: Path, receivers: list[str], models: Path) -> dict[str, dict[str, float]]:
    stems = sorted(p.name[: -len("-original.png")] for p in folder.glob("*-original.png"))
    if not stems:
        raise SystemExit(f"no NNNN-original.png in {folder}")
    load = lambda stem, kind: np.asarray(Image.open(folder / f"{stem}-{kind}.png").convert("RGB"))  # noqa: E731
    out: dict[str, dict[str, float]] = {}
    for name, receiver in load_receivers(receivers, models).items():
        labels = {kind: top1(receiver.outputs([load(s, kind) for s in stems])) for kind in ("original", *ENCODERS)}
        kept = {e: (labels[e] == labels["original"]).astype(np.float64) for e in ENCODERS}
        mean, lo, hi = paired_interval(kept["browser"] - kept["gateway"])
        out[name] = {
            "images": len(stems),
            "gateway_agreement": float(kept["gateway"].mean()),
            "browser_agreement": float(kept["browser"].mean()),
            "browser_minus_gateway": mean,
            "ci95_low": lo,
            "ci95_high": hi,
            "same_label_both": float((labels["gateway"] == labels["browser"]).mean()),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--receivers", default="mbv2,mbv1")
    ap.add_argument("--models", type=Path, default=Path(__file__).resolve().parents[2].parent / "shared" / "models")
    args = ap.parse_args()
    result = compare(args.folder, [r for r in args.receivers.split(",") if r], args.models)
    bench = args.folder / "browser-bench.json"
    if bench.exists():
        rows = json.loads(bench.read_text())["rows"]
        result["bytes"] = {e: float(sum(r["server" if e == "gateway" else e] for r in rows)) for e in ENCODERS}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
