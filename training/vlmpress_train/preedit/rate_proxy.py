"""A differentiable stand-in for the AVIF encoder's rate, used only for gradients.

Bits are estimated as sum log2(1 + |c| / step(q)) over the coefficients of an orthonormal 8x8 block
DCT of luma and of 2x-subsampled chroma (the 4:2:0 planes the encoder codes), where step(q) grows
exponentially as the AVIF quality falls, like AV1's quantiser tables. Three constants (the step's
scale and slope, and a bits multiplier) are fitted to real AVIF sizes of training crops by
`python -m vlmpress_train.preedit.rate_proxy --fit`; how well the proxy ranks real sizes on the
validation split is measured by the same command and written in docs/preedit.md.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

# BT.601 full range, as libavif converts RGB for 8-bit stills
_YCC = torch.tensor([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])


def _dct_matrix(n: int = 8) -> torch.Tensor:
    k = torch.arange(n, dtype=torch.float32)
    m = torch.cos(math.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * n)) * math.sqrt(2 / n)
    m[0] /= math.sqrt(2)
    return m


_DCT = _dct_matrix()


def block_dct(plane: torch.Tensor) -> torch.Tensor:
    """[B, 1, H, W] -> coefficients of its 8x8 blocks [B, nblocks, 8, 8] (edge-padded to multiples of 8)."""
    h, w = plane.shape[-2:]
    plane = F.pad(plane, (0, -w % 8, 0, -h % 8), mode="replicate")
    blocks = F.unfold(plane, 8, stride=8).transpose(1, 2).reshape(plane.shape[0], -1, 8, 8)
    d = _DCT.to(plane.device, plane.dtype)
    return d @ blocks @ d.T


@dataclass(frozen=True)
class RateProxy:
    step_scale: float = 2.0  # quantiser step (on 0..255 samples) at quality 100
    step_slope: float = 3.5  # log-step increase from quality 100 to quality 0
    bits_scale: float = 1.0
    chroma_weight: float = 1.0

    def step(self, quality: torch.Tensor) -> torch.Tensor:
        return self.step_scale * torch.exp(self.step_slope * (100.0 - quality) / 100.0) / 255.0

    def bits(self, x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
        """Estimated bits of each image in a batch [B] (x in [0, 1], [B, 3, H, W]; quality [B])."""
        ycc = torch.einsum("ij,bjhw->bihw", _YCC.to(x.device, x.dtype), x)
        step = self.step(quality.to(x.dtype)).view(-1, 1, 1, 1)
        y = block_dct(ycc[:, :1])
        c = block_dct(F.avg_pool2d(ycc[:, 1:], 2).flatten(0, 1).unsqueeze(1)).view(x.shape[0], -1, 8, 8)
        luma = torch.log2(1 + y.abs() / step).flatten(1).sum(1)
        chroma = torch.log2(1 + c.abs() / step).flatten(1).sum(1)
        return self.bits_scale * (luma + self.chroma_weight * chroma)

    def bpp(self, x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
        return self.bits(x, quality) / (x.shape[-2] * x.shape[-1])


DEFAULT_PROXY_FILE = Path(__file__).with_name("rate_proxy.json")


@functools.cache
def load_proxy(path: Path = DEFAULT_PROXY_FILE) -> RateProxy:
    return RateProxy(**json.loads(path.read_text())["proxy"]) if path.exists() else RateProxy()


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def _samples(files: list[Path], count: int, crop: int, seed: int) -> list[np.ndarray]:
    from ..images import load_rgb

    rng = random.Random(seed)
    out = []
    for f in rng.sample(files, min(count, len(files))):
        im = np.asarray(load_rgb(f))
        h, w = im.shape[:2]
        if min(h, w) < crop:
            continue
        t, left = rng.randrange(h - crop + 1), rng.randrange(w - crop + 1)
        out.append(np.ascontiguousarray(im[t : t + crop, left : left + crop]))
    return out


def measure(proxy: RateProxy, crops: list[np.ndarray], qualities: list[int]) -> dict[str, float]:
    """Spearman of proxy vs real AVIF bytes over all (crop, quality) pairs, within each quality
    (ranking images), and across pre-edit strengths of the same image (blurred copies: what the
    pre-editor's gradient has to get right)."""
    from .avif import avif_roundtrip

    real, est, within, strength = [], [], [], []
    for q in qualities:
        r_q, e_q = [], []
        for im in crops:
            x = torch.from_numpy(im).permute(2, 0, 1)[None].float() / 255
            e_q.append(proxy.bits(x, torch.tensor([float(q)])).item() / 8)
            r_q.append(avif_roundtrip(im, q)[1])
        within.append(_spearman(np.array(r_q), np.array(e_q)))
        real += r_q
        est += e_q
    from PIL import Image, ImageFilter

    for im in crops[:24]:
        r_s, e_s = [], []
        for radius in (0, 0.6, 1.2, 2.0, 3.0):
            b = np.asarray(Image.fromarray(im).filter(ImageFilter.GaussianBlur(radius))) if radius else im
            x = torch.from_numpy(np.array(b, copy=True)).permute(2, 0, 1)[None].float() / 255
            e_s.append(proxy.bits(x, torch.tensor([55.0])).item())
            r_s.append(avif_roundtrip(b, 55)[1])
        strength.append(_spearman(np.array(r_s), np.array(e_s)))
    real_a, est_a = np.array(real, float), np.array(est, float)
    return {
        "spearman_all": round(_spearman(real_a, est_a), 4),
        "spearman_within_quality_mean": round(float(np.mean(within)), 4),
        "spearman_blur_strength_mean": round(float(np.mean(strength)), 4),
        "median_ratio_est_over_real": round(float(np.median(est_a / real_a)), 3),
        "pairs": len(real),
    }


def fit(crops: list[np.ndarray], qualities: list[int]) -> RateProxy:
    """Grid over the step constants (log-space least squares on bytes), then the bits multiplier."""
    from .avif import avif_roundtrip

    xs = [torch.from_numpy(im).permute(2, 0, 1)[None].float() / 255 for im in crops]
    real = np.array([[avif_roundtrip(im, q)[1] * 8 for q in qualities] for im in crops], float)
    best: tuple[float, RateProxy] | None = None
    for scale in (0.25, 0.5, 1.0, 2.0):
        for slope in (4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0):
            for cw in (0.5, 1.0):
                p = RateProxy(scale, slope, 1.0, cw)
                est = np.array([[p.bits(x, torch.tensor([float(q)])).item() for q in qualities] for x in xs])
                r = np.log(real) - np.log(est.clip(1))
                err = float(np.var(r))  # a constant offset is absorbed by bits_scale
                if best is None or err < best[0]:
                    best = (err, RateProxy(scale, slope, float(np.exp(np.mean(r))), cw))
    assert best is not None
    return best[1]


def main() -> None:
    from ..data import training_files, validation_split

    ap = argparse.ArgumentParser(description="Fit and check the AVIF rate proxy.")
    ap.add_argument("--data-root", default="../shared/data")
    ap.add_argument("--fit", action="store_true", help="fit the constants on training crops and save them")
    ap.add_argument("--crops", type=int, default=48)
    args = ap.parse_args()
    qualities = [15, 25, 35, 45, 55, 65, 75, 85]
    proxy = load_proxy()
    report: dict[str, object] = {}
    if args.fit:
        train = _samples(training_files(args.data_root), args.crops, 192, seed=1)
        proxy = fit(train, qualities)
        report["fitted_on"] = f"{len(train)} random 192x192 training crops x {len(qualities)} qualities"
    val = _samples(validation_split(Path(args.data_root) / "imagenet-dev"), 100, 192, seed=2)
    report["validation"] = measure(proxy, val, qualities)
    report["proxy"] = asdict(proxy)
    print(json.dumps(report, indent=2))
    if args.fit:
        DEFAULT_PROXY_FILE.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
