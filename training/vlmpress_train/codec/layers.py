"""Small building blocks shared by the transforms."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Round in the forward pass, identity gradient in the backward pass."""
    return x + (torch.round(x) - x).detach()


class SimpleGDN(nn.Module):
    """Simplified (L1) generalized divisive normalization: y = x / (beta + gamma * |x|).

    Cheaper than the square/sqrt form and as good for small codecs; `inverse=True` multiplies
    instead (IGDN, used in the synthesis transform). beta and gamma are kept positive by clamping
    in the forward pass, which ONNX export folds into constants, so the graph stays a plain Conv.
    """

    def __init__(self, channels: int, inverse: bool = False) -> None:
        super().__init__()
        self.inverse = inverse
        self.beta = nn.Parameter(torch.ones(channels))
        self.gamma = nn.Parameter(0.1 * torch.eye(channels).view(channels, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        beta = self.beta.clamp_min(1e-3)
        gamma = self.gamma.clamp_min(0.0)
        norm = F.conv2d(x.abs(), gamma, beta)
        return x * norm if self.inverse else x / norm


def conv(cin: int, cout: int, k: int = 5, stride: int = 2) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2)


def deconv(cin: int, cout: int, k: int = 5, stride: int = 2) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, k, stride=stride, padding=k // 2, output_padding=stride - 1)
