"""Pre-editor + variable-rate mean-scale hyperprior codec.

x -> pre-editor -> g_a -> y;  y * gain[q] -> quantize (residual to the predicted mean) -> g_s(y_hat * inv_gain[q])
z = h_a(y * gain[q]) -> round -> integer h_s -> (mean, scale index) of every latent element.

No autoregressive context: all entropy parameters come from z in one parallel pass, which keeps the
decoder a fixed, small number of graph runs. One set of weights serves every quality; quality q in
[1, levels] picks (and between integers, log-linearly interpolates) per-channel gain vectors.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .entropy import FactorizedPrior, gaussian_likelihood, scale_table
from .int_hyper import Z_CLIP, IntHyperSynthesis
from .layers import SimpleGDN, conv, deconv, round_ste

PAD_MULTIPLE = 16  # y is at 1/16 resolution; the hyper-latent grid is ceil(y / 4)


@dataclass(frozen=True)
class CodecConfig:
    n: int = 64  # transform width
    m: int = 96  # latent channels
    nz: int = 48  # hyper-latent channels
    hyper_hidden: int = 64
    levels: int = 8
    scale_levels: int = 64
    pre_editor_width: int = 24
    gain_min: float = 0.25
    gain_max: float = 2.5


class PreEditor(nn.Module):
    """Light residual network that edits the input before analysis (starts as the identity)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, 3, 3, padding=1),
        )
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


@dataclass
class CodecOutput:
    x_hat: torch.Tensor
    y_likelihood: torch.Tensor
    z_likelihood: torch.Tensor
    x_edit: torch.Tensor


class VariableRateCodec(nn.Module):
    def __init__(self, cfg: CodecConfig = CodecConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        n, m = cfg.n, cfg.m
        self.pre_editor = PreEditor(cfg.pre_editor_width)
        self.g_a = nn.Sequential(conv(3, n), SimpleGDN(n), conv(n, n), SimpleGDN(n), conv(n, n), SimpleGDN(n), conv(n, m))
        self.g_s = nn.Sequential(
            deconv(m, n), SimpleGDN(n, True), deconv(n, n), SimpleGDN(n, True), deconv(n, n), SimpleGDN(n, True), deconv(n, 3)
        )
        self.h_a = nn.Sequential(conv(m, n, 3, 1), nn.LeakyReLU(inplace=True), conv(n, n), nn.LeakyReLU(inplace=True), conv(n, cfg.nz))
        self.scales = scale_table(cfg.scale_levels)
        self.h_s = IntHyperSynthesis(cfg.nz, cfg.hyper_hidden, m, self.scales)
        self.z_prior = FactorizedPrior(cfg.nz)
        init = torch.linspace(torch.log(torch.tensor(cfg.gain_min)), torch.log(torch.tensor(cfg.gain_max)), cfg.levels)
        self.log_gain = nn.Parameter(init.view(-1, 1).repeat(1, m))
        self.log_inv_gain = nn.Parameter(-init.view(-1, 1).repeat(1, m))

    # -- gains ---------------------------------------------------------------------------------
    def gains(self, quality: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """quality: [B] float in [1, levels] -> (gain, inverse gain), each [B, M, 1, 1].

        Between integer levels the log-gains are interpolated linearly (exponential interpolation of
        the gains), the same formula the runtime uses.
        """
        q = quality.clamp(1, self.cfg.levels) - 1
        lo = q.floor().clamp(max=self.cfg.levels - 2).long()
        frac = (q - lo.float()).view(-1, 1)
        g = (1 - frac) * self.log_gain[lo] + frac * self.log_gain[lo + 1]
        ig = (1 - frac) * self.log_inv_gain[lo] + frac * self.log_inv_gain[lo + 1]
        return g.exp()[..., None, None], ig.exp()[..., None, None]

    # -- pieces used by training and export ----------------------------------------------------
    def encode_latents(self, x: torch.Tensor, quality: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x padded to PAD_MULTIPLE -> (edited x, gained y, z before rounding)."""
        x_edit = self.pre_editor(x)
        gain, _ = self.gains(quality)
        y = self.g_a(x_edit) * gain
        z = self.h_a(y)
        return x_edit, y, z

    def entropy_parameters(self, z_hat: torch.Tensor, y_shape: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mean, idx, sigma = self.h_s(z_hat)
        h, w = y_shape
        return mean[..., :h, :w], idx[..., :h, :w], sigma[..., :h, :w]

    def synthesize(self, y_hat: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
        _, inv_gain = self.gains(quality)
        return self.g_s(y_hat * inv_gain)

    def forward(self, x: torch.Tensor, quality: torch.Tensor) -> CodecOutput:
        h, w = x.shape[-2:]
        ph, pw = (-h) % PAD_MULTIPLE, (-w) % PAD_MULTIPLE
        xp = F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x
        x_edit, y, z = self.encode_latents(xp, quality)
        z_noisy = z + torch.empty_like(z).uniform_(-0.5, 0.5) if self.training else torch.round(z)
        z_lik = self.z_prior.likelihood(z_noisy)
        z_hat = round_ste(z).clamp(-Z_CLIP, Z_CLIP)
        mean, _, sigma = self.entropy_parameters(z_hat, y.shape[-2:])
        if self.training:
            y_lik = gaussian_likelihood(y + torch.empty_like(y).uniform_(-0.5, 0.5) - mean, sigma)
        else:
            y_lik = gaussian_likelihood(torch.round(y - mean), sigma)
        y_hat = round_ste(y - mean) + mean
        x_hat = self.synthesize(y_hat, quality)[..., :h, :w]
        return CodecOutput(x_hat, y_lik, z_lik, x_edit[..., :h, :w])
