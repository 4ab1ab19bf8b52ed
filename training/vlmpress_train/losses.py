"""Training objective: L = lambda_R * R + lambda_D * D_pixel + lambda_T * (lambda_tk * L_tk + lambda_rk * L_rk).

Exact formulas are written out in docs/training.md; names here match the symbols there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def rate_bpp(likelihoods: list[torch.Tensor], num_pixels: int) -> torch.Tensor:
    """R: bits per pixel, per image [B] (sum of -log2 p over all latent elements / pixels)."""
    bits = sum(-torch.log2(l).flatten(1).sum(1) for l in likelihoods)
    return bits / num_pixels


def token_distortion(tok_hat: list[torch.Tensor], tok: list[torch.Tensor]) -> torch.Tensor:
    """L_tk: per tap, mean over tokens of ||t_hat - t||^2 / mean ||t||^2; averaged over taps. [B]."""
    terms = []
    for a, b in zip(tok_hat, tok):
        num = (a - b).pow(2).sum(1).flatten(1).mean(1)
        den = b.pow(2).sum(1).flatten(1).mean(1).clamp_min(1e-6)
        terms.append(num / den)
    return torch.stack(terms, 0).mean(0)


def rank_order_loss(logits_hat: torch.Tensor, logits: torch.Tensor, k: int = 5, tau: float = 1.0) -> torch.Tensor:
    """L_rk (reading a: ordering). The original's top-k labels, in their order, must keep that order
    on the reconstruction (pairwise logistic, RankNet-style), and the k-th must stay above the
    strongest label outside the top-k. [B]."""
    top = logits.topk(k, dim=1).indices  # [B, k], descending on the original
    s = logits_hat.gather(1, top)  # reconstruction scores of those labels
    i, j = torch.triu_indices(k, k, 1)
    pair = F.softplus((s[:, j] - s[:, i]) / tau).mean(1)  # label i must beat label j (i < j)
    rest = logits_hat.scatter(1, top, float("-inf")).amax(1)
    above = F.softplus((rest - s[:, -1]) / tau)
    return pair + above


def rank_spectrum_loss(tok_hat: torch.Tensor, tok: torch.Tensor) -> torch.Tensor:
    """L_rk (reading b: spectrum). The normalised singular values of the token matrix (tokens x
    channels) and its effective rank must be preserved. [B]."""
    a = tok_hat.flatten(2).transpose(1, 2)  # [B, T, C]
    b = tok.flatten(2).transpose(1, 2)
    sa = torch.linalg.svdvals(a - a.mean(1, keepdim=True))
    sb = torch.linalg.svdvals(b - b.mean(1, keepdim=True))
    pa = sa / sa.sum(1, keepdim=True).clamp_min(1e-8)
    pb = sb / sb.sum(1, keepdim=True).clamp_min(1e-8)
    erank_a = torch.exp(-(pa * torch.log(pa.clamp_min(1e-12))).sum(1))
    erank_b = torch.exp(-(pb * torch.log(pb.clamp_min(1e-12))).sum(1))
    return (pa - pb).abs().sum(1) + (erank_a - erank_b).abs() / erank_b.clamp_min(1.0)


@dataclass(frozen=True)
class LevelLambdas:
    rate: float
    pixel: float
    semantic: float


@dataclass(frozen=True)
class LossConfig:
    lambda_tk: float = 1.0
    lambda_rk: float = 0.2
    rank: str = "order"  # "order" | "spectrum" | "both" | "none"
    top_k: int = 5
    pixel_min: float = 20.0  # lambda_D at the lowest level (MSE on [0,1] pixels)
    pixel_max: float = 600.0
    semantic_min: float = 1.0  # lambda_T at the lowest level
    semantic_max: float = 24.0
    text_pixel_boost: float = 3.0  # rendered text leans on the pixel term (no OCR teacher in the loop)

    def level(self, level: int, levels: int) -> LevelLambdas:
        t = (level - 1) / max(1, levels - 1)
        geo = lambda a, b: math.exp(math.log(a) + t * (math.log(b) - math.log(a)))  # noqa: E731
        return LevelLambdas(1.0, geo(self.pixel_min, self.pixel_max), geo(self.semantic_min, self.semantic_max))


def total_loss(
    cfg: LossConfig,
    *,
    bpp: torch.Tensor,
    mse: torch.Tensor,
    l_tk: torch.Tensor,
    l_rk: torch.Tensor,
    lam_pixel: torch.Tensor,
    lam_sem: torch.Tensor,
) -> torch.Tensor:
    """Per-image loss [B] with per-image lambdas (each image in a batch has its own quality level)."""
    return bpp + lam_pixel * mse + lam_sem * (cfg.lambda_tk * l_tk + cfg.lambda_rk * l_rk)
