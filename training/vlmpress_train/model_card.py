"""Write MODEL_CARD.md for a package from its evaluation (and optional ablation) JSON and training run.

    python -m vlmpress_train.model_card --package models/<name> --eval runs/eval.json \
        --ablation runs/ablation.json --run runs/cpu
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch
import yaml

from .evaluate import markdown_table

TARGETS = ((0.35, 0.90), (0.19, 0.78))  # (bpp, teacher agreement) targets on the validation split


def agreement_at(levels: dict[str, Any], bpp: float) -> float | None:
    rows = sorted(levels.values(), key=lambda r: r["val_bpp"])
    for a, b in zip(rows, rows[1:]):
        if a["val_bpp"] <= bpp <= b["val_bpp"]:
            t = (bpp - a["val_bpp"]) / (b["val_bpp"] - a["val_bpp"])
            return a["val_agree"] + t * (b["val_agree"] - a["val_agree"])
    return None


def render(package: Path, ev: dict[str, Any], ablation: dict[str, Any] | None, run: Path | None, notes: str) -> str:
    manifest = json.loads((package / "manifest.json").read_text())
    cfg: dict[str, Any] = yaml.safe_load((run / "config.yaml").read_text()) if run else {}
    state = torch.load(run / "last.pt", map_location="cpu", weights_only=False) if run else {}
    hours = state.get("elapsed", 0.0) / 3600
    loss = cfg.get("loss", {})
    lines = [
        f"# Model card: {manifest['name']}",
        "",
        f"- **Model id**: `{manifest['id']}`",
        f"- **Architecture**: pre-editor + mean-scale hyperprior (N={cfg.get('codec', {}).get('n')}, "
        f"M={manifest['latent']['channels']}, Nz={manifest['hyper_latent']['channels']}), "
        f"{manifest['quality']['levels']} quality levels with learned gain vectors, integer entropy-parameter "
        "network (bit-exact decoding on any machine), no autoregressive context.",
        "- **Teacher (semantic receiver)**: ImageNet MobileNetV2 1.0/224, rebuilt in PyTorch from "
        "`tf2_mobilenet_v2_1.0_224_ptq.tflite` (top-1 agreement with the TFLite runtime 98.6 % on all 700 "
        "imagenet-dev photos; true-label top-1 89.0 % vs 88.9 %); tokens at "
        "strides 8, 16, 32; logits for the rank term.",
        "- **Data**: imagenet-dev (600 photos, the 100-image validation split held out), coco-mini (159), "
        "cbsd68 (68), waterloo (33); rendered documents, tables, receipts and screens (15 % of samples); "
        f"random {cfg.get('crop')}×{cfg.get('crop')} crops and flips.",
        f"- **Objective**: rank term `{loss.get('rank')}`; λ_R = 1; λ_D {loss.get('pixel_min')} → {loss.get('pixel_max')}; "
        f"λ_T {loss.get('semantic_min')} → {loss.get('semantic_max')} (geometric over levels 1 → 8); "
        f"λ_tk = {loss.get('lambda_tk')}, λ_rk = {loss.get('lambda_rk')}; pixel-only for the first "
        f"{100 * float(cfg.get('pixel_only', 0)):.0f} % of steps, then λ_T ramps in over {100 * float(cfg.get('semantic_ramp', 0)):.0f} %. "
        "Exact formulas: `docs/training.md`.",
        f"- **Training**: {state.get('step', '?')} steps of batch {cfg.get('batch_size')}, Adam, lr {cfg.get('lr')} → "
        f"{cfg.get('lr_final')} (cosine), {hours:.2f} h on 2 CPU cores (`training/configs/cpu.yaml`).",
        "",
        "## Measured figures",
        "Command: `PYTHONPATH=training .venv/bin/python -m vlmpress_train.evaluate --package "
        f"models/{manifest['name']}` (all codec numbers through the exported ONNX graphs and integer tables).",
        "- *Validation split*: the 100 held-out imagenet-dev photos as the receiver sees them (shorter side 256, "
        "centre 224×224); the 224×224 crop is what is compressed. *Agree* = top-1 of the reconstruction equals "
        "top-1 of the original. Unseen receiver: MobileNetV1 0.75/192 (never used in training).",
        "- *bpp*: ideal code length of the symbols under the exported 16-bit tables + 8 bytes of rANS state; "
        "the container header is not included.",
        "- *JPEG*: Pillow, per image the quality whose size is closest to the codec's.",
        "",
        markdown_table(ev),
        "",
        f"Originals: teacher true-label top-1 {100 * ev['validation']['original_true_top1']:.1f} %, "
        f"MobileNetV1 {100 * ev['validation']['original_true_top1_v1']:.1f} %.",
        "",
        "## Targets",
    ]
    for bpp, target in TARGETS:
        got = agreement_at(ev["levels"], bpp)
        got_s = "outside the measured range" if got is None else f"{100 * got:.1f} %"
        lines.append(
            f"- ≥ {100 * target:.0f} % teacher agreement at ≤ {bpp} bpp: measured {got_s} "
            f"({'met' if got is not None and got >= target else 'not met'})."
        )
    if ablation:
        lines += [
            "",
            "## Rank-term ablation",
            f"Each reading fine-tuned for {ablation['steps']} steps at lr {ablation['lr']} from the same "
            "checkpoint, same data and seed; agreement interpolated at equal bpp "
            "(`python -m vlmpress_train.ablate`).",
            "",
        ]
        rates = list(next(iter(ablation["variants"].values()))["agree_at"].keys())
        lines.append("| rank term | " + " | ".join(f"agree @ {r}" for r in rates) + " | " + " | ".join(f"L_tk @ {r}" for r in rates) + " |")
        lines.append("|" + "---|" * (1 + 2 * len(rates)))
        for name, v in ablation["variants"].items():
            fa = ["n/a" if v["agree_at"][r] is None else f"{100 * v['agree_at'][r]:.1f}%" for r in rates]
            ft = ["n/a" if v["l_tk_at"][r] is None else f"{v['l_tk_at'][r]:.4f}" for r in rates]
            lines.append(f"| {name} | " + " | ".join(fa + ft) + " |")
    if notes:
        lines += ["", "## Notes", notes.strip()]
    lines += [
        "",
        "## Intended use and limits",
        "Compressing photos and screenshots sent to vision-language models, at the receiver's resolution. "
        "Trained with an ImageNet classifier as the semantic receiver: gains transfer to other receivers only "
        "as far as they share what that classifier looks at (see the unseen-receiver column). Rendered text "
        "is trained with the pixel term only. Licence of the training images: research use (ImageNet, "
        "COCO/Flickr, BSD); the weights are shipped for evaluation of the gateway.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description="Write a package's MODEL_CARD.md")
    ap.add_argument("--package", required=True)
    ap.add_argument("--eval", required=True)
    ap.add_argument("--ablation", default=None)
    ap.add_argument("--run", default=None)
    ap.add_argument("--notes", default=None, help="a markdown file appended under 'Notes'")
    args = ap.parse_args()
    package = Path(args.package)
    ev = json.loads(Path(args.eval).read_text())
    ab = json.loads(Path(args.ablation).read_text()) if args.ablation else None
    notes = Path(args.notes).read_text() if args.notes else ""
    text = render(package, ev, ab, Path(args.run) if args.run else None, notes)
    (package / "MODEL_CARD.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
