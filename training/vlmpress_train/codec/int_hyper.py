"""Integer entropy-parameter network (hyper-synthesis) — the part the decoder must reproduce exactly.

A float hyper-synthesis gives slightly different scales on different machines and thread counts, and
one flipped table index desynchronises the entropy decoder. Here every layer is trained with fake
quantization and exported as pure integer arithmetic (ONNX ConvInteger: uint8 activations x int8
weights -> int32, then int64 fixed-point requantization), so the decoder derives exactly the indexes
the encoder used on any machine, thread count, optimisation level or execution provider.

Layer l (hidden):  acc = conv(a, w_int) + b_int                       (int32, exact)
                   a' = clip(floor((acc * m_c + 2^(S-1)) / 2^S), 0, 255)   (int64, exact)
                   a' = depth_to_space(a', 2)                          (x2 upsampling)
Output heads:      mean_q  = clip(round(acc_mu * m / 2^S), -32767, 32767), mean = mean_q / MEAN_DENOM
                   scale_i = clip(round(acc_s * m / 2^S), 0, SCALE_LEVELS - 1)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .layers import round_ste

Z_CLIP = 127  # hyper-latent values live in [-127, 127] (uint8 with zero point 128)
MEAN_DENOM = 16  # means are multiples of 1/16
MEAN_CLIP = 32767
ACT_MAX = 255


class FakeQuantConv(nn.Module):
    """3x3 conv whose weights are int8 per output channel and whose bias is int32 in the input's scale."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(cout, cin, 3, 3))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.bias = nn.Parameter(torch.zeros(cout))

    def weight_scale(self) -> torch.Tensor:
        return (self.weight.detach().abs().amax(dim=(1, 2, 3)) / 127.0).clamp_min(1e-8)

    def forward(self, a_int: torch.Tensor, s_in: torch.Tensor | float) -> torch.Tensor:
        """a_int: integer-valued activations; returns the real-valued accumulator (acc * s_w * s_in)."""
        s_w = self.weight_scale()
        w_int = round_ste(self.weight / s_w.view(-1, 1, 1, 1)).clamp(-127, 127)
        s_acc = s_w * s_in
        b_int = round_ste(self.bias / s_acc)
        acc = F.conv2d(a_int, w_int, b_int, padding=1)
        return acc * s_acc.view(1, -1, 1, 1)


class IntHyperSynthesis(nn.Module):
    """z_hat (integers) -> (mean, scale index, sigma) at 4x the hyper-latent resolution."""

    def __init__(self, z_channels: int, hidden: int, y_channels: int, scales: np.ndarray) -> None:
        super().__init__()
        self.y_channels = y_channels
        self.conv1 = FakeQuantConv(z_channels, hidden * 4)
        self.conv2 = FakeQuantConv(hidden, hidden * 4)
        self.conv_mean = FakeQuantConv(hidden, y_channels)
        self.conv_scale = FakeQuantConv(hidden, y_channels)
        # Activation scales (real value of one uint8 step), learned as logs.
        self.log_s1 = nn.Parameter(torch.tensor(math.log(0.05)))
        self.log_s2 = nn.Parameter(torch.tensor(math.log(0.05)))
        self.register_buffer("log_scales", torch.tensor(np.log(scales), dtype=torch.float32))
        with torch.no_grad():  # start in the middle of the scale table
            self.conv_scale.bias.fill_(len(scales) / 3)

    @staticmethod
    def _act(real: torch.Tensor, s_out: torch.Tensor) -> torch.Tensor:
        return round_ste(F.relu(real) / s_out).clamp(0, ACT_MAX)

    def forward(self, z_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        s1, s2 = self.log_s1.exp(), self.log_s2.exp()
        a = F.pixel_shuffle(self._act(self.conv1(z_hat, 1.0), s1), 2)
        a = F.pixel_shuffle(self._act(self.conv2(a, s1), s2), 2)
        mean = round_ste(self.conv_mean(a, s2) * MEAN_DENOM).clamp(-MEAN_CLIP, MEAN_CLIP) / MEAN_DENOM
        idx = round_ste(self.conv_scale(a, s2)).clamp(0, len(self.log_scales) - 1)
        # sigma on the log-spaced table, interpolated so the STE index gets a gradient
        lo = self.log_scales[0]
        step = (self.log_scales[-1] - lo) / (len(self.log_scales) - 1)
        sigma = torch.exp(lo + idx * step)
        return mean, idx, sigma


@dataclass
class IntLayer:
    """One exported integer layer: int8 weights, int32 bias, per-channel multiplier and shift."""

    weight: np.ndarray  # int8 [cout, cin, 3, 3]
    bias: np.ndarray  # int32 [cout]
    multiplier: np.ndarray  # int64 [cout], < 2**31
    shift: int  # right shift S (same for all channels of the layer)
    clip_lo: int
    clip_hi: int


def _fixed_point(m_real: np.ndarray) -> tuple[np.ndarray, int]:
    """m_real ~= multiplier / 2**shift with multiplier < 2**30 (so acc * multiplier fits in int64)."""
    top = float(np.max(m_real))
    shift = 30 - int(math.ceil(math.log2(top))) if top > 0 else 30
    shift = max(0, min(shift, 62))
    return np.round(m_real.astype(np.float64) * (2.0**shift)).astype(np.int64), shift


def _int_conv(layer: FakeQuantConv, s_in: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s_w = layer.weight_scale().double().numpy()
    w = layer.weight.detach().double().numpy()
    w_int = np.clip(np.round(w / s_w.reshape(-1, 1, 1, 1)), -127, 127).astype(np.int8)
    b_int = np.round(layer.bias.detach().double().numpy() / (s_w * s_in)).astype(np.int64)
    if np.abs(b_int).max(initial=0) >= 2**31:
        raise ValueError("bias does not fit int32")
    return w_int, b_int.astype(np.int32), s_w * s_in


@torch.no_grad()
def export_integer_layers(net: IntHyperSynthesis) -> dict[str, IntLayer]:
    s1, s2 = float(net.log_s1.exp()), float(net.log_s2.exp())
    layers: dict[str, IntLayer] = {}
    for name, conv, s_in, s_out, lo, hi in (
        ("conv1", net.conv1, 1.0, s1, 0, ACT_MAX),
        ("conv2", net.conv2, s1, s2, 0, ACT_MAX),
        ("mean", net.conv_mean, s2, 1.0 / MEAN_DENOM, -MEAN_CLIP, MEAN_CLIP),
        ("scale", net.conv_scale, s2, 1.0, 0, len(net.log_scales) - 1),
    ):
        w, b, s_acc = _int_conv(conv, s_in)
        mult, shift = _fixed_point(s_acc / s_out)
        layers[name] = IntLayer(w, b, mult, shift, lo, hi)
    return layers


def _conv_int64(a: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact integer 3x3 conv, padding 1 (zeros), a: [C, H, W] int64."""
    c, h, wd = a.shape
    p = np.pad(a, ((0, 0), (1, 1), (1, 1)))
    cols = np.stack([p[:, i : i + h, j : j + wd] for i in range(3) for j in range(3)], axis=1)  # C,9,H,W
    wk = w.astype(np.int64).reshape(w.shape[0], c * 9)
    return (wk @ cols.reshape(c * 9, h * wd)).reshape(-1, h, wd) + b.astype(np.int64)[:, None, None]


def _requant(acc: np.ndarray, layer: IntLayer) -> np.ndarray:
    half = (1 << layer.shift) >> 1
    v = (acc * layer.multiplier[:, None, None] + half) >> layer.shift  # arithmetic shift = floor
    return np.clip(v, layer.clip_lo, layer.clip_hi)


def _depth_to_space(a: np.ndarray) -> np.ndarray:
    c4, h, w = a.shape
    c = c4 // 4
    return a.reshape(c, 2, 2, h, w).transpose(0, 3, 1, 4, 2).reshape(c, h * 2, w * 2)


def reference_forward(layers: dict[str, IntLayer], z_hat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pure-integer NumPy reference of the exported graph. z_hat: [C, h, w] ints -> (mean_q, scale_idx)."""
    a = np.clip(z_hat.astype(np.int64), -Z_CLIP, Z_CLIP)
    a = _depth_to_space(_requant(_conv_int64(a, layers["conv1"].weight, layers["conv1"].bias), layers["conv1"]))
    a = _depth_to_space(_requant(_conv_int64(a, layers["conv2"].weight, layers["conv2"].bias), layers["conv2"]))
    mean = _requant(_conv_int64(a, layers["mean"].weight, layers["mean"].bias), layers["mean"])
    idx = _requant(_conv_int64(a, layers["scale"].weight, layers["scale"].bias), layers["scale"])
    return mean.astype(np.int32), idx.astype(np.int32)
