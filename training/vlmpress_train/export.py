"""Export a trained checkpoint to the model package read by the TypeScript runtime.

    python -m vlmpress_train.export --checkpoint runs/cpu/last.pt --out models/vlmp-mbv2-small

Writes encoder.onnx, entropy.onnx (pure integer), decoder.onnx, entropy_tables.json and
manifest.json (format in docs/model-format.md, schema in models/manifest.schema.json).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from .codec.entropy import CDF_PRECISION, gaussian_pmf_tables, quantize_pmf
from .codec.int_hyper import MEAN_DENOM, Z_CLIP, IntLayer, export_integer_layers
from .codec.model import PAD_MULTIPLE, CodecConfig, VariableRateCodec

OPSET = 17
FORMAT_VERSION = 1


class EncoderGraph(torch.nn.Module):
    """image [N,3,H,W] in [0,1] (H, W multiples of 16), quality [1] -> gained y, rounded/clipped z."""

    def __init__(self, model: VariableRateCodec) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor, quality: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _, y, z = self.model.encode_latents(image, quality)
        z_hat = torch.clamp(torch.round(z), -Z_CLIP, Z_CLIP).to(torch.int32)
        return y, z_hat


class DecoderGraph(torch.nn.Module):
    """y_hat [N,M,h,w] (dequantized, gained domain), quality [1] -> image [N,3,16h,16w] in [0,1]."""

    def __init__(self, model: VariableRateCodec) -> None:
        super().__init__()
        self.model = model

    def forward(self, y_hat: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
        return self.model.synthesize(y_hat, quality).clamp(0.0, 1.0)


def load_checkpoint(path: str | Path) -> VariableRateCodec:
    state = torch.load(path, map_location="cpu", weights_only=False)
    cfg = CodecConfig(**state["config"]["codec"]) if "config" in state else CodecConfig()
    model = VariableRateCodec(cfg)
    model.load_state_dict(state["model"])
    return model.eval()


def _export_torch(
    module: torch.nn.Module,
    args: tuple[torch.Tensor, ...],
    path: Path,
    inputs: list[str],
    outputs: list[str],
    dynamic: dict[str, dict[int, str]],
) -> None:
    torch.onnx.export(
        module,
        args,
        str(path),
        input_names=inputs,
        output_names=outputs,
        dynamic_axes=dynamic,
        opset_version=OPSET,
        dynamo=False,
        do_constant_folding=True,
    )
    onnx.checker.check_model(onnx.load(str(path)))


def _const(name: str, arr: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(arr, name)


def build_entropy_graph(layers: dict[str, IntLayer], z_channels: int) -> onnx.ModelProto:
    """Integer-only ONNX graph: z_hat int32 -> (mean_q int32, scale_index int32), 4x resolution."""
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = [
        _const("z_lo", np.array(-Z_CLIP, np.int32)),
        _const("z_hi", np.array(Z_CLIP, np.int32)),
        _const("z_zp_add", np.array(128, np.int32)),
        _const("zp128", np.array(128, np.uint8)),
        _const("zp0", np.array(0, np.uint8)),
        _const("wzp", np.array(0, np.int8)),
    ]
    nodes += [
        helper.make_node("Clip", ["z_hat", "z_lo", "z_hi"], ["z_c"]),
        helper.make_node("Add", ["z_c", "z_zp_add"], ["z_s"]),
        helper.make_node("Cast", ["z_s"], ["a0"], to=TensorProto.UINT8),
    ]

    def conv_requant(name: str, x: str, x_zp: str, layer: IntLayer, out_type: int) -> str:
        inits.extend(
            [
                _const(f"{name}_w", layer.weight.astype(np.int8)),
                _const(f"{name}_b", layer.bias.astype(np.int32).reshape(1, -1, 1, 1)),
                _const(f"{name}_m", layer.multiplier.astype(np.int64).reshape(1, -1, 1, 1)),
                _const(f"{name}_half", np.array((1 << layer.shift) >> 1, np.int64)),
                _const(f"{name}_div", np.array(1 << layer.shift, np.int64)),
                _const(f"{name}_lo", np.array(layer.clip_lo, np.int64)),
                _const(f"{name}_hi", np.array(layer.clip_hi, np.int64)),
            ]
        )
        # floor((acc * m + half) / 2^S) computed as (v - mod(v, 2^S)) / 2^S: exact for negative v too
        nodes.extend(
            [
                helper.make_node("ConvInteger", [x, f"{name}_w", x_zp, "wzp"], [f"{name}_acc"], pads=[1, 1, 1, 1]),
                helper.make_node("Add", [f"{name}_acc", f"{name}_b"], [f"{name}_accb"]),
                helper.make_node("Cast", [f"{name}_accb"], [f"{name}_acc64"], to=TensorProto.INT64),
                helper.make_node("Mul", [f"{name}_acc64", f"{name}_m"], [f"{name}_prod"]),
                helper.make_node("Add", [f"{name}_prod", f"{name}_half"], [f"{name}_v"]),
                helper.make_node("Mod", [f"{name}_v", f"{name}_div"], [f"{name}_rem"], fmod=0),
                helper.make_node("Sub", [f"{name}_v", f"{name}_rem"], [f"{name}_vf"]),
                helper.make_node("Div", [f"{name}_vf", f"{name}_div"], [f"{name}_q"]),
                helper.make_node("Clip", [f"{name}_q", f"{name}_lo", f"{name}_hi"], [f"{name}_c"]),
                helper.make_node("Cast", [f"{name}_c"], [f"{name}_out"], to=out_type),
            ]
        )
        return f"{name}_out"

    a = conv_requant("l1", "a0", "zp128", layers["conv1"], TensorProto.UINT8)
    nodes.append(helper.make_node("DepthToSpace", [a], ["a1"], blocksize=2, mode="CRD"))
    a = conv_requant("l2", "a1", "zp0", layers["conv2"], TensorProto.UINT8)
    nodes.append(helper.make_node("DepthToSpace", [a], ["a2"], blocksize=2, mode="CRD"))
    mean = conv_requant("head_mean", "a2", "zp0", layers["mean"], TensorProto.INT32)
    scale = conv_requant("head_scale", "a2", "zp0", layers["scale"], TensorProto.INT32)
    nodes += [helper.make_node("Identity", [mean], ["mean_q"]), helper.make_node("Identity", [scale], ["scale_index"])]
    graph = helper.make_graph(
        nodes,
        "vlmpress_entropy_parameters",
        [helper.make_tensor_value_info("z_hat", TensorProto.INT32, ["n", z_channels, "zh", "zw"])],
        [
            helper.make_tensor_value_info("mean_q", TensorProto.INT32, ["n", layers["mean"].weight.shape[0], "eh", "ew"]),
            helper.make_tensor_value_info("scale_index", TensorProto.INT32, ["n", layers["scale"].weight.shape[0], "eh", "ew"]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="vlmpress")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def build_tables(model: VariableRateCodec) -> dict[str, Any]:
    hyper = []
    for offset, pmf in model.z_prior.pmf_tables(Z_CLIP):
        hyper.append({"offset": offset, "freq": quantize_pmf(pmf).tolist()})
    gauss = []
    for offset, pmf in gaussian_pmf_tables(model.scales):
        gauss.append({"offset": offset, "freq": quantize_pmf(pmf).tolist()})
    return {
        "precision": CDF_PRECISION,
        "escape": {"symbol": "last", "value_code": "exp-golomb-0 of zigzag(value), raw bits"},
        "hyper": hyper,
        "gaussian": {"scales": [float(s) for s in model.scales], "tables": gauss},
    }


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export_package(checkpoint: str | Path, out_dir: str | Path, name: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = load_checkpoint(checkpoint)
    cfg = model.cfg
    torch.manual_seed(0)
    img = torch.rand(1, 3, 128, 192)
    q = torch.tensor([4.5])
    _export_torch(
        EncoderGraph(model),
        (img, q),
        out / "encoder.onnx",
        ["image", "quality"],
        ["y", "z_hat"],
        {"image": {0: "n", 2: "h", 3: "w"}, "y": {0: "n", 2: "yh", 3: "yw"}, "z_hat": {0: "n", 2: "zh", 3: "zw"}},
    )
    y = torch.randn(1, cfg.m, 8, 12)
    _export_torch(
        DecoderGraph(model),
        (y, q),
        out / "decoder.onnx",
        ["y_hat", "quality"],
        ["image"],
        {"y_hat": {0: "n", 2: "yh", 3: "yw"}, "image": {0: "n", 2: "h", 3: "w"}},
    )
    layers = export_integer_layers(model.h_s)
    onnx.save(build_entropy_graph(layers, cfg.nz), str(out / "entropy.onnx"))
    # weights for fine-tuning and parity tests; not part of the id (the runtime never reads them)
    torch.save({"model": model.state_dict(), "config": {"codec": dataclasses.asdict(cfg)}}, out / "checkpoint.pt")
    tables = build_tables(model)
    (out / "entropy_tables.json").write_text(json.dumps(tables, separators=(",", ":")))
    files = {k: f"{k}.onnx" for k in ("encoder", "entropy", "decoder")}
    hashes = {k: sha256_file(out / f) for k, f in files.items()}
    hashes["tables"] = sha256_file(out / "entropy_tables.json")
    model_id = hashlib.sha256("".join(hashes[k] for k in ("encoder", "entropy", "decoder", "tables")).encode()).hexdigest()
    manifest: dict[str, Any] = {
        "format": "vlmpress-model",
        "format_version": FORMAT_VERSION,
        "name": name,
        "id": model_id,
        "opset": OPSET,
        "quality": {
            "levels": cfg.levels,
            "min": 1,
            "max": cfg.levels,
            "default": 4,
            "interpolation": "log-linear between integer levels",
            "log_gain": model.log_gain.detach().tolist(),
            "log_inv_gain": model.log_inv_gain.detach().tolist(),
        },
        "padding": {"multiple": PAD_MULTIPLE, "mode": "replicate", "where": "bottom-right"},
        "normalization": {
            "input": "RGB, NCHW float32, value = u8 / 255",
            "output": "RGB, NCHW float32 in [0,1]; u8 = round_half_even(value * 255)",
        },
        "latent": {"channels": cfg.m, "stride": 16},
        "hyper_latent": {"channels": cfg.nz, "stride": 64, "clip": Z_CLIP, "grid": "ceil(yh / 4) x ceil(yw / 4)"},
        "entropy_parameters": {"upsample": 4, "crop": "top-left yh x yw", "mean_denominator": MEAN_DENOM, "scale_levels": cfg.scale_levels},
        "graphs": {
            "encoder": {
                "file": files["encoder"],
                "sha256": hashes["encoder"],
                "inputs": {"image": "float32 [n,3,h,w]", "quality": "float32 [1]"},
                "outputs": {"y": "float32 [n,M,h/16,w/16]", "z_hat": "int32 [n,Nz,ceil(h/64),ceil(w/64)]"},
            },
            "entropy": {
                "file": files["entropy"],
                "sha256": hashes["entropy"],
                "integer_only": True,
                "inputs": {"z_hat": "int32 [n,Nz,zh,zw]"},
                "outputs": {"mean_q": "int32 [n,M,4zh,4zw]", "scale_index": "int32 [n,M,4zh,4zw]"},
            },
            "decoder": {
                "file": files["decoder"],
                "sha256": hashes["decoder"],
                "inputs": {"y_hat": "float32 [n,M,yh,yw]", "quality": "float32 [1]"},
                "outputs": {"image": "float32 [n,3,16yh,16yw]"},
            },
        },
        "tables": {
            "file": "entropy_tables.json",
            "sha256": hashes["tables"],
            "precision": CDF_PRECISION,
            "hyper_channels": cfg.nz,
            "gaussian_scales": cfg.scale_levels,
        },
    }
    if extra:
        manifest.update(extra)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def main() -> None:
    ap = argparse.ArgumentParser(description="Export a checkpoint to a vlmpress model package.")
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--name", default=None)
    args = ap.parse_args()
    m = export_package(args.checkpoint, args.out, args.name or Path(args.out).name)
    print(json.dumps({"id": m["id"], "out": args.out}))


if __name__ == "__main__":
    main()
