"""Rank-term ablation: fine-tune one base checkpoint with each reading of L_rk, compare at equal rate.

    python -m vlmpress_train.ablate --base runs/cpu/last.pt --config training/configs/cpu.yaml --steps 500

Each variant (none / order / spectrum) continues from the same weights with the same data stream,
seed, steps and learning rate; only the rank term differs. Each is then measured on the validation
split at every level (bpp from the rounded latents' likelihoods, teacher top-1 agreement, token
distortion), and agreement is interpolated at common rates so the readings are compared at equal bpp.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from .data import validation_split
from .export import load_checkpoint
from .images import load_rgb, resize_center_crop, to_tensor
from .losses import rate_bpp, token_distortion
from .train import build_teacher, load_config, train

VARIANTS = ("none", "order", "spectrum")
RATES = (0.30, 0.40, 0.50, 0.65)  # inside the range the CPU model spans (0.2-1.2 bpp)


@torch.no_grad()
def measure(ckpt: Path, teacher: torch.nn.Module, images: list[torch.Tensor], levels: int) -> list[dict[str, float]]:
    model = load_checkpoint(ckpt)
    rows = []
    refs = [teacher.features(x) for x in images]
    for q in range(1, levels + 1):
        bpp, agree, tk = [], 0, []
        for x, (logits, toks) in zip(images, refs):
            out = model(x, torch.tensor([float(q)]))
            bpp.append(rate_bpp([out.y_likelihood, out.z_likelihood], x.shape[-2] * x.shape[-1]).item())
            l_hat, t_hat = teacher.features(out.x_hat.clamp(0, 1))
            agree += int(l_hat.argmax(1) == logits.argmax(1))
            tk.append(token_distortion(t_hat, toks).item())
        rows.append({"q": q, "bpp": float(np.mean(bpp)), "agree": agree / len(images), "l_tk": float(np.mean(tk))})
    return rows


def at_rate(rows: list[dict[str, float]], key: str, rate: float) -> float | None:
    b = [r["bpp"] for r in rows]
    if not b[0] <= rate <= b[-1]:
        return None
    return float(np.interp(rate, b, [r[key] for r in rows]))


def tabulate(results: dict[str, Any]) -> str:
    """Interpolate every variant's agreement and token distortion at the common RATES; markdown table."""
    for v in results["variants"].values():
        v["agree_at"] = {str(r): at_rate(v["rows"], "agree", r) for r in RATES}
        v["l_tk_at"] = {str(r): at_rate(v["rows"], "l_tk", r) for r in RATES}
    fmt = lambda x, pct: "n/a" if x is None else (f"{100 * x:.1f}%" if pct else f"{x:.4f}")  # noqa: E731
    lines = [
        "| rank term | " + " | ".join(f"agree @ {r} bpp" for r in RATES) + " | " + " | ".join(f"L_tk @ {r} bpp" for r in RATES) + " |",
        "|" + "---|" * (1 + 2 * len(RATES)),
    ]
    for name, v in results["variants"].items():
        lines.append(
            f"| {name} | "
            + " | ".join(fmt(v["agree_at"][str(k)], True) for k in RATES)
            + " | "
            + " | ".join(fmt(v["l_tk_at"][str(k)], False) for k in RATES)
            + " |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description="Ablate the rank term readings.")
    ap.add_argument("--base", help="checkpoint all variants start from")
    ap.add_argument("--config", default="training/configs/cpu.yaml")
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--lr", type=float, default=3e-5)
    ap.add_argument("--out", default="runs/ablation.json")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--from-json", default=None, help="only re-tabulate an earlier result file")
    args = ap.parse_args()
    if args.from_json:
        results = json.loads(Path(args.from_json).read_text())
    else:
        if not args.base:
            ap.error("--base is required")
        results = run_variants(args)
    print(tabulate(results))
    Path(args.out).write_text(json.dumps(results, indent=1))


def run_variants(args: argparse.Namespace) -> dict[str, Any]:
    base_cfg = load_config(args.config)
    results: dict[str, Any] = {"base": args.base, "steps": args.steps, "lr": args.lr, "variants": {}}
    teacher = build_teacher(base_cfg)
    val = [to_tensor(resize_center_crop(load_rgb(p), 256, 224)) for p in validation_split(Path(base_cfg.data_root) / "imagenet-dev")]
    for variant in args.variants.split(","):
        cfg = dataclasses.replace(
            base_cfg,
            run_dir=f"runs/ablate-{variant}",
            steps=args.steps,
            lr=args.lr,
            lr_final=args.lr,
            warmup=0,
            pixel_only=0.0,
            semantic_ramp=0.0,
            init_from=args.base,
            validate_every=10**9,
            max_minutes=0.0,
            loss=dataclasses.replace(base_cfg.loss, rank=variant),
        )
        ckpt = train(cfg)
        results["variants"][variant] = {"rows": measure(ckpt, teacher, val, cfg.codec.levels)}
        tqdm.write(json.dumps({variant: results["variants"][variant]["rows"]}))
    return results


if __name__ == "__main__":
    main()
