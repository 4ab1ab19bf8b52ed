"""Image loading and the receivers' standard preprocessing (shared by training, eval and tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def load_rgb(path: str | Path) -> Image.Image:
    """Open any image as 8-bit RGB with its EXIF orientation applied."""
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        return im.convert("RGB")


def resize_center_crop(im: Image.Image, short_side: int, crop: int) -> Image.Image:
    """Shorter side to `short_side` (bilinear), then a centred `crop`x`crop` square."""
    w, h = im.size
    s = short_side / min(w, h)
    im = im.resize((max(crop, round(w * s)), max(crop, round(h * s))), Image.BILINEAR)
    w, h = im.size
    left, top = (w - crop) // 2, (h - crop) // 2
    return im.crop((left, top, left + crop, top + crop))


def to_tensor(im: Image.Image) -> torch.Tensor:
    """PIL RGB -> float tensor [1, 3, H, W] in [0, 1]."""
    a = np.asarray(im, dtype=np.float32) / 255.0
    return torch.from_numpy(a).permute(2, 0, 1).unsqueeze(0).contiguous()


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Float tensor [1, 3, H, W] in [0, 1] -> uint8 HWC array (round half to even, clamped)."""
    return (x.clamp(0, 1)[0].permute(1, 2, 0) * 255.0).round().to(torch.uint8).numpy()


def list_images(folder: str | Path) -> list[Path]:
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def imagenet_label(path: str | Path, synsets: list[str]) -> int:
    """True class of an imagenet-dev file (`n01440764_tench.JPEG`) as an index of a 1001-way head
    (background at 0, class i at i + 1)."""
    return synsets.index(Path(path).name.split("_")[0]) + 1
