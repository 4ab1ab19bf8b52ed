"""The no-training baseline: where the teacher's tokens need detail, keep it; elsewhere, smooth.

The map is the gradient of the teacher's token distortion with respect to a per-pixel mix between a
blurred copy (mask 0) and the image (mask 1), taken at the all-blurred point: it says where putting
the detail back reduces the distortion the most. The whole image is shown to the teacher (shorter
side 224, no centre crop), so the map follows content, never position. The edit then blends each
pixel between the image and its blur by the smoothed, normalised map.

It needs the receiver's gradients, so it runs here (training and evaluation), not in the gateway;
it is the bar the learned pre-editor has to clear.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..losses import token_distortion
from .model import gaussian_blur


@dataclass(frozen=True)
class ImportanceSettings:
    teacher_side: int = 224  # shorter side the teacher sees
    probe_sigma: float = 2.0  # blur of the probe at the teacher's scale
    map_sigma: float = 6.0  # smoothing of the map at the teacher's scale (about one 16-px token)
    keep_quantile: float = 0.6  # map values at or above this quantile keep all their detail
    edit_sigma: float = 1.5  # blur of the unimportant regions, in image pixels
    floor: float = 0.0  # the least detail kept anywhere


def importance_map(teacher: torch.nn.Module, x: torch.Tensor, s: ImportanceSettings = ImportanceSettings()) -> torch.Tensor:
    """x: [1, 3, H, W] in [0, 1] -> map [1, 1, H, W] in [0, 1] (1 = keep the detail)."""
    h, w = x.shape[-2:]
    scale = s.teacher_side / min(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    small = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    blurred = gaussian_blur(small, s.probe_sigma)
    mask = torch.zeros(1, 1, *size, requires_grad=True)
    with torch.no_grad():
        _, toks = teacher.features(small)
    _, toks_mix = teacher.features(blurred + mask * (small - blurred))
    (grad,) = torch.autograd.grad(token_distortion(toks_mix, toks).sum(), mask)
    imp = gaussian_blur((-grad).clamp_min(0), s.map_sigma)
    top = torch.quantile(imp.flatten(), s.keep_quantile).clamp_min(1e-12)
    imp = (imp / top).clamp(0, 1)
    return F.interpolate(imp, size=(h, w), mode="bilinear", align_corners=False).clamp(0, 1)


def edit_with_map(x: torch.Tensor, imp: torch.Tensor, s: ImportanceSettings = ImportanceSettings()) -> torch.Tensor:
    keep = s.floor + (1 - s.floor) * imp
    return keep * x + (1 - keep) * gaussian_blur(x, s.edit_sigma)


def importance_edit(teacher: torch.nn.Module, img: np.ndarray, s: ImportanceSettings = ImportanceSettings()) -> np.ndarray:
    """HxWx3 uint8 -> the edited HxWx3 uint8 image (the same for every quality)."""
    x = torch.from_numpy(np.array(img, copy=True)).permute(2, 0, 1)[None].float() / 255.0
    imp = importance_map(teacher, x, s)
    with torch.no_grad():
        e = edit_with_map(x, imp, s)
    return (e.clamp(0, 1)[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
