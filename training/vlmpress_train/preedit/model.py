"""The pre-editor: a small fully convolutional U-Net that returns an edited image for a given AVIF
quality. It adds a residual to its input (zero at initialisation: the identity is the start), so
whatever it removes was learned to be worth its bytes. Any input size; about 0.3 M parameters, most
of the work at 1/4 and 1/8 resolution where the context for "what matters" is."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

QUALITY_SCALE = 100.0  # quality is given on AVIF's 0..100 scale


class ResBlock(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.a = nn.Conv2d(ch, ch, 3, padding=1)
        self.b = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.b(F.leaky_relu(self.a(x), 0.1))


class PreEditor(nn.Module):
    """`mode` "blend": the network only decides, per pixel, how much of the image to replace by
    Gaussian-blurred copies of itself (softmax weights over the image and one copy per sigma), so
    every edit is a spatially varying smoothing and nothing can be added. "residual": it adds a free
    residual (any edit, including ones that only fool the teacher)."""

    def __init__(self, width: int = 16, mode: str = "blend", sigmas: tuple[float, ...] = (1.0, 2.5)) -> None:
        super().__init__()
        if mode not in ("blend", "residual"):
            raise ValueError(f"unknown pre-editor mode {mode}")
        self.mode = mode
        self.sigmas = tuple(sigmas)
        for i, sigma in enumerate(self.sigmas):
            self.register_buffer(f"kernel{i}", gaussian_kernel(sigma), persistent=False)
        w1, w2, w3, w4 = width, 2 * width, 3 * width, 4 * width
        self.stem = nn.Conv2d(4, w1, 3, padding=1)
        self.down1 = nn.Sequential(nn.Conv2d(w1, w2, 3, stride=2, padding=1), nn.LeakyReLU(0.1))
        self.down2 = nn.Sequential(nn.Conv2d(w2, w3, 3, stride=2, padding=1), nn.LeakyReLU(0.1), ResBlock(w3))
        self.down3 = nn.Sequential(nn.Conv2d(w3 + 1, w4, 3, stride=2, padding=1), nn.LeakyReLU(0.1), ResBlock(w4), ResBlock(w4))
        self.up3 = nn.Conv2d(w4 + w3, w3, 3, padding=1)
        # full and half resolution hold most pixels: 1x1 merges there keep the cost per pixel low
        self.up2 = nn.Conv2d(w3 + w2, w2, 1)
        self.up1 = nn.Conv2d(w2 + w1, w1, 1)
        self.head = nn.Conv2d(w1, 3 if mode == "residual" else 1 + len(self.sigmas), 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        if mode == "blend":
            with torch.no_grad():
                self.head.bias[0] = 4.0  # start close to the identity (96 % of the image kept)

    @staticmethod
    def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
        """x: RGB in [0, 1], [B, 3, H, W]; quality: [B] on 0..100. Returns the edited image in [0, 1]."""
        q = (quality.to(x.dtype) / QUALITY_SCALE).view(-1, 1, 1, 1)
        s0 = F.leaky_relu(self.stem(torch.cat([x, q.expand(-1, 1, *x.shape[-2:])], 1)), 0.1)
        s1 = self.down1(s0)
        s2 = self.down2(s1)
        s3 = self.down3(torch.cat([s2, q.expand(-1, 1, *s2.shape[-2:])], 1))
        u = F.leaky_relu(self.up3(torch.cat([self._up(s3, s2), s2], 1)), 0.1)
        u = F.leaky_relu(self.up2(torch.cat([self._up(u, s1), s1], 1)), 0.1)
        u = F.leaky_relu(self.up1(torch.cat([self._up(u, s0), s0], 1)), 0.1)
        if self.mode == "residual":
            return (x + self.head(u)).clamp(0, 1)
        w = torch.softmax(self.head(u), 1)
        out = w[:, :1] * x
        for i in range(len(self.sigmas)):
            out = out + w[:, i + 1 : i + 2] * blur_with(x, getattr(self, f"kernel{i}"))
        return out


class Restorer(nn.Module):
    """The restoration post-filter: residual blocks at half resolution on the space-to-depth image
    (every full-resolution pixel reaches the 3x3 convolutions, unlike the pre-editor's U-Net, whose
    full-resolution path is 1x1: it could smooth, but not put back edges and texture), each block's
    features scaled and shifted by the quality (FiLM), and a residual added to the decoded image
    (zero at initialisation: the identity is the start). Any input size (odd sides are padded)."""

    def __init__(self, width: int = 32, blocks: int = 6) -> None:
        super().__init__()
        self.width, self.nblocks = width, blocks
        self.stem = nn.Conv2d(12 + 1, width, 3, padding=1)
        self.blocks = nn.ModuleList(ResBlock(width) for _ in range(blocks))
        self.film = nn.Linear(1, 2 * width * blocks)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)
        self.head = nn.Conv2d(width, 12, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
        """x: decoded RGB in [0, 1], [B, 3, H, W]; quality: [B], the AVIF quality it was coded at."""
        h, w = x.shape[-2], x.shape[-1]
        padded = F.pad(x, (0, w % 2, 0, h % 2), mode="replicate")
        z = F.pixel_unshuffle(padded, 2)
        q = (quality.to(x.dtype) / QUALITY_SCALE).view(-1, 1)
        f = self.film(q).view(-1, self.nblocks, 2, self.width, 1, 1)
        u = F.leaky_relu(self.stem(torch.cat([z, q.view(-1, 1, 1, 1).expand(-1, 1, *z.shape[-2:])], 1)), 0.1)
        for i, block in enumerate(self.blocks):
            u = block(u * (1 + f[:, i, 0]) + f[:, i, 1])
        r = F.pixel_shuffle(self.head(u), 2)[..., :h, :w]
        return (x + r).clamp(0, 1)


def build_network(config: dict) -> nn.Module:
    """The network a training config describes: the pre-editor, or (arch "restorer") the post-filter."""
    if config.get("arch", "preeditor") == "restorer":
        return Restorer(config["width"], config.get("blocks", 6))
    return PreEditor(config["width"], config.get("editor_mode", "residual"), tuple(config.get("blur_sigmas", (1.0, 2.5))))


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """Normalised 1-D Gaussian taps out to 3 sigma."""
    r = max(1, int(round(3 * sigma)))
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def blur_with(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Separable blur of every channel of [B, C, H, W] with 1-D taps, edges replicated."""
    r = kernel.shape[-1] // 2
    c = x.shape[1]
    x = F.pad(x, (r, r, r, r), mode="replicate")
    x = F.conv2d(x, kernel.to(x.dtype).view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, kernel.to(x.dtype).view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    return x if sigma <= 0 else blur_with(x, gaussian_kernel(sigma).to(x.device))


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
