"""Export the pre-editor and/or the restoration network to a semantic-AVIF model package read by
the gateway:

    python -m vlmpress_train.preedit.export --restoration runs/restore-cpu/last.pt --out models/vlmp-semantic-avif-v2
    python -m vlmpress_train.preedit.export --preeditor training/checkpoints/preeditor-v1.pt --out /tmp/preedit-v1

Writes <role>.onnx per network (image [1,3,H,W] in [0,1] and AVIF quality [1] -> image, any H and W),
<role>.pt (weights and config, for re-export and the parity fixture) and manifest.json (format
"vlmpress-editor", schema models/editor-manifest.schema.json). The package id is the SHA-256 of one
`<role>:<hex digest>` line per graph in the order of `graphs`, so it changes exactly when a graph or
its role does; a bitstream names the package by the first 8 bytes of that id.
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
from .model import build_network, parameter_count

FORMAT = "vlmpress-editor"
FORMAT_VERSION = 1


def load_editor(checkpoint: str | Path) -> torch.nn.Module:
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    editor = build_network(state["config"])
    editor.load_state_dict(state["model"])
    return editor.eval()


class _Graph(torch.nn.Module):
    def __init__(self, editor: torch.nn.Module) -> None:
        super().__init__()
        self.editor = editor

    def forward(self, image: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
        return self.editor(image, quality)


def export_graph(editor: torch.nn.Module, path: Path, output: str) -> float:
    """Write the ONNX graph; returns the largest difference from PyTorch on odd-sized checks."""
    torch.onnx.export(
        _Graph(editor),
        (torch.rand(1, 3, 64, 96), torch.tensor([50.0])),
        str(path),
        input_names=["image", "quality"],
        output_names=[output],
        dynamic_axes={"image": {2: "height", 3: "width"}, output: {2: "height", 3: "width"}},
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


#: what each role's graph takes and returns, as the manifest describes it
ROLES = {
    "preeditor": ("edited", "the AVIF quality the edit is for", "the image to encode"),
    "restoration": ("restored", "the AVIF quality the image was coded at", "the decoded AVIF"),
}


def export_package(
    checkpoints: dict[str, str | Path], out_dir: str | Path, name: str, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One graph per role in `checkpoints` ("preeditor", "restoration"), in that order."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    graphs: dict[str, dict[str, str]] = {}
    described: dict[str, Any] = {}
    for role in ROLES:
        if role not in checkpoints:
            continue
        output, quality, image = ROLES[role]
        editor = load_editor(checkpoints[role])
        state = torch.load(checkpoints[role], map_location="cpu", weights_only=False)
        # the weights and config only (no optimiser state): what re-export and the parity test need
        torch.save({"model": editor.state_dict(), "config": state["config"], "step": state.get("step")}, out / f"{role}.pt")
        worst = export_graph(editor, out / f"{role}.onnx", output)
        if worst > 1e-4:
            raise RuntimeError(f"{role}: ONNX and PyTorch differ by {worst}")
        graphs[role] = {"file": f"{role}.onnx", "sha256": sha256_file(out / f"{role}.onnx")}
        described[role] = {
            "inputs": {"image": f"float32 [1,3,H,W] RGB in [0,1], {image}", "quality": f"float32 [1], {quality}"},
            "outputs": {output: "float32 [1,3,H,W] RGB in [0,1]"},
            "parameters": parameter_count(editor),
            "onnx_max_abs_diff_vs_torch": worst,
        }
    if not graphs:
        raise ValueError("an editor package needs a pre-editor or a restoration checkpoint")
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "id": package_id(graphs),
        "core": "avif",
        "opset": OPSET,
        "quality": {"scale": "avif", "min": 1, "max": 100},
        "graphs": graphs,
        **described,
        **(extra or {}),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def write_golden(package: Path, out: Path, image: Path, box: tuple[int, int, int, int] = (200, 100, 120, 90), quality: int = 35) -> None:
    """The runtime's parity fixture: per graph of the package, an input crop and what PyTorch makes of
    it at `quality`. The restoration's input is the crop through real AVIF at that quality."""
    from PIL import Image

    from ..images import load_rgb, to_tensor, to_uint8
    from .avif import real_avif

    manifest = json.loads((package / "manifest.json").read_text())
    left, top, w, h = box
    crop = to_tensor(load_rgb(image).crop((left, top, left + w, top + h)))
    q = torch.tensor([float(quality)])
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, dict[str, str]] = {}
    for role in manifest["graphs"]:
        editor = load_editor(package / f"{role}.pt")
        with torch.no_grad():
            given = real_avif(crop, q) if role == "restoration" else crop
            made = editor(given, q)
        files[role] = {"input": f"{role}-input.png", "output": f"{role}-output.png"}
        Image.fromarray(to_uint8(given)).save(out / files[role]["input"])
        Image.fromarray(to_uint8(made)).save(out / files[role]["output"])
    meta = {"quality": quality, "package_id": manifest["id"], "source": f"{image.name} crop {box}", "graphs": files}
    (out / "golden.json").write_text(json.dumps(meta, indent=1) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description="Export the pre-editor and/or the restoration network to a semantic-AVIF model package.")
    ap.add_argument("--preeditor", help="pre-editor checkpoint (mode: preedit)")
    ap.add_argument("--restoration", help="restoration checkpoint (mode: restore)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--name", default=None, help="package name (default: the output folder's name)")
    ap.add_argument(
        "--supersedes",
        nargs="*",
        default=[],
        help="names of the packages this one replaces: kept to decode their bitstreams, no longer the default",
    )
    ap.add_argument("--golden", type=Path, help="also write the runtime parity fixture here (test/fixtures/editor-golden/<package>)")
    ap.add_argument("--golden-image", type=Path, default=Path("../shared/data/kodak/kodim23.png"))
    args = ap.parse_args()
    roles = {role: getattr(args, role) for role in ROLES if getattr(args, role)}
    if not roles:
        ap.error("give --preeditor, --restoration or both")
    m = export_package(roles, args.out, args.name or Path(args.out).name, {"supersedes": args.supersedes} if args.supersedes else None)
    if args.golden:
        write_golden(Path(args.out), args.golden, args.golden_image)
    print(json.dumps({k: m[k] for k in ("name", "id", "graphs")}, indent=1))


if __name__ == "__main__":
    main()
