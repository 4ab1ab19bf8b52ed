"""The real AV1 still codec in the training graph.

Pillow's libavif at speed 6 is the gateway's encoder setting (sharp effort 3 = libaom speed 6) and
gives the same bytes within about 1 % at the same quality (kodim05: 16,131 / 52,321 / 124,921
bytes at q25/55/85 here, 16,061 / 51,851 / 124,341 from sharp), so a quality learned here means
the same thing in the product.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

SPEED = 6


def avif_roundtrip(img: np.ndarray, quality: int, speed: int = SPEED) -> tuple[np.ndarray, int]:
    """Encode an HxWx3 uint8 image as a 4:2:0 AVIF and decode it: (reconstruction, bytes)."""
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="AVIF", quality=int(quality), speed=speed, subsampling="4:2:0")
    size = buf.tell()
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB")), size


def to_uint8_batch(x: torch.Tensor) -> np.ndarray:
    return (x.detach().clamp(0, 1) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


class RealAvif(torch.autograd.Function):
    """Forward: the real encoder and decoder, per image at its own quality. Backward: a Gaussian
    low-pass of the incoming gradient (sigma `grad_sigma` pixels; 0 = plain straight-through).

    Plain straight-through treats the codec as transparent, and then the receiver's gradient is
    dominated by faint high-frequency (adversarial) directions that the real encoder removes: measured
    on a training batch at q45, its norm was 12x the rate term's while its component along a blur was
    27x smaller. The codec's Jacobian is closer to a low-pass than to the identity."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, qualities: torch.Tensor, grad_sigma: float) -> torch.Tensor:  # type: ignore[override]
        ctx.grad_sigma = grad_sigma
        imgs = to_uint8_batch(x)
        out = np.stack([avif_roundtrip(im, int(q))[0] for im, q in zip(imgs, qualities.tolist())])
        return torch.from_numpy(out).to(x.device, x.dtype).permute(0, 3, 1, 2) / 255.0

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # type: ignore[override]
        from .model import gaussian_blur

        return gaussian_blur(grad, ctx.grad_sigma), None, None


def real_avif(x: torch.Tensor, qualities: torch.Tensor, grad_sigma: float = 0.0) -> torch.Tensor:
    return RealAvif.apply(x, qualities, grad_sigma)


def avif_bytes(x: torch.Tensor, qualities: list[int]) -> list[int]:
    """Real AVIF sizes of a batch (for rate-proxy checks and validation)."""
    return [avif_roundtrip(im, q)[1] for im, q in zip(to_uint8_batch(x), qualities)]
