"""The float rebuild of the TFLite MobileNetV2 must predict what the real TFLite runtime predicts."""

from __future__ import annotations

import numpy as np
import onnx
import torch
from ai_edge_litert.interpreter import Interpreter
from vlmpress_train.data import validation_split
from vlmpress_train.images import load_rgb, resize_center_crop, to_tensor
from vlmpress_train.teachers.onnx_teacher import OnnxTeacher
from vlmpress_train.teachers.tflite_graph import TFLiteClassifier

MODEL = "models/tf2_mobilenet_v2_1.0_224_ptq.tflite"


def test_rebuild_agrees_with_tflite_runtime(shared):
    path = shared / MODEL
    net = TFLiteClassifier(path).eval()
    interp = Interpreter(model_path=str(path))
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    files = validation_split(shared / "data" / "imagenet-dev")[:16]
    agree = 0
    for f in files:
        im = resize_center_crop(load_rgb(f), 256, 224)
        interp.set_tensor(inp["index"], np.asarray(im, dtype=np.uint8)[None])
        interp.invoke()
        scores = interp.get_tensor(out["index"])[0].astype(np.int64)
        tflite_top1 = int(np.argmax(scores))  # ties at the top resolve to the lowest index
        with torch.no_grad():
            agree += int(net(to_tensor(im)).argmax(1)) == tflite_top1
    # measured 99/100 on the validation split; allow one saturated-logit tie on 16 images
    assert agree >= 15, f"only {agree}/16 agree with the TFLite runtime"


def test_tokens_at_three_depths(shared):
    net = TFLiteClassifier(shared / MODEL).eval()
    with torch.no_grad():
        logits, taps = net.features(torch.rand(2, 3, 224, 224))
        _, taps_small = net.features(torch.rand(1, 3, 192, 160))  # any size works (SAME padding)
    assert logits.shape == (2, 1001)
    assert [t.shape[-1] for t in taps] == [28, 14, 7]
    assert [tuple(t.shape[-2:]) for t in taps_small] == [(24, 20), (12, 10), (6, 5)]


def test_training_configs_choose_the_taps(shared):
    from vlmpress_train.preedit.train import load_config
    from vlmpress_train.train import build_teacher

    cfg = load_config(None, [f"teacher={shared / MODEL}", "teacher_taps=[4, 8, 16, 32]"])
    with torch.no_grad():
        _, taps = build_teacher(cfg).features(torch.rand(1, 3, 224, 224))  # type: ignore[arg-type]
    assert [t.shape[-1] for t in taps] == [56, 28, 14, 7]


def test_onnx_teacher_matches_its_source_network(tmp_path):
    torch.manual_seed(0)

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1 = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)
            self.c2 = torch.nn.Conv2d(8, 16, 3, stride=2, padding=1)
            self.head = torch.nn.Linear(16, 10)

        def forward(self, x):
            f1 = torch.relu(self.c1(x))
            f2 = torch.relu(self.c2(f1))
            tokens = f2.flatten(2).transpose(1, 2)  # ViT-style [N, T, C]
            return self.head(f2.mean((2, 3))), f1, tokens

    tiny = Tiny().eval()
    path = tmp_path / "tiny.onnx"
    torch.onnx.export(
        tiny,
        (torch.rand(1, 3, 32, 32),),
        str(path),
        input_names=["x"],
        output_names=["logits", "f1", "tokens"],
        dynamo=False,
        opset_version=17,
    )
    onnx.checker.check_model(onnx.load(str(path)))
    teacher = OnnxTeacher(path, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)).eval()
    assert teacher.input_size == 32
    x = torch.rand(2, 3, 48, 40)  # resized to 32x32 inside the teacher
    with torch.no_grad():
        scores, tokens = teacher.features(x)
        ref = tiny((torch.nn.functional.interpolate(x, size=(32, 32), mode="bilinear") - 0.5) / 0.25)
    assert torch.allclose(scores, ref[0], atol=1e-5)
    assert torch.allclose(tokens[0], ref[1], atol=1e-5)
    assert tokens[1].shape == (2, 16, 64, 1)  # [N, T, C] -> [N, C, T, 1]
    assert torch.allclose(tokens[1][..., 0].transpose(1, 2), ref[2], atol=1e-5)
    # gradients flow to the input, as training needs
    x.requires_grad_(True)
    teacher.features(x)[0].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
