"""Export the pre-editor to the semantic-AVIF model package read by the gateway:

    python -m vlmpress_train.preedit.export --checkpoint runs/preedit-cpu/last.pt --out models/vlmp-semantic-avif-v1

Writes preeditor.onnx (image [1,3,H,W] in [0,1] and AVIF quality [1] -> edited image, any H and W)
and manifest.json (format "vlmpress-editor", schema models/editor-manifest.schema.json). The package
id is the SHA-256 of one `<role>:<hex digest>` line per graph in the order of `graphs`, so it changes
exactly when a graph or its role does; a bitstream names the package by the first 8 bytes of that id.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch

from ..export import OPSET, sha256_file
from .model import PreEditor, parameter_count

FORMAT = "vlmpress-editor"
FORMAT_VERSION = 1


def load_editor(checkpoint: str | Path) -> PreEditor:
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    c = state["config"]
    editor = PreEditor(c["width"], c.get("editor_mode", "residual"), tuple(c.get("blur_sigmas", (1.0, 2.5))))
    editor.load_state_dict(state["model"])
    return editor.eval()


class _Graph(torch.nn.Module):
    def __init__(self, editor: PreEditor) -> None:
        super().__init__()
        self.editor = editor

    def forward(self, image: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
        return self.editor(image, quality)


def export_graph(editor: PreEditor, path: Path) -> float:
    """Write the ONNX graph; returns the largest difference from PyTorch on odd-sized checks."""
    torch.onnx.export(
        _Graph(editor),
        (torch.rand(1, 3, 64, 96), torch.tensor([50.0])),
        str(path),
        input_names=["image", "quality"],
        output_names=["edited"],
        dynamic_axes={"image": {2: "height", 3: "width"}, "edited": {2: "height", 3: "width"}},
        opset_version=OPSET,
        dynamo=False,
        do_constant_folding=True,
    )
    onnx.checker.check_model(onnx.load(str(path)))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for h, w, q in ((37, 53, 20.0), (128, 200, 55.0), (375, 500, 85.0)):
        x = torch.rand(1, 3, h, w)
        with torch.no_grad():
            ref = editor(x, torch.tensor([q])).numpy()
        got = sess.run(None, {"image": x.numpy(), "quality": np.array([q], np.float32)})[0]
        worst = max(worst, float(np.abs(got - ref).max()))
    return worst


def package_id(graphs: dict[str, dict[str, str]]) -> str:
    return hashlib.sha256("".join(f"{role}:{g['sha256']}\n" for role, g in graphs.items()).encode()).hexdigest()


def export_package(checkpoint: str | Path, out_dir: str | Path, name: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    editor = load_editor(checkpoint)
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    # the weights and config only (no optimiser state): what re-export and the parity test need
    torch.save({"model": editor.state_dict(), "config": state["config"], "step": state.get("step")}, out / "preeditor.pt")
    worst = export_graph(editor, out / "preeditor.onnx")
    if worst > 1e-4:
        raise RuntimeError(f"ONNX and PyTorch differ by {worst}")
    graphs = {"preeditor": {"file": "preeditor.onnx", "sha256": sha256_file(out / "preeditor.onnx")}}
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "id": package_id(graphs),
        "core": "avif",
        "opset": OPSET,
        "quality": {"scale": "avif", "min": 1, "max": 100},
        "graphs": graphs,
        "preeditor": {
            "inputs": {"image": "float32 [1,3,H,W] RGB in [0,1]", "quality": "float32 [1], the AVIF quality the edit is for"},
            "outputs": {"edited": "float32 [1,3,H,W] RGB in [0,1]"},
            "parameters": parameter_count(editor),
            "onnx_max_abs_diff_vs_torch": worst,
        },
        **(extra or {}),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def write_golden(package: Path, out: Path, image: Path, box: tuple[int, int, int, int] = (200, 100, 120, 90), quality: int = 35) -> None:
    """A fixture for the runtime's parity test: a crop, the PyTorch edit of it, and the quality."""
    from PIL import Image

    from ..images import load_rgb, to_tensor, to_uint8

    editor = load_editor(package / "preeditor.pt")
    left, top, w, h = box
    crop = load_rgb(image).crop((left, top, left + w, top + h))
    with torch.no_grad():
        edited = editor(to_tensor(crop), torch.tensor([float(quality)]))
    out.mkdir(parents=True, exist_ok=True)
    crop.save(out / "input.png")
    Image.fromarray(to_uint8(edited)).save(out / "edited.png")
    manifest = json.loads((package / "manifest.json").read_text())
    meta = {"quality": quality, "package_id": manifest["id"], "source": f"{image.name} crop {box}"}
    (out / "golden.json").write_text(json.dumps(meta, indent=1) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description="Export the pre-editor to a semantic-AVIF model package.")
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--name", default=None, help="package name (default: the output folder's name)")
    ap.add_argument("--golden", type=Path, help="also write the runtime parity fixture here (test/fixtures/preedit-golden)")
    ap.add_argument("--golden-image", type=Path, default=Path("../shared/data/kodak/kodim23.png"))
    args = ap.parse_args()
    m = export_package(args.checkpoint, args.out, args.name or Path(args.out).name)
    if args.golden:
        write_golden(Path(args.out), args.golden, args.golden_image)
    print(json.dumps({k: m[k] for k in ("name", "id", "graphs")}, indent=1))


if __name__ == "__main__":
    main()
