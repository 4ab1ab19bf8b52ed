"""Generic teacher from any ONNX vision encoder (e.g. an LVLM's vision tower), via onnx2torch.

Contract for the ONNX file: one image input [N, 3, H, W]; output 0 is the score vector used by the
rank loss (class logits, or an embedding), every further output is a token map, either [N, C, H, W]
(CNN) or [N, T, C] (ViT). The reconstruction is resized to `input_size` and normalised with
`mean`/`std` exactly as for the original, so the codec is trained for what *that* encoder sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import onnx
import torch
import torch.nn.functional as F
from onnx2torch import convert


class OnnxTeacher(torch.nn.Module):
    def __init__(
        self,
        path: str | Path,
        input_size: int | None = None,
        mean: Sequence[float] = (0.0, 0.0, 0.0),
        std: Sequence[float] = (1.0, 1.0, 1.0),
    ) -> None:
        super().__init__()
        model = onnx.load(str(path))
        self.net = convert(model)
        self.num_outputs = len(model.graph.output)
        if input_size is None:  # take it from the graph when it is static
            dims = model.graph.input[0].type.tensor_type.shape.dim
            input_size = (dims[2].dim_value or None) if len(dims) == 4 else None
        self.input_size = input_size
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_size and tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        return (x - self.mean) / self.std

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        out = self.net(self._prepare(x))
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        scores = outs[0].flatten(1)
        tokens = []
        for t in outs[1:]:
            if t.dim() == 3:  # [N, T, C] -> [N, C, T, 1] so every token loss sees channels at dim 1
                t = t.transpose(1, 2).unsqueeze(-1)
            tokens.append(t)
        if not tokens:  # a score-only encoder: its output is the only token
            tokens = [scores[:, :, None, None]]
        return scores, tokens

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)[0]
