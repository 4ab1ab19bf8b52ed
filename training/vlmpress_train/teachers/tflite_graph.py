"""Rebuild a quantized TFLite image classifier as a float PyTorch graph.

The TFLite file is parsed with the pure-Python `tflite` FlatBuffer bindings; every weight is
dequantized ((q - zero_point) * scale, per channel where the file says so) and the operators are
replayed in file order. Only the ops that MobileNet-style classifiers use are supported; anything
else raises, so a new receiver never silently runs a wrong graph.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tflite
import torch
import torch.nn.functional as F
from tflite.AddOptions import AddOptions
from tflite.BuiltinOperator import BuiltinOperator
from tflite.Conv2DOptions import Conv2DOptions
from tflite.DepthwiseConv2DOptions import DepthwiseConv2DOptions
from tflite.Padding import Padding
from tflite.Pool2DOptions import Pool2DOptions
from tflite.TensorType import TensorType

_OP_NAMES = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}
_NP_TYPES = {
    TensorType.INT8: np.int8,
    TensorType.UINT8: np.uint8,
    TensorType.INT32: np.int32,
    TensorType.FLOAT32: np.float32,
    TensorType.INT64: np.int64,
}


@dataclass(frozen=True)
class _Op:
    kind: str
    inputs: tuple[int, ...]
    output: int
    stride: int = 1
    same_padding: bool = True
    activation: int = 0  # tflite ActivationFunctionType: 0 none, 1 relu, 3 relu6
    pool: int = 0


def _same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow SAME padding: the extra pixel goes after, not before."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _activate(x: torch.Tensor, code: int) -> torch.Tensor:
    if code == 0:
        return x
    if code == 1:
        return F.relu(x)
    if code == 3:
        return F.hardtanh(x, 0.0, 6.0)
    raise ValueError(f"unsupported fused activation {code}")


class TFLiteClassifier(torch.nn.Module):
    """Float replay of a TFLite classifier. Input: RGB in [0, 1], NCHW, any size.

    `forward` returns the logits (pre-softmax, background at index 0 for 1001-way heads);
    `features` also returns the activations at the taps chosen by output stride (8, 16, 32).
    """

    def __init__(self, path: str | Path, tap_strides: tuple[int, ...] = (8, 16, 32)) -> None:
        super().__init__()
        buf = Path(path).read_bytes()
        model = tflite.Model.GetRootAsModel(buf, 0)
        graph = model.Subgraphs(0)
        self.input_index = graph.Inputs(0)
        in_tensor = graph.Tensors(self.input_index)
        in_q = in_tensor.Quantization()
        self.input_size = int(in_tensor.ShapeAsNumpy()[1])
        # uint8 pixel p maps to float (p - zero_point) * scale; we take x = p / 255.
        self.in_scale = float(in_q.ScaleAsNumpy()[0]) if in_q is not None and in_q.ScaleLength() else 1.0 / 255
        self.in_zero = float(in_q.ZeroPointAsNumpy()[0]) if in_q is not None and in_q.ZeroPointLength() else 0.0
        self.ops: list[_Op] = []
        self._params = torch.nn.ParameterDict()
        out_hw: dict[int, int] = {}
        for i in range(graph.OperatorsLength()):
            op = graph.Operators(i)
            code = model.OperatorCodes(op.OpcodeIndex())
            kind = _OP_NAMES[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
            ins = tuple(int(op.Inputs(j)) for j in range(op.InputsLength()))
            out = int(op.Outputs(0))
            shape = graph.Tensors(out).ShapeAsNumpy()
            if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                opts_cls = Conv2DOptions if kind == "CONV_2D" else DepthwiseConv2DOptions
                opts = opts_cls()
                table = op.BuiltinOptions()
                opts.Init(table.Bytes, table.Pos)
                if opts.DilationHFactor() != 1 or opts.DilationWFactor() != 1:
                    raise ValueError("dilated convolutions are not supported")
                w = self._dequantize(model, graph, ins[1])
                b = self._dequantize(model, graph, ins[2])
                if kind == "CONV_2D":
                    w = w.transpose(0, 3, 1, 2)  # OHWI -> OIHW
                else:
                    if opts.DepthMultiplier() != 1:
                        raise ValueError("depth multiplier != 1 is not supported")
                    w = w.transpose(3, 0, 1, 2)  # 1,H,W,C -> C,1,H,W
                self._params[f"w{out}"] = torch.nn.Parameter(torch.from_numpy(np.ascontiguousarray(w)), requires_grad=False)
                self._params[f"b{out}"] = torch.nn.Parameter(torch.from_numpy(b.copy()), requires_grad=False)
                self.ops.append(_Op(kind, ins[:1], out, opts.StrideH(), opts.Padding() == Padding.SAME, opts.FusedActivationFunction()))
            elif kind == "ADD":
                opts = AddOptions()
                table = op.BuiltinOptions()
                opts.Init(table.Bytes, table.Pos)
                self.ops.append(_Op(kind, ins, out, activation=opts.FusedActivationFunction()))
            elif kind == "AVERAGE_POOL_2D":
                opts = Pool2DOptions()
                table = op.BuiltinOptions()
                opts.Init(table.Bytes, table.Pos)
                self.ops.append(
                    _Op(
                        kind,
                        ins[:1],
                        out,
                        opts.StrideH(),
                        opts.Padding() == Padding.SAME,
                        opts.FusedActivationFunction(),
                        opts.FilterHeight(),
                    )
                )
            elif kind in ("MEAN", "RESHAPE", "QUANTIZE", "DEQUANTIZE", "SOFTMAX"):
                self.ops.append(_Op(kind, ins[:1], out))
            else:
                raise ValueError(f"unsupported TFLite op {kind}")
            if len(shape) == 4:
                out_hw[out] = int(shape[1])
        # The logits are the input of the SOFTMAX op (or the graph output when there is none).
        softmax = [o for o in self.ops if o.kind == "SOFTMAX"]
        self.logits_index = softmax[-1].inputs[0] if softmax else int(graph.Outputs(0))
        self.taps: list[int] = []
        for s in tap_strides:
            want = self.input_size // s
            idx = [o.output for o in self.ops if out_hw.get(o.output) == want and o.kind != "MEAN"]
            if not idx:
                raise ValueError(f"no feature map at stride {s}")
            self.taps.append(idx[-1])

    @staticmethod
    def _dequantize(model: tflite.Model, graph: tflite.SubGraph, index: int) -> np.ndarray:
        t = graph.Tensors(index)
        raw = model.Buffers(t.Buffer()).DataAsNumpy()
        q = np.frombuffer(raw.tobytes(), dtype=_NP_TYPES[t.Type()]).reshape(t.ShapeAsNumpy())
        if t.Type() == TensorType.FLOAT32:
            return q.astype(np.float32)
        qp = t.Quantization()
        scale = qp.ScaleAsNumpy().astype(np.float64)
        zero = qp.ZeroPointAsNumpy().astype(np.float64)
        shape = [1] * q.ndim
        if scale.size > 1:
            shape[qp.QuantizedDimension()] = scale.size
        return ((q.astype(np.float64) - zero.reshape(shape)) * scale.reshape(shape)).astype(np.float32)

    def _run(self, x: torch.Tensor, want_taps: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        values: dict[int, torch.Tensor] = {self.input_index: (x * 255.0 - self.in_zero) * self.in_scale}
        taps: list[torch.Tensor] = []
        tap_set = set(self.taps) if want_taps else set()
        for op in self.ops:
            a = values[op.inputs[0]]
            if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                w = self._params[f"w{op.output}"]
                k = w.shape[-1]
                if op.same_padding:
                    ph = _same_pad(a.shape[-2], w.shape[-2], op.stride)
                    pw = _same_pad(a.shape[-1], k, op.stride)
                    a = F.pad(a, (pw[0], pw[1], ph[0], ph[1]))
                groups = a.shape[1] if op.kind == "DEPTHWISE_CONV_2D" else 1
                y = F.conv2d(a, w, self._params[f"b{op.output}"], stride=op.stride, groups=groups)
                y = _activate(y, op.activation)
            elif op.kind == "ADD":
                y = _activate(a + values[op.inputs[1]], op.activation)
            elif op.kind == "AVERAGE_POOL_2D":
                # Classifier heads pool the whole map; a fixed 6x6/7x7 window would break other sizes.
                y = _activate(a.mean(dim=(2, 3), keepdim=True), op.activation)
            elif op.kind == "MEAN":
                y = a.mean(dim=(2, 3), keepdim=True)
            elif op.kind == "RESHAPE":
                y = a.flatten(1)
            else:  # QUANTIZE, DEQUANTIZE, SOFTMAX: identity in the float replay (we want logits)
                y = a
            values[op.output] = y
            if op.output in tap_set:
                taps.append(y)
            if op.output == self.logits_index:
                return y.flatten(1), taps
        raise RuntimeError("graph ended before the logits")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, False)[0]

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return self._run(x, True)
