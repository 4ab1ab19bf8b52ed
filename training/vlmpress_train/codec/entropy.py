"""Entropy models: a factorized prior for the hyper-latent and a Gaussian conditional for the latent.

Both give likelihoods for training (rate = -log2 of them) and both export *integer* CDF tables with a
fixed precision; the runtime's rANS coder uses those tables and nothing else, so rate is the same
number on every machine. Each table ends with one escape symbol whose frequency covers the tails; a
value outside the table is coded as the escape followed by the value itself (see docs/model-format.md).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

CDF_PRECISION = 16  # frequencies sum to 2**16
LIKELIHOOD_BOUND = 1e-9
TAIL_MASS = 1e-9


def scale_table(levels: int = 64, smin: float = 0.11, smax: float = 64.0) -> np.ndarray:
    """Log-spaced Gaussian scales; index i of the entropy network selects scale i."""
    return np.exp(np.linspace(math.log(smin), math.log(smax), levels))


def _std_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.erfc(-x / math.sqrt(2.0))


def gaussian_likelihood(residual: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """P(round(residual)) for residual ~ N(0, sigma): the mass of the unit bin around it."""
    r = residual.abs()
    upper = _std_normal_cdf((0.5 - r) / sigma)
    lower = _std_normal_cdf((-0.5 - r) / sigma)
    return (upper - lower).clamp_min(LIKELIHOOD_BOUND)


class FactorizedPrior(nn.Module):
    """Per-channel learned univariate density (Balle et al. 2018, appendix 6.1), cumulative form."""

    def __init__(self, channels: int, filters: tuple[int, ...] = (3, 3, 3), init_scale: float = 10.0) -> None:
        super().__init__()
        self.channels = channels
        dims = (1, *filters, 1)
        scale = init_scale ** (1 / (len(filters) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(filters) + 1):
            init = math.log(math.expm1(1 / scale / dims[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, dims[i + 1], dims[i]), init)))
            self.biases.append(nn.Parameter(torch.empty(channels, dims[i + 1], 1).uniform_(-0.5, 0.5)))
            if i < len(filters):
                self.factors.append(nn.Parameter(torch.zeros(channels, dims[i + 1], 1)))

    def _logits_cumulative(self, x: torch.Tensor) -> torch.Tensor:
        # x: [C, 1, N]
        for i, (m, b) in enumerate(zip(self.matrices, self.biases)):
            x = torch.matmul(F.softplus(m), x) + b
            if i < len(self.factors):
                x = x + torch.tanh(self.factors[i]) * torch.tanh(x)
        return x

    def likelihood(self, z: torch.Tensor) -> torch.Tensor:
        """z: [B, C, H, W] (noisy or integer) -> per-element probability of its unit bin."""
        b, c, h, w = z.shape
        v = z.permute(1, 0, 2, 3).reshape(c, 1, -1)
        lower = self._logits_cumulative(v - 0.5)
        upper = self._logits_cumulative(v + 0.5)
        sign = -torch.sign(lower + upper).detach()
        lik = (torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower)).abs()
        return lik.clamp_min(LIKELIHOOD_BOUND).reshape(c, b, h, w).permute(1, 0, 2, 3)

    @torch.no_grad()
    def pmf_tables(self, max_abs: int) -> list[tuple[int, np.ndarray]]:
        """Per channel: (offset, pmf over offset..offset+len-1), the support trimmed to TAIL_MASS."""
        exact = copy.deepcopy(self).double()  # float64: tail masses far below float32 resolution
        grid = torch.arange(-max_abs, max_abs + 1, dtype=torch.float64)
        v = grid.view(1, 1, -1).repeat(self.channels, 1, 1)
        lower = torch.sigmoid(exact._logits_cumulative(v - 0.5))[:, 0]
        upper = torch.sigmoid(exact._logits_cumulative(v + 0.5))[:, 0]
        out = []
        for c in range(self.channels):
            pmf = (upper[c] - lower[c]).clamp_min(0).numpy()
            cdf_lo = lower[c].numpy()
            cdf_hi = upper[c].numpy()
            keep = np.nonzero((cdf_hi > TAIL_MASS / 2) & (cdf_lo < 1 - TAIL_MASS / 2))[0]
            first, last = (int(keep[0]), int(keep[-1])) if keep.size else (max_abs, max_abs)
            out.append((first - max_abs, pmf[first : last + 1]))
        return out


def gaussian_pmf_tables(scales: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """Per scale: (offset, pmf) of the rounded zero-mean Gaussian, support trimmed to TAIL_MASS."""
    out = []
    for s in scales:
        bound = int(math.ceil(s * _norm_ppf(1 - TAIL_MASS / 2)))
        k = np.arange(-bound, bound + 1, dtype=np.float64)
        upper = 0.5 * np.array([math.erfc(-(v + 0.5) / s / math.sqrt(2)) for v in k])
        lower = 0.5 * np.array([math.erfc(-(v - 0.5) / s / math.sqrt(2)) for v in k])
        out.append((-bound, upper - lower))
    return out


def _norm_ppf(p: float) -> float:
    """Inverse standard normal CDF by bisection (no SciPy needed, called a handful of times)."""
    lo, hi = -40.0, 40.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if 0.5 * math.erfc(-mid / math.sqrt(2)) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def quantize_pmf(pmf: np.ndarray, precision: int = CDF_PRECISION) -> np.ndarray:
    """Integer frequencies for pmf + one escape symbol (last), each >= 1, summing to 2**precision.

    Deterministic: float64 rounding then a fixed repair order (largest symbols first), done once at
    export; the runtime only ever sees the resulting integers.
    """
    total = 1 << precision
    escape = max(0.0, 1.0 - float(pmf.sum()))
    probs = np.append(np.clip(pmf, 0, None), escape)
    freq = np.maximum(1, np.floor(probs * total + 0.5).astype(np.int64))
    diff = total - int(freq.sum())
    order = np.argsort(-freq, kind="stable")
    i = 0
    while diff != 0:
        j = order[i % len(order)]
        if diff > 0:
            freq[j] += 1
            diff -= 1
        elif freq[j] > 1:
            freq[j] -= 1
            diff += 1
        i += 1
    return freq
