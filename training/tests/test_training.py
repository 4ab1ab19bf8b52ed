"""A few optimisation steps on one fixed batch must lower the full objective; config and data plumbing."""

from __future__ import annotations

import random

import numpy as np
import torch
from vlmpress_train.codec.model import CodecConfig, VariableRateCodec
from vlmpress_train.data import TrainingImages, training_files, validation_split
from vlmpress_train.losses import LossConfig, rank_order_loss, rank_spectrum_loss
from vlmpress_train.text_render import render_text_image
from vlmpress_train.train import TrainConfig, build_teacher, load_config, training_step


def _tiny_cfg(shared, rank: str) -> TrainConfig:
    return TrainConfig(
        teacher=str(shared / "models/tf2_mobilenet_v2_1.0_224_ptq.tflite"),
        codec=CodecConfig(n=16, m=24, nz=8, hyper_hidden=16),
        loss=LossConfig(rank=rank),
    )


def test_tiny_training_lowers_the_loss(shared):
    torch.manual_seed(0)
    cfg = _tiny_cfg(shared, "both")
    teacher = build_teacher(cfg)
    model = VariableRateCodec(cfg.codec)
    ds = TrainingImages(training_files(shared / "data")[:6], crop=64, text_fraction=0.3, seed=3)
    rng = random.Random(0)
    batch = [ds.sample(rng) for _ in range(4)]
    x = torch.stack([b[0] for b in batch])
    is_text = torch.tensor([b[1] for b in batch])
    levels = torch.tensor([1, 3, 6, 8])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def loss_eval() -> float:
        torch.manual_seed(123)  # same quantization noise for before/after
        with torch.no_grad():
            return training_step(model, teacher, cfg, x, is_text, levels)[0].item()

    before = loss_eval()
    for _ in range(20):
        loss, _ = training_step(model, teacher, cfg, x, is_text, levels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = loss_eval()
    assert after < 0.9 * before, (before, after)


def test_rank_losses_are_zero_gradient_free_of_nan_and_prefer_the_right_order():
    torch.manual_seed(0)
    logits = torch.randn(3, 50) * 3
    same = rank_order_loss(logits, logits)
    shuffled = rank_order_loss(logits[:, torch.randperm(50)], logits)
    assert torch.all(same < shuffled)
    tok = torch.randn(3, 16, 7, 7)
    assert torch.allclose(rank_spectrum_loss(tok, tok), torch.zeros(3), atol=1e-5)
    assert torch.all(rank_spectrum_loss(tok * 0.1 + torch.randn_like(tok), tok) > 0.01)


def test_validation_split_is_fixed_and_disjoint_from_training(shared):
    val = validation_split(shared / "data" / "imagenet-dev")
    assert len(val) == 100 and val == validation_split(shared / "data" / "imagenet-dev")
    train = set(training_files(shared / "data"))
    assert not train & set(val)
    assert len(train) > 800


def test_text_rendering_is_deterministic():
    a = np.asarray(render_text_image(random.Random(5), 96, 80))
    b = np.asarray(render_text_image(random.Random(5), 96, 80))
    assert a.shape == (80, 96, 3) and np.array_equal(a, b)
    assert a.std() > 5  # there is ink on the page


def test_config_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("steps: 10\ncodec:\n  n: 32\n")
    cfg = load_config(p, ["loss.rank=spectrum", "batch_size=2"])
    assert (cfg.steps, cfg.codec.n, cfg.loss.rank, cfg.batch_size) == (10, 32, "spectrum", 2)


def test_ablation_compares_at_equal_rate():
    from vlmpress_train.ablate import at_rate, tabulate

    rows = [{"q": 1, "bpp": 0.2, "agree": 0.1, "l_tk": 0.9}, {"q": 2, "bpp": 0.4, "agree": 0.5, "l_tk": 0.5}]
    assert abs(at_rate(rows, "agree", 0.3) - 0.3) < 1e-9
    assert at_rate(rows, "agree", 0.5) is None  # never extrapolated
    table = tabulate({"variants": {"order": {"rows": rows}}})
    assert "| order | 30.0% |" in table
