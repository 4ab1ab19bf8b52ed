"""The machine receivers: ImageNet classifiers and an embedding extractor, rebuilt in PyTorch from
their TFLite files (training/vlmpress_train/teachers). Each sees an image the way it was trained to
(shorter side resized, centre crop), so the original and every reconstruction are preprocessed
identically and only the codec differs.

- `mbv2`: MobileNetV2 1.0 @224 — the teacher the codec was trained against;
- `mbv1`: MobileNetV1 0.75 @192 — a receiver the codec has never seen;
- `embed`: MobileNetV1 1.0 @224 embedding extractor (1024-d) — a retrieval-style receiver.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from vlmpress_train.images import resize_center_crop
from vlmpress_train.teachers.tflite_graph import TFLiteClassifier


@dataclass(frozen=True)
class ReceiverSpec:
    name: str
    file: str
    short_side: int
    crop: int
    kind: str  # "classifier" or "embedding"


RECEIVERS = {
    "mbv2": ReceiverSpec("mbv2", "tf2_mobilenet_v2_1.0_224_ptq.tflite", 256, 224, "classifier"),
    "mbv1": ReceiverSpec("mbv1", "mobilenet_v1_0.75_192_quant.tflite", 219, 192, "classifier"),
    "embed": ReceiverSpec("embed", "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite", 256, 224, "embedding"),
}


class Receiver:
    def __init__(self, spec: ReceiverSpec, models_dir: Path) -> None:
        self.spec = spec
        self.net = TFLiteClassifier(models_dir / spec.file, tap_strides=()).eval()

    def _batch(self, images: list[np.ndarray]) -> torch.Tensor:
        crops = [
            np.asarray(resize_center_crop(Image.fromarray(im), self.spec.short_side, self.spec.crop), dtype=np.float32) / 255.0
            for im in images
        ]
        return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).contiguous()

    @torch.no_grad()
    def outputs(self, images: list[np.ndarray], batch: int = 32) -> np.ndarray:
        """Logits (classifiers, background at 0) or embeddings, one row per image."""
        rows = []
        for i in range(0, len(images), batch):
            y = self.net(self._batch(images[i : i + batch]))
            rows.append(y.reshape(y.shape[0], -1).numpy())
        return np.concatenate(rows)


def load_receivers(names: list[str], models_dir: Path) -> dict[str, Receiver]:
    unknown = [n for n in names if n not in RECEIVERS]
    if unknown:
        raise ValueError(f"unknown receiver(s) {unknown}; choose from {sorted(RECEIVERS)}")
    return {n: Receiver(RECEIVERS[n], models_dir) for n in names}
