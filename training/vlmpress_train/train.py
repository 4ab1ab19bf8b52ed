"""Training command: `python -m vlmpress_train.train --config training/configs/cpu.yaml`.

Checkpoints every `checkpoint_every` steps (and on Ctrl-C) to `<run_dir>/last.pt`; running the same
command again resumes from there. Seeds are fixed; the data stream after a resume is seeded by the
step it resumes at, so a resumed run is reproducible too.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from .codec.model import CodecConfig, VariableRateCodec
from .data import TrainingImages, training_files, validation_split
from .images import load_rgb, resize_center_crop, to_tensor
from .loop import run_steps, save_atomically
from .losses import LossConfig, rank_order_loss, rank_spectrum_loss, rate_bpp, token_distortion, total_loss
from .teachers.tflite_graph import TFLiteClassifier


@dataclass
class TrainConfig:
    run_dir: str = "runs/cpu"
    data_root: str = "../shared/data"
    teacher: str = "../shared/models/tf2_mobilenet_v2_1.0_224_ptq.tflite"
    teacher_kind: str = "tflite"  # "tflite" | "onnx"
    teacher_input_size: int = 0  # onnx teacher: square input side (0 = from the graph)
    teacher_mean: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # onnx teacher normalisation
    teacher_std: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0])
    teacher_taps: list[int] = field(default_factory=lambda: [8, 16, 32])  # tflite teacher: token taps by output stride
    seed: int = 1234
    steps: int = 4000
    batch_size: int = 8
    crop: int = 192
    text_fraction: float = 0.15
    lr: float = 3e-4
    lr_final: float = 3e-5
    warmup: int = 100
    grad_clip: float = 1.0
    threads: int = 2
    device: str = "auto"  # "auto" (CUDA when available), "cpu", "cuda", "cuda:1", ...
    checkpoint_every: int = 200
    validate_every: int = 250
    val_images: int = 24
    val_levels: list[int] = field(default_factory=lambda: [1, 3, 5, 8])
    max_minutes: float = 0.0  # stop (with a checkpoint) after this wall time; 0 = no limit
    init_from: str = ""  # start weights from another run's checkpoint (ablations)
    pixel_only: float = 0.35  # first fraction of steps: rate + pixels only (no teacher: faster steps)
    semantic_ramp: float = 0.15  # then lambda_T ramps up linearly over this fraction of steps
    semantic_ramp_start: float = 0.1  # lambda_T multiplier when the ramp starts
    codec: CodecConfig = field(default_factory=CodecConfig)
    loss: LossConfig = field(default_factory=LossConfig)


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> TrainConfig:
    raw: dict[str, Any] = yaml.safe_load(Path(path).read_text()) if path else {}
    for item in overrides or []:
        key, _, value = item.partition("=")
        target = raw
        *parents, leaf = key.split(".")
        for p in parents:
            target = target.setdefault(p, {})
        target[leaf] = yaml.safe_load(value)
    codec = CodecConfig(**raw.pop("codec", {}))
    loss = LossConfig(**raw.pop("loss", {}))
    unknown = set(raw) - {f.name for f in dataclasses.fields(TrainConfig)}
    if unknown:
        raise ValueError(f"unknown config keys: {sorted(unknown)}")
    return TrainConfig(codec=codec, loss=loss, **raw)


def build_teacher(cfg: TrainConfig) -> torch.nn.Module:
    if cfg.teacher_kind == "tflite":
        teacher: torch.nn.Module = TFLiteClassifier(cfg.teacher, tuple(cfg.teacher_taps))
    elif cfg.teacher_kind == "onnx":
        from .teachers.onnx_teacher import OnnxTeacher

        teacher = OnnxTeacher(cfg.teacher, cfg.teacher_input_size or None, cfg.teacher_mean, cfg.teacher_std)
    else:
        raise ValueError(f"unknown teacher kind {cfg.teacher_kind}")
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher.eval()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def lr_at(cfg: TrainConfig, step: int) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr_final + 0.5 * (cfg.lr - cfg.lr_final) * (1 + math.cos(math.pi * min(1.0, t)))


def semantic_weight(cfg: TrainConfig, step: int) -> float:
    """Curriculum: the codec first learns to reconstruct, then the teacher's terms take over.

    0 means the semantic terms are skipped entirely (the teacher is not run)."""
    start = cfg.pixel_only * cfg.steps
    ramp = cfg.semantic_ramp * cfg.steps
    if step < start:
        return 0.0
    if ramp <= 0 or step >= start + ramp:
        return 1.0
    return cfg.semantic_ramp_start + (1 - cfg.semantic_ramp_start) * (step - start) / ramp


def training_step(
    model: VariableRateCodec,
    teacher: torch.nn.Module,
    cfg: TrainConfig,
    x: torch.Tensor,
    is_text: torch.Tensor,
    levels: torch.Tensor,
    sem_weight: float = 1.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """One forward pass of the full objective; returns the scalar loss and its parts for logging."""
    lc = cfg.loss
    out = model(x, levels.float())
    bpp = rate_bpp([out.y_likelihood, out.z_likelihood], x.shape[-2] * x.shape[-1])
    mse = (out.x_hat - x).pow(2).flatten(1).mean(1)
    l_tk = torch.zeros_like(bpp)
    l_rk = torch.zeros_like(bpp)
    if sem_weight > 0:
        with torch.no_grad():
            logits, toks = teacher.features(x)
        logits_hat, toks_hat = teacher.features(out.x_hat.clamp(0, 1))
        l_tk = token_distortion(toks_hat, toks)
        if lc.rank in ("order", "both"):
            l_rk = l_rk + rank_order_loss(logits_hat, logits, lc.top_k)
        if lc.rank in ("spectrum", "both"):
            t = min(1, len(toks) - 1)  # the 14x14 map for MobileNetV2
            l_rk = l_rk + rank_spectrum_loss(toks_hat[t], toks[t])
    lam = [lc.level(int(l), cfg.codec.levels) for l in levels.tolist()]
    dev = x.device
    lam_pixel = torch.tensor([l.pixel for l in lam], device=dev) * torch.where(is_text.to(dev), lc.text_pixel_boost, 1.0)
    lam_sem = torch.tensor([l.semantic for l in lam], device=dev) * sem_weight
    loss = total_loss(lc, bpp=bpp, mse=mse, l_tk=l_tk, l_rk=l_rk, lam_pixel=lam_pixel, lam_sem=lam_sem).mean()
    parts = {
        "loss": loss.item(),
        "bpp": bpp.mean().item(),
        "mse": mse.mean().item(),
        "l_tk": l_tk.mean().item(),
        "l_rk": l_rk.mean().item(),
    }
    return loss, parts


@torch.no_grad()
def validate(model: VariableRateCodec, teacher: torch.nn.Module, cfg: TrainConfig, images: list[torch.Tensor]) -> dict[str, Any]:
    """Estimated bpp (rounded latents, float likelihoods) and teacher top-1 agreement per level."""
    model.eval()
    result: dict[str, Any] = {}
    for level in cfg.val_levels:
        bpps, agree = [], 0
        for x in images:
            out = model(x, torch.tensor([float(level)], device=x.device))
            bpps.append(rate_bpp([out.y_likelihood, out.z_likelihood], x.shape[-2] * x.shape[-1]).item())
            agree += int(teacher(out.x_hat.clamp(0, 1)).argmax(1) == teacher(x).argmax(1))
        result[f"q{level}"] = {"bpp": round(float(np.mean(bpps)), 4), "agree": round(agree / len(images), 4)}
    model.train()
    return result


def train(cfg: TrainConfig) -> Path:
    torch.set_num_threads(cfg.threads)
    run = Path(cfg.run_dir)
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.yaml").write_text(yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False))
    seed_everything(cfg.seed)
    device = torch.device("cuda" if cfg.device == "auto" and torch.cuda.is_available() else "cpu" if cfg.device == "auto" else cfg.device)
    model = VariableRateCodec(cfg.codec).to(device)
    teacher = build_teacher(cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    step, elapsed = 0, 0.0
    ckpt = run / "last.pt"
    if ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step, elapsed = state["step"], state.get("elapsed", 0.0)
        torch.set_rng_state(state["torch_rng"].cpu())
        print(f"resumed from {ckpt} at step {step}")
    elif cfg.init_from:
        model.load_state_dict(torch.load(cfg.init_from, map_location=device, weights_only=False)["model"])
        print(f"initialised from {cfg.init_from}")
    if step >= cfg.steps:
        return ckpt

    data = TrainingImages(training_files(cfg.data_root), cfg.crop, cfg.text_fraction, cfg.seed + step)
    stream = iter(data)
    val = [
        to_tensor(resize_center_crop(load_rgb(p), 256, 224)).to(device)
        for p in validation_split(Path(cfg.data_root) / "imagenet-dev")[: cfg.val_images]
    ]
    level_rng = random.Random(cfg.seed + 7 * step)

    def save(done: int, seconds: float) -> None:
        state = {
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "step": done,
            "elapsed": elapsed + seconds,
            "torch_rng": torch.get_rng_state(),
            "config": dataclasses.asdict(cfg),
        }
        save_atomically(state, ckpt)

    def one_step(step: int) -> dict[str, float]:
        batch = [next(stream) for _ in range(cfg.batch_size)]
        x = torch.stack([b[0] for b in batch]).to(device)
        is_text = torch.tensor([b[1] for b in batch])
        levels = torch.tensor([level_rng.randint(1, cfg.codec.levels) for _ in batch], device=device)
        for g in opt.param_groups:
            g["lr"] = lr_at(cfg, step)
        loss, parts = training_step(model, teacher, cfg, x, is_text, levels, semantic_weight(cfg, step))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        return parts

    model.train()
    run_steps(
        run=run,
        start=step,
        steps=cfg.steps,
        desc="train",
        one_step=one_step,
        validate=lambda: validate(model, teacher, cfg, val),
        save=save,
        validate_every=cfg.validate_every,
        checkpoint_every=cfg.checkpoint_every,
        max_minutes=cfg.max_minutes,
        postfix={"loss": "loss", "bpp": "bpp", "tk": "l_tk"},
    )
    return ckpt


def main() -> None:
    ap = argparse.ArgumentParser(description="Train the vlmpress codec.")
    ap.add_argument("--config", default=None, help="YAML config file (see training/configs/)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    args = ap.parse_args()
    cfg = load_config(args.config, args.set)
    print(f"checkpoint: {train(cfg)}")


if __name__ == "__main__":
    main()
