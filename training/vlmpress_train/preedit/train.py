"""Train the pre-editor with the real AVIF encoder in the forward pass:

    python -m vlmpress_train.preedit.train --config training/configs/preedit-cpu.yaml

Loss per image, at a quality q drawn per image:
    R_proxy(e) + lambda_T(q) * (L_tk + lambda_rk * L_rk)(teacher(avif_q(e)), teacher(x)) + lambda_D * mse(e, x)
where e = editor(x, q). The receiver sees the real decoded AVIF; gradients pass the codec
straight through and the rate gradient comes from the proxy (rate_proxy.py). lambda_T(q) is the
teacher-distortion price that plain AVIF pays at quality q (the slope of its own rate-distortion
curve, measured by `--calibrate`), so the editor only removes what is cheaper to remove than to
lower the quality. Rendered text has no teacher in the loop and leans on the pixel term.

Checkpoints to <run_dir>/last.pt every `checkpoint_every` steps and on SIGTERM/Ctrl-C; the same
command resumes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from ..data import TrainingImages, training_files, validation_split
from ..images import load_rgb, resize_center_crop, to_tensor
from ..loop import run_steps, save_atomically
from ..losses import rank_order_loss, token_distortion
from ..train import build_teacher, lr_at, seed_everything
from .avif import avif_bytes, real_avif
from .model import build_network
from .rate_proxy import load_proxy


@dataclass
class PreeditConfig:
    run_dir: str = "runs/preedit"
    data_root: str = "../shared/data"
    teacher: str = "../shared/models/tf2_mobilenet_v2_1.0_224_ptq.tflite"
    teacher_kind: str = "tflite"
    teacher_input_size: int = 0
    teacher_mean: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    teacher_std: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0])
    # Token taps by output stride; an early one (4) adds the low-level features that most CNN
    # receivers share, so the loss is less one network's late-layer quirks.
    teacher_taps: list[int] = field(default_factory=lambda: [8, 16, 32])
    seed: int = 4321
    steps: int = 5000
    batch_size: int = 8
    crop: int = 160
    text_fraction: float = 0.15
    width: int = 16
    blocks: int = 6  # Restorer only
    arch: str = "preeditor"  # model.py: "preeditor" (PreEditor) or "restorer" (Restorer, mode restore)
    editor_mode: str = "blend"  # PreEditor: "blend" (spatially varying smoothing) or "residual"
    blur_sigmas: list[float] = field(default_factory=lambda: [1.0, 2.5])
    lr: float = 5e-4
    lr_final: float = 3e-5
    warmup: int = 100
    grad_clip: float = 1.0
    threads: int = 2
    device: str = "auto"
    checkpoint_every: int = 100
    validate_every: int = 500
    val_images: int = 24
    val_qualities: list[int] = field(default_factory=lambda: [25, 45, 65])
    quality_min: int = 15
    quality_max: int = 90
    max_minutes: float = 0.0
    lambda_rk: float = 0.2
    # lambda_T(q) = exp(a + b * q / 100), the price of teacher distortion along plain AVIF's curve
    lambda_t_log_a: float = 0.0
    lambda_t_log_b: float = 0.0
    lambda_t_scale: float = 1.0
    lambda_pixel: float = 10.0
    text_pixel_boost: float = 30.0
    # "preedit": the editor before the codec; "restore": a post-filter after it (no rate term; the
    # codec runs outside the graph), on reconstructions of images edited by `editor_checkpoint` if set
    # Receivers rarely look at an image at its native size (classifiers at 224 px, LVLMs at their
    # tile size): the teacher sees each training image at a random scale in [view_scale_min, 1].
    view_scale_min: float = 1.0
    grad_sigma: float = 1.0  # low-pass of the receiver's gradient through the codec (avif.py)
    mode: str = "preedit"
    editor_checkpoint: str = ""


def load_config(path: str | None, overrides: list[str]) -> PreeditConfig:
    raw: dict[str, Any] = yaml.safe_load(Path(path).read_text()) if path else {}
    for item in overrides:
        k, _, v = item.partition("=")
        raw[k] = yaml.safe_load(v)
    unknown = set(raw) - {f.name for f in dataclasses.fields(PreeditConfig)}
    if unknown:
        raise ValueError(f"unknown config keys: {sorted(unknown)}")
    return PreeditConfig(**raw)


def lambda_t(cfg: PreeditConfig, q: torch.Tensor) -> torch.Tensor:
    return cfg.lambda_t_scale * torch.exp(cfg.lambda_t_log_a + cfg.lambda_t_log_b * q / 100.0)


def receiver_view(x: torch.Tensor, scale: float) -> torch.Tensor:
    if scale >= 1.0:
        return x
    size = (max(32, round(x.shape[-2] * scale)), max(32, round(x.shape[-1] * scale)))
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def step_loss(
    net: torch.nn.Module,
    teacher: torch.nn.Module,
    cfg: PreeditConfig,
    x: torch.Tensor,
    is_text: torch.Tensor,
    q: torch.Tensor,
    frozen_editor: torch.nn.Module | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    if cfg.mode == "restore":
        with torch.no_grad():
            coded = real_avif(frozen_editor(x, q) if frozen_editor else x, q)
        x_hat = net(coded, q)
        rate = torch.zeros(x.shape[0], device=x.device)
        mse = (x_hat - x).pow(2).flatten(1).mean(1)
    else:
        e = net(x, q)
        x_hat = real_avif(e, q, cfg.grad_sigma)
        rate = load_proxy().bpp(e, q)
        mse = (e - x).pow(2).flatten(1).mean(1)
    scale = random.uniform(cfg.view_scale_min, 1.0)
    with torch.no_grad():
        logits, toks = teacher.features(receiver_view(x, scale))
    logits_hat, toks_hat = teacher.features(receiver_view(x_hat, scale))
    l_tk = token_distortion(toks_hat, toks)
    l_rk = rank_order_loss(logits_hat, logits)
    photo = (~is_text).to(x.dtype)
    lam_pix = cfg.lambda_pixel * torch.where(is_text, cfg.text_pixel_boost, 1.0).to(x.dtype)
    loss = (rate + photo * lambda_t(cfg, q) * (l_tk + cfg.lambda_rk * l_rk) + lam_pix * mse).mean()
    return loss, {
        "loss": loss.item(),
        "bpp_proxy": rate.mean().item(),
        "mse": mse.mean().item(),
        "l_tk": l_tk.mean().item(),
        "l_rk": l_rk.mean().item(),
    }


@torch.no_grad()
def validate(
    net: torch.nn.Module,
    teacher: torch.nn.Module,
    cfg: PreeditConfig,
    images: list[torch.Tensor],
    frozen_editor: torch.nn.Module | None = None,
) -> dict[str, Any]:
    """Real AVIF bytes, teacher agreement and mean token distortion (finer than agreement on a few
    dozen crops), with the network vs without, on held-out imagenet-dev crops."""
    net.eval()
    out: dict[str, Any] = {}
    for q in cfg.val_qualities:
        qt = torch.tensor([float(q)])
        row: dict[str, float] = {"plain_bytes": 0, "edit_bytes": 0, "plain_agree": 0, "edit_agree": 0, "plain_l_tk": 0.0, "edit_l_tk": 0.0}
        for x in images:
            logits, toks = teacher.features(x)
            ref = logits.argmax(1)
            plain = x
            if cfg.mode == "restore":
                edited = frozen_editor(x, qt) if frozen_editor else x
                rec = real_avif(edited, qt)
                variants = (("plain", plain, real_avif(x, qt)), ("edit", edited, net(rec, qt)))
            else:
                edited = net(x, qt)
                variants = (("plain", plain, real_avif(x, qt)), ("edit", edited, real_avif(edited, qt)))
            for kind, sent, seen in variants:
                seen_logits, seen_toks = teacher.features(seen)
                row[f"{kind}_bytes"] += avif_bytes(sent, [q])[0]
                row[f"{kind}_agree"] += int(seen_logits.argmax(1) == ref)
                row[f"{kind}_l_tk"] += token_distortion(seen_toks, toks).item() / len(images)
        row = {k: round(v, 5) if isinstance(v, float) else v for k, v in row.items()}
        out[f"q{q}"] = {**row, "bytes_ratio": round(row["edit_bytes"] / row["plain_bytes"], 4)}
    net.train()
    return out


def calibrate(cfg: PreeditConfig, count: int = 48) -> dict[str, float]:
    """Fit lambda_T(q): the slope -dR/dL_tk of plain AVIF across qualities on training crops (the
    bits plain AVIF spends per unit of teacher distortion it removes)."""
    torch.set_num_threads(cfg.threads)
    teacher = build_teacher(cfg)  # type: ignore[arg-type]
    data = iter(TrainingImages(training_files(cfg.data_root), cfg.crop, 0.0, cfg.seed))
    x = torch.stack([next(data)[0] for _ in range(count)])
    qs = list(range(10, 96, 10))
    with torch.no_grad():
        _, toks = teacher.features(x)
        rates, dists = [], []
        for q in qs:
            qt = torch.full((count,), float(q))
            rates.append(np.mean(avif_bytes(x, [q] * count)) * 8 / (cfg.crop**2))
            dists.append(token_distortion(teacher.features(real_avif(x, qt))[1], toks).mean().item())
    mids, slopes = [], []
    for i in range(len(qs) - 1):
        dl = dists[i] - dists[i + 1]
        if dl > 0:
            mids.append((qs[i] + qs[i + 1]) / 2)
            slopes.append((rates[i + 1] - rates[i]) / dl)
    b, a = np.polyfit(np.array(mids) / 100.0, np.log(slopes), 1)
    result = {"lambda_t_log_a": float(a), "lambda_t_log_b": float(b)}
    print(json.dumps({"qualities": qs, "bpp": rates, "l_tk": dists, "slopes": slopes, **result}, indent=2))
    return result


def train(cfg: PreeditConfig) -> Path:
    torch.set_num_threads(cfg.threads)
    run = Path(cfg.run_dir)
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.yaml").write_text(yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False))
    seed_everything(cfg.seed)
    device = torch.device("cuda" if cfg.device == "auto" and torch.cuda.is_available() else "cpu" if cfg.device == "auto" else cfg.device)
    editor = build_network(dataclasses.asdict(cfg)).to(device)
    teacher = build_teacher(cfg).to(device)  # type: ignore[arg-type]
    frozen = None
    if cfg.mode == "restore" and cfg.editor_checkpoint:
        from .export import load_editor

        frozen = load_editor(cfg.editor_checkpoint).to(device)
        for p in frozen.parameters():
            p.requires_grad_(False)
    opt = torch.optim.Adam(editor.parameters(), lr=cfg.lr)
    step, elapsed = 0, 0.0
    ckpt = run / "last.pt"
    if ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=False)
        editor.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step, elapsed = state["step"], state.get("elapsed", 0.0)
        print(f"resumed from {ckpt} at step {step}")
    if step >= cfg.steps:
        return ckpt
    data = iter(TrainingImages(training_files(cfg.data_root), cfg.crop, cfg.text_fraction, cfg.seed + step))
    val = [
        to_tensor(resize_center_crop(load_rgb(p), 256, 224)).to(device)
        for p in validation_split(Path(cfg.data_root) / "imagenet-dev")[: cfg.val_images]
    ]
    rng = random.Random(cfg.seed + 7 * step)
    lr_cfg = argparse.Namespace(lr=cfg.lr, lr_final=cfg.lr_final, warmup=cfg.warmup, steps=cfg.steps)

    def save(done: int, seconds: float) -> None:
        state = {"model": editor.state_dict(), "optimizer": opt.state_dict(), "step": done, "config": dataclasses.asdict(cfg)}
        save_atomically({**state, "elapsed": elapsed + seconds}, ckpt)

    def one_step(step: int) -> dict[str, float]:
        batch = [next(data) for _ in range(cfg.batch_size)]
        x = torch.stack([b[0] for b in batch]).to(device)
        is_text = torch.tensor([b[1] for b in batch], device=device)
        q = torch.tensor([float(rng.randint(cfg.quality_min, cfg.quality_max)) for _ in batch], device=device)
        for g in opt.param_groups:
            g["lr"] = lr_at(lr_cfg, step)  # type: ignore[arg-type]
        loss, parts = step_loss(editor, teacher, cfg, x, is_text, q, frozen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(editor.parameters(), cfg.grad_clip)
        opt.step()
        return parts

    run_steps(
        run=run,
        start=step,
        steps=cfg.steps,
        desc=cfg.mode,
        one_step=one_step,
        validate=lambda: validate(editor, teacher, cfg, val, frozen),
        save=save,
        validate_every=cfg.validate_every,
        checkpoint_every=cfg.checkpoint_every,
        max_minutes=cfg.max_minutes,
        postfix={"loss": "loss", "bpp": "bpp_proxy", "tk": "l_tk"},
    )
    return ckpt


def main() -> None:
    ap = argparse.ArgumentParser(description="Train the semantic pre-editor (real AVIF in the loop).")
    ap.add_argument("--config", default=None)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--calibrate", action="store_true", help="measure lambda_T(q) on plain AVIF and print it")
    args = ap.parse_args()
    cfg = load_config(args.config, args.set)
    if args.calibrate:
        calibrate(cfg)
        return
    print(f"checkpoint: {train(cfg)}")


if __name__ == "__main__":
    main()
