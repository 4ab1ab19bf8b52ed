"""Training data: photos from the shared sets plus text rendered at training time, and the fixed
validation split of imagenet-dev that training never sees."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .images import list_images, load_rgb
from .text_render import render_text_image

PHOTO_SETS = ("imagenet-dev", "coco-mini/images", "cbsd68", "waterloo")


def validation_split(imagenet_dir: str | Path, count: int = 100) -> list[Path]:
    """The `count` imagenet-dev files with the smallest SHA-1 of their name: stable, spread over classes."""
    files = list_images(imagenet_dir)
    return sorted(files, key=lambda p: hashlib.sha1(p.name.encode()).hexdigest())[:count]


def training_files(data_root: str | Path, val_count: int = 100) -> list[Path]:
    root = Path(data_root)
    held_out = set(validation_split(root / "imagenet-dev", val_count))
    files: list[Path] = []
    for name in PHOTO_SETS:
        folder = root / name
        if folder.is_dir():
            files += [p for p in list_images(folder) if p not in held_out]
    return files


class TrainingImages(torch.utils.data.IterableDataset):
    """Endless stream of random crops. Photos are decoded once and kept (short side <= max_side)."""

    def __init__(
        self, files: list[Path], crop: int, text_fraction: float, seed: int, max_side: int = 320, fonts: list[str] | None = None
    ) -> None:
        super().__init__()
        self.crop = crop
        self.text_fraction = text_fraction
        self.seed = seed
        self.fonts = fonts
        self.photos: list[np.ndarray] = []
        for f in files:
            im = load_rgb(f)
            w, h = im.size
            s = max_side / min(w, h)
            if s < 1:  # big photos are stored downscaled: crops then hold whole objects, as the receiver sees them
                im = im.resize((max(crop, round(w * s)), max(crop, round(h * s))), Image.BICUBIC)
            if min(im.size) >= crop:
                self.photos.append(np.asarray(im))

    def sample(self, rng: random.Random) -> tuple[torch.Tensor, bool]:
        c = self.crop
        if rng.random() < self.text_fraction:
            arr = np.asarray(render_text_image(rng, c, c, self.fonts))
            is_text = True
        else:
            photo = self.photos[rng.randrange(len(self.photos))]
            h, w = photo.shape[:2]
            top, left = rng.randrange(h - c + 1), rng.randrange(w - c + 1)
            arr = photo[top : top + c, left : left + c]
            if rng.random() < 0.5:
                arr = arr[:, ::-1]
            is_text = False
        t = torch.from_numpy(np.array(arr, copy=True)).permute(2, 0, 1).float() / 255.0
        return t, is_text

    def __iter__(self):  # type: ignore[override]
        info = torch.utils.data.get_worker_info()
        rng = random.Random(self.seed * 1000 + (info.id if info else 0))
        while True:
            yield self.sample(rng)
